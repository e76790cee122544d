"""The ``simulation`` model provider: scripted replies for offline demos. Never touches the network.

Every reply is labelled as simulated (``"simulated": true``, model ``simulation``, and text
starting with ``SIMULATION_LABEL``), so nobody mistakes it for a real model's answer.

A node's ``simulation`` config chooses the behaviour:

- ``{"rules": [{"contains": ["refund", "charge"], "reply": ...}], "default": ...}``: the first rule
  with a word found in ``match`` (a templated text; default: the last user message) gives the reply
  (text, or a JSON value when the node has a ``response_schema``);
- ``{"script": "research"}``: the research-agent script (web_fetch / take_note / list_notes tools,
  about 30 tool calls);
- ``{"script": "refund"}``: the refund-agent script (an MCP server's ``lookup_order`` and ``refund`` tools:
  look the order named in the prompt up, refund it in full, report what happened, a rejection included);
- nothing: an echo of the prompt, or the simplest value matching ``response_schema``.
"""

from __future__ import annotations

import json
import re

SIMULATED_MODEL = "simulation"
SIMULATION_LABEL = "[Simulated model: offline demo, no real LLM was called]"

RESEARCH_SITE = "https://research.weft-demo.example/"


def reply(sim: dict, *, messages: list[dict], tools: list[dict] | None, response_schema: dict | None) -> dict:
    if sim.get("script") == "research":
        message = _research_turn(messages, tools or [])
    elif sim.get("script") == "refund":
        message = _refund_turn(messages, tools or [])
    else:
        message = {"role": "assistant", "content": _rule_reply(sim, messages, response_schema)}
    prompt_chars = sum(len(str(m.get("content") or "")) for m in messages)
    completion_chars = len(json.dumps(message))
    usage = {"prompt_tokens": prompt_chars // 4, "completion_tokens": completion_chars // 4}
    usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
    return {
        "message": message,
        "finish_reason": "tool_calls" if message.get("tool_calls") else "stop",
        "usage": usage,
        "model": SIMULATED_MODEL,
        "latency_ms": 0.0,
        "simulated": True,
    }


def _last_user_text(messages: list[dict]) -> str:
    for m in reversed(messages):
        if m.get("role") == "user":
            return str(m.get("content") or "")
    return ""


def _rule_reply(sim: dict, messages: list[dict], response_schema: dict | None) -> str:
    text = str(sim["match"] if sim.get("match") is not None else _last_user_text(messages)).lower()
    chosen = sim.get("default")
    for rule in sim.get("rules") or []:
        words = rule.get("contains") or []
        if isinstance(words, str):
            words = [words]
        if any(str(w).lower() in text for w in words):
            chosen = rule.get("reply")
            break
    if response_schema is not None:
        return json.dumps(chosen if chosen is not None else example(response_schema))
    if chosen is None:
        first = _last_user_text(messages).strip().splitlines()[0][:300] if _last_user_text(messages).strip() else ""
        chosen = f"(echo) {first}"
    return f"{SIMULATION_LABEL} {chosen}"


def example(schema: dict):
    """The simplest value matching a (simple) JSON Schema: first enum value, empty-ish scalars, required keys."""
    if not isinstance(schema, dict):
        return None
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or "properties" in schema:
        props = schema.get("properties") or {}
        keys = schema.get("required") or list(props)
        return {k: example(props.get(k, {})) for k in keys}
    if kind == "array":
        return [example(schema.get("items") or {})] * int(schema.get("minItems") or 0)
    return {"string": "simulated", "integer": 0, "number": 0, "boolean": False, "null": None}.get(kind, "simulated")


# -- the research-agent script ------------------------------------------------------------------

ARTICLES_PER_TURN = 2


def _tool_names(tools: list[dict]) -> set[str]:
    return {t.get("function", {}).get("name") for t in tools}


def _call(turn: int, index: int, name: str, args: dict) -> dict:
    return {"id": f"call_{turn}_{index}", "type": "function",
            "function": {"name": name, "arguments": json.dumps(args)}}


def _results_of_turn(messages: list[dict], turn: int) -> list[dict]:
    """Parsed tool results answering the assistant message number ``turn`` (0-based)."""
    assistants = [i for i, m in enumerate(messages) if m.get("role") == "assistant"]
    if turn >= len(assistants):
        return []
    out = []
    for m in messages[assistants[turn] + 1:]:
        if m.get("role") != "tool":
            break
        try:
            out.append(json.loads(m.get("content") or "null"))
        except ValueError:
            out.append({"text": m.get("content")})
    return out


def _research_turn(messages: list[dict], tools: list[dict]) -> dict:
    """Turn 0 fetches the index; each later turn fetches two articles and notes the previous two;
    then the last notes, ``list_notes``, and a final report built from the notes."""
    names = _tool_names(tools)
    missing = {"web_fetch", "take_note", "list_notes"} - names
    if missing:
        return {"role": "assistant", "content": f"{SIMULATION_LABEL} The research script needs the tools "
                                                f"{sorted(missing)}, which this agent does not have."}
    turn = sum(1 for m in messages if m.get("role") == "assistant")
    if turn == 0:
        return {"role": "assistant", "content": None, "tool_calls": [_call(0, 0, "web_fetch", {"url": RESEARCH_SITE})]}
    index = (_results_of_turn(messages, 0) or [{}])[0] or {}
    links = [link for link in index.get("links") or [] if isinstance(link, str)]
    batches = [links[i:i + ARTICLES_PER_TURN] for i in range(0, len(links), ARTICLES_PER_TURN)]
    calls = []
    if turn - 1 < len(batches):
        calls += [_call(turn, i, "web_fetch", {"url": url}) for i, url in enumerate(batches[turn - 1])]
    if 2 <= turn <= len(batches) + 1:
        pages = [p for p in _results_of_turn(messages, turn - 1) if isinstance(p, dict) and p.get("title")]
        if pages:
            title = " / ".join(p["title"] for p in pages)
            text = " ".join(str(p.get("text", ""))[:240] for p in pages)
            calls.append(_call(turn, len(calls), "take_note", {"title": title, "text": text}))
    if turn == len(batches) + 1:
        calls.append(_call(turn, len(calls), "list_notes", {}))
    if calls:
        return {"role": "assistant", "content": None, "tool_calls": calls}
    notes = next((r for r in reversed(_results_of_turn(messages, turn - 1)) if isinstance(r, dict)
                  and "notes" in r), {"notes": []})["notes"]
    topic = _last_user_text(messages).strip().splitlines()[0][:200] if _last_user_text(messages).strip() else ""
    bullets = "\n".join(f"- {n.get('title')}" for n in notes)
    return {"role": "assistant", "content": f"{SIMULATION_LABEL}\nResearch summary for: {topic}\n"
                                            f"Read {len(links) + 1} pages and took {len(notes)} notes:\n{bullets}"}


# -- the refund-agent script --------------------------------------------------------------------

_ORDER_ID = re.compile(r"\b[A-Z]-\d{3,6}\b")


def _tool_named(tools: list[dict], suffix: str) -> str | None:
    """The offered tool called ``suffix`` or ``<server>__<suffix>`` (an MCP server's)."""
    return next((n for n in _tool_names(tools) if n and (n == suffix or n.endswith("__" + suffix))), None)


def _tool_result(messages: list[dict], turn: int) -> dict:
    results = _results_of_turn(messages, turn)
    first = results[0] if results else {}
    if isinstance(first, dict) and isinstance(first.get("content"), list):  # an MCP tools/call result
        for part in first["content"]:
            if isinstance(part, dict) and part.get("type") == "text":
                try:
                    return json.loads(part.get("text") or "null") or {}
                except ValueError:
                    return {"text": part.get("text")}
    return first if isinstance(first, dict) else {}


def _refund_turn(messages: list[dict], tools: list[dict]) -> dict:
    """Turn 0 looks the order up; turn 1 refunds it in full; turn 2 reports (a rejected refund included)."""
    lookup, refund = _tool_named(tools, "lookup_order"), _tool_named(tools, "refund")
    if not (lookup and refund):
        return {"role": "assistant", "content": f"{SIMULATION_LABEL} The refund script needs the tools lookup_order "
                                                "and refund, which this agent does not have."}
    request = _last_user_text(messages)
    turn = sum(1 for m in messages if m.get("role") == "assistant")
    if turn == 0:
        found = _ORDER_ID.search(request.upper())
        return {"role": "assistant", "content": None,
                "tool_calls": [_call(0, 0, lookup, {"order_id": found.group(0) if found else "A-1002"})]}
    order = _tool_result(messages, 0)
    if turn == 1:
        if "amount" not in order:
            return {"role": "assistant", "content": f"{SIMULATION_LABEL} I could not find that order: "
                                                    f"{order.get('error', 'no answer')}"}
        return {"role": "assistant", "content": None, "tool_calls": [_call(1, 0, refund, {
            "order_id": order["order_id"], "amount": order["amount"], "reason": request.strip()[:200]})]}
    done = _tool_result(messages, 1)
    if done.get("rejected"):
        text = f"The refund of {order.get('order_id')} was not made. {done.get('message', '')}"
    elif "refunded" in done:
        text = (f"Refunded {done['refunded']:.2f} for order {done['order_id']} ({order.get('item')}) to "
                f"{order.get('customer')}: refund {done['refund_id']}.")
    else:
        text = f"The refund of {order.get('order_id')} failed: {done.get('error', done)}"
    return {"role": "assistant", "content": f"{SIMULATION_LABEL} {text}"}
