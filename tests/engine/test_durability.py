"""Durability: a run keeps the durability its start decided, and a relaxed run's worker transactions commit with
synchronous_commit off, every other transaction as the server is configured.

A probe (a trigger on the event and journal tables) records, for every row those tables get, the transaction
that wrote it and that transaction's ``synchronous_commit`` after the statement that wrote the row: the value its
commit uses, since nothing in Weft turns the setting on again. That the setting really makes the commit skip the
WAL flush is tested on a private server: tests/chaos/test_postgres_crash.py.
"""

from __future__ import annotations

from collections import defaultdict

import pytest
from django.db import connection

from engine.exceptions import GraphInvalid
from engine.models import Run, StepRun
from engine.services.scheduler import run_start, step_retry
from engine.services.workflows import workflow_save
from tests.conftest import definition, node
from tests.engine.test_hotpath import general_path_only, one_statement_records  # noqa: F401 (a fixture)
from tests.support.effects import EffectServer

pytestmark = pytest.mark.django_db(transaction=True)

PROBE_CREATE = """
CREATE TABLE weft_commit_probe (id bigserial, xid xid8, run_id uuid, what text, setting text);
CREATE FUNCTION weft_commit_probe() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'engine_event' THEN
        INSERT INTO weft_commit_probe (xid, run_id, what, setting)
        VALUES (pg_current_xact_id(), NEW.run_id, rtrim(NEW.type || ' ' || NEW.node_id),
                current_setting('synchronous_commit'));
    ELSE
        INSERT INTO weft_commit_probe (xid, run_id, what, setting)
        SELECT pg_current_xact_id(), s.run_id, 'journal ' || NEW.key || ' ' || NEW.status,
            current_setting('synchronous_commit')
        FROM engine_steprun s WHERE s.id = NEW.step_id;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER weft_commit_probe AFTER INSERT ON engine_event FOR EACH ROW EXECUTE FUNCTION weft_commit_probe();
CREATE TRIGGER weft_commit_probe AFTER INSERT OR UPDATE ON engine_journalentry
    FOR EACH ROW EXECUTE FUNCTION weft_commit_probe();
"""
PROBE_DROP = """
DROP TRIGGER IF EXISTS weft_commit_probe ON engine_event;
DROP TRIGGER IF EXISTS weft_commit_probe ON engine_journalentry;
DROP FUNCTION IF EXISTS weft_commit_probe();
DROP TABLE IF EXISTS weft_commit_probe;
"""


@pytest.fixture
def commit_probe():
    """Returns a function giving a run's transactions: [(what each row was, synchronous_commit)], in order."""
    with connection.cursor() as cur:
        cur.execute(PROBE_DROP)
        cur.execute(PROBE_CREATE)

    def transactions(run_id) -> list[tuple[list[str], str]]:
        with connection.cursor() as cur:
            cur.execute("SELECT xid::text, what, setting FROM weft_commit_probe WHERE run_id = %s ORDER BY id",
                        [run_id])
            rows = cur.fetchall()
        grouped: dict[str, tuple[list[str], set[str]]] = defaultdict(lambda: ([], set()))
        for xid, what, setting in rows:
            grouped[xid][0].append(what)
            grouped[xid][1].add(setting)
        assert all(len(settings) == 1 for _, settings in grouped.values())
        return [(whats, settings.pop()) for whats, settings in grouped.values()]

    yield transactions
    with connection.cursor() as cur:
        cur.execute(PROBE_DROP)


def save(d: dict):
    return workflow_save(definition=d)[0]


def fan_in_chain(slug: str, effects_url: str, charges_path: str, **extra) -> dict:
    """a (a journaled call safe to repeat) -> b (one not safe to repeat) and c -> d -> e -> f: a fan-out and a join
    recorded by RunTx, then a chain and a run's last step recorded in one statement each."""
    nodes = [node("a", "tests.http_effect", kwargs={"url": effects_url}),
             node("b", "tests.unsafe_call", kwargs={"path": charges_path}), node("c"), node("d"), node("e"),
             node("f")]
    edges = [("a", "b"), ("a", "c"), ("b", "d"), ("c", "d"), ("d", "e"), ("e", "f")]
    return definition(slug, nodes, edges, **extra)


def test_an_unknown_durability_is_refused_and_nothing_is_saved():
    with pytest.raises(GraphInvalid) as caught:
        save(definition("bad-durability", [node("a")], [], durability="eventual"))
    assert [(e.code, e.path) for e in caught.value.errors] == [("schema", "durability")]
    assert caught.value.errors[0].message == "`durability` must be one of `strict`, `relaxed`"


