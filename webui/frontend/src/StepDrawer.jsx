// The step drawer: status, lease and heartbeat, the operator actions, and tabs with the overview
// (error, output, rendered inputs), attempts, live logs and the journal.
import { useEffect, useRef, useState } from "react";
import { get } from "./api.js";
import { JsonView } from "./dialogs.jsx";
import { ACTIVE, SETTLEABLE, StatusBadge, TERMINAL, formatDuration } from "./status.jsx";
import { Conversation } from "./Conversation.jsx";
import { Attempts, Inputs, Journal, Logs } from "./StepPanels.jsx";
import { MapItems, itemOf } from "./MapItems.jsx";
import { mapCounts } from "./MapProgress.jsx";

function leaseInfo(step, now) {
  if (step.status !== "running" || !step.lease_expires_at) return null;
  const left = (Date.parse(step.lease_expires_at) - now) / 1000;
  return left;
}

// A wait_for_event step: which event (name and correlation key) it waits for, and what its timeout does.
function EventWait({ detail, nodeId }) {
  return (
    <div className="banner info" data-event-wait={nodeId}>
      <strong>Waiting for the event</strong> <code data-event-name>{detail.event || "?"}</code>
      {" "}with key <code data-event-key>{detail.key === "" || detail.key == null ? "(empty)" : detail.key}</code>.
      <div className="muted">
        Sent to <code>POST /api/events/</code> as {"{"}"name": "{detail.event}", "key": "{detail.key}", ...{"}"}; its
        payload becomes this step's output.
        {detail.timeout_s ? <> Without it within {detail.timeout_s} s the step {detail.timeout_outcome === "succeed" ? "succeeds" : "fails"}.</> : null}
      </div>
    </div>
  );
}

// A call that is not safe to repeat was cut off mid-way: say which, and offer both ways out.
function InDoubt({ step, journal, canOperate, setDialog, nodeId }) {
  const detail = step.waiting_detail || {};
  const key = detail.key || "";
  const entry = journal.find((j) => j.key === key);
  const disabledTitle = canOperate ? undefined : "needs the operator role";
  return (
    <div className="banner warn in-doubt" data-in-doubt={key}>
      <strong>In doubt:</strong> the call <code data-in-doubt-key>{key || "?"}</code> is not safe to repeat, and it
      was started but never recorded as finished
      {entry?.started_at ? <> (started {new Date(entry.started_at).toLocaleString()}, attempt {entry.attempt})</> : null}.
      It may or may not have taken effect in the outside system.
      {detail.message ? <div className="muted" data-in-doubt-message>{detail.message}</div> : null}
      <p>Check the outside system, then choose:</p>
      <ul className="resolutions">
        <li>
          <button type="button" disabled={!canOperate} title={disabledTitle}
            onClick={() => setDialog({ kind: "retry", nodeId })}>Retry</button>{" "}
          anyway: the call runs again (if it did take effect, it takes effect twice).
        </li>
        <li>
          <button type="button" className="secondary" disabled={!canOperate} title={disabledTitle}
            onClick={() => setDialog({ kind: "complete", nodeId })}>Mark succeeded…</button>{" "}
          with the output the outside system really produced; the call is not made again.
        </li>
      </ul>
    </div>
  );
}

// Who approved or rejected a step, when, and with what comment (the approval node's output).
function approvalDecision(spec, detail, step) {
  const out = detail?.output;
  if (!out || typeof out !== "object" || typeof out.approved !== "boolean" || !("by" in out)) return null;
  if (!["succeeded", "failed"].includes(step.status) || detail.status !== step.status) return null;
  const when = detail.finished_at || step.finished_at;
  return (
    <section className={`decision ${out.approved ? "approved" : "rejected"}`} data-decision={out.approved ? "approved" : "rejected"}>
      <h3>Decision</h3>
      <p>
        <strong>{out.approved ? "Approved" : "Rejected"}</strong> by <strong data-decided-by>{out.by || "an operator"}</strong>
        {when ? <> at <time dateTime={when}>{new Date(when).toLocaleString()}</time></> : null}
        {out.comment ? <>: “{out.comment}”</> : null}
      </p>
    </section>
  );
}

