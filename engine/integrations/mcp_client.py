"""MCP tool servers for the agent node, through the official ``mcp`` SDK (which is async).

``McpConnections`` is one attempt's connections: a private event loop in a thread of its own, one session per
server, opened when first used and closed (a ``stdio`` server's process stopped) when the attempt ends. The
agent's synchronous code calls ``list_tools`` and ``call_tool``, which wait for the loop's answer.

``streamable_http`` servers are reached through an httpx client whose transport applies the SSRF guard to
every request (``netguard.resolve_checked``: the connection goes to the checked address) and refuses to carry a
credential to a host outside its ``allowed_hosts``. ``stdio`` servers are only the commands an operator lists
in ``WEFT_MCP_COMMANDS`` (name -> command line); a definition names an entry, never a command.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import shlex
import threading
from dataclasses import dataclass, field
from datetime import timedelta

import httpx
from django.conf import settings

from engine.integrations import netguard

CONNECT_TIMEOUT_S = 20.0


class McpUnavailable(Exception):
    """The MCP server could not be reached or started, or stopped answering: worth retrying."""


class McpCommandUnknown(Exception):
    """A stdio server names a command WEFT_MCP_COMMANDS does not list."""


class McpBadToolList(Exception):
    """The MCP server's tools/list answer is not a usable tool list."""


class McpToolFailed(Exception):
    """The MCP server answered a tools/call with a protocol error (not a tool result)."""


@dataclass
class Server:
    name: str
    transport: str  # "streamable_http" or "stdio"
    url: str = ""
    command: str = ""  # a WEFT_MCP_COMMANDS entry
    credential: netguard.CredentialHeaders | None = field(default=None, repr=False)
    timeout_s: float = 60.0


def command_line(name: str) -> list[str]:
    """The command line WEFT_MCP_COMMANDS lists under ``name``."""
    commands = getattr(settings, "WEFT_MCP_COMMANDS", None) or {}
    if name not in commands:
        listed = ", ".join(sorted(commands)) or "none"
        raise McpCommandUnknown(f"MCP command {name!r} is not in WEFT_MCP_COMMANDS (listed: {listed}); an operator "
                                "lists the stdio servers agents may start")
    line = commands[name]
    return list(line) if isinstance(line, (list, tuple)) else shlex.split(str(line))


class GuardedTransport(httpx.AsyncBaseTransport):
    """Every request checked by the SSRF guard and sent to the address it checked (no DNS rebinding between the
    check and the connection); a credential only to its allowed hosts."""

    def __init__(self, credential: netguard.CredentialHeaders | None):
        self._inner = httpx.AsyncHTTPTransport(trust_env=False)
        self._credential = credential

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        if url.scheme not in ("http", "https"):
            raise netguard.HostNotAllowed(f"URL scheme {url.scheme!r} is not allowed; use http or https")
        if self._credential is not None:
            problem = netguard.credential_host_refusal(self._credential.name, self._credential.allowed_hosts,
                                                       url.host)
            if problem:
                raise netguard.HostNotAllowed(problem)
        request.url, request.headers["Host"], extensions = await asyncio.to_thread(netguard.pin, url)
        request.extensions = {**request.extensions, **extensions}
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


def _client_factory(credential):
    def factory(headers=None, timeout=None, auth=None) -> httpx.AsyncClient:
        return httpx.AsyncClient(headers={**(headers or {}), **(credential.headers if credential else {})},
                                 timeout=timeout or httpx.Timeout(30.0, read=300.0), auth=auth,
                                 follow_redirects=False, trust_env=False, transport=GuardedTransport(credential))

    return factory


@contextlib.asynccontextmanager
async def _streams(server: Server):
    if server.transport == "stdio":
        from mcp import StdioServerParameters
        from mcp.client.stdio import stdio_client

        argv = command_line(server.command)
        params = StdioServerParameters(command=argv[0], args=argv[1:], cwd=str(settings.BASE_DIR))
        async with stdio_client(params) as (read, write):
            yield read, write
    else:
        from mcp.client.streamable_http import streamablehttp_client

        async with streamablehttp_client(server.url, timeout=server.timeout_s,
                                         httpx_client_factory=_client_factory(server.credential)) as (read, write, _):
            yield read, write


