"""What the editor knows of a workflow's last run, to complete and preview templates: the run's inputs and its
steps' outputs (trimmed to a size a browser completes field names from), and a template rendered against that
run with the template engine the worker uses (``engine.templating.templates``), so a preview means what a run
would do.

The context a preview renders against has the shape the worker gives a step (``engine.worker.run``):
``inputs``, ``nodes.<id>.output`` / ``.status``, ``upstream.<direct predecessor>`` and ``run.id``.
"""

from __future__ import annotations

import json
import re
from typing import Any

from engine.exceptions import TemplateFailed
from engine.models import Run, StepRun, Workflow
from engine.templating import templates as templating

# A sample keeps at most this much of each value: list items, characters of a string, fields of an object, depth.
SAMPLE_MAX_ITEMS = 20
SAMPLE_MAX_STRING = 300
SAMPLE_MAX_FIELDS = 100
SAMPLE_MAX_DEPTH = 8
# ...and about this many characters in all (inputs and every output together).
SAMPLE_MAX_CHARS = 100_000
# A preview's value is shown up to this many characters.
PREVIEW_MAX_CHARS = 2_000

NO_RUN = "no run yet: run the workflow once to preview its templates with that run's values"
_ROOTS = ("inputs", "nodes", "upstream", "run", "item", "item_index")
_BLOCK = re.compile(r"\{\{(.*?)\}\}|\{%(.*?)%\}", re.S)
_REF = re.compile(r"(?<![\w.'\"\]])(" + "|".join(_ROOTS) + r")\b((?:\s*\.\s*(?:[A-Za-z_][A-Za-z0-9_]*|\d+)"
                  r"|\s*\[\s*(?:\d+|'[^'\]]*'|\"[^\"\]]*\")\s*\])*)")
_PART = re.compile(r"\.\s*([A-Za-z_][A-Za-z0-9_]*)|(?:\.\s*|\[\s*)(\d+)\s*\]?"
                   r"|\[\s*'([^']*)'\s*\]|\[\s*\"([^\"]*)\"\s*\]")


class _Trim:
    """Copies a JSON value with every bound above applied; ``cut`` says whether anything was left out."""

    def __init__(self):
        self.left = SAMPLE_MAX_CHARS
        self.cut = False

    def __call__(self, value: Any, depth: int = 0) -> Any:
        if self.left <= 0:
            self.cut = True
            return None
        if isinstance(value, str):
            keep = min(len(value), SAMPLE_MAX_STRING, self.left)
            self.left -= keep + 2
            if keep < len(value):
                self.cut = True
                return value[:keep] + "…"
            return value
        if isinstance(value, (dict, list)) and depth >= SAMPLE_MAX_DEPTH:
            self.cut = True
            return {} if isinstance(value, dict) else []
        if isinstance(value, dict):
            out = {}
            for i, (k, v) in enumerate(value.items()):
                if i >= SAMPLE_MAX_FIELDS or self.left <= 0:
                    self.cut = True
                    break
                self.left -= len(k) + 4
                out[k] = self(v, depth + 1)
            return out
        if isinstance(value, list):
            if len(value) > SAMPLE_MAX_ITEMS:
                self.cut = True
            return [self(v, depth + 1) for v in value[:SAMPLE_MAX_ITEMS] if self.left > 0]
        self.left -= 8
        return value


def _last_run(workflow: Workflow) -> Run | None:
    return Run.objects.filter(workflow=workflow).select_related("version").order_by("-created_at").first()


def _run_facts(run: Run) -> dict:
    return {"id": str(run.pk), "status": run.status, "version": run.version.number, "created_at": run.created_at}


def _steps(run: Run) -> dict[str, dict]:
    rows = (StepRun.objects.filter(run=run, map_parent__isnull=True).order_by("pk")
            .values_list("node_id", "status", "output"))
    return {node_id: {"output": output, "status": status} for node_id, status, output in rows}


