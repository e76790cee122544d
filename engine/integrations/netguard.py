"""Outbound HTTP with an SSRF guard: every request a node makes goes through ``guarded_request``.

``WEFT_HTTP_ALLOWED_HOSTS`` is a list of entries:

- ``*``: any host whose addresses are all public (globally routable);
- ``api.example.com`` or ``*.example.com``: that host name (or any subdomain), whatever it resolves to;
- ``10.1.2.3``, ``10.0.0.0/8``, ``::1``: those addresses, even when private or loopback.

The default is ``*``: any public host, and never loopback, private, link-local (cloud metadata at
169.254.169.254), multicast or reserved addresses. The check runs after DNS resolution, and the
request is then sent to the very address that was checked (the host name still goes in the
``Host`` header and TLS SNI, and certificates are verified against it), so a second DNS answer
cannot redirect it. Redirects are followed by hand, and every hop is checked again.

A stored credential travels as ``CredentialHeaders``, apart from the request's other headers, so that
the request layer knows exactly which headers present it: they go only to the origin (scheme, host,
port) of the first request, and a redirect that leaves that origin drops every one of them, whatever
the credential's kind. A credential also names the hosts it may be sent to (its ``allowed_hosts``, in
the syntax above): a request or redirect hop that would carry it anywhere else is refused.
"""

from __future__ import annotations

import base64
import ipaddress
import logging
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urljoin

import httpx
import httpx2
from django.conf import settings

from engine.observability.tracing import inject_headers

REDIRECT_STATUSES = {301, 302, 303, 307, 308}
SENSITIVE_HEADERS = {"authorization", "cookie", "proxy-authorization"}
_METADATA_HOSTS = {"metadata.google.internal", "metadata", "instance-data"}
_LABEL = r"[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?"
_HOST_NAME_RE = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*$")


class HostNotAllowed(Exception):
    """The URL's host (or an address it resolves to) is not allowed by WEFT_HTTP_ALLOWED_HOSTS."""


class ResponseTooLarge(Exception):
    """The response body is larger than the configured cap."""


class TooManyRedirects(Exception):
    pass


@dataclass(frozen=True)
class Policy:
    any_public: bool
    names: tuple[str, ...]  # exact host names
    suffixes: tuple[str, ...]  # ".example.com" for "*.example.com"
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]

    @classmethod
    def from_entries(cls, entries) -> Policy:
        any_public, names, suffixes, networks = False, [], [], []
        for raw in entries:
            entry = raw.strip().lower().rstrip(".")
            if not entry:
                continue
            if entry == "*":
                any_public = True
            elif entry.startswith("*."):
                suffixes.append(entry[1:])
            else:
                try:
                    networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
                except ValueError:
                    names.append(entry)
        return cls(any_public, tuple(names), tuple(suffixes), tuple(networks))

    def names_host(self, host: str) -> bool:
        host = host.lower().rstrip(".")
        return host in self.names or any(host.endswith(s) for s in self.suffixes)

    def lists_address(self, ip) -> bool:
        return any(ip.version == net.version and ip in net for net in self.networks)


def policy() -> Policy:
    return Policy.from_entries(getattr(settings, "WEFT_HTTP_ALLOWED_HOSTS", ["*"]))


def host_entry_problem(entry) -> str | None:
    """What is wrong with one allow-list entry (``*``, ``api.example.com``, ``*.example.com``, an address or a
    network), or None."""
    if not isinstance(entry, str) or not entry.strip():
        return "each entry is a non-empty string"
    text = entry.strip().lower().rstrip(".")
    if text == "*":
        return None if entry.strip() == "*" else f"`{entry}` is not a host pattern; `*` alone means any public host"
    name = text[2:] if text.startswith("*.") else text
    if name == text:
        try:
            ipaddress.ip_network(text.strip("[]"), strict=False)
            return None
        except ValueError:
            pass
    if _HOST_NAME_RE.match(name):
        return None
    return (f"`{entry}` is not a host name, `*.` domain, IP address or network (no scheme, port or path: "
            "`api.example.com`, `*.example.com`, `10.0.0.0/8`)")


