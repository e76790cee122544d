// An agent or llm step's journal as a conversation: the prompts, each model turn (text, tokens in and out, cost), each tool call
// (arguments, result, duration, status; in doubt marked; trimmed from the model's view marked), summaries and trims
// of the context window, operators' decisions, and a tool call waiting for approval with Approve / Edit and
// approve / Reject. It grows as the drawer re-reads the step; a streamed model reply (``live``, from the run's
// websocket) grows as the model writes it, until the journal holds the finished reply.
import { useState } from "react";
import { post } from "./api.js";
import { JsonView } from "./dialogs.jsx";
import { formatDuration } from "./status.jsx";
import "./conversation.css";

function seconds(entry) {
  if (!entry.started_at || !entry.finished_at) return null;
  return (Date.parse(entry.finished_at) - Date.parse(entry.started_at)) / 1000;
}

// A model turn's cost as the run header writes costs; a model without a price in WEFT_LLM_PRICES has none.
function formatCost(usd) {
  if (usd === null || usd === undefined) return "no price";
  if (usd === 0) return "$0";
  return usd >= 0.0001 ? `$${usd.toFixed(4)}` : `$${usd.toPrecision(2)}`;
}

const count = (n) => Number(n || 0).toLocaleString();

function parseArgs(text) {
  try {
    return JSON.parse(text || "{}");
  } catch {
    return text;
  }
}

// Tool call id -> the context-N entry that trimmed its result from what the model is sent.
function trimmedCalls(entries) {
  const trimmed = {};
  for (const entry of entries) {
    if (!entry.key.startsWith("context-")) continue;
    for (const t of entry.result?.trimmed || []) trimmed[t.tool_call_id] = entry.key;
  }
  return trimmed;
}

// The journal as a list of conversation items, tool calls paired with the arguments the model sent.
function items(entries) {
  const calls = [];
  const out = [];
  for (const entry of entries) {
    const key = entry.key;
    if (key.startsWith("context-")) {
      const r = entry.result || {};
      if (r.summary || (r.trimmed || []).length || entry.error) out.push({ kind: "context", entry });
    } else if (key.startsWith("turn-") || key === "completion") {
      const message = entry.result?.message || {};
      for (const call of message.tool_calls || []) calls.push(call);
      out.push({ kind: "assistant", entry, message });
    } else if (key.startsWith("tool-")) {
      const number = Number(key.split("-")[1]);
      const call = calls[number - 1] || {};
      out.push({ kind: "tool", entry, call, name: key.split("-").slice(2).join("-") });
    } else if (key.startsWith("approval-")) {
      out.push({ kind: "decision", entry });
    } else if (key.startsWith("mcp-tools-")) {
      out.push({ kind: "tools", entry, server: key.slice("mcp-tools-".length) });
    } else {
      out.push({ kind: "other", entry });
    }
  }
  return out;
}

function PendingApproval({ step, base, canOperate, onDecided }) {
  const call = step.waiting_detail?.tool_call || {};
  const [editing, setEditing] = useState(false);
  const [text, setText] = useState(JSON.stringify(call.arguments ?? {}, null, 2));
  const [rejecting, setRejecting] = useState(false);
  const [comment, setComment] = useState("");
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const disabled = !canOperate || busy;
  const title = canOperate ? undefined : "needs the operator role";

  async function decide(action, body) {
    setBusy(true);
    setError(null);
    try {
      await post(`${base}/${action}/`, { tool_call: call.id, ...body });
      onDecided();
    } catch (err) {
      setError(err.message);
    } finally {
      setBusy(false);
    }
  }

  function approveEdited() {
    let args;
    try {
      args = JSON.parse(text);
    } catch (err) {
      setError(`The arguments are not valid JSON: ${err.message}`);
      return;
    }
    if (!args || typeof args !== "object" || Array.isArray(args)) {
      setError("The arguments must be a JSON object.");
      return;
    }
    decide("approve", { arguments: args });
  }

  return (
    <div className="banner warn conversation-approval" data-tool-approval={call.id}>
      <strong>Tool call waiting for approval:</strong> <code>{call.name}</code>
      {editing ? (
        <label className="stack">Arguments (JSON)
          <textarea aria-label="Arguments" rows={6} value={text} onChange={(e) => setText(e.target.value)} />
        </label>
      ) : <JsonView value={call.arguments} label="Arguments" />}
      {rejecting ? (
        <label className="stack">Message to the model
          <input aria-label="Rejection message" value={comment} onChange={(e) => setComment(e.target.value)} />
        </label>
      ) : null}
      <div className="actions" role="group" aria-label="Tool call decision">
        {!editing && !rejecting ? (
          <>
            <button type="button" disabled={disabled} title={title} onClick={() => decide("approve", {})}>Approve</button>
            <button type="button" className="secondary" disabled={disabled} title={title}
              onClick={() => setEditing(true)}>Edit and approve</button>
            <button type="button" className="danger" disabled={disabled} title={title}
              onClick={() => setRejecting(true)}>Reject</button>
          </>
        ) : null}
        {editing ? (
          <>
            <button type="button" disabled={disabled} title={title} onClick={approveEdited}>Approve edited call</button>
            <button type="button" className="secondary" onClick={() => setEditing(false)}>Cancel</button>
          </>
        ) : null}
        {rejecting ? (
          <>
            <button type="button" className="danger" disabled={disabled} title={title}
              onClick={() => decide("reject", { comment })}>Reject call</button>
            <button type="button" className="secondary" onClick={() => setRejecting(false)}>Cancel</button>
          </>
        ) : null}
      </div>
      {error ? <p className="errors" role="alert">{error}</p> : null}
    </div>
  );
}

