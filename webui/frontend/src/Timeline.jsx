// The timeline: an SVG Gantt with one bar per attempt (queued and running as separate segments), a
// step's retry back-off and waits as its own segments, the server's critical path highlighted, a live
// "now" line, and long idle gaps compressed and marked; the legend names what is drawn.
// Rows are virtualised, so a run of 1,000 steps stays responsive.
import { useMemo, useRef, useState } from "react";
import { formatDuration } from "./status.jsx";

const ROW = 24;
const AXIS_H = 20;
const LABEL_W = 200;
const GAP_MIN_MS = 60_000; // idle stretches longer than this (and than 25% of the run) are compressed
const GAP_W = 28;
const MAP_ROWS = 200; // an expanded map shows at most this many rows: one per item, or per group of items
const STRIP_PX = 4; // a density strip's bucket width
const MIN_BAR = 4; // px: the narrowest attempt, so a 5 ms attempt in a day-long run still shows
const BAR_GAP = 1; // px between two attempts of a row that would otherwise touch or overlap

// Item steps ("each[3]") by their node, in item order.
function mapItemIds(steps) {
  const byNode = new Map();
  for (const id in steps) {
    const m = /^(.*)\[(\d+)\]$/.exec(id);
    if (m) (byNode.get(m[1]) || byNode.set(m[1], []).get(m[1])).push([Number(m[2]), id]);
  }
  for (const [k, v] of byNode) byNode.set(k, v.sort((a, b) => a[0] - b[0]).map(([, id]) => id));
  return byNode;
}

const STRIP_CLASS = { succeeded: "succeeded", failed: "failed", lost: "failed", timeout: "failed", running: "running",
  queued: "queued", waiting: "waiting", cancelled: "cancelled" };
const STRIP_ORDER = ["failed", "cancelled", "other", "waiting", "running", "queued", "succeeded"];
const stripClass = (b) => STRIP_CLASS[b.f == null && b.s == null ? "queued" : b.outcome] || "other";
// The legend entry that explains an attempt's running segment.
const OUTCOME_KEY = { running: "running", succeeded: "succeeded", failed: "failed", lost: "failed", timeout: "failed",
  waiting: "waiting", cancelled: "cancelled" };

// How many items' attempts were active in each STRIP_PX-wide bucket, by outcome: a small stacked histogram.
function DensityStrip({ bars, scale, now, y, height }) {
  const counts = new Map(); // bucket -> {outcome class -> n}
  let max = 1;
  for (const b of bars) {
    const from = b.s ?? b.q;
    if (from == null) continue;
    const cls = stripClass(b);
    const k0 = Math.floor(scale.x(from) / STRIP_PX);
    const k1 = Math.floor(scale.x(b.f ?? now) / STRIP_PX);
    for (let k = k0; k <= k1; k += 1) {
      const c = counts.get(k) || counts.set(k, {}).get(k);
      c[cls] = (c[cls] || 0) + 1;
    }
  }
  for (const c of counts.values()) max = Math.max(max, Object.values(c).reduce((a, n) => a + n, 0));
  const rects = [];
  for (const [k, c] of counts) {
    let top = y + height;
    for (const cls of STRIP_ORDER) {
      if (!c[cls]) continue;
      const h = Math.max(1, (c[cls] / max) * height);
      top -= h;
      rects.push(<rect key={`${k}-${cls}`} className={`strip-${cls}`} data-legend={cls} x={k * STRIP_PX} y={top}
        width={STRIP_PX} height={h} />);
    }
  }
  return rects;
}

function topoOrder(nodes, edges) {
  const indeg = new Map(nodes.map((n) => [n.id, 0]));
  const out = new Map();
  for (const e of edges) {
    indeg.set(e.target, (indeg.get(e.target) || 0) + 1);
    (out.get(e.source) || out.set(e.source, []).get(e.source)).push(e.target);
  }
  const queue = nodes.filter((n) => indeg.get(n.id) === 0).map((n) => n.id);
  const order = [];
  for (let head = 0; head < queue.length; head += 1) {
    const id = queue[head];
    order.push(id);
    for (const t of out.get(id) || []) {
      indeg.set(t, indeg.get(t) - 1);
      if (indeg.get(t) === 0) queue.push(t);
    }
  }
  return order;
}

