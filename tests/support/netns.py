"""A second "host" for multi-host tests: a network namespace joined to this one by a veth link.

Postgres (listening on loopback only) is reached from the namespace through a small TCP proxy on the
link's address. Taking the link down partitions the namespace's processes from Postgres and from
every server of the test.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import uuid


def netns_supported() -> bool:
    if shutil.which("ip") is None:
        return False
    probe = f"weftp{uuid.uuid4().hex[:6]}"
    ok = subprocess.run(["ip", "netns", "add", probe], capture_output=True).returncode == 0
    if ok:
        subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return ok


class NetnsHost:
    def __init__(self, subnet: int):
        tag = uuid.uuid4().hex[:6]
        self.name = f"weft{tag}"
        self.outer, self.inner = f"wo{tag}", f"wi{tag}"
        self.host_ip, self.ns_ip = f"10.213.{subnet}.1", f"10.213.{subnet}.2"
        run = self._run
        run("ip", "netns", "add", self.name)
        run("ip", "link", "add", self.outer, "type", "veth", "peer", "name", self.inner)
        run("ip", "link", "set", self.inner, "netns", self.name)
        run("ip", "addr", "add", f"{self.host_ip}/30", "dev", self.outer)
        run("ip", "link", "set", self.outer, "up")
        run(*self.prefix, "ip", "addr", "add", f"{self.ns_ip}/30", "dev", self.inner)
        run(*self.prefix, "ip", "link", "set", self.inner, "up")
        run(*self.prefix, "ip", "link", "set", "lo", "up")

    @property
    def prefix(self) -> list[str]:
        return ["ip", "netns", "exec", self.name]

    @staticmethod
    def _run(*args: str) -> None:
        subprocess.run(args, check=True, capture_output=True)

    def down(self) -> None:
        self._run("ip", "link", "set", self.outer, "down")

    def up(self) -> None:
        self._run("ip", "link", "set", self.outer, "up")

    def close(self) -> None:
        subprocess.run(["ip", "link", "del", self.outer], capture_output=True)
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True)


class TcpProxy:
    """Forwards connections accepted on (host, port) to target, each direction in its own thread.

    ``target`` is (host, port), or (socket directory, port) for a server on a unix socket (the embedded
    PostgreSQL), as in Django's HOST and PORT."""

    def __init__(self, host: str, target: tuple[str, int]):
        self.target = target
        self.sock = socket.create_server((host, 0))
        self.port = self.sock.getsockname()[1]
        self._stop = False
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stop:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            upstream = self._connect_upstream()
            self._sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _connect_upstream(self) -> socket.socket:
        host, port = self.target
        if not host.startswith("/"):
            return socket.create_connection(self.target)
        upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        upstream.connect(f"{host}/.s.PGSQL.{port}")
        return upstream

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self._stop = True
        self.sock.close()
        for s in self._sockets:
            try:
                s.shutdown(socket.SHUT_RDWR)
                s.close()
            except OSError:
                pass
