// The workflow editor: palette, canvas, config panel generated from each node type's JSON
// Schema, live validation from /api/workflows/validate/, undo/redo, copy/paste, auto-layout,
// versions with a node diff, import/export, and Run with a form from the input schema.
import {
  Background, Controls, MiniMap, ReactFlow, ReactFlowProvider, addEdge, applyEdgeChanges, applyNodeChanges,
  useReactFlow,
} from "@xyflow/react";
import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { ApiError, get, post, put } from "./api.js";
import { Dialog } from "./dialogs.jsx";
import { EditNode, edgeId, useTheme } from "./graph.jsx";
import { autoLayout } from "./layout.js";
import { SchemaForm, schemaDefaults } from "./SchemaForm.jsx";

const nodeTypes = { edit: EditNode };
const SPEC_KEYS = ["id", "type", "name", "config", "queue", "retry", "timeout_s", "trigger_rule", "position"];

function toRfNode(spec) {
  return { id: spec.id, type: "edit", position: spec.position || { x: 0, y: 0 }, data: { spec } };
}

function toRfEdge(e) {
  return { id: edgeId(e), source: e.source, target: e.target, data: { condition: e.condition, branch: e.branch },
    label: e.branch || e.condition || undefined };
}

function cleanSpec(spec, position) {
  const out = {};
  for (const k of SPEC_KEYS) {
    const v = k === "position" ? position : spec[k];
    if (v === undefined || v === null || v === "") continue;
    if (k === "retry" && typeof v === "object" && !Object.keys(v).length) continue;
    out[k] = v;
  }
  return out;
}

function buildDefinition(meta, nodes, edges) {
  const d = { name: meta.name, slug: meta.slug };
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

function slugify(text) {
  return (text || "").toLowerCase().replace(/[^a-z0-9-_]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 100);
}

function fieldErrors(errors, index) {
  // "nodes[3].config.url" -> {url: message}; "'function' is a required property" at nodes[3].config too.
  const out = {};
  for (const e of errors) {
    const path = e.path || "";
    const m = path.match(/^nodes\[(\d+)\]\.config(?:\.([A-Za-z0-9_]+))?/);
    if (!m || Number(m[1]) !== index) continue;
    let field = m[2];
    if (!field) {
      const req = (e.message || "").match(/'([^']+)' is a required property/);
      if (req) field = req[1];
    }
    if (field && !out[field]) out[field] = e.message;
  }
  return out;
}

export function Editor({ props }) {
  return (
    <ReactFlowProvider>
      <EditorInner props={props} />
    </ReactFlowProvider>
  );
}