export function StepDrawer({ store, version, nodeId, now, canOperate, onClose, onSelect, setDialog, act }) {
  const step = store.steps[nodeId];
  // An item of a mapped node (``each[3]``) is a step of its own, defined by its node.
  const item = itemOf(nodeId);
  const spec = store.definition.nodes.find((n) => n.id === (item ? item[0] : nodeId)) || { id: nodeId };
  const mapped = Boolean(spec.for_each) && !item;
  const [detail, setDetail] = useState(null);
  const [error, setError] = useState(null);
  const conversational = spec.type === "agent" || spec.type === "llm";
  const [section, setSection] = useState(mapped ? "items" : "overview");
  const [poll, setPoll] = useState(0);
  const toolApproval = conversational && step.status === "waiting" && step.waiting_reason === "tool_approval";
  useEffect(() => {  // a tool call waiting for a decision is shown where it is decided
    if (toolApproval) setSection("conversation");
  }, [toolApproval]);
  const stepVersion = useRef(-1);

  useEffect(() => {
    let cancelled = false;
    const t = setTimeout(async () => {
      try {
        const d = await get(`/api/runs/${store.runId}/steps/${encodeURIComponent(nodeId)}/`);
        if (!cancelled) {
          setDetail(d);
          setError(null);
        }
      } catch (err) {
        if (!cancelled) setError(err.message);
      }
    }, stepVersion.current < 0 ? 0 : 150);
    stepVersion.current = version;
    return () => {
      cancelled = true;
      clearTimeout(t);
    };
  }, [nodeId, step.status, step.attempt, poll]);

  // While the step works, re-read it every 2 s: its journal (model and tool calls) grows as it goes.
  useEffect(() => {
    if (!ACTIVE.has(step.status)) return undefined;
    const t = setInterval(() => setPoll((p) => p + 1), 2000);
    return () => clearInterval(t);
  }, [step.status]);

  const attempts = detail ? detail.attempts : [];
  const last = attempts.length ? attempts[attempts.length - 1] : null;
  const status = step.status;
  // The error under the status is this attempt's: after a retry the previous attempt's error is not
  // shown under the new status while the drawer re-reads the step.
  const lastIsCurrent = last && last.number === step.attempt && !ACTIVE.has(status) && status !== "pending";
  const shownError = step.error || (lastIsCurrent ? last.error : "");
  const decision = approvalDecision(spec, detail, step);
  const inDoubt = status === "waiting" && step.waiting_reason === "in_doubt";
  const approval = status === "waiting" && step.waiting_reason === "approval";
  const limited = status === "queued" && step.waiting_reason === "limit";
  const eventWait = status === "waiting" && step.waiting_reason === "event";
  const runOpen = store.run.status !== "cancelled";
  const disabledTitle = canOperate ? undefined : "needs the operator role";
  const lease = leaseInfo(detail ? { ...step, lease_expires_at: detail.lease_expires_at } : step, now);
  const base = `/api/runs/${store.runId}/steps/${encodeURIComponent(nodeId)}`;

  return (
    <aside className="drawer" aria-label={`Step ${nodeId}`} data-drawer-node={nodeId}>
      <div className="drawer-head">
        <div>
          <div className="drawer-title">{item ? `${spec.name || item[0]}, item ${item[1]}` : spec.name || nodeId}</div>
          {item ? (
            <button type="button" className="link" onClick={() => onSelect(item[0])}>← All items of {item[0]}</button>
          ) : null}
          <div className="muted"><code>{nodeId}</code> · {spec.type} · queue {step.queue}</div>
        </div>
        <button type="button" className="link" onClick={onClose} aria-label="Close step details">✕</button>
      </div>
      <div className="drawer-status">
        <StatusBadge status={status} />
        <span className="muted">attempt {step.attempt || 0}</span>
        {step.started_at ? (
          <span className="muted">
            {formatDuration(((step.finished_at ? Date.parse(step.finished_at) : now) - Date.parse(step.started_at)) / 1000)}
          </span>
        ) : null}
      </div>
      {status === "running" ? (
        <p className="lease">
          Held by <code>{step.worker || detail?.worker || "?"}</code>
          {detail?.heartbeat_at ? <> · last heartbeat {Math.max(0, Math.round((now - Date.parse(detail.heartbeat_at)) / 1000))} s ago</> : null}
          {lease != null ? <> · lease {lease > 0 ? `expires in ${Math.round(lease)} s` : "expired; recovery will retry it"}</> : null}
        </p>
      ) : null}
      {inDoubt ? <InDoubt step={step} journal={detail?.journal || []} canOperate={canOperate}
        setDialog={setDialog} nodeId={nodeId} /> : null}
      {limited ? (
        <div className="banner" data-limited={nodeId} role="status">
          <strong>Waiting for a limit:</strong>{" "}
          {(step.waiting_detail?.limits || []).map((l, i) => (
            <span key={`${l.name}/${l.key}`}>{i ? ", " : ""}<code>{l.name}</code>{l.key ? <> (key <code>{l.key}</code>)</> : null}</span>
          ))}
          . It holds no worker and starts when a slot or token frees; see <a href="/limits/">Limits</a>.
        </div>
      ) : null}
      {approval ? (
        <div className="banner warn" data-approval={nodeId}>
          <strong>Waiting for approval.</strong> {step.waiting_detail?.message || ""}
          {step.waiting_detail?.details !== undefined ? <JsonView value={step.waiting_detail.details} label="Details" /> : null}
          {step.waiting_detail?.timeout_s ? <div className="muted">Without a decision within {formatDuration(step.waiting_detail.timeout_s)} it is {step.waiting_detail.on_timeout === "approve" ? "approved" : "rejected"}.</div> : null}
        </div>
      ) : null}
      {eventWait ? <EventWait detail={step.waiting_detail || {}} nodeId={nodeId} /> : null}
      <div className="actions" role="group" aria-label="Step actions">
        {runOpen && status === "failed" ? (
          <button type="button" disabled={!canOperate} title={disabledTitle}
            onClick={() => setDialog({ kind: "retry", nodeId })}>Retry</button>
        ) : null}
        {runOpen && TERMINAL.has(status) && !item ? (
          <button type="button" className="secondary" disabled={!canOperate} title={disabledTitle}
            onClick={() => setDialog({ kind: "rerun", nodeId })}>Rerun from here</button>
        ) : null}
        {runOpen && SETTLEABLE.has(status) ? (
          <button type="button" className="secondary" disabled={!canOperate} title={disabledTitle}
            onClick={() => setDialog({ kind: "skip", nodeId })}>Skip</button>
        ) : null}
        {runOpen && SETTLEABLE.has(status) && !inDoubt ? (
          <button type="button" className="secondary" disabled={!canOperate} title={disabledTitle}
            onClick={() => setDialog({ kind: "complete", nodeId })}>Mark succeeded…</button>
        ) : null}
        {approval ? (
          <>
            <button type="button" disabled={!canOperate} title={disabledTitle}
              onClick={() => setDialog({ kind: "approve", nodeId })}>Approve</button>
            <button type="button" className="danger" disabled={!canOperate} title={disabledTitle}
              onClick={() => setDialog({ kind: "reject", nodeId })}>Reject</button>
          </>
        ) : null}
      </div>
      <div role="tablist" aria-label="Step details" className="tabs small">
        {[...(mapped ? ["items"] : []), "overview", ...(conversational ? ["conversation"] : []), "attempts", "logs", "journal"].map((s) => (
          <button key={s} role="tab" type="button" aria-selected={section === s}
            className={section === s ? "" : "secondary"} onClick={() => setSection(s)}>
            {s[0].toUpperCase() + s.slice(1)}
            {s === "items" ? ` (${mapCounts(store.steps, nodeId).total})` : ""}
            {s === "attempts" && attempts.length ? ` (${attempts.length})` : ""}
            {s === "journal" && detail?.journal?.length ? ` (${detail.journal.length})` : ""}
          </button>
        ))}
      </div>
      {error ? <p className="errors">Could not load the step: {error}</p> : null}
      <div className="drawer-body">
        {section === "items" ? <MapItems store={store} nodeId={nodeId} onOpen={onSelect} /> : null}
        {section === "overview" ? (
          <>
            {decision}
            {shownError ? (
              <section>
                <h3>Error</h3>
                <pre className="error-text">{shownError}</pre>
                {lastIsCurrent && last.traceback ? (
                  <details><summary>Traceback</summary><pre className="traceback">{last.traceback}</pre></details>
                ) : null}
              </section>
            ) : null}
            <section><h3>Output</h3><JsonView value={detail ? detail.output : undefined} label="Output" /></section>
            <section><h3>Inputs</h3>
              <Inputs store={store} runId={store.runId} nodeId={nodeId} status={status} />
            </section>
          </>
        ) : null}
        {section === "conversation" ? <Conversation spec={spec} step={step} entries={detail?.journal || []} base={base}
          live={store.texts[nodeId]}
          canOperate={canOperate && runOpen} onDecided={() => setPoll((p) => p + 1)} /> : null}
        {section === "attempts" ? <Attempts attempts={attempts} /> : null}
        {section === "logs" ? <Logs runId={store.runId} nodeId={nodeId} step={step} attempts={attempts} /> : null}
        {section === "journal" ? <Journal entries={detail?.journal || []} /> : null}
      </div>
    </aside>
  );
}
