"""Weft's own log lines (JSON or text, with the step's context) and the logs captured from a step."""

from __future__ import annotations

import io
import json
import logging
import os
import socket
import subprocess
import sys

import pytest

from engine.models import Attempt, StepRun
from engine.observability.logging import (
    MAX_MESSAGE_CHARS,
    JsonFormatter,
    TextFormatter,
    log_context,
    resolve_format,
)
from engine.services.scheduler import run_start
from engine.services.workflows import workflow_save
from tests.conftest import REPO, definition, node


@pytest.fixture
def process_log():
    """What Weft's console handler would write, as the JSON formatter formats it."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    root.removeHandler(handler)


@pytest.mark.django_db
def test_every_line_logged_during_a_step_names_run_step_node_attempt_queue_and_worker(process_log, drain):
    workflow, _, _ = workflow_save(definition=definition("logged", [
        node("speaker", "obs.talk", kwargs={"words": ["hello"]}, queue="fast")], []))
    run, _ = run_start(workflow=workflow, inputs={})
    drain()
    step = StepRun.objects.get(run=run)
    lines = [line for line in process_log() if line["logger"] in ("obs.tests", "weft.node.python")]
    assert [line["msg"] for line in lines] == ["said hello", "finished talking"]
    for line in lines:
        assert line["run_id"] == str(run.pk)
        assert line["step_id"] == step.pk
        assert line["node_id"] == "speaker"
        assert line["attempt"] == 1
        assert line["queue"] == "fast"
        assert line["worker"] == f"{socket.gethostname()}:{os.getpid()}"
        assert line["ts"].endswith("Z") and line["level"] in ("INFO", "WARNING")


def test_lines_outside_a_step_still_name_the_worker(process_log):
    logging.getLogger("weft.test").warning("between steps")
    (line,) = [entry for entry in process_log() if entry["logger"] == "weft.test"]
    assert line["run_id"] is None and line["node_id"] is None and line["attempt"] is None
    assert line["worker"] == f"{socket.gethostname()}:{os.getpid()}"


def test_the_process_log_cuts_huge_messages(process_log):
    logging.getLogger("weft.test").warning("y" * 1_000_000)
    (line,) = [entry for entry in process_log() if entry["logger"] == "weft.test"]
    assert len(line["msg"]) < MAX_MESSAGE_CHARS + 100
    assert line["msg"].endswith(f"... [{1_000_000 - MAX_MESSAGE_CHARS} characters truncated]")


def test_exceptions_are_part_of_the_json_line(process_log):
    try:
        raise KeyError("missing")
    except KeyError:
        logging.getLogger("weft.test").exception("it broke")
    (line,) = [entry for entry in process_log() if entry["logger"] == "weft.test"]
    assert line["msg"] == "it broke" and "KeyError: 'missing'" in line["exc"]


def test_text_format_is_one_short_line_with_the_step():
    record = logging.LogRecord("engine.worker.executor", logging.INFO, __file__, 1, "claimed %s", ("it",), None)
    with log_context(run_id="01a248e0-4eeb-7544-a55a-49bc1a2b3c4d", node_id="fetch", attempt=2, queue="slow"):
        text = TextFormatter().format(record)
    assert text.endswith(" INFO    engine.worker.executor [run 1a2b3c4d fetch#2 slow] claimed it")


def test_auto_format_is_text_on_a_terminal_and_json_otherwise():
    class Tty(io.StringIO):
        def isatty(self):
            return True

    assert resolve_format("auto", Tty()) == "text"
    assert resolve_format("", io.StringIO()) == "json"
    assert resolve_format("TEXT") == "text"
    with pytest.raises(ValueError, match="must be one of auto, json, text"):
        resolve_format("xml")


def test_a_wrong_log_format_stops_start_up_with_a_clear_error():
    env = {**os.environ, "WEFT_LOG_FORMAT": "xml"}
    result = subprocess.run([sys.executable, "manage.py", "check"], cwd=REPO, env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode != 0
    assert "WEFT_LOG_FORMAT: must be one of auto, json, text, got 'xml'" in result.stderr


@pytest.mark.django_db
def test_a_steps_prints_and_logs_are_captured_in_order_per_attempt(drain):
    workflow, _, _ = workflow_save(definition=definition("captured", [
        node("speaker", "obs.talk", kwargs={"words": ["one", "two"]})], []))
    run, _ = run_start(workflow=workflow, inputs={})
    drain()
    attempt = Attempt.objects.get(step__run=run)
    assert [(line["level"], line["msg"]) for line in attempt.logs] == [
        ("INFO", "said one"), ("PRINT", "printed one"), ("INFO", "said two"), ("PRINT", "printed two"),
        ("WARNING", "finished talking"),
    ]
    assert all(isinstance(line["t"], float) for line in attempt.logs)


@pytest.mark.django_db
def test_captured_logs_are_bounded_with_a_note(drain, settings):
    settings.WEFT_MAX_LOG_LINES = 5
    workflow, _, _ = workflow_save(definition=definition("bounded", [
        node("speaker", "obs.flood", kwargs={"big_lines": 2, "big_bytes": 50_000, "lines": 100})], []))
    run, _ = run_start(workflow=workflow, inputs={})
    drain()
    logs = Attempt.objects.get(step__run=run).logs
    assert len(logs) == 6
    assert logs[0]["level"] == "WARNING" and logs[0]["msg"].endswith("[40000 characters truncated]")
    assert logs[-1]["level"] == "WARNING"
    assert logs[-1]["msg"].startswith("[") and "more log lines dropped: WEFT_MAX_LOG_LINES is 5" in logs[-1]["msg"]
