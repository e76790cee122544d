"""WEFT_QUEUES -> django-q2's cluster settings: plain functions, no database."""

from __future__ import annotations

import json

import pytest

from config.errors import ConfigError
from config.queues import parse_queues, q_cluster_settings


def clusters(given: dict) -> dict[str, dict]:
    """Each queue's django-q2 settings, by queue name."""
    main = q_cluster_settings(parse_queues(json.dumps(given)))
    return {"default": main, **main["ALT_CLUSTERS"]}


def test_a_worker_is_replaced_after_django_q2s_500_tasks_unless_the_queue_says_otherwise():
    settings = clusters({"default": {}, "fast": {"recycle": 1_000_000}})
    assert settings["default"]["recycle"] == 500
    assert settings["fast"]["recycle"] == 1_000_000


@pytest.mark.parametrize("value", [0, -1, 1.5, "500", True, None])
def test_a_recycle_that_is_not_a_positive_integer_is_refused_naming_the_setting(value):
    with pytest.raises(ConfigError) as caught:
        parse_queues(json.dumps({"default": {"recycle": value}}))
    assert "WEFT_QUEUES['default'].recycle" in str(caught.value)
    assert "positive integer" in str(caught.value)
