"""A real HTTP server on loopback that applies "effects" at most once per Idempotency-Key."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class EffectServer:
    """``hold_first``: the first request is applied, then its response is held until ``release()``.
    ``delay_s``: every response is sent that long after its effect is applied."""

    def __init__(self, host: str = "127.0.0.1", hold_first: bool = False, delay_s: float = 0.0):
        self.deliveries: Counter[str] = Counter()  # requests seen per key
        self.applied: Counter[str] = Counter()  # effects applied per key (deduplicated: at most 1)
        self.missing_key = 0
        self._lock = threading.Lock()
        self.hold_first = hold_first
        self.delay_s = delay_s
        self.first_received = threading.Event()
        self._released = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                key = self.headers.get("Idempotency-Key")
                with server._lock:
                    first = not server.first_received.is_set()
                    server.first_received.set()
                    if not key:
                        server.missing_key += 1
                    else:
                        server.deliveries[key] += 1
                        if key not in server.applied:
                            server.applied[key] = 1
                if first and server.hold_first:
                    server._released.wait(120)
                if server.delay_s:
                    time.sleep(server.delay_s)
                payload = json.dumps({"ok": True, "key": key, "echo": body}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer((host, 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://{host}:{self.httpd.server_address[1]}/effect"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def release(self) -> None:
        self._released.set()

    def __enter__(self) -> EffectServer:
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self.release()
        self.httpd.shutdown()
        self.httpd.server_close()
