"""An instance of a JSON schema: what the simulated backends answer for structured outputs.

:func:`instance` builds a value that validates against the schema, for the
subset structured outputs and tool parameters use (OpenAI's strict mode,
pydantic's ``model_json_schema()``, zod, hand-written schemas):

* ``type`` (one or a list), ``const``, ``enum``;
* objects: ``properties`` (every one is filled in, so strict mode's "all
  required" holds), ``required``, ``additionalProperties`` (a schema gives one
  entry when ``minProperties`` asks for it), ``minProperties``;
* arrays: ``items``, ``prefixItems``, ``minItems``/``maxItems`` (one item when
  the range allows it);
* strings: ``minLength``/``maxLength``, the common ``format`` values
  (date-time, date, time, email, uri, uuid, ipv4, ipv6, hostname, duration);
  a ``pattern`` is not solved (the value is a plain word);
* numbers: ``minimum``/``maximum``, ``exclusiveMinimum``/``exclusiveMaximum``,
  ``multipleOf``;
* ``anyOf``/``oneOf`` (the first branch that is not ``null``; ``null`` when
  nesting is deep), ``allOf`` (merged), local ``$ref`` (``#/$defs/...``,
  ``#/definitions/...``, ``#``), recursive schemas (bounded depth: below it,
  optional properties and arrays are left empty).

Deterministic: the same schema and seed give the same value. Strings say they
are simulated. A schema outside the subset still gives *some* JSON value;
nothing here raises for a schema it does not understand.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

MAX_DEPTH = 8

_FORMATS = {
    "date-time": "2025-01-01T12:00:00Z",
    "date": "2025-01-01",
    "time": "12:00:00Z",
    "email": "simulated@example.com",
    "idn-email": "simulated@example.com",
    "uri": "https://example.com/simulated",
    "url": "https://example.com/simulated",
    "iri": "https://example.com/simulated",
    "uri-reference": "/simulated",
    "uuid": "00000000-0000-4000-8000-000000000000",
    "ipv4": "192.0.2.1",
    "ipv6": "2001:db8::1",
    "hostname": "simulated.example.com",
    "duration": "PT1S",
}
_TYPE_ORDER = ("object", "array", "string", "integer", "number", "boolean", "null")


def instance(schema: Any, *, seed: int = 0) -> Any:
    """A value valid against ``schema`` (a JSON schema as a mapping; ``True``/``{}`` accept anything)."""
    root = schema if isinstance(schema, Mapping) else {}
    return _Builder(root, seed).value(schema, "value", 0)


class _Builder:
    def __init__(self, root: Mapping[str, Any], seed: int) -> None:
        self.root = root
        self.state = seed & ((1 << 64) - 1)

    def draw(self, n: int) -> int:
        """A deterministic number in ``range(n)``."""
        self.state = (self.state * 6364136223846793005 + 1442695040888963407) % (1 << 64)
        return (self.state >> 33) % max(1, n)

    def resolve(self, schema: Mapping[str, Any]) -> Mapping[str, Any]:
        seen = 0
        while isinstance(schema.get("$ref"), str) and seen < 32:
            target = self.lookup(schema["$ref"])
            if target is None:
                break
            rest = {k: v for k, v in schema.items() if k != "$ref"}
            schema = {**target, **rest} if rest else target
            seen += 1
        return schema

    def lookup(self, ref: str) -> Mapping[str, Any] | None:
        if ref == "#":
            return self.root
        if not ref.startswith("#/"):
            return None
        node: Any = self.root
        for part in ref[2:].split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(node, Mapping) or part not in node:
                return None
            node = node[part]
        return node if isinstance(node, Mapping) else None

    def value(self, schema: Any, name: str, depth: int) -> Any:
        if schema is True or not isinstance(schema, Mapping):
            return f"simulated {name}"
        schema = self.resolve(schema)
        if "const" in schema:
            return schema["const"]
        enum = schema.get("enum")
        if isinstance(enum, list) and enum:
            return enum[self.draw(len(enum))]
        if isinstance(schema.get("allOf"), list):
            schema = self.merged(schema, depth)
        for key in ("anyOf", "oneOf"):
            options = schema.get(key)
            if isinstance(options, list) and options:
                rest = {k: v for k, v in schema.items() if k != key}
                chosen = self.branch(options, depth)
                if rest and isinstance(chosen, Mapping):
                    chosen = {**rest, **self.resolve(chosen)}
                return self.value(chosen, name, depth)
        kind = self.kind(schema, depth)
        if kind == "object":
            return self.object(schema, depth)
        if kind == "array":
            return self.array(schema, name, depth)
        if kind == "string":
            return self.string(schema, name)
        if kind == "integer":
            return int(self.number(schema, integer=True))
        if kind == "number":
            return self.number(schema, integer=False)
        if kind == "boolean":
            return self.draw(2) == 0
        return None

    def merged(self, schema: Mapping[str, Any], depth: int) -> dict[str, Any]:
        out: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
        for part in schema["allOf"]:
            if not isinstance(part, Mapping):
                continue
            part = self.resolve(part)
            for key, value in part.items():
                if key == "properties" and isinstance(value, Mapping):
                    out["properties"] = {**out.get("properties", {}), **value}
                elif key == "required" and isinstance(value, list):
                    out["required"] = [*out.get("required", []), *value]
                else:
                    out.setdefault(key, value)
        return out

    def branch(self, options: list[Any], depth: int) -> Any:
        def is_null(option: Any) -> bool:
            return isinstance(option, Mapping) and option.get("type") == "null"

        if depth >= MAX_DEPTH:
            nulls = [o for o in options if is_null(o)]
            if nulls:
                return nulls[0]
        return next((o for o in options if not is_null(o)), options[0])

    def kind(self, schema: Mapping[str, Any], depth: int) -> str:
        declared = schema.get("type")
        if isinstance(declared, str):
            return declared
        if isinstance(declared, list) and declared:
            names = [t for t in declared if isinstance(t, str)]
            if depth >= MAX_DEPTH and "null" in names:
                return "null"
            for name in _TYPE_ORDER:
                if name in names and name != "null":
                    return name
            return names[0] if names else "null"
        if "properties" in schema or "additionalProperties" in schema:
            return "object"
        if "items" in schema or "prefixItems" in schema:
            return "array"
        if any(k in schema for k in ("minLength", "maxLength", "format", "pattern")):
            return "string"
        if any(k in schema for k in ("minimum", "maximum", "multipleOf")):
            return "number"
        return "string"

    def object(self, schema: Mapping[str, Any], depth: int) -> dict[str, Any]:
        properties = schema.get("properties")
        properties = properties if isinstance(properties, Mapping) else {}
        required = schema.get("required")
        required = (
            {r for r in required if isinstance(r, str)} if isinstance(required, list) else set()
        )
        out: dict[str, Any] = {}
        for key, sub in properties.items():
            if depth >= MAX_DEPTH and key not in required:
                continue
            out[str(key)] = self.value(sub, str(key), depth + 1)
        for key in sorted(required - set(out)):
            extra = schema.get("additionalProperties")
            out[key] = self.value(extra if isinstance(extra, Mapping) else {}, key, depth + 1)
        wanted = schema.get("minProperties")
        extra = schema.get("additionalProperties")
        if isinstance(wanted, int) and extra is not False:
            index = 0
            while len(out) < wanted:
                key = f"simulated_{index}"
                index += 1
                if key not in out:
                    sub = extra if isinstance(extra, Mapping) else {}
                    out[key] = self.value(sub, key, depth + 1)
        return out

    def array(self, schema: Mapping[str, Any], name: str, depth: int) -> list[Any]:
        low = _limit(schema.get("minItems")) or 0
        high = _limit(schema.get("maxItems"))
        prefix = schema.get("prefixItems")
        prefix = prefix if isinstance(prefix, list) else []
        items = schema.get("items")
        if isinstance(items, list):  # draft-07 tuple form
            prefix, items = items, schema.get("additionalItems", {})
        count = low if depth >= MAX_DEPTH else max(low, 1)
        if high is not None:
            count = min(count, high)
        if items is False:
            count = min(count, len(prefix))
        count = max(count, min(len(prefix), high if high is not None else len(prefix)))
        out = []
        for index in range(count):
            sub = prefix[index] if index < len(prefix) else items
            out.append(self.value(sub if sub is not None else {}, name, depth + 1))
        if schema.get("uniqueItems") and len(out) > 1:
            out = _distinct(out)
        return out

    def string(self, schema: Mapping[str, Any], name: str) -> str:
        fmt = schema.get("format")
        text = (
            _FORMATS.get(fmt, f"simulated {name}") if isinstance(fmt, str) else f"simulated {name}"
        )
        low = _limit(schema.get("minLength")) or 0
        high = _limit(schema.get("maxLength"))
        if len(text) < low:
            text += "x" * (low - len(text))
        if high is not None and len(text) > high:
            text = text[:high]
        return text

    def number(self, schema: Mapping[str, Any], *, integer: bool) -> float:
        low = _bound(schema, "minimum", "exclusiveMinimum", 1)
        high = _bound(schema, "maximum", "exclusiveMaximum", -1)
        if integer:
            low = float(math.ceil(low)) if low is not None else None
            high = float(math.floor(high)) if high is not None else None
        start = low if low is not None else (min(0.0, high) if high is not None else 0.0)
        end = high if high is not None else start + 10
        step = schema.get("multipleOf")
        if isinstance(step, int | float) and not isinstance(step, bool) and step > 0:
            first = math.ceil(start / step) * step
            room = int((end - first) // step) if end >= first else 0
            return float(first + step * self.draw(min(room, 10) + 1))
        if integer:
            return float(start + self.draw(int(min(end - start, 10)) + 1))
        return start + (min(end, start + 10) - start) * self.draw(11) / 10


def _limit(value: Any) -> int | None:
    """A non-negative whole number from the schema, else ``None``."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _bound(
    schema: Mapping[str, Any], inclusive: str, exclusive: str, direction: int
) -> float | None:
    """The lowest (``direction`` 1) or highest (-1) allowed number, or ``None`` when unbounded."""
    values = []
    value = schema.get(inclusive)
    if isinstance(value, int | float) and not isinstance(value, bool):
        values.append(float(value))
    value = schema.get(exclusive)
    if isinstance(value, bool) and value and inclusive in schema:  # draft-04 boolean form
        values = [float(schema[inclusive]) + direction * _nudge(float(schema[inclusive]))]
    elif isinstance(value, int | float) and not isinstance(value, bool):
        values.append(float(value) + direction * _nudge(float(value)))
    if not values:
        return None
    return max(values) if direction > 0 else min(values)


def _nudge(value: float) -> float:
    """A step past an exclusive bound: 1 for whole numbers (integers stay whole), else tiny."""
    return 1.0 if value == int(value) else max(abs(value) * 1e-9, 1e-9)


def _distinct(values: list[Any]) -> list[Any]:
    out: list[Any] = []
    for value in values:
        if value not in out:
            out.append(value)
    return out
