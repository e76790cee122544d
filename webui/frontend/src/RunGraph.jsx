// The run view's graph: the steps coloured by status, large fan-outs collapsed into counted groups, the
// critical path marked. Built for 1,000-step runs: each step's node reads its own step from the run store
// (an event re-renders the nodes it touched, not React Flow's whole graph); edges and the minimap follow
// the statuses at most every EDGE_REFRESH_MS; the first viewport is worked out from the server's layout,
// so React Flow draws only the steps in view from its first frame.
import { Background, Controls, Handle, MiniMap, Panel, Position, ReactFlow, getViewportForBounds, useReactFlow } from "@xyflow/react";
import { useCallback, useEffect, useLayoutEffect, useMemo, useRef, useState } from "react";
import { NODE_H, NODE_W, StepNode, edgeId, useTheme } from "./graph.jsx";
import { FINISHED_OK, STATUS } from "./status.jsx";

const nodeTypes = { step: StepNode, fanout: GroupNode };
const READABLE_ZOOM = 0.55; // fitting never shrinks node labels below this
const GROUP_MIN = 12; // siblings with the same upstream and downstream steps collapse from this many

// Large fan-outs: steps sharing the same (non-empty) upstream and downstream sets form a group.
function fanOutGroups(definition) {
  const ins = new Map();
  const outs = new Map();
  for (const e of definition.edges) {
    (ins.get(e.target) || ins.set(e.target, []).get(e.target)).push(e.source);
    (outs.get(e.source) || outs.set(e.source, []).get(e.source)).push(e.target);
  }
  const bySig = new Map();
  for (const n of definition.nodes) {
    const i = (ins.get(n.id) || []).slice().sort();
    const o = (outs.get(n.id) || []).slice().sort();
    if (!i.length && !o.length) continue;
    const sig = `${i.join(",")}|${o.join(",")}`;
    (bySig.get(sig) || bySig.set(sig, []).get(sig)).push(n.id);
  }
  const groups = [];
  for (const [sig, members] of bySig) if (members.length >= GROUP_MIN) groups.push({ id: `group:${members[0]}`, sig, members });
  return groups;
}

function GroupNode({ data }) {
  const { members, counts } = data;
  return (
    <div className="wnode group" data-group={data.id} data-count={members.length}>
      <Handle type="target" position={Position.Left} isConnectable={false} />
      <div className="wnode-title">{members.length} parallel steps</div>
      <div className="wnode-foot">
        {Object.entries(counts).map(([status, n]) => (
          <span key={status} className={`status-${status}`}>{STATUS[status]?.icon} {n} {STATUS[status]?.label.toLowerCase()}</span>
        ))}
      </div>
      <div className="muted" style={{ fontSize: 11 }}>Click to expand</div>
      <Handle type="source" position={Position.Right} isConnectable={false} />
    </div>
  );
}


// Where each node's handles are, given before it is drawn: React Flow otherwise draws every node once, to
// measure them, before it draws only those in view.
const HANDLES = [
  { type: "target", position: Position.Left, x: 0, y: NODE_H / 2, width: 1, height: 1 },
  { type: "source", position: Position.Right, x: NODE_W - 1, y: NODE_H / 2, width: 1, height: 1 },
];
const LARGE = 300; // steps from which the graph draws only what is in view, and edges follow at most every
const EDGE_REFRESH_MS = 500; // ... this often

// ``value``, changing at most every ``ms`` (the latest one once that has passed).
function useThrottled(value, ms) {
  const [shown, setShown] = useState(value);
  const last = useRef(0);
  useEffect(() => {
    if (value === shown) return undefined;
    const timer = setTimeout(() => {
      last.current = Date.now();
      setShown(value);
    }, Math.max(0, last.current + ms - Date.now()));
    return () => clearTimeout(timer);
  }, [value, shown, ms]);
  return shown;
}

