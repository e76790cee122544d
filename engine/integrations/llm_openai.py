"""The ``openai`` provider: one chat completion through the official ``openai`` SDK, against any server that speaks
the OpenAI chat-completions protocol (OpenAI, Azure-style gateways, vLLM, Ollama, LiteLLM, ...)."""

from __future__ import annotations

from engine.integrations import llm_sdk


def openai_chat(endpoint, *, messages: list[dict], tools, temperature, max_tokens, response_schema, timeout_s: float,
                idempotency_key: str | None, text=None) -> dict:
    """One POST to ``<base_url>/chat/completions``; the reply in Weft's shape (see ``llm_providers.chat``). With
    ``text`` (an engine.core.streaming.TextStream) the reply is streamed and its text given to ``text`` as it
    arrives."""
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
        if text is None:
            data, latency_ms = llm_sdk.call(
                openai, lambda: client.chat.completions.with_raw_response.create(**body, extra_headers=headers),
                url=url, secret=endpoint.secret, timeout_s=timeout_s)
        else:
            body.update(stream=True, stream_options={"include_usage": True})
            try:
                data, latency_ms = llm_sdk.call(
                    openai, lambda: client.chat.completions.create(**body, extra_headers=headers),
                    url=url, secret=endpoint.secret, timeout_s=timeout_s, read=lambda chunks: read_stream(chunks, text))
            finally:
                text.close()
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


def read_stream(chunks, text) -> dict:
    """A streamed chat completion's chunks as the chat completion they add up to (content and tool calls joined
    piece by piece, the finish reason, the usage of the last chunk); each piece of content goes to ``text``."""
    content: list[str] = []
    calls: dict[int, dict] = {}
    finish, usage, model = None, {}, None
    for chunk in chunks:
        chunk = chunk.model_dump() if hasattr(chunk, "model_dump") else chunk
        model = chunk.get("model") or model
        usage = chunk.get("usage") or usage
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            if delta.get("content"):
                content.append(delta["content"])
                text.add(delta["content"])
            for piece in delta.get("tool_calls") or []:
                call = calls.setdefault(piece.get("index") or 0, {"id": None, "type": "function",
                                                                  "function": {"name": "", "arguments": ""}})
                call["id"] = piece.get("id") or call["id"]
                function = piece.get("function") or {}
                call["function"]["name"] += function.get("name") or ""
                call["function"]["arguments"] += function.get("arguments") or ""
            finish = choice.get("finish_reason") or finish
    if finish is None:  # the connection closed before the model finished: what came is not the reply
        raise llm_sdk.LLMUnavailable(f"the streamed reply ended before the model finished it "
                                     f"({len(''.join(content))} characters came)")
    message = {"role": "assistant", "content": "".join(content) if content else None}
    if calls:
        message["tool_calls"] = [calls[i] for i in sorted(calls)]
    return {"model": model, "choices": [{"index": 0, "message": message, "finish_reason": finish}], "usage": usage}
