"""MCP tool servers for the agent tests, built with the official SDK: streamable HTTP on loopback (in a thread of
the test process), and the same tools over stdio (``python -m tests.fakes.mcp_servers --stdio <state file>``).

Tools: ``effect(i)`` applies one effect per idempotency key (``_meta.idempotency_key``) and answers a repeat of the
key with the first answer (after its first call, with ``grow`` set, the server lists one more tool,
``late_tool``); ``lookup(order_id)``; ``slow_effect(i)`` applies its effect, then, while the file
``<state>.hold`` holds ``i``, waits before answering (a test kills its caller meanwhile). Every call is also a
line in ``<state>.calls``. With ``extra_tool`` set, the tool
list also has ``late_tool`` from the start; with ``bad_tool`` set, it has a tool whose name no model accepts.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

from mcp.server.fastmcp import Context, FastMCP

from engine.operations.webserver import free_port


def _key(ctx: Context) -> str | None:
    meta = ctx.request_context.meta
    return getattr(meta, "idempotency_key", None) or (meta.model_extra or {}).get("idempotency_key") if meta else None


def build(state: Path, *, extra_tool: bool = False, bad_tool: bool = False, grow: bool = False,
          port: int = 0) -> FastMCP:
    """The server; every effect is a line in ``state`` (JSON: tool, i, key)."""
    server = FastMCP("weft-test", host="127.0.0.1", port=port, log_level="WARNING")
    answers: dict[str, dict] = {}

    def apply(tool: str, i: int, key: str | None) -> dict:
        with state.with_suffix(".calls").open("a") as f:  # every call, a repeat of a key too
            f.write(json.dumps({"tool": tool, "i": i, "key": key}) + "\n")
        if key and key in answers:
            return answers[key]
        with state.open("a") as f:
            f.write(json.dumps({"tool": tool, "i": i, "key": key}) + "\n")
        answers[key or f"none-{len(answers)}"] = answer = {"applied": i}
        return answer

    def late_tool() -> str:
        """A tool added after the first listing."""
        return "late"

    @server.tool()
    def effect(i: int, ctx: Context) -> dict:
        """Apply one effect."""
        if grow and "late_tool" not in {t.name for t in server._tool_manager.list_tools()}:
            server.add_tool(late_tool)
        return apply("effect", i, _key(ctx))

    @server.tool()
    def slow_effect(i: int, ctx: Context) -> dict:
        """Apply one effect, slowly."""
        answer = apply("slow_effect", i, _key(ctx))
        hold = state.with_suffix(".hold")
        while hold.exists() and hold.read_text().strip() == str(i):
            time.sleep(0.05)
        return answer

    @server.tool()
    def lookup(order_id: str) -> dict:
        """Look an order up."""
        return {"order_id": order_id, "amount": 120}

    if extra_tool:
        server.add_tool(late_tool)

    if bad_tool:
        @server.tool(name="bad tool!")
        def bad() -> str:
            """A tool whose name no model accepts."""
            return "bad"

    return server


class HttpMcpServer:
    """``build(...)`` served over streamable HTTP on loopback by uvicorn, in a thread."""

    def __init__(self, state: Path, **options):
        import uvicorn

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/mcp"
        app = build(state, port=self.port, **options).streamable_http_app()
        self._server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                                     lifespan="on"))
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def start(self) -> HttpMcpServer:
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the MCP test server did not start")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(10)


if __name__ == "__main__":  # python -m tests.fakes.mcp_servers --stdio <state file>
    build(Path(sys.argv[2])).run("stdio")
