"""The run view's fixes: retry after a fix on the current version, banners that follow the outcome,
approvals that end their attempt and show who decided, inline steps' attempts and durations live."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from engine.models import Attempt, Run
from engine.services.scheduler import run_start
from engine.services.workflows import workflow_save
from tests.conftest import definition, node, wait_for
from tests.e2e.conftest import screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True), pytest.mark.workers]


def status_of(page, node_id: str):
    return page.locator(f'.runview [data-node-id="{node_id}"].wnode')


def fix_definition(b):
    return definition("fix-e2e", [node("a"), b, node("c")], [("a", "b"), ("b", "c")])


def test_retry_after_a_fix_runs_the_chosen_version_and_the_banner_says_what_happened(ui, workers):
    broken = node("b", "tests.raise", kwargs={"message": "bad template"}, retry={"max_attempts": 1})
    run, _ = run_start(workflow=workflow_save(definition=fix_definition(broken))[0], inputs={})
    workers.start()
    ui.goto(f"{ui.base}/runs/{run.pk}/steps/b/")
    expect(status_of(ui, "b")).to_have_attribute("data-status", "failed", timeout=60_000)
    workflow_save(definition=fix_definition(node("b", "tests.sleep", kwargs={"seconds": 1.5},
                                                retry={"max_attempts": 1})))
    drawer = ui.locator('[data-drawer-node="b"]')
    expect(drawer).to_contain_text("bad template")

    # On the run's version (the default) the broken step fails again: the banner says so, not "done".
    drawer.get_by_role("button", name="Retry", exact=True).click()
    dialog = ui.get_by_role("dialog")
    expect(dialog.get_by_label("the run's version (v1)")).to_be_checked()
    expect(dialog.get_by_label("the current version (v2)")).to_be_enabled()
    changed = dialog.locator('[data-changed-node="b"]')
    expect(changed.locator('[data-changed-field="config.function"]')).to_contain_text("tests.raise")
    expect(changed.locator('[data-changed-field="config.function"]')).to_contain_text("tests.sleep")
    screenshot(ui, "run-retry-version-choice")
    dialog.get_by_role("button", name="Confirm retry").click()
    notice = ui.locator(".runview [data-notice]")
    expect(notice).to_have_attribute("data-notice", "error", timeout=60_000)
    expect(notice).to_contain_text("Retry failed")
    expect(notice).not_to_contain_text("done")
    assert Run.objects.get(pk=run.pk).status == "failed"

    # On the current version the fix runs; the drawer never shows the old error under the new status.
    drawer.get_by_role("button", name="Retry", exact=True).click()
    dialog = ui.get_by_role("dialog")
    dialog.get_by_label("the current version (v2)").check()
    dialog.get_by_role("button", name="Confirm retry").click()
    expect(status_of(ui, "b")).to_have_attribute("data-status", "running", timeout=60_000)
    expect(drawer.locator(".drawer-status")).to_contain_text("Running")
    expect(drawer).not_to_contain_text("bad template")
    expect(ui.locator(".runview")).to_have_attribute("data-run-status", "succeeded", timeout=60_000)
    expect(notice).to_have_attribute("data-notice", "ok")
    expect(notice).to_contain_text("Retry: all 2 steps finished")
    expect(ui.locator(".runbar")).to_contain_text("v2")
    run.refresh_from_db()
    assert (run.status, run.version.number) == ("succeeded", 2)


def test_a_run_that_cannot_move_says_why_in_the_dialog(ui, workers):
    broken = node("b", "tests.raise", retry={"max_attempts": 1})
    run, _ = run_start(workflow=workflow_save(definition=fix_definition(broken))[0], inputs={})
    workers.start()
    wait_for(lambda: Run.objects.get(pk=run.pk).status == "failed", timeout=90, message="the run to fail")
    workflow_save(definition=definition("fix-e2e", [node("a"), node("b2"), node("c")], [("a", "b2"), ("b2", "c")]))
    ui.goto(f"{ui.base}/runs/{run.pk}/steps/b/")
    ui.locator('[data-drawer-node="b"]').get_by_role("button", name="Retry", exact=True).click()
    dialog = ui.get_by_role("dialog")
    # The choice appears once the dialog has read the version comparison from the API: on a loaded machine that
    # can take longer than an assertion's default 5 s.
    expect(dialog.get_by_label("the current version (v2)")).to_be_disabled(timeout=30_000)
    expect(dialog.locator("[data-version-problems]")).to_contain_text("v2 has no node `b`")


def test_an_approved_step_ends_its_attempt_shows_who_decided_and_waits_on_the_timeline(ui, workers):
    d = definition("approve-fix", [node("first"), {"id": "gate", "type": "approval", "config": {"message": "Ship?"}},
                                   node("after")], [("first", "gate"), ("gate", "after")])
    run, _ = run_start(workflow=workflow_save(definition=d)[0], inputs={})
    workers.start()
    ui.goto(f"{ui.base}/runs/{run.pk}/steps/gate/")
    expect(status_of(ui, "gate")).to_have_attribute("data-status", "waiting", timeout=60_000)
    ui.wait_for_timeout(1200)  # the human takes a moment: the wait is long enough to draw
    drawer = ui.locator('[data-drawer-node="gate"]')
    drawer.get_by_role("button", name="Approve", exact=True).click()
    dialog = ui.get_by_role("dialog")
    dialog.get_by_label("Comment (optional)").fill("ship it")
    dialog.get_by_role("button", name="Confirm approval").click()
    expect(ui.locator(".runview")).to_have_attribute("data-run-status", "succeeded", timeout=60_000)
    decision = drawer.locator("[data-decision]")
    expect(decision).to_have_attribute("data-decision", "approved")
    expect(decision.locator("[data-decided-by]")).to_have_text("designer")
    expect(decision).to_contain_text("ship it")
    expect(decision.locator("time")).to_have_count(1)
    assert list(Attempt.objects.filter(step__run=run, step__node_id="gate").values_list("outcome", flat=True)) == [
        "succeeded"]
    drawer.get_by_role("tab", name="Attempts (1)").click()
    expect(drawer.locator(".drawer-body")).not_to_contain_text("waiting")
    screenshot(ui, "run-approval-decided")
    ui.get_by_role("tab", name="Timeline").click()
    timeline = ui.locator(".timeline")
    expect(timeline.locator('[data-node-id="gate"][data-attempt="1"]')).to_have_class("tbar outcome-succeeded")
    expect(timeline.locator('[data-wait="gate"]')).to_have_count(1)
    expect(timeline.locator(".legend")).to_contain_text("waiting")
    screenshot(ui, "run-timeline-approval")


def test_live_updates_fill_an_inline_steps_attempt_and_duration(ui, workers):
    d = definition("inline-live", [node("a", "tests.add", kwargs={"a": 2, "b": 3}),
                                   {"id": "shape", "type": "transform",
                                    "config": {"template": {"total": "{{ nodes.a.output.sum * 2 }}"}}}],
                   [("a", "shape")])
    run, _ = run_start(workflow=workflow_save(definition=d)[0], inputs={})
    ui.goto(f"{ui.base}/runs/{run.pk}/")
    expect(ui.locator(".runview")).to_have_attribute("data-live", "true")
    expect(status_of(ui, "shape")).to_have_attribute("data-status", "pending")
    workers.start()
    expect(status_of(ui, "shape")).to_have_attribute("data-status", "succeeded", timeout=60_000)
    expect(status_of(ui, "shape").locator('[title="attempts"]')).to_have_text("#1")
    expect(status_of(ui, "shape").locator('[title="duration"]')).to_contain_text("ms")
    expect(status_of(ui, "shape")).to_have_attribute("data-attempts", "1")


def test_run_header_says_how_the_run_started_and_retries_every_failed_step_at_once(ui, workers, e2e_user, tmp_path):
    flag = tmp_path / "flag"
    d = definition("header-e2e", [
        node("a"),
        node("x", "tests.fail_until_flag", kwargs={"flag": str(flag)}, retry={"max_attempts": 1}),
        node("y", "tests.fail_until_flag", kwargs={"flag": str(flag)}, retry={"max_attempts": 1}),
        node("after_x"),
    ], [("a", "x"), ("a", "y"), ("x", "after_x")],
        inputs={"type": "object", "properties": {"topic": {"type": "string"}}})
    run, _ = run_start(workflow=workflow_save(definition=d)[0], inputs={"topic": "weft"}, actor=e2e_user,
                       priority=5)
    workers.start()
    ui.goto(f"{ui.base}/runs/{run.pk}/")
    expect(ui.locator(".runview")).to_have_attribute("data-run-status", "failed", timeout=60_000)
    head = ui.get_by_role("region", name="Run summary")
    expect(head.locator('[data-fact="priority"] dd')).to_have_text("5")
    expect(head.locator('[data-fact="durability"]')).to_have_count(0)  # strict: not worth a line
    expect(head.locator('[data-fact="trigger"]')).to_contain_text("manual by designer")
    expect(head.locator('[data-fact="version"] a')).to_have_text("v1")
    expect(head.locator('[data-fact="finished"] dd')).not_to_have_text("—")
    expect(head.locator('[data-fact="duration"] dd')).not_to_have_text("—")
    expect(head.locator('[data-fact="tokens"]')).to_contain_text("0")
    head.locator("[data-run-inputs] summary").click()
    expect(head.get_by_label("Run inputs")).to_contain_text('"topic": "weft"')
    screenshot(ui, "run-header-failed")

    head.get_by_role("button", name="Retry failed steps").click()
    dialog = ui.get_by_role("dialog", name="Retry failed steps?")
    expect(dialog.locator("[data-preview-node]")).to_have_count(3)  # x, y and after_x, which x blocked
    flag.write_text("fixed")
    dialog.get_by_role("button", name="Confirm retry").click()
    expect(ui.locator(".runview")).to_have_attribute("data-run-status", "succeeded", timeout=60_000)
    notice = ui.locator(".runview [data-notice]")
    expect(notice).to_have_attribute("data-notice", "ok")
    expect(notice).to_contain_text("Retry failed steps: all 3 steps finished")

    head.get_by_role("button", name="Run again").click()
    dialog = ui.get_by_role("dialog", name="Run header-e2e again")
    expect(dialog.locator("#run-input-topic")).to_have_value("weft")
    dialog.locator("#run-input-topic").fill("weft again")
    dialog.get_by_role("button", name="Start run").click()
    ui.wait_for_url(lambda url: "/runs/" in url and str(run.pk) not in url)
    again = Run.objects.exclude(pk=run.pk).get(workflow__slug="header-e2e")
    assert again.inputs == {"topic": "weft again"}
