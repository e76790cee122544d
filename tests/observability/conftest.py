"""Observability fixtures: an isolated metrics directory, an in-memory span exporter, loopback peers."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import tests.observability.tasks  # noqa: F401  (registers the functions in this process too)
from engine.observability.tracing import tracing_configure, tracing_disable
from tests.fakes.servers import ChatServer, ToolServer


@pytest.fixture(autouse=True)
def _isolated_metrics_dir(settings, tmp_path):
    """/metrics merges only this process's metrics unless a test points it at a workers' directory."""
    settings.WEFT_METRICS_DIR = tmp_path / "no-metrics"


@pytest.fixture(autouse=True)
def _quiet_events(settings):
    settings.WEFT_PUBLISH_EVENTS = False


@pytest.fixture
def spans():
    """Tracing on, every span exported to memory as it ends."""
    exporter = InMemorySpanExporter()
    tracing_configure(exporter)
    yield exporter
    tracing_disable()


@pytest.fixture
def allow_loopback(settings):
    settings.WEFT_HTTP_ALLOWED_HOSTS = ["*", "127.0.0.1"]


@pytest.fixture
def chat_server():
    server = ChatServer(tool_calls_total=2, calls_per_turn=1).start()
    yield server
    server.stop()


@pytest.fixture
def tool_server():
    server = ToolServer().start()
    yield server
    server.release()
    server.stop()


@pytest.fixture
def worker_env(worker_env, tmp_path):
    return {**worker_env, "WEFT_TASK_MODULES": "tests.tasks,tests.observability.tasks",
            "WEFT_METRICS_DIR": str(tmp_path / "worker-metrics"), "WEFT_LOG_FORMAT": "json"}
