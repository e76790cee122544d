"""Chat-completion providers for the ``llm`` and ``agent`` nodes.

Two providers:

- ``openai``: any server that speaks the OpenAI chat-completions protocol (OpenAI, Azure-style gateways,
  vLLM, Ollama, LiteLLM, ...), over httpx. One POST per call, no client-side retries: a failed call
  raises, and the engine's retry policy (with the journal replaying calls that already succeeded)
  decides what happens next.
- ``simulation``: a scripted stand-in, clearly labelled as a simulation, for offline demos. It never
  touches the network; its replies come from rules in the node config or from a built-in script.

``auto`` picks ``openai`` when a model endpoint is configured (``WEFT_LLM_BASE_URL``,
``OPENAI_API_KEY``, or a ``base_url``/``credential`` in the node config) and ``simulation`` otherwise.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

import httpx
import jsonschema
from django.conf import settings
from django.db import connection

from engine.core.limits import limits_backpressure, limits_before_call
from engine.integrations import llm_simulation, netguard
from engine.integrations.credentials import credential_headers, redact, redact_value
from engine.integrations.llm_simulation import SIMULATED_MODEL

OPENAI_BASE_URL = "https://api.openai.com/v1"
MAX_RETRY_AFTER_S = 10.0

# USD per million tokens (list prices at the time of writing; override or extend with WEFT_LLM_PRICES).
DEFAULT_PRICES: dict[str, dict[str, float]] = {
    "gpt-4o-mini": {"input": 0.15, "output": 0.60},
    "gpt-4o": {"input": 2.50, "output": 10.00},
    "gpt-4.1": {"input": 2.00, "output": 8.00},
    "gpt-4.1-mini": {"input": 0.40, "output": 1.60},
    "gpt-4.1-nano": {"input": 0.10, "output": 0.40},
    "o4-mini": {"input": 1.10, "output": 4.40},
    SIMULATED_MODEL: {"input": 0.0, "output": 0.0},
}

PROVIDERS = ("openai", "simulation", "auto")


class LLMUnavailable(Exception):
    """The model endpoint could not be reached, timed out, or answered 429/5xx: worth retrying."""


class LLMRequestRejected(Exception):
    """The model endpoint refused the request (4xx other than 429)."""


class LLMBadResponse(Exception):
    """The endpoint answered, but not with a usable chat completion (or not matching response_schema)."""


@dataclass
class Endpoint:
    provider: str  # "openai" or "simulation"
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
    provider = config.get("provider") or "openai"
    configured = bool(config.get("base_url") or config.get("credential") or settings.WEFT_LLM_BASE_URL
                      or settings.OPENAI_API_KEY)
    if provider == "auto":
        provider = "openai" if configured else "simulation"
    model = config.get("model") or settings.WEFT_LLM_MODEL
    if provider == "simulation":
        return Endpoint("simulation", SIMULATED_MODEL, simulation=config.get("simulation") or {})
    own_url = (config.get("base_url") or "").rstrip("/")
    base_url = endpoint_base_url(config)
    operator_url = not own_url or own_url == settings.WEFT_LLM_BASE_URL
    credential = None
    if config.get("credential"):
        credential = credential_headers(config["credential"])
    elif operator_url and settings.OPENAI_API_KEY:
        # The environment's key goes only to the operator's endpoint, never to a URL typed into a node.
        credential = netguard.CredentialHeaders(name="OPENAI_API_KEY", secret=settings.OPENAI_API_KEY,
                                                headers={"Authorization": f"Bearer {settings.OPENAI_API_KEY}"},
                                                allowed_hosts=(httpx.URL(base_url).host,))
    return Endpoint("openai", model, base_url=base_url, credential=credential, check_host=not operator_url)


def endpoint_base_url(config: dict) -> str:
    """The API base URL an llm/agent node's calls (and its credential) go to, when it talks to a server."""
    return (config.get("base_url") or "").rstrip("/") or settings.WEFT_LLM_BASE_URL or OPENAI_BASE_URL


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
            FROM engine_attempt a JOIN engine_steprun s ON s.id = a.step_id
            WHERE s.run_id = %s AND a.metrics ? 'llm_calls'
            """,
            [str(run_id)],
        )
        prompt, completion, total, calls, cost, latency = cur.fetchone()
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": total, "llm_calls": calls,
            "cost_usd": float(cost), "latency_ms": float(latency)}


# -- one chat completion ------------------------------------------------------------------------


def chat(endpoint: Endpoint, *, messages: list[dict], tools: list[dict] | None = None,
         temperature: float | None = None, max_tokens: int | None = None, response_schema: dict | None = None,
         timeout_s: float = 120.0, idempotency_key: str | None = None) -> dict:
    """One chat completion. Returns ``{"message", "finish_reason", "usage", "model", "latency_ms", "simulated"}``.

    With ``response_schema`` the reply's content is parsed as JSON and checked against it (``"json"``).
    """
    if endpoint.provider == "simulation":
        reply = llm_simulation.reply(endpoint.simulation or {}, messages=messages, tools=tools,
                                     response_schema=response_schema)
    else:
        reply = _openai_chat(endpoint, messages=messages, tools=tools, temperature=temperature,
                             max_tokens=max_tokens, response_schema=response_schema, timeout_s=timeout_s,
                             idempotency_key=idempotency_key)
    if response_schema is not None:
        reply["json"] = _parse_structured(reply["message"].get("content"), response_schema)
    return reply


def _openai_chat(endpoint: Endpoint, *, messages, tools, temperature, max_tokens, response_schema, timeout_s,
                 idempotency_key) -> dict:
    body: dict = {"model": endpoint.model, "messages": messages}
    if tools:
        body["tools"] = tools
    if temperature is not None:
        body["temperature"] = temperature
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    if response_schema is not None:
        body["response_format"] = {"type": "json_schema",
                                   "json_schema": {"name": "output", "schema": response_schema, "strict": True}}
    headers = {"Content-Type": "application/json"}
    if idempotency_key:
        headers["Idempotency-Key"] = idempotency_key
    url = endpoint.base_url.rstrip("/") + "/chat/completions"
    started = time.monotonic()
    waited = 0.0

    def unless_paused():
        held = limits_before_call()
        if held:
            raise LLMUnavailable(f"model endpoint {url} not called: {held}; the step retries once it may")

    while True:
        try:
            resp = netguard.guarded_request("POST", url, headers=headers, content=json.dumps(body).encode(),
                                            timeout_s=timeout_s, max_body_bytes=8 * 1024 * 1024,
                                            check=endpoint.check_host, credential=endpoint.credential,
                                            before_send=unless_paused)
        except httpx.TimeoutException as exc:
            raise LLMUnavailable(f"model endpoint {url} timed out after {timeout_s:g} s ({type(exc).__name__})") \
                from None
        except httpx.HTTPError as exc:
            raise LLMUnavailable(redact(f"cannot reach model endpoint {url}: {exc}", endpoint.secret)) from None
        if resp.status in (429, 503):
            delay = netguard.retry_after_seconds(resp.headers.get("retry-after"))
            if limits_backpressure(delay):
                break  # the step's limits pause; its retry is admitted once the pause is over
            if delay is not None and waited + delay <= MAX_RETRY_AFTER_S:
                time.sleep(delay)
                waited += delay
                continue
        break
    latency_ms = round((time.monotonic() - started) * 1000, 1)
    text = resp.body.decode("utf-8", errors="replace")
    if resp.status == 429 or resp.status >= 500:
        hint = f"; it asked to retry after {resp.headers['retry-after']}" if "retry-after" in resp.headers else ""
        raise LLMUnavailable(redact(f"model endpoint answered {resp.status}{hint}: {text[:500]}", endpoint.secret))
    if resp.status >= 400:
        raise LLMRequestRejected(redact(f"model endpoint refused the request ({resp.status}): {text[:1000]}",
                                        endpoint.secret))
    try:
        data = json.loads(text)
        choice = data["choices"][0]
        message = choice["message"]
    except (ValueError, KeyError, IndexError, TypeError):
        raise LLMBadResponse(redact(f"model endpoint answered {resp.status} without a chat completion: {text[:500]}",
                                    endpoint.secret)) from None
    clean = {"role": "assistant", "content": message.get("content")}
    if message.get("tool_calls"):
        clean["tool_calls"] = [
            {"id": c.get("id") or f"call_{i}", "type": "function",
             "function": {"name": c["function"]["name"], "arguments": c["function"].get("arguments") or "{}"}}
            for i, c in enumerate(message["tool_calls"])
        ]
    if endpoint.secret:
        clean = redact_value(clean, endpoint.secret)  # a model (or a proxy) that repeats the key it was sent
    return {
        "message": clean,
        "finish_reason": choice.get("finish_reason"),
        "usage": data.get("usage") or {},
        "model": data.get("model") or endpoint.model,
        "latency_ms": latency_ms,
        "simulated": False,
    }


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
