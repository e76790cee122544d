// A run's live state: built from the snapshot, advanced by events in seq order, never twice.
//
// The socket sends {"type": "snapshot", last_seq, ...} on every (re)connect, then {"type": "events"}.
// After a reconnect, or when an event arrives with a gap before it, the store fetches
// /api/runs/<id>/events/?after=<last seq> and applies what it missed, in order.
import { get } from "./api.js";
import { STEP_STATUSES, TERMINAL } from "./status.jsx";

export class RunStore {
  constructor(runId, snapshot) {
    this.runId = runId;
    this.listeners = new Set();
    this.connection = "connecting"; // connecting | live | reconnecting | closed
    this.closeReason = "";
    this.version = 0;
    this.log = []; // recent events, newest last
    this.catchingUp = null;
    this.buffer = [];
    this.texts = {}; // node id -> {attempt, key, text, done}: a model's reply as it is written (not an event)
    this.frame = null; // cancels the announcement emitSoon() has planned
    this.applySnapshot(snapshot);
  }

  subscribe = (fn) => {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  };

  getVersion = () => this.version;

  emit() {
    if (this.frame) this.frame();
    this.frame = null;
    this.version += 1;
    for (const fn of this.listeners) fn();
  }

  // Events are announced once per animation frame, however many arrived in it: at 100 events a second
  // the run view draws each frame's events together instead of once per websocket message. (A hidden
  // tab runs no animation frames: there, within 100 ms.)
  emitSoon() {
    if (this.frame) return;
    const flush = () => {
      this.frame = null;
      this.emit();
    };
    if (document.hidden) {
      const timer = setTimeout(flush, 100);
      this.frame = () => clearTimeout(timer);
    } else {
      const frame = requestAnimationFrame(flush);
      this.frame = () => cancelAnimationFrame(frame);
    }
  }

  applySnapshot(snapshot) {
    this.definition = snapshot.definition;
    this.layout = snapshot.layout || {};
    this.repeatRisks = snapshot.repeat_risks || {}; // node id -> its calls that are not safe to repeat
    this.run = { ...snapshot.run };
    this.lastSeq = snapshot.last_seq;
    this.steps = {};
    for (const s of snapshot.steps) this.steps[s.node_id] = { ...s };
    this.attempts = {};
    for (const a of snapshot.attempts) (this.attempts[a.node_id] ||= []).push({ ...a });
    this.touched = new Set(Object.keys(this.steps));
    // The critical path as the server defines it (engine.services.queries.run_critical_path): the graph
    // and the timeline mark this one, never one of their own.
    this.critical = snapshot.critical_path || [];
  }

  // An attempt ended, so the path may have changed: re-read it from the timeline API, at most once a
  // second, one request at a time.
  refreshCritical() {
    if (this.criticalTimer) return;
    this.criticalTimer = setTimeout(async () => {
      try {
        const body = await get(`/api/runs/${this.runId}/timeline/`);
        this.critical = body.critical_path || [];
        this.emitSoon();
      } catch {
        // Kept as it was: the next attempt to end tries again.
      } finally {
        this.criticalTimer = null;
      }
    }, 1000);
  }

  // The text a model has written so far in a step's journaled call; each message holds all of it.
  receiveText({ node, attempt, key, text, done }) {
    this.texts[node] = { attempt, key, text, done };
    this.emitSoon();
  }

  // Events from the socket. Returns nothing; fetches the missing ones when there is a gap.
  receive(events) {
    const fresh = events.filter((e) => e.seq > this.lastSeq).sort((a, b) => a.seq - b.seq);
    if (!fresh.length) return;
    if (fresh[0].seq !== this.lastSeq + 1 || this.catchingUp) {
      this.buffer.push(...fresh);
      this.catchUp();
      return;
    }
    this.applyAll(fresh);
  }

  applyAll(events) {
    let changed = false;
    for (const e of events) {
      if (e.seq !== this.lastSeq + 1) continue;
      this.apply(e);
      this.lastSeq = e.seq;
      changed = true;
    }
    if (changed) this.emitSoon();
  }

  async catchUp() {
    if (this.catchingUp) return this.catchingUp;
    this.catchingUp = (async () => {
      try {
        for (let guard = 0; guard < 1000; guard += 1) {
          const page = await get(`/api/runs/${this.runId}/events/?after=${this.lastSeq}&limit=1000`);
          const events = page.events.map((e) => ({ ...e, at: e.at || e.created_at }));
          this.applyAll(events);
          if (!page.has_more) break;
        }
      } finally {
        this.catchingUp = null;
        const buffered = this.buffer.filter((e) => e.seq > this.lastSeq).sort((a, b) => a.seq - b.seq);
        this.buffer = [];
        if (buffered.length) this.receive(buffered);
      }
    })();
    return this.catchingUp;
  }

