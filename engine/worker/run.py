"""Running a claimed attempt: render the node's config, run the node under its liveness, deadline and log
capture, and turn what it returned or raised into a typed outcome (engine.worker.outcome)."""

from __future__ import annotations

import contextlib
import functools
import logging
from dataclasses import dataclass

from django.conf import settings
from django_q.exceptions import TimeoutException

from engine.core import registry
from engine.core.context import StepContext, Wait, upstream_outputs
from engine.core.limits import limited_attempt
from engine.core.security import output_check
from engine.exceptions import InDoubt, LeaseLost, StepCancelled, StepTimeout
from engine.models import StepRun
from engine.observability import hooks as observe
from engine.services import scheduler
from engine.templating import templates as templating
from engine.worker.capture import LogCapture, PrintSink
from engine.worker.claim import Claim
from engine.worker.liveness import Liveness, deadline
from engine.worker.outcome import (
    AttemptOutcome,
    Cancelled,
    Failed,
    InDoubtWaiting,
    Lost,
    Succeeded,
    TimedOut,
    Waiting,
)


@dataclass(frozen=True)
class Ran:
    """One attempt run: its claim, its outcome and its captured log lines, ready to be recorded."""

    claim: Claim
    outcome: AttemptOutcome
    logs: list[dict]


def attempt_run(claim: Claim, *, worker: str, held: list[tuple[int, int]]) -> Ran:
    """Run one claimed attempt; the heartbeat also keeps the leases of the batch's steps still ``held``."""
    step, attempt = claim.step, claim.step.attempt
    with observe.observe_attempt(step, attempt=attempt, worker=worker) as observed:
        liveness = Liveness(step.pk, attempt, held=held)
        liveness.start()
        capture = LogCapture(settings.WEFT_MAX_LOG_LINES)
        observed.watch_logs(capture)
        try:
            outcome = node_run(claim, attempt=attempt, worker=worker, liveness=liveness, capture=capture)
        finally:
            liveness.stop()
        observed.ran(kind=outcome.kind, error=outcome.error, attempt_metrics=outcome.metrics)
        logs = capture.result()
    return Ran(claim, outcome, logs)


def node_run(claim: Claim, *, attempt: int, worker: str, liveness: Liveness, capture: LogCapture) -> AttemptOutcome:
    """Run the claimed step's node once; what it returned or raised, as an outcome (never raises an Exception)."""
    step, node = claim.step, claim.node
    ctx = None
    root = logging.getLogger()
    root.addHandler(capture)
    sink = PrintSink(capture)
    try:
        if templating.has_templates(node.config):
            upstream, nodes_ctx = upstream_outputs(run_id=step.run_id, graph=claim.graph, node=node)
            template_ctx = {"inputs": claim.run_inputs, "nodes": nodes_ctx, "upstream": upstream,
                            "run": {"id": str(step.run_id)}}
            if node.for_each is not None:  # an item of a mapped node
                template_ctx["item_index"], template_ctx["item"] = map_item(step.pk)
        else:  # no template to render: the outputs upstream are read only if the node asks for ctx.upstream
            upstream = functools.partial(_direct_upstream, run_id=step.run_id, graph=claim.graph, node=node)
            template_ctx = {}
        impl_cls = registry.get_node_type(step.node_type).cls
        config = templating.render(node.config, template_ctx, path=f"nodes.{node.id}.config",
                                   later=getattr(impl_cls, "late_templates", None))
        ctx = StepContext(run_id=step.run_id, step_id=step.pk, node_id=step.node_id, node_type=step.node_type,
                          attempt=attempt, generation=step.generation, config=config, run_inputs=claim.run_inputs,
                          upstream=upstream, worker=worker, liveness=liveness, run_start=scheduler.run_start,
                          run_budget=claim.graph.definition.get("budget"), relaxed=claim.relaxed)
        impl = impl_cls()
        timeout = node.timeout_s or settings.WEFT_QUEUES.get(step.queue, {}).get("timeout")
        with contextlib.redirect_stdout(sink), deadline(timeout), \
                limited_attempt(step_id=step.pk, attempt=attempt, limited=bool(node.limits)):
            result = impl.run(ctx, dict(config))
        sink.flush_rest()
        if isinstance(result, Wait):
            return Waiting(wait=result, metrics=ctx.metrics)
        output_check(result)
        return Succeeded(output=result, metrics=ctx.metrics)
    except InDoubt as exc:
        return InDoubtWaiting(error=exc, metrics=_metrics(ctx))
    except StepCancelled as exc:
        return Cancelled(error=exc, metrics=_metrics(ctx))
    except LeaseLost as exc:
        return Lost(error=exc, metrics=_metrics(ctx))
    except (StepTimeout, TimeoutException) as exc:
        return TimedOut(error=exc, metrics=_metrics(ctx))
    except Exception as exc:
        return Failed(error=exc, metrics=_metrics(ctx))
    finally:
        sink.flush_rest()
        root.removeHandler(capture)



def map_item(step_id: int) -> tuple[int, object]:
    """The index and the item of a mapped node's item step."""
    return StepRun.objects.filter(pk=step_id).values_list("map_index", "map_item").get()


def _direct_upstream(*, run_id, graph, node) -> dict:
    return upstream_outputs(run_id=run_id, graph=graph, node=node)[0]


def _metrics(ctx) -> dict:
    """What the node measured before it stopped (tokens spent by a failed attempt still count)."""
    return ctx.metrics if ctx is not None else {}
