"""WEFT_Q_LOG_LEVEL sets the level of django-q2's logger, which is named "django-q" (with a hyphen): at the
default, WARNING, its INFO lines ("processing", "Processed ...", one or two per delivered step) are not written."""

from __future__ import annotations

import logging
import os
import subprocess
import sys

import pytest
from django.conf import settings

from engine.models import Run
from engine.services.scheduler import run_start
from engine.services.workflows import workflow_save
from tests.conftest import REPO, Workers, definition, node, wait_for

# What a process does with a django-q2 INFO line and a WARNING line, after Django configured its logging.
LOG_TWO_LINES = (
    "import django; django.setup()\n"
    "from django_q.conf import logger\n"
    "logger.info('Processed an info line')\n"
    "logger.warning('a warning line')\n"
)


def _stderr_of_a_process(**env: str) -> str:
    inherited = {key: value for key, value in os.environ.items() if key != "WEFT_Q_LOG_LEVEL"}
    full_env = {**inherited, "PYTHONPATH": str(REPO), "DJANGO_SETTINGS_MODULE": "config.settings",
                "WEFT_LOG_FORMAT": "text", **env}
    result = subprocess.run([sys.executable, "-c", LOG_TWO_LINES], cwd=REPO, env=full_env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stderr


def test_the_django_q_logger_has_the_configured_level():
    logger = logging.getLogger("django-q")
    assert logger.getEffectiveLevel() == logging.getLevelNamesMapping()[settings.WEFT_Q_LOG_LEVEL]
    assert not logger.isEnabledFor(logging.INFO)  # the tests run at the default, WARNING


@pytest.mark.slow  # a Python process of its own that sets Django up: seconds
def test_django_q_info_lines_are_not_written_at_the_default_level():
    stderr = _stderr_of_a_process()
    assert "a warning line" in stderr
    assert "Processed" not in stderr, stderr


@pytest.mark.slow  # a Python process of its own that sets Django up: seconds
def test_django_q_info_lines_are_written_when_asked_for():
    stderr = _stderr_of_a_process(WEFT_Q_LOG_LEVEL="INFO")
    assert "Processed an info line" in stderr and "a warning line" in stderr


@pytest.mark.workers
def test_a_worker_writes_no_line_per_step_at_the_default_level(worker_env, tmp_path):
    stderr_path = tmp_path / "workers.stderr"
    env = {key: value for key, value in worker_env.items() if key != "WEFT_Q_LOG_LEVEL"}
    workers = Workers(env)
    with stderr_path.open("w") as stderr:
        workers.proc = subprocess.Popen([sys.executable, str(REPO / "manage.py"), "runworkers", "--queues", "fast"],
                                        cwd=REPO, env=env, start_new_session=True, stderr=stderr)
        try:
            workflow, _, _ = workflow_save(definition=definition("q-quiet", [
                node(f"s{i}", queue="fast") for i in range(1, 4)], [("s1", "s2"), ("s2", "s3")]))
            run, _ = run_start(workflow=workflow, inputs={})
            wait_for(lambda: Run.objects.get(pk=run.pk).status in ("succeeded", "failed"), timeout=60,
                     message="the run to finish")
            assert Run.objects.get(pk=run.pk).status == "succeeded"
        finally:
            workers.stop()
    written = stderr_path.read_text()
    assert "Q Cluster" not in written and "Processed" not in written and "processing" not in written, written