// A step's own waits, each between the end of an attempt and what came next: the retry back-off after
// a failed, lost or timed-out attempt until the next attempt was queued; the wait after an attempt that
// parked the step (approval, sleep, event, a call in doubt) until the next attempt, the decision or the
// wake-up; and, after the last attempt, the wait still going on (until now).
function stepWaits(bars, step, now) {
  const waits = [];
  for (let i = 0; i < bars.length; i += 1) {
    const b = bars[i];
    if (b.f == null) continue;
    const next = bars[i + 1];
    if (next) {
      const to = next.q ?? next.s;
      const kind = b.outcome === "waiting" ? "waiting" : ["failed", "lost", "timeout"].includes(b.outcome) ? "backoff" : null;
      if (kind && to > b.f) waits.push({ after: b.number, from: b.f, to, kind, reason: kind === "backoff" ? "retry back-off" : "waited" });
      continue;
    }
    if (!step || step.attempt !== b.number) continue;
    const settled = step.finished_at ? Date.parse(step.finished_at) : null;
    if (step.status === "waiting") waits.push({ after: b.number, from: b.f, to: Math.max(now, b.f), kind: "waiting", reason: step.waiting_reason || "waiting" });
    else if (step.status === "retry_wait") waits.push({ after: b.number, from: b.f, to: Math.max(now, b.f), kind: "backoff", reason: "retry back-off" });
    else if (settled != null && settled - b.f > 250) waits.push({ after: b.number, from: b.f, to: settled, kind: "waiting", reason: "waited" });
  }
  return waits;
}

// A row's attempts in pixels: at their times, each at least MIN_BAR wide and pushed right past the
// attempt before it, so no attempt hides another at any zoom; the waits join the attempts they lie between.
function placeRow(bars, waits, scale, now) {
  let end = -Infinity;
  const placed = bars.map((b) => {
    const qx0 = b.q != null ? scale.x(b.q) : null;
    const sx0 = b.s != null ? scale.x(b.s) : null;
    const x0 = qx0 ?? sx0;
    const shift = Math.max(0, end + BAR_GAP - x0);
    const qx = qx0 != null ? qx0 + shift : null;
    const sx = sx0 != null ? sx0 + shift : null;
    const fx = Math.max(scale.x(b.f ?? now) + shift, (sx ?? qx) + MIN_BAR);
    end = fx;
    return { b, qx, sx, fx };
  });
  const at = new Map(placed.map((p, i) => [p.b.number, i]));
  const segs = waits.map((w) => {
    const i = at.get(w.after);
    const from = i != null ? placed[i].fx : scale.x(w.from);
    const next = i != null ? placed[i + 1] : null;
    const to = next ? (next.qx ?? next.sx) : Math.max(scale.x(w.to), from + 2);
    return { w, x: from, width: Math.max(2, to - from) };
  });
  return { placed, segs };
}

// Piecewise time -> x mapping that squeezes long idle stretches to GAP_W pixels.
function buildScale(intervals, t0, t1, width) {
  const sorted = intervals.filter(([a, b]) => a != null && b != null).sort((x, y) => x[0] - y[0]);
  const busy = [];
  for (const [a, b] of sorted) {
    if (busy.length && a <= busy[busy.length - 1][1]) busy[busy.length - 1][1] = Math.max(busy[busy.length - 1][1], b);
    else busy.push([a, b]);
  }
  const total = Math.max(1, t1 - t0);
  const gaps = [];
  for (let i = 1; i < busy.length; i += 1) {
    const g = busy[i][0] - busy[i - 1][1];
    if (g > GAP_MIN_MS && g > total * 0.25) gaps.push([busy[i - 1][1], busy[i][0]]);
  }
  const kept = total - gaps.reduce((s, [a, b]) => s + (b - a), 0);
  const pxPerMs = Math.max(1e-9, (width - gaps.length * GAP_W) / Math.max(1, kept));
  const x = (t) => {
    let px = 0;
    let cursor = t0;
    for (const [a, b] of gaps) {
      if (t <= a) break;
      px += (a - cursor) * pxPerMs;
      if (t < b) return px + ((t - a) / (b - a)) * GAP_W;
      px += GAP_W;
      cursor = b;
    }
    return px + (t - cursor) * pxPerMs;
  };
  return { x, gaps, pxPerMs };
}

const TICK_STEPS_MS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1e3, 2e3, 5e3, 1e4, 15e3, 3e4, 6e4, 12e4, 3e5, 6e5, 9e5,
  18e5, 36e5, 72e5, 108e5, 216e5, 432e5, 864e5];
