"""An agent's context window: ``context: {"max_tokens", "strategy", "keep_last"}``.

Before each model call the agent asks ``ContextWindow.decide`` whether the conversation it is about to send fits
in ``max_tokens``; if not, the strategy trims it:

- ``drop_oldest_tool_results``: the content of the oldest tool results becomes ``[tool result trimmed: N
  characters]``, oldest first, until it fits (the messages stay, so every tool call keeps its result);
- ``summarize``: the model is asked (one more call, same endpoint) to summarise everything between the first user
  message and the kept tail; that part is replaced by one user message holding the summary.

Never trimmed: the system prompt, the first user message, the last ``keep_last`` messages and the latest model
turn with its tool results. What was decided (and the summary's text) is the agent's journal entry
``context-N``: a resumed step applies the recorded decisions instead of deciding again, so the model is sent
exactly the same messages and a summary is never asked for twice.

Tokens are estimated, deterministically: per message ``ceil(characters / 4) + 4`` (the characters of its content
and of its tool calls as JSON), plus ``ceil(characters / 4)`` of the tool definitions. When the model reported more
prompt tokens for the previous turn than the estimate of what it was sent, the estimate is scaled up by that ratio.
Both inputs come from the journal, so a replay estimates the same.
"""

from __future__ import annotations

import copy
import json
import math

from engine.integrations import llm_providers
from engine.nodes import budget

CONTEXT_SCHEMA = {
    "type": "object",
    "required": ["max_tokens", "strategy"],
    "additionalProperties": False,
    "description": "trim the conversation before a model call when it is longer than max_tokens (estimated)",
    "properties": {
        "max_tokens": {"type": "integer", "minimum": 256,
                       "description": "the most prompt tokens (estimated) one model call may be sent"},
        "strategy": {"enum": ["drop_oldest_tool_results", "summarize"],
                     "description": "drop_oldest_tool_results: replace the oldest tool results by a placeholder; "
                                    "summarize: ask the model to summarise the oldest part of the conversation"},
        "keep_last": {"type": "integer", "minimum": 0, "default": 4,
                      "description": "the last messages never trimmed or summarised"},
    },
}

MESSAGE_OVERHEAD = 4
CHARS_PER_TOKEN = 4
SUMMARY_PREFIX = "[Summary of the earlier conversation]\n"
SUMMARY_SYSTEM = ("You summarise the earlier part of a conversation between a user, an assistant and its tools, so "
                  "the assistant can carry on without it. Keep every fact, result, identifier and decision the rest "
                  "of the work may need; leave out pleasantries. Answer with the summary only.")


class ContextTooLarge(Exception):
    """The part of the conversation that is never trimmed is larger than ``context.max_tokens``."""


def placeholder(chars: int) -> str:
    return f"[tool result trimmed: {chars} characters]"


def _chars(message: dict) -> int:
    n = len(str(message.get("content") or ""))
    if message.get("tool_calls"):
        n += len(json.dumps(message["tool_calls"], sort_keys=True))
    return n


def message_tokens(message: dict) -> int:
    return MESSAGE_OVERHEAD + math.ceil(_chars(message) / CHARS_PER_TOKEN)


def tools_tokens(definitions: list[dict] | None) -> int:
    return math.ceil(len(json.dumps(definitions, sort_keys=True)) / CHARS_PER_TOKEN) if definitions else 0


def transcript(messages: list[dict]) -> str:
    """Messages as plain text for the summarising call (tool calls and results written out, so no pairing rules
    apply to it)."""
    lines = []
    for m in messages:
        role = m.get("role")
        if role == "tool":
            lines.append(f"tool result ({m.get('tool_call_id')}): {m.get('content')}")
            continue
        if m.get("content"):
            lines.append(f"{role}: {m['content']}")
        for call in m.get("tool_calls") or []:
            function = call.get("function") or {}
            lines.append(f"{role} calls tool {function.get('name')} ({call.get('id')}) "
                         f"with {function.get('arguments')}")
    return "\n".join(lines)


