"""The ``openai`` provider: one chat completion through the official ``openai`` SDK, against any server that speaks
the OpenAI chat-completions protocol (OpenAI, Azure-style gateways, vLLM, Ollama, LiteLLM, ...)."""

from __future__ import annotations

from engine.integrations import llm_sdk


def openai_chat(endpoint, *, messages: list[dict], tools, temperature, max_tokens, response_schema, timeout_s: float,
                idempotency_key: str | None) -> dict:
    """One POST to ``<base_url>/chat/completions``; the reply in Weft's shape (see ``llm_providers.chat``)."""
    import openai  # imported on the first call: it takes seconds, and most workers never call a model

    url = endpoint.base_url.rstrip("/") + "/chat/completions"
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
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
    http_client = llm_sdk.guarded_client(url=url, credential=endpoint.credential, check_host=endpoint.check_host,
                                         timeout_s=timeout_s)
    with http_client, openai.OpenAI(base_url=endpoint.base_url, api_key=llm_sdk.SDK_API_KEY, http_client=http_client,
                                    max_retries=0, timeout=timeout_s) as client:
        data, latency_ms = llm_sdk.call(
            openai, lambda: client.chat.completions.with_raw_response.create(**body, extra_headers=headers),
            url=url, secret=endpoint.secret, timeout_s=timeout_s)
    try:
        choice = data["choices"][0]
        message = choice["message"]
        clean = {"role": "assistant", "content": message.get("content")}
        if message.get("tool_calls"):
            clean["tool_calls"] = [
                {"id": c.get("id") or f"call_{i}", "type": "function",
                 "function": {"name": c["function"]["name"], "arguments": c["function"].get("arguments") or "{}"}}
                for i, c in enumerate(message["tool_calls"])
            ]
    except (KeyError, IndexError, TypeError, AttributeError):
        raise llm_sdk.bad_reply("a chat completion", 200, data, endpoint.secret) from None
    return {
        "message": clean,
        "finish_reason": choice.get("finish_reason"),
        "usage": data.get("usage") or {},
        "model": data.get("model") or endpoint.model,
        "latency_ms": latency_ms,
        "simulated": False,
    }