class _Session:
    """One server's session, held open by one task of the attempt's loop (the SDK's contexts are entered and left
    in the same task); requests reach it through a queue."""

    def __init__(self, server: Server):
        self.server = server
        self.requests: asyncio.Queue = asyncio.Queue()
        self.ready: asyncio.Future = asyncio.get_running_loop().create_future()
        self.task = asyncio.get_running_loop().create_task(self._hold())

    async def _hold(self) -> None:
        from mcp import ClientSession

        try:
            async with _streams(self.server) as (read, write), ClientSession(read, write) as session:
                await asyncio.wait_for(session.initialize(), CONNECT_TIMEOUT_S)
                self.ready.set_result(True)
                while (item := await self.requests.get()) is not None:
                    work, answer = item
                    try:
                        answer.set_result(await work(session))
                    except BaseException as exc:  # noqa: BLE001  (handed to the waiting caller)
                        answer.set_exception(exc)
        except BaseException as exc:  # noqa: BLE001
            if not self.ready.done():
                self.ready.set_exception(exc)
            while not self.requests.empty():
                item = self.requests.get_nowait()
                if item is not None:
                    item[1].set_exception(McpUnavailable(f"MCP server {self.server.name!r} closed: {exc}"))


class McpConnections:
    """The MCP sessions of one attempt. Use as a context manager: leaving it closes every session."""

    def __init__(self):
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._sessions: dict[str, _Session] = {}

    def __enter__(self) -> McpConnections:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _run(self, coro, timeout: float):
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
            self._thread = threading.Thread(target=self._loop.run_forever, name="weft-mcp", daemon=True)
            self._thread.start()
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise McpUnavailable(f"no answer within {timeout:g} s") from None

    async def _request(self, server: Server, work):
        session = self._sessions.get(server.name)
        if session is None:
            session = self._sessions[server.name] = _Session(server)
        try:
            await session.ready
        except BaseException as exc:  # noqa: BLE001
            del self._sessions[server.name]
            cause = _cause(exc)
            if isinstance(cause, (McpCommandUnknown, netguard.HostNotAllowed)):
                raise cause from None
            raise McpUnavailable(_unreachable(server, cause)) from None
        answer = asyncio.get_running_loop().create_future()
        await session.requests.put((work, answer))
        return await answer

    def list_tools(self, server: Server) -> list[dict]:
        """The server's tools: [{"name", "description", "inputSchema"}], every page."""

        async def work(session):
            tools, cursor = [], None
            for _ in range(100):
                try:
                    page = await session.list_tools(cursor)
                except Exception as exc:
                    raise McpBadToolList(f"MCP server {server.name!r} answered tools/list with something that is "
                                         f"not a tool list: {_first_line(exc)}") from None
                tools += [{"name": t.name, "description": t.description or "", "inputSchema": t.inputSchema}
                          for t in page.tools]
                cursor = page.nextCursor
                if not cursor:
                    break
            return tools

        return self._run(self._request(server, work), CONNECT_TIMEOUT_S + server.timeout_s)

    def call_tool(self, server: Server, name: str, arguments: dict, *, idempotency_key: str) -> dict:
        """Call one tool, its idempotency key in the request's ``_meta``; its result as JSON data."""

        async def work(session):
            result = await session.call_tool(name, arguments, read_timeout_seconds=timedelta(seconds=server.timeout_s),
                                             meta={"idempotency_key": idempotency_key})
            return result.model_dump(mode="json", exclude_none=True, by_alias=True)

        try:
            return self._run(self._request(server, work), CONNECT_TIMEOUT_S + server.timeout_s)
        except (McpUnavailable, McpCommandUnknown):
            raise
        except Exception as exc:
            from mcp.shared.exceptions import McpError

            if isinstance(exc, McpError):
                raise McpToolFailed(f"MCP server {server.name!r} refused tools/call {name!r}: {exc}") from None
            raise McpUnavailable(f"MCP server {server.name!r} failed during tools/call {name!r}: "
                                 f"{_first_line(exc)}") from None

    def close(self) -> None:
        if self._loop is None:
            return

        async def close_all():
            for session in self._sessions.values():
                await session.requests.put(None)
            tasks = [s.task for s in self._sessions.values()]
            if tasks:
                await asyncio.wait(tasks, timeout=10)
            for task in tasks:
                task.cancel()

        try:
            asyncio.run_coroutine_threadsafe(close_all(), self._loop).result(15)
        except Exception:  # noqa: BLE001  (closing is best effort: the process is stopped with its session)
            pass
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()
        self._loop = None
        self._sessions.clear()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:500]


def _cause(exc: BaseException) -> BaseException:
    """The first leaf of an exception group (anyio's task groups wrap what went wrong)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def _unreachable(server: Server, exc: BaseException) -> str:
    where = server.url if server.transport == "streamable_http" else f"command {server.command!r}"
    return f"cannot reach MCP server {server.name!r} ({where}): {_first_line(exc)}"