class ContextWindow:
    """The trimming state of one agent conversation: tool results dropped and the summary so far (rebuilt on a
    resumed attempt from the journaled decisions, in order)."""

    def __init__(self, config: dict, definitions: list[dict] | None):
        self.max_tokens = int(config["max_tokens"])
        self.strategy = config["strategy"]
        self.keep_last = int(config.get("keep_last", 4))
        self.tool_tokens = tools_tokens(definitions)
        self.dropped: dict[int, int] = {}  # index in the full conversation -> characters of the dropped content
        self.summary: dict | None = None  # {"upto": index of the first message after it, "text"}
        self.scale = 1.0
        self._sent_raw = 0

    # -- what is sent --------------------------------------------------------------------------------------------

    @staticmethod
    def head(messages: list[dict]) -> int:
        """How many leading messages are always kept: the system prompt (if any) and the first user message."""
        first_user = next((i for i, m in enumerate(messages) if m.get("role") == "user"), 0)
        return first_user + 1

    def view(self, messages: list[dict]) -> list[dict]:
        """The messages the model is sent: the full conversation with the decisions so far applied."""
        head = self.head(messages)
        out = list(messages[:head])
        start = head
        if self.summary is not None:
            out.append({"role": "user", "content": SUMMARY_PREFIX + str(self.summary["text"])})
            start = self.summary["upto"]
        for i in range(start, len(messages)):
            m = messages[i]
            out.append({**m, "content": placeholder(self.dropped[i])} if i in self.dropped else m)
        return out

    def _raw(self, view: list[dict]) -> int:
        return sum(message_tokens(m) for m in view) + self.tool_tokens

    def tokens(self, view: list[dict]) -> int:
        return math.ceil(self._raw(view) * self.scale)

    def sent(self, view: list[dict]) -> None:
        self._sent_raw = self._raw(view)

    def observe(self, usage: dict | None) -> None:
        """A model turn's reported usage: scale later estimates up when it counted more than estimated."""
        prompt = int((usage or {}).get("prompt_tokens") or 0)
        if prompt and self._sent_raw:
            self.scale = max(1.0, prompt / self._sent_raw)

    # -- deciding ------------------------------------------------------------------------------------------------

    def _kept_from(self, messages: list[dict]) -> int:
        """Index of the first message of the kept tail: the last keep_last messages and the latest model turn."""
        last_turn = max((i for i, m in enumerate(messages) if m.get("role") == "assistant"), default=len(messages))
        return max(self.head(messages), min(len(messages) - self.keep_last, last_turn))

    def decide(self, messages: list[dict], summarize=None) -> dict:
        """The decision for the next model call: ``{"max_tokens", "strategy", "tokens", "tokens_sent", "trimmed",
        "summary"}``. ``summarize(part)`` asks the model for a summary of ``part`` and returns its reply.
        Raises ContextTooLarge when what is never trimmed does not fit."""
        view = self.view(messages)
        decision = {"max_tokens": self.max_tokens, "strategy": self.strategy, "tokens": self.tokens(view),
                    "trimmed": [], "summary": None}
        if decision["tokens"] > self.max_tokens:
            kept_from = self._kept_from(messages)
            start = self.summary["upto"] if self.summary is not None else self.head(messages)
            if self.strategy == "drop_oldest_tool_results":
                self._drop(messages, decision, start, kept_from)
            else:
                upto = kept_from
                # a turn's tool calls and their results stay together
                while start < upto < len(messages) and messages[upto].get("role") == "tool":
                    upto -= 1
                if upto > start:
                    first = self.head(messages)
                    part = view[first:first + (1 if self.summary else 0) + upto - start]
                    reply = summarize(part)
                    decision["summary"] = {"upto": upto, "messages": upto - self.head(messages),
                                           "text": str(reply["message"].get("content") or "")}
                    decision["model"], decision["usage"] = reply.get("model"), reply.get("usage") or {}
        trial = copy.deepcopy(self)
        trial.apply(decision)
        decision["tokens_sent"] = trial.tokens(trial.view(messages))
        if decision["tokens_sent"] > self.max_tokens:
            raise ContextTooLarge(
                f"the conversation needs about {decision['tokens_sent']} tokens after {self.strategy}, more than "
                f"context.max_tokens ({self.max_tokens}): what is never trimmed (the system prompt, the first user "
                f"message, the last {self.keep_last} messages (context.keep_last), the latest turn and the tool "
                "definitions) does not fit; raise context.max_tokens or lower context.keep_last")
        return decision

    def _drop(self, messages: list[dict], decision: dict, start: int, kept_from: int) -> None:
        raw = self._raw(self.view(messages))
        for i in range(start, kept_from):
            m = messages[i]
            if m.get("role") != "tool" or i in self.dropped:
                continue
            chars = len(str(m.get("content") or ""))
            smaller = {**m, "content": placeholder(chars)}
            if message_tokens(smaller) >= message_tokens(m):
                continue
            raw -= message_tokens(m) - message_tokens(smaller)
            decision["trimmed"].append({"index": i, "tool_call_id": m.get("tool_call_id"), "chars": chars})
            if math.ceil(raw * self.scale) <= self.max_tokens:
                return

    def apply(self, decision: dict) -> None:
        """Take a decision (made now or replayed from the journal) into the state."""
        for t in decision.get("trimmed") or []:
            self.dropped[int(t["index"])] = int(t["chars"])
        if decision.get("summary"):
            self.summary = {"upto": int(decision["summary"]["upto"]), "text": decision["summary"]["text"]}


def context_step(ctx, window: ContextWindow, messages: list[dict], *, endpoint, config: dict):
    """The function journaled as ``context-N``: decide for the next call, asking the model for a summary when the
    strategy needs one (with the entry's idempotency key)."""

    def decide(idempotency_key: str) -> dict:
        def summarize(part: list[dict]) -> dict:
            request = [{"role": "system", "content": SUMMARY_SYSTEM},
                       {"role": "user", "content": "Summarise this conversation:\n\n" + transcript(part)}]
            output = window.max_tokens // 4
            budget.check(ctx, node_budget=config.get("budget"), model=endpoint.model, messages=request, tools=None,
                         max_output=output)
            reply = llm_providers.chat(endpoint, messages=request, temperature=config.get("temperature"),
                                       max_tokens=output, timeout_s=float(config.get("timeout_s") or 120),
                                       idempotency_key=idempotency_key)
            llm_providers.add_usage(ctx.metrics, reply)
            ctx.metrics["context_summaries"] = ctx.metrics.get("context_summaries", 0) + 1
            return reply

        return window.decide(messages, summarize)

    return decide
