"""Named limits on the real database: waiting steps hold no broker row, admission in round robin, slots freed
on every way out of running, keys, bad input. Steps run in-process with the real executor (drain)."""

from __future__ import annotations

import pytest
from django_q.models import OrmQ

from engine.core.limits import limits_admit, limits_pause, limits_status
from engine.exceptions import GraphInvalid, InvalidTransition
from engine.models import LimitClaim, Run, StepRun
from engine.services.limits import LimitInvalid, limit_create, limit_delete, limit_update
from engine.services.scheduler import run_cancel, run_start
from engine.services.workflows import workflow_save
from tests.conftest import definition, node

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def one_step_per_delivery(settings):
    """A worker runs the step it was delivered and stops (no continuing into other queued steps), so a test sees
    each admission."""
    settings.WEFT_CONTINUE_MAX_S = 0


def fan(slug: str, n: int, limits: list[dict], *, root: bool = True, **extra) -> dict:
    """``n`` limited steps, after a root (or roots themselves)."""
    nodes = [node(f"x{i}", limits=limits, **extra) for i in range(n)]
    return definition(slug, [node("root"), *nodes] if root else nodes,
                      [("root", f"x{i}") for i in range(n)] if root else [],
                      inputs={"type": "object", "properties": {"tenant": {"type": "string"}}})


def deliver(n: int = 1) -> None:
    """Run the ``n`` oldest broker messages in this process, as a worker would."""
    from django_q.signing import SignedPackage

    from engine.worker.executor import execute_step

    for _ in range(n):
        row = OrmQ.objects.order_by("id").first()
        OrmQ.objects.filter(pk=row.pk).delete()
        execute_step(*SignedPackage.loads(row.payload)["args"])


def waiting(run) -> list[str]:
    return sorted(StepRun.objects.filter(run=run, status="queued", waiting_reason="limit")
                  .values_list("node_id", flat=True))


def with_message(run) -> list[str]:
    ids = set(OrmQ.objects.values_list("id", flat=True))
    return sorted(s.node_id for s in StepRun.objects.filter(run=run, status="queued") if s.broker_msg_id in ids)


def test_concurrency_admits_only_as_many_as_slots_and_frees_them_on_success(drain):
    limit_create(name="two", concurrency=2)
    wf = workflow_save(definition=fan("lim-fan", 5, [{"name": "two"}]))[0]
    run, _ = run_start(workflow=wf, inputs={})
    deliver(1)  # the root: its success queues the five
    assert len(with_message(run)) == 2 and len(waiting(run)) == 3
    step = StepRun.objects.get(run=run, node_id=waiting(run)[0])
    assert step.waiting_detail == {"limits": [{"name": "two", "key": ""}]}
    assert limits_status(["two"])["two"] == [{"key": "", "in_use": 2, "waiting": 3, "tokens_left": None,
                                              "paused_until": None}]
    drain()
    run.refresh_from_db()
    assert run.status == "succeeded"
    assert limits_status(["two"])["two"][0]["in_use"] == 0


def test_a_cancelled_run_frees_its_slots_and_its_waiters_leave(drain):
    limit_create(name="one", concurrency=1)
    wf = workflow_save(definition=fan("lim-cancel", 3, [{"name": "one"}], root=False))[0]
    first, _ = run_start(workflow=wf, inputs={})
    assert len(with_message(first)) == 1
    second, _ = run_start(workflow=wf, inputs={})  # its steps wait behind first's
    assert with_message(second) == [] and len(waiting(second)) == 3
    run_cancel(run_id=first.pk)
    limits_admit()
    assert len(with_message(second)) == 1
    drain()
    assert Run.objects.get(pk=second.pk).status == "succeeded"


def test_keys_split_a_limit_and_are_served_round_robin(drain, tmp_path):
    limit_create(name="tenant", concurrency=1)
    limit_create(name="provider", concurrency=1)
    log = tmp_path / "log"
    d = fan("lim-rr", 3, [{"name": "provider"}, {"name": "tenant", "key": "{{ inputs.tenant }}"}], root=False)
    for n in d["nodes"]:
        n["config"] = {"function": "tests.note", "kwargs": {"path": str(log), "value": "{{ inputs.tenant }}"}}
    wf = workflow_save(definition=d)[0]
    runs = [run_start(workflow=wf, inputs={"tenant": "a"})[0]]  # one of a's steps holds the provider, two wait
    runs.append(run_start(workflow=wf, inputs={"tenant": "b"})[0])
    drain()
    assert all(Run.objects.get(pk=r.pk).status == "succeeded" for r in runs)
    assert log.read_text().split() == ["a", "b", "a", "b", "a", "b"]


