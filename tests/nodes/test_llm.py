"""The llm node against a real loopback OpenAI-compatible server, and the offline simulation."""

from __future__ import annotations

import pytest

from engine.integrations.llm_providers import estimate_cost, run_usage
from engine.integrations.llm_simulation import SIMULATION_LABEL
from engine.models import Attempt, JournalEntry, StepRun
from engine.services.scheduler import run_start, step_retry
from engine.services.workflows import workflow_save
from tests.conftest import definition
from tests.nodes.conftest import LLM_KEY as KEY

pytestmark = pytest.mark.django_db

def llm_node(server, id="ask", **config) -> dict:
    return {"id": id, "type": "llm", "retry": {"max_attempts": 1},
            "config": {"base_url": server.url + "/v1", "model": "gpt-4o-mini", "credential": "llm-key", **config}}


def run_nodes(nodes, drain, edges=(), inputs=None, slug="llm1"):
    wf = workflow_save(definition=definition(slug, nodes, list(edges)))[0]
    run, _ = run_start(workflow=wf, inputs=inputs or {})
    drain()
    run.refresh_from_db()
    return run


def test_completion_renders_prompts_and_records_usage_cost_and_latency(allow_loopback, llm_key, chat_server, drain):
    node = llm_node(chat_server, system="You are terse.", prompt="Hello {{ inputs.name }}", temperature=0.1,
                    max_tokens=50)
    run = run_nodes([node], drain, inputs={"name": "Ada"})
    step = StepRun.objects.get(run=run, node_id="ask")
    assert run.status == "succeeded", step.error
    assert step.output["text"] == "echo: Hello Ada"
    assert step.output["model"] == "gpt-4o-mini" and step.output["simulated"] is False
    request = chat_server.completions()[0]
    assert request["headers"]["authorization"] == f"Bearer {KEY}"
    assert request["body"]["messages"] == [{"role": "system", "content": "You are terse."},
                                           {"role": "user", "content": "Hello Ada"}]
    assert request["body"]["temperature"] == 0.1 and request["body"]["max_tokens"] == 50
    metrics = Attempt.objects.get(step=step).metrics
    assert metrics["prompt_tokens"] == 20 and metrics["completion_tokens"] == 5 and metrics["llm_calls"] == 1
    assert metrics["cost_usd"] == pytest.approx((20 * 0.15 + 5 * 0.60) / 1e6)
    assert metrics["latency_ms"] >= 0
    assert run_usage(run.pk)["total_tokens"] == 25


def test_response_schema_output_is_parsed_and_checked(allow_loopback, llm_key, chat_server, drain):
    chat_server.json_reply = {"category": "billing", "urgent": True}
    schema = {"type": "object", "required": ["category", "urgent"],
              "properties": {"category": {"enum": ["billing", "bug"]}, "urgent": {"type": "boolean"}}}
    run = run_nodes([llm_node(chat_server, prompt="classify", response_schema=schema)], drain)
    step = StepRun.objects.get(run=run)
    assert step.output["json"] == {"category": "billing", "urgent": True}
    sent = chat_server.completions()[0]["body"]["response_format"]
    assert sent["type"] == "json_schema" and sent["json_schema"]["schema"] == schema


def test_reply_not_matching_response_schema_fails_the_step(allow_loopback, llm_key, chat_server, drain):
    chat_server.json_reply = {"category": "weather"}
    schema = {"type": "object", "required": ["category"], "properties": {"category": {"enum": ["billing"]}}}
    run = run_nodes([llm_node(chat_server, prompt="classify", response_schema=schema)], drain)
    step = StepRun.objects.get(run=run)
    assert step.status == "failed" and "LLMBadResponse" in step.error and "category" in step.error


