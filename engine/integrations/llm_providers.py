"""Chat-completion providers for the ``llm`` and ``agent`` nodes.

Three providers:

- ``openai``: any server that speaks the OpenAI chat-completions protocol (OpenAI, Azure-style gateways,
  vLLM, Ollama, LiteLLM, ...), through the official ``openai`` SDK (``llm_openai``).
- ``anthropic``: the Anthropic Messages API, through the official ``anthropic`` SDK (``llm_anthropic``).
- ``simulation``: a scripted stand-in, clearly labelled as a simulation, for offline demos. It never
  touches the network; its replies come from rules in the node config or from a built-in script.

Both SDKs send through an httpx client whose transport is the SSRF guard, one request per call, no client-side
retries (``llm_sdk``): a failed call raises, and the engine's retry policy (with the journal replaying calls that
already succeeded) decides what happens next.

``auto`` picks ``openai`` when an OpenAI-compatible endpoint is configured (``WEFT_LLM_BASE_URL``,
``OPENAI_API_KEY``, or a ``base_url``/``credential`` in the node config), else ``anthropic`` when
``ANTHROPIC_API_KEY`` or ``WEFT_ANTHROPIC_BASE_URL`` is set, and ``simulation`` otherwise.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import httpx
import jsonschema
from django.conf import settings
from django.db import connection

from engine.integrations import llm_simulation, netguard
from engine.integrations.credentials import credential_headers, redact_value
from engine.integrations.llm_anthropic import anthropic_chat
from engine.integrations.llm_openai import openai_chat
from engine.integrations.llm_sdk import LLMBadResponse, LLMRequestRejected, LLMUnavailable
from engine.integrations.llm_simulation import SIMULATED_MODEL

__all__ = ["LLMBadResponse", "LLMRequestRejected", "LLMUnavailable", "chat", "resolve_endpoint"]

OPENAI_BASE_URL = "https://api.openai.com/v1"
ANTHROPIC_BASE_URL = "https://api.anthropic.com"

# USD per million tokens (list prices at the time of writing; override or extend with WEFT_LLM_PRICES).
DEFAULT_PRICES: dict[str, dict[str, float]] = {
    "gpt-4o-mini": {"input": 0.15, "output": 0.60},
    "gpt-4o": {"input": 2.50, "output": 10.00},
    "gpt-4.1": {"input": 2.00, "output": 8.00},
    "gpt-4.1-mini": {"input": 0.40, "output": 1.60},
    "gpt-4.1-nano": {"input": 0.10, "output": 0.40},
    "o4-mini": {"input": 1.10, "output": 4.40},
    # Anthropic list prices (cache writes and reads are counted as input at the input price).
    "claude-opus-4-1": {"input": 15.00, "output": 75.00},
    "claude-opus-4": {"input": 15.00, "output": 75.00},
    "claude-sonnet-4-5": {"input": 3.00, "output": 15.00},
    "claude-sonnet-4": {"input": 3.00, "output": 15.00},
    "claude-haiku-4-5": {"input": 1.00, "output": 5.00},
    "claude-3-5-haiku": {"input": 0.80, "output": 4.00},
    SIMULATED_MODEL: {"input": 0.0, "output": 0.0},
}

PROVIDERS = ("openai", "anthropic", "simulation", "auto")
SERVER_PROVIDERS = ("openai", "anthropic")


@dataclass
class Endpoint:
    provider: str  # "openai", "anthropic" or "simulation"
    model: str
    base_url: str = ""
    credential: netguard.CredentialHeaders | None = field(default=None, repr=False)  # the API key, if any
    check_host: bool = True  # apply the SSRF guard (base URLs from node configs)
    simulation: dict | None = None

    @property
    def secret(self) -> str:
        return self.credential.secret if self.credential else ""


def resolve_endpoint(config: dict) -> Endpoint:
    """Where an llm/agent node's calls go, from its (rendered) config and the settings."""
    provider = provider_of(config)
    if provider == "simulation":
        return Endpoint("simulation", SIMULATED_MODEL, simulation=config.get("simulation") or {})
    anthropic = provider == "anthropic"
    model = config.get("model") or (settings.WEFT_ANTHROPIC_MODEL if anthropic else settings.WEFT_LLM_MODEL)
    operator_base = settings.WEFT_ANTHROPIC_BASE_URL if anthropic else settings.WEFT_LLM_BASE_URL
    env_name = "ANTHROPIC_API_KEY" if anthropic else "OPENAI_API_KEY"
    env_key = getattr(settings, env_name, "")
    own_url = (config.get("base_url") or "").rstrip("/")
    base_url = endpoint_base_url(config)
    operator_url = not own_url or own_url == operator_base
    credential = None
    if config.get("credential"):
        credential = credential_headers(config["credential"])
    elif operator_url and env_key:
        # The environment's key goes only to the operator's endpoint, never to a URL typed into a node.
        credential = netguard.CredentialHeaders(name=env_name, secret=env_key,
                                                headers={"Authorization": f"Bearer {env_key}"},
                                                allowed_hosts=(httpx.URL(base_url).host,))
    return Endpoint(provider, model, base_url=base_url, credential=credential, check_host=not operator_url)


def provider_of(config: dict) -> str:
    """The provider a node's calls use, ``auto`` decided."""
    provider = config.get("provider") or "openai"
    if provider != "auto":
        return provider
    if config.get("base_url") or config.get("credential") or settings.WEFT_LLM_BASE_URL or settings.OPENAI_API_KEY:
        return "openai"
    if settings.ANTHROPIC_API_KEY or settings.WEFT_ANTHROPIC_BASE_URL:
        return "anthropic"
    return "simulation"


