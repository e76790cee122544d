"""Weft's one exception tree. The API maps these to HTTP errors in one place.

No Django imports here: graph validation uses these as plain Python.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


class EngineError(Exception):
    """Base of every error Weft reports to a user."""

    code = "engine_error"

    def __init__(self, message: str, *, details: list[dict] | None = None):
        super().__init__(message)
        self.message = message
        self.details = details or []


@dataclass(frozen=True)
class Issue:
    """One problem (or warning) found in a workflow definition."""

    code: str
    message: str
    node: str | None = None
    edge: str | None = None  # "source->target"
    path: str | None = None  # JSON path inside the definition, e.g. nodes[3].config.url

    def as_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}


class GraphInvalid(EngineError):
    code = "graph_invalid"

    def __init__(self, errors: list[Issue], *, partial=None):
        self.errors = list(errors)
        # The graph as far as it could be built (engine.core.graph.validate), for checks that add their own issues.
        self.partial = partial
        summary = "; ".join(e.message for e in self.errors[:5])
        more = f" (and {len(self.errors) - 5} more)" if len(self.errors) > 5 else ""
        super().__init__(
            f"workflow definition has {len(self.errors)} error(s): {summary}{more}",
            details=[e.as_dict() for e in self.errors],
        )


class NotFound(EngineError):
    code = "not_found"


class InvalidTransition(EngineError):
    """An action asked of a run or step in a state that does not allow it."""

    code = "invalid_state"


class AlreadyExists(EngineError):
    code = "conflict"


class InputsInvalid(EngineError):
    code = "inputs_invalid"


class TriggerInvalid(EngineError):
    """A webhook endpoint, event trigger or event that cannot be saved or sent as given (details name the field),
    or a webhook mapping that fails on a delivery's body."""

    code = "trigger_invalid"


class IdempotencyConflict(EngineError):
    code = "idempotency_conflict"


class StepOutputInvalid(EngineError):
    """An output given for a step is too large (WEFT_MAX_OUTPUT_BYTES) or cannot be stored."""

    code = "output_invalid"


class NodeTypeNotFound(EngineError):
    code = "node_type_not_found"


class TaskNotFound(EngineError):
    code = "task_not_found"


class TemplateFailed(EngineError):
    code = "template_error"


class NodeNotTestable(EngineError):
    """A node type that cannot run on its own from the editor (it waits inside a run, or starts one)."""

    code = "not_testable"


# Raised inside a step; turned into attempt outcomes by engine.worker.run (see engine.worker.outcome).


class StepFailure(Exception):
    """Base for errors raised while a node runs."""


class StepTimeout(StepFailure):
    pass


class StepCancelled(StepFailure):
    pass


class LeaseLost(StepFailure):
    """The worker no longer holds the step: recovered elsewhere, or cancelled."""


class NonDeterministicReplay(StepFailure):
    pass


class InDoubt(StepFailure):
    """A journaled call started but never recorded an outcome, and is not safe to repeat."""

    def __init__(self, key: str):
        super().__init__(f"journal entry {key!r} started in an earlier attempt and never finished; "
                         "it is not safe to repeat, so an operator must decide")
        self.key = key


class RecordedError(StepFailure):
    """Re-raised from the journal: a sub-step failed in this attempt earlier."""
