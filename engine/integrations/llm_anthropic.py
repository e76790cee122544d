"""The ``anthropic`` provider: the native Anthropic Messages API through the official ``anthropic`` SDK.

Weft keeps one conversation shape whatever the provider (OpenAI-style messages, the shape the agent node
journals): a system message, user and assistant messages, an assistant's ``tool_calls`` and ``tool`` messages with
each call's result. This module maps it to the Messages API (``system``, ``tool_use`` and ``tool_result`` content
blocks) and the reply back, so a journaled conversation replays the same on either provider.
"""

from __future__ import annotations

import json

import httpx2

from engine.integrations import llm_sdk

DEFAULT_MAX_TOKENS = 4096  # the Messages API needs max_tokens; the node's max_tokens, when set, is used instead
FINISH_REASONS = {"end_turn": "stop", "stop_sequence": "stop", "tool_use": "tool_calls", "max_tokens": "length",
                  "refusal": "content_filter"}


def anthropic_chat(endpoint, *, messages: list[dict], tools, temperature, max_tokens, response_schema,
                   timeout_s: float, idempotency_key: str | None, text=None) -> dict:
    """One POST to ``<base_url>/v1/messages``; the reply in Weft's shape (see ``llm_providers.chat``). With
    ``text`` (an engine.core.streaming.TextStream) the reply is streamed and its text given to ``text`` as it
    arrives."""
    import anthropic  # imported on the first call: it takes seconds, and most workers never call a model

    url = endpoint.base_url.rstrip("/") + "/v1/messages"
    system, turns = to_messages(messages)
    body: dict = {"model": endpoint.model, "messages": turns, "max_tokens": max_tokens or DEFAULT_MAX_TOKENS}
    if system:
        body["system"] = system
    if tools:
        body["tools"] = to_tools(tools)
    if temperature is not None:  # not a parameter of this SDK version's create(); the API still takes it
        body["extra_body"] = {"temperature": temperature}
    if response_schema is not None:
        body["output_config"] = {"format": {"type": "json_schema", "schema": response_schema}}
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
    http_client = llm_sdk.guarded_client(url=url, credential=endpoint.credential, check_host=endpoint.check_host,
                                         timeout_s=timeout_s, http=httpx2)
    with http_client, anthropic.Anthropic(base_url=endpoint.base_url, api_key=llm_sdk.SDK_API_KEY,
                                          http_client=http_client, max_retries=0, timeout=timeout_s) as client:
        if text is None:
            data, latency_ms = llm_sdk.call(
                anthropic, lambda: client.messages.with_raw_response.create(**body, extra_headers=headers),
                url=url, secret=endpoint.secret, timeout_s=timeout_s)
        else:
            try:
                data, latency_ms = llm_sdk.call(
                    anthropic, lambda: client.messages.create(**body, stream=True, extra_headers=headers),
                    url=url, secret=endpoint.secret, timeout_s=timeout_s, read=lambda events: read_stream(events, text))
            finally:
                text.close()
    try:
        message = from_content(data["content"])
        usage = data.get("usage") or {}
        prompt = sum(int(usage.get(k) or 0) for k in ("input_tokens", "cache_creation_input_tokens",
                                                      "cache_read_input_tokens"))
        completion = int(usage.get("output_tokens") or 0)
    except (KeyError, IndexError, TypeError, AttributeError, ValueError):
        raise llm_sdk.bad_reply("a message", 200, data, endpoint.secret) from None
    return {
        "message": message,
        "finish_reason": FINISH_REASONS.get(data.get("stop_reason"), data.get("stop_reason")),
        "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion},
        "model": data.get("model") or endpoint.model,
        "latency_ms": latency_ms,
        "simulated": False,
    }