export function RunGraph({ store, version, stale, selected, onSelect, hideFinished }) {
  const flow = useReactFlow();
  const theme = useTheme();
  const groups = useMemo(() => fanOutGroups(store.definition), [store.definition]);
  const [expanded, setExpanded] = useState(() => new Set());
  const nodeCache = useRef(new Map());
  const edgeCache = useRef(new Map());
  const large = store.definition.nodes.length > LARGE;
  // What depends on many steps' statuses (edges, groups' counts, hidden steps, the minimap's colours) is
  // worked out again at most every EDGE_REFRESH_MS in a large run; each step's node follows every event.
  const throttled = useThrottled(version, large ? EDGE_REFRESH_MS : 0);
  const statuses = large ? throttled : version;
  const collapsed = useMemo(() => {
    const byMember = new Map();
    for (const g of groups) {
      if (expanded.has(g.id) || g.members.includes(selected)) continue;
      for (const m of g.members) byMember.set(m, g);
    }
    return byMember;
  }, [groups, expanded, selected]);
  // The server's critical path (engine.services.queries.run_critical_path): the timeline and the API show the same.
  const critical = store.critical;
  const criticalSet = useMemo(() => new Set(critical || []), [critical]);
  const criticalEdges = useMemo(() => new Set((critical || []).slice(1).map((id, i) => `${critical[i]}->${id}`)), [critical]);
  const built = useMemo(() => {
    const groupNodes = [];
    const seen = new Set();
    for (const g of collapsed.values()) {
      if (seen.has(g.id)) continue;
      seen.add(g.id);
      const counts = {};
      for (const m of g.members) {
        const st = store.steps[m]?.status || "pending";
        counts[st] = (counts[st] || 0) + 1;
      }
      groupNodes.push({ id: g.id, type: "fanout", position: store.layout[g.members[0]] || { x: 0, y: 0 },
        initialWidth: NODE_W, initialHeight: NODE_H, handles: HANDLES,
        data: { id: g.id, members: g.members, counts }, draggable: false, connectable: false });
    }
    return store.definition.nodes
      .filter((n) => !collapsed.has(n.id))
      .filter((n) => !hideFinished || !FINISHED_OK.has(store.steps[n.id]?.status) || n.id === selected)
      .map((n) => {
        const isCritical = criticalSet.has(n.id);
        // The same object while nothing it shows changed: React Flow and its minimap then skip the
        // steps an event did not touch; the step's node reads its status from the store itself.
        return reuse(nodeCache.current, n.id, [stale, n.id === selected, isCritical, store], () => ({
          id: n.id,
          type: "step",
          position: store.layout[n.id] || n.position || { x: 0, y: 0 },
          // The graph is read-only and never takes React Flow's measurements back (no onNodesChange),
          // so the minimap needs each node's size given here, or it draws no nodes at all.
          initialWidth: NODE_W,
          initialHeight: NODE_H,
          handles: HANDLES,
          data: { spec: n, store, stale, critical: isCritical },
          selected: n.id === selected,
          draggable: false,
          connectable: false,
        }));
      })
      .concat(groupNodes);
  }, [statuses, stale, selected, hideFinished, store, collapsed, criticalSet]);
  const nodes = useSame(built);
  const visible = useMemo(() => new Set(nodes.map((n) => n.id)), [nodes]);
  const edges = useSame(useMemo(
    () =>
      dedupe(store.definition.edges
        .map((e) => ({ ...e, source: collapsed.get(e.source)?.id || e.source, target: collapsed.get(e.target)?.id || e.target }))
        .filter((e) => visible.has(e.source) && visible.has(e.target)))
        .map((e) => {
          const st = store.steps[e.source]?.status;
          const target = store.steps[e.target]?.status;
          // Not taken: a branch not chosen or a condition that was false skips the step it leads to
          // (or its source never ran). Drawn dashed and faded, unlike the edges the run went along.
          const notTaken = st === "skipped" || (target === "skipped" && st === "succeeded");
          const taken = !notTaken && st === "succeeded" && target && target !== "pending";
          const critical = criticalEdges.has(edgeId(e));
          return reuse(edgeCache.current, edgeId(e), [st, target, critical], () => ({
            id: edgeId(e),
            source: e.source,
            target: e.target,
            label: e.branch || e.condition || undefined,
            animated: st === "running",
            className: `edge-${st || "pending"}${notTaken ? " edge-not-taken" : taken ? " edge-taken" : ""}${critical ? " edge-critical" : ""}`,
            data: { taken: notTaken ? "no" : taken ? "yes" : "unknown" },
          }));
        }),
    [statuses, visible, store, collapsed, criticalEdges],
  ));
  const nodeColor = useCallback(
    (n) => (n.type === "fanout" ? "var(--accent)" : `var(--s-${store.steps[n.id]?.status || "pending"})`),
    [statuses, store],
  );
  useEffect(() => {
    if (selected) {
      const pos = store.layout[selected];
      if (pos) flow.setCenter(pos.x + 95, pos.y + 38, { zoom: Math.max(flow.getZoom(), 0.8), duration: 200 });
    }
  }, [selected]);
  // The drawer opening or closing, or the window narrowing, changes the graph's width: fit it again, no
  // smaller than a readable zoom (the minimap and panning reach the rest), keeping the open step in view.
  const box = useRef(null);
  const lastWidth = useRef(0);
  // The first viewport, fitted to the server's layout before React Flow draws anything: no smaller than
  // a readable zoom. React Flow's own fitView would first draw every node to measure it.
  const [viewport, setViewport] = useState(null);
  useLayoutEffect(() => {
    const el = box.current;
    if (!el || viewport) return;
    setViewport(fittedViewport(nodes, el.clientWidth || 800, el.clientHeight || 600));
  }, []);
  useEffect(() => {
    const el = box.current;
    if (!el || typeof ResizeObserver === "undefined") return undefined;
    let timer = null;
    const ro = new ResizeObserver(([entry]) => {
      const w = Math.round(entry.contentRect.width);
      if (!lastWidth.current || Math.abs(w - lastWidth.current) < 40) {
        lastWidth.current = lastWidth.current || w;
        return;
      }
      lastWidth.current = w;
      clearTimeout(timer);
      timer = setTimeout(() => {
        const pos = selectedRef.current && store.layout[selectedRef.current];
        if (pos) flow.setCenter(pos.x + 95, pos.y + 38, { zoom: Math.max(flow.getZoom(), 0.8), duration: 150 });
        else flow.fitView({ maxZoom: 1, minZoom: READABLE_ZOOM, duration: 150 });
      }, 60);
    });
    ro.observe(el);
    return () => {
      ro.disconnect();
      clearTimeout(timer);
    };
  }, [flow, store]);
  const selectedRef = useRef(selected);
  selectedRef.current = selected;
  return (
    <div
      ref={box}
      className="flow"
      aria-label="Run graph"
      onKeyDownCapture={(e) => {
        // Keyboard: Tab to a node, Enter (or Space) opens its drawer, or expands a group.
        if (e.key !== "Enter" && e.key !== " ") return;
        const el = document.activeElement;
        const id = el && el.classList.contains("react-flow__node") ? el.dataset.id : null;
        if (!id) return;
        e.preventDefault();
        if (id.startsWith("group:")) setExpanded((s) => new Set(s).add(id));
        else onSelect(id);
      }}
    >
      {viewport ? <ReactFlow
        nodes={nodes}
        edges={edges}
        nodeTypes={nodeTypes}
        onNodeClick={(_, n) => (n.type === "fanout" ? setExpanded((s) => new Set(s).add(n.id)) : onSelect(n.id))}
        onPaneClick={() => onSelect(null)}
        nodesDraggable={false}
        nodesConnectable={false}
        elementsSelectable
        defaultViewport={viewport}
        minZoom={0.05}
        onlyRenderVisibleElements={nodes.length > LARGE}
        proOptions={{ hideAttribution: true }}
        colorMode={theme}
      >
        <Background />
        {criticalSet.size ? (
          <Panel position="top-left" className="graph-legend" data-legend-key="crit">
            <span className="sw crit" aria-hidden="true" /> <span className="crit-mark" aria-hidden="true">★</span>critical path
          </Panel>
        ) : null}
        <Controls showInteractive={false} />
        <MiniMap pannable zoomable nodeStrokeWidth={3} nodeColor={nodeColor} />
      </ReactFlow> : null}
    </div>
  );
}

