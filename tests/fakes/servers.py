"""Real HTTP servers on 127.0.0.1 for node tests: an OpenAI-compatible chat-completions server (with
tool calls), an Anthropic Messages-compatible server (with tool use), and a tool/effect server that applies
each Idempotency-Key's effect once.

Both run in threads of the test process; worker subprocesses reach them over loopback.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse


class Stream:
    """A streamed answer: server-sent events written one by one, ``delay_s`` apart."""

    def __init__(self, events: list[bytes], delay_s: float):
        self.events, self.delay_s = events, delay_s


def sse(data, event: str | None = None) -> bytes:
    head = f"event: {event}\n" if event else ""
    return (head + "data: " + (data if isinstance(data, str) else json.dumps(data)) + "\n\n").encode()


def words(text: str) -> list[str]:
    """``text`` in pieces of a word each (with the space before it), as a model streams it."""
    parts = text.split(" ")
    return [parts[0]] + [" " + p for p in parts[1:]]


class _Server:
    def __init__(self):
        handler = self._handler_class()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.lock = threading.Lock()
        self.requests: list[dict] = []
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    def _handler_class(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _dispatch(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = raw.decode("utf-8", errors="replace")
                parsed = urlparse(self.path)
                record = {"method": self.command, "path": parsed.path, "query": parse_qs(parsed.query),
                          "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body}
                with server.lock:
                    server.requests.append(record)
                status, headers, payload = server.handle(record)
                if isinstance(payload, Stream):
                    self.send_response(status)
                    for k, v in {"Content-Type": "text/event-stream", "Cache-Control": "no-cache", **headers}.items():
                        self.send_header(k, v)
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.close_connection = True
                    for event in payload.events:
                        self.wfile.write(event)
                        self.wfile.flush()
                        time.sleep(payload.delay_s)
                    return
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                headers = {"Content-Type": "application/json", **headers}
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _dispatch

        return Handler

    def handle(self, record: dict) -> tuple[int, dict, object]:
        raise NotImplementedError


class ChatServer(_Server):
    """Speaks ``POST .../chat/completions``.

    With ``tools`` in the request it plays an agent that asks for ``tool_calls_total`` tool calls,
    ``calls_per_turn`` at a time (tool ``tool_name`` with ``{"i": n}``), then answers. With a
    ``response_format`` it answers ``json_reply``. Otherwise it answers ``text_reply``, or echoes the last user
    message. Tool calls are numbered on from the highest ``call_N`` answered so far (so a conversation whose older
    part was summarised away goes on where it was).
    ``fail_next`` holds (status, headers) answers to give before the normal ones.
    """

    def __init__(self, *, tool_calls_total: int = 3, calls_per_turn: int = 1, tool_name: str = "effect",
                 tool_args=None, json_reply=None, model: str = "gpt-4o-mini", usage=None, text_reply=None):
        super().__init__()
        self.usage = usage  # body -> the usage to report (default: 10 prompt tokens a message, 5 completion)
        self.fail_requests: set[int] = set()  # 1-based numbers of completion requests answered 500
        self.tool_calls_total = tool_calls_total
        self.calls_per_turn = calls_per_turn
        self.tool_name = tool_name
        self.tool_args = tool_args or (lambda n: {"i": n})
        self.json_reply = json_reply
        self.text_reply = text_reply
        self.model = model
        self.fail_next: list[tuple[int, dict]] = []
        self.echo_auth = False  # fail_next answers repeat the Authorization header they got (header and body)
        self.stream_delay_s = 0.0  # between the pieces of a streamed answer ("stream": true in the request)
        self.stream_cut_after: int | None = None  # a streamed answer ends after this many events, unfinished

    def completions(self) -> list[dict]:
        return [r for r in self.requests if r["path"].endswith("/chat/completions")]

    def asks_per_key(self) -> Counter:
        return Counter(r["headers"].get("idempotency-key") for r in self.completions())

    def handle(self, record):
        if not record["path"].endswith("/chat/completions") or record["method"] != "POST":
            return 404, {}, {"error": {"message": "not found"}}
        with self.lock:
            if self.fail_next:
                status, headers = self.fail_next.pop(0)
                echo = f" (sent {record['headers'].get('authorization')})" if self.echo_auth else ""
                if self.echo_auth:
                    headers = {**headers, "X-Echo": record["headers"].get("authorization", "")}
                return status, headers, {"error": {"message": f"simulated {status}{echo}"}}
            if len(self.completions()) in self.fail_requests:
                return 500, {}, {"error": {"message": "simulated 500"}}
        body = record["body"]
        messages = body["messages"]
        done = sum(1 for m in messages if m["role"] == "tool")
        numbered = [int(m["tool_call_id"][5:]) for m in messages
                    if m["role"] == "tool" and str(m.get("tool_call_id")).startswith("call_")
                    and m["tool_call_id"][5:].isdigit()]
        done = max([done] + [n + 1 for n in numbered])
        message: dict = {"role": "assistant", "content": None}
        finish = "stop"
        if body.get("tools") and done < self.tool_calls_total:
            count = min(self.calls_per_turn, self.tool_calls_total - done)
            message["tool_calls"] = [
                {"id": f"call_{done + k}", "type": "function",
                 "function": {"name": self.tool_name, "arguments": json.dumps(self.tool_args(done + k))}}
                for k in range(count)
            ]
            finish = "tool_calls"
        elif body.get("tools"):
            message["content"] = f"done after {done} tool calls"
        elif body.get("response_format"):
            message["content"] = json.dumps(self.json_reply)
        elif self.text_reply is not None:
            message["content"] = self.text_reply
        else:
            user = [m for m in messages if m["role"] == "user"][-1]["content"]
            message["content"] = f"echo: {user}"
        usage = {"prompt_tokens": 10 * len(messages), "completion_tokens": 5, "total_tokens": 10 * len(messages) + 5}
        if self.usage is not None:
            usage = self.usage(body)
        if body.get("stream"):
            return 200, {}, self._stream(message, finish, usage)
        return 200, {}, {"id": "chatcmpl-test", "object": "chat.completion", "model": self.model,
                         "choices": [{"index": 0, "message": message, "finish_reason": finish}], "usage": usage}

    def _stream(self, message: dict, finish: str, usage: dict) -> Stream:
        """The answer as chat.completion.chunk events: the content a word at a time, each tool call's arguments in
        two pieces, the finish reason, then the usage in a chunk of no choices, then [DONE]."""
        def chunk(delta: dict | None, finish_reason=None, **extra) -> bytes:
            choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish_reason}]
            return sse({"id": "chatcmpl-test", "object": "chat.completion.chunk", "created": 0, "model": self.model,
                        "choices": choices, **extra})

        events = [chunk({"role": "assistant", "content": ""})]
        events += [chunk({"content": piece}) for piece in words(message["content"] or "") if message["content"]]
        for i, call in enumerate(message.get("tool_calls") or []):
            arguments = call["function"]["arguments"]
            half = len(arguments) // 2
            events.append(chunk({"tool_calls": [{"index": i, "id": call["id"], "type": "function",
                                                 "function": {"name": call["function"]["name"],
                                                              "arguments": arguments[:half]}}]}))
            events.append(chunk({"tool_calls": [{"index": i, "function": {"arguments": arguments[half:]}}]}))
        events.append(chunk({}, finish))
        events.append(chunk(None, usage=usage))
        events.append(b"data: [DONE]\n\n")
        return Stream(events[:self.stream_cut_after], self.stream_delay_s)


class MessagesServer(_Server):
    """Speaks the Anthropic Messages API, ``POST .../v1/messages``, and checks what the API checks of a
    conversation (answering 400 ``invalid_request_error`` otherwise): ``max_tokens`` present, roles alternating
    from ``user``, no ``system`` role in ``messages``, each ``tool_use`` answered by a ``tool_result`` with its id in
    the next user message.

    With ``tools`` it plays an agent that asks for ``tool_calls_total`` tool uses, one a turn (tool ``tool_name``
    with ``{"i": n}``, after a text block), then answers. With ``output_config.format`` it answers
    ``json_reply``. Otherwise it echoes the last user text. ``fail_next`` holds (status, headers) answers to give
    first; ``usage`` (body -> usage) replaces the default of 10 input tokens a message and 5 output tokens.
    """

    def __init__(self, *, tool_calls_total: int = 2, tool_name: str = "effect", json_reply=None,
                 model: str = "claude-sonnet-4-5-20250929", usage=None):
        super().__init__()
        self.tool_calls_total = tool_calls_total
        self.tool_name = tool_name
        self.json_reply = json_reply
        self.model = model
        self.usage = usage
        self.fail_next: list[tuple[int, dict]] = []
        self.reply_override = None  # bytes to answer with 200 instead of a message
        self.stream_delay_s = 0.0  # between the events of a streamed answer ("stream": true in the request)
        self.echo_auth = False  # answers repeat the Authorization header they got, in a header and the body

    def messages(self) -> list[dict]:
        return [r for r in self.requests if r["path"].endswith("/v1/messages")]

    @staticmethod
    def problem(body) -> str | None:
        if not isinstance(body, dict) or not isinstance(body.get("max_tokens"), int):
            return "max_tokens: Field required"
        messages = body.get("messages") or []
        if not messages:
            return "messages: at least one message is required"
        pending: set = set()
        for i, m in enumerate(messages):
            if m.get("role") != ("user" if i % 2 == 0 else "assistant"):
                return f"messages.{i}.role: roles must alternate between user and assistant, starting with user"
            blocks = m["content"] if isinstance(m["content"], list) else [{"type": "text", "text": m["content"]}]
            results = {b.get("tool_use_id") for b in blocks if b.get("type") == "tool_result"}
            if results != pending:
                return f"messages.{i}: tool_use ids {sorted(pending)} need tool_result blocks, got {sorted(results)}"
            pending = {b["id"] for b in blocks if b.get("type") == "tool_use"}
            if any(b.get("type") == "tool_use" and not isinstance(b.get("input"), dict) for b in blocks):
                return f"messages.{i}: tool_use input must be an object"
        return None

    def handle(self, record):
        if not record["path"].endswith("/v1/messages") or record["method"] != "POST":
            return 404, {}, {"type": "error", "error": {"type": "not_found_error", "message": "not found"}}
        with self.lock:
            if self.fail_next:
                status, headers = self.fail_next.pop(0)
                return status, headers, {"type": "error", "error": {"type": "api_error",
                                                                    "message": f"simulated {status}"}}
        if self.reply_override is not None:
            return 200, {}, self.reply_override
        if self.echo_auth:
            sent = record["headers"].get("authorization", "")
            return 401, {"X-Echo": sent}, {"type": "error", "error": {"type": "authentication_error",
                                                                      "message": f"bad key {sent}"}}
        body = record["body"]
        problem = self.problem(body)
        if problem:
            return 400, {}, {"type": "error", "error": {"type": "invalid_request_error", "message": problem}}
        messages = body["messages"]
        done = sum(1 for m in messages if isinstance(m["content"], list)
                   for b in m["content"] if b.get("type") == "tool_result")
        stop = "end_turn"
        if body.get("tools") and done < self.tool_calls_total:
            content = [{"type": "text", "text": f"Calling {self.tool_name}."},
                       {"type": "tool_use", "id": f"toolu_{done}", "name": self.tool_name, "input": {"i": done}}]
            stop = "tool_use"
        elif body.get("tools"):
            content = [{"type": "text", "text": f"done after {done} tool calls"}]
        elif (body.get("output_config") or {}).get("format"):
            content = [{"type": "text", "text": json.dumps(self.json_reply)}]
        else:
            last = messages[-1]["content"]
            text = last if isinstance(last, str) else "".join(b.get("text", "") for b in last)
            content = [{"type": "text", "text": f"echo: {text}"}]
        usage = {"input_tokens": 10 * len(messages), "output_tokens": 5}
        if self.usage is not None:
            usage = self.usage(body)
        message = {"id": "msg_test", "type": "message", "role": "assistant", "model": self.model,
                   "content": content, "stop_reason": stop, "stop_sequence": None, "usage": usage}
        if body.get("stream"):
            return 200, {}, self._stream(message)
        return 200, {}, message

    def _stream(self, message: dict) -> Stream:
        """The message as the Messages API streams it: message_start, each block (text a word at a time, a
        tool_use's input as JSON in two pieces), message_delta with the stop reason and output tokens,
        message_stop."""
        usage = message["usage"]
        start = {**message, "content": [], "stop_reason": None,
                 "usage": {"input_tokens": usage["input_tokens"], "output_tokens": 0}}
        events = [sse({"type": "message_start", "message": start}, "message_start")]
        for i, block in enumerate(message["content"]):
            if block["type"] == "text":
                events.append(sse({"type": "content_block_start", "index": i,
                                   "content_block": {"type": "text", "text": ""}}, "content_block_start"))
                events += [sse({"type": "content_block_delta", "index": i,
                                "delta": {"type": "text_delta", "text": piece}}, "content_block_delta")
                           for piece in words(block["text"])]
            else:
                events.append(sse({"type": "content_block_start", "index": i,
                                   "content_block": {**block, "input": {}}}, "content_block_start"))
                raw = json.dumps(block["input"])
                events += [sse({"type": "content_block_delta", "index": i,
                                "delta": {"type": "input_json_delta", "partial_json": piece}}, "content_block_delta")
                           for piece in (raw[:len(raw) // 2], raw[len(raw) // 2:])]
            events.append(sse({"type": "content_block_stop", "index": i}, "content_block_stop"))
        events.append(sse({"type": "message_delta", "delta": {"stop_reason": message["stop_reason"],
                                                              "stop_sequence": None},
                           "usage": {"output_tokens": usage["output_tokens"]}}, "message_delta"))
        events.append(sse({"type": "message_stop"}, "message_stop"))
        return Stream(events, self.stream_delay_s)


class ToolServer(_Server):
    """An effect server. ``POST /effect`` applies one effect per Idempotency-Key and answers a repeat of the
    key with the first answer. Other paths: ``/json``, ``/text``, ``/big?bytes=N``, ``/status/<code>``,
    ``/redirect?to=URL``, ``/echo``. ``fail_next`` holds (status, headers) answers to give first;
    ``fail_effect_requests`` numbers the ``/effect`` requests to answer 500 (echoing the Authorization header).

    ``hold_at = n``: the n-th new effect is applied, then its answer is held until ``release()`` (so a
    test can kill the caller mid-call); ``held`` is set when that happens.
    """

    def __init__(self):
        super().__init__()
        self.effects: Counter = Counter()
        self.answers: dict[str, dict] = {}
        self.fail_next: list[tuple[int, dict]] = []
        self.fail_effect_requests: set[int] = set()  # 1-based numbers of /effect requests answered 500
        self.effect_requests = 0
        self.hold_at: int | None = None
        self.held = threading.Event()
        self._release = threading.Event()

    def release(self):
        self._release.set()

    def handle(self, record):
        path = record["path"]
        with self.lock:
            if self.fail_next:
                status, headers = self.fail_next.pop(0)
                return status, headers, {"error": f"simulated {status}"}
        if path == "/effect":
            return self._effect(record)
        if path == "/json":
            return 200, {}, {"hello": "world", "items": [1, 2, 3]}
        if path == "/text":
            return 200, {"Content-Type": "text/plain; charset=utf-8"}, b"plain text"
        if path == "/big":
            size = int(record["query"].get("bytes", ["100000"])[0])
            return 200, {"Content-Type": "text/plain"}, b"x" * size
        if path.startswith("/status/"):
            return int(path.rsplit("/", 1)[1]), {}, {"status": "as asked"}
        if path == "/redirect":
            return 302, {"Location": record["query"]["to"][0]}, b""
        if path == "/echo":
            return 200, {}, {"method": record["method"], "headers": record["headers"], "body": record["body"]}
        return 404, {}, {"error": "not found"}

    def _effect(self, record):
        key = record["headers"].get("idempotency-key") or ""
        hold = False
        with self.lock:
            self.effect_requests += 1
            if self.effect_requests in self.fail_effect_requests:
                return 500, {}, {"error": "simulated outage", "echo": record["headers"].get("authorization")}
            if key and key in self.answers:
                return 200, {"Idempotent-Replayed": "true"}, self.answers[key]
            self.effects[key] += 1
            answer = {"ok": True, "effect": sum(self.effects.values()), "args": record["body"]}
            if key:
                self.answers[key] = answer
            if self.hold_at is not None and sum(self.effects.values()) == self.hold_at:
                hold = True
        if hold:
            self.held.set()
            self._release.wait(timeout=60)
        return 200, {}, answer


class InFlightServer(_Server):
    """Records every request's start and end (time.time()) and how many were in flight at once, by the query's
    ``key``. Each request takes ``hold_s``. ``throttle_first(key, retry_after)``: the first request under that key
    gets 429 with that Retry-After."""

    def __init__(self, *, hold_s: float = 0.0):
        super().__init__()
        self.hold_s = hold_s
        self.in_flight = 0
        self.max_in_flight = 0
        self.calls: list[dict] = []  # {"key", "start", "end", "status", "tag"}
        self.throttled: dict[str, float] = {}  # key -> Retry-After seconds, for its first request

    def throttle_first(self, key: str, retry_after: float) -> None:
        self.throttled[key] = retry_after

    def handle(self, record):
        import time

        key = (record["query"].get("key") or [""])[0]
        tag = (record["query"].get("tag") or [""])[0]
        start = time.time()
        with self.lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            retry_after = self.throttled.pop(key, None)
        try:
            if retry_after is None and self.hold_s:
                time.sleep(self.hold_s)
        finally:
            with self.lock:
                self.in_flight -= 1
                self.calls.append({"key": key, "tag": tag, "start": start, "end": time.time(),
                                   "status": 200 if retry_after is None else 429})
        if retry_after is not None:
            return 429, {"Retry-After": str(retry_after)}, {"error": "slow down"}
        return 200, {}, {"ok": True, "key": key, "tag": tag, "args": record["body"]}