def endpoint_base_url(config: dict) -> str:
    """The API base URL an llm/agent node's calls (and its credential) go to, when it talks to a server."""
    own = (config.get("base_url") or "").rstrip("/")
    if provider_of(config) == "anthropic":
        return own or settings.WEFT_ANTHROPIC_BASE_URL or ANTHROPIC_BASE_URL
    return own or settings.WEFT_LLM_BASE_URL or OPENAI_BASE_URL


# -- prices and usage ---------------------------------------------------------------------------


def prices() -> dict[str, dict[str, float]]:
    return {**DEFAULT_PRICES, **(getattr(settings, "WEFT_LLM_PRICES", None) or {})}


def estimate_cost(model: str, prompt_tokens: int, completion_tokens: int) -> float | None:
    """Estimated USD for one call; the longest price-table key that prefixes the model name wins."""
    table = prices()
    match = max((k for k in table if model == k or model.startswith(k + "-")), key=len, default=None)
    if match is None:
        return None
    price = table[match]
    cost = (prompt_tokens * float(price.get("input", 0)) + completion_tokens * float(price.get("output", 0))) / 1e6
    return round(cost, 8)


def add_usage(metrics: dict, reply: dict) -> None:
    """Fold one call's usage, cost and latency into an attempt's metrics."""
    usage = reply.get("usage") or {}
    for key in ("prompt_tokens", "completion_tokens", "total_tokens"):
        metrics[key] = metrics.get(key, 0) + int(usage.get(key) or 0)
    metrics["llm_calls"] = metrics.get("llm_calls", 0) + 1
    metrics["latency_ms"] = round(metrics.get("latency_ms", 0) + float(reply.get("latency_ms") or 0), 1)
    metrics["model"] = reply.get("model") or metrics.get("model", "")
    cost = estimate_cost(reply.get("model") or "", int(usage.get("prompt_tokens") or 0),
                         int(usage.get("completion_tokens") or 0))
    if cost is not None:
        metrics["cost_usd"] = round(metrics.get("cost_usd", 0.0) + cost, 8)


def run_usage(run_id) -> dict:
    """LLM usage of a run: attempt metrics summed over every step and attempt."""
    with connection.cursor() as cur:
        cur.execute(
            """
            SELECT COALESCE(SUM((a.metrics->>'prompt_tokens')::bigint), 0),
                   COALESCE(SUM((a.metrics->>'completion_tokens')::bigint), 0),
                   COALESCE(SUM((a.metrics->>'total_tokens')::bigint), 0),
                   COALESCE(SUM((a.metrics->>'llm_calls')::bigint), 0),
                   COALESCE(SUM((a.metrics->>'cost_usd')::numeric), 0),
                   COALESCE(SUM((a.metrics->>'latency_ms')::numeric), 0)
            FROM engine_attempt a
            WHERE a.step_id = ANY(ARRAY(SELECT s.id FROM engine_steprun s WHERE s.run_id = %s))
              AND a.metrics ? 'llm_calls'
            """,
            [str(run_id)],
        )
        prompt, completion, total, calls, cost, latency = cur.fetchone()
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": total, "llm_calls": calls,
            "cost_usd": float(cost), "latency_ms": float(latency)}


# -- one chat completion ------------------------------------------------------------------------


def chat(endpoint: Endpoint, *, messages: list[dict], tools: list[dict] | None = None,
         temperature: float | None = None, max_tokens: int | None = None, response_schema: dict | None = None,
         timeout_s: float = 120.0, idempotency_key: str | None = None, text=None) -> dict:
    """One chat completion. Returns ``{"message", "finish_reason", "usage", "model", "latency_ms", "simulated"}``.

    With ``response_schema`` the reply's content is parsed as JSON and checked against it (``"json"``). With
    ``text`` (an engine.core.streaming.TextStream) a real model's reply is streamed and its text given to ``text``
    as it arrives; the simulation answers at once.
    """
    if endpoint.provider == "simulation":
        reply = llm_simulation.reply(endpoint.simulation or {}, messages=messages, tools=tools,
                                     response_schema=response_schema)
    else:
        send = anthropic_chat if endpoint.provider == "anthropic" else openai_chat
        reply = send(endpoint, messages=messages, tools=tools, temperature=temperature, max_tokens=max_tokens,
                     response_schema=response_schema, timeout_s=timeout_s, idempotency_key=idempotency_key,
                     text=text)
        if endpoint.secret:  # a model (or a proxy) that repeats the key it was sent
            reply["message"] = redact_value(reply["message"], endpoint.secret)
    if response_schema is not None:
        reply["json"] = _parse_structured(reply["message"].get("content"), response_schema)
    return reply


def _parse_structured(content, schema: dict):
    try:
        value = json.loads(content) if isinstance(content, str) else content
    except ValueError:
        raise LLMBadResponse(f"the model's reply is not JSON, but response_schema asks for it: {str(content)[:300]}") \
            from None
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(value), key=lambda e: list(e.absolute_path))
    if errors:
        where = "".join(f"[{p!r}]" for p in errors[0].absolute_path) or "(top level)"
        raise LLMBadResponse(f"the model's JSON does not match response_schema at {where}: {errors[0].message}")
    return value
