"""The table of allowed status transitions: plain data, checked as such."""

from __future__ import annotations

from engine.states import (
    RUN_NEXT,
    RUN_TERMINAL,
    RUN_TRANSITIONS,
    STEP_ACTIVE,
    STEP_NEXT,
    STEP_TERMINAL,
    STEP_TRANSITIONS,
    RunStatus,
    StepStatus,
)


def test_every_status_has_a_row_and_every_target_is_a_status():
    assert set(RUN_NEXT) == set(RunStatus) and set(STEP_NEXT) == set(StepStatus)
    assert all(targets <= set(RunStatus) for targets in RUN_NEXT.values())
    assert all(targets <= set(StepStatus) for targets in STEP_NEXT.values())
    assert all(source not in targets for source, targets in {**RUN_NEXT, **STEP_NEXT}.items())


def test_entry_table_is_the_exact_inverse_of_the_exit_table():
    for nxt, entry in ((RUN_NEXT, RUN_TRANSITIONS), (STEP_NEXT, STEP_TRANSITIONS)):
        pairs = {(source, target) for source, targets in nxt.items() for target in targets}
        assert pairs == {(source, target) for target, sources in entry.items() for source in sources}


def test_a_cancelled_run_is_final_and_a_step_becomes_running_only_from_a_claim():
    assert RUN_NEXT[RunStatus.CANCELLED] == frozenset()
    assert RUN_TERMINAL == {RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED}
    assert STEP_TRANSITIONS[StepStatus.RUNNING] <= {StepStatus.QUEUED, StepStatus.PENDING}
    assert not STEP_ACTIVE & STEP_TERMINAL
    # a finished step only moves again by an operator's retry or rerun: back to pending or queued first
    for status in (StepStatus.SUCCEEDED, StepStatus.SKIPPED, StepStatus.CANCELLED):
        assert StepStatus.RUNNING not in STEP_NEXT[status]


def test_the_named_sets_agree_with_the_table():
    from engine.states import RUN_REOPENABLE, STEP_FAILED, STEP_IDLE, STEP_SETTLEABLE

    # what a run's cancellation cancels: every step that may be cancelled but a running one (it stops by itself)
    assert STEP_IDLE == STEP_TRANSITIONS[StepStatus.CANCELLED] - {StepStatus.RUNNING}
    assert STEP_SETTLEABLE == STEP_IDLE | STEP_FAILED and not STEP_SETTLEABLE & {StepStatus.RUNNING}
    for status in STEP_SETTLEABLE:
        assert {StepStatus.SKIPPED, StepStatus.SUCCEEDED} <= STEP_NEXT[status] | {status}
    assert RUN_REOPENABLE == {RunStatus.SUCCEEDED, RunStatus.FAILED}
    assert all(RunStatus.RUNNING in RUN_NEXT[status] for status in RUN_REOPENABLE)
