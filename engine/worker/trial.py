"""Testing one node from the editor: its real ``run()`` with sample inputs, outside any run.

The node is checked as a save checks it (engine.services.node_tests), its config rendered by the sandboxed
templates from the sample, and run with the checks a run applies (the SSRF guard and the credentials' allowed
hosts inside its requests, the output's storability), in a thread of its own under a time cap
(WEFT_NODE_TEST_TIMEOUT_S, or the node's timeout when shorter). Nothing is written: no run, step, attempt or
journal row; the node's journaled calls are kept in memory and reported, each with an idempotency key of this
test alone, so a test never replays nor is mistaken for a call of a real run.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import connections

from engine.core import registry
from engine.core.context import StepContext, Wait
from engine.core.graph import NodeSpec
from engine.core.journal import accepts_idempotency_key
from engine.core.security import output_check, storable_text
from engine.exceptions import StepCancelled
from engine.services.node_tests import node_test_check
from engine.templating import templates as templating
from engine.worker.capture import LogCapture


class _Liveness:
    """A test holds no lease; it is cancelled when its time is up."""

    lost = False
    cancelled = False


class TrialJournal:
    """``ctx.step`` for a test: calls ``fn`` every time and records the call in memory, never in the database."""

    relaxed = False

    def __init__(self, *, key_for: Callable[[str], str], check_live: Callable[[], None]):
        self._key_for, self._check_live = key_for, check_live
        self.calls: list[dict] = []
        self.position = self.executed = self.replayed = 0

    def _reserve(self, key: str) -> int:
        if any(c["key"] == key for c in self.calls):
            raise ValueError(f"journal key {key!r} was used twice in one attempt; keys must be unique per step")
        self._check_live()
        self.position += 1
        return self.position - 1

    def step(self, key: str, fn: Callable[..., Any], *args, safe_to_repeat: bool | None = None, **kwargs) -> Any:
        position = self._reserve(key)
        if accepts_idempotency_key(fn):
            kwargs["idempotency_key"] = self._key_for(key)
        call = {"key": key, "position": position, "status": "started"}
        self.calls.append(call)
        self.executed += 1
        started = time.monotonic()
        try:
            result = fn(*args, **kwargs)
        except Exception as exc:
            call.update(status="failed", error_type=type(exc).__name__, error=storable_text(str(exc))[:2000])
            raise
        finally:
            call["duration_ms"] = round((time.monotonic() - started) * 1000, 1)
        call.update(status="succeeded", result=result)
        return result

    def decision(self, key: str) -> tuple[int, Any]:
        """Nobody decides in a test: a call that needs a person's decision makes the node wait."""
        return self._reserve(key), None


class TrialContext(StepContext):
    """``ctx`` of a tested node: no step row behind it, its journal in memory, a streamed reply not sent out."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.journal = TrialJournal(key_for=self.idempotency_key, check_live=self.check_live)

    def text_stream(self, key: str):
        return None


def node_test(*, slug: str, node: dict, context: dict, actor=None) -> dict:
    """Run ``node`` (as the editor has it) of workflow ``slug`` once with ``context`` (``inputs``, ``nodes``
    ``{id: {"output"}}``, and for a mapped node ``item``): its output, or its error, or what it would wait for,
    with its duration, log lines and journaled calls. Raises GraphInvalid or NodeNotTestable before running."""
    spec = node_test_check(slug=slug, node=node, context=context, actor=actor)
    queue_timeout = settings.WEFT_QUEUES.get(spec.queue, {}).get("timeout")
    cap = min(t for t in (settings.WEFT_NODE_TEST_TIMEOUT_S, spec.timeout_s, queue_timeout) if t)
    trial = _Trial(spec, context)
    thread = threading.Thread(target=trial.run, name=f"weft-node-test-{spec.id}", daemon=True)
    started = time.monotonic()
    thread.start()
    thread.join(cap)
    if thread.is_alive():  # its next journaled call stops it; what it sends meanwhile is bounded by its own timeouts
        trial.liveness.cancelled = True
        trial.finish(error={"type": "StepTimeout", "message": f"the node did not finish within {cap:g} s"},
                     duration_s=time.monotonic() - started)
    return trial.result


class _Trial:
    def __init__(self, spec: NodeSpec, context: dict):
        self.spec, self.context = spec, context
        self.liveness = _Liveness()
        self.ctx: TrialContext | None = None
        self.capture: LogCapture | None = None
        self.result: dict = {}
        self._lock = threading.Lock()

    def run(self) -> None:
        started = time.monotonic()
        self.capture = LogCapture(settings.WEFT_MAX_LOG_LINES)
        root = logging.getLogger()
        root.addHandler(self.capture)
        try:
            output = self._run()
        except StepCancelled:
            return  # the caller has answered that the time was up
        except Exception as exc:
            self.finish(error={"type": type(exc).__name__, "message": storable_text(str(exc))[:20000]},
                        duration_s=time.monotonic() - started)
        else:
            if isinstance(output, Wait):
                self.finish(waits={"reason": output.reason, "detail": output.detail},
                            duration_s=time.monotonic() - started)
            else:
                self.finish(output=output, duration_s=time.monotonic() - started)
        finally:
            root.removeHandler(self.capture)
            connections.close_all()  # this thread's own connections

    def _run(self) -> Any:
        spec, sample = self.spec, self.context
        nodes = {nid: {"output": v.get("output"), "status": v.get("status", "succeeded")}
                 for nid, v in (sample.get("nodes") or {}).items()}
        upstream = {nid: v["output"] for nid, v in nodes.items()}
        inputs = sample.get("inputs") or {}
        run_id = f"test-{uuid.uuid4()}"
        template_ctx = {"inputs": inputs, "nodes": nodes, "upstream": upstream, "run": {"id": run_id}}
        if spec.for_each is not None:  # one item of a mapped node: the sample's, else the first of the list
            template_ctx["item_index"], template_ctx["item"] = self._item(template_ctx)
        impl_cls = registry.get_node_type(spec.type).cls
        config = templating.render(spec.config, template_ctx, path=f"nodes.{spec.id}.config",
                                   later=getattr(impl_cls, "late_templates", None))
        self.ctx = TrialContext(run_id=run_id, step_id=None, node_id=spec.id, node_type=spec.type, attempt=1,
                                generation=0, config=config, run_inputs=inputs, upstream=upstream,
                                worker="editor-test", liveness=self.liveness, run_start=None, run_budget=None)
        output = impl_cls().run(self.ctx, dict(config))
        if not isinstance(output, Wait):
            output_check(output)
        return output

    def _item(self, template_ctx: dict) -> tuple[int, Any]:
        if "item" in self.context:
            return int(self.context.get("item_index") or 0), self.context["item"]
        items = templating.render(self.spec.for_each, template_ctx, path=f"nodes.{self.spec.id}.for_each")
        if not isinstance(items, list) or not items:
            raise ValueError(f"for_each gave {'no items' if items == [] else 'no list'}; give the sample an `item`")
        return 0, items[0]

    def finish(self, *, duration_s: float, output: Any = None, error: dict | None = None,
               waits: dict | None = None) -> None:
        """The answer, once: whichever of the node and the time cap comes first."""
        with self._lock:
            if self.result:
                return
            self.result = {
                "node_id": self.spec.id,
                "ok": error is None and waits is None,
                "output": output,
                "error": error,
                "waits": waits,
                "duration_ms": round(duration_s * 1000, 1),
                "logs": self.capture.result() if self.capture else [],
                "calls": list(self.ctx.journal.calls) if self.ctx else [],
                "metrics": dict(self.ctx.metrics) if self.ctx else {},
            }
