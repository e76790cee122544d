// The editor's workflow definition and React Flow's nodes and edges: one into the other and back.
import { edgeId } from "./graph.jsx";

// The node fields the editor has panels for come first, in this order; every other field a node carries
// (for_each, max_parallel, limits, priority, ...) is kept after them, so saving from the editor drops none.
const SPEC_KEYS = ["id", "type", "name", "config", "queue", "retry", "timeout_s", "trigger_rule"];

export function toRfNode(spec) {
  return { id: spec.id, type: "edit", position: spec.position || { x: 0, y: 0 }, data: { spec } };
}

export function toRfEdge(e) {
  return { id: edgeId(e), source: e.source, target: e.target, data: { condition: e.condition, branch: e.branch },
    label: e.branch || e.condition || undefined };
}

function cleanSpec(spec, position) {
  const out = {};
  const keys = [...SPEC_KEYS, ...Object.keys(spec).filter((k) => !SPEC_KEYS.includes(k) && k !== "position"), "position"];
  for (const k of keys) {
    const v = k === "position" ? position : spec[k];
    if (v === undefined || v === null || v === "") continue;
    if (k === "retry" && typeof v === "object" && !Object.keys(v).length) continue;
    out[k] = v;
  }
  return out;
}

const EDITED_FIELDS = new Set(["name", "slug", "description", "inputs", "nodes", "edges"]);

// A definition's top-level fields the editor has no panel for (budget, concurrency, durability, ...): kept in
// `meta.other` and saved as they were, so saving from the editor never drops them.
export function otherFields(definition) {
  return Object.fromEntries(Object.entries(definition || {}).filter(([key]) => !EDITED_FIELDS.has(key)));
}

export function buildDefinition(meta, nodes, edges) {
  const d = { ...(meta.other || {}), name: meta.name, slug: meta.slug };
  if (meta.description) d.description = meta.description;
  if (meta.inputs) d.inputs = meta.inputs;
  d.nodes = nodes.map((n) => cleanSpec(n.data.spec, { x: Math.round(n.position.x), y: Math.round(n.position.y) }));
  d.edges = edges.map((e) => {
    const out = { source: e.source, target: e.target };
    if (e.data?.condition) out.condition = e.data.condition;
    if (e.data?.branch) out.branch = e.data.branch;
    return out;
  });
  return d;
}

export function slugify(text) {
  return (text || "").toLowerCase().replace(/[^a-z0-9-_]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 100);
}