def credential_host_refusal(name: str, allowed_hosts, host: str) -> str | None:
    """Why credential ``name`` may not be sent to ``host`` (a URL's host), or None when ``host`` is on its
    ``allowed_hosts``. The entries mean what they mean in WEFT_HTTP_ALLOWED_HOSTS, read before any DNS lookup:
    ``*`` is any host name and any public address."""
    if not allowed_hosts:
        return (f"credential `{name}` has no allowed hosts, so it may not be sent anywhere: set the hosts it may be "
                "sent to (its `allowed_hosts`)")
    if check_url_static(f"http://{_bracketed(host)}/", Policy.from_entries(allowed_hosts)) is None:
        return None
    return (f"credential `{name}` may not be sent to host `{host}`: it is not in the credential's "
            f"`allowed_hosts` ({', '.join(f'`{h}`' for h in allowed_hosts)})")


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def address_kind(ip) -> str | None:
    """Why an address is not public ('loopback', 'private', ...), or None when it is globally routable."""
    if isinstance(ip, ipaddress.IPv6Address) and (ip.ipv4_mapped or ip.sixtofour) is not None:
        ip = ip.ipv4_mapped or ip.sixtofour  # ::ffff:127.0.0.1 and 2002:7f00:1:: carry an IPv4 address
    for kind in ("loopback", "link_local", "private", "multicast", "reserved", "unspecified"):
        if getattr(ip, f"is_{kind}"):
            return kind.replace("_", "-")
    if not ip.is_global:
        return "non-public"
    return None


def _parse_ip(host: str):
    text = host.strip("[]").rstrip(".")
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        pass
    # 2130706433, 0x7f.0.0.1, 127.1: forms the resolver (inet_aton) reads as an IPv4 address too.
    if text[:1].isdigit() and set(text.lower()) <= set("0123456789abcdefx."):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(text))
        except OSError:
            return None
    return None


def check_url_static(url: str, pol: Policy | None = None) -> str | None:
    """What is wrong with a literal URL before any DNS lookup (for validation), or None."""
    pol = pol or policy()
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        return f"`{url}` is not a valid URL: {exc}"
    if parsed.scheme not in ("http", "https"):
        return f"URL scheme `{parsed.scheme}` is not allowed; use http or https" if parsed.scheme else \
            f"`{url}` has no scheme; use http:// or https://"
    host = parsed.host
    if not host:
        return f"URL `{url}` has no host"
    if pol.names_host(host):
        return None
    ip = _parse_ip(host)
    if ip is not None:
        return _address_refusal(host, ip, pol)
    lowered = host.lower().rstrip(".")
    if lowered == "localhost" or lowered.endswith(".localhost"):
        return _refusal(host, "loopback")
    if lowered in _METADATA_HOSTS:
        return _refusal(host, "cloud metadata")
    if not pol.any_public:
        return f"host `{host}` is not in WEFT_HTTP_ALLOWED_HOSTS"
    return None


def _refusal(host: str, kind: str, address: str | None = None) -> str:
    where = f"`{host}` resolves to {address} ({kind})" if address and address != host else f"`{host}` is {kind}"
    return f"host {where}, which WEFT_HTTP_ALLOWED_HOSTS does not allow"


def _address_refusal(host: str, ip, pol: Policy) -> str | None:
    if pol.lists_address(ip):
        return None
    kind = address_kind(ip)
    if kind is None:
        return None if pol.any_public else f"host `{host}` is not in WEFT_HTTP_ALLOWED_HOSTS"
    return _refusal(host, f"a {kind} address", str(ip))