// What fitView({maxZoom: 1, minZoom: READABLE_ZOOM}) would show of ``nodes`` in a box of this size.
function fittedViewport(nodes, width, height) {
  if (!nodes.length) return { x: 0, y: 0, zoom: 1 };
  let x0 = Infinity;
  let y0 = Infinity;
  let x1 = -Infinity;
  let y1 = -Infinity;
  for (const n of nodes) {
    x0 = Math.min(x0, n.position.x);
    y0 = Math.min(y0, n.position.y);
    x1 = Math.max(x1, n.position.x + NODE_W);
    y1 = Math.max(y1, n.position.y + NODE_H);
  }
  return getViewportForBounds({ x: x0, y: y0, width: x1 - x0, height: y1 - y0 }, width, height, READABLE_ZOOM, 1, 0.1);
}

// ``list`` itself, or the previous list while it holds the very same items (React Flow then has nothing to redo).
function useSame(list) {
  const previous = useRef(list);
  const p = previous.current;
  if (p !== list && (p.length !== list.length || p.some((item, i) => item !== list[i]))) previous.current = list;
  return previous.current;
}

// cache: id -> {deps, value}. Returns the cached value while every dep is identical, else build()'s.
function reuse(cache, id, deps, build) {
  const hit = cache.get(id);
  if (hit && hit.deps.length === deps.length && hit.deps.every((d, i) => d === deps[i])) return hit.value;
  const value = build();
  cache.set(id, { deps, value });
  return value;
}

function dedupe(edges) {
  const seen = new Set();
  return edges.filter((e) => {
    const id = edgeId(e);
    if (seen.has(id) || e.source === e.target) return false;
    seen.add(id);
    return true;
  });
}