const TICK_MIN_PX = 80;

// Axis ticks: time since the run's first attempt was queued, at a round step at least TICK_MIN_PX
// apart; none inside a compressed gap (the gap's own marker says how long it was).
function axisTicks(scale, t0, t1, width) {
  const step = TICK_STEPS_MS.find((ms) => ms * scale.pxPerMs >= TICK_MIN_PX) || TICK_STEPS_MS[TICK_STEPS_MS.length - 1];
  const spans = [];
  let from = t0;
  for (const [a, b] of scale.gaps) {
    spans.push([from, a]);
    from = b;
  }
  spans.push([from, t1]);
  const ticks = [];
  for (const [i, [a, b]] of spans.entries()) {
    // A label must end before the right edge, or before the next gap's marker.
    const limit = i < spans.length - 1 ? scale.x(b) - 44 : width - 40;
    for (let t = t0 + Math.ceil((a - t0) / step) * step; t <= b && ticks.length < 200; t += step) {
      const x = scale.x(t);
      if (x > limit) break;
      if (!ticks.length || x - ticks[ticks.length - 1].x >= TICK_MIN_PX * 0.75) ticks.push({ t, x, label: axisLabel(t - t0, step) });
    }
  }
  return ticks;
}

// "+1h 0m 10s" at a 10 s step, "+1h 30m" at a 15 min step, "+1.45 s" at a 50 ms step: as precise as
// the step, so two ticks never read the same.
function axisLabel(ms, step) {
  if (ms === 0) return "0";
  if (step < 1000) return subSecondLabel(ms, step);
  const total = Math.round(ms / 1000);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const sec = total % 60;
  const parts = [];
  if (h) parts.push(`${h}h`);
  if (m || (h && sec && step < 60_000)) parts.push(`${m}m`);
  if (step < 60_000 && (sec || !parts.length)) parts.push(`${sec}s`);
  return `+${parts.join(" ")}`;
}

// Under a second apart: milliseconds, then seconds with as many decimals as the step needs.
function subSecondLabel(ms, step) {
  if (ms < 1000) return `+${Math.round(ms)} ms`;
  const unit = step >= 100 ? 100 : step >= 10 ? 10 : 1; // ms: one, two or three decimals
  const digits = 3 - Math.log10(unit);
  const n = Math.round(ms / unit); // whole units, so the minutes and seconds below add up exactly
  const perMinute = 60_000 / unit;
  const seconds = ((n % perMinute) * unit / 1000).toFixed(digits);
  const minutes = Math.floor(n / perMinute);
  if (!minutes) return `+${seconds} s`;
  const h = Math.floor(minutes / 60);
  return `+${h ? `${h}h ` : ""}${minutes % 60}m ${seconds}s`;
}

// The legend, built from what the rows draw: every colour and mark on the chart, nothing else.
const LEGEND = [
  ["queued", "sw queued", "queued"],
  ["running", "sw running", "running"],
  ["succeeded", "sw succeeded", "succeeded"],
  ["failed", "sw failed", "failed"],
  ["waiting", "sw waiting", "waiting (approval, sleep, event, in doubt)"],
  ["backoff", "sw backoff", "retry back-off"],
  ["cancelled", "sw cancelled", "cancelled"],
  ["other", "sw other", "other"],
  ["crit", "sw crit", "critical path ★"],
  ["gap", "gapmark", "idle gap compressed"],
  ["now", "sw now", "now"],
];

function Legend({ used, gaps, live }) {
  const has = (key) => (key === "gap" ? gaps : key === "now" ? live : used.has(key));
  return (
    <span className="legend">
      {LEGEND.filter(([key]) => has(key)).map(([key, cls, label]) => (
        <span key={key} className="legend-item" data-legend-key={key}>
          <span className={cls} aria-hidden="true">{key === "gap" ? "≈" : null}</span>
          {" "}{label}{key === "failed" && used.has("lost") ? " (lost, timed out)" : ""}
        </span>
      ))}
    </span>
  );
}

