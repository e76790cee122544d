"""Trigger rules, edge outcomes, the retry policy and the retry decision as plain functions (no Django), tested
directly."""

from __future__ import annotations

import random
from dataclasses import dataclass

SUCCEEDED, FAILED, SKIPPED = "succeeded", "failed", "skipped"
RUN, UPSTREAM_FAILED = "run", "upstream_failed"

TRIGGER_RULES = ("all_success", "all_done", "one_success")


def trigger_decision(rule: str, *, succeeded: int, failed: int, skipped: int) -> str:
    """What a step whose upstream edges have all finished does: "run", "skipped" or "upstream_failed".

    Counts are of upstream *edges* by outcome (an edge whose condition was false, or whose
    branch was not chosen, counts as skipped).
    """
    if rule == "all_done":
        return RUN
    if rule == "one_success":
        if succeeded:
            return RUN
        return UPSTREAM_FAILED if failed else SKIPPED
    # all_success (default); a root (no upstream) always runs
    if failed:
        return UPSTREAM_FAILED
    if skipped:
        return SKIPPED
    return RUN


def chosen_branches(output) -> set[str] | None:
    """Branches a step's output chose: ``{"branch": "x"}`` or ``{"branches": ["x", "y"]}``; None if it chose none."""
    if not isinstance(output, dict):
        return None
    if isinstance(output.get("branches"), list):
        return {str(b) for b in output["branches"]}
    if output.get("branch") is not None:
        return {str(output["branch"])}
    return None


def source_edge_outcome(step_outcome: str) -> str:
    """Edge outcome implied by a finished source step (before its condition/branch is looked at)."""
    if step_outcome == SUCCEEDED:
        return SUCCEEDED
    if step_outcome in (FAILED, UPSTREAM_FAILED):
        return FAILED
    return SKIPPED  # skipped, cancelled


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 3
    backoff_s: float = 1.0
    backoff_factor: float = 2.0
    max_backoff_s: float = 300.0
    jitter: float = 0.1
    retry_on: tuple[str, ...] = ()

    @classmethod
    def from_config(cls, node_retry: dict | None, defaults: dict) -> RetryPolicy:
        merged = {**defaults, **(node_retry or {})}
        return cls(
            max_attempts=int(merged.get("max_attempts", 3)),
            backoff_s=float(merged.get("backoff_s", 1.0)),
            backoff_factor=float(merged.get("backoff_factor", 2.0)),
            max_backoff_s=float(merged.get("max_backoff_s", 300.0)),
            jitter=float(merged.get("jitter", 0.1)),
            retry_on=tuple(merged.get("retry_on") or ()),
        )

    def is_retryable(self, error_type: str) -> bool:
        return not self.retry_on or error_type in self.retry_on

    def delay_after(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        base = min(self.backoff_s * self.backoff_factor ** max(attempt - 1, 0), self.max_backoff_s)
        if self.jitter and base:
            base *= 1 + (rng or random).uniform(-self.jitter, self.jitter)
        return max(base, 0.0)

    def should_retry(self, *, attempt: int, error_type: str) -> bool:
        return attempt < self.max_attempts and self.is_retryable(error_type)


# Errors that retrying cannot fix: an attempt that ends with one is never retried, whatever its policy says.
NOT_RETRYABLE = frozenset({"NonDeterministicReplay", "TemplateFailed", "OutputTooLarge", "OutputInvalid",
                           "TaskNotFound", "NodeTypeNotFound", "ArgumentsInvalid", "HostNotAllowed", "AgentStopped",
                           "BudgetExceeded", "McpCommandUnknown", "ContextTooLarge"})


def retry_decision(policy: RetryPolicy, *, attempt: int, error_type: str,
                   rng: random.Random | None = None) -> float | None:
    """The one retry decision, for an attempt that failed in its worker and for one lost with its worker:
    seconds to wait before the next attempt after attempt number ``attempt`` (1-based) ended with
    ``error_type``, or None when the step fails for good."""
    if error_type in NOT_RETRYABLE or not policy.should_retry(attempt=attempt, error_type=error_type):
        return None
    return policy.delay_after(attempt, rng)
