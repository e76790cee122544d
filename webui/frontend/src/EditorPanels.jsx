// The editor's side panels: the selected node's settings, the workflow's name and input schema,
// its versions with a node diff, and JSON import/export.
import { useState } from "react";
import { get } from "./api.js";
import { slugify } from "./definition.js";
import { Ticks, withoutNode } from "./dialogs.jsx";
import { SchemaForm } from "./SchemaForm.jsx";

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

export function NodePanel({ node, nodes, edges, type, errors, index, allErrors, updateSpec, renameNode, connectTo, suggestions }) {
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
        suggestions={suggestions} onChange={(config) => updateSpec(spec.id, { config })} />
      {other.length ? <ul className="errors">{other.map((e, i) => <li key={i}><Ticks text={withoutNode(e.message, spec.id)} /></li>)}</ul> : null}
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

export function VersionsPanel({ slug, versions, current, onLoad }) {
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