def test_a_retried_step_does_not_ask_the_model_again(allow_loopback, settings, llm_key, chat_server, drain):
    settings.WEFT_MAX_OUTPUT_BYTES = 1024  # the echoed prompt makes the output too large: the step fails after
    run = run_nodes([llm_node(chat_server, prompt="x" * 2000)], drain)  # the model answered
    step = StepRun.objects.get(run=run)
    assert step.status == "failed" and "OutputTooLarge" in step.error
    settings.WEFT_MAX_OUTPUT_BYTES = 1_048_576
    step_retry(run_id=run.pk, node_id="ask", actor="operator")
    drain()
    step.refresh_from_db()
    assert step.status == "succeeded" and step.output["text"] == "echo: " + "x" * 2000
    assert len(chat_server.completions()) == 1
    assert JournalEntry.objects.get(step=step, key="completion").status == "succeeded"


def test_rate_limit_with_retry_after_is_waited_out(allow_loopback, llm_key, chat_server, drain):
    chat_server.fail_next = [(429, {"Retry-After": "0"})]
    run = run_nodes([llm_node(chat_server, prompt="hi")], drain)
    assert run.status == "succeeded"
    assert len(chat_server.completions()) == 2


def test_server_error_is_retried_by_the_engine(allow_loopback, llm_key, chat_server, drain):
    chat_server.fail_next = [(500, {})]
    node = {**llm_node(chat_server, prompt="hi"), "retry": {"max_attempts": 2, "backoff_s": 0, "jitter": 0}}
    run = run_nodes([node], drain)
    step = StepRun.objects.get(run=run)
    assert run.status == "succeeded"
    assert list(Attempt.objects.filter(step=step).values_list("error_type", flat=True)) == ["LLMUnavailable", ""]


def test_auto_provider_without_an_endpoint_uses_the_labelled_simulation(settings, drain):
    settings.OPENAI_API_KEY, settings.WEFT_LLM_BASE_URL = "", ""
    node = {"id": "ask", "type": "llm", "config": {"provider": "auto", "prompt": "Summarise the news"}}
    run = run_nodes([node], drain)
    step = StepRun.objects.get(run=run)
    assert step.output["simulated"] is True and step.output["model"] == "simulation"
    assert step.output["text"].startswith(SIMULATION_LABEL)


def test_openai_provider_without_a_key_fails_with_a_clear_error(settings, drain):
    settings.OPENAI_API_KEY, settings.WEFT_LLM_BASE_URL = "", ""
    node = {"id": "ask", "type": "llm", "retry": {"max_attempts": 1}, "config": {"prompt": "hi"}}
    run = run_nodes([node], drain)
    step = StepRun.objects.get(run=run)
    assert step.status == "failed" and "OPENAI_API_KEY" in step.error


def test_environment_key_is_never_sent_to_a_url_from_a_node_config(allow_loopback, settings, chat_server, drain):
    settings.OPENAI_API_KEY = "sk-env-should-stay-home"
    node = {"id": "ask", "type": "llm", "config": {"base_url": chat_server.url + "/v1", "prompt": "hi"}}
    run_nodes([node], drain)
    assert "authorization" not in chat_server.completions()[0]["headers"]


def test_configured_endpoint_gets_the_environment_key(settings, chat_server, drain):
    settings.WEFT_LLM_BASE_URL, settings.OPENAI_API_KEY = chat_server.url + "/v1", "sk-env-key"
    node = {"id": "ask", "type": "llm", "config": {"provider": "auto", "prompt": "hi"}}
    run = run_nodes([node], drain)
    assert StepRun.objects.get(run=run).output["text"] == "echo: hi"
    assert chat_server.completions()[0]["headers"]["authorization"] == "Bearer sk-env-key"


def test_cost_estimate_uses_the_longest_matching_price_and_settings_override(settings):
    assert estimate_cost("gpt-4o-mini-2024-07-18", 1_000_000, 0) == pytest.approx(0.15)
    assert estimate_cost("gpt-4o-2024-08-06", 0, 1_000_000) == pytest.approx(10.0)
    assert estimate_cost("unknown-model", 10, 10) is None
    settings.WEFT_LLM_PRICES = {"my-model": {"input": 1, "output": 2}}
    assert estimate_cost("my-model", 1_000_000, 1_000_000) == pytest.approx(3.0)