  apply(e) {
    this.log.push(e);
    if (this.log.length > 500) this.log.splice(0, this.log.length - 500);
    const [kind, what] = e.type.split(".", 2);
    const p = e.payload || {};
    if (kind === "run") {
      if (["pending", "running", "succeeded", "failed", "cancelled"].includes(what)) {
        this.run = { ...this.run, status: what, last_seq: e.seq };
        if (what === "running") {
          this.run.finished_at = null;
          if (!this.run.started_at) this.run.started_at = e.at; // a run that waited for its concurrency key
        }
        if (TERMINAL.has(what)) this.run.finished_at = e.at;
        if (p.error !== undefined) this.run.error = p.error;
      } else if (what === "version_changed") {
        this.run = { ...this.run, version: p.to_version };
      }
      return;
    }
    if (kind !== "step" || !e.node_id || !STEP_STATUSES.has(what)) return;
    const prev = this.steps[e.node_id] || { node_id: e.node_id };
    const step = { ...prev, status: what };
    if (what === "queued") {
      step.attempt = p.attempt ?? step.attempt;
      step.queued_at = e.at;
      step.waiting_reason = p.limits ? "limit" : "";
      step.waiting_detail = p.limits ? { limits: p.limits } : null;
      step.finished_at = null;
      step.error = "";
      step.worker = "";
      this.attemptRow(e.node_id, step.attempt).queued_at = e.at;
    } else if (what === "running") {
      step.attempt = p.attempt ?? step.attempt;
      step.waiting_reason = "";
      step.waiting_detail = null;
      step.started_at = e.at;
      step.worker = p.worker || "";
      step.heartbeat_at = e.at;
      const row = this.attemptRow(e.node_id, step.attempt);
      row.started_at = e.at;
      row.outcome = "running";
      row.worker = step.worker;
    } else if (what === "pending") {
      step.finished_at = null;
      step.error = "";
    } else {
      if (TERMINAL.has(what)) step.finished_at = e.at;
      if (p.error) step.error = p.error;
      if (what === "waiting") {
        step.waiting_reason = p.reason || "";
        step.waiting_detail = p.detail ?? null;
      } else {
        step.waiting_reason = "";
      }
      const rows = this.attempts[e.node_id] || [];
      if (p.inline) {
        // An inline step ran inside the transaction that made it ready: one event carries its attempt.
        step.attempt = p.attempt ?? step.attempt;
        const started = new Date(Date.parse(e.at) - (p.duration_ms || 0)).toISOString();
        step.started_at = started;
        step.queued_at = started;
        const row = this.attemptRow(e.node_id, step.attempt);
        Object.assign(row, { queued_at: started, started_at: started, finished_at: e.at, outcome: what, worker: "inline" });
        this.refreshCritical();
      }
      const row = rows.find((r) => r.number === (p.attempt ?? step.attempt));
      if (row && row.outcome === "running" && p.from === "running") {
        row.finished_at = e.at;
        row.outcome = what === "retry_wait" ? "failed" : what;
        this.refreshCritical();
      } else if (row && row.outcome === "waiting" && p.decision) {
        // Approved or rejected: the attempt that parked for the decision ends with it.
        row.outcome = what;
      }
    }
    this.steps[e.node_id] = step;
    this.touched.add(e.node_id);
  }

  attemptRow(nodeId, number) {
    const rows = (this.attempts[nodeId] ||= []);
    let row = rows.find((r) => r.number === number);
    if (!row) {
      row = { node_id: nodeId, number, queued_at: null, started_at: null, finished_at: null, outcome: "queued" };
      rows.push(row);
    }
    return row;
  }

  setConnection(state, reason = "") {
    this.connection = state;
    this.closeReason = reason;
    this.emit();
  }
}

// The websocket, reconnecting with backoff; the store applies what arrives.
export function connectRun(store) {
  let socket = null;
  let attempts = 0;
  let stopped = false;
  let timer = null;
  let everConnected = false;
  const proto = location.protocol === "https:" ? "wss" : "ws";

  function open() {
    socket = new WebSocket(`${proto}://${location.host}/ws/runs/${store.runId}/`);
    socket.onmessage = (msg) => {
      const data = JSON.parse(msg.data);
      if (data.type === "snapshot") {
        attempts = 0;
        if (everConnected && data.last_seq > store.lastSeq) {
          // Missed transitions while away: fetch them in order, then take the fresh details.
          store.catchUp().then(() => {
            if (data.last_seq >= store.lastSeq) store.applySnapshot(data);
            store.setConnection("live");
          });
        } else {
          if (data.last_seq >= store.lastSeq) store.applySnapshot(data);
          store.setConnection("live");
        }
        everConnected = true;
      } else if (data.type === "events") {
        store.receive(data.events);
      } else if (data.type === "stream") {
        store.receiveText(data);
      }
    };
    socket.onclose = (ev) => {
      if (stopped) return;
      if (ev.code >= 4400 && ev.code < 4500) {
        const why = { 4401: "You are logged out.", 4403: "You may not view this run.", 4404: "This run no longer exists." };
        store.setConnection("closed", why[ev.code] || "Closed by the server.");
        return;
      }
      store.setConnection("reconnecting");
      attempts += 1;
      const delay = Math.min(10000, 250 * 2 ** Math.min(attempts, 6)) * (0.75 + Math.random() * 0.5);
      timer = setTimeout(open, delay);
    };
  }

  open();
  const onOnline = () => {
    if (socket && socket.readyState === WebSocket.CLOSED) {
      clearTimeout(timer);
      open();
    }
  };
  window.addEventListener("online", onOnline);
  return {
    close() {
      stopped = true;
      clearTimeout(timer);
      window.removeEventListener("online", onOnline);
      if (socket) socket.close();
    },
    // For tests and operators: drop the socket as a network failure would.
    drop() {
      if (socket) socket.close(4000);
    },
  };
}
