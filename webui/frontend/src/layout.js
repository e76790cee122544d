// Automatic layout with elkjs (layered, left to right), loaded on first use.
import { NODE_H, NODE_W } from "./graph.jsx";

let elkPromise = null;

export async function autoLayout(nodes, edges) {
  if (!elkPromise) elkPromise = import("elkjs/lib/elk.bundled.js").then((m) => new m.default());
  const elk = await elkPromise;
  const ids = new Set(nodes.map((n) => n.id));
  const graph = {
    id: "root",
    layoutOptions: {
      "elk.algorithm": "layered",
      "elk.direction": "RIGHT",
      "elk.spacing.nodeNode": "30",
      "elk.layered.spacing.nodeNodeBetweenLayers": "60",
    },
    children: nodes.map((n) => ({ id: n.id, width: NODE_W, height: NODE_H })),
    // An edge naming no node (an imported definition's mistake, shown as a problem) is left out: elk refuses it.
    edges: edges.filter((e) => ids.has(e.source) && ids.has(e.target) && e.source !== e.target)
      .map((e, i) => ({ id: `e${i}`, sources: [e.source], targets: [e.target] })),
  };
  const out = await elk.layout(graph);
  const pos = {};
  for (const c of out.children) pos[c.id] = { x: Math.round(c.x), y: Math.round(c.y) };
  return pos;
}
