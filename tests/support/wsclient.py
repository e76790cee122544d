"""Browsers' worth of real websocket clients against a real server, in a process of their own.

Run as ``python -m tests.support.wsclient`` (tests/support/browsers.py starts and drives it): it reads one
JSON command a line on stdin and answers one JSON line on stdout. The clients are autobahn's asyncio
websockets (daphne already depends on autobahn; a process that imported daphne has tied autobahn to
twisted, hence the separate process). Each keeps the state a browser keeps, built the way the front end
builds it (webui/frontend/src/runstore.js): a run's snapshot advanced by its events in seq order, a gap
filled from ``/api/runs/<id>/events/?after=<seq>``, nothing applied twice.

Imports nothing of Django or Weft.
"""

from __future__ import annotations

import asyncio
import json
import sys
from urllib.parse import urlparse

import httpx
from autobahn.asyncio.websocket import WebSocketClientFactory, WebSocketClientProtocol

STEP_STATUSES: set[str] = set()  # given by the "init" command (engine.states.StepStatus)
RUN_STATUSES: set[str] = set()


class _Protocol(WebSocketClientProtocol):
    def onOpen(self):  # noqa: N802 (autobahn's names)
        self.factory.socket._opened(self)

    def onMessage(self, payload, is_binary):  # noqa: N802
        self.factory.socket._message(json.loads(payload))

    def onClose(self, was_clean, code, reason):  # noqa: N802
        self.factory.socket._closed(code)


class Socket:
    """One websocket; each JSON message goes to ``on_message``. ``closed`` resolves to the close code."""

    def __init__(self, base_url: str, path: str, cookie: str, on_message):
        self.base = urlparse(base_url)
        self.url = f"ws://{self.base.hostname}:{self.base.port}{path}"
        self.cookie = cookie
        self.on_message = on_message
        self.protocol: _Protocol | None = None
        self.opened: asyncio.Future | None = None
        self.closed: asyncio.Future | None = None

    async def open(self, timeout: float = 30) -> Socket:
        loop = asyncio.get_running_loop()
        self.opened, self.closed = loop.create_future(), loop.create_future()
        factory = WebSocketClientFactory(self.url, origin=f"http://{self.base.hostname}:{self.base.port}",
                                         headers={"Cookie": self.cookie})
        # A browser waits well beyond autobahn's 5 s for a busy server's handshake.
        factory.setProtocolOptions(openHandshakeTimeout=timeout, closeHandshakeTimeout=5)
        factory.protocol = _Protocol
        factory.socket = self
        await asyncio.wait_for(loop.create_connection(factory, self.base.hostname, self.base.port), timeout)
        await asyncio.wait_for(asyncio.shield(self.opened), timeout)
        return self

    def _opened(self, protocol):
        self.protocol = protocol
        if not self.opened.done():
            self.opened.set_result(True)

    def _message(self, data: dict):
        self.on_message(data)

    def _closed(self, code):
        if not self.opened.done():
            self.opened.set_exception(ConnectionError(f"websocket {self.url} closed before opening: {code}"))
        if not self.closed.done():
            self.closed.set_result(code)

    def send(self, data: dict) -> None:
        self.protocol.sendMessage(json.dumps(data).encode())

    async def close(self) -> None:
        if self.protocol is not None and not self.closed.done():
            self.protocol.sendClose(1000)
            try:
                await asyncio.wait_for(asyncio.shield(self.closed), 10)
            except TimeoutError:
                self.protocol.transport.abort()


