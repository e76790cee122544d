"""``bench ui``: the run view of a 1,000-step run in Debian's Chromium (docs/benchmarks.md).

Each repetition starts a new run (uibench_run: a root and chains under it, every step drawn), opens its
graph, sends ``rate`` events a second for ``seconds`` while the graph is open, and measures in the browser
how fast the run view applied them and how far behind it was; then opens the run's graph and its timeline
again, measuring how long each took to be first drawn. The web server is daphne on a free port against the
configured database (or ``base_url``), as ``manage.py up`` serves it; the browser is Chromium driven by
Playwright (a test dependency: ``pip install -r requirements-test.txt``).
"""

from __future__ import annotations

import os
import secrets
import statistics
from contextlib import contextmanager, nullcontext
from pathlib import Path
from unittest import mock

from django.conf import settings

from engine.operations.uibench_run import bench_run_cancel, bench_run_start, completion_order, send_completions
from engine.operations.webserver import WebServer

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
USERNAME = "bench-ui"
DRAW_TIMEOUT_MS = 60_000

# Installed before any of the page's scripts: every animation frame until both are in, the time (ms since
# the navigation started) of the first frame in which a graph node is drawn inside the fitted graph (its
# viewport moved from where React Flow starts it), and the first frame with a timeline row.
FIRST_DRAW_JS = """(() => {
  const drawn = (window.__weftDrawn = {});
  const graph = () => {
    const vp = document.querySelector(".runview .react-flow__viewport");
    return vp && vp.style.transform && vp.style.transform !== "translate(0px, 0px) scale(1)"
      && document.querySelector(".runview .react-flow__node");
  };
  const checks = { graph, timeline: () => document.querySelector(".timeline [data-label]") };
  const tick = () => {
    for (const [k, check] of Object.entries(checks)) if (!(k in drawn) && check()) drawn[k] = performance.now();
    if (performance.now() < 60000 && Object.keys(drawn).length < 2) requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
})();"""

# From now on: for each change the run store announces, in the next animation frame (once React has drawn
# it), the time (Date.now(), the server's clock on this machine) each new event was drawn, by seq.
LIVE_JS = """() => {
  const s = window.weft.store;
  const out = (window.__weftLive = { frames: [], drawn: [] });
  let seen = s.lastSeq;
  s.subscribe(() => {
    const from = seen;
    if (s.lastSeq <= from) return;
    seen = s.lastSeq;
    requestAnimationFrame(() => {
      out.frames.push([performance.now(), seen - from]);
      for (let seq = from + 1; seq <= seen; seq += 1) out.drawn.push([seq, Date.now()]);
    });
  });
  return s.lastSeq;
}"""

# The browser alone: ``events`` (made up, the run's next seqs) handed to the run store at ``rate`` a second,
# one message each, as the websocket would; how long after it was handed over each was drawn.
REPLAY_JS = """async ({ events, rate }) => {
  const s = window.weft.store;
  const handed = new Map();
  const lags = [];
  let frames = 0;
  const unsubscribe = s.subscribe(() => {
    const upto = s.lastSeq;
    requestAnimationFrame(() => {
      frames += 1;
      const now = performance.now();
      for (const [seq, t] of handed) if (seq <= upto) { lags.push(now - t); handed.delete(seq); }
    });
  });
  const t0 = performance.now();
  let next = 0;
  await new Promise((resolve) => {
    const tick = () => {
      const due = Math.min(events.length, Math.floor(((performance.now() - t0) / 1000) * rate) + 1);
      for (; next < due; next += 1) {
        const e = { ...events[next], at: new Date().toISOString() };
        handed.set(e.seq, performance.now());
        s.receive([e]);
      }
      if (next < events.length) setTimeout(tick, 1); else resolve();
    };
    tick();
  });
  const fed = performance.now() - t0;
  await new Promise((resolve) => { const check = () => (handed.size ? setTimeout(check, 10) : resolve()); check(); });
  unsubscribe();
  return { fed_ms: fed, span_ms: performance.now() - t0, lags, frames };
}"""


@contextmanager
def web_server():
    """daphne serving config.asgi on a free port against the configured database; yields its base URL."""
    server = WebServer(None, Path(settings.VAR_DIR) / "bench-ui-daphne.log").start()
    try:
        yield server.url
    finally:
        server.stop()


@contextmanager
def chromium():
    """A Chromium browser (Playwright's sync API); a clear error when Playwright or Chromium is missing."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        raise RuntimeError("bench ui needs Playwright, a test dependency: "
                           "pip install -r requirements-test.txt") from exc
    if not Path(CHROMIUM).exists():
        raise RuntimeError(f"bench ui needs Chromium at {CHROMIUM} (apt-get install chromium)")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def _orm_beside_playwright():
    """Playwright's sync API keeps an event loop in this thread; the ORM calls made here are synchronous."""
    return mock.patch.dict(os.environ, {"DJANGO_ALLOW_ASYNC_UNSAFE": "true"})


def _bench_user_password() -> str:
    from django.contrib.auth import get_user_model

    user, _ = get_user_model().objects.get_or_create(username=USERNAME, defaults={"is_superuser": True,
                                                                                  "is_staff": True})
    password = secrets.token_urlsafe(16)
    user.set_password(password)
    user.save(update_fields=["password"])
    return password


