// The workflow graph as React Flow nodes and edges, shared by the run view and the editor.
import { Handle, Position } from "@xyflow/react";
import { memo, useEffect, useState } from "react";
import { Ticks, withoutNode } from "./dialogs.jsx";
import { MapProgress } from "./MapProgress.jsx";
import { StatusBadge, formatDuration } from "./status.jsx";

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

// A step in the run view: status (icon + label), attempt count, duration.
export const StepNode = memo(function StepNode({ data, selected }) {
  const { spec, step, stale, now, attempts, map, critical } = data;
  const status = step ? step.status : "pending";
  const secs = duration(step, now);
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