def resolve_checked(host: str, port: int, pol: Policy | None = None) -> str:
    """Resolve ``host`` and return an address to connect to; raise HostNotAllowed unless every address is allowed."""
    pol = pol or policy()
    ip = _parse_ip(host)
    if ip is not None:
        problem = None if pol.names_host(host) else _address_refusal(host, ip, pol)
        if problem:
            raise HostNotAllowed(problem)
        return str(ip)
    static = check_url_static(f"http://{host}/", pol)
    if static:
        raise HostNotAllowed(static)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise httpx.ConnectError(f"cannot resolve host {host!r}: {exc.strerror or exc}") from None
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    if not pol.names_host(host):
        for address in addresses:
            problem = _address_refusal(host, ipaddress.ip_address(address.split("%")[0]), pol)
            if problem:
                raise HostNotAllowed(problem)
    return addresses[0]


@dataclass(frozen=True)
class CredentialHeaders:
    """The headers that present one stored credential, and its secret (for redaction). ``guarded_request``
    sends them within the origin of the first request only."""

    name: str
    headers: dict[str, str] = field(repr=False)
    allowed_hosts: tuple[str, ...] = ()
    secret: str = field(default="", repr=False)

    @property
    def header_names(self) -> frozenset[str]:
        return frozenset(k.lower() for k in self.headers)


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes
    url: str
    elapsed_ms: float
    redirects: int

    def json_or_text(self):
        ctype = self.headers.get("content-type", "")
        text = self.body.decode(_charset(ctype), errors="replace")
        if "json" in ctype.lower():
            import json

            try:
                return json.loads(text)
            except ValueError:
                return text
        return text


def _charset(content_type: str) -> str:
    for part in content_type.split(";"):
        key, _, value = part.strip().partition("=")
        if key.lower() == "charset" and value:
            return value.strip('"')
    return "utf-8"


def guarded_request(
    method: str,
    url: str,
    *,
    headers: dict | None = None,
    content: bytes | None = None,
    timeout_s: float = 30.0,
    max_body_bytes: int | None = None,
    max_redirects: int = 5,
    check: bool = True,
    credential: CredentialHeaders | None = None,
    before_send: Callable[[], None] | None = None,
) -> Response:
    """One HTTP exchange with the SSRF guard, manual redirects and a body size cap.

    ``credential``'s headers are added to requests to the first request's origin; from the first redirect
    that leaves it on, they are not sent (nor any of ``headers`` of the same names). A request that would
    carry them to a host outside the credential's ``allowed_hosts`` raises HostNotAllowed before it is sent.
    ``check=False`` skips the host policy: only for endpoints an operator configured in settings.
    ``before_send`` is called just before each request goes out, and may raise to stop it (a paused limit).
    """
    cap = max_body_bytes if max_body_bytes is not None else settings.WEFT_HTTP_MAX_BODY_BYTES
    pol = policy()
    headers = inject_headers(dict(headers or {}))  # traceparent of the current span, when tracing is on
    if credential is not None:
        headers = {k: v for k, v in headers.items() if k.lower() not in credential.header_names}
    started = time.monotonic()
    redirects = 0
    with httpx.Client(timeout=timeout_s, follow_redirects=False, trust_env=False) as client:
        while True:
            send_headers = headers
            if credential is not None:
                problem = credential_host_refusal(credential.name, credential.allowed_hosts, httpx.URL(url).host)
                if problem:
                    raise HostNotAllowed(problem)
                send_headers = {**headers, **credential.headers}
            request = _pinned_request(client, method, url, send_headers, content, pol, check)
            if before_send is not None:
                before_send()
            response = client.send(request, stream=True)
            try:
                if response.status_code in REDIRECT_STATUSES and "location" in response.headers:
                    if redirects >= max_redirects:
                        raise TooManyRedirects(f"more than {max_redirects} redirects, last to "
                                               f"{response.headers['location']!r}")
                    redirects += 1
                    target = urljoin(url, response.headers["location"])
                    if response.status_code == 303 or (response.status_code in (301, 302) and method == "POST"):
                        method, content = "GET", None
                        headers = {k: v for k, v in headers.items() if k.lower() not in ("content-type",
                                                                                         "content-length")}
                    if _origin(target) != _origin(url):
                        headers = {k: v for k, v in headers.items() if k.lower() not in SENSITIVE_HEADERS}
                        credential = None  # its headers stay with the origin they were meant for
                    url = target
                    continue
                body = _read_capped(response, cap)
                return Response(
                    status=response.status_code,
                    headers={k.lower(): v for k, v in response.headers.items()},
                    body=body,
                    url=url,
                    elapsed_ms=round((time.monotonic() - started) * 1000, 1),
                    redirects=redirects,
                )
            finally:
                response.close()


