"""Trigger rules, edge outcomes and the retry policy: plain functions, no database."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import pytest

from engine.core.readiness import (
    NOT_RETRYABLE,
    RetryPolicy,
    chosen_branches,
    retry_decision,
    source_edge_outcome,
    trigger_decision,
)

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("rule", "succeeded", "failed", "skipped", "decision"),
    [
        ("all_success", 0, 0, 0, "run"),  # a root
        ("all_success", 3, 0, 0, "run"),
        ("all_success", 2, 1, 0, "upstream_failed"),
        ("all_success", 2, 1, 1, "upstream_failed"),  # a failure wins over a skip
        ("all_success", 2, 0, 1, "skipped"),
        ("all_done", 0, 2, 1, "run"),
        ("one_success", 1, 2, 1, "run"),
        ("one_success", 0, 1, 1, "upstream_failed"),
        ("one_success", 0, 0, 2, "skipped"),
    ],
)
def test_trigger_rules(rule, succeeded, failed, skipped, decision):
    assert trigger_decision(rule, succeeded=succeeded, failed=failed, skipped=skipped) == decision


def test_edge_outcome_of_a_finished_source_step():
    assert [source_edge_outcome(s) for s in ("succeeded", "failed", "upstream_failed", "skipped", "cancelled")] == [
        "succeeded", "failed", "failed", "skipped", "skipped"]


def test_branches_chosen_by_an_output():
    assert chosen_branches({"branch": "long", "text": "x"}) == {"long"}
    assert chosen_branches({"branches": ["a", "b"]}) == {"a", "b"}
    assert chosen_branches({"branch": None}) is None
    assert chosen_branches(["not", "a", "dict"]) is None


def test_backoff_is_exponential_capped_and_jittered_within_bounds():
    policy = RetryPolicy(backoff_s=1, backoff_factor=2, max_backoff_s=10, jitter=0)
    assert [policy.delay_after(n) for n in range(1, 7)] == [1, 2, 4, 8, 10, 10]
    jittered = RetryPolicy(backoff_s=4, backoff_factor=2, max_backoff_s=100, jitter=0.25)
    rng = random.Random(7)
    delays = [jittered.delay_after(2, rng) for _ in range(500)]
    assert all(6 <= d <= 10 for d in delays)  # 8 s +- 25 %
    assert max(delays) - min(delays) > 3, "jitter spreads the retries"
    assert RetryPolicy(backoff_s=0, jitter=0.5).delay_after(3) == 0


def test_attempts_and_retry_on_decide_whether_to_retry():
    policy = RetryPolicy.from_config({"max_attempts": 3, "retry_on": ["ConnectionError"]},
                                     {"max_attempts": 5, "backoff_s": 2.0})
    assert policy.backoff_s == 2.0 and policy.max_attempts == 3  # the node's own values win over the defaults
    assert policy.should_retry(attempt=2, error_type="ConnectionError")
    assert not policy.should_retry(attempt=3, error_type="ConnectionError")
    assert not policy.should_retry(attempt=1, error_type="ValueError")
    assert RetryPolicy.from_config(None, {}).should_retry(attempt=1, error_type="AnyError")


def test_readiness_imports_without_django():
    code = "import sys, engine.core.readiness; sys.exit(1 if 'django' in sys.modules else 0)"
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO).returncode == 0


def test_the_retry_decision_waits_the_backoff_until_the_last_attempt():
    policy = RetryPolicy(max_attempts=3, backoff_s=2, backoff_factor=3, jitter=0)
    assert [retry_decision(policy, attempt=n, error_type="ConnectionError") for n in (1, 2, 3)] == [2, 6, None]
    assert retry_decision(policy, attempt=1, error_type="WorkerLost") == 2  # a lost attempt, as recovery finds it


def test_the_retry_decision_never_retries_what_retrying_cannot_fix():
    anything = RetryPolicy(max_attempts=5, retry_on=())
    assert "TemplateFailed" in NOT_RETRYABLE and "OutputTooLarge" in NOT_RETRYABLE
    assert all(retry_decision(anything, attempt=1, error_type=name) is None for name in NOT_RETRYABLE)
    only = RetryPolicy(max_attempts=5, retry_on=("ConnectionError",), jitter=0)
    assert retry_decision(only, attempt=1, error_type="ValueError") is None
    assert retry_decision(only, attempt=1, error_type="ConnectionError") == 1.0