class RunMirror:
    """What a run view holds for one run: step and run status from the snapshot, then every event once."""

    def __init__(self, run_id: str, http: httpx.AsyncClient):
        self.run_id = run_id
        self.http = http
        self.snapshot_seq: int | None = None
        self.last_seq = 0
        self.run_status = ""
        self.steps: dict[str, str] = {}
        self.applied: list[int] = []  # seqs applied from events, in order
        self.received: list[int] = []  # seqs the socket delivered (before dropping stale ones)
        self.caught_up = 0  # events fetched from the event log to fill a gap
        self.gaps = 0
        self.errors: list[str] = []
        self._buffer: list[dict] = []
        self._catching_up: asyncio.Task | None = None

    def on_message(self, data: dict) -> None:
        if data["type"] == "snapshot":
            if self.snapshot_seq is not None:
                self.errors.append(f"second snapshot on one connection: {data['last_seq']}")
            self.snapshot_seq = data["last_seq"]
            self.last_seq = data["last_seq"]
            self.run_status = data["run"]["status"]
            self.steps = {s["node_id"]: s["status"] for s in data["steps"]}
        elif data["type"] == "events":
            if self.snapshot_seq is None:
                self.errors.append("events before the snapshot")
                return
            self.received += [e["seq"] for e in data["events"]]
            self.receive(data["events"])
        else:
            self.errors.append(f"unexpected message {data!r}")

    def receive(self, events: list[dict]) -> None:
        fresh = sorted((e for e in events if e["seq"] > self.last_seq), key=lambda e: e["seq"])
        if not fresh:
            return
        if fresh[0]["seq"] != self.last_seq + 1 or self._catching_up is not None:
            self._buffer += fresh
            if self._catching_up is None:
                self.gaps += 1
                self._catching_up = asyncio.get_running_loop().create_task(self._catch_up())
            return
        self._apply_all(fresh)

    def _apply_all(self, events: list[dict]) -> None:
        for e in events:
            if e["seq"] != self.last_seq + 1:
                continue
            self._apply(e)

    def _apply(self, e: dict) -> None:
        if e["seq"] in self.applied:
            self.errors.append(f"seq {e['seq']} applied twice")
        self.applied.append(e["seq"])
        self.last_seq = e["seq"]
        kind, _, what = e["type"].partition(".")
        if kind == "run" and what in RUN_STATUSES:
            self.run_status = what
        elif kind == "step" and what in STEP_STATUSES and e["node_id"]:
            self.steps[e["node_id"]] = what

    async def _catch_up(self) -> None:
        try:
            while True:
                r = await self.http.get(f"/api/runs/{self.run_id}/events/",
                                        params={"after": self.last_seq, "limit": 1000})
                if r.status_code != 200:
                    self.errors.append(f"catch-up answered {r.status_code}")
                    return
                page = r.json()
                self.caught_up += len(page["events"])
                self._apply_all(page["events"])
                if not page["has_more"]:
                    break
        except Exception as exc:  # recorded, and the test fails on it
            self.errors.append(f"catch-up failed: {exc!r}")
        finally:
            self._catching_up = None
            buffered, self._buffer = self._buffer, []
            if buffered:
                self.receive(buffered)

    async def settle(self) -> None:
        while self._catching_up is not None:
            await self._catching_up


class ListMirror:
    """What the runs page holds: each run's latest summary, and the run.* event seqs seen per run."""

    def __init__(self):
        self.hello = False
        self.status: dict[str, str] = {}
        self.seqs: dict[str, list[int]] = {}
        self.messages = 0
        self.errors: list[str] = []

    def on_message(self, data: dict) -> None:
        if data["type"] == "hello":
            self.hello = True
        elif data["type"] == "run":
            self.messages += 1
            run_id = data["run"]["id"]
            self.status[run_id] = data["run"]["status"]
            self.seqs.setdefault(run_id, []).extend(e["seq"] for e in data["events"])
        else:
            self.errors.append(f"unexpected message {data!r}")


