// The run view: the graph coloured by status, live over the websocket; a drawer per step with
// its attempts, logs and journal; the operator actions; and the timeline tab.
import { Background, Controls, Handle, MiniMap, Panel, Position, ReactFlow, ReactFlowProvider, useReactFlow } from "@xyflow/react";
import { useCallback, useEffect, useMemo, useRef, useState, useSyncExternalStore } from "react";
import { get, post } from "./api.js";
import { Dialog } from "./dialogs.jsx";
import { NODE_H, NODE_W, StepNode, edgeId, useTheme } from "./graph.jsx";
import { itemOf } from "./MapItems.jsx";
import { mapCounts, mapKey } from "./MapProgress.jsx";
import { RunStore, connectRun } from "./runstore.js";
import { ACTIVE, FINISHED_OK, STATUS, StatusBadge } from "./status.jsx";
import { StepDrawer } from "./StepDrawer.jsx";
import { RunHeader } from "./RunHeader.jsx";
import { Timeline } from "./Timeline.jsx";
import { VersionChoice, useVersionCompare } from "./VersionChoice.jsx";

const nodeTypes = { step: StepNode, fanout: GroupNode };
const READABLE_ZOOM = 0.55; // fitting never shrinks node labels below this
const GROUP_MIN = 12; // siblings with the same upstream and downstream steps collapse from this many

// Large fan-outs: steps sharing the same (non-empty) upstream and downstream sets form a group.
function fanOutGroups(definition) {
  const ins = new Map();
  const outs = new Map();
  for (const e of definition.edges) {
    (ins.get(e.target) || ins.set(e.target, []).get(e.target)).push(e.source);
    (outs.get(e.source) || outs.set(e.source, []).get(e.source)).push(e.target);
  }
  const bySig = new Map();
  for (const n of definition.nodes) {
    const i = (ins.get(n.id) || []).slice().sort();
    const o = (outs.get(n.id) || []).slice().sort();
    if (!i.length && !o.length) continue;
    const sig = `${i.join(",")}|${o.join(",")}`;
    (bySig.get(sig) || bySig.set(sig, []).get(sig)).push(n.id);
  }
  const groups = [];
  for (const [sig, members] of bySig) if (members.length >= GROUP_MIN) groups.push({ id: `group:${members[0]}`, sig, members });
  return groups;
}

function GroupNode({ data }) {
  const { members, counts } = data;
  return (
    <div className="wnode group" data-group={data.id} data-count={members.length}>
      <Handle type="target" position={Position.Left} isConnectable={false} />
      <div className="wnode-title">{members.length} parallel steps</div>
      <div className="wnode-foot">
        {Object.entries(counts).map(([status, n]) => (
          <span key={status} className={`status-${status}`}>{STATUS[status]?.icon} {n} {STATUS[status]?.label.toLowerCase()}</span>
        ))}
      </div>
      <div className="muted" style={{ fontSize: 11 }}>Click to expand</div>
      <Handle type="source" position={Position.Right} isConnectable={false} />
    </div>
  );
}

function useNow(active) {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    if (!active) return undefined;
    const t = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(t);
  }, [active]);
  return now;
}

function descendantsOf(edges, id) {
  const out = new Map();
  for (const e of edges) (out.get(e.source) || out.set(e.source, []).get(e.source)).push(e.target);
  const seen = new Set();
  const stack = [id];
  while (stack.length) {
    for (const t of out.get(stack.pop()) || []) {
      if (!seen.has(t)) {
        seen.add(t);
        stack.push(t);
      }
    }
  }
  return seen;
}

