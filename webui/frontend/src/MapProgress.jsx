// A mapped node (for_each) in the run view: its items counted by status, and a progress bar.
import { STATUS, TERMINAL } from "./status.jsx";

// The statuses of node ``nodeId``'s items (steps ``nodeId[i]``) among the run's steps, counted.
export function mapCounts(steps, nodeId) {
  const prefix = `${nodeId}[`;
  const counts = {};
  let total = 0;
  for (const id in steps) {
    if (!id.startsWith(prefix)) continue;
    const st = steps[id].status || "pending";
    counts[st] = (counts[st] || 0) + 1;
    total += 1;
  }
  return { counts, total };
}

export function mapKey(map) {
  return map ? `${map.total}:${Object.entries(map.counts).map(([s, n]) => `${s}=${n}`).join(",")}` : "";
}

export function MapProgress({ nodeId, map }) {
  const { counts, total } = map;
  const done = Object.entries(counts).filter(([s]) => TERMINAL.has(s)).reduce((a, [, n]) => a + n, 0);
  const share = (n) => `${total ? (n * 100) / total : 0}%`;
  const broken = (counts.failed || 0) + (counts.upstream_failed || 0) + (counts.cancelled || 0);
  return (
    <div className="wmap" data-map-for={nodeId} data-items={total} data-done={done}>
      <div className="wmap-bar" role="progressbar" aria-label={`${nodeId} items finished`} aria-valuemin={0}
        aria-valuemax={total} aria-valuenow={done} title={`${done} of ${total} items finished`}>
        <span className="wmap-fill ok" style={{ width: share(counts.succeeded || 0) }} />
        <span className="wmap-fill skipped" style={{ width: share(counts.skipped || 0) }} />
        <span className="wmap-fill bad" style={{ width: share(broken) }} />
      </div>
      <div className="wmap-counts">
        {Object.entries(counts).map(([status, n]) => (
          <span key={status} className={`status-${status}`} title={STATUS[status]?.label}>
            <span aria-hidden="true">{STATUS[status]?.icon}</span> {n}
          </span>
        ))}
        {total ? null : <span className="muted">no items yet</span>}
      </div>
    </div>
  );
}
