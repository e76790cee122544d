// The workflow graph as React Flow nodes and edges, shared by the run view and the editor.
import { Handle, Position } from "@xyflow/react";
import { memo, useEffect, useState, useSyncExternalStore } from "react";
import { Ticks, withoutNode } from "./dialogs.jsx";
import { MapProgress, mapCounts, mapKey } from "./MapProgress.jsx";
import { ACTIVE, StatusBadge, formatDuration } from "./status.jsx";

export const NODE_W = 190;
export const NODE_H = 76;

export function edgeId(e) {
  return `${e.source}->${e.target}`;
}

function duration(step, now) {
  if (!step || !step.started_at) return null;
  if (!step.finished_at && !now) return null;
  const end = step.finished_at ? Date.parse(step.finished_at) : now;
  return Math.max(0, (end - Date.parse(step.started_at)) / 1000);
}

// A step in the run view: status (icon + label), attempt count, duration. It reads its own step from the
// run store, so an event re-renders the steps it touched and leaves React Flow's graph alone.
export const StepNode = memo(function StepNode({ data, selected }) {
  const { spec, store, stale, critical } = data;
  const step = useSyncExternalStore(store.subscribe, () => store.steps[spec.id]);
  const mapState = useSyncExternalStore(store.subscribe, () => (spec.for_each ? mapKey(mapCounts(store.steps, spec.id)) : ""));
  const map = mapState ? mapCounts(store.steps, spec.id) : null;
  const attempts = (store.attempts[spec.id] || []).filter((a) => a.started_at).length;
  const status = step ? step.status : "pending";
  const secs = duration(step, useClock(ACTIVE.has(status)));
  return (
    <div
      className={`wnode status-bg-${status}${selected ? " selected" : ""}${stale ? " stale" : ""}${critical ? " critical" : ""}`}
      data-node-id={spec.id}
      data-status={status}
      data-attempts={attempts}
      data-critical={critical ? "true" : undefined}
    >
      <Handle type="target" position={Position.Left} isConnectable={false} />
      <div className="wnode-title" title={critical ? `${spec.id} (on the critical path)` : spec.id}>
        {critical ? <span className="crit-mark" aria-hidden="true">★</span> : null}{spec.name || spec.id}
      </div>
      <div className="wnode-meta">
        <StatusBadge status={status} stale={stale} />
      </div>
      <div className="wnode-foot muted">
        <span>{spec.type}</span>
        {attempts > 0 ? <span title="attempts">#{attempts}</span> : null}
        {secs != null ? <span title="duration">{formatDuration(secs)}</span> : null}
      </div>
      {map ? <MapProgress nodeId={spec.id} map={map} /> : null}
      <Handle type="source" position={Position.Right} isConnectable={false} />
    </div>
  );
});

// One clock for every running step's node: the time now, every second while ``active``, else 0.
const clock = { now: Date.now(), listeners: new Set(), timer: null };

function subscribeClock(fn) {
  clock.listeners.add(fn);
  if (!clock.timer) {
    clock.now = Date.now();
    clock.timer = setInterval(() => {
      clock.now = Date.now();
      for (const listener of clock.listeners) listener();
    }, 1000);
  }
  return () => {
    clock.listeners.delete(fn);
    if (!clock.listeners.size) {
      clearInterval(clock.timer);
      clock.timer = null;
    }
  };
}

const noSubscription = () => () => {};

function useClock(active) {
  return useSyncExternalStore(active ? subscribeClock : noSubscription, () => (active ? clock.now : 0));
}

// A node in the editor: type, id, and its validation errors.
export const EditNode = memo(function EditNode({ data, selected }) {
  const { spec, errors, label } = data;
  const bad = errors && errors.length > 0;
  return (
    <div
      className={`wnode edit${selected ? " selected" : ""}${bad ? " invalid" : ""}`}
      data-node-id={spec.id}
      data-invalid={bad ? "true" : "false"}
    >
      <Handle type="target" position={Position.Left} />
      <div className="wnode-title">{spec.name || spec.id}</div>
      <div className="wnode-foot muted"><span>{label || spec.type}</span><code>{spec.id}</code></div>
      {bad ? (
        <div className="wnode-errors" role="alert" data-errors-for={spec.id}>
          <span aria-hidden="true">⚠</span> <Ticks text={withoutNode(errors[0].message, spec.id)} />
          {errors.length > 1 ? ` (+${errors.length - 1} more)` : ""}
        </div>
      ) : null}
      <Handle type="source" position={Position.Right} />
    </div>
  );
});

// The page theme (base.html sets data-theme and announces changes), for React Flow's colorMode.
export function useTheme() {
  const [theme, setTheme] = useState(document.documentElement.dataset.theme || "light");
  useEffect(() => {
    const on = (e) => setTheme(e.detail);
    window.addEventListener("weft-theme", on);
    return () => window.removeEventListener("weft-theme", on);
  }, []);
  return theme;
}
