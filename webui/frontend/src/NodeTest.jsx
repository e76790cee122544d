// Test step: run the selected node's real code once with sample inputs (what its templates read: `inputs` and
// `nodes.<id>.output`), prefilled from the workflow's last run, and show its output or its error here.
// POST /api/workflows/<slug>/nodes/test/ runs it; GET there reads the sample. Nothing is recorded.
import { useEffect, useState } from "react";
import { ApiError, get, post } from "./api.js";
import { JsonView, Ticks, withoutNode } from "./dialogs.jsx";

// What a run dialog would start with: each input's default, else its first example.
export function sampleInputs(schema) {
  const out = {};
  for (const [name, p] of Object.entries(schema?.properties || {})) {
    if (p.default !== undefined) out[name] = p.default;
    else if (Array.isArray(p.examples) && p.examples.length) out[name] = p.examples[0];
    else if (p.example !== undefined) out[name] = p.example;
  }
  return out;
}

const ms = (v) => (v >= 1000 ? `${(v / 1000).toFixed(1)} s` : `${Math.round(v)} ms`);

function Outcome({ result }) {
  if (result.error) {
    const { type, message } = result.error;
    return (
      <div data-test-outcome="failed">
        <p><span className="badge status-failed">✕ Failed</span> after {ms(result.duration_ms)}</p>
        <pre className="error-text" aria-label="Error">{message.startsWith(type) ? message : `${type}: ${message}`}</pre>
      </div>
    );
  }
  if (result.waits) {
    return (
      <div data-test-outcome="waits">
        <p><span className="badge status-waiting">● Would wait</span> for <code>{result.waits.reason}</code>: in a run the
          step would wait here (after {ms(result.duration_ms)}).</p>
        <JsonView value={result.waits.detail} label="What it would wait for" />
      </div>
    );
  }
  return (
    <div data-test-outcome="succeeded">
      <p><span className="badge status-succeeded">✓ Succeeded</span> in {ms(result.duration_ms)}</p>
      <JsonView value={result.output} label="Output" />
    </div>
  );
}

export function NodeTest({ slug, spec, type, problems: nodeProblems, upstream, inputsSchema, canDesign }) {
  const [text, setText] = useState("");
  const [bad, setBad] = useState(null);
  const [source, setSource] = useState(null);
  const [result, setResult] = useState(null);
  const [problems, setProblems] = useState(null);
  const [running, setRunning] = useState(false);
  const upstreamKey = upstream.join(",");

  useEffect(() => {
    const fallback = () => {
      const nodes = Object.fromEntries(upstream.map((id) => [id, { output: null }]));
      setText(JSON.stringify({ inputs: sampleInputs(inputsSchema), nodes }, null, 2));
      setSource({ kind: "schema" });
    };
    if (!slug || !canDesign) {
      fallback();
      return;
    }
    let gone = false;
    const query = `node=${encodeURIComponent(spec.id)}${upstream.length ? `&upstream=${upstream.join(",")}` : ""}`;
    get(`/api/workflows/${slug}/nodes/test/?${query}`).then((sample) => {
      if (gone) return;
      if (!sample.run_id) return fallback();
      setText(JSON.stringify(sample.context, null, 2));
      setSource({ kind: "run", run: sample.run_id, version: sample.version });
    }).catch(() => !gone && fallback());
    return () => { gone = true; };
  }, [slug, spec.id, upstreamKey]);

  const run = async () => {
    let context;
    try {
      context = text.trim() ? JSON.parse(text) : {};
    } catch (err) {
      setBad(err.message);
      return;
    }
    const { position, ...node } = spec;
    setRunning(true);
    setProblems(null);
    setResult(null);
    try {
      setResult(await post(`/api/workflows/${slug}/nodes/test/`, { node, context }));
    } catch (err) {
      const details = err instanceof ApiError && err.details?.length ? err.details.map((d) => d.message || String(d)) : [];
      setProblems({ message: err.message, details });
    } finally {
      setRunning(false);
    }
  };

  const blocked = type?.untestable ? `a node of this type cannot be tested on its own: ${type.untestable}`
    : !canDesign ? "needs the designer role" : !slug ? "save the workflow once first"
      : nodeProblems ? `fix this node's ${nodeProblems === 1 ? "problem" : `${nodeProblems} problems`} first`
      : bad ? "the sample is not valid JSON" : null;
  return (
    <section className="node-test" aria-labelledby="node-test-title">
      <h2 id="node-test-title">Try this node</h2>
      <p className="muted small">Runs its real code once with the sample below (its requests and calls are really sent);
        nothing is recorded as a run.</p>
      <div className="field">
        <label htmlFor="node-test-sample">Sample inputs (JSON)</label>
        <textarea id="node-test-sample" rows={8} spellCheck={false} value={text} aria-invalid={!!bad}
          aria-describedby="node-test-source"
          onChange={(e) => {
            setText(e.target.value);
            try { if (e.target.value.trim()) JSON.parse(e.target.value); setBad(null); } catch (err) { setBad(err.message); }
          }} />
        {bad ? <div className="field-error">Not valid JSON yet: {bad}</div> : null}
        <div className="help" id="node-test-source">
          {source?.kind === "run"
            ? <>From <a href={`/runs/${source.run}/`}>the last run</a> (v{source.version}): its inputs and the outputs upstream.</>
            : <>From the input schema's defaults and examples; <code>nodes.&lt;id&gt;.output</code> is yours to fill.</>}
        </div>
      </div>
      <button type="button" disabled={Boolean(blocked) || running} title={blocked || "Run this node once with the sample"}
        aria-describedby={blocked ? "node-test-blocked" : undefined} onClick={run}>{running ? "Testing…" : "Test step"}</button>
      {blocked ? <p className="muted small" id="node-test-blocked" data-test-blocked>Not now: {blocked}.</p> : null}
      <div aria-live="polite" data-test-result={result ? (result.ok ? "ok" : "failed") : problems ? "refused" : ""}>
        {problems ? (
          <div className="banner error" data-test-outcome="refused">
            <p>Not tested: {problems.details.length ? "" : problems.message}</p>
            {problems.details.length ? <ul>{problems.details.map((m, i) => <li key={i}><Ticks text={withoutNode(m, spec.id)} /></li>)}</ul> : null}
          </div>
        ) : null}
        {result ? <Outcome result={result} /> : null}
        {result?.logs?.length ? (
          <details><summary>Log lines ({result.logs.length})</summary>
            <pre className="logs">{result.logs.map((l) => `${l.level} ${l.msg}`).join("\n")}</pre></details>
        ) : null}
        {result?.calls?.length ? (
          <details><summary>Calls ({result.calls.length})</summary>
            <ul>{result.calls.map((c) => <li key={c.key}><code>{c.key}</code> {c.status}{c.duration_ms !== undefined ? `, ${ms(c.duration_ms)}` : ""}
              {c.error ? `: ${c.error}` : ""}</li>)}</ul></details>
        ) : null}
      </div>
    </section>
  );
}
