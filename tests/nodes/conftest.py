"""Fixtures for node tests: loopback peers and worker settings that allow reaching them."""

from __future__ import annotations

import pytest

import tests.nodes.tasks  # noqa: F401  (registers the functions in this process too)
from engine.integrations.credentials import credential_create
from tests.fakes.servers import ChatServer, MessagesServer, ToolServer

LOOPBACK_ALLOWED = ["*", "127.0.0.1"]
LLM_KEY = "sk-loopback-7e5d3c1b9a"


@pytest.fixture
def llm_key(db):
    """Stored credential ``llm-key`` holding LLM_KEY, allowed to 127.0.0.1."""
    credential_create(name="llm-key", kind="api_key", secret=LLM_KEY, allowed_hosts=["127.0.0.1"])


@pytest.fixture
def chat_server():
    server = ChatServer().start()
    yield server
    server.stop()


@pytest.fixture
def messages_server():
    server = MessagesServer().start()
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