def to_messages(messages: list[dict]) -> tuple[str, list[dict]]:
    """Weft's conversation as the Messages API's ``system`` and ``messages``: system messages joined into
    ``system``; an assistant's tool calls as ``tool_use`` blocks; the ``tool`` messages after them as one user
    message of ``tool_result`` blocks; consecutive messages of one role joined into one."""
    system = "\n\n".join(str(m.get("content") or "") for m in messages if m.get("role") == "system")
    turns: list[dict] = []
    for m in messages:
        role = m.get("role")
        if role == "system":
            continue
        if role == "tool":
            blocks = [{"type": "tool_result", "tool_use_id": str(m.get("tool_call_id") or ""),
                       "content": str(m.get("content") or "")}]
            role = "user"
        elif role == "assistant":
            blocks = [{"type": "text", "text": m["content"]}] if m.get("content") else []
            for call in m.get("tool_calls") or []:
                function = call.get("function") or {}
                try:
                    arguments = json.loads(function.get("arguments") or "{}")
                except ValueError:
                    arguments = {}
                blocks.append({"type": "tool_use", "id": str(call.get("id") or ""),
                               "name": str(function.get("name") or ""),
                               "input": arguments if isinstance(arguments, dict) else {}})
        else:
            blocks = [{"type": "text", "text": str(m.get("content") or "")}]
            role = "user"
        if not blocks:
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    return system, turns


def to_tools(tools: list[dict]) -> list[dict]:
    """OpenAI-style function definitions as Messages API tools."""
    out = []
    for tool in tools:
        function = tool.get("function") or {}
        definition = {"name": function["name"], "input_schema": function.get("parameters") or {"type": "object"}}
        if function.get("description"):
            definition["description"] = function["description"]
        out.append(definition)
    return out


def from_content(content: list[dict]) -> dict:
    """A Messages API reply's content blocks as Weft's assistant message: the text blocks joined into
    ``content`` (None when there is none), each ``tool_use`` block a tool call."""
    texts = [b["text"] for b in content if b.get("type") == "text"]
    message: dict = {"role": "assistant", "content": "".join(texts) if texts else None}
    calls = [{"id": b.get("id") or f"toolu_{i}", "type": "function",
              "function": {"name": b["name"], "arguments": json.dumps(b.get("input") or {})}}
             for i, b in enumerate(c for c in content if c.get("type") == "tool_use")]
    if calls:
        message["tool_calls"] = calls
    return message


def read_stream(events, text) -> dict:
    """A streamed reply's events as the message they add up to (text and tool_use blocks, a tool's input from its
    pieces of JSON, the stop reason and usage); each piece of text goes to ``text``."""
    reply: dict = {"content": [], "usage": {}, "stop_reason": None, "model": None}
    partial: dict[int, str] = {}  # a tool_use block's input so far, as JSON text
    for event in events:
        event = event.model_dump() if hasattr(event, "model_dump") else event
        kind = event.get("type")
        if kind == "message_start":
            message = event.get("message") or {}
            reply["model"] = message.get("model")
            reply["usage"].update(message.get("usage") or {})
        elif kind == "content_block_start":
            block = dict(event.get("content_block") or {})
            if block.get("type") == "tool_use":
                block["input"] = {}
            reply["content"].append(block)
        elif kind == "content_block_delta":
            block, delta = reply["content"][event["index"]], event.get("delta") or {}
            if delta.get("type") == "text_delta":
                block["text"] = (block.get("text") or "") + delta.get("text", "")
                text.add(delta.get("text", ""))
            elif delta.get("type") == "input_json_delta":
                partial[event["index"]] = partial.get(event["index"], "") + delta.get("partial_json", "")
        elif kind == "content_block_stop" and event.get("index") in partial:
            reply["content"][event["index"]]["input"] = json.loads(partial.pop(event["index"]) or "{}")
        elif kind == "message_delta":
            reply["stop_reason"] = (event.get("delta") or {}).get("stop_reason") or reply["stop_reason"]
            reply["usage"].update({k: v for k, v in (event.get("usage") or {}).items() if v is not None})
    if reply["stop_reason"] is None:  # the connection closed before the model finished: what came is not the reply
        raise llm_sdk.LLMUnavailable("the streamed reply ended before the model finished it")
    return reply
