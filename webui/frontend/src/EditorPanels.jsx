// The editor's side panels: the selected node's settings, the workflow's name and input schema,
// its versions compared field by field with the editor, and JSON import/export.
import { useState } from "react";
import { get, post } from "./api.js";
import { slugify } from "./definition.js";
import { Ticks, withoutNode } from "./dialogs.jsx";
import { NodeTest } from "./NodeTest.jsx";
import { SchemaForm } from "./SchemaForm.jsx";
import { FieldChanges } from "./VersionChoice.jsx";

function fieldErrors(errors, index, id) {
  // "nodes[3].config.url" -> {url: message}; "node `x`: `function` is required" at nodes[3].config too.
  const out = {};
  for (const e of errors) {
    const path = e.path || "";
    const m = path.match(/^nodes\[(\d+)\]\.config(?:\.([A-Za-z0-9_]+))?/);
    if (!m || Number(m[1]) !== index) continue;
    const message = withoutNode(e.message, id);
    let field = m[2];
    if (!field) {
      const req = message.match(/^`([A-Za-z0-9_]+)` is required$/);
      if (req) field = req[1];
    }
    if (field && !out[field]) out[field] = message;
  }
  return out;
}

export function NodePanel({ node, nodes, edges, type, errors, index, allErrors, updateSpec, renameNode, connectTo, scope,
  test }) {
  const spec = node.data.spec;
  const [idText, setIdText] = useState(spec.id);
  const fErrors = fieldErrors(allErrors, index, spec.id);
  const targets = nodes.filter((n) => n.id !== spec.id && !edges.some((e) => e.source === spec.id && e.target === n.id));
  const [target, setTarget] = useState("");
  const other = errors.filter((e) => !Object.values(fErrors).includes(withoutNode(e.message, spec.id)));
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
        scope={scope} onChange={(config) => updateSpec(spec.id, { config })} />
      {other.length ? <ul className="errors">{other.map((e, i) => <li key={i}><Ticks text={withoutNode(e.message, spec.id)} /></li>)}</ul> : null}
      <NodeTest spec={spec} type={type} problems={errors.length} {...test} />
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

export function WorkflowPanel({ meta, isNew, onChange }) {
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

const names = (list) => list.map((c) => c.node_id).join(", ") || "none";

function CompareResult({ diff }) {
  const { workflow, nodes, edges } = diff;
  const by = (kind) => nodes.filter((c) => c.change === kind);
  if (!workflow.length && !nodes.length && !edges.length) return <p>No changes since v{diff.version}.</p>;
  return (
    <>
      <p>Added: {names(by("added"))} · Removed: {names(by("removed"))} · Changed: {names(by("changed"))}</p>
      {workflow.length ? (
        <><h3>Workflow</h3><div data-changed-workflow><FieldChanges fields={workflow} /></div></>
      ) : null}
      {nodes.length ? (
        <><h3>Nodes</h3>
          <ul className="changes">
            {nodes.map((c) => (
              <li key={c.node_id} data-changed-node={c.node_id}>
                <code>{c.node_id}</code> {c.change}
                <FieldChanges fields={c.fields} />
              </li>
            ))}
          </ul></>
      ) : null}
      {edges.length ? (
        <><h3>Edges</h3>
          <ul className="changes">
            {edges.map((c) => (
              <li key={c.edge} data-changed-edge={c.edge}>
                <code>{c.edge}</code> {c.change}
                <FieldChanges fields={c.fields} />
              </li>
            ))}
          </ul></>
      ) : null}
    </>
  );
}

export function VersionsPanel({ slug, versions, current, onLoad }) {
  const [diff, setDiff] = useState(null);
  const [failed, setFailed] = useState(null);
  if (!slug) return <p className="muted">Save the workflow to start its version history.</p>;
  const compare = async (n) => {
    setFailed(null);
    try {
      const [v, changes] = await Promise.all([get(`/api/workflows/${slug}/versions/${n}/`),
        post(`/api/workflows/${slug}/versions/${n}/compare/`, { definition: current })]);
      setDiff({ ...changes, definition: v.definition });
    } catch (err) {
      setDiff(null);
      setFailed(`Could not compare with v${n}: ${err.message}`);
    }
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
      {failed ? <p className="field-error" role="alert">{failed}</p> : null}
      {diff ? (
        <div className="card version-compare" aria-label={`Changes since v${diff.version}`}>
          <h2>Editor vs v{diff.version}</h2>
          <CompareResult diff={diff} />
          <button type="button" className="secondary" onClick={() => onLoad(diff.definition)}>Load v{diff.version} into the editor</button>
        </div>
      ) : null}
    </div>
  );
}

export function JsonPanel({ definition, onImport, onExport }) {
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
