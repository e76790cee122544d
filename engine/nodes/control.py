"""Control nodes: ``branch`` (choose outgoing edges) and ``transform`` (reshape data). Cheap and inline."""

from __future__ import annotations

import jmespath
from jmespath.exceptions import JMESPathError

from engine.core.registry import node_type
from engine.templating import templates as templating

FALSE_TEXT = {"", "false", "0", "no", "off", "none", "null"}


def truthy(value) -> bool:
    """Truth of a rendered condition: native values by Python truth; rendered text 'false', '0', '' etc. is false."""
    if isinstance(value, str):
        return value.strip().lower() not in FALSE_TEXT
    return bool(value)


@node_type("branch", label="Branch", default_queue="fast", inline=True)
class BranchNode:
    """Choose which outgoing edges run. Each case has a ``when`` template (``"{{ ... }}"``, sandboxed)
    rendered with the step's inputs; the first true case's ``branch`` is chosen (with ``mode: all``, every
    true case's). Edges leaving this node with a ``branch`` label run only if that branch was chosen;
    the others, and everything that depends only on them, are skipped. With no true case the
    ``default`` branch is chosen, or none.
    """

    config_schema = {
        "type": "object",
        "required": ["cases"],
        "additionalProperties": False,
        "properties": {
            "cases": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "required": ["branch", "when"],
                    "additionalProperties": False,
                    "properties": {
                        "branch": {"type": "string", "minLength": 1},
                        "when": {"type": ["string", "boolean"],
                                 "description": "a template, e.g. {{ nodes.classify.output.json.urgent }}"},
                    },
                },
            },
            "default": {"type": ["string", "null"], "description": "branch chosen when no case is true"},
            "mode": {"enum": ["first", "all"], "default": "first"},
        },
    }
    outputs = {"branch": "the chosen branch (mode first)", "branches": "the chosen branches (mode all)"}

    def run(self, ctx, config: dict):
        chosen = [case["branch"] for case in config["cases"] if truthy(case["when"])]
        if config.get("mode") == "all":
            return {"branches": chosen or ([config["default"]] if config.get("default") else [])}
        if chosen:
            return {"branch": chosen[0]}
        if config.get("default"):
            return {"branch": config["default"]}
        return {"branches": []}

    def validate_config(self, config: dict, *, node_id: str, upstream_ids: set[str], graph) -> list:
        problems = []
        cases = config.get("cases") or []
        names = {c.get("branch") for c in cases if isinstance(c, dict)}
        if config.get("default"):
            names.add(config["default"])
        for i, case in enumerate(cases):
            when = case.get("when") if isinstance(case, dict) else None
            if isinstance(when, str) and not templating.is_template(when):
                problems.append((f"cases[{i}].when", "a condition is a template such as "
                                                     "\"{{ nodes.x.output.ok }}\" (or true/false)"))
        for edge in graph.out_edges(node_id):
            if edge.branch is not None and edge.branch not in names:
                problems.append(("cases", f"edge {edge.key} is labelled branch {edge.branch!r}, which no case "
                                          f"(or default) of this node chooses; branches: {', '.join(sorted(names))}"))
        return problems


@node_type("transform", label="Transform", default_queue="fast", inline=True)
class TransformNode:
    """Reshape data without code: ``template`` is any JSON value whose strings are sandboxed templates
    (rendered with ``inputs``, ``nodes.<id>.output`` and ``upstream``), and becomes the output as
    rendered; or ``jmespath`` is a JMESPath expression evaluated over
    ``{"inputs": ..., "upstream": {<direct predecessor id>: output}}``.
    """

    config_schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "template": {"description": "any JSON value; its template strings are rendered"},
            "jmespath": {"type": "string", "minLength": 1},
        },
        "oneOf": [{"required": ["template"]}, {"required": ["jmespath"]}],
    }
    outputs = {"description": "the rendered template, or the JMESPath result"}

    def run(self, ctx, config: dict):
        if "jmespath" in config:
            data = {"inputs": ctx.run_inputs, "upstream": ctx.upstream}
            try:
                return jmespath.search(config["jmespath"], data)
            except JMESPathError as exc:
                raise ValueError(f"jmespath {config['jmespath']!r} failed: {exc}") from None
        return config["template"]

    def validate_config(self, config: dict, *, node_id: str, upstream_ids: set[str], graph) -> list:
        expression = config.get("jmespath")
        if isinstance(expression, str):
            try:
                jmespath.compile(expression)
            except JMESPathError as exc:
                return [("jmespath", f"invalid JMESPath expression: {exc}")]
        return []
