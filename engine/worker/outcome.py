"""The typed outcome of one attempt: what running a node hands to recording it.

Each kind says what the step becomes and what the attempt's row records (``attempt_outcome``):
a success, a wait (the node asked for one, or a side effect is in doubt), a cancellation, or a failure
(an error of the node, a timeout, a lost lease), which the retry decision may turn into another attempt.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass, field
from typing import ClassVar

from engine.core.context import Wait
from engine.core.security import storable_text
from engine.exceptions import InDoubt, LeaseLost, StepCancelled


@dataclass(frozen=True, kw_only=True)
class AttemptOutcome:
    """What the node measured (``metrics``: tokens spent by a failed attempt still count) and the error it
    ended with, if any."""

    metrics: dict = field(default_factory=dict)
    error: BaseException | None = None

    kind: ClassVar[str] = ""
    attempt_outcome: ClassVar[str] = ""  # the Attempt row's outcome

    def error_text(self) -> tuple[str, str, str]:
        """The error as the Attempt row stores it: its message, its type's name and its traceback ("" each
        without an error)."""
        if self.error is None:
            return "", "", ""
        error = self.error
        return (storable_text(f"{type(error).__name__}: {error}"[:20000]), type(error).__name__,
                storable_text("".join(traceback.format_exception(error))[-50000:]))


@dataclass(frozen=True, kw_only=True)
class Succeeded(AttemptOutcome):
    output: object
    kind: ClassVar[str] = "succeeded"
    attempt_outcome: ClassVar[str] = "succeeded"


@dataclass(frozen=True, kw_only=True)
class Waiting(AttemptOutcome):
    """The node returned a Wait: its step waits (an approval, a timer, a child run) without a worker."""

    wait: Wait
    kind: ClassVar[str] = "waiting"
    attempt_outcome: ClassVar[str] = "waiting"


@dataclass(frozen=True, kw_only=True)
class InDoubtWaiting(AttemptOutcome):
    """A side effect was cut off before its result was journaled: the step waits for an operator."""

    error: InDoubt
    kind: ClassVar[str] = "in_doubt"
    attempt_outcome: ClassVar[str] = "waiting"


@dataclass(frozen=True, kw_only=True)
class Cancelled(AttemptOutcome):
    error: StepCancelled
    kind: ClassVar[str] = "cancelled"
    attempt_outcome: ClassVar[str] = "cancelled"


@dataclass(frozen=True, kw_only=True)
class Failed(AttemptOutcome):
    """An error of the node's (or of its output): the retry decision says whether another attempt follows."""

    error: BaseException
    kind: ClassVar[str] = "failed"
    attempt_outcome: ClassVar[str] = "failed"


@dataclass(frozen=True, kw_only=True)
class TimedOut(Failed):
    error: BaseException  # StepTimeout, or django-q2's TimeoutException
    kind: ClassVar[str] = "timeout"
    attempt_outcome: ClassVar[str] = "timeout"


@dataclass(frozen=True, kw_only=True)
class Lost(Failed):
    """The heartbeat found the lease gone (recovery counted the attempt lost): whatever is recorded is fenced."""

    error: LeaseLost
    kind: ClassVar[str] = "lost"
    attempt_outcome: ClassVar[str] = "lost"