// One row's attempts (queued, then running, coloured by outcome) and its waits between and after them.
function RowBars({ row, y, scale, now, onSelect }) {
  const { placed, segs } = placeRow(row.bars, row.waits || [], scale, now);
  return (
    <>
      {segs.map(({ w, x, width }) => (
        <rect key={`w${w.after}`} className={`seg-${w.kind}`} data-wait={row.id} data-wait-kind={w.kind}
          data-after-attempt={w.after} data-legend={w.kind} x={x} y={w.kind === "backoff" ? y + ROW / 2 - 4 : y + 6}
          width={width} height={w.kind === "backoff" ? 4 : ROW - 12}
          onClick={() => onSelect(row.id)}>
          <title>{`${row.id} ${w.kind === "backoff" ? "in retry back-off" : "waiting"} ${formatDuration((w.to - w.from) / 1000)} after attempt ${w.after}${w.reason !== "waited" && w.kind === "waiting" ? ` (${w.reason})` : ""}`}</title>
        </rect>
      ))}
      {placed.map(({ b, qx, sx, fx }) => {
        const title = [
          `${row.id} attempt ${b.number}: ${b.outcome}`,
          b.q != null && b.s != null ? `queued ${formatDuration((b.s - b.q) / 1000)}` : null,
          b.s != null ? `ran ${formatDuration(((b.f ?? now) - b.s) / 1000)}` : "waiting for a worker",
          b.worker ? `on ${b.worker}` : null,
        ].filter(Boolean).join(" · ");
        return (
          <g key={b.number} className={`tbar outcome-${b.outcome}`} data-node-id={row.id} data-attempt={b.number}
            onClick={() => onSelect(row.id)}>
            <title>{title}</title>
            {qx != null ? (
              <rect className="seg-queued" data-legend="queued" x={qx} y={y + 4} width={Math.max(1, (sx ?? fx) - qx)} height={ROW - 8} />
            ) : null}
            {sx != null ? (
              <rect className="seg-running" data-legend={OUTCOME_KEY[b.outcome] || "running"} x={sx} y={y + 2}
                width={fx - sx} height={ROW - 4} />
            ) : null}
          </g>
        );
      })}
    </>
  );
}

