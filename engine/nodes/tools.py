"""Built-in functions for ``python`` nodes and agent tools: ``weft.web_fetch``, ``weft.take_note``, ``weft.list_notes``.

``weft.web_fetch`` fetches a page through the SSRF guard. Host names under the reserved ``.example``
top-level domain (RFC 2606; they can never exist on the Internet) are answered from canned demo
pages instead, so the offline research demo never touches the network.
"""

from __future__ import annotations

import html
import json
import re
from functools import lru_cache
from pathlib import Path

import httpx

from engine.core.registry import task
from engine.integrations import netguard
from engine.models import JournalEntry

DEMO_SITE = Path(__file__).resolve().parent.parent / "demos" / "site" / "research_site.json"
MAX_TEXT_CHARS = 8000
MAX_LINKS = 50

_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.I | re.S)
_HREF = re.compile(r"""<a\s[^>]*href\s*=\s*["']([^"'#]+)["']""", re.I)
_DROP = re.compile(r"<(script|style|noscript)[^>]*>.*?</\1>", re.I | re.S)
_TAG = re.compile(r"<[^>]+>")


@lru_cache(maxsize=1)
def _demo_site() -> dict:
    return json.loads(DEMO_SITE.read_text())


def is_demo_host(host: str) -> bool:
    host = (host or "").lower().rstrip(".")
    return host == "example" or host.endswith(".example")


@task(name="weft.web_fetch", safe_to_repeat=True)
def web_fetch(ctx, url: str) -> dict:
    """Fetch a web page (GET) and return its title, visible text (trimmed) and links.

    A refused host, a network error or an oversized page is returned as ``{"error": ...}``."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as exc:
        return {"url": url, "status": None, "error": f"invalid URL: {exc}"}
    if is_demo_host(parsed.host):
        site = _demo_site()
        page = site["pages"].get(parsed.path or "/") if parsed.host == site["host"] else None
        if page is None:
            return {"url": url, "status": 404, "error": "no such page on the offline demo site"}
        return {"url": url, "status": 200, "simulated_site": True, **page}
    try:
        resp = netguard.guarded_request("GET", url, headers={"Accept": "text/html, text/plain;q=0.9, */*;q=0.5"},
                                        timeout_s=20)
    except (netguard.HostNotAllowed, netguard.ResponseTooLarge, netguard.TooManyRedirects, httpx.HTTPError) as exc:
        # An answer the caller (usually a model) can act on, rather than a failed step.
        return {"url": url, "status": None, "error": f"{type(exc).__name__}: {exc}"}
    text = resp.body.decode("utf-8", errors="replace")
    if "html" not in resp.headers.get("content-type", "html"):
        return {"url": resp.url, "status": resp.status, "title": "", "text": text[:MAX_TEXT_CHARS], "links": []}
    title = _TITLE.search(text)
    links = []
    for href in _HREF.findall(text):
        absolute = str(httpx.URL(resp.url).join(html.unescape(href)))
        if absolute.startswith(("http://", "https://")) and absolute not in links:
            links.append(absolute)
    visible = html.unescape(_TAG.sub(" ", _DROP.sub(" ", text)))
    return {
        "url": resp.url,
        "status": resp.status,
        "title": html.unescape(title.group(1)).strip() if title else "",
        "text": re.sub(r"\s+", " ", visible).strip()[:MAX_TEXT_CHARS],
        "links": links[:MAX_LINKS],
    }


@task(name="weft.take_note", safe_to_repeat=True)
def take_note(ctx, title: str, text: str) -> dict:
    """Save a note (a title and a short text) for later in this step; list them with list_notes."""
    return {"saved": True, "note": {"title": str(title)[:300], "text": str(text)[:4000]}}


@task(name="weft.list_notes", safe_to_repeat=True)
def list_notes(ctx) -> dict:
    """All notes saved so far in this step, oldest first."""
    entries = JournalEntry.objects.filter(step_id=ctx.step_id, status=JournalEntry.Status.SUCCEEDED,
                                          result__has_key="note").order_by("position")
    return {"notes": [e.result["note"] for e in entries if isinstance(e.result, dict)]}
