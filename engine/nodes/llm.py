"""The ``llm`` node: one chat completion against an OpenAI-compatible API, the Anthropic Messages API, or the
offline simulation."""

from __future__ import annotations

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from engine.core.registry import node_type
from engine.integrations import llm_providers
from engine.nodes import budget
from engine.nodes.validation import CredentialUse, url_problems

ENDPOINT_PROPERTIES = {
    "provider": {"enum": list(llm_providers.PROVIDERS), "default": "openai",
                 "description": "openai: any OpenAI-compatible API; anthropic: the Anthropic Messages API; "
                                "simulation: scripted offline replies (labelled simulated); auto: openai when an "
                                "OpenAI endpoint or key is configured, else anthropic when an Anthropic key or "
                                "endpoint is, else simulation"},
    "base_url": {"type": "string", "description": "API base URL, e.g. https://api.openai.com/v1 or "
                                                  "https://api.anthropic.com (default WEFT_LLM_BASE_URL, for "
                                                  "anthropic WEFT_ANTHROPIC_BASE_URL)"},
    "model": {"type": "string", "description": "model name (default WEFT_LLM_MODEL, for anthropic "
                                               "WEFT_ANTHROPIC_MODEL)"},
    "credential": {"type": "string", "description": "stored credential holding the API key (default "
                                                    "OPENAI_API_KEY or ANTHROPIC_API_KEY, for the configured "
                                                    "endpoint only)"},
    "temperature": {"type": "number", "minimum": 0, "maximum": 2},
    "max_tokens": {"type": "integer", "minimum": 1},
    "timeout_s": {"type": "number", "exclusiveMinimum": 0, "default": 120},
    "stream": {"type": "boolean", "default": False,
               "description": "stream the model's replies: the run view's Conversation shows each one as the model "
                              "writes it (the journal records the finished reply); the endpoint must support "
                              "streaming. The simulation answers at once"},
    "simulation": {
        "type": "object",
        "description": "replies of the simulation provider",
        "additionalProperties": False,
        "properties": {
            "script": {"enum": ["research", "refund"]},
            "match": {"type": "string", "description": "text the rules look in (default: the user prompt)"},
            "rules": {"type": "array", "items": {
                "type": "object", "required": ["contains", "reply"], "additionalProperties": False,
                "properties": {"contains": {"type": ["string", "array"], "items": {"type": "string"}},
                               "reply": {}}}},
            "default": {},
        },
    },
}


def endpoint_problems(config: dict) -> list:
    return url_problems(config["base_url"], "base_url") if config.get("base_url") else []


def endpoint_credential_uses(config: dict) -> list[CredentialUse]:
    """The node's credential, sent to its API base URL (never sent by the simulation)."""
    url = None if config.get("provider") == "simulation" else llm_providers.endpoint_base_url(config)
    return [CredentialUse("credential", config.get("credential"), url)]


def check_no_key(endpoint: llm_providers.Endpoint) -> None:
    if endpoint.credential is not None:
        return
    if endpoint.provider == "openai" and endpoint.base_url == llm_providers.OPENAI_BASE_URL:
        raise llm_providers.LLMRequestRejected(
            "no API key for the OpenAI API: set OPENAI_API_KEY, name a stored credential in the node's config, "
            "point WEFT_LLM_BASE_URL at another OpenAI-compatible server, or use provider 'auto' for the offline "
            "simulation")
    if endpoint.provider == "anthropic" and endpoint.base_url == llm_providers.ANTHROPIC_BASE_URL:
        raise llm_providers.LLMRequestRejected(
            "no API key for the Anthropic API: set ANTHROPIC_API_KEY, name a stored credential in the node's "
            "config, point WEFT_ANTHROPIC_BASE_URL at another Messages API server, or use provider 'auto' for the "
            "offline simulation")


@node_type("llm", label="LLM chat completion", tokens_per_call=True)
class LlmNode:
    """One chat completion: a system prompt and a user prompt (both templated) to an OpenAI-compatible
    chat-completions API or the Anthropic Messages API. With ``response_schema`` the model is asked for JSON
    matching that schema, and the reply is parsed and checked (``output.json``).

    The call is journaled: a retry of this step never asks the model again once it has answered.
    Token usage, estimated cost (``WEFT_LLM_PRICES``) and latency are recorded on the attempt.
    """

    config_schema = {
        "type": "object",
        "required": ["prompt"],
        "additionalProperties": False,
        "properties": {
            **ENDPOINT_PROPERTIES,
            "system": {"type": "string", "description": "system prompt (templated)"},
            "prompt": {"type": "string", "minLength": 1, "description": "user prompt (templated)"},
            "response_schema": {"type": "object", "description": "JSON Schema the reply must match"},
            "budget": budget.BUDGET_SCHEMA,
            "on_budget": budget.ON_BUDGET_SCHEMA,
        },
    }
    outputs = {
        "text": "the reply text",
        "json": "the parsed reply (with response_schema)",
        "model": "model that answered ('simulation' for the offline simulation)",
        "finish_reason": "why the model stopped ('budget': not asked, as the call could pass a budget)",
        "usage": "prompt_tokens, completion_tokens, total_tokens",
        "simulated": "true when the offline simulation answered",
    }

    def run(self, ctx, config: dict):
        endpoint = llm_providers.resolve_endpoint(config)
        check_no_key(endpoint)
        messages = []
        if config.get("system"):
            messages.append({"role": "system", "content": str(config["system"])})
        messages.append({"role": "user", "content": str(config["prompt"])})

        def complete(idempotency_key: str):
            budget.check(ctx, node_budget=config.get("budget"), model=endpoint.model, messages=messages, tools=None,
                         max_output=config.get("max_tokens"))
            reply = llm_providers.chat(
                endpoint, messages=messages, temperature=config.get("temperature"),
                max_tokens=config.get("max_tokens"), response_schema=config.get("response_schema"),
                timeout_s=float(config.get("timeout_s") or 120), idempotency_key=idempotency_key,
                text=ctx.text_stream("completion") if config.get("stream") else None,
            )
            llm_providers.add_usage(ctx.metrics, reply)
            return reply

        try:
            reply = ctx.step("completion", complete, safe_to_repeat=True)
        except budget.BudgetExceeded:
            if config.get("on_budget", "fail") == "fail":
                raise
            return {"text": "", "model": endpoint.model, "finish_reason": "budget", "usage": {}, "simulated": False}
        output = {
            "text": reply["message"].get("content") or "",
            "model": reply.get("model"),
            "finish_reason": reply.get("finish_reason"),
            "usage": reply.get("usage") or {},
            "simulated": bool(reply.get("simulated")),
        }
        if "json" in reply:
            output["json"] = reply["json"]
        return output

    credential_uses = staticmethod(endpoint_credential_uses)

    def validate_config(self, config: dict, *, node_id: str, upstream_ids: set[str], graph) -> list:
        problems = endpoint_problems(config)
        schema = config.get("response_schema")
        if isinstance(schema, dict):
            try:
                Draft202012Validator.check_schema(schema)
            except SchemaError as exc:
                problems.append(("response_schema", f"not a valid JSON Schema: {exc.message}"))
        return problems
