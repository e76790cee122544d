"""A run's durability from its definition and its queues' defaults: plain functions, no database."""

from __future__ import annotations

import json

import pytest

from config.errors import ConfigError
from config.queues import DURABILITIES as QUEUE_DURABILITIES
from config.queues import parse_queues
from engine.core.durability import run_durability
from engine.core.graph import DURABILITIES
from engine.states import Durability
from tests.unit.test_graph import check, definition, errors_of, node


def queues(**durability: str) -> dict[str, dict]:
    """WEFT_QUEUES as parsed from the environment, with these queues' durability given."""
    given = {"default": {}, "fast": {}, "slow": {}}
    for name, value in durability.items():
        given[name] = {"durability": value}
    return parse_queues(json.dumps(given))


def test_the_durability_values_are_the_same_everywhere():
    assert DURABILITIES == QUEUE_DURABILITIES == tuple(Durability.values) == ("strict", "relaxed")


@pytest.mark.parametrize("value", ["fast", "STRICT", "", None, 1])
def test_an_unknown_durability_is_refused_naming_the_field(value):
    errors = errors_of(definition([node("a")], durability=value))
    assert [(e.code, e.path) for e in errors] == [("schema", "durability")]
    assert errors[0].message.startswith("`durability` must be ")


def test_without_a_durability_a_run_is_strict():
    graph = check(definition([node("a"), node("b", queue="default")], [{"source": "a", "target": "b"}]))
    assert graph.durability is None
    assert run_durability(graph, parse_queues(None)) == "strict"
    assert all(q["durability"] == "strict" for q in parse_queues(None).values())


def test_the_queues_default_applies_when_the_definition_says_nothing():
    graph = check(definition([node("a"), node("b", queue="slow")], [{"source": "a", "target": "b"}]))  # fast, slow
    assert run_durability(graph, queues(fast="relaxed", slow="relaxed")) == "relaxed"
    # strict wins while any queue the nodes use is strict; an unused queue does not count
    assert run_durability(graph, queues(fast="relaxed")) == "strict"
    assert run_durability(graph, queues(fast="relaxed", slow="relaxed", default="strict")) == "relaxed"


@pytest.mark.parametrize(("given", "queue_default"), [("strict", "relaxed"), ("relaxed", "strict")])
def test_the_definition_wins_over_the_queue(given, queue_default):
    graph = check(definition([node("a")], durability=given))
    assert graph.durability == given
    assert run_durability(graph, queues(fast=queue_default)) == given


def test_a_queue_with_an_unknown_durability_is_refused_naming_the_setting():
    with pytest.raises(ConfigError) as caught:
        queues(fast="eventually")
    assert "WEFT_QUEUES['fast'].durability" in str(caught.value)
    assert "strict, relaxed" in str(caught.value)