@pytest.mark.parametrize(("given", "default_queue", "expected"), [
    (None, "strict", "strict"),  # nothing said anywhere
    (None, "relaxed", "relaxed"),  # the queue's default applies
    ("strict", "relaxed", "strict"),  # the definition wins over the queue
    ("relaxed", "strict", "relaxed"),
])
def test_a_run_keeps_the_durability_its_start_decided(settings, given, default_queue, expected):
    settings.WEFT_QUEUES = {name: {**cfg, "durability": default_queue if name == "default" else "strict"}
                            for name, cfg in settings.WEFT_QUEUES.items()}
    extra = {} if given is None else {"durability": given}
    wf = save(definition(f"keeps-{given or 'none'}-{default_queue}", [node("a"), node("b")], [("a", "b")], **extra))
    first, _ = run_start(workflow=wf)  # one statement (engine.core.hotpath)
    inline = save(definition(f"keeps-inline-{given or 'none'}-{default_queue}", [  # an inline first step:
        {"id": "t", "type": "transform", "queue": "default", "config": {"template": {"x": 1}}}, node("b")],
        [("t", "b")], **extra))  # the general path
    second, _ = run_start(workflow=inline)
    assert Run.objects.get(pk=first.pk).durability == first.durability == expected
    assert Run.objects.get(pk=second.pk).durability == expected
    # the queue's default changing later changes no run already started
    settings.WEFT_QUEUES = {name: {**cfg, "durability": "strict"} for name, cfg in settings.WEFT_QUEUES.items()}
    assert Run.objects.get(pk=first.pk).durability == expected


@pytest.mark.parametrize("path", ["one statement", "general"])
def test_relaxed_runs_worker_transactions_commit_with_synchronous_commit_off(
        drain, commit_probe, one_statement_records, tmp_path, monkeypatch, path):  # noqa: F811 (a fixture)
    if path == "general":
        general_path_only(monkeypatch)
    with EffectServer() as server:
        runs = {}
        for durability in ("strict", "relaxed"):
            wf = save(fan_in_chain(f"probe-{durability}", server.url, str(tmp_path / f"charges-{durability}"),
                                   durability=durability))
            runs[durability], _ = run_start(workflow=wf)
            drain()
    assert [Run.objects.get(pk=run.pk).status for run in runs.values()] == ["succeeded", "succeeded"]
    assert set(server.applied.values()) == {1} and len(server.applied) == 2
    if path == "one statement":  # the claim, the chain and the last step went through hotpath's statements
        assert {("claim", "a"), ("chain", "e"), ("chain", "f"), ("finish", "f")} <= set(one_statement_records)
    else:
        assert one_statement_records == []

    strict = commit_probe(runs["strict"].pk)
    assert strict and all(setting == "on" for _, setting in strict), strict

    relaxed = commit_probe(runs["relaxed"].pk)
    start, *rest = relaxed
    assert start == (["run.running", "step.queued a"], "on")  # a run's start is strict
    unsafe = [(whats, setting) for whats, setting in rest if any(w.startswith("journal charge") for w in whats)]
    assert unsafe == [(["journal charge started"], "on"), (["journal charge succeeded"], "on")]
    worker = [(whats, setting) for whats, setting in rest if (whats, setting) not in unsafe]
    assert all(setting == "off" for _, setting in worker), worker
    seen = [set(whats) for whats, _ in worker]
    for wanted in ({"step.running a"},  # the delivered step's claim
                   {"journal call-0 started"}, {"journal call-0 succeeded"},  # a call safe to repeat
                   {"step.succeeded a", "step.queued b", "step.queued c"},  # the fan-out (RunTx)
                   {"step.queued d"},  # the join, with the success of b or c, or both (RunTx)
                   {"step.succeeded d", "step.queued e", "step.running e"},  # a chained success
                   {"step.succeeded f", "run.succeeded"}):  # the run's last step
        assert any(wanted <= whats for whats in seen), (wanted, worker)


def test_an_operators_action_on_a_relaxed_run_is_strict(drain, commit_probe):
    wf = save(definition("probe-operator", [node("x", "tests.raise", retry={"max_attempts": 1})], [],
                         durability="relaxed"))
    run, _ = run_start(workflow=wf)
    drain()
    assert StepRun.objects.get(run=run).status == "failed"
    step_retry(run_id=run.pk, node_id="x", actor="ops")
    drain()
    start, *rest = commit_probe(run.pk)
    assert start == (["run.running", "step.queued x"], "on")
    operator = [(whats, setting) for whats, setting in rest if "step.retry_requested x" in whats]
    assert operator == [(["run.running", "step.retry_requested x", "step.queued x"], "on")]  # reopened, requeued
    failures = [(whats, setting) for whats, setting in rest if "step.failed x" in whats]
    assert len(failures) == 2 and all(setting == "off" for _, setting in failures), failures  # the workers'