function Writing({ live }) {
  return <pre data-streaming={live.done ? "done" : "live"} aria-live="polite">{live.text}</pre>;
}

export function Conversation({ spec, step, entries, base, canOperate, onDecided, live }) {
  const [raw, setRaw] = useState(false);
  // The reply being written in this attempt, while the journal does not hold it finished.
  const writing = live && live.attempt === step.attempt
    && !entries.some((e) => e.key === live.key && e.status === "succeeded") ? live : null;
  const config = spec.config || {};
  const inDoubtKey = step.status === "waiting" && step.waiting_reason === "in_doubt" ? step.waiting_detail?.key : null;
  const waiting = step.status === "waiting" && step.waiting_reason === "tool_approval";
  const trimmed = trimmedCalls(entries);
  return (
    <div className="conversation" data-conversation>
      {waiting ? <PendingApproval key={step.waiting_detail?.tool_call?.id} step={step} base={base}
        canOperate={canOperate} onDecided={onDecided} /> : null}
      <div className="actions">
        <button type="button" className="link" onClick={() => setRaw(!raw)}>{raw ? "Conversation" : "Raw JSON"}</button>
      </div>
      {raw ? <JsonView value={entries} label="Journal" /> : (
        <ol className="messages">
          {config.system ? <li className="message system" data-role="system"><div className="who">system</div>
            <pre>{config.system}</pre></li> : null}
          {config.prompt ? <li className="message user" data-role="user">
            <div className="who">user{String(config.prompt).includes("{{") ? " (as written, before its template is filled in)" : ""}</div>
            <pre>{config.prompt}</pre></li> : null}
          {items(entries).map(({ kind, entry, message, call, name, server }) => {
            const took = seconds(entry);
            if (kind === "assistant") {
              const usage = entry.result?.usage || {};
              const growing = writing && writing.key === entry.key ? writing : null;
              const doubt = inDoubtKey === entry.key;
              return (
                <li key={entry.key} className={`message assistant${doubt ? " in-doubt" : ""}`} data-role="assistant"
                  data-journal-key={entry.key}>
                  <div className="who">assistant · <code>{entry.key}</code> · {doubt ? "in doubt" : entry.status}
                    {entry.result?.model ? <> · {entry.result.model}</> : null}
                    {usage.total_tokens != null ? <> · <span data-turn-usage>{count(usage.prompt_tokens)} in + {count(usage.completion_tokens)} out
                      tokens · <span data-turn-cost>{formatCost(entry.cost_usd)}</span></span></> : null}
                    {took != null ? <> · {formatDuration(took)}</> : null}{growing ? " · writing…" : null}</div>
                  {message.content ? <pre>{message.content}</pre> : growing ? <Writing live={growing} /> : null}
                  {(message.tool_calls || []).map((c) => (
                    <div key={c.id} className="muted">asks for <code>{c.function?.name}</code></div>
                  ))}
                  {entry.error ? <pre className="error-text">{entry.error_type}: {entry.error}</pre> : null}
                </li>
              );
            }
            if (kind === "tool") {
              const doubt = inDoubtKey === entry.key;
              return (
                <li key={entry.key} className={`message tool${doubt ? " in-doubt" : ""}`} data-role="tool"
                  data-journal-key={entry.key}>
                  <div className="who">tool <code>{name}</code> · {doubt ? "in doubt" : entry.status}
                    {took != null ? <> · {formatDuration(took)}</> : null}</div>
                  {trimmed[call.id] ? <div className="muted" data-trimmed>result trimmed from what the model is sent
                    from <code>{trimmed[call.id]}</code> on</div> : null}
                  <JsonView value={parseArgs(call.function?.arguments)} label={`Arguments of ${entry.key}`} />
                  {entry.error ? <pre className="error-text">{entry.error_type}: {entry.error}</pre>
                    : <JsonView value={entry.result} label={`Result of ${entry.key}`} />}
                </li>
              );
            }
            if (kind === "context") {
              const r = entry.result || {};
              return (
                <li key={entry.key} className="message system" data-role="context" data-journal-key={entry.key}>
                  <div className="who">context · <code>{entry.key}</code> · {entry.status}
                    {r.tokens != null ? <> · about {r.tokens} tokens, {r.tokens_sent} sent (max {r.max_tokens})</> : null}
                    {(r.trimmed || []).length ? <> · {r.trimmed.length} tool result(s) trimmed</> : null}</div>
                  {r.summary ? <>
                    <div className="muted">{r.summary.messages} earlier messages replaced by this summary:</div>
                    <pre>{r.summary.text}</pre></> : null}
                  {entry.error ? <pre className="error-text">{entry.error_type}: {entry.error}</pre> : null}
                </li>
              );
            }
            if (kind === "decision") {
              const d = entry.result || {};
              return (
                <li key={entry.key} className="message decision" data-role="decision" data-journal-key={entry.key}>
                  <div className="who">{d.decision} by {d.by}{d.edited ? " (arguments edited)" : ""}
                    {d.comment ? <>: {d.comment}</> : null}</div>
                </li>
              );
            }
            if (kind === "tools") {
              return (
                <li key={entry.key} className="message system" data-role="tools" data-journal-key={entry.key}>
                  <div className="who">tools of MCP server <code>{server}</code>: {(entry.result || []).map((t) => t.name).join(", ")}</div>
                </li>
              );
            }
            return <li key={entry.key} className="message"><code>{entry.key}</code> · {entry.status}</li>;
          })}
          {writing && !entries.some((e) => e.key === writing.key) ? (
            <li className="message assistant" data-role="assistant" data-journal-key={writing.key}>
              <div className="who">assistant · <code>{writing.key}</code> · writing…</div>
              <Writing live={writing} />
            </li>
          ) : null}
        </ol>
      )}
    </div>
  );
}
