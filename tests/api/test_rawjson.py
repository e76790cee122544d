"""api.rawjson: orjson writes what DRF's renderer writes, and JSON text read from the database goes in as it is."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.utils.translation import gettext_lazy
from rest_framework.renderers import JSONRenderer

from api.rawjson import RawJson, RawJsonRenderer, dumps

AT = datetime(2026, 12, 5, 23, 1, 2, 345678, tzinfo=UTC)


def test_dumps_writes_the_values_drfs_renderer_writes():
    value = {
        "utc": AT, "whole_second": AT.replace(microsecond=0), "kolkata": AT.astimezone(ZoneInfo("Asia/Kolkata")),
        "london_winter": AT.astimezone(ZoneInfo("Europe/London")),
        "st_johns": AT.astimezone(ZoneInfo("America/St_Johns")),
        "fixed": AT.astimezone(timezone(timedelta(hours=-7))), "id": uuid.UUID(int=7), "price": Decimal("1.25"),
        "lazy": gettext_lazy("Cancel"), "tuple": (1, "two"), "nested": {"list": [1.5, None, True, "é"]},
        "small": 1e-7, "large": 1e16,
    }
    ours, drf = dumps(value), JSONRenderer().render(value)
    assert json.loads(ours) == json.loads(drf)
    assert json.loads(ours)["utc"] == "2026-12-05T23:01:02.345678Z"
    assert json.loads(ours)["london_winter"] == "2026-12-05T23:01:02.345678Z"
    assert json.loads(ours)["whole_second"] == "2026-12-05T23:01:02Z"
    assert json.loads(ours)["st_johns"] == "2026-12-05T19:31:02.345678-03:30"


def test_utc_z_off_writes_timestamps_as_isoformat_does():
    assert json.loads(dumps([AT, AT.replace(microsecond=0)], utc_z=False)) == [AT.isoformat(),
                                                                                AT.replace(microsecond=0).isoformat()]


def test_raw_json_is_embedded_as_it_is_at_any_depth():
    value = {"a": RawJson('{"x": [1, 2]}'), "b": [RawJson(b"null"), {"c": RawJson('"\\u00e9"')}]}
    assert dumps(value) == b'{"a":{"x": [1, 2]},"b":[null,{"c":"\\u00e9"}]}'
    assert json.loads(dumps(value)) == {"a": {"x": [1, 2]}, "b": [None, {"c": "é"}]}


def test_an_integer_past_64_bits_is_written_by_the_standard_library():
    value = {"big": 2 ** 70, "raw": RawJson('{"n": 1}'), "at": AT}
    assert json.loads(dumps(value)) == {"big": 2 ** 70, "raw": {"n": 1}, "at": "2026-12-05T23:01:02.345678Z"}


def test_the_renderer_takes_the_fast_way_only_for_a_response_that_holds_raw_json():
    plain = {"a": 1, "at": AT, "price": Decimal("2.50")}
    assert RawJsonRenderer().render(plain) == JSONRenderer().render(plain)
    assert RawJsonRenderer().render({"steps": RawJson("[1, 2]"), "n": 3}) == b'{"steps":[1, 2],"n":3}'