def workflow_sample(*, workflow: Workflow) -> dict:
    """The workflow's newest run (finished or not): its inputs and each step's status and output, trimmed
    (``truncated`` says whether anything was left out). ``run`` is None when the workflow never ran."""
    run = _last_run(workflow)
    if run is None:
        return {"run": None, "inputs": {}, "nodes": {}, "truncated": False}
    trim = _Trim()
    inputs = trim(run.inputs or {})
    nodes = {node_id: {"status": s["status"], "output": trim(s["output"])} for node_id, s in _steps(run).items()}
    return {"run": _run_facts(run), "inputs": inputs, "nodes": nodes, "truncated": trim.cut}


def template_preview(*, workflow: Workflow, template: str, upstream: list[str] | tuple = ()) -> dict:
    """``template`` rendered against the workflow's newest run, as a step whose direct predecessors are
    ``upstream`` would see it. ``ok`` False with a ``message`` in words when there is no run yet, the template
    does not parse, or a reference it makes has no value in that run."""
    run = _last_run(workflow)
    if run is None:
        return {"run": None, "ok": False, "value": None, "text": "", "truncated": False, "message": NO_RUN}
    facts = _run_facts(run)
    problem = templating.check_syntax(template)
    if problem:
        return {"run": facts, "ok": False, "value": None, "text": "", "truncated": False, "message": problem}
    nodes = _steps(run)
    context = {"inputs": run.inputs or {}, "nodes": nodes, "run": {"id": str(run.pk)},
               "upstream": {nid: nodes[nid]["output"] for nid in upstream if nid in nodes}}
    missing = missing_reference(template, context)
    if missing:
        return {"run": facts, "ok": False, "value": None, "text": "", "truncated": False, "message": missing}
    try:
        value = templating.render(template, context, path="template")
    except TemplateFailed as exc:
        failed = re.match(r"template at template failed: \w+: (.*)", exc.message, re.S)
        reason = failed.group(1) if failed else exc.message.replace("template at template ", "it ")
        return {"run": facts, "ok": False, "value": None, "text": "", "truncated": False,
                "message": f"the template fails on that run: {reason}"}
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    trim = _Trim()
    return {"run": facts, "ok": True, "value": trim(value), "text": text[:PREVIEW_MAX_CHARS],
            "truncated": trim.cut or len(text) > PREVIEW_MAX_CHARS, "message": ""}


def missing_reference(template: str, context: dict) -> str | None:
    """In words, the first reference in ``template`` (``nodes.fetch.output.items.0.title``, ``inputs.url``, ...)
    that has no value in ``context``; None when each one it names is there."""
    for block in _BLOCK.finditer(template):
        for root, rest in _REF.findall(block.group(1) or block.group(2) or ""):
            problem = _walk(root, [_part(m) for m in _PART.finditer(rest)], context)
            if problem:
                return problem
    return None


def _part(match: re.Match) -> str | int:
    name, index, single, double = match.groups()
    if index is not None:
        return int(index)
    return name if name is not None else (single if single is not None else double)


def _walk(root: str, parts: list, context: dict) -> str | None:
    if root not in context:
        if root in ("item", "item_index"):
            return f"`{root}` has a value only in the items of a mapped node (`for_each`), not in this preview"
        return None
    value, shown = context[root], root
    for i, part in enumerate(parts):
        if root == "nodes" and i == 0 and part not in value:
            return f"node `{part}` has no step in that run"
        if root == "upstream" and i == 0 and part not in value:
            return f"`upstream.{part}`: node `{part}` is not a direct predecessor with a step in that run"
        if root == "nodes" and i == 2 and value is None:
            status = context["nodes"][parts[0]]["status"]
            return f"node `{parts[0]}` has no output in that run (its step is {status})"
        if isinstance(value, dict):
            if part not in value:
                fields = ", ".join(f"`{k}`" for k in list(value)[:10]) or "none"
                return f"`{shown}` has no field `{part}` in that run (its fields: {fields})"
        elif isinstance(value, list) and isinstance(part, int):
            if part >= len(value):
                return f"`{shown}` has {len(value)} item(s) in that run, so no item {part}"
        else:
            return None  # a string's or number's attribute, a method: left to the template engine
        value = value[part]
        shown += f"[{part}]" if isinstance(part, int) else f".{part}"
    return None
