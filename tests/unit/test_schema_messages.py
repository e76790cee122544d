"""JSON-Schema errors in words for people: the field by its path inside the object checked, what it must be."""

from __future__ import annotations

import pytest
from jsonschema import Draft202012Validator

from engine.core.schema_messages import describe

SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["url"],
    "properties": {
        "url": {"type": "string", "minLength": 1},
        "timeout_s": {"type": "number", "exclusiveMinimum": 0},
        "retries": {"type": "integer", "minimum": 0, "maximum": 5},
        "method": {"enum": ["GET", "POST"]},
        "name": {"type": "string", "pattern": "^[a-z]+$", "maxLength": 3},
        "tags": {"type": "array", "minItems": 2, "uniqueItems": True, "items": {"type": "string"}},
        "headers": {"type": "object", "required": ["accept"], "additionalProperties": {"type": "string"}},
        "body": {"type": ["object", "null"]},
    },
}


def messages(config) -> list[str]:
    return sorted(describe(e, whole="config") for e in Draft202012Validator(SCHEMA).iter_errors(config))


@pytest.mark.parametrize(("config", "expected"), [
    ({}, "`url` is required"),
    ({"url": "u", "foo": 1}, "`foo` is not a known field"),
    ({"url": "u", "foo": 1, "bar": 2}, "`foo`, `bar` are not known fields"),
    ({"url": "u", "timeout_s": "3"}, "`timeout_s` must be a number"),
    ({"url": "u", "timeout_s": 0}, "`timeout_s` must be greater than 0"),
    ({"url": "u", "retries": 1.5}, "`retries` must be a whole number"),
    ({"url": "u", "retries": 9}, "`retries` must be at most 5"),
    ({"url": "u", "retries": -1}, "`retries` must be at least 0"),
    ({"url": ""}, "`url` must not be empty"),
    ({"url": "u", "method": "PUT"}, '`method` must be one of `GET`, `POST`'),
    ({"url": "u", "name": "ABC"}, "`name` must match the pattern `^[a-z]+$`"),
    ({"url": "u", "name": "abcd"}, "`name` must be at most 3 characters"),
    ({"url": "u", "tags": ["a"]}, "`tags` must have at least 2 items"),
    ({"url": "u", "tags": ["a", 1]}, "`tags[1]` must be a string"),
    ({"url": "u", "tags": ["a", "a"]}, "`tags` must not list the same item twice"),
    ({"url": "u", "headers": {}}, "`headers.accept` is required"),
    ({"url": "u", "headers": {"accept": "x", "X-Key": 1}}, '`headers["X-Key"]` must be a string'),
    ({"url": "u", "body": []}, "`body` must be an object or null"),
])
def test_each_kind_of_error_reads_as_a_sentence_about_the_field(config, expected):
    assert messages(config) == [expected]


def test_every_error_is_reported_not_only_the_first():
    assert messages({"timeout_s": "x", "foo": 1}) == ["`foo` is not a known field", "`timeout_s` must be a number",
                                                      "`url` is required"]


def test_an_error_about_the_whole_object_names_it():
    assert messages([]) == ["config must be an object"]


def test_the_field_is_named_below_the_base_path():
    error = next(Draft202012Validator({"type": "object", "properties": {"nodes": {"type": "array", "items": {
        "type": "object", "properties": {"retry": {"type": "object", "properties": {
            "max_attempts": {"minimum": 1}}}}}}}}).iter_errors({"nodes": [{"retry": {"max_attempts": 0}}]}))
    assert describe(error, base=["nodes", 0], whole="the node") == "`retry.max_attempts` must be at least 1"
