"""The ``agent`` node: an LLM with tools, every model call and tool call journaled."""

from __future__ import annotations

import inspect
import json

from engine.core.registry import get_task, node_type
from engine.exceptions import TaskNotFound
from engine.integrations import llm_providers
from engine.integrations.mcp_client import McpConnections
from engine.nodes import budget, context_window, mcp_tools, tool_approval
from engine.nodes import http as http_node
from engine.nodes.llm import ENDPOINT_PROPERTIES, check_no_key, endpoint_credential_uses, endpoint_problems
from engine.nodes.signatures import argument_problems, json_schema_for
from engine.nodes.validation import CredentialUse, url_problems

MAX_TOOL_RESULT_CHARS = 20_000

TOOL_SCHEMA = {
    "type": "object",
    "required": ["name", "type"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"},
        "type": {"enum": ["task", "http"], "description": "task: a registered @weft.task; http: an HTTP endpoint"},
        "description": {"type": "string", "description": "what the model is told the tool does"},
        "parameters": {"type": "object", "description": "JSON Schema of the arguments (task: from its signature)"},
        "safe_to_repeat": {"type": "boolean",
                           "description": "whether a call cut off mid-way may be sent again (default: task: as "
                                          "registered; http: when it sends an Idempotency-Key or the method is "
                                          "idempotent)"},
        "function": {"type": "string", "description": "task: the registered function"},
        "url": {"type": "string", "description": "http: the endpoint (arguments go as JSON body, or query for GET)"},
        "method": {"enum": http_node.METHODS, "default": "POST"},
        "headers": {"type": "object", "additionalProperties": {"type": "string"}},
        "credential": {"type": "string"},
        "send_idempotency_key": {"type": "boolean", "default": True},
        "timeout_s": {"type": "number", "exclusiveMinimum": 0, "default": 30},
        "requires_approval": {"type": ["boolean", "string"],
                              "description": "an operator approves each call first: true, or a template over the "
                                             "call's arguments, e.g. {{ arguments.amount > 100 }}"},
    },
    "allOf": [
        {"if": {"properties": {"type": {"const": "task"}}}, "then": {"required": ["function"]}},
        {"if": {"properties": {"type": {"const": "http"}}}, "then": {"required": ["url"]}},
    ],
}


class AgentStopped(Exception):
    """The agent reached max_turns without a final answer."""


class ToolContext:
    """What a task tool sees: the agent step's ``ctx`` without ``step`` (a tool call is itself one journal
    entry, so it cannot journal sub-steps of its own)."""

    def __init__(self, ctx, idempotency_key: str):
        self._ctx = ctx
        self.tool_idempotency_key = idempotency_key

    def __getattr__(self, name):
        if name in ("step", "journal"):
            raise AttributeError("a tool call is one journal entry of the agent step; it cannot call ctx.step. "
                                 "Use ctx.tool_idempotency_key for the external call instead")
        return getattr(self._ctx, name)


def tool_safe_to_repeat(spec: dict, registered) -> bool:
    """Whether a call of this tool cut off mid-way may be sent again (``registered``: its task, for task tools)."""
    if spec["type"] == "task":
        return spec.get("safe_to_repeat", registered.safe_to_repeat)
    method = spec.get("method") or "POST"
    return spec.get("safe_to_repeat", spec.get("send_idempotency_key", True) or method in http_node.IDEMPOTENT_METHODS)


class Tool:
    def __init__(self, spec: dict):
        self.spec = spec
        self.name = spec["name"]
        if spec["type"] == "task":
            registered = get_task(spec["function"])
            self.fn = registered.fn
            self.safe = tool_safe_to_repeat(spec, registered)
            description = spec.get("description") or registered.description or registered.name
            parameters = spec.get("parameters") or json_schema_for(self.fn)
        else:
            self.fn = None
            method = spec.get("method") or "POST"
            self.safe = tool_safe_to_repeat(spec, None)
            description = spec.get("description") or f"{method} {spec['url']}"
            parameters = spec.get("parameters") or {"type": "object"}
        self.definition = {"type": "function",
                           "function": {"name": self.name, "description": description, "parameters": parameters}}

    def call(self, ctx, args: dict, idempotency_key: str):
        if self.fn is not None:
            problems = argument_problems(self.fn, args)
            if problems:
                return {"error": f"invalid arguments for tool {self.name!r}: " + "; ".join(problems)}
            if "idempotency_key" in inspect.signature(self.fn).parameters:
                args = {**args, "idempotency_key": idempotency_key}
            return self.fn(ToolContext(ctx, idempotency_key), **args)
        method = self.spec.get("method") or "POST"
        request = {"url": self.spec["url"], "method": method, "headers": self.spec.get("headers") or {},
                   "credential": self.spec.get("credential"), "timeout_s": self.spec.get("timeout_s", 30),
                   "fail_on_status": False}
        if method in ("GET", "HEAD", "DELETE", "OPTIONS"):
            request["query"] = args
        else:
            request["json"] = args
        send_key = self.spec.get("send_idempotency_key", True)
        response = http_node.send(request, idempotency_key=idempotency_key if send_key else None)
        return {"status": response["status"], "body": response["body"]}