export function RunView({ props }) {
  const store = useMemo(() => new RunStore(props.runId, props.snapshot), [props.runId]);
  const version = useSyncExternalStore(store.subscribe, store.getVersion);
  const [selected, setSelected] = useState(props.step || null);
  const [tab, setTab] = useState(props.tab === "timeline" ? "timeline" : "graph");
  const [hideFinished, setHideFinished] = useState(false);
  const [dialog, setDialog] = useState(null);
  const [notice, setNotice] = useState(null);
  const socketRef = useRef(null);

  useEffect(() => {
    const conn = connectRun(store);
    socketRef.current = conn;
    window.weft = { store, socket: conn };
    return () => conn.close();
  }, [store]);

  useEffect(() => {
    const onPop = () => {
      const m = location.pathname.match(/\/steps\/([^/]+)\/?$/);
      setSelected(m ? decodeURIComponent(m[1]) : null);
    };
    window.addEventListener("popstate", onPop);
    return () => window.removeEventListener("popstate", onPop);
  }, []);

  const select = useCallback(
    (nodeId) => {
      setSelected(nodeId);
      const base = `/runs/${props.runId}/`;
      const url = nodeId ? `${base}steps/${encodeURIComponent(nodeId)}/` : base;
      if (location.pathname !== url) history.pushState({}, "", url + location.search);
    },
    [props.runId],
  );

  const run = store.run;
  const live = store.connection === "live";
  const stale = !live;
  const anyActive = Object.values(store.steps).some((s) => ACTIVE.has(s.status));
  const now = useNow(anyActive || run.status === "running");
  const canOperate = props.roles && props.roles.operate;

  const act = useCallback(
    async (label, path, body, follow) => {
      setNotice(null);
      const before = {};
      for (const id of follow || []) before[id] = { status: store.steps[id]?.status, attempt: store.steps[id]?.attempt || 0 };
      try {
        await post(path, body);
        // An action that starts work (retry, rerun) is followed to its outcome: the banner says what
        // became of the steps, never "done" for steps that failed again.
        setNotice(follow ? { kind: "follow", label, nodeIds: follow, before } : { kind: "ok", text: `${label}: done.` });
        return true;
      } catch (err) {
        setNotice({ kind: "error", text: `${label} failed: ${err.message}` });
        return false;
      }
    },
    [store],
  );

  const firstFailure = useMemo(() => {
    for (const n of store.definition.nodes) {
      const s = store.steps[n.id];
      if (s && s.status === "failed") return n.id;
    }
    return null;
  }, [version]);

  return (
    <div className="runview" data-run-id={props.runId} data-run-status={run.status} data-live={live ? "true" : "false"}>
      <div className="runbar">
        <div className="runbar-title">
          <a href={`/workflows/${run.workflow}/edit/`}>{run.workflow_name || run.workflow}</a>
          <span className="muted"> v{run.version} · run </span>
          <code>{props.runId.slice(0, 8)}</code>
        </div>
        <span className="run-status" aria-label="Run status"><StatusBadge status={run.status} /></span>
        <ConnectionState store={store} />
        <div className="grow" />
        <div role="tablist" aria-label="Run views" className="tabs">
          <button role="tab" type="button" aria-selected={tab === "graph"} className={tab === "graph" ? "" : "secondary"}
            onClick={() => setTab("graph")}>Graph</button>
          <button role="tab" type="button" aria-selected={tab === "timeline"}
            className={tab === "timeline" ? "" : "secondary"} onClick={() => setTab("timeline")}>Timeline</button>
        </div>
        <label className="check" title="Hides succeeded and skipped steps; failed and blocked steps stay shown">
          <input type="checkbox" checked={hideFinished}
          onChange={(e) => setHideFinished(e.target.checked)} /> Hide finished steps</label>
        <button type="button" className="secondary" disabled={!firstFailure}
          onClick={() => firstFailure && select(firstFailure)}>Jump to first failure</button>
        {(run.status === "running" || run.status === "pending") ? (
          <button type="button" className="danger" disabled={!canOperate}
            title={canOperate ? undefined : "needs the operator role"}
            onClick={() => setDialog({ kind: "cancel" })}>Cancel run</button>
        ) : null}
      </div>
      <RunHeader store={store} runId={props.runId} canOperate={canOperate} act={act} now={now} />
      {stale ? (
        <div className="banner warn" role="status" data-connection={store.connection}>
          {store.connection === "closed"
            ? `Live updates stopped: ${store.closeReason} Statuses shown are the last known.`
            : store.connection === "connecting"
              ? "Connecting to live updates…"
              : "Reconnecting… statuses shown are the last known and may be out of date."}
        </div>
      ) : null}
      {run.error && run.status === "failed" ? <div className="banner error">Run failed: {run.error}</div> : null}
      {run.status === "pending" && run.waiting ? (
        <div className="banner warn" role="status" data-waiting={run.waiting.reason}>
          Not started yet: {run.waiting.message} (the workflow's run concurrency limit).
        </div>
      ) : null}
      {run.status === "cancelled" && run.error && run.error !== "cancelled" ? (
        <div className="banner warn" data-cancelled="">Run cancelled: {run.error}</div>
      ) : null}
      {notice ? <ActionNotice notice={notice} store={store} /> : null}
      <div className="runbody">
        <div className="runmain">
          {tab === "graph" ? (
            <ReactFlowProvider>
              <RunGraph store={store} version={version} now={now} stale={stale}
                selected={itemOf(selected)?.[0] ?? selected}
                onSelect={select} hideFinished={hideFinished} />
            </ReactFlowProvider>
          ) : (
            <Timeline store={store} version={version} now={now} onSelect={select} />
          )}
        </div>
        {selected && store.steps[selected] ? (
          <StepDrawer key={selected} store={store} version={version} nodeId={selected} now={now}
            canOperate={canOperate} onClose={() => select(null)} onSelect={select} setDialog={setDialog} act={act} />
        ) : null}
      </div>
      {dialog ? (
        <ActionDialog dialog={dialog} store={store} runId={props.runId} act={act} onClose={() => setDialog(null)} />
      ) : null}
    </div>
  );
}

function ActionNotice({ notice, store }) {
  if (notice.kind !== "follow") {
    return <div className={`banner ${notice.kind === "error" ? "error" : "ok"}`} role="status" data-notice={notice.kind}>{notice.text}</div>;
  }
  const { label, nodeIds, before } = notice;
  // A step counts once it moved since the action (a new attempt, or another status): until then the
  // failure it showed before the action is not the action's outcome.
  const moved = (id) => {
    const s = store.steps[id];
    return s && ((s.attempt || 0) > before[id].attempt || s.status !== before[id].status);
  };
  const steps = nodeIds.map((id) => [id, moved(id) ? store.steps[id]?.status : "queued"]);
  const failed = steps.filter(([, st]) => st === "failed" || st === "upstream_failed" || st === "cancelled");
  const busy = steps.filter(([, st]) => !TERMINAL_STEP.has(st));
  let kind;
  let text;
  if (failed.length) {
    kind = "error";
    const first = store.steps[failed[0][0]];
    text = `${label} failed: ${failed.map(([id, st]) => `${id} ${STATUS[st]?.label.toLowerCase() || st}`).join(", ")}` +
      (first?.error ? ` (${first.error.slice(0, 200)})` : "") + ".";
  } else if (busy.length) {
    kind = "pending";
    text = `${label} started: ${busy.length} of ${steps.length} step(s) still to finish…`;
  } else {
    kind = "ok";
    text = `${label}: ${steps.length === 1 ? `${steps[0][0]} succeeded` : `all ${steps.length} steps finished`}.`;
  }
  return <div className={`banner ${kind === "error" ? "error" : kind === "ok" ? "ok" : "warn"}`} role="status" data-notice={kind}>{text}</div>;
}

const TERMINAL_STEP = new Set(["succeeded", "failed", "skipped", "upstream_failed", "cancelled"]);

function ConnectionState({ store }) {
  const text = { live: "Live", connecting: "Connecting…", reconnecting: "Reconnecting…", closed: "Not live" };
  return (
    <span className="live-indicator" data-state={store.connection} role="status" aria-live="polite">
      {text[store.connection]}
    </span>
  );
}

function RunGraph({ store, version, now, stale, selected, onSelect, hideFinished }) {
  const flow = useReactFlow();
  const theme = useTheme();
  const groups = useMemo(() => fanOutGroups(store.definition), [store.definition]);
  const [expanded, setExpanded] = useState(() => new Set());
  const nodeCache = useRef(new Map());
  const edgeCache = useRef(new Map());
  const collapsed = useMemo(() => {
    const byMember = new Map();
    for (const g of groups) {
      if (expanded.has(g.id) || g.members.includes(selected)) continue;
      for (const m of g.members) byMember.set(m, g);
    }
    return byMember;
  }, [groups, expanded, selected]);
  // The server's critical path (engine.services.queries.run_critical_path): the timeline and the API show the same.
  const criticalSet = useMemo(() => new Set(store.critical || []), [version, store]);
  const criticalEdges = useMemo(() => {
    const path = store.critical || [];
    return new Set(path.slice(1).map((id, i) => `${path[i]}->${id}`));
  }, [version, store]);
  const nodes = useMemo(() => {
    const groupNodes = [];
    const seen = new Set();
    for (const g of collapsed.values()) {
      if (seen.has(g.id)) continue;
      seen.add(g.id);
      const counts = {};
      for (const m of g.members) {
        const st = store.steps[m]?.status || "pending";
        counts[st] = (counts[st] || 0) + 1;
      }
      groupNodes.push({ id: g.id, type: "fanout", position: store.layout[g.members[0]] || { x: 0, y: 0 },
        initialWidth: NODE_W, initialHeight: NODE_H,
        data: { id: g.id, members: g.members, counts }, draggable: false, connectable: false });
    }
    return store.definition.nodes
      .filter((n) => !collapsed.has(n.id))
      .filter((n) => !hideFinished || !FINISHED_OK.has(store.steps[n.id]?.status) || n.id === selected)
      .map((n) => {
        const step = store.steps[n.id];
        const attempts = (store.attempts[n.id] || []).filter((a) => a.started_at).length;
        const nodeNow = step && ACTIVE.has(step.status) ? now : 0;
        const map = n.for_each ? mapCounts(store.steps, n.id) : null;
        const critical = criticalSet.has(n.id);
        // The same object while nothing it shows changed: React Flow and its minimap then skip the
        // steps an event did not touch, so one transition re-renders one node, not the whole graph.
        return reuse(nodeCache.current, n.id, [step, attempts, stale, nodeNow, n.id === selected, mapKey(map), critical], () => ({
          id: n.id,
          type: "step",
          position: store.layout[n.id] || n.position || { x: 0, y: 0 },
          // The graph is read-only and never takes React Flow's measurements back (no onNodesChange),
          // so the minimap needs each node's size given here, or it draws no nodes at all.
          initialWidth: NODE_W,
          initialHeight: NODE_H,
          data: { spec: n, step, stale, now: nodeNow, attempts, map, critical },
          selected: n.id === selected,
          draggable: false,
          connectable: false,
        }));
      })
      .concat(groupNodes);
  }, [version, stale, selected, hideFinished, store, now, collapsed, criticalSet]);
  const visible = useMemo(() => new Set(nodes.map((n) => n.id)), [nodes]);
  const edges = useMemo(
    () =>
      dedupe(store.definition.edges
        .map((e) => ({ ...e, source: collapsed.get(e.source)?.id || e.source, target: collapsed.get(e.target)?.id || e.target }))
        .filter((e) => visible.has(e.source) && visible.has(e.target)))
        .map((e) => {
          const st = store.steps[e.source]?.status;
          const target = store.steps[e.target]?.status;
          // Not taken: a branch not chosen or a condition that was false skips the step it leads to
          // (or its source never ran). Drawn dashed and faded, unlike the edges the run went along.
          const notTaken = st === "skipped" || (target === "skipped" && st === "succeeded");
          const taken = !notTaken && st === "succeeded" && target && target !== "pending";
          const critical = criticalEdges.has(edgeId(e));
          return reuse(edgeCache.current, edgeId(e), [st, target, critical], () => ({
            id: edgeId(e),
            source: e.source,
            target: e.target,
            label: e.branch || e.condition || undefined,
            animated: st === "running",
            className: `edge-${st || "pending"}${notTaken ? " edge-not-taken" : taken ? " edge-taken" : ""}${critical ? " edge-critical" : ""}`,
            data: { taken: notTaken ? "no" : taken ? "yes" : "unknown" },
          }));
        }),
    [version, visible, store, collapsed, criticalEdges],
  );
  useEffect(() => {
    if (selected) {
      const pos = store.layout[selected];
      if (pos) flow.setCenter(pos.x + 95, pos.y + 38, { zoom: Math.max(flow.getZoom(), 0.8), duration: 200 });
    }
  }, [selected]);
  // The drawer opening or closing, or the window narrowing, changes the graph's width: fit it again, no
  // smaller than a readable zoom (the minimap and panning reach the rest), keeping the open step in view.
  const box = useRef(null);
  const lastWidth = useRef(0);
  useEffect(() => {
    const el = box.current;
    if (!el || typeof ResizeObserver === "undefined") return undefined;
    let timer = null;
    const ro = new ResizeObserver(([entry]) => {
      const w = Math.round(entry.contentRect.width);
      if (!lastWidth.current || Math.abs(w - lastWidth.current) < 40) {
        lastWidth.current = lastWidth.current || w;
        return;
      }
      lastWidth.current = w;
      clearTimeout(timer);
      timer = setTimeout(() => {
        const pos = selectedRef.current && store.layout[selectedRef.current];
        if (pos) flow.setCenter(pos.x + 95, pos.y + 38, { zoom: Math.max(flow.getZoom(), 0.8), duration: 150 });
        else flow.fitView({ maxZoom: 1, minZoom: READABLE_ZOOM, duration: 150 });
      }, 60);
    });
    ro.observe(el);
    return () => {
      ro.disconnect();
      clearTimeout(timer);
    };
  }, [flow, store]);
  const selectedRef = useRef(selected);
  selectedRef.current = selected;
  return (
    <div
      ref={box}
      className="flow"
      aria-label="Run graph"
      onKeyDownCapture={(e) => {
        // Keyboard: Tab to a node, Enter (or Space) opens its drawer, or expands a group.
        if (e.key !== "Enter" && e.key !== " ") return;
        const el = document.activeElement;
        const id = el && el.classList.contains("react-flow__node") ? el.dataset.id : null;
        if (!id) return;
        e.preventDefault();
        if (id.startsWith("group:")) setExpanded((s) => new Set(s).add(id));
        else onSelect(id);
      }}
    >
      <ReactFlow
        nodes={nodes}
        edges={edges}
        nodeTypes={nodeTypes}
        onNodeClick={(_, n) => (n.type === "fanout" ? setExpanded((s) => new Set(s).add(n.id)) : onSelect(n.id))}
        onPaneClick={() => onSelect(null)}
        nodesDraggable={false}
        nodesConnectable={false}
        elementsSelectable
        fitView
        fitViewOptions={{ maxZoom: 1, minZoom: READABLE_ZOOM }}
        minZoom={0.05}
        onlyRenderVisibleElements={nodes.length > 300}
        proOptions={{ hideAttribution: true }}
        colorMode={theme}
      >
        <Background />
        {criticalSet.size ? (
          <Panel position="top-left" className="graph-legend" data-legend-key="crit">
            <span className="sw crit" aria-hidden="true" /> <span className="crit-mark" aria-hidden="true">★</span>critical path
          </Panel>
        ) : null}
        <Controls showInteractive={false} />
        <MiniMap pannable zoomable nodeStrokeWidth={3}
          nodeColor={(n) => (n.type === "fanout" ? "var(--accent)" : `var(--s-${n.data.step?.status || "pending"})`)} />
      </ReactFlow>
    </div>
  );
}

// cache: id -> {deps, value}. Returns the cached value while every dep is identical, else build()'s.
function reuse(cache, id, deps, build) {
  const hit = cache.get(id);
  if (hit && hit.deps.length === deps.length && hit.deps.every((d, i) => d === deps[i])) return hit.value;
  const value = build();
  cache.set(id, { deps, value });
  return value;
}

function dedupe(edges) {
  const seen = new Set();
  return edges.filter((e) => {
    const id = edgeId(e);
    if (seen.has(id) || e.source === e.target) return false;
    seen.add(id);
    return true;
  });
}

function ActionDialog({ dialog, store, runId, act, onClose }) {
  const { kind, nodeId } = dialog;
  const [preview, setPreview] = useState(null);
  const [text, setText] = useState(kind === "complete" ? "{}" : "");
  const [busy, setBusy] = useState(false);
  const [problem, setProblem] = useState(null);
  const [unsafe, setUnsafe] = useState({});
  const [versionChoice, setVersionChoice] = useState("run");
  const compare = useVersionCompare(runId);
  const base = nodeId ? `/api/runs/${runId}/steps/${encodeURIComponent(nodeId)}` : null;

  // Per step that would run again: the calls its definition says are not safe to repeat (from the
  // snapshot's repeat_risks: an HTTP POST without an Idempotency-Key, an agent tool declared unsafe),
  // and those its journal recorded as not safe to repeat: a rerun repeats all of them (fresh
  // idempotency keys); a retry replays finished calls and repeats only unfinished ones.
  useEffect(() => {
    if (!preview || (kind !== "retry" && kind !== "rerun")) return;
    let cancelled = false;
    Promise.all(preview.slice(0, 50).map((id) =>
      get(`/api/runs/${runId}/steps/${encodeURIComponent(id)}/`).then((d) => [id, d.journal || []]).catch(() => [id, []]),
    )).then((rows) => {
      if (cancelled) return;
      const out = {};
      for (const [id, journal] of rows) {
        const keys = journal
          .filter((j) => !j.safe_to_repeat && (kind === "rerun" || j.status === "started"))
          .map((j) => j.key);
        if (keys.length) out[id] = keys;
      }
      setUnsafe(out);
    });
    return () => {
      cancelled = true;
    };
  }, [preview]);

  useEffect(() => {
    if (kind === "rerun") {
      get(`${base}/rerun-preview/`).then((d) => setPreview(d.node_ids)).catch((e) => setProblem(e.message));
    } else if (kind === "retry") {
      const desc = descendantsOf(store.definition.edges, nodeId);
      const again = [nodeId, ...store.definition.nodes.map((n) => n.id)
        .filter((id) => desc.has(id) && ["upstream_failed", "cancelled", "pending"].includes(store.steps[id]?.status))];
      setPreview(again);
    }
  }, []);

  async function run(label, path, body, follow) {
    setBusy(true);
    const ok = await act(label, path, body, follow);
    setBusy(false);
    if (ok) onClose();
  }

  const risks = (id) => [...(store.repeatRisks[id] || []), ...(unsafe[id] || []).map((key) => `call ${key}`)];
  const previewList = preview ? (
    <>
      <p>These steps will run ({preview.length}):</p>
      <ul className="preview" aria-label="Steps that will run">
        {preview.map((id) => {
          const st = store.steps[id]?.status;
          const ran = (store.attempts[id] || []).some((a) => a.started_at);
          return (
            <li key={id} data-preview-node={id}>
              <code>{id}</code> <StatusBadge status={st} />
              {ran ? null : <span className="muted"> — has not run yet</span>}
              {st === "succeeded" && id !== nodeId ? <span className="warn-text"> — succeeded before; its effects repeat unless journaled</span> : null}
              {risks(id).length ? (
                <div className="warn-text" data-unsafe-node={id}>
                  ⚠ not safe to repeat: {risks(id).slice(0, 5).join(", ")}{risks(id).length > 5 ? ` (+${risks(id).length - 5})` : ""}
                </div>
              ) : null}
            </li>
          );
        })}
      </ul>
      <p className="muted">Every other step keeps its status and output.</p>
    </>
  ) : <p className="muted">Working out which steps will run…</p>;

  const cancel = <button type="button" className="secondary" onClick={onClose}>Close</button>;
  if (kind === "retry") {
    return (
      <Dialog title={`Retry ${nodeId}?`} onClose={onClose} actions={<>{cancel}
        <button type="button" disabled={busy || !preview}
          onClick={() => run("Retry", `${base}/retry/`, { version: versionChoice }, preview)}>Confirm retry</button></>}>
        {previewList}
        <VersionChoice compare={compare} value={versionChoice} onChange={setVersionChoice} nodeIds={preview} />
        {store.steps[nodeId]?.waiting_reason === "in_doubt" ? (
          <p className="warn-text">This step is in doubt: its unfinished call is not safe to repeat and will run again.</p>
        ) : null}
        {problem ? <p className="errors">{problem}</p> : null}
      </Dialog>
    );
  }
  if (kind === "rerun") {
    return (
      <Dialog title={`Rerun from ${nodeId}?`} onClose={onClose} actions={<>{cancel}
        <button type="button" disabled={busy || !preview}
          onClick={() => run("Rerun", `${base}/rerun-from/`, { version: versionChoice }, preview)}>Confirm rerun</button></>}>
        {previewList}
        <VersionChoice compare={compare} value={versionChoice} onChange={setVersionChoice} nodeIds={preview} />
        <p className="warn-text">A rerun is a fresh execution: journaled calls run again with new idempotency keys.</p>
        {problem ? <p className="errors">{problem}</p> : null}
      </Dialog>
    );
  }
  if (kind === "skip") {
    return (
      <Dialog title={`Skip ${nodeId}?`} onClose={onClose} actions={<>{cancel}
        <button type="button" disabled={busy} onClick={() => run("Skip", `${base}/skip/`)}>Confirm skip</button></>}>
        <p>The step is marked skipped; steps that need it to succeed are skipped too.</p>
      </Dialog>
    );
  }
  if (kind === "complete") {
    let parsed = null;
    let bad = null;
    try {
      parsed = JSON.parse(text || "null");
    } catch (e) {
      bad = e.message;
    }
    return (
      <Dialog title={`Mark ${nodeId} succeeded`} onClose={onClose} actions={<>{cancel}
        <button type="button" disabled={busy || bad} onClick={() => run("Mark succeeded", `${base}/complete/`, { output: parsed })}>Confirm</button></>}>
        {store.steps[nodeId]?.waiting_reason === "in_doubt" ? (
          <p className="warn-text">
            The call <code>{store.steps[nodeId].waiting_detail?.key}</code> is not made again: give the output the step
            would have produced from what the outside system really did.
          </p>
        ) : null}
        <label htmlFor="complete-output">Output (JSON), as if the step had produced it</label>
        <textarea id="complete-output" rows={8} value={text} onChange={(e) => setText(e.target.value)} />
        {bad ? <p className="errors">Not valid JSON: {bad}</p> : null}
      </Dialog>
    );
  }
  if (kind === "approve" || kind === "reject") {
    const label = kind === "approve" ? "Approve" : "Reject";
    return (
      <Dialog title={`${label} ${nodeId}`} onClose={onClose} actions={<>{cancel}
        <button type="button" className={kind === "reject" ? "danger" : ""} disabled={busy}
          onClick={() => run(label, `${base}/${kind}/`, { comment: text })}>Confirm {kind === "approve" ? "approval" : "rejection"}</button></>}>
        <label htmlFor="decision-comment">Comment (optional)</label>
        <textarea id="decision-comment" rows={3} value={text} onChange={(e) => setText(e.target.value)} />
      </Dialog>
    );
  }
  if (kind === "cancel") {
    return (
      <Dialog title="Cancel this run?" onClose={onClose} actions={<>{cancel}
        <button type="button" className="danger" disabled={busy} onClick={() => run("Cancel run", `/api/runs/${runId}/cancel/`)}>Confirm cancel</button></>}>
        <p>Pending, queued and waiting steps are cancelled; running steps stop at their next journaled call.</p>
      </Dialog>
    );
  }
  return null;
}