function EditorInner({ props }) {
  const flow = useReactFlow();
  const theme = useTheme();
  const initial = props.definition || { name: "", slug: "", nodes: [], edges: [] };
  const [slug, setSlug] = useState(props.slug || null); // saved slug; null while new
  const [meta, setMeta] = useState({ name: initial.name, slug: initial.slug, description: initial.description || "",
    inputs: initial.inputs });
  const [nodes, setNodes] = useState(() => initial.nodes.map((n) => toRfNode(n)));
  const [edges, setEdges] = useState(() => initial.edges.map(toRfEdge));
  const [types, setTypes] = useState(props.nodeTypes || []);
  const [validation, setValidation] = useState({ valid: true, errors: [], warnings: [] });
  const [dirty, setDirty] = useState(false);
  const [panel, setPanel] = useState(props.definition ? "node" : "workflow");
  const [dialog, setDialog] = useState(null);
  const [notice, setNotice] = useState(null);
  const [versions, setVersions] = useState(props.versions || []);
  const [version, setVersion] = useState(props.version);
  const history = useRef({ past: [], future: [] });
  const clipboard = useRef(null);
  const wrapper = useRef(null);
  const canDesign = props.roles && props.roles.design;
  const canOperate = props.roles && props.roles.operate;

  const typeByName = useMemo(() => Object.fromEntries(types.map((t) => [t.name, t])), [types]);
  const definition = useMemo(() => buildDefinition(meta, nodes, edges), [meta, nodes, edges]);

  useEffect(() => {
    get("/api/node-types/").then((list) => Array.isArray(list) && list.length && setTypes(list)).catch(() => {});
  }, []);

  // -- history ----------------------------------------------------------------------------------
  const snapshot = () => ({ meta, nodes: nodes.map((n) => ({ ...n, selected: false })), edges });
  const remember = useCallback(() => {
    history.current.past.push(snapshot());
    if (history.current.past.length > 200) history.current.past.shift();
    history.current.future = [];
    setDirty(true);
  });
  const restore = (s) => {
    setMeta(s.meta);
    setNodes(s.nodes);
    setEdges(s.edges);
    setDirty(true);
  };
  const undo = () => {
    const s = history.current.past.pop();
    if (s) {
      history.current.future.push(snapshot());
      restore(s);
    }
  };
  const redo = () => {
    const s = history.current.future.pop();
    if (s) {
      history.current.past.push(snapshot());
      restore(s);
    }
  };

  // -- validation as the user edits -------------------------------------------------------------
  useEffect(() => {
    if (!definition.nodes.length) {
      setValidation({ valid: false, errors: [{ code: "empty", message: "Add a node from the palette." }], warnings: [] });
      return undefined;
    }
    let cancelled = false;
    const t = setTimeout(async () => {
      const d = { ...definition, name: definition.name || "untitled", slug: definition.slug || "untitled" };
      try {
        const result = await post("/api/workflows/validate/", { definition: d });
        if (!cancelled) setValidation(result);
      } catch (err) {
        if (!cancelled) setValidation({ valid: false, errors: err.details?.length ? err.details : [{ message: err.message }], warnings: [] });
      }
    }, 250);
    return () => {
      cancelled = true;
      clearTimeout(t);
    };
  }, [JSON.stringify(definition)]);

  const errorsByNode = useMemo(() => {
    const out = {};
    for (const e of validation.errors) if (e.node) (out[e.node] ||= []).push(e);
    return out;
  }, [validation]);
  const errorsByEdge = useMemo(() => {
    const out = {};
    for (const e of validation.errors) if (e.edge) (out[e.edge] ||= []).push(e);
    return out;
  }, [validation]);

  const viewNodes = useMemo(
    () => nodes.map((n) => ({ ...n, data: { ...n.data, errors: errorsByNode[n.id] || [], label: typeByName[n.data.spec.type]?.label } })),
    [nodes, errorsByNode, typeByName],
  );
  const viewEdges = useMemo(
    () => edges.map((e) => (errorsByEdge[e.id]
      ? { ...e, className: "invalid", label: `⚠ ${errorsByEdge[e.id][0].message}`, ariaLabel: errorsByEdge[e.id][0].message }
      : e)),
    [edges, errorsByEdge],
  );

  // -- canvas changes ---------------------------------------------------------------------------
  const onNodesChange = useCallback((changes) => {
    if (changes.some((c) => c.type === "remove")) remember();
    setNodes((ns) => {
      const next = applyNodeChanges(changes, ns);
      const removed = new Set(changes.filter((c) => c.type === "remove").map((c) => c.id));
      if (removed.size) setEdges((es) => es.filter((e) => !removed.has(e.source) && !removed.has(e.target)));
      return next;
    });
  }, [remember]);
  const onEdgesChange = useCallback((changes) => {
    if (changes.some((c) => c.type === "remove")) remember();
    setEdges((es) => applyEdgeChanges(changes, es));
  }, [remember]);
  const onConnect = useCallback((params) => {
    if (params.source === params.target) return;
    remember();
    setEdges((es) => (es.some((e) => e.id === `${params.source}->${params.target}`)
      ? es : addEdge({ ...params, id: `${params.source}->${params.target}`, data: {} }, es)));
  }, [remember]);

  const newId = (type, taken) => {
    const base = type.replace(/[^A-Za-z0-9_]/g, "_");
    for (let i = 1; ; i += 1) if (!taken.has(`${base}_${i}`)) return `${base}_${i}`;
  };

  const addNode = (typeName, position) => {
    const t = typeByName[typeName];
    if (!t) return;
    remember();
    const taken = new Set(nodes.map((n) => n.id));
    const id = newId(typeName, taken);
    const spec = { id, type: typeName, config: schemaDefaults(t.config_schema) };
    let pos = position;
    if (!pos) {
      const rect = wrapper.current.getBoundingClientRect();
      pos = flow.screenToFlowPosition({ x: rect.left + rect.width / 2, y: rect.top + rect.height / 2 });
      pos = { x: pos.x - 95 + nodes.length * 12, y: pos.y - 38 + nodes.length * 12 };
    }
    setNodes((ns) => [...ns.map((n) => ({ ...n, selected: false })), { ...toRfNode({ ...spec, position: pos }), selected: true }]);
    setPanel("node");
  };

  const onDrop = (event) => {
    event.preventDefault();
    const typeName = event.dataTransfer.getData("application/weft-node-type");
    if (!typeName) return;
    const pos = flow.screenToFlowPosition({ x: event.clientX, y: event.clientY });
    addNode(typeName, { x: pos.x - 95, y: pos.y - 38 });
  };

  const selected = nodes.filter((n) => n.selected);
  const current = selected.length === 1 ? selected[0] : null;

  const updateSpec = (id, patch) => {
    remember();
    setNodes((ns) => ns.map((n) => (n.id === id ? { ...n, data: { ...n.data, spec: { ...n.data.spec, ...patch } } } : n)));
  };
  const renameNode = (oldId, newIdValue) => {
    if (!newIdValue || newIdValue === oldId || nodes.some((n) => n.id === newIdValue)) return false;
    remember();
    setNodes((ns) => ns.map((n) => (n.id === oldId ? { ...n, id: newIdValue, data: { ...n.data, spec: { ...n.data.spec, id: newIdValue } } } : n)));
    setEdges((es) => es.map((e) => {
      const s = e.source === oldId ? newIdValue : e.source;
      const t = e.target === oldId ? newIdValue : e.target;
      return { ...e, source: s, target: t, id: `${s}->${t}` };
    }));
    return true;
  };
  const connectTo = (source, target) => onConnect({ source, target });

  // -- copy / paste / layout --------------------------------------------------------------------
  const copy = () => {
    const ids = new Set(selected.map((n) => n.id));
    if (!ids.size) return;
    clipboard.current = {
      nodes: selected.map((n) => ({ ...n.data.spec, position: n.position })),
      edges: edges.filter((e) => ids.has(e.source) && ids.has(e.target)).map((e) => ({ source: e.source, target: e.target, ...e.data })),
    };
    setNotice({ kind: "ok", text: `Copied ${ids.size} node(s).` });
  };
  const paste = () => {
    const clip = clipboard.current;
    if (!clip) return;
    remember();
    const taken = new Set(nodes.map((n) => n.id));
    const rename = {};
    for (const n of clip.nodes) {
      rename[n.id] = newId(n.type, taken);
      taken.add(rename[n.id]);
    }
    const added = clip.nodes.map((n) => ({ ...toRfNode({ ...n, id: rename[n.id], position: { x: n.position.x + 40, y: n.position.y + 40 } }), selected: true }));
    setNodes((ns) => [...ns.map((n) => ({ ...n, selected: false })), ...added]);
    setEdges((es) => [...es, ...clip.edges.map((e) => toRfEdge({ ...e, source: rename[e.source], target: rename[e.target] }))]);
  };
  const layout = async () => {
    const pos = await autoLayout(nodes, edges);
    remember();
    setNodes((ns) => ns.map((n) => ({ ...n, position: pos[n.id] || n.position })));
    setTimeout(() => flow.fitView({ duration: 200, maxZoom: 1 }), 50);
  };

  // -- keyboard shortcuts -----------------------------------------------------------------------
  useEffect(() => {
    const onKey = (e) => {
      const tag = (e.target.tagName || "").toLowerCase();
      if (tag === "input" || tag === "textarea" || tag === "select" || e.target.isContentEditable) return;
      const mod = e.ctrlKey || e.metaKey;
      const key = e.key.toLowerCase();
      if (mod && key === "z" && !e.shiftKey) { e.preventDefault(); undo(); }
      else if (mod && (key === "y" || (key === "z" && e.shiftKey))) { e.preventDefault(); redo(); }
      else if (mod && key === "c") { copy(); }
      else if (mod && key === "v") { e.preventDefault(); paste(); }
      else if (mod && key === "s") { e.preventDefault(); setDialog({ kind: "save" }); }
      else if (!mod && e.shiftKey && key === "l") { e.preventDefault(); layout(); }
      else if (!mod && key === "?") { setDialog({ kind: "keys" }); }
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  });

  useEffect(() => {
    const warn = (e) => {
      if (dirty) {
        e.preventDefault();
        e.returnValue = "";
      }
    };
    window.addEventListener("beforeunload", warn);
    return () => window.removeEventListener("beforeunload", warn);
  }, [dirty]);

  // -- save / run / import / export -------------------------------------------------------------
  const save = async (note) => {
    setNotice(null);
    const d = { ...definition, slug: definition.slug || slugify(definition.name) };
    try {
      const body = { definition: d, note };
      const result = slug ? await put(`/api/workflows/${slug}/`, body) : await post("/api/workflows/", body);
      setSlug(d.slug);
      setMeta((m) => ({ ...m, slug: d.slug }));
      setDirty(false);
      const number = result.current_version?.number ?? result.version ?? null;
      setVersion(number);
      if (!slug) history.current = { past: [], future: [] };
      if (location.pathname !== `/workflows/${d.slug}/edit/`) window.history.replaceState({}, "", `/workflows/${d.slug}/edit/`);
      get(`/api/workflows/${d.slug}/versions/`).then((vs) => setVersions(Array.isArray(vs) ? vs : vs.results || [])).catch(() => {});
      setNotice({ kind: "ok", text: result.new_version === false ? "No changes since the last version." : `Saved version ${number ?? ""}.` });
      return true;
    } catch (err) {
      if (err instanceof ApiError && err.details?.length) {
        setValidation({ valid: false, errors: err.details.map((x) => (typeof x === "string" ? { message: x } : x)), warnings: [] });
      }
      setNotice({ kind: "error", text: `Not saved: ${err.message}. Your changes are still here.` });
      return false;
    }
  };

  const exportJson = () => {
    const blob = new Blob([JSON.stringify(definition, null, 2)], { type: "application/json" });
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = `${definition.slug || "workflow"}.json`;
    a.click();
    setTimeout(() => URL.revokeObjectURL(a.href), 1000);
  };
  const importJson = (text) => {
    let d;
    try {
      d = JSON.parse(text);
    } catch (err) {
      setNotice({ kind: "error", text: `Import failed: not JSON (${err.message}).` });
      return false;
    }
    if (!d || !Array.isArray(d.nodes)) {
      setNotice({ kind: "error", text: "Import failed: a definition needs a nodes array." });
      return false;
    }
    remember();
    setMeta({ name: d.name || meta.name, slug: slug || d.slug || meta.slug, description: d.description || "", inputs: d.inputs });
    setNodes(d.nodes.map((n, i) => toRfNode({ ...n, position: n.position || { x: i * 220, y: 0 } })));
    setEdges((d.edges || []).map(toRfEdge));
    setNotice({ kind: "ok", text: `Imported ${d.nodes.length} node(s); not saved yet.` });
    setTimeout(() => flow.fitView({ maxZoom: 1 }), 50);
    return true;
  };

  const upstreamSuggestions = (id) => {
    const ins = new Map();
    for (const e of edges) (ins.get(e.target) || ins.set(e.target, []).get(e.target)).push(e.source);
    const seen = new Set();
    const stack = [...(ins.get(id) || [])];
    while (stack.length) {
      const s = stack.pop();
      if (!seen.has(s)) {
        seen.add(s);
        stack.push(...(ins.get(s) || []));
      }
    }
    const out = [...seen].map((s) => `{{ nodes.${s}.output }}`);
    for (const k of Object.keys(meta.inputs?.properties || {})) out.push(`{{ inputs.${k} }}`);
    return out;
  };

  const problems = validation.errors;
  return (
    <div className="editor" data-valid={validation.valid ? "true" : "false"} data-dirty={dirty ? "true" : "false"}>
      <div className="editbar">
        <strong>{meta.name || "New workflow"}</strong>
        {slug ? <span className="muted"><code>{slug}</code>{version ? ` · v${version}` : ""}</span> : <span className="muted">not saved yet</span>}
        {dirty ? <span className="badge status-waiting">● Unsaved changes</span> : null}
        <span className={`badge ${validation.valid ? "status-succeeded" : "status-failed"}`} data-validation={validation.valid ? "valid" : "invalid"}>
          {validation.valid ? "✓ Valid" : `✕ ${problems.length} problem${problems.length === 1 ? "" : "s"}`}
        </span>
        <div className="grow" />
        <button type="button" className="secondary" onClick={undo} title="Undo (Ctrl+Z)">Undo</button>
        <button type="button" className="secondary" onClick={redo} title="Redo (Ctrl+Shift+Z)">Redo</button>
        <button type="button" className="secondary" onClick={layout} title="Auto-layout (Shift+L)">Auto-layout</button>
        <button type="button" className="secondary" onClick={() => setDialog({ kind: "keys" })} title="Keyboard shortcuts (?)">Shortcuts</button>
        <button type="button" disabled={!canDesign} title={canDesign ? "Save as a new version (Ctrl+S)" : "needs the designer role"}
          onClick={() => setDialog({ kind: "save" })}>Save…</button>
        <button type="button" disabled={!slug || dirty || !canOperate}
          title={!slug || dirty ? "save first" : canOperate ? "Start a run" : "needs the operator role"}
          onClick={() => setDialog({ kind: "run" })}>Run…</button>
      </div>
      {notice ? <div className={`banner ${notice.kind === "error" ? "error" : "ok"}`} role="status">{notice.text}</div> : null}
      <div className="editbody">
        <nav className="palette" aria-label="Node palette">
          <h2>Nodes</h2>
          <p className="muted" style={{ fontSize: 11 }}>Drag onto the canvas, or press Enter to add.</p>
          {types.map((t) => (
            <button key={t.name} type="button" className="palette-item" draggable data-node-type={t.name}
              title={t.description}
              onDragStart={(e) => {
                e.dataTransfer.setData("application/weft-node-type", t.name);
                e.dataTransfer.effectAllowed = "move";
              }}
              onClick={() => addNode(t.name)}>
              {t.label}<small>{t.name} · {t.default_queue}</small>
            </button>
          ))}
        </nav>
        <div className="flow" ref={wrapper} onDragOver={(e) => { e.preventDefault(); e.dataTransfer.dropEffect = "move"; }} onDrop={onDrop}
          aria-label="Workflow canvas">
          <ReactFlow
            nodes={viewNodes}
            edges={viewEdges}
            nodeTypes={nodeTypes}
            onNodesChange={onNodesChange}
            onEdgesChange={onEdgesChange}
            onConnect={onConnect}
            onNodeDragStart={() => remember()}
            onNodeClick={() => setPanel("node")}
            deleteKeyCode={["Delete", "Backspace"]}
            // Fit only a graph that exists when the editor opens: on an empty canvas React Flow would
            // fit the first dropped node instead, moving it from where it was dropped to the centre.
            fitView={initial.nodes.length > 0}
            fitViewOptions={{ maxZoom: 1 }}
            proOptions={{ hideAttribution: true }}
            colorMode={theme}
          >
            <Background />
            <Controls />
            <MiniMap pannable zoomable />
          </ReactFlow>
        </div>
        <aside className="side" aria-label="Properties">
          <div role="tablist" className="tabs small" aria-label="Panels">
            {[["node", "Node"], ["workflow", "Workflow"], ["versions", "Versions"], ["json", "JSON"]].map(([k, label]) => (
              <button key={k} type="button" role="tab" aria-selected={panel === k} className={panel === k ? "" : "secondary"}
                onClick={() => setPanel(k)}>{label}</button>
            ))}
          </div>
          <div style={{ marginTop: ".75rem" }}>
            {panel === "node" ? (
              current ? (
                <NodePanel key={current.id} node={current} nodes={nodes} edges={edges} type={typeByName[current.data.spec.type]}
                  errors={errorsByNode[current.id] || []} index={nodes.findIndex((n) => n.id === current.id)}
                  allErrors={validation.errors} updateSpec={updateSpec} renameNode={renameNode} connectTo={connectTo}
                  suggestions={upstreamSuggestions(current.id)} />
              ) : <p className="muted">{selected.length > 1 ? `${selected.length} nodes selected.` : "Select a node to edit its settings."}</p>
            ) : null}
            {panel === "workflow" ? <WorkflowPanel meta={meta} isNew={!slug} onChange={(m) => { remember(); setMeta(m); }} /> : null}
            {panel === "versions" ? <VersionsPanel slug={slug} versions={versions} current={definition}
              onLoad={(d) => importJson(JSON.stringify(d))} /> : null}
            {panel === "json" ? <JsonPanel definition={definition} onImport={importJson} onExport={exportJson} /> : null}
          </div>
        </aside>
      </div>
      {problems.length || validation.warnings?.length ? (
        <ul className="problems" aria-label="Problems">
          {problems.map((p, i) => (
            <li key={i} data-problem-node={p.node || ""} data-problem-edge={p.edge || ""}>
              <button type="button" className="link" onClick={() => {
                if (p.node) {
                  setNodes((ns) => ns.map((n) => ({ ...n, selected: n.id === p.node })));
                  setPanel("node");
                }
              }}>{p.node ? `${p.node}: ` : p.edge ? `${p.edge}: ` : ""}{p.message}</button>
            </li>
          ))}
          {(validation.warnings || []).map((p, i) => <li key={`w${i}`} className="warning">⚠ {p.message}</li>)}
        </ul>
      ) : null}
      {dialog?.kind === "save" ? <SaveDialog onClose={() => setDialog(null)} onSave={save} valid={validation.valid} /> : null}
      {dialog?.kind === "run" ? <RunDialog slug={slug} schema={meta.inputs} onClose={() => setDialog(null)} /> : null}
      {dialog?.kind === "keys" ? <KeysDialog onClose={() => setDialog(null)} /> : null}
    </div>
  );
}

function NodePanel({ node, nodes, edges, type, errors, index, allErrors, updateSpec, renameNode, connectTo, suggestions }) {
  const spec = node.data.spec;
  const [idText, setIdText] = useState(spec.id);
  const fErrors = fieldErrors(allErrors, index);
  const targets = nodes.filter((n) => n.id !== spec.id && !edges.some((e) => e.source === spec.id && e.target === n.id));
  const [target, setTarget] = useState("");
  const other = errors.filter((e) => !Object.values(fErrors).includes(e.message));
  return (
    <div data-panel-node={spec.id}>
      <h2>{type?.label || spec.type}</h2>
      {type?.description ? <p className="muted" style={{ fontSize: 12 }}>{type.description.split("\n")[0]}</p> : null}
      <div className="field">
        <label htmlFor="node-id">Id</label>
        <input id="node-id" type="text" value={idText} onChange={(e) => setIdText(e.target.value)}
          onBlur={() => { if (!renameNode(spec.id, idText)) setIdText(spec.id); }} />
      </div>
      <div className="field">
        <label htmlFor="node-name">Name</label>
        <input id="node-name" type="text" value={spec.name || ""} onChange={(e) => updateSpec(spec.id, { name: e.target.value || undefined })} />
      </div>
      <h2>Config</h2>
      <SchemaForm schema={type?.config_schema} value={spec.config} idPrefix={`cfg-${spec.id}`} errors={fErrors}
        suggestions={suggestions} onChange={(config) => updateSpec(spec.id, { config })} />
      {other.length ? <ul className="errors">{other.map((e, i) => <li key={i}>{e.message}</li>)}</ul> : null}
      <details>
        <summary>Queue, retries, timeout, trigger rule</summary>
        <div className="field"><label htmlFor="node-queue">Queue</label>
          <input id="node-queue" type="text" placeholder={type?.default_queue} value={spec.queue || ""}
            onChange={(e) => updateSpec(spec.id, { queue: e.target.value || undefined })} /></div>
        <div className="field"><label htmlFor="node-attempts">Max attempts</label>
          <input id="node-attempts" type="text" inputMode="numeric" value={spec.retry?.max_attempts ?? ""}
            onChange={(e) => {
              const n = parseInt(e.target.value, 10);
              const retry = { ...(spec.retry || {}) };
              if (Number.isNaN(n)) delete retry.max_attempts; else retry.max_attempts = n;
              updateSpec(spec.id, { retry });
            }} /></div>
        <div className="field"><label htmlFor="node-timeout">Timeout (s)</label>
          <input id="node-timeout" type="text" inputMode="decimal" value={spec.timeout_s ?? ""}
            onChange={(e) => updateSpec(spec.id, { timeout_s: e.target.value ? Number(e.target.value) : undefined })} /></div>
        <div className="field"><label htmlFor="node-trigger">Trigger rule</label>
          <select id="node-trigger" value={spec.trigger_rule || "all_success"}
            onChange={(e) => updateSpec(spec.id, { trigger_rule: e.target.value === "all_success" ? undefined : e.target.value })}>
            <option value="all_success">all_success</option><option value="all_done">all_done</option><option value="one_success">one_success</option>
          </select></div>
      </details>
      <h2>Connections</h2>
      <div className="field">
        <label htmlFor="node-connect">Connect to</label>
        <div style={{ display: "flex", gap: ".4rem" }}>
          <select id="node-connect" value={target} onChange={(e) => setTarget(e.target.value)}>
            <option value="">—</option>
            {targets.map((n) => <option key={n.id} value={n.id}>{n.id}</option>)}
          </select>
          <button type="button" className="secondary" disabled={!target} onClick={() => { connectTo(spec.id, target); setTarget(""); }}>Connect</button>
        </div>
      </div>
      <p className="muted" style={{ fontSize: 12 }}>
        Upstream: {edges.filter((e) => e.target === spec.id).map((e) => e.source).join(", ") || "none"} ·
        downstream: {edges.filter((e) => e.source === spec.id).map((e) => e.target).join(", ") || "none"}
      </p>
    </div>
  );
}

function WorkflowPanel({ meta, isNew, onChange }) {
  const [inputsText, setInputsText] = useState(meta.inputs ? JSON.stringify(meta.inputs, null, 2) : "");
  const [bad, setBad] = useState(null);
  return (
    <div>
      <div className="field"><label htmlFor="wf-name">Name</label>
        <input id="wf-name" type="text" value={meta.name}
          onChange={(e) => onChange({ ...meta, name: e.target.value, slug: isNew && (!meta.slug || meta.slug === slugify(meta.name)) ? slugify(e.target.value) : meta.slug })} /></div>
      <div className="field"><label htmlFor="wf-slug">Slug</label>
        <input id="wf-slug" type="text" value={meta.slug} disabled={!isNew} onChange={(e) => onChange({ ...meta, slug: e.target.value })} />
        <div className="help">Stable identifier; it cannot change after the first save.</div></div>
      <div className="field"><label htmlFor="wf-description">Description</label>
        <textarea id="wf-description" rows={3} value={meta.description} onChange={(e) => onChange({ ...meta, description: e.target.value })} /></div>
      <div className="field"><label htmlFor="wf-inputs">Input schema (JSON Schema)</label>
        <textarea id="wf-inputs" rows={8} value={inputsText} placeholder='{"type": "object", "properties": {"url": {"type": "string"}}}'
          onChange={(e) => {
            setInputsText(e.target.value);
            if (!e.target.value.trim()) { setBad(null); onChange({ ...meta, inputs: undefined }); return; }
            try { onChange({ ...meta, inputs: JSON.parse(e.target.value) }); setBad(null); } catch (err) { setBad(err.message); }
          }} />
        {bad ? <div className="field-error">Not valid JSON yet: {bad}</div> : null}</div>
    </div>
  );
}

function nodeDiff(from, to) {
  const a = Object.fromEntries((from.nodes || []).map((n) => [n.id, n]));
  const b = Object.fromEntries((to.nodes || []).map((n) => [n.id, n]));
  const strip = (n) => JSON.stringify({ ...n, position: undefined });
  return {
    added: Object.keys(b).filter((k) => !a[k]),
    removed: Object.keys(a).filter((k) => !b[k]),
    changed: Object.keys(b).filter((k) => a[k] && strip(a[k]) !== strip(b[k])),
  };
}

function VersionsPanel({ slug, versions, current, onLoad }) {
  const [diff, setDiff] = useState(null);
  if (!slug) return <p className="muted">Save the workflow to start its version history.</p>;
  const compare = async (n) => {
    const v = await get(`/api/workflows/${slug}/versions/${n}/`);
    setDiff({ number: n, definition: v.definition, ...nodeDiff(v.definition, current) });
  };
  return (
    <div>
      <ol className="versions" reversed>
        {versions.map((v) => (
          <li key={v.number} data-version={v.number}>
            <strong>v{v.number}</strong> <span className="muted">{new Date(v.created_at).toLocaleString()} {v.created_by ? `· ${v.created_by}` : ""}</span>
            {v.note ? <div>{v.note}</div> : null}
            <button type="button" className="link" onClick={() => compare(v.number)}>Compare with the editor</button>
          </li>
        ))}
      </ol>
      {diff ? (
        <div className="card" aria-label={`Changes since v${diff.number}`}>
          <h2>Editor vs v{diff.number}</h2>
          <p>Added: {diff.added.join(", ") || "none"}</p>
          <p>Removed: {diff.removed.join(", ") || "none"}</p>
          <p>Changed: {diff.changed.join(", ") || "none"}</p>
          <button type="button" className="secondary" onClick={() => onLoad(diff.definition)}>Load v{diff.number} into the editor</button>
        </div>
      ) : null}
    </div>
  );
}

function JsonPanel({ definition, onImport, onExport }) {
  const [text, setText] = useState("");
  return (
    <div>
      <button type="button" className="secondary" onClick={onExport}>Export JSON</button>
      <div className="field" style={{ marginTop: ".75rem" }}>
        <label htmlFor="import-file">Import from a file</label>
        <input id="import-file" type="file" accept="application/json,.json"
          onChange={async (e) => { const f = e.target.files[0]; if (f) onImport(await f.text()); }} />
      </div>
      <div className="field">
        <label htmlFor="import-text">…or paste a definition</label>
        <textarea id="import-text" rows={8} value={text} onChange={(e) => setText(e.target.value)} />
        <button type="button" className="secondary" disabled={!text.trim()} onClick={() => onImport(text) && setText("")}>Import</button>
      </div>
      <details><summary>Current definition</summary><pre className="json">{JSON.stringify(definition, null, 2)}</pre></details>
    </div>
  );
}

function SaveDialog({ onClose, onSave, valid }) {
  const [note, setNote] = useState("");
  const [busy, setBusy] = useState(false);
  return (
    <Dialog title="Save as a new version" onClose={onClose} actions={<>
      <button type="button" className="secondary" onClick={onClose}>Cancel</button>
      <button type="button" disabled={busy} onClick={async () => { setBusy(true); const ok = await onSave(note); setBusy(false); if (ok) onClose(); }}>Save version</button></>}>
      {!valid ? <p className="warn-text">The workflow has problems; saving will fail until they are fixed.</p> : null}
      <label htmlFor="save-note">Note</label>
      <input id="save-note" type="text" value={note} onChange={(e) => setNote(e.target.value)} placeholder="What changed?" />
    </Dialog>
  );
}

function RunDialog({ slug, schema, onClose }) {
  const [inputs, setInputs] = useState({});
  const [problem, setProblem] = useState(null);
  const [busy, setBusy] = useState(false);
  const start = async () => {
    setBusy(true);
    try {
      const run = await post(`/api/workflows/${slug}/runs/`, { inputs });
      window.location.href = `/runs/${run.id}/`;
    } catch (err) {
      setProblem(err.details?.length ? err.details.map((d) => d.message || String(d)).join("; ") : err.message);
      setBusy(false);
    }
  };
  return (
    <Dialog title={`Run ${slug}`} onClose={onClose} actions={<>
      <button type="button" className="secondary" onClick={onClose}>Cancel</button>
      <button type="button" disabled={busy} onClick={start}>Start run</button></>}>
      {schema && schema.properties && Object.keys(schema.properties).length
        ? <SchemaForm schema={schema} value={inputs} onChange={setInputs} idPrefix="run-input" />
        : <p className="muted">This workflow takes no inputs.</p>}
      {problem ? <p className="errors" role="alert">{problem}</p> : null}
    </Dialog>
  );
}

function KeysDialog({ onClose }) {
  const keys = [
    ["Ctrl+Z", "Undo"], ["Ctrl+Shift+Z / Ctrl+Y", "Redo"], ["Ctrl+C / Ctrl+V", "Copy / paste selected nodes"],
    ["Delete / Backspace", "Delete selected nodes and edges"], ["Ctrl+S", "Save as a new version"],
    ["Shift+L", "Auto-layout"], ["Tab, Enter", "Move between nodes and select one (canvas)"],
    ["Arrow keys", "Move the selected node"], ["?", "This list"],
  ];
  return (
    <Dialog title="Keyboard shortcuts" onClose={onClose} actions={<button type="button" onClick={onClose}>Close</button>}>
      <table className="list compact"><tbody>
        {keys.map(([k, what]) => <tr key={k}><td><span className="kbd">{k}</span></td><td>{what}</td></tr>)}
      </tbody></table>
    </Dialog>
  );
}