def test_a_rate_without_tokens_keeps_steps_waiting_until_the_limit_changes(drain):
    limit_create(name="slow", rate={"limit": 1, "period_s": 3600, "burst": 1})
    wf = workflow_save(definition=fan("lim-rate", 4, [{"name": "slow"}]))[0]
    run, _ = run_start(workflow=wf, inputs={})
    drain()
    done = StepRun.objects.filter(run=run, status="succeeded", node_id__startswith="x").count()
    assert done == 2 and len(waiting(run)) == 2  # the burst's one and the rate's one
    assert limits_status(["slow"])["slow"][0]["tokens_left"] == 0
    limit_update(name="slow", changes={"rate": None, "concurrency": 5})
    drain()
    assert Run.objects.get(pk=run.pk).status == "succeeded"


def test_a_pause_keeps_a_bucket_closed_until_it_ends(drain):
    limit_create(name="p", concurrency=5)
    wf = workflow_save(definition=fan("lim-pause", 3, [{"name": "p"}], root=False))[0]
    run, _ = run_start(workflow=wf, inputs={})
    held = StepRun.objects.filter(run=run, node_id__startswith="x").first()
    limits_pause(step_id=held.pk, attempt=held.attempt, seconds=3600)
    assert limits_status(["p"])["p"][0]["paused_until"] is not None
    run_cancel(run_id=run.pk)
    second, _ = run_start(workflow=wf, inputs={})
    assert len(waiting(second)) == 3 and with_message(second) == []
    from engine.models import LimitBucket

    LimitBucket.objects.update(paused_until=None)
    limits_admit()
    assert len(with_message(second)) == 3


def test_a_key_template_that_fails_fails_the_step_with_the_reason(drain):
    limit_create(name="k", concurrency=1)
    wf = workflow_save(definition=fan("lim-badkey", 1, [{"name": "k", "key": "{{ inputs.tenant.name.x }}"}]))[0]
    run, _ = run_start(workflow=wf, inputs={})
    drain()
    step = StepRun.objects.get(run=run, node_id="x0")
    assert step.status == "failed" and "limit's key template failed" in step.error
    assert Run.objects.get(pk=run.pk).status == "failed"


def test_unknown_limit_and_bad_key_syntax_are_refused_naming_the_node_and_field():
    limit_create(name="known", concurrency=1)
    d = definition("lim-bad", [node("a", limits=[{"name": "nope"}]),
                               node("b", limits=[{"name": "known", "key": "{{ inputs.x "}])], [])
    with pytest.raises(GraphInvalid) as err:
        workflow_save(definition=d)
    paths = {(i["node"], i["path"], i["code"]) for i in err.value.details}
    assert ("a", "nodes[0].limits[0].name", "unknown_limit") in paths
    assert ("b", "nodes[1].limits[0].key", "limit_key_invalid") in paths


@pytest.mark.parametrize(("kwargs", "path"), [
    ({"concurrency": 0}, "concurrency"), ({"concurrency": -1}, "concurrency"),
    ({"rate": {"limit": 0, "period_s": 1}}, "rate.limit"), ({"rate": {"limit": 1, "period_s": 0}}, "rate.period_s"),
    ({"rate": {"limit": 1, "period_s": 1, "burst": -1}}, "rate.burst"), ({}, "concurrency"),
])
def test_zero_or_negative_values_are_refused_naming_the_field(kwargs, path):
    with pytest.raises(LimitInvalid) as err:
        limit_create(name="bad", **kwargs)
    assert err.value.details[0]["path"] == path


def test_a_limit_in_use_is_not_deleted(drain):
    limit_create(name="busy", concurrency=1)
    wf = workflow_save(definition=fan("lim-busy", 2, [{"name": "busy"}]))[0]
    run_start(workflow=wf, inputs={})
    deliver(1)
    with pytest.raises(InvalidTransition):
        limit_delete(name="busy")
    drain()
    limit_delete(name="busy")
    assert not LimitClaim.objects.exists()
