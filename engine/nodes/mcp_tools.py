"""An agent's MCP tool servers (``mcp_servers``): their tools, as the model sees them and as the agent calls them.

At the step's first turn each server's tool list is fetched and journaled (entry ``mcp-tools-<server>``), so a
resumed step offers the model exactly the same tools even if the server's list changed. A tool is offered as
``<server>__<tool>``; its calls are journal entries ``tool-N-<name>`` like every other tool's, with the entry's
idempotency key in the request's ``_meta`` (``{"idempotency_key": ...}``), and the same in-doubt rule: a call cut
off mid-way is sent again only when the server is declared ``safe_to_repeat``.
"""

from __future__ import annotations

import re

from django.conf import settings

from engine.integrations import mcp_client
from engine.integrations.credentials import credential_headers
from engine.nodes.validation import CredentialUse, url_problems

TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

MCP_SERVER_SCHEMA = {
    "type": "object",
    "required": ["name", "transport"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,32}$",
                 "description": "the server's tools are offered as <name>__<tool>"},
        "transport": {"enum": ["streamable_http", "stdio"]},
        "url": {"type": "string", "description": "streamable_http: the server's endpoint (through the SSRF guard)"},
        "command": {"type": "string", "description": "stdio: the name of a WEFT_MCP_COMMANDS entry"},
        "credential": {"type": "string", "description": "streamable_http: a stored credential sent to the server"},
        "allowed_tools": {"type": "array", "items": {"type": "string"},
                          "description": "offer only these of the server's tools (default: all)"},
        "safe_to_repeat": {"type": "boolean", "default": False,
                           "description": "whether a call cut off mid-way may be sent again (the server deduplicates "
                                          "by the idempotency key in _meta)"},
        "requires_approval": {"type": ["boolean", "string"],
                              "description": "an operator approves each call first: true, or a template over the "
                                             "call's arguments"},
        "timeout_s": {"type": "number", "exclusiveMinimum": 0, "default": 60},
    },
    "allOf": [
        {"if": {"properties": {"transport": {"const": "streamable_http"}}}, "then": {"required": ["url"]}},
        {"if": {"properties": {"transport": {"const": "stdio"}}}, "then": {"required": ["command"]}},
    ],
}


def server_of(spec: dict) -> mcp_client.Server:
    credential = credential_headers(spec["credential"]) if spec.get("credential") else None
    return mcp_client.Server(name=spec["name"], transport=spec["transport"], url=spec.get("url") or "",
                             command=spec.get("command") or "", credential=credential,
                             timeout_s=float(spec.get("timeout_s") or 60))


class McpTool:
    """One tool of an MCP server, with the interface of the agent's ``Tool``."""

    def __init__(self, server_spec: dict, listed: dict, connections: mcp_client.McpConnections):
        self.server_spec = server_spec
        self.tool = listed["name"]
        self.name = f"{server_spec['name']}__{listed['name']}"
        self.spec = {"requires_approval": server_spec.get("requires_approval")}
        self.safe = bool(server_spec.get("safe_to_repeat", False))
        self._connections = connections
        self.definition = {"type": "function", "function": {
            "name": self.name, "description": listed.get("description") or self.tool,
            "parameters": listed.get("inputSchema") or {"type": "object"}}}

    def call(self, ctx, args: dict, idempotency_key: str):
        return self._connections.call_tool(server_of(self.server_spec), self.tool, args,
                                           idempotency_key=idempotency_key)


def checked_tool_list(server: str, tools) -> list[dict]:
    """The tool list as journaled, or McpBadToolList naming what is wrong with it."""
    if not isinstance(tools, list):
        raise mcp_client.McpBadToolList(f"MCP server {server!r}: the tool list is not a list")
    for i, tool in enumerate(tools):
        name = tool.get("name") if isinstance(tool, dict) else None
        if not isinstance(name, str) or not TOOL_NAME.match(f"{server}__{name}"):
            raise mcp_client.McpBadToolList(f"MCP server {server!r}: tool {i} has no usable name ({name!r}; names "
                                            f"are letters, digits, _ and -, at most {62 - len(server)} characters)")
        if not isinstance(tool.get("inputSchema"), dict):
            raise mcp_client.McpBadToolList(f"MCP server {server!r}: tool {name!r} has no input schema object")
    return tools


def mcp_tools(ctx, specs: list[dict], connections: mcp_client.McpConnections) -> dict[str, McpTool]:
    """Every server's tools, from the journal when an earlier attempt fetched them."""
    tools: dict[str, McpTool] = {}
    for spec in specs:
        def fetch(spec=spec):
            return checked_tool_list(spec["name"], connections.list_tools(server_of(spec)))

        listed = ctx.step(f"mcp-tools-{spec['name']}", fetch, safe_to_repeat=True)
        allowed = spec.get("allowed_tools")
        for entry in listed:
            if allowed is None or entry["name"] in allowed:
                tool = McpTool(spec, entry, connections)
                tools[tool.name] = tool
    return tools


def mcp_problems(config: dict, tool_names: set) -> list:
    problems, seen = [], set()
    commands = getattr(settings, "WEFT_MCP_COMMANDS", None) or {}
    for i, spec in enumerate(config.get("mcp_servers") or []):
        if not isinstance(spec, dict):
            continue
        at = f"mcp_servers[{i}]"
        if spec.get("name") in seen:
            problems.append((f"{at}.name", f"MCP server name {spec.get('name')!r} is used twice"))
        seen.add(spec.get("name"))
        if spec.get("transport") == "stdio" and isinstance(spec.get("command"), str) \
                and spec["command"] not in commands:
            listed = ", ".join(sorted(commands)) or "none"
            problems.append((f"{at}.command", f"MCP command {spec['command']!r} is not in WEFT_MCP_COMMANDS "
                                              f"(listed: {listed})"))
        if spec.get("transport") == "streamable_http":
            problems += url_problems(spec.get("url"), f"{at}.url")
        clash = sorted(n for n in tool_names if isinstance(n, str) and n.startswith(f"{spec.get('name')}__"))
        if clash:
            problems.append((f"{at}.name", f"tool {clash[0]!r} would clash with this server's tools"))
    return problems


def mcp_credential_uses(config: dict) -> list[CredentialUse]:
    return [CredentialUse(f"mcp_servers[{i}].credential", spec.get("credential"), spec.get("url"))
            for i, spec in enumerate(config.get("mcp_servers") or [])
            if isinstance(spec, dict) and spec.get("transport") == "streamable_http"]


def mcp_repeat_risks(config: dict) -> list[str]:
    return [f"MCP server {spec['name']}" for spec in config.get("mcp_servers") or []
            if isinstance(spec, dict) and "name" in spec and not spec.get("safe_to_repeat", False)]
