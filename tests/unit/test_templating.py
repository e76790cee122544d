"""The sandboxed template language used by node configs and edge conditions (no database)."""

from __future__ import annotations

import pytest

from engine.exceptions import TemplateFailed
from engine.templating import templates as templating

CTX = {"inputs": {"topic": "owls", "n": 3}, "nodes": {"search": {"output": {"items": [{"url": "https://x"}],
                                                                          "keys": 1}}}}


def test_single_expression_keeps_native_type():
    assert templating.render("{{ inputs.n * 2 }}", CTX) == 6
    assert templating.render({"a": ["{{ inputs.topic }}", "about {{ inputs.topic }}"]}, CTX) == {
        "a": ["owls", "about owls"]}


def test_json_keys_win_over_dict_methods():
    assert templating.render("{{ nodes.search.output.items[0].url }}", CTX) == "https://x"
    assert templating.render("{{ nodes.search.output.keys }}", CTX) == 1


@pytest.mark.parametrize("hostile", [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ inputs.__class__ }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ lipsum.__globals__ }}",
    "{{ (1).__class__.__base__ }}",
])
def test_python_internals_are_out_of_reach(hostile):
    with pytest.raises(TemplateFailed) as err:
        templating.render(hostile, CTX, path="nodes.x.config.url")
    assert "nodes.x.config.url" in err.value.message


def test_missing_value_names_the_path():
    with pytest.raises(TemplateFailed) as err:
        templating.render({"url": "{{ nodes.search.output.nope.deeper }}"}, CTX, path="nodes.x.config")
    assert "nodes.x.config.url" in err.value.message


def test_syntax_errors_and_references_are_found_before_running():
    assert "syntax" in templating.check_syntax("{{ inputs.topic ")
    assert templating.check_syntax("{{ inputs.topic }}") is None
    assert templating.referenced_nodes({"a": "{{ nodes.search.output }} {{ nodes['other'].output }}"}) == {
        "search", "other"}