def _origin(url: str) -> tuple:
    u = httpx.URL(url)
    return (u.scheme, u.host, u.port)


def _pinned_request(client: httpx.Client, method: str, url: str, headers: dict, content, pol: Policy,
                    check: bool) -> httpx.Request:
    parsed = httpx.URL(url)
    if parsed.scheme not in ("http", "https"):
        raise HostNotAllowed(f"URL scheme {parsed.scheme!r} is not allowed; use http or https")
    if not check:
        return client.build_request(method, url, headers=headers, content=content)
    pinned, host, extensions = pin(parsed, pol)
    return client.build_request(method, pinned, headers={"Host": host, **headers}, content=content,
                                extensions=extensions)


def pin(url: httpx.URL, pol: Policy | None = None) -> tuple[httpx.URL, str, dict]:
    """Check ``url``'s host after DNS resolution (HostNotAllowed) and return the URL of the very address that was
    checked, the ``Host`` header and the request extensions (TLS SNI, so the certificate is verified against the
    host name), so that a second DNS answer cannot redirect the connection."""
    port = url.port or (443 if url.scheme == "https" else 80)
    address = resolve_checked(url.host, port, pol)
    ip = ipaddress.ip_address(address.split("%")[0])
    extensions = {"sni_hostname": url.host} if url.scheme == "https" else {}
    return url.copy_with(host=str(ip)), url.netloc.decode("ascii"), extensions


class _RedactSecrets(logging.Filter):
    """Replaces the secrets of the credentials guarded transports are carrying with ``***`` in the log records of
    the HTTP libraries and SDKs under them: at DEBUG they print the response headers, where a server may echo a
    key back."""

    LOGGERS = tuple(f"{lib}.{part}" for lib in ("httpcore", "httpcore2") for part in ("http11", "http2", "connection"))
    LOGGERS += ("httpx", "httpx2", "openai._base_client", "anthropic._base_client")

    def __init__(self):
        super().__init__()
        self.lock = threading.Lock()
        self.secrets: dict[str, int] = {}  # secret (and its base64 form) -> transports carrying it

    def hold(self, secret: str, delta: int) -> None:
        if len(secret) < 4:
            return
        with self.lock:
            for form in (secret, base64.b64encode(secret.encode()).decode("ascii")):
                self.secrets[form] = self.secrets.get(form, 0) + delta
                if self.secrets[form] <= 0:
                    del self.secrets[form]

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            message = original = record.getMessage()
            for secret in list(self.secrets):
                message = message.replace(secret, "***")
            if message != original:
                record.msg, record.args = message, ()
        return True


_REDACT = _RedactSecrets()
for _name in _RedactSecrets.LOGGERS:
    logging.getLogger(_name).addFilter(_REDACT)


