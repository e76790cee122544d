// Every status has an icon and a text label besides its colour (colour-blind safe).
export const STATUS = {
  pending: { icon: "○", label: "Pending" },
  queued: { icon: "◔", label: "Queued" },
  running: { icon: "▶", label: "Running" },
  waiting: { icon: "◷", label: "Waiting" },
  retry_wait: { icon: "↻", label: "Retry wait" },
  succeeded: { icon: "✓", label: "Succeeded" },
  failed: { icon: "✕", label: "Failed" },
  skipped: { icon: "↷", label: "Skipped" },
  upstream_failed: { icon: "⊘", label: "Upstream failed" },
  cancelled: { icon: "■", label: "Cancelled" },
};

export const STEP_STATUSES = new Set(Object.keys(STATUS));
export const TERMINAL = new Set(["succeeded", "failed", "skipped", "upstream_failed", "cancelled"]);
// What "Hide finished steps" hides: steps that finished without a problem. Failures stay in view.
export const FINISHED_OK = new Set(["succeeded", "skipped"]);
export const ACTIVE = new Set(["queued", "running", "waiting", "retry_wait"]);
export const SETTLEABLE = new Set(["pending", "queued", "waiting", "retry_wait", "failed", "upstream_failed"]);

export function StatusBadge({ status, stale }) {
  const s = STATUS[status] || { icon: "?", label: status || "unknown" };
  return (
    <span className={`badge status-${status}`} data-status={status} title={stale ? "last known status" : undefined}>
      <span aria-hidden="true">{s.icon}</span> {s.label}
      {stale ? <span className="stale-mark"> (last known)</span> : null}
    </span>
  );
}

// A run's short name: its id's last 8 hex digits, which are random (the first 8 are its creation time,
// shared by the runs made within about 65 s: engine/ids.py).
export function shortId(runId) {
  return String(runId).slice(-8);
}

// Durations as people write them: 350 ms, 4.2 s, 3 min 5 s, 24 h, 2 d 3 h.
export function formatDuration(seconds) {
  if (seconds == null || Number.isNaN(seconds)) return "";
  // Live durations count to the browser's "now", which ticks once a second and may trail the
  // server's clock: a step that has just started is 0 ms old, never negative.
  if (seconds < 0) seconds = 0;
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const pair = (big, bigUnit, small, smallUnit) => (small ? `${big} ${bigUnit} ${small} ${smallUnit}` : `${big} ${bigUnit}`);
  const whole = Math.round(seconds);
  if (whole < 3600) return pair(Math.floor(whole / 60), "min", whole % 60, "s");
  const minutes = Math.round(seconds / 60);
  if (minutes < 24 * 60) return pair(Math.floor(minutes / 60), "h", minutes % 60, "min");
  const hours = Math.round(seconds / 3600);
  return pair(Math.floor(hours / 24), "d", hours % 24, "h");
}

export const ts = (iso) => (iso ? Date.parse(iso) : null);
