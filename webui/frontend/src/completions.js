// What a template can name at the caret, from the workflow's last run (GET /api/workflows/{slug}/sample/):
// `{{ nodes.` -> the node ids upstream, `{{ nodes.fetch.output.` -> the fields of fetch's output in that run
// (nested: `output.items.0.title`), `{{ inputs.` -> the run inputs' fields.

const ROOTS = ["inputs", "nodes", "upstream", "run"];

// The dotted path being typed inside an open `{{ ... }}` or `{% ... %}` before the caret:
// {parts: ["nodes", "fetch"], partial: "ou", start: index of the partial}, or null outside a template.
export function pathAtCaret(text, caret) {
  const before = text.slice(0, caret);
  const open = Math.max(before.lastIndexOf("{{"), before.lastIndexOf("{%"));
  if (open < 0) return null;
  const inside = before.slice(open + 2);
  if (inside.includes("}}") || inside.includes("%}")) return null;
  const m = inside.match(/(?:^|[^\w.\]])((?:[A-Za-z_]\w*\.(?:\w+\.)*)?)(\w*)$/);
  if (!m) return null;
  const parts = m[1] ? m[1].slice(0, -1).split(".") : [];
  return { parts, partial: m[2], start: caret - m[2].length };
}

function describe(value) {
  if (value === null || value === undefined) return "null";
  if (Array.isArray(value)) return `list of ${value.length}`;
  if (typeof value === "object") return `object of ${Object.keys(value).length}`;
  const text = typeof value === "string" ? JSON.stringify(value) : String(value);
  return text.length > 40 ? text.slice(0, 39) + "…" : text;
}

function fieldsOf(value) {
  if (Array.isArray(value)) return value.map((v, i) => ({ name: String(i), detail: describe(v) }));
  if (value && typeof value === "object") return Object.entries(value).map(([k, v]) => ({ name: k, detail: describe(v) }));
  return [];
}

function walk(value, path) {
  let v = value;
  for (const p of path) {
    if (v === null || typeof v !== "object") return undefined;
    v = Array.isArray(v) ? v[Number(p)] : v[p];
  }
  return v;
}

// The options for ``at`` (from pathAtCaret): [{name, detail}], filtered by what is typed so far.
// ``scope``: {upstream: ancestor ids, direct: direct predecessor ids, inputKeys: the input schema's fields,
// sample: the sample or null}.
export function completions(at, scope) {
  if (!at) return [];
  const { parts, partial } = at;
  const sample = scope.sample || { inputs: {}, nodes: {} };
  const nodes = sample.nodes || {};
  const stepDetail = (id) => (nodes[id] ? `${nodes[id].status} in the last run` : "not in the last run");
  let options = [];
  const [root, ...rest] = parts;
  if (!parts.length) {
    options = ROOTS.map((name) => ({ name, detail: "" }));
  } else if (root === "nodes" || root === "upstream") {
    const ids = root === "nodes" ? scope.upstream : scope.direct;
    if (!rest.length) {
      options = ids.map((id) => ({ name: id, detail: stepDetail(id) }));
    } else if (!ids.includes(rest[0])) {
      options = [];
    } else if (root === "nodes" && rest.length === 1) {
      options = [{ name: "output", detail: nodes[rest[0]] ? describe(nodes[rest[0]].output) : "no run yet" },
        { name: "status", detail: nodes[rest[0]] ? nodes[rest[0]].status : "" }];
    } else if (root === "nodes" && rest[1] === "output") {
      options = fieldsOf(walk(nodes[rest[0]]?.output, rest.slice(2)));
    } else if (root === "upstream") {
      options = fieldsOf(walk(nodes[rest[0]]?.output, rest.slice(1)));
    }
  } else if (root === "inputs") {
    options = fieldsOf(walk(sample.inputs, rest));
    if (!rest.length) {
      for (const k of scope.inputKeys) if (!options.some((o) => o.name === k)) options.push({ name: k, detail: "not in the last run" });
    }
  } else if (root === "run" && !rest.length) {
    options = [{ name: "id", detail: "this run's id" }];
  }
  return options.filter((o) => o.name.startsWith(partial) && o.name !== partial).slice(0, 50);
}