def _pct(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def _first_draw(page, url: str, which: str) -> dict:
    page.goto(url)
    page.wait_for_function(f"() => '{which}' in (window.__weftDrawn || {{}})", timeout=DRAW_TIMEOUT_MS)
    timing = page.evaluate("""() => { const n = performance.getEntriesByType("navigation")[0];
        return { drawn: window.__weftDrawn, html: n.responseEnd, dom: n.domContentLoadedEventEnd }; }""")
    return {f"{which}_first_draw_ms": timing["drawn"][which], f"{which}_html_ms": timing["html"],
            f"{which}_dom_ready_ms": timing["dom"]}


def _live(page, run, *, steps: int, events: int, rate: float, senders: int) -> dict:
    page.goto(f"{page.base}/runs/{run.pk}/")
    page.wait_for_selector(".runview[data-live=true]", timeout=DRAW_TIMEOUT_MS)
    page.wait_for_function("() => 'graph' in (window.__weftDrawn || {})", timeout=DRAW_TIMEOUT_MS)
    first_seq = page.evaluate(LIVE_JS)
    node_ids = completion_order(steps)[:events]
    sent = send_completions(run_id=run.pk, node_ids=node_ids, rate=rate, senders=senders)
    if sent.errors:
        raise RuntimeError(f"a sender failed: {sent.errors[0]}")
    target = max(last for _, _, last in sent.commits)
    events = target - first_seq
    page.wait_for_function(f"() => window.weft.store.lastSeq >= {target}", timeout=120_000)
    page.wait_for_function(f"() => window.__weftLive.drawn.length >= {events}", timeout=10_000)
    live = page.evaluate("window.__weftLive")
    lags = [drawn_ms - sent.committed_at(seq) * 1000 for seq, drawn_ms in live["drawn"] if sent.committed_at(seq)]
    frames = live["frames"]
    span_s = (frames[-1][0] - frames[0][0]) / 1000 if len(frames) > 1 else 0
    return {"events": events, "sent_per_s": events / sent.span_s if sent.span_s else None,
            "transactions": len(sent.commits), "applied_per_s": events / span_s if span_s else None,
            "frames": len(frames),
            "lag_p50_ms": _pct(lags, 50), "lag_p95_ms": _pct(lags, 95), "lag_max_ms": max(lags, default=None)}


def _replay(page, run, *, steps: int, events: int, rate: float, label: str) -> dict:
    """REPLAY_JS on a freshly opened graph of ``run``: the browser's own figures, without the server."""
    page.goto(f"{page.base}/runs/{run.pk}/")
    page.wait_for_selector(".runview[data-live=true]", timeout=DRAW_TIMEOUT_MS)
    first = page.evaluate("window.weft.store.lastSeq")
    node_ids = completion_order(steps)[-events:]
    made_up = [{"seq": first + i + 1, "type": "step.succeeded", "node_id": node_id, "payload": {"from": "pending"}}
               for i, node_id in enumerate(node_ids)]
    out = page.evaluate(REPLAY_JS, {"events": made_up, "rate": rate})
    return {f"{label}_per_s": len(made_up) / (out["span_ms"] / 1000), f"{label}_frames": out["frames"],
            f"{label}_lag_p50_ms": _pct(out["lags"], 50), f"{label}_lag_p95_ms": _pct(out["lags"], 95)}


def ui_measure(*, repetitions: int = 5, steps: int = 1000, rate: float = 100, seconds: float = 5,
               senders: int = 4, base_url: str | None = None, browser=None) -> list[dict]:
    """One dict of figures per repetition (see the module's docstring); ``base_url`` and ``browser``: a server
    and a browser already running (tests), else this starts its own."""
    with _orm_beside_playwright():
        password = _bench_user_password()
        with (nullcontext(base_url) if base_url else web_server()) as url, \
                (nullcontext(browser) if browser else chromium()) as chrome:
            context = chrome.new_context(viewport={"width": 1600, "height": 1000})
            try:
                page = context.new_page()
                page.base = url
                page.add_init_script(FIRST_DRAW_JS)
                page.goto(f"{url}/accounts/login/")
                page.fill("input[name=username]", USERNAME)
                page.fill("input[name=password]", password)
                page.click("button[type=submit]")
                page.wait_for_url(f"{url}/")
                return [_repetition(page, steps=steps, rate=rate, seconds=seconds, senders=senders)
                        for _ in range(repetitions)]
            finally:
                context.close()


def _repetition(page, *, steps: int, rate: float, seconds: float, senders: int) -> dict:
    run = bench_run_start(steps)
    try:
        load = os.getloadavg()[0]
        live = min(steps - 1, round(rate * seconds))
        figures = _live(page, run, steps=steps, events=live, rate=rate, senders=senders)
        figures.update(_first_draw(page, f"{page.base}/runs/{run.pk}/", "graph"))
        figures.update(_first_draw(page, f"{page.base}/runs/{run.pk}/?tab=timeline", "timeline"))
        replayed = min(steps - 1 - live, round(rate * seconds))  # steps the live part left pending
        if replayed:
            figures.update(_replay(page, run, steps=steps, events=replayed, rate=rate, label="browser"))
            figures.update(_replay(page, run, steps=steps, events=replayed, rate=rate * 10, label="browser_10x"))
        figures["load_average"] = round((load + os.getloadavg()[0]) / 2, 2)
        return figures
    finally:
        bench_run_cancel(run.pk)


def summary(samples: list[dict]) -> dict:
    """Each figure's median, min and max over the repetitions."""
    out = {}
    for key in samples[0]:
        values = [s[key] for s in samples if s.get(key) is not None]
        if values:
            out[key] = {"median": round(statistics.median(values), 1), "min": round(min(values), 1),
                        "max": round(max(values), 1)}
    return out