@node_type("agent", label="Agent (LLM with tools)", tokens_per_call=True)
class AgentNode:
    """An LLM that may call tools, looping until it answers without a tool call (or ``max_turns``).

    Tools are registered ``@weft.task`` functions (``type: task``) or HTTP endpoints (``type: http``;
    the model's arguments are sent as the JSON body, or as the query for GET). Every model call is
    journal entry ``turn-N`` and every tool call ``tool-N-<name>`` (with ``context``, the trimming decided before
    each turn is ``context-N``, see ``engine.nodes.context_window``): a retry replays finished calls from
    the journal and continues where the failed attempt stopped, sending the same ``Idempotency-Key``
    for the same call. A call to a tool that is not safe to repeat which was cut off mid-way leaves the
    step in doubt (waiting for an operator) instead of calling it twice.
    """

    late_templates = tool_approval.LATE_TEMPLATES
    config_schema = {
        "type": "object",
        "required": ["prompt"],
        "additionalProperties": False,
        "properties": {
            **ENDPOINT_PROPERTIES,
            "system": {"type": "string", "description": "system prompt (templated)"},
            "prompt": {"type": "string", "minLength": 1, "description": "the task for the agent (templated)"},
            "tools": {"type": "array", "items": TOOL_SCHEMA, "default": []},
            "mcp_servers": {"type": "array", "items": mcp_tools.MCP_SERVER_SCHEMA, "default": [],
                            "description": "MCP tool servers whose tools the agent may call"},
            "max_turns": {"type": "integer", "minimum": 1, "maximum": 500, "default": 20},
            "on_max_turns": {"enum": ["fail", "return"], "default": "fail",
                             "description": "when max_turns is reached: fail the step, or output what there is"},
            "budget": budget.BUDGET_SCHEMA,
            "on_budget": budget.ON_BUDGET_SCHEMA,
            "context": context_window.CONTEXT_SCHEMA,
        },
    }
    outputs = {
        "answer": "the model's final answer",
        "turns": "model calls made",
        "tool_calls": "tool calls made",
        "stopped": "'answered', 'max_turns' or 'budget'",
        "model": "model that answered",
        "simulated": "true when the offline simulation answered",
    }

    @staticmethod
    def repeat_risks(config: dict) -> list[str]:
        """The tools declared (or registered) as not safe to repeat."""
        risks = []
        for spec in config.get("tools") or []:
            if not isinstance(spec, dict) or spec.get("type") not in ("task", "http") or "name" not in spec:
                continue
            try:
                registered = get_task(spec.get("function", "")) if spec["type"] == "task" else None
            except TaskNotFound:
                continue
            if not tool_safe_to_repeat(spec, registered):
                risks.append(f"tool {spec['name']}")
        return risks + mcp_tools.mcp_repeat_risks(config)

    def run(self, ctx, config: dict):
        if not config.get("mcp_servers"):
            return self._run(ctx, config, None)
        with McpConnections() as connections:  # stdio servers started for this attempt are stopped after it
            return self._run(ctx, config, connections)

    def _run(self, ctx, config: dict, connections: McpConnections | None):
        endpoint = llm_providers.resolve_endpoint(config)
        check_no_key(endpoint)
        tools = {spec["name"]: Tool(spec) for spec in config.get("tools") or []}
        if connections is not None:
            tools.update(mcp_tools.mcp_tools(ctx, config["mcp_servers"], connections))
        definitions = [t.definition for t in tools.values()] or None
        messages = []
        if config.get("system"):
            messages.append({"role": "system", "content": str(config["system"])})
        messages.append({"role": "user", "content": str(config["prompt"])})
        max_turns = int(config.get("max_turns") or 20)
        tool_calls = 0
        reply: dict = {}
        ctx.metrics.update({"tool_calls_executed": 0, "tool_calls_replayed": 0})
        window = context_window.ContextWindow(config["context"], definitions) if config.get("context") else None

        def ask(outgoing: list[dict], key: str, idempotency_key: str):
            budget.check(ctx, node_budget=config.get("budget"), model=endpoint.model, messages=outgoing,
                         tools=definitions, max_output=config.get("max_tokens"))
            answer = llm_providers.chat(endpoint, messages=outgoing, tools=definitions,
                                        temperature=config.get("temperature"), max_tokens=config.get("max_tokens"),
                                        timeout_s=float(config.get("timeout_s") or 120),
                                        idempotency_key=idempotency_key,
                                        text=ctx.text_stream(key) if config.get("stream") else None)
            llm_providers.add_usage(ctx.metrics, answer)
            return answer

        try:
            for turn in range(1, max_turns + 1):
                outgoing = list(messages)
                if window is not None:  # trimmed to context.max_tokens, as decided (or recorded) in context-N
                    decide = context_window.context_step(ctx, window, messages, endpoint=endpoint, config=config)
                    window.apply(ctx.step(f"context-{turn}", decide, safe_to_repeat=True))
                    outgoing = window.view(messages)
                    window.sent(outgoing)
                reply = ctx.step(f"turn-{turn}", ask, outgoing, f"turn-{turn}", safe_to_repeat=True)
                if window is not None:
                    window.observe(reply.get("usage"))
                message = reply["message"]
                messages.append(message)
                calls = message.get("tool_calls") or []
                if not calls:
                    return self._output(message.get("content"), turn, tool_calls, "answered", reply)
                for call in calls:
                    tool_calls += 1
                    result = self._call_tool(ctx, tools, call, tool_calls, turn)
                    content = json.dumps(result, default=str)
                    if len(content) > MAX_TOOL_RESULT_CHARS:
                        content = content[:MAX_TOOL_RESULT_CHARS] + " ...[truncated]"
                    messages.append({"role": "tool", "tool_call_id": call.get("id"), "content": content})
        except tool_approval.AwaitingApproval as waiting:
            return waiting.wait
        except budget.BudgetExceeded:
            if config.get("on_budget", "fail") == "fail":
                raise
            return self._output(reply.get("message", {}).get("content"), turn - 1, tool_calls, "budget", reply)
        if config.get("on_max_turns", "fail") == "fail":
            raise AgentStopped(f"the agent made {max_turns} model calls (max_turns) without a final answer "
                               f"({tool_calls} tool calls)")
        return self._output(reply.get("message", {}).get("content"), max_turns, tool_calls, "max_turns", reply)

    @staticmethod
    def _output(answer, turns: int, tool_calls: int, stopped: str, reply: dict) -> dict:
        return {"answer": answer or "", "turns": turns, "tool_calls": tool_calls, "stopped": stopped,
                "model": reply.get("model"), "simulated": bool(reply.get("simulated"))}

    @staticmethod
    def _call_tool(ctx, tools: dict, call: dict, number: int, turn: int):
        function = call.get("function") or {}
        name = str(function.get("name") or "")
        tool = tools.get(name)
        key = f"tool-{number}-{name[:64] or 'unnamed'}"
        if tool is None:
            return {"error": f"there is no tool named {name!r}; tools: {', '.join(tools) or '(none)'}"}
        try:
            args = json.loads(function.get("arguments") or "{}")
        except ValueError as exc:
            return {"error": f"the arguments are not valid JSON: {exc}"}
        if not isinstance(args, dict):
            return {"error": "the arguments must be a JSON object"}
        if tool_approval.needs_approval(tool.spec.get("requires_approval"), args, tool=name):
            decision = tool_approval.gate(ctx, number=number, name=name, call_id=str(call.get("id") or ""),
                                          arguments=args, turn=turn)
            if not decision.approved:
                return decision.result
            args = decision.arguments
        before = ctx.journal.executed

        def invoke(idempotency_key: str):
            return tool.call(ctx, args, idempotency_key)

        result = ctx.step(key, invoke, safe_to_repeat=tool.safe)
        counter = "tool_calls_executed" if ctx.journal.executed > before else "tool_calls_replayed"
        ctx.metrics[counter] += 1
        return result

    def validate_config(self, config: dict, *, node_id: str, upstream_ids: set[str], graph) -> list:
        problems = endpoint_problems(config)
        seen = set()
        for i, spec in enumerate(config.get("tools") or []):
            if not isinstance(spec, dict):
                continue
            at = f"tools[{i}]"
            if spec.get("name") in seen:
                problems.append((f"{at}.name", f"tool name {spec.get('name')!r} is used twice"))
            seen.add(spec.get("name"))
            if spec.get("type") == "task" and isinstance(spec.get("function"), str):
                try:
                    get_task(spec["function"])
                except TaskNotFound:
                    problems.append((f"{at}.function", f"function {spec['function']!r} is not registered"))
            if spec.get("type") == "http":
                problems += url_problems(spec.get("url"), f"{at}.url")
        return problems + mcp_tools.mcp_problems(config, seen)

    @staticmethod
    def credential_uses(config: dict) -> list[CredentialUse]:
        """The model endpoint's credential, and each HTTP tool's."""
        uses = endpoint_credential_uses(config)
        for i, spec in enumerate(config.get("tools") or []):
            if isinstance(spec, dict) and spec.get("type") == "http":
                uses.append(CredentialUse(f"tools[{i}].credential", spec.get("credential"), spec.get("url")))
        return uses + mcp_tools.mcp_credential_uses(config)
