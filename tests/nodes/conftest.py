"""Fixtures for node tests: loopback peers and worker settings that allow reaching them."""

from __future__ import annotations

import pytest

import tests.nodes.tasks  # noqa: F401  (registers the functions in this process too)
from tests.fakes.servers import ChatServer, ToolServer

LOOPBACK_ALLOWED = ["*", "127.0.0.1"]


@pytest.fixture
def chat_server():
    server = ChatServer().start()
    yield server
    server.stop()


@pytest.fixture
def tool_server():
    server = ToolServer().start()
    yield server
    server.release()
    server.stop()


@pytest.fixture
def allow_loopback(settings):
    """In-process: let nodes reach the loopback peers (refused by default)."""
    settings.WEFT_HTTP_ALLOWED_HOSTS = LOOPBACK_ALLOWED
    return settings


@pytest.fixture
def worker_env(worker_env):
    return {**worker_env, "WEFT_HTTP_ALLOWED_HOSTS": ",".join(LOOPBACK_ALLOWED),
            "WEFT_TASK_MODULES": "tests.tasks,tests.nodes.tasks", "OPENAI_API_KEY": "", "WEFT_LLM_BASE_URL": ""}
