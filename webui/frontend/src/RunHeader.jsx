// The run view's header: how the run started and by whom, its version, times, inputs and output,
// token and cost totals, and the run-level actions Run again and Retry failed steps.
import { useState } from "react";
import { Dialog, JsonView } from "./dialogs.jsx";
import { RunDialog } from "./RunDialog.jsx";
import { StatusBadge, formatDuration } from "./status.jsx";
import { VersionChoice, useVersionCompare } from "./VersionChoice.jsx";

const when = (iso) => (iso ? new Date(iso).toLocaleString() : "—");

function descendants(edges, ids) {
  const out = new Map();
  for (const e of edges) (out.get(e.source) || out.set(e.source, []).get(e.source)).push(e.target);
  const seen = new Set();
  const stack = [...ids];
  while (stack.length) {
    for (const t of out.get(stack.pop()) || []) {
      if (!seen.has(t)) {
        seen.add(t);
        stack.push(t);
      }
    }
  }
  return seen;
}

// The failed steps and the steps they blocked, in definition order: what "Retry failed steps" runs again.
export function retryFailedPreview(store) {
  const failed = store.definition.nodes.map((n) => n.id).filter((id) => store.steps[id]?.status === "failed");
  const below = descendants(store.definition.edges, failed);
  const again = new Set(failed);
  for (const id of below) {
    if (["upstream_failed", "cancelled", "pending", "failed"].includes(store.steps[id]?.status)) again.add(id);
  }
  return store.definition.nodes.map((n) => n.id).filter((id) => again.has(id));
}

function RetryFailedDialog({ store, runId, act, onClose }) {
  const preview = retryFailedPreview(store);
  const [version, setVersion] = useState("run");
  const [busy, setBusy] = useState(false);
  const compare = useVersionCompare(runId);
  return (
    <Dialog title="Retry failed steps?" onClose={onClose} actions={<>
      <button type="button" className="secondary" onClick={onClose}>Close</button>
      <button type="button" disabled={busy || !preview.length} onClick={async () => {
        setBusy(true);
        const ok = await act("Retry failed steps", `/api/runs/${runId}/retry-failed/`, { version }, preview);
        setBusy(false);
        if (ok) onClose();
      }}>Confirm retry</button></>}>
      <p>These steps will run ({preview.length}):</p>
      <ul className="preview" aria-label="Steps that will run">
        {preview.map((id) => (
          <li key={id} data-preview-node={id}><code>{id}</code> <StatusBadge status={store.steps[id]?.status} /></li>
        ))}
      </ul>
      <p className="muted">Every other step keeps its status and output.</p>
      <VersionChoice compare={compare} value={version} onChange={setVersion} nodeIds={preview} />
    </Dialog>
  );
}

export function RunHeader({ store, runId, canOperate, act, now }) {
  const run = store.run;
  const [dialog, setDialog] = useState(null);
  const trigger = run.trigger || {};
  // A run under run concurrency may never have started (it waits, or cancel_newest cancelled it): no start then.
  const started = run.started_at || (run.concurrency_key != null ? null : run.created_at);
  const end = run.finished_at ? Date.parse(run.finished_at) : run.status === "running" ? now : null;
  const usage = run.usage || {};
  const anyFailed = Object.values(store.steps).some((s) => s.status === "failed");
  const disabledTitle = canOperate ? undefined : "needs the operator role";
  const who = run.created_by || trigger.user || "";
  return (
    <section className="runhead" aria-label="Run summary">
      <dl className="runfacts">
        <div data-fact="trigger"><dt>Trigger</dt><dd>{trigger.kind || "manual"}{who ? <> by <strong>{who}</strong></> : null}</dd></div>
        <div data-fact="version"><dt>Version</dt><dd>
          <a href={`/api/workflows/${run.workflow}/versions/${run.version}/`} title={`the definition of v${run.version}`}>v{run.version}</a>
          {run.current_version && run.current_version !== run.version ? <span className="muted"> (current: v{run.current_version})</span> : null}
        </dd></div>
        <div data-fact="started"><dt>Started</dt><dd>{when(started)}</dd></div>
        <div data-fact="finished"><dt>Finished</dt><dd>{when(run.finished_at)}</dd></div>
        <div data-fact="duration"><dt>Duration</dt><dd>{started && end ? formatDuration((end - Date.parse(started)) / 1000) : "—"}</dd></div>
        <div data-fact="tokens"><dt>Tokens</dt><dd>{(usage.total_tokens || 0).toLocaleString()}{usage.llm_calls ? <span className="muted"> in {usage.llm_calls} model call(s)</span> : null}</dd></div>
        <div data-fact="cost"><dt>Cost</dt><dd>{usage.cost_usd ? `$${usage.cost_usd.toFixed(4)}` : "$0"}</dd></div>
        {run.priority ? <div data-fact="priority"><dt>Priority</dt><dd>{run.priority}</dd></div> : null}
        {run.durability === "relaxed" ? (
          <div data-fact="durability"><dt>Durability</dt><dd title="step records commit with synchronous_commit off">relaxed</dd></div>
        ) : null}
      </dl>
      <div className="runhead-io">
        <details data-run-inputs><summary>Inputs</summary><JsonView value={run.inputs} label="Run inputs" /></details>
        <details data-run-output><summary>Output</summary><JsonView value={run.outputs} label="Run output" /></details>
        <div className="grow" />
        <button type="button" className="secondary" disabled={!canOperate} title={disabledTitle}
          onClick={() => setDialog("again")}>Run again</button>
        {anyFailed && run.status !== "cancelled" ? (
          <button type="button" disabled={!canOperate} title={disabledTitle}
            onClick={() => setDialog("retry-failed")}>Retry failed steps</button>
        ) : null}
      </div>
      {dialog === "again" ? (
        <RunDialog slug={run.workflow} schema={store.definition.inputs} initial={run.inputs || {}}
          title={`Run ${run.workflow} again`} onClose={() => setDialog(null)} />
      ) : null}
      {dialog === "retry-failed" ? (
        <RetryFailedDialog store={store} runId={runId} act={act} onClose={() => setDialog(null)} />
      ) : null}
    </section>
  );
}
