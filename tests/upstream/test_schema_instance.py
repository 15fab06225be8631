"""The simulated backends' JSON-schema instances validate against their schemas."""

from __future__ import annotations

import datetime
import enum
from typing import Any, Literal, Optional

import jsonschema
import pytest
from openai.lib._pydantic import to_strict_json_schema
from pydantic import BaseModel, Field

from gateway.upstream.schema_instance import instance


class Colour(enum.Enum):
    RED = "red"
    GREEN = "green"


class Address(BaseModel):
    street: str
    city: str = Field(min_length=2, max_length=5)
    postcode: str | None = None


class Person(BaseModel):
    name: str
    age: int = Field(ge=18, le=120)
    score: float = Field(gt=0, lt=1)
    email: str = Field(json_schema_extra={"format": "email"})
    born: datetime.date
    seen_at: datetime.datetime
    colour: Colour
    role: Literal["admin", "user"]
    tags: list[str] = Field(min_length=2, max_length=3)
    address: Address
    previous: list[Address]
    nickname: Optional[str]  # noqa: UP045 - the Optional[...] spelling on purpose
    extra: dict[str, int]


class Node(BaseModel):
    """A recursive schema: generation must stop."""

    label: str
    children: list[Node]
    parent: Node | None


HAND_WRITTEN: list[dict[str, Any]] = [
    {"type": "object", "properties": {"a": {"type": ["integer", "null"]}}, "required": ["a"]},
    {"type": "string", "enum": ["x", "y", "z"]},
    {"const": 42},
    {"type": "integer", "minimum": 5, "maximum": 5},
    {"type": "integer", "exclusiveMinimum": 5, "exclusiveMaximum": 7},
    {"type": "number", "minimum": -2.5, "maximum": -2.25},
    {"type": "integer", "multipleOf": 7, "minimum": 10, "maximum": 30},
    {"type": "number", "multipleOf": 0.25, "minimum": 0.3},
    {"type": "string", "minLength": 40},
    {"type": "string", "maxLength": 3},
    {"type": "string", "format": "uuid"},
    {"type": "string", "format": "date-time"},
    {"type": "string", "format": "uri"},
    {"type": "string", "format": "ipv4"},
    {"type": "array", "items": {"type": "boolean"}, "minItems": 3},
    {"type": "array", "items": {"type": "integer"}, "maxItems": 0},
    {"type": "array", "prefixItems": [{"type": "string"}, {"type": "integer"}], "items": False},
    {"type": "array", "items": {"enum": [1, 2]}, "minItems": 2, "uniqueItems": True},
    {
        "allOf": [
            {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
            {"properties": {"b": {"type": "integer", "minimum": 3}}, "required": ["b"]},
        ]
    },
    {"anyOf": [{"type": "null"}, {"type": "object", "properties": {"k": {"type": "number"}}}]},
    {"oneOf": [{"type": "string", "maxLength": 1}, {"type": "integer"}]},
    {
        "type": "object",
        "additionalProperties": {"type": "integer"},
        "minProperties": 2,
    },
    {"type": "object", "required": ["undeclared"]},
    {
        "$defs": {"n": {"type": "integer", "minimum": 1}},
        "type": "array",
        "items": {"$ref": "#/$defs/n"},
    },
    {
        "definitions": {
            "t": {"type": "object", "properties": {"next": {"$ref": "#/definitions/t"}}}
        },
        "$ref": "#/definitions/t",
    },
    {"type": "object", "properties": {"self": {"$ref": "#"}}},
    {},
]


def schemas() -> list[tuple[str, dict[str, Any]]]:
    out = [(f"hand-{i}", s) for i, s in enumerate(HAND_WRITTEN)]
    for model in (Address, Person, Node):
        out.append((f"{model.__name__}-pydantic", model.model_json_schema()))
        out.append((f"{model.__name__}-strict", to_strict_json_schema(model)))
    return out


@pytest.mark.parametrize(("name", "schema"), schemas(), ids=[n for n, _ in schemas()])
@pytest.mark.parametrize("seed", [0, 1, 7, 2**63 + 5])
def test_instance_validates(name: str, schema: dict[str, Any], seed: int) -> None:
    value = instance(schema, seed=seed)
    jsonschema.validate(value, schema, format_checker=jsonschema.FormatChecker())


@pytest.mark.parametrize("model", [Address, Person, Node])
def test_pydantic_parses_the_instance(model: type[BaseModel]) -> None:
    model.model_validate(instance(to_strict_json_schema(model), seed=3))


def test_same_seed_same_value_and_strings_say_simulated() -> None:
    schema = Person.model_json_schema()
    assert instance(schema, seed=9) == instance(schema, seed=9)
    assert instance(schema, seed=9)["name"] == "simulated name"


def test_every_declared_property_is_filled_in() -> None:
    value = instance(to_strict_json_schema(Person))
    assert set(value) == set(Person.model_fields)


def test_recursion_is_bounded() -> None:
    depth, node = 0, instance(Node.model_json_schema())
    while node["children"]:
        node, depth = node["children"][0], depth + 1
    assert 1 <= depth <= 10


def test_schemas_outside_the_subset_still_give_json() -> None:
    for odd in ({"type": "whatever"}, {"$ref": "http://example.com/x.json"}, {"not": {}}, True):
        instance(odd)
