"""Public API for code that extends Weft: ``@weft.task`` registers a function for ``python`` nodes."""

from engine.core.registry import node_type, task

__all__ = ["node_type", "task"]