export function Timeline({ store, version, now, onSelect }) {
  const [zoom, setZoom] = useState(1);
  const [expanded, setExpanded] = useState(() => new Set());
  const toggle = (id) => setExpanded((was) => {
    const next = new Set(was);
    if (next.has(id)) next.delete(id);
    else next.add(id);
    return next;
  });
  const [scrollTop, setScrollTop] = useState(0);
  const [scrollLeft, setScrollLeft] = useState(0);
  const [height, setHeight] = useState(600);
  const box = useRef(null);

  const order = useMemo(() => topoOrder(store.definition.nodes, store.definition.edges), [store.definition]);
  const model = useMemo(() => {
    const rows = [];
    const intervals = [];
    const used = new Set(); // the legend's entries: what the rows draw
    let t0 = Infinity;
    let t1 = -Infinity;
    const barsOf = (id) => (store.attempts[id] || []).filter((a) => a.queued_at || a.started_at)
      .sort((x, y) => x.number - y.number).map((a) => {
        const q = a.queued_at ? Date.parse(a.queued_at) : null;
        const s = a.started_at ? Date.parse(a.started_at) : null;
        const f = a.finished_at ? Date.parse(a.finished_at) : null;
        const start = q ?? s;
        const end = f ?? now;
        t0 = Math.min(t0, start);
        t1 = Math.max(t1, end);
        intervals.push([start, end]);
        if (q != null) used.add("queued");
        if (s != null) used.add(OUTCOME_KEY[a.outcome] || "running");
        if (a.outcome === "lost" || a.outcome === "timeout") used.add("lost");
        return { number: a.number, q, s, f, outcome: a.outcome, worker: a.worker };
      });
    const waitsOf = (bars, step) => {
      const waits = stepWaits(bars, step, now);
      for (const w of waits) {
        t1 = Math.max(t1, w.to);
        intervals.push([w.from, w.to]);
        used.add(w.kind);
      }
      return waits;
    };
    const itemIds = mapItemIds(store.steps);
    const mapped = new Set(store.definition.nodes.filter((n) => n.for_each).map((n) => n.id));
    for (const id of order) {
      if (mapped.has(id)) {
        // A mapped node is one row: a density strip of its items' attempts; expanded, a row per item (or
        // per group of items, past MAP_ROWS).
        barsOf(id);
        const items = (itemIds.get(id) || []).map((itemId) => {
          const bars = barsOf(itemId);
          return { id: itemId, bars, waits: waitsOf(bars, store.steps[itemId]), status: store.steps[itemId]?.status || "pending" };
        });
        const all = items.flatMap((it) => it.bars);
        for (const b of all) used.add(stripClass(b)); // the strip's colours are the bars' (and "other")
        rows.push({ id, kind: "map", bars: all, items: items.length, status: store.steps[id]?.status || "pending" });
        if (!expanded.has(id)) continue;
        const per = Math.ceil(items.length / MAP_ROWS);
        if (per <= 1) {
          for (const it of items) rows.push({ id: it.id, kind: "item", bars: it.bars, waits: it.waits, status: it.status });
        } else {
          for (let i = 0; i < items.length; i += per) {
            const group = items.slice(i, i + per);
            rows.push({ id: `${id}[${i}–${i + group.length - 1}]`, kind: "group", open: group[0].id,
              bars: group.flatMap((it) => it.bars), items: group.length });
          }
          rows.push({ id: `${id}:note`, kind: "note", bars: [], label: `${items.length} items, ${per} per row (at most ${MAP_ROWS} rows)` });
        }
        continue;
      }
      const step = store.steps[id];
      const bars = barsOf(id);
      rows.push({ id, kind: "step", bars, waits: waitsOf(bars, step), status: step?.status || "pending" });
    }
    if (!Number.isFinite(t0)) {
      t0 = now;
      t1 = now + 1000;
    }
    // The server's critical path (engine.services.queries.run_critical_path), as the API and the graph show it.
    const critical = new Set(store.critical || []);
    if (critical.size) used.add("crit");
    return { rows, intervals, t0, t1, critical, used };
  }, [version, now, store, expanded, order]);

  const width = Math.max(400, ((box.current?.clientWidth || 900) - LABEL_W - 24) * zoom);
  const live = store.run.status === "running";
  const tEnd = live ? Math.max(model.t1, now) : model.t1;
  // While live, "now" counts as activity, so a long quiet tail before it is compressed too.
  const scale = buildScale(live ? [...model.intervals, [now, now]] : model.intervals, model.t0, tEnd, width);
  const first = Math.max(0, Math.floor(Math.max(0, scrollTop - AXIS_H) / ROW) - 5);
  const last = Math.min(model.rows.length, first + Math.ceil(height / ROW) + 10);
  const visible = model.rows.slice(first, last);
  const ticks = axisTicks(scale, model.t0, tEnd, width);
  const bodyH = model.rows.length * ROW + 10;
  const svgW = LABEL_W + width + 16;
  const nowX = scale.x(now);
  const path = [...model.critical];

  return (
    <div className="timeline" aria-label="Timeline">
      <div className="timeline-bar">
        <span className="muted" title={`critical path: ${path.join(" → ")}`}>
          {model.rows.reduce((n, r) => n + (r.kind === "step" || r.kind === "map" ? r.bars.length : 0), 0)} attempts · {formatDuration((tEnd - model.t0) / 1000)} ·
          critical path: {(path.length > 8 ? [...path.slice(0, 3), "…", ...path.slice(-2)] : path).join(" → ") || "—"}
          {path.length > 8 ? ` (${path.length} steps)` : ""}
        </span>
        <div className="grow" />
        <Legend used={model.used} gaps={scale.gaps.length > 0} live={live} />
        <button type="button" className="secondary" aria-label="Zoom out" onClick={() => setZoom((z) => Math.max(0.25, z / 1.5))}>−</button>
        <button type="button" className="secondary" aria-label="Zoom in" onClick={() => setZoom((z) => Math.min(40, z * 1.5))}>+</button>
        <button type="button" className="secondary" onClick={() => setZoom(1)}>Fit</button>
      </div>
      <div
        className="timeline-scroll"
        ref={(el) => {
          box.current = el;
          if (el && Math.abs(el.clientHeight - height) > 20) setHeight(el.clientHeight);
        }}
        onScroll={(e) => {
          setScrollTop(e.currentTarget.scrollTop);
          setScrollLeft(e.currentTarget.scrollLeft);
        }}
        tabIndex={0}
      >
        {/* The axis is its own SVG, sticky at the top of the scroll box: the bars scroll under it
            vertically, and it scrolls with them sideways. */}
        <svg className="timeline-axis" width={svgW} height={AXIS_H} aria-label="Time since the first attempt was queued">
          <g transform={`translate(${LABEL_W},0)`} className="axis">
            {ticks.map(({ t, x, label }) => (
              <g key={t} data-tick-ms={t - model.t0}>
                <line x1={x} x2={x} y1={AXIS_H - 5} y2={AXIS_H} />
                <text x={x + 3} y={13}>{label}</text>
              </g>
            ))}
          </g>
          <g transform={`translate(${LABEL_W},0)`}>
            {scale.gaps.map(([a, b], i) => (
              <g key={i} className="gap" data-gap-ms={b - a} data-legend="gap">
                <rect x={scale.x(a)} y={0} width={GAP_W} height={AXIS_H} />
                <text x={scale.x(a) + GAP_W / 2} y={14} textAnchor="middle">≈</text>
                <title>{`idle ${formatDuration((b - a) / 1000)} (compressed)`}</title>
              </g>
            ))}
          </g>
          {live ? <line className="nowline" x1={LABEL_W + nowX} x2={LABEL_W + nowX} y1={0} y2={AXIS_H} /> : null}
          <rect className="tlabels-bg" x={scrollLeft} y={0} width={LABEL_W} height={AXIS_H} />
        </svg>
        <svg width={svgW} height={bodyH} role="img" aria-label="Attempts over time">
          <g transform={`translate(${LABEL_W},0)`} className="grid">
            {ticks.map(({ t, x }) => <line key={t} x1={x} x2={x} y1={0} y2={bodyH} />)}
            {scale.gaps.map(([a, b], i) => (
              <rect key={i} className="gap-band" x={scale.x(a)} y={0} width={GAP_W} height={bodyH}>
                <title>{`idle ${formatDuration((b - a) / 1000)} (compressed)`}</title>
              </rect>
            ))}
          </g>
          {visible.map((row, i) => {
            const y = (first + i) * ROW + 4;
            const crit = model.critical.has(row.id);
            return (
              <g key={row.id} className={`trow${crit ? " critical" : ""}`} data-row={row.id} data-row-kind={row.kind}>
                <g transform={`translate(${LABEL_W},0)`}>
                  {row.kind === "map" || row.kind === "group" ? (
                    <g className="strip" data-strip={row.id} onClick={() => onSelect(row.kind === "map" ? row.id : row.open)}>
                      <title>{`${row.id}: ${row.items} items, ${row.bars.length} attempts (their activity over time)`}</title>
                      <rect className="strip-bg" x={0} y={y + 1} width={width} height={ROW - 4} />
                      <DensityStrip bars={row.bars} scale={scale} now={now} y={y + 2} height={ROW - 6} />
                    </g>
                  ) : null}
                  {row.kind === "step" || row.kind === "item" ? <RowBars row={row} y={y} scale={scale} now={now} onSelect={onSelect} /> : null}
                </g>
              </g>
            );
          })}
          {live ? (
            <line className="nowline" data-legend="now" x1={LABEL_W + nowX} x2={LABEL_W + nowX} y1={0} y2={bodyH}>
              <title>now</title>
            </line>
          ) : null}
          {/* The step names, drawn last and moved by the sideways scroll: they stay in view when zoomed in. */}
          <g className="tlabels" transform={`translate(${scrollLeft},0)`}>
            <rect className="tlabels-bg" x={0} y={0} width={LABEL_W} height={bodyH} />
            {visible.map((row, i) => (
              <text key={row.id} x={row.kind === "step" ? 8 : row.kind === "map" ? 28 : 36} y={(first + i) * ROW + 19}
                data-label={row.id} className={`tlabel${model.critical.has(row.id) ? " critical" : ""} tlabel-${row.kind}`}
                onClick={() => row.kind !== "note" && onSelect(row.kind === "group" ? row.open : row.id)}>
                {model.critical.has(row.id) ? "★ " : ""}{row.kind === "note" ? row.label : row.id}
                {row.kind === "map" ? ` (${row.items})` : ""}
              </text>
            ))}
          </g>
        </svg>
        {/* A mapped node's expand button: HTML over the label column, so it is a real, focusable button. */}
        {visible.filter((row) => row.kind === "map").map((row) => (
          <button key={row.id} type="button" className="tl-expand secondary" aria-expanded={expanded.has(row.id)}
            aria-label={`${expanded.has(row.id) ? "Collapse" : "Expand"} ${row.id}`}
            title={expanded.has(row.id) ? "Show the items as one row" : `One row per item (at most ${MAP_ROWS} rows)`}
            style={{ top: AXIS_H + model.rows.indexOf(row) * ROW + 5, left: scrollLeft + 5 }}
            onClick={() => toggle(row.id)}>{expanded.has(row.id) ? "▾" : "▸"}</button>
        ))}
      </div>
    </div>
  );
}
