// The run view: the graph coloured by status, live over the websocket; a drawer per step with
// its attempts, logs and journal; the operator actions; and the timeline tab.
import { ReactFlowProvider } from "@xyflow/react";
import { useCallback, useEffect, useMemo, useRef, useState, useSyncExternalStore } from "react";
import { get, post } from "./api.js";
import { Dialog } from "./dialogs.jsx";
import { itemOf } from "./MapItems.jsx";
import { RunGraph } from "./RunGraph.jsx";
import { RunStore, connectRun } from "./runstore.js";
import { ACTIVE, STATUS, StatusBadge, shortId } from "./status.jsx";
import { StepDrawer } from "./StepDrawer.jsx";
import { RunHeader } from "./RunHeader.jsx";
import { Timeline } from "./Timeline.jsx";
import { VersionChoice, useVersionCompare } from "./VersionChoice.jsx";

function useNow(active) {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    if (!active) return undefined;
    const t = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(t);
  }, [active]);
  return now;
}

function descendantsOf(edges, id) {
  const out = new Map();
  for (const e of edges) (out.get(e.source) || out.set(e.source, []).get(e.source)).push(e.target);
  const seen = new Set();
  const stack = [id];
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

export function RunView({ props }) {
  const store = useMemo(() => new RunStore(props.runId, props.snapshot), [props.runId]);
  const version = useSyncExternalStore(store.subscribe, store.getVersion);
  const [selected, setSelected] = useState(props.step || null);
  const [tab, setTab] = useState(props.tab === "timeline" ? "timeline" : "graph");
  const [hideFinished, setHideFinished] = useState(false);
  const [dialog, setDialog] = useState(null);
  const [notice, setNotice] = useState(null);
  const socketRef = useRef(null);

  useEffect(() => {
    const conn = connectRun(store);
    socketRef.current = conn;
    window.weft = { store, socket: conn };
    return () => conn.close();
  }, [store]);

  useEffect(() => {
    const onPop = () => {
      const m = location.pathname.match(/\/steps\/([^/]+)\/?$/);
      setSelected(m ? decodeURIComponent(m[1]) : null);
    };
    window.addEventListener("popstate", onPop);
    return () => window.removeEventListener("popstate", onPop);
  }, []);

  const select = useCallback(
    (nodeId) => {
      setSelected(nodeId);
      const base = `/runs/${props.runId}/`;
      const url = nodeId ? `${base}steps/${encodeURIComponent(nodeId)}/` : base;
      if (location.pathname !== url) history.pushState({}, "", url + location.search);
    },
    [props.runId],
  );

  const run = store.run;
  const live = store.connection === "live";
  const stale = !live;
  const anyActive = Object.values(store.steps).some((s) => ACTIVE.has(s.status));
  const now = useNow(anyActive || run.status === "running");
  const canOperate = props.roles && props.roles.operate;

  const act = useCallback(
    async (label, path, body, follow) => {
      setNotice(null);
      const before = {};
      for (const id of follow || []) before[id] = { status: store.steps[id]?.status, attempt: store.steps[id]?.attempt || 0 };
      try {
        await post(path, body);
        // An action that starts work (retry, rerun) is followed to its outcome: the banner says what
        // became of the steps, never "done" for steps that failed again.
        setNotice(follow ? { kind: "follow", label, nodeIds: follow, before } : { kind: "ok", text: `${label}: done.` });
        return true;
      } catch (err) {
        setNotice({ kind: "error", text: `${label} failed: ${err.message}` });
        return false;
      }
    },
    [store],
  );

  const firstFailure = useMemo(() => {
    for (const n of store.definition.nodes) {
      const s = store.steps[n.id];
      if (s && s.status === "failed") return n.id;
    }
    return null;
  }, [version]);

  return (
    <div className="runview" data-run-id={props.runId} data-run-status={run.status} data-live={live ? "true" : "false"}>
      <div className="runbar">
        <div className="runbar-title">
          <a href={`/workflows/${run.workflow}/edit/`}>{run.workflow_name || run.workflow}</a>
          <span className="muted"> v{run.version} · run </span>
          <code>{shortId(props.runId)}</code>
        </div>
        <span className="run-status" aria-label="Run status"><StatusBadge status={run.status} /></span>
        <ConnectionState store={store} />
        <div className="grow" />
        <div role="tablist" aria-label="Run views" className="tabs">
          <button role="tab" type="button" aria-selected={tab === "graph"} className={tab === "graph" ? "" : "secondary"}
            onClick={() => setTab("graph")}>Graph</button>
          <button role="tab" type="button" aria-selected={tab === "timeline"}
            className={tab === "timeline" ? "" : "secondary"} onClick={() => setTab("timeline")}>Timeline</button>
        </div>
        <label className="check" title="Hides succeeded and skipped steps; failed and blocked steps stay shown">
          <input type="checkbox" checked={hideFinished}
          onChange={(e) => setHideFinished(e.target.checked)} /> Hide finished steps</label>
        <button type="button" className="secondary" disabled={!firstFailure}
          onClick={() => firstFailure && select(firstFailure)}>Jump to first failure</button>
        {(run.status === "running" || run.status === "pending") ? (
          <button type="button" className="danger" disabled={!canOperate}
            title={canOperate ? undefined : "needs the operator role"}
            onClick={() => setDialog({ kind: "cancel" })}>Cancel run</button>
        ) : null}
      </div>
      <RunHeader store={store} runId={props.runId} canOperate={canOperate} act={act} now={now} />
      {stale ? (
        <div className="banner warn" role="status" data-connection={store.connection}>
          {store.connection === "closed"
            ? `Live updates stopped: ${store.closeReason} Statuses shown are the last known.`
            : store.connection === "connecting"
              ? "Connecting to live updates…"
              : "Reconnecting… statuses shown are the last known and may be out of date."}
        </div>
      ) : null}
      {run.error && run.status === "failed" ? <div className="banner error">Run failed: {run.error}</div> : null}
      {run.status === "pending" && run.waiting ? (
        <div className="banner warn" role="status" data-waiting={run.waiting.reason}>
          Not started yet: {run.waiting.message} (the workflow's run concurrency limit).
        </div>
      ) : null}
      {run.status === "cancelled" && run.error && run.error !== "cancelled" ? (
        <div className="banner warn" data-cancelled="">Run cancelled: {run.error}</div>
      ) : null}
      {notice ? <ActionNotice notice={notice} store={store} /> : null}
      <div className="runbody">
        <div className="runmain">
          {tab === "graph" ? (
            <ReactFlowProvider>
              <RunGraph store={store} version={version} stale={stale}
                selected={itemOf(selected)?.[0] ?? selected}
                onSelect={select} hideFinished={hideFinished} />
            </ReactFlowProvider>
          ) : (
            <Timeline store={store} version={version} now={now} onSelect={select} />
          )}
        </div>
        {selected && store.steps[selected] ? (
          <StepDrawer key={selected} store={store} version={version} nodeId={selected} now={now}
            canOperate={canOperate} onClose={() => select(null)} onSelect={select} setDialog={setDialog} act={act} />
        ) : null}
      </div>
      {dialog ? (
        <ActionDialog dialog={dialog} store={store} runId={props.runId} act={act} onClose={() => setDialog(null)} />
      ) : null}
    </div>
  );
}

function ActionNotice({ notice, store }) {
  if (notice.kind !== "follow") {
    return <div className={`banner ${notice.kind === "error" ? "error" : "ok"}`} role="status" data-notice={notice.kind}>{notice.text}</div>;
  }
  const { label, nodeIds, before } = notice;
  // A step counts once it moved since the action (a new attempt, or another status): until then the
  // failure it showed before the action is not the action's outcome.
  const moved = (id) => {
    const s = store.steps[id];
    return s && ((s.attempt || 0) > before[id].attempt || s.status !== before[id].status);
  };
  const steps = nodeIds.map((id) => [id, moved(id) ? store.steps[id]?.status : "queued"]);
  const failed = steps.filter(([, st]) => st === "failed" || st === "upstream_failed" || st === "cancelled");
  const busy = steps.filter(([, st]) => !TERMINAL_STEP.has(st));
  let kind;
  let text;
  if (failed.length) {
    kind = "error";
    const first = store.steps[failed[0][0]];
    text = `${label} failed: ${failed.map(([id, st]) => `${id} ${STATUS[st]?.label.toLowerCase() || st}`).join(", ")}` +
      (first?.error ? ` (${first.error.slice(0, 200)})` : "") + ".";
  } else if (busy.length) {
    kind = "pending";
    text = `${label} started: ${busy.length} of ${steps.length} step(s) still to finish…`;
  } else {
    kind = "ok";
    text = `${label}: ${steps.length === 1 ? `${steps[0][0]} succeeded` : `all ${steps.length} steps finished`}.`;
  }
  return <div className={`banner ${kind === "error" ? "error" : kind === "ok" ? "ok" : "warn"}`} role="status" data-notice={kind}>{text}</div>;
}

const TERMINAL_STEP = new Set(["succeeded", "failed", "skipped", "upstream_failed", "cancelled"]);

function ConnectionState({ store }) {
  const text = { live: "Live", connecting: "Connecting…", reconnecting: "Reconnecting…", closed: "Not live" };
  return (
    <span className="live-indicator" data-state={store.connection} role="status" aria-live="polite">
      {text[store.connection]}
    </span>
  );
}

function ActionDialog({ dialog, store, runId, act, onClose }) {
  const { kind, nodeId } = dialog;
  const [preview, setPreview] = useState(null);
  const [text, setText] = useState(kind === "complete" ? "{}" : "");
  const [busy, setBusy] = useState(false);
  const [problem, setProblem] = useState(null);
  const [unsafe, setUnsafe] = useState({});
  const [versionChoice, setVersionChoice] = useState("run");
  const compare = useVersionCompare(runId);
  const base = nodeId ? `/api/runs/${runId}/steps/${encodeURIComponent(nodeId)}` : null;

  // Per step that would run again: the calls its definition says are not safe to repeat (from the
  // snapshot's repeat_risks: an HTTP POST without an Idempotency-Key, an agent tool declared unsafe),
  // and those its journal recorded as not safe to repeat: a rerun repeats all of them (fresh
  // idempotency keys); a retry replays finished calls and repeats only unfinished ones.
  useEffect(() => {
    if (!preview || (kind !== "retry" && kind !== "rerun")) return;
    let cancelled = false;
    Promise.all(preview.slice(0, 50).map((id) =>
      get(`/api/runs/${runId}/steps/${encodeURIComponent(id)}/`).then((d) => [id, d.journal || []]).catch(() => [id, []]),
    )).then((rows) => {
      if (cancelled) return;
      const out = {};
      for (const [id, journal] of rows) {
        const keys = journal
          .filter((j) => !j.safe_to_repeat && (kind === "rerun" || j.status === "started"))
          .map((j) => j.key);
        if (keys.length) out[id] = keys;
      }
      setUnsafe(out);
    });
    return () => {
      cancelled = true;
    };
  }, [preview]);

  useEffect(() => {
    if (kind === "rerun") {
      get(`${base}/rerun-preview/`).then((d) => setPreview(d.node_ids)).catch((e) => setProblem(e.message));
    } else if (kind === "retry") {
      const desc = descendantsOf(store.definition.edges, nodeId);
      const again = [nodeId, ...store.definition.nodes.map((n) => n.id)
        .filter((id) => desc.has(id) && ["upstream_failed", "cancelled", "pending"].includes(store.steps[id]?.status))];
      setPreview(again);
    }
  }, []);

  async function run(label, path, body, follow) {
    setBusy(true);
    const ok = await act(label, path, body, follow);
    setBusy(false);
    if (ok) onClose();
  }

  const risks = (id) => [...(store.repeatRisks[id] || []), ...(unsafe[id] || []).map((key) => `call ${key}`)];
  const previewList = preview ? (
    <>
      <p>These steps will run ({preview.length}):</p>
      <ul className="preview" aria-label="Steps that will run">
        {preview.map((id) => {
          const st = store.steps[id]?.status;
          const ran = (store.attempts[id] || []).some((a) => a.started_at);
          return (
            <li key={id} data-preview-node={id}>
              <code>{id}</code> <StatusBadge status={st} />
              {ran ? null : <span className="muted"> — has not run yet</span>}
              {st === "succeeded" && id !== nodeId ? <span className="warn-text"> — succeeded before; its effects repeat unless journaled</span> : null}
              {risks(id).length ? (
                <div className="warn-text" data-unsafe-node={id}>
                  ⚠ not safe to repeat: {risks(id).slice(0, 5).join(", ")}{risks(id).length > 5 ? ` (+${risks(id).length - 5})` : ""}
                </div>
              ) : null}
            </li>
          );
        })}
      </ul>
      <p className="muted">Every other step keeps its status and output.</p>
    </>
  ) : <p className="muted">Working out which steps will run…</p>;

  const cancel = <button type="button" className="secondary" onClick={onClose}>Close</button>;
  if (kind === "retry") {
    return (
      <Dialog title={`Retry ${nodeId}?`} onClose={onClose} actions={<>{cancel}
        <button type="button" disabled={busy || !preview}
          onClick={() => run("Retry", `${base}/retry/`, { version: versionChoice }, preview)}>Confirm retry</button></>}>
        {previewList}
        <VersionChoice compare={compare} value={versionChoice} onChange={setVersionChoice} nodeIds={preview} />
        {store.steps[nodeId]?.waiting_reason === "in_doubt" ? (
          <p className="warn-text">This step is in doubt: its unfinished call is not safe to repeat and will run again.</p>
        ) : null}
        {problem ? <p className="errors">{problem}</p> : null}
      </Dialog>
    );
  }
  if (kind === "rerun") {
    return (
      <Dialog title={`Rerun from ${nodeId}?`} onClose={onClose} actions={<>{cancel}
        <button type="button" disabled={busy || !preview}
          onClick={() => run("Rerun", `${base}/rerun-from/`, { version: versionChoice }, preview)}>Confirm rerun</button></>}>
        {previewList}
        <VersionChoice compare={compare} value={versionChoice} onChange={setVersionChoice} nodeIds={preview} />
        <p className="warn-text">A rerun is a fresh execution: journaled calls run again with new idempotency keys.</p>
        {problem ? <p className="errors">{problem}</p> : null}
      </Dialog>
    );
  }
  if (kind === "skip") {
    return (
      <Dialog title={`Skip ${nodeId}?`} onClose={onClose} actions={<>{cancel}
        <button type="button" disabled={busy} onClick={() => run("Skip", `${base}/skip/`)}>Confirm skip</button></>}>
        <p>The step is marked skipped; steps that need it to succeed are skipped too.</p>
      </Dialog>
    );
  }
  if (kind === "complete") {
    let parsed = null;
    let bad = null;
    try {
      parsed = JSON.parse(text || "null");
    } catch (e) {
      bad = e.message;
    }
    return (
      <Dialog title={`Mark ${nodeId} succeeded`} onClose={onClose} actions={<>{cancel}
        <button type="button" disabled={busy || bad} onClick={() => run("Mark succeeded", `${base}/complete/`, { output: parsed })}>Confirm</button></>}>
        {store.steps[nodeId]?.waiting_reason === "in_doubt" ? (
          <p className="warn-text">
            The call <code>{store.steps[nodeId].waiting_detail?.key}</code> is not made again: give the output the step
            would have produced from what the outside system really did.
          </p>
        ) : null}
        <label htmlFor="complete-output">Output (JSON), as if the step had produced it</label>
        <textarea id="complete-output" rows={8} value={text} onChange={(e) => setText(e.target.value)} />
        {bad ? <p className="errors">Not valid JSON: {bad}</p> : null}
      </Dialog>
    );
  }
  if (kind === "approve" || kind === "reject") {
    const label = kind === "approve" ? "Approve" : "Reject";
    return (
      <Dialog title={`${label} ${nodeId}`} onClose={onClose} actions={<>{cancel}
        <button type="button" className={kind === "reject" ? "danger" : ""} disabled={busy}
          onClick={() => run(label, `${base}/${kind}/`, { comment: text })}>Confirm {kind === "approve" ? "approval" : "rejection"}</button></>}>
        <label htmlFor="decision-comment">Comment (optional)</label>
        <textarea id="decision-comment" rows={3} value={text} onChange={(e) => setText(e.target.value)} />
      </Dialog>
    );
  }
  if (kind === "cancel") {
    return (
      <Dialog title="Cancel this run?" onClose={onClose} actions={<>{cancel}
        <button type="button" className="danger" disabled={busy} onClick={() => run("Cancel run", `/api/runs/${runId}/cancel/`)}>Confirm cancel</button></>}>
        <p>Pending, queued and waiting steps are cancelled; running steps stop at their next journaled call.</p>
      </Dialog>
    );
  }
  return null;
}
