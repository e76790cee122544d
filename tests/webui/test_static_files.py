"""A web server started by hand (``daphne config.asgi:application`` after ``migrate``, as the README's
several-machines section says) serves the web UI's styles and bundle without ``collectstatic``: otherwise its
pages load no script and the run view shows "Loading run..." forever."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.testing import ApplicationCommunicator
from django.contrib.staticfiles import finders
from django.core.asgi import get_asgi_application
from django.templatetags.static import static

# What the templates link (base.html, webui/_island.html) and the chunks the bundle loads lazily.
ASSETS = ["webui/weft.css", "webui/build/weft.css", "webui/build/weft.js", "webui/build/weft-Editor.js",
          "webui/build/weft-elk.bundled.js"]


def _get(application, path: str) -> dict:
    """GET ``path`` from ``application`` as an ASGI server would: the status, headers and the whole body (a
    streamed file's last message may have no body, which channels' HttpCommunicator does not accept)."""

    async def request():
        communicator = ApplicationCommunicator(application, {
            "type": "http", "http_version": "1.1", "method": "GET", "path": path, "query_string": b"",
            "headers": [(b"host", b"localhost")]})
        await communicator.send_input({"type": "http.request", "body": b""})
        start = await communicator.receive_output(10)
        assert start["type"] == "http.response.start"
        body, more = b"", True
        while more:
            chunk = await communicator.receive_output(10)
            assert chunk["type"] == "http.response.body"
            body, more = body + chunk.get("body", b""), chunk.get("more_body", False)
        await communicator.wait(10)
        return {"status": start["status"], "headers": start.get("headers", []), "body": body}

    return asyncio.run(request())


@pytest.mark.parametrize("asset", ASSETS)
def test_the_asgi_app_serves_the_bundle_with_an_empty_static_root(settings, tmp_path, asset):
    settings.DEBUG = False
    settings.STATIC_ROOT = tmp_path / "static"  # collectstatic never ran
    settings.STATIC_ROOT.mkdir()
    source = finders.find(asset)
    if source is None and asset.startswith("webui/build/"):
        # `make test` builds the bundle first; `make test-fast` and a bare pytest do not need it.
        pytest.skip(f"the web UI's bundle is not built ({asset}): run `make frontend` to test it")
    assert source, f"{asset} is missing"
    application = get_asgi_application()  # a new process's web app: its middleware reads the settings now
    response = _get(application, static(asset))
    assert response["status"] == 200, response
    assert response["body"] == open(source, "rb").read()
    content_type = {key.lower(): value for key, value in response["headers"]}[b"content-type"].decode()
    assert content_type.startswith("text/css" if asset.endswith(".css") else "text/javascript"), content_type
