// Start a run: a form generated from the workflow's input schema, checked against that schema in
// the browser (ajv, the same JSON Schema draft as the server) before Start run is enabled.
import Ajv2020 from "ajv/dist/2020.js";
import { useMemo, useState } from "react";
import { post } from "./api.js";
import { Dialog } from "./dialogs.jsx";
import { SchemaForm } from "./SchemaForm.jsx";

const ajv = new Ajv2020({ allErrors: true, strict: false, validateFormats: false });

// "`documents`: must NOT have more than 4 items"; a missing required field is named as such.
export function inputProblems(schema, inputs) {
  if (!schema || typeof schema !== "object") return {};
  let validate;
  try {
    validate = ajv.compile(schema);
  } catch (err) {
    return { "": `the workflow's input schema cannot be checked: ${err.message}` };
  }
  if (validate(inputs)) return {};
  const out = {};
  for (const e of validate.errors || []) {
    const path = e.instancePath.split("/").filter(Boolean);
    const field = e.keyword === "required" ? e.params.missingProperty : path[0] || "";
    const where = e.keyword === "required" ? [] : path.slice(1);
    const text = e.keyword === "required" ? "is required" : `${where.length ? where.join(".") + ": " : ""}${e.message}`;
    out[field] = out[field] ? `${out[field]}; ${text}` : text;
  }
  return out;
}

export function RunDialog({ slug, schema, onClose, initial = {}, title }) {
  const [inputs, setInputs] = useState(initial);
  const [jsonErrors, setJsonErrors] = useState({});
  const [problem, setProblem] = useState(null);
  const [busy, setBusy] = useState(false);
  const hasFields = !!(schema && schema.properties && Object.keys(schema.properties).length);
  const problems = useMemo(() => inputProblems(schema, inputs), [schema, inputs]);
  const errors = { ...problems };
  for (const [name, msg] of Object.entries(jsonErrors)) if (msg) errors[name] = `not valid JSON yet: ${msg}`;
  const blocking = Object.entries(errors);
  const start = async () => {
    if (blocking.length) return;
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
    <Dialog title={title || `Run ${slug}`} onClose={onClose} actions={<>
      <button type="button" className="secondary" onClick={onClose}>Cancel</button>
      <button type="button" disabled={busy || blocking.length > 0} onClick={start}
        aria-describedby={blocking.length ? "run-input-problems" : undefined}>Start run</button></>}>
      {hasFields ? (
        <>
          <p className="muted">Fields marked <span aria-hidden="true">*</span> are required.</p>
          <SchemaForm schema={schema} value={inputs} onChange={setInputs} idPrefix="run-input" errors={problems}
            onJsonError={(name, msg) => setJsonErrors((j) => ({ ...j, [name]: msg }))} />
        </>
      ) : <p className="muted">This workflow takes no inputs.</p>}
      {blocking.length ? (
        <div id="run-input-problems" className="errors" data-run-problems={blocking.length}>
          The run cannot start until the inputs are valid:
          <ul>{blocking.map(([name, msg]) => <li key={name}>{name ? <><code>{name}</code>: </> : null}{msg}</li>)}</ul>
        </div>
      ) : null}
      {problem ? <p className="errors" role="alert">{problem}</p> : null}
    </Dialog>
  );
}