class _Guard:
    """``guarded_request``'s guard as an httpx transport, for clients that build their own requests (the model
    providers' SDKs): every request's host checked after DNS resolution and the connection made to the checked
    address (``check=False``: an endpoint an operator configured); ``credential``'s headers added only when the
    host is on its allowed_hosts, after removing ``replace_headers`` (an SDK's own authentication headers, so
    the secret never passes through the SDK); the response body capped; ``before_send`` called just before each
    request goes out (it may raise to stop it). Redirects are not followed (the client must not follow them).
    Until it is closed, the credential's secret is redacted from the HTTP libraries' and SDKs' log records."""

    http = httpx  # the package of the client the transport serves: httpx, or httpx2 (the same API)
    capped = None

    def __init__(self, *, credential: CredentialHeaders | None = None, check: bool = True,
                 max_body_bytes: int | None = None, before_send: Callable[[], None] | None = None,
                 replace_headers: tuple[str, ...] = ()):
        self._inner = self.http.HTTPTransport(trust_env=False)
        self._credential = credential
        self._check = check
        self._cap = max_body_bytes
        self._before_send = before_send
        self._replace = replace_headers
        self._held = credential.secret if credential is not None else ""
        _REDACT.hold(self._held, +1)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        if url.scheme not in ("http", "https"):
            raise HostNotAllowed(f"URL scheme {url.scheme!r} is not allowed; use http or https")
        for name in (*self._replace, *(self._credential.header_names if self._credential else ())):
            request.headers.pop(name, None)
        if self._credential is not None:
            problem = credential_host_refusal(self._credential.name, self._credential.allowed_hosts, url.host)
            if problem:
                raise HostNotAllowed(problem)
            request.headers.update(self._credential.headers)
        request.headers.update(inject_headers({}))
        if self._check:
            request.url, request.headers["Host"], extensions = pin(url)
            request.extensions = {**request.extensions, **extensions}
        if self._before_send is not None:
            self._before_send()
        response = self._inner.handle_request(request)
        cap = self._cap if self._cap is not None else settings.WEFT_HTTP_MAX_BODY_BYTES
        declared = response.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > cap:
            response.close()
            raise ResponseTooLarge(f"response body is {int(declared)} bytes; the limit is {cap}")
        return self.http.Response(response.status_code, headers=response.headers, extensions=response.extensions,
                                  stream=self.capped(response.stream, cap))

    def close(self) -> None:
        self._inner.close()
        _REDACT.hold(self._held, -1)
        self._held = ""


class _Capped:
    def __init__(self, stream, cap: int):
        self._stream, self._cap = stream, cap

    def __iter__(self):
        size = 0
        for chunk in self._stream:
            size += len(chunk)
            if size > self._cap:
                raise ResponseTooLarge(f"response body exceeds {self._cap} bytes")
            yield chunk

    def close(self) -> None:
        self._stream.close()


class _CappedStream(_Capped, httpx.SyncByteStream):
    pass


class _CappedStream2(_Capped, httpx2.SyncByteStream):
    pass


class GuardedTransport(_Guard, httpx.BaseTransport):
    """The guard for an ``httpx.Client`` (the ``openai`` SDK's client)."""

    capped = _CappedStream


class GuardedTransport2(_Guard, httpx2.BaseTransport):
    """The guard for an ``httpx2.Client`` (the ``anthropic`` SDK's client: httpx2 is httpx's API, another package)."""

    http = httpx2
    capped = _CappedStream2


def _read_capped(response: httpx.Response, cap: int) -> bytes:
    declared = response.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > cap:
        raise ResponseTooLarge(f"response body is {int(declared)} bytes; the limit is {cap} "
                               "(WEFT_HTTP_MAX_BODY_BYTES or the node's max_body_bytes)")
    chunks, size = [], 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > cap:
            raise ResponseTooLarge(f"response body exceeds {cap} bytes (WEFT_HTTP_MAX_BODY_BYTES or the node's "
                                   "max_body_bytes)")
        chunks.append(chunk)
    return b"".join(chunks)


def retry_after_seconds(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    from datetime import UTC, datetime

    return max((when - datetime.now(UTC)).total_seconds(), 0.0)
