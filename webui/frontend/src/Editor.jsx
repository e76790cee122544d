// The workflow editor: canvas, live validation from /api/workflows/validate/, undo/redo,
// copy/paste, auto-layout, save, import/export and Run. The palette, the side panels (config
// generated from each node type's JSON Schema, versions compared field by field, JSON, Test step) and the dialogs
// live in their own modules.
import {
  Background, Controls, MiniMap, ReactFlow, ReactFlowProvider, addEdge, applyEdgeChanges, applyNodeChanges,
  useReactFlow,
} from "@xyflow/react";
import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { ApiError, get, post, put } from "./api.js";
import { buildDefinition, otherFields, slugify, toRfEdge, toRfNode } from "./definition.js";
import { Ticks } from "./dialogs.jsx";
import { KeysDialog, RunDialog, SaveDialog } from "./EditorDialogs.jsx";
import { JsonPanel, NodePanel, VersionsPanel, WorkflowPanel } from "./EditorPanels.jsx";
import { EditNode, useTheme } from "./graph.jsx";
import { autoLayout } from "./layout.js";
import { Palette } from "./Palette.jsx";
import { schemaDefaults } from "./SchemaForm.jsx";

const nodeTypes = { edit: EditNode };

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
    inputs: initial.inputs, other: otherFields(initial) });
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
      else if (mod && key === "s") { e.preventDefault(); openSave(); }
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
    setMeta({ name: d.name || meta.name, slug: slug || d.slug || meta.slug, description: d.description || "", inputs: d.inputs,
      other: otherFields(d) });
    const rfNodes = d.nodes.map((n) => toRfNode({ ...n, position: n.position || { x: 0, y: 0 } }));
    const rfEdges = (d.edges || []).map(toRfEdge);
    setNodes(rfNodes);
    setEdges(rfEdges);
    setNotice({ kind: "ok", text: `Imported ${d.nodes.length} node(s); not saved yet.` });
    // Nodes without a position are placed by the auto-layout (not in one row, where edges run behind nodes).
    const unplaced = new Set(d.nodes.filter((n) => !n.position).map((n) => n.id));
    if (unplaced.size) {
      autoLayout(rfNodes, rfEdges).then((pos) => {
        setNodes((ns) => ns.map((n) => (unplaced.has(n.id) && pos[n.id] ? { ...n, position: pos[n.id] } : n)));
        setTimeout(() => flow.fitView({ maxZoom: 1 }), 50);
      });
    } else {
      setTimeout(() => flow.fitView({ maxZoom: 1 }), 50);
    }
    return true;
  };

  // Every node upstream of `id` (its ancestors), nearest first.
  const ancestors = (id) => {
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
    return [...seen];
  };
  // What a node's templates can name: its ancestors, its direct predecessors, the input schema's fields.
  const templateScope = (id) => ({ slug, upstream: ancestors(id).sort(),
    direct: edges.filter((e) => e.target === id).map((e) => e.source), inputKeys: Object.keys(meta.inputs?.properties || {}) });

  const problems = validation.errors;
  // Save is refused while the server would refuse it: the reason is the button's title and description.
  const saveBlocked = !canDesign ? "needs the designer role"
    : !validation.valid ? `Fix the ${problems.length === 1 ? "problem" : `${problems.length} problems`} listed under the canvas first: `
      + "the server refuses to save a workflow that does not validate."
      : null;
  const openSave = () => {
    if (saveBlocked) setNotice({ kind: "error", text: `Not saved: ${saveBlocked}` });
    else setDialog({ kind: "save" });
  };
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
        <button type="button" disabled={Boolean(saveBlocked)} title={saveBlocked || "Save as a new version (Ctrl+S)"}
          aria-describedby={saveBlocked ? "save-blocked" : undefined} onClick={openSave}>Save…</button>
        {saveBlocked ? <span id="save-blocked" className="visually-hidden">{saveBlocked}</span> : null}
        <button type="button" disabled={!slug || dirty || !canOperate}
          title={!slug || dirty ? "save first" : canOperate ? "Start a run" : "needs the operator role"}
          onClick={() => setDialog({ kind: "run" })}>Run…</button>
      </div>
      {notice ? <div className={`banner ${notice.kind === "error" ? "error" : "ok"}`} role="status">{notice.text}</div> : null}
      <div className="editbody">
        <Palette types={types} onAdd={addNode} />
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
                  scope={templateScope(current.id)}
                  test={{ slug, upstream: ancestors(current.id).sort(), inputsSchema: meta.inputs, canDesign }} />
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
              }}>{p.node && !String(p.message).startsWith(`node \`${p.node}\``) ? `${p.node}: ` : p.edge && !String(p.message).startsWith(`edge ${p.edge}`)
                ? `${p.edge}: ` : ""}<Ticks text={p.message} /></button>
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