class Browser:
    """One browser's worth of sockets: the run list, and one run view per watched run."""

    def __init__(self, base_url: str, cookie: str):
        self.base_url, self.cookie = base_url, cookie
        self.http = httpx.AsyncClient(base_url=base_url, headers={"Cookie": cookie}, timeout=30)
        self.list = ListMirror()
        self.list_socket: Socket | None = None
        self.runs: dict[str, RunMirror] = {}
        self.sockets: dict[str, Socket] = {}
        self.closed_runs: list[RunMirror] = []

    async def open_list(self):
        self.list_socket = await Socket(self.base_url, "/ws/runs/", self.cookie, self.list.on_message).open()

    async def watch(self, run_id: str):
        mirror = RunMirror(run_id, self.http)
        self.runs[run_id] = mirror
        self.sockets[run_id] = await Socket(self.base_url, f"/ws/runs/{run_id}/", self.cookie,
                                            mirror.on_message).open()

    async def unwatch(self, run_id: str):
        await self.sockets.pop(run_id).close()
        mirror = self.runs.pop(run_id)
        await mirror.settle()
        self.closed_runs.append(mirror)

    async def state(self) -> dict:
        for mirror in list(self.runs.values()):
            await mirror.settle()
        sockets = [self.list_socket, *self.sockets.values()]
        return {
            "list": {"hello": self.list.hello, "status": self.list.status, "seqs": self.list.seqs,
                     "messages": self.list.messages, "errors": self.list.errors},
            "runs": [_mirror_state(m, open=True) for m in self.runs.values()]
            + [_mirror_state(m, open=False) for m in self.closed_runs],
            "closed_by_server": [[s.url, s.closed.result()] for s in sockets if s is not None and s.closed.done()],
        }

    async def close(self):
        for run_id in list(self.sockets):
            await self.unwatch(run_id)
        if self.list_socket is not None:
            await self.list_socket.close()
        await self.http.aclose()


def _mirror_state(m: RunMirror, *, open: bool) -> dict:
    return {"run_id": m.run_id, "open": open, "snapshot_seq": m.snapshot_seq, "last_seq": m.last_seq,
            "run_status": m.run_status, "steps": m.steps, "applied": m.applied, "received": m.received,
            "caught_up": m.caught_up, "gaps": m.gaps, "errors": m.errors}


async def serve() -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    browsers: list[Browser] = []

    def answer(data: dict) -> None:
        sys.stdout.write(json.dumps(data) + "\n")
        sys.stdout.flush()

    while line := await reader.readline():
        cmd = json.loads(line)
        try:
            if cmd["cmd"] == "init":
                STEP_STATUSES.update(cmd["step_statuses"])
                RUN_STATUSES.update(cmd["run_statuses"])
                browsers = [Browser(cmd["url"], cmd["cookie"]) for _ in range(cmd["browsers"])]
                await asyncio.gather(*(b.open_list() for b in browsers))
                answer({"ok": True})
            elif cmd["cmd"] == "watch":
                # each browser opens its run views one after another, the browsers at the same time
                async def views(b: Browser, runs: list[str]):
                    for r in runs:
                        await b.watch(r)

                await asyncio.gather(*(views(browsers[int(i)], runs) for i, runs in cmd["runs"].items()))
                answer({"ok": True})
            elif cmd["cmd"] == "unwatch":
                await asyncio.gather(*(browsers[int(i)].unwatch(r) for i, runs in cmd["runs"].items() for r in runs))
                answer({"ok": True})
            elif cmd["cmd"] == "progress":
                answer({"ok": True, "list_runs": [{r: len(s) for r, s in b.list.seqs.items()} for b in browsers],
                        "list_status": [b.list.status for b in browsers],
                        "last_seq": [{r: m.last_seq for r, m in b.runs.items()} for b in browsers]})
            elif cmd["cmd"] == "state":
                answer({"ok": True, "browsers": [await b.state() for b in browsers]})
            elif cmd["cmd"] == "close":
                await asyncio.gather(*(b.close() for b in browsers), return_exceptions=True)
                answer({"ok": True})
                return
        except Exception as exc:  # answered, so the test fails with the reason
            answer({"ok": False, "error": repr(exc)})


if __name__ == "__main__":
    asyncio.run(serve())
