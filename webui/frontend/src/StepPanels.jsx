// The step drawer's tabs: attempts, live logs with a search over the run's logs, the rendered
// inputs, and the journal.
import { useEffect, useLayoutEffect, useRef, useState } from "react";
import { get } from "./api.js";
import { JsonView } from "./dialogs.jsx";
import { StatusBadge, formatDuration } from "./status.jsx";

const LOG_POLL_MS = 2000; // matches the default WEFT_LOG_FLUSH_S

function logText(l) {
  const t = l.t != null ? new Date(l.t * 1000).toISOString().slice(11, 23) : "";
  return `${t} ${(l.level || "").padEnd(7)} ${l.msg}`;
}

export function Attempts({ attempts }) {
  if (!attempts.length) return <p className="muted">No attempt has started.</p>;
  return (
    <table className="list compact attempts-table">
      <thead><tr><th>#</th><th>Outcome</th><th>Worker</th><th>Queued</th><th>Ran</th><th>Error</th></tr></thead>
      <tbody>
        {attempts.map((a) => (
          <tr key={a.number} data-attempt={a.number}>
            <td>{a.number}</td>
            <td>{a.outcome}</td>
            <td><code>{a.worker}</code></td>
            <td>{a.queued_at ? formatDuration((Date.parse(a.started_at) - Date.parse(a.queued_at)) / 1000) : ""}</td>
            <td>{a.duration_s != null ? formatDuration(a.duration_s) : "running"}</td>
            <td className="attempt-error">
              {/* The error text starts with its type ("ValueError: ..."): the type is printed once. */}
              {a.error_type && !(a.error || "").startsWith(a.error_type) ? <><code>{a.error_type}</code> </> : null}{a.error}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

// The current attempt's captured lines, re-read every 2 s while the step runs. The view stays
// scrolled to the newest line unless the reader scrolled up.
function LiveLog({ runId, nodeId, attempt, running }) {
  const [lines, setLines] = useState(null);
  const [truncated, setTruncated] = useState(false);
  const [problem, setProblem] = useState(null);
  const [tick, setTick] = useState(0);
  const ref = useRef(null);
  const stick = useRef(true);

  useEffect(() => {
    if (!attempt) return undefined;
    let cancelled = false;
    const params = new URLSearchParams({ node: nodeId, attempt: String(attempt), limit: "5000" });
    get(`/api/runs/${runId}/logs/?${params}`)
      .then((d) => {
        if (cancelled) return;
        setLines(d.lines);
        setTruncated(d.truncated);
        setProblem(null);
      })
      .catch((err) => !cancelled && setProblem(err.message));
    return () => {
      cancelled = true;
    };
  }, [runId, nodeId, attempt, running, tick]);

  useEffect(() => {
    if (!running) return undefined;
    const t = setInterval(() => setTick((n) => n + 1), LOG_POLL_MS);
    return () => clearInterval(t);
  }, [running]);

  useLayoutEffect(() => {
    const el = ref.current;
    if (el && stick.current) el.scrollTop = el.scrollHeight;
  }, [lines]);

  if (!attempt) return <p className="muted">No attempt has started.</p>;
  return (
    <section data-live-log={attempt} data-streaming={running ? "true" : "false"}>
      <h3>
        Attempt {attempt}{running ? <> <span className="live-indicator" data-state="live">streaming, every 2 s</span></> : null}
      </h3>
      {problem ? <p className="errors">Could not load the logs: {problem}</p> : null}
      {lines && !lines.length ? (
        <p className="muted">{running ? "No lines yet." : "No log lines were captured."}</p>
      ) : null}
      {lines && lines.length ? (
        <pre className="logs" ref={ref} tabIndex={0} aria-label={`Logs of attempt ${attempt}`}
          onScroll={(e) => {
            const el = e.currentTarget;
            stick.current = el.scrollTop + el.clientHeight >= el.scrollHeight - 8;
          }}>
          {lines.map(logText).join("\n")}
        </pre>
      ) : null}
      {truncated ? <p className="muted">Only the first 5000 lines are shown.</p> : null}
    </section>
  );
}

function LogSearch({ runId, nodeId }) {
  const [q, setQ] = useState("");
  const [onlyStep, setOnlyStep] = useState(false);
  const [result, setResult] = useState(null);
  const [problem, setProblem] = useState(null);

  useEffect(() => {
    if (!q.trim()) {
      setResult(null);
      return undefined;
    }
    let cancelled = false;
    const t = setTimeout(() => {
      const params = new URLSearchParams({ q, limit: "200" });
      if (onlyStep) params.set("node", nodeId);
      get(`/api/runs/${runId}/logs/?${params}`)
        .then((d) => {
          if (!cancelled) {
            setResult(d);
            setProblem(null);
          }
        })
        .catch((err) => !cancelled && setProblem(err.message));
    }, 250);
    return () => {
      cancelled = true;
      clearTimeout(t);
    };
  }, [runId, nodeId, q, onlyStep]);

  return (
    <section className="log-search" role="search">
      <h3><label htmlFor="log-search">Search this run's logs</label></h3>
      <div className="toolbar" style={{ marginBottom: ".25rem" }}>
        <input id="log-search" type="search" value={q} placeholder="text in any step's log lines"
          onChange={(e) => setQ(e.target.value)} maxLength={200} />
        <label className="check"><input type="checkbox" checked={onlyStep}
          onChange={(e) => setOnlyStep(e.target.checked)} /> this step only</label>
      </div>
      {problem ? <p className="errors">Search failed: {problem}</p> : null}
      {result ? (
        result.lines.length ? (
          <ol className="log-hits" aria-label="Matching log lines">
            {result.lines.map((l) => (
              <li key={`${l.node_id}:${l.attempt}:${l.index}`} data-hit-node={l.node_id}>
                <code>{l.node_id}#{l.attempt}</code> <span className="muted">{l.level}</span> {l.msg}
              </li>
            ))}
            {result.truncated ? <li className="muted">More lines match; narrow the search.</li> : null}
          </ol>
        ) : <p className="muted">No line matches “{q}”.</p>
      ) : null}
    </section>
  );
}

export function Logs({ runId, nodeId, step, attempts }) {
  const current = step.attempt || (attempts.length ? attempts[attempts.length - 1].number : 0);
  const earlier = attempts.filter((a) => a.number !== current && a.logs && a.logs.length);
  return (
    <>
      <LogSearch runId={runId} nodeId={nodeId} />
      <LiveLog key={current} runId={runId} nodeId={nodeId} attempt={current} running={step.status === "running"} />
      {earlier.length ? <h3>Earlier attempts</h3> : null}
      {earlier.map((a) => (
        <details key={a.number} data-earlier-attempt={a.number}>
          <summary>Attempt {a.number} · {a.outcome} · {a.logs.length} lines</summary>
          <pre className="logs">{a.logs.map(logText).join("\n")}</pre>
        </details>
      ))}
    </>
  );
}

// The node's config rendered from the run inputs and the upstream outputs as they are now (what the
// node receives when it runs; rendered inputs are not stored per attempt), beside those outputs.
// Upstream statuses follow the live store; when one differs from what the last read saw (an
// upstream step moved while this one did not), the inputs are read again for its output.
export function Inputs({ store, runId, nodeId, status }) {
  const [data, setData] = useState(null);
  const [problem, setProblem] = useState(null);
  const liveStatus = (u) => store.steps[u.node_id]?.status || u.status;
  const readSig = data ? data.upstream.map((u) => u.status).join(",") : "";
  const liveSig = data ? data.upstream.map(liveStatus).join(",") : "";
  const stale = liveSig !== readSig;
  useEffect(() => {
    let cancelled = false;
    const t = setTimeout(() => {
      get(`/runs/${runId}/steps/${encodeURIComponent(nodeId)}/inputs/`)
        .then((d) => {
          if (!cancelled) {
            setData(d);
            setProblem(null);
          }
        })
        .catch((err) => !cancelled && setProblem(err.message));
    }, data ? 150 : 0);
    return () => {
      cancelled = true;
      clearTimeout(t);
    };
  }, [runId, nodeId, status, stale ? liveSig : readSig]);
  if (problem) return <p className="errors">Could not load the inputs: {problem}</p>;
  if (!data) return <p className="muted">Loading the inputs…</p>;
  const pending = data.upstream.filter((u) => liveStatus(u) !== "succeeded");
  return (
    <div data-inputs={nodeId}>
      <h3>Config, rendered</h3>
      <p className="muted">
        Rendered the way the worker renders it, from the run inputs and the upstream outputs as they are now
        {pending.length ? "; some upstream steps have not succeeded, so their outputs are missing" : ""}.
      </p>
      {data.render_error ? <pre className="error-text">{data.render_error}</pre> : (
        <JsonView value={data.rendered} label="Rendered config" />
      )}
      {data.templated ? (
        <details><summary>Config template</summary><JsonView value={data.config} label="Config template" /></details>
      ) : null}
      <h3>Upstream outputs</h3>
      {data.upstream.length ? (
        <ul className="upstream">
          {data.upstream.map((u) => (
            <li key={u.node_id} data-upstream-node={u.node_id}>
              <code>{u.node_id}</code> <StatusBadge status={liveStatus(u)} />
              <span className="muted"> {[u.direct ? "direct predecessor" : null, u.referenced ? "referenced by the config" : null]
                .filter(Boolean).join(", ")}</span>
              <JsonView value={u.output} label={`Output of ${u.node_id}`} />
            </li>
          ))}
        </ul>
      ) : <p className="muted">None: this step has no upstream steps.</p>}
      <h3>Run inputs</h3>
      <JsonView value={data.run_inputs} label="Run inputs" />
    </div>
  );
}

export function Journal({ entries }) {
  if (!entries.length) return <p className="muted">No journaled calls (model calls, tool calls) in this step.</p>;
  return (
    <ol className="journal">
      {entries.map((j) => (
        <li key={j.key} data-journal-key={j.key}>
          <div><code>{j.key}</code> · {j.status} · attempt {j.attempt}{j.safe_to_repeat ? "" : " · not safe to repeat"}</div>
          {j.error ? <pre className="error-text">{j.error_type}: {j.error}</pre> : <JsonView value={j.result} label={`Result of ${j.key}`} />}
        </li>
      ))}
    </ol>
  );
}
