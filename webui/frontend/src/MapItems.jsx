// A mapped node's items in its drawer: a paged table (GET .../steps/<node>/items/?page=&status=), each
// row with the item's index, status, attempts and duration, and a button opening the item's own drawer.
import { useEffect, useState } from "react";
import { get } from "./api.js";
import { mapCounts, mapKey } from "./MapProgress.jsx";
import { STATUS, StatusBadge, formatDuration } from "./status.jsx";

export const ITEMS_PAGE = 10;

// "each[3]" -> ["each", 3]; a step that is not an item -> null.
export function itemOf(nodeId) {
  const m = /^(.*)\[(\d+)\]$/.exec(nodeId || "");
  return m ? [m[1], Number(m[2])] : null;
}

// The page and filter each node's list was left on: back from an item's drawer, the list is where it was.
const remembered = new Map();

export function MapItems({ store, nodeId, onOpen }) {
  const memo = `${store.runId}/${nodeId}`;
  const [page, setPage] = useState(() => remembered.get(memo)?.page || 1);
  const [status, setStatus] = useState(() => remembered.get(memo)?.status || "");
  useEffect(() => {
    remembered.set(memo, { page, status });
  }, [memo, page, status]);
  const [data, setData] = useState(null);
  const [problem, setProblem] = useState(null);
  const map = mapCounts(store.steps, nodeId);
  const key = mapKey(map); // read the page again when an item changes status

  useEffect(() => {
    let cancelled = false;
    const q = new URLSearchParams({ page: String(page), page_size: String(ITEMS_PAGE) });
    if (status) q.set("status", status);
    const t = setTimeout(() => {
      get(`/api/runs/${store.runId}/steps/${encodeURIComponent(nodeId)}/items/?${q}`)
        .then((d) => {
          if (!cancelled) {
            setData(d);
            setProblem(null);
          }
        })
        .catch((e) => !cancelled && setProblem(e.message));
    }, data ? 200 : 0);
    return () => {
      cancelled = true;
      clearTimeout(t);
    };
  }, [nodeId, page, status, key]);

  const count = data ? data.count : 0;
  const pages = Math.max(1, Math.ceil(count / ITEMS_PAGE));
  const first = (page - 1) * ITEMS_PAGE;
  return (
    <section className="map-items" data-map-items={nodeId}>
      <div className="map-items-bar">
        <label htmlFor={`items-status-${nodeId}`}>Status</label>
        <select id={`items-status-${nodeId}`} value={status} onChange={(e) => { setStatus(e.target.value); setPage(1); }}>
          <option value="">all ({map.total})</option>
          {Object.entries(map.counts).map(([s, n]) => (
            <option key={s} value={s}>{STATUS[s]?.label.toLowerCase() || s} ({n})</option>
          ))}
        </select>
        <div className="grow" />
        <span className="muted" role="status" aria-live="polite" data-items-range>
          {count ? `${first + 1}–${Math.min(count, first + ITEMS_PAGE)} of ${count}` : data ? "no items" : "loading…"}
        </span>
      </div>
      {problem ? <p className="errors">Could not load the items: {problem}</p> : null}
      <table className="list compact map-items-table" aria-label={`Items of ${nodeId}`}>
        <thead><tr><th scope="col">Item</th><th scope="col">Status</th><th scope="col">Attempts</th>
          <th scope="col">Duration</th><th scope="col"><span className="sr-only">Open</span></th></tr></thead>
        <tbody>
          {(data?.results || []).map((it) => (
            <tr key={it.node_id} data-item={it.map_index} data-status={it.status}>
              <td><code>{it.map_index}</code></td>
              <td><StatusBadge status={it.status} /></td>
              <td>{it.attempts_count}</td>
              <td>{it.duration_s != null ? formatDuration(it.duration_s) : it.started_at ? "running" : "—"}</td>
              <td><button type="button" className="link" aria-label={`Open item ${it.map_index}`}
                onClick={() => onOpen(it.node_id)}>Open</button></td>
            </tr>
          ))}
        </tbody>
      </table>
      <div className="map-items-pager">
        <button type="button" className="secondary" disabled={page <= 1} onClick={() => setPage((p) => p - 1)}>
          Previous page</button>
        <span className="muted" data-items-page={page}>page {page} of {pages}</span>
        <button type="button" className="secondary" disabled={page >= pages} onClick={() => setPage((p) => p + 1)}>
          Next page</button>
      </div>
    </section>
  );
}
