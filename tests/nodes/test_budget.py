"""Budgets: a model call that could spend past a node's or a run's budget is not made; spend in the API and /metrics."""

from __future__ import annotations

import json

import pytest

from engine.models import JournalEntry, StepRun
from engine.services.scheduler import run_start
from engine.services.workflows import workflow_save
from tests.api.conftest import client_for
from tests.conftest import definition
from tests.fakes.servers import ChatServer
from tests.observability.helpers import delta, scrape

pytestmark = pytest.mark.django_db

PRICES = {"pricey": {"input": 1000.0, "output": 1000.0}}  # USD per million tokens: $0.001 a token


def counted_usage(body: dict) -> dict:
    """A model that counts a token per 4 characters of the messages and tools it is sent, and 5 for its reply."""
    prompt = len(json.dumps(body["messages"])) // 4 + (len(json.dumps(body["tools"])) // 4 if body.get("tools") else 0)
    return {"prompt_tokens": prompt, "completion_tokens": 5, "total_tokens": prompt + 5}


@pytest.fixture
def chat():
    server = ChatServer(tool_calls_total=6, model="pricey", usage=counted_usage).start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _own_metrics(settings, tmp_path):
    settings.WEFT_METRICS_DIR = tmp_path / "no-metrics"  # /metrics shows this process's counters only


@pytest.fixture
def priced(settings):
    settings.WEFT_LLM_PRICES = PRICES
    return settings


def agent(chat, tool_server, **config) -> dict:
    tool = {"name": "effect", "type": "http", "url": tool_server.url + "/effect"}
    return {"id": "agent", "type": "agent", "retry": {"max_attempts": 3, "backoff_s": 0, "jitter": 0},
            "config": {"base_url": chat.url + "/v1", "model": "pricey", "prompt": "Work", "tools": [tool],
                       "max_tokens": 5, **config}}


def start(nodes, edges=(), slug="budgeted", **extra):
    wf = workflow_save(definition={**definition(slug, nodes, list(edges)), **extra})[0]
    return run_start(workflow=wf)[0]


def spent_tokens(step) -> list[int]:
    return [e.result["usage"]["total_tokens"] for e in JournalEntry.objects.filter(step=step, key__startswith="turn-")
            .order_by("position") if e.status == "succeeded"]


@pytest.fixture
def unbudgeted(allow_loopback, chat, tool_server, drain) -> list[int]:
    """The tokens of each model call of the agent without a budget (7 calls: 6 tool calls, then an answer)."""
    run = start([agent(chat, tool_server)], slug="unbudgeted")
    drain()
    tokens = spent_tokens(StepRun.objects.get(run=run))
    assert len(tokens) == 7
    chat.requests.clear()
    return tokens


def test_a_run_budget_stops_the_agent_before_the_call_that_would_pass_it(
        allow_loopback, priced, chat, tool_server, drain, client, unbudgeted):
    limit = round((sum(unbudgeted[:3]) + unbudgeted[3] // 2) * 0.001, 6)  # the 4th call would pass it
    before = scrape(client)
    run = start([agent(chat, tool_server)], budget={"max_cost_usd": limit})
    drain()
    step = StepRun.objects.get(run=run)
    assert step.status == "failed"
    assert step.error.startswith(f"BudgetExceeded: the run's budget of ${limit:g}:"), step.error
    tokens = spent_tokens(step)
    assert tokens == unbudgeted[:3]
    spent = sum(tokens) * 0.001
    assert len(chat.completions()) == 3  # the refused call was never sent
    assert step.attempts.count() == 1  # BudgetExceeded is not retried: the next attempt would be refused too

    detail = client_for("viewer").get(f"/api/runs/{run.pk}/").json()
    assert detail["spend"]["total_tokens"] == sum(tokens)
    assert detail["spend"]["cost_usd"] == pytest.approx(spent)
    assert detail["spend"]["by_model"] == [{"model": "pricey", "calls": len(tokens),
                                            "prompt_tokens": sum(tokens) - 5 * len(tokens),
                                            "completion_tokens": 5 * len(tokens), "total_tokens": sum(tokens),
                                            "cost_usd": pytest.approx(spent)}]
    assert detail["spend"]["budget"] == {"max_cost_usd": 0.5}
    analytics = client_for("viewer").get("/api/workflows/budgeted/analytics/").json()
    assert analytics["spend"]["cost_usd"] == pytest.approx(spent)
    # The workflow's figures are counted in SQL, the run's from its journal: the same for one run.
    assert analytics["spend"] == {k: v for k, v in detail["spend"].items() if k != "budget"}

    after = scrape(client)
    assert delta(before, after, "weft_budget_stops_total", scope="run") == 1
    assert delta(before, after, "weft_llm_cost_usd_total", model="pricey") == pytest.approx(spent)


def test_a_node_token_budget_with_on_budget_return_outputs_what_there_is(
        allow_loopback, chat, tool_server, drain, unbudgeted):
    limit = sum(unbudgeted[:5])  # exactly what five calls use: the sixth would pass it
    run = start([agent(chat, tool_server, budget={"max_tokens": limit}, on_budget="return")])
    drain()
    step = StepRun.objects.get(run=run)
    assert step.status == "succeeded", step.error
    assert spent_tokens(step) == unbudgeted[:5]
    assert step.output["stopped"] == "budget" and step.output["turns"] == 5


def test_a_run_budget_counts_what_earlier_steps_spent(allow_loopback, chat, drain):
    def ask(node_id):
        return {"id": node_id, "type": "llm", "config": {"base_url": chat.url + "/v1", "model": "pricey",
                                                         "prompt": "hello"}}

    run = start([ask("first"), ask("second")], [("first", "second")], budget={"max_tokens": 20})
    drain()
    first, second = (StepRun.objects.get(run=run, node_id=n) for n in ("first", "second"))
    used = first.output["usage"]["total_tokens"]
    assert first.status == "succeeded" and used < 20
    assert second.status == "failed" and f"the run's budget of 20 tokens: {used} spent" in second.error
    assert len(chat.completions()) == 1
