// Retry and Rerun after a fix: run the steps again on the run's version or on the workflow's current
// one, showing the changes to the steps that will run again (GET /api/runs/<id>/version-compare/).
import { useEffect, useState } from "react";
import { get } from "./api.js";

const MAX_VALUE = 300;
const unset = (v) => v === null || v === undefined; // the field is missing on that side
function short(v) {
  const text = typeof v === "string" ? v : JSON.stringify(v);
  return text.length > MAX_VALUE ? `${text.slice(0, MAX_VALUE)}…` : text;
}

// Changed fields from the API's comparison (engine.core.definition_diff): the field's path, old → new.
export function FieldChanges({ fields }) {
  if (!fields.length) return null;
  return (
    <ul>
      {fields.map((f) => (
        <li key={f.field} data-changed-field={f.field}>
          <code>{f.field}</code>: {unset(f.before) ? <i>not set</i> : <del>{short(f.before)}</del>} →{" "}
          {unset(f.after) ? <i>not set</i> : <ins>{short(f.after)}</ins>}
        </li>
      ))}
    </ul>
  );
}

export function useVersionCompare(runId) {
  const [compare, setCompare] = useState(null);
  useEffect(() => {
    get(`/api/runs/${runId}/version-compare/`).then(setCompare).catch(() => setCompare(null));
  }, [runId]);
  return compare;
}

export function VersionChoice({ compare, value, onChange, nodeIds }) {
  if (!compare) return null;
  const { run_version: runV, current_version: curV } = compare;
  if (runV === curV) return <p className="muted" data-version-choice="same">The run is on the current version (v{runV}).</p>;
  const again = new Set(nodeIds || []);
  const changes = compare.changes.filter((c) => again.has(c.node_id));
  return (
    <fieldset className="version-choice" data-version-choice="choose">
      <legend>Version to run</legend>
      <label className="check">
        <input type="radio" name="repeat-version" value="run" checked={value === "run"} onChange={() => onChange("run")} />
        the run's version (v{runV})
      </label>
      <label className="check">
        <input type="radio" name="repeat-version" value="current" checked={value === "current"}
          disabled={!compare.movable} onChange={() => onChange("current")} />
        the current version (v{curV})
      </label>
      {!compare.movable ? (
        <p className="warn-text" data-version-problems>
          The run cannot move to v{curV}: {compare.problems.join("; ")}. Start a new run to use it.
        </p>
      ) : null}
      {changes.length ? (
        <div data-version-changes>
          <p>Changes in v{curV} to the steps that will run again:</p>
          <ul className="changes">
            {changes.map((c) => (
              <li key={c.node_id} data-changed-node={c.node_id}>
                <code>{c.node_id}</code> {c.change}
                <FieldChanges fields={c.fields} />
              </li>
            ))}
          </ul>
        </div>
      ) : <p className="muted">v{curV} changes none of the steps that will run again.</p>}
    </fieldset>
  );
}
