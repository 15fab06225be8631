"""``when:`` conditions: parsed and checked at load into :mod:`gateway.policy.predicates`.

A mapping of conditions means *all of them*; ``all``, ``any`` and ``not``
combine. :class:`ConditionParser` records a problem for every unknown name,
bad operator or invalid value, and otherwise returns the compiled
:class:`~gateway.policy.predicates.Condition`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

from gateway.levels import LEVEL_NAMES, Level
from gateway.policy.load_conditions import LOAD_KEYS, load_condition
from gateway.policy.model import Facts
from gateway.policy.predicates import (
    ALWAYS,
    ORDER_OPS,
    Condition,
    all_of,
    any_of,
    compare,
    entities_check,
    negate,
)
from gateway.policy.problems import suggest
from gateway.policy.read import Reader, describe
from gateway.policy.source import Node
from gateway.targets import Prices

ENDPOINTS = ("chat", "completions", "embeddings")


@dataclass(frozen=True, slots=True)
class Vocabulary:
    """The names a condition may refer to, and what estimated costs need."""

    tasks: frozenset[str]
    entities: frozenset[str]
    aliases: frozenset[str]
    prices: Mapping[str, Prices]
    expected_completion_tokens: int


_STRING_OPS = ("eq", "ne", "in", "not_in", "matches", "exists")
_LEVEL_OPS = (*ORDER_OPS, "in", "not_in")

# attrgetter: a C-level read, evaluated for every rule of every request
_STRING_FIELDS: dict[str, Callable[[Facts], str | None]] = {
    "task": attrgetter("task"),
    "model": attrgetter("alias"),
    "endpoint": attrgetter("endpoint"),
    "key": attrgetter("key_id"),
    "team": attrgetter("team"),
}
_NUMBER_FIELDS: dict[str, Callable[[Facts], float | None]] = {
    "prompt_tokens": attrgetter("prompt_tokens"),
    "budget_remaining_usd": attrgetter("budget_remaining_usd"),
    "budget_used": attrgetter("budget_used_fraction"),
    # how sure the task classifier is (0..1; 1.0 for a client's x-gateway-task hint)
    "task_confidence": attrgetter("task_confidence"),
}
_BOOL_FIELDS: dict[str, Callable[[Facts], bool]] = {
    "stream": attrgetter("stream"),
    "tools": attrgetter("has_tools"),
}
_COMBINATORS = ("all", "any", "not")
CONDITION_KEYS = (
    "sensitivity",
    "entities",
    "estimated_cost",
    *LOAD_KEYS,
    *_STRING_FIELDS,
    *_NUMBER_FIELDS,
    *_BOOL_FIELDS,
    *_COMBINATORS,
    "metadata.<name>",
    "header.<name>",
)


class ConditionParser:
    def __init__(self, reader: Reader, vocab: Vocabulary) -> None:
        self.r = reader
        self.vocab = vocab

    def parse(self, node: Node | None) -> Condition | None:
        """The condition of a ``when`` node; ``None`` (after recording problems) if invalid."""
        if node is None or node.value is None:
            return ALWAYS
        if not node.is_mapping:
            self.r.error(
                node,
                f"'when' must be a mapping of conditions, got {describe(node.value)}",
                "write e.g. when: {task: code}",
            )
            return None
        parts: list[Condition] = []
        ok = True
        for key, value in node.value.items():
            part = self.field(key, value, node.key_lines.get(key, node.line), node)
            if part is None:
                ok = False
            else:
                parts.append(part)
        return all_of(parts) if ok else None

    def field(self, key: str, node: Node, line: int, parent: Node) -> Condition | None:
        if key in ("all", "any"):
            items = self.r.sequence(node, f"'{key}'")
            if items is None:
                return None
            if not items:
                self.r.error(node, f"'{key}' needs at least one condition")
                return None
            parts = [self.parse(item) for item in items]
            if any(p is None for p in parts):
                return None
            conds = [p for p in parts if p is not None]
            return all_of(conds) if key == "all" else any_of(conds)
        if key == "not":
            inner = self.parse(node)
            return negate(inner) if inner is not None else None
        if key == "sensitivity":
            return self.level_field(node)
        if key == "entities":
            return self.entities(node)
        if key == "estimated_cost":
            return self.estimated_cost(node)
        if key in LOAD_KEYS:
            return load_condition(self, key, node)
        if key in _STRING_FIELDS:
            return self.string_field(key, _STRING_FIELDS[key], node)
        if key in _NUMBER_FIELDS:
            return self.number_field(key, _NUMBER_FIELDS[key], node)
        if key in _BOOL_FIELDS:
            value = self.r.boolean(node, f"'{key}'")
            if value is None:
                return None
            get = _BOOL_FIELDS[key]
            return compare(key, get, "eq", value)
        prefix, dot, name = key.partition(".")
        if dot and name and prefix in ("metadata", "header"):
            if prefix == "header":
                lowered = name.lower()

                def get_header(f: Facts) -> str | None:
                    return f.headers.get(lowered)

                return self.string_field(key, get_header, node)

            def get_meta(f: Facts) -> str | None:
                return f.metadata.get(name)

            return self.string_field(key, get_meta, node)
        self.r.error(parent, f"unknown condition '{key}'", suggest(key, CONDITION_KEYS), line=line)
        return None

    # --- fields ----------------------------------------------------------------

    def _ops(self, node: Node, label: str, allowed: tuple[str, ...]) -> dict[str, Node] | None:
        entries = self.r.mapping(node, f"condition '{label}'", allowed)
        if entries is not None and not entries:
            self.r.error(
                node, f"condition '{label}' has no operator", "use one of: " + ", ".join(allowed)
            )
            return None
        return entries

    def level_field(self, node: Node) -> Condition | None:
        get: Callable[[Facts], Level] = attrgetter("sensitivity.level")
        if not node.is_mapping:
            return self._scalar_or_list(node, "sensitivity", get, self._level_value)
        ops = self._ops(node, "sensitivity", _LEVEL_OPS)
        if ops is None:
            return None
        return self._combine_ops("sensitivity", get, ops, self._level_value)

    def _level_value(self, node: Node) -> Level | None:
        return self.r.level(node, "sensitivity level")

    def string_field(
        self, label: str, get: Callable[[Facts], str | None], node: Node
    ) -> Condition | None:
        def value(item: Node) -> str | None:
            return self._known_string(label, item)

        if not node.is_mapping:
            return self._scalar_or_list(node, label, get, value)
        ops = self._ops(node, label, _STRING_OPS)
        if ops is None:
            return None
        parts: list[Condition] = []
        ok = True
        for op, arg in ops.items():
            part: Condition | None
            if op == "matches":
                part = self._regex(label, get, arg)
            elif op == "exists":
                flag = self.r.boolean(arg, f"'{label}.exists'")
                part = compare(label, get, "exists", flag) if flag is not None else None
            else:
                part = self._one_op(label, get, op, arg, value)
            ok = ok and part is not None
            if part is not None:
                parts.append(part)
        return all_of(parts) if ok else None

    def _regex(self, label: str, get: Callable[[Facts], Any], node: Node) -> Condition | None:
        text = self.r.string(node, f"'{label}.matches'")
        if text is None:
            return None
        try:
            pattern = re.compile(text)
        except re.error as exc:
            self.r.error(
                node,
                f"invalid regular expression /{text}/: {exc}",
                "fix the pattern (Python re syntax; quote it in YAML)",
            )
            return None
        return compare(label, get, "matches", pattern)

    def _known_string(self, label: str, node: Node) -> str | None:
        vocab = {
            "task": self.vocab.tasks,
            "model": self.vocab.aliases,
            "endpoint": frozenset(ENDPOINTS),
        }
        choices = vocab.get(label)
        if choices is None:
            return self.r.string(node, f"'{label}'")
        value = self.r.string(node, f"'{label}'")
        if value is not None and value not in choices:
            kind = {"task": "task", "model": "model alias", "endpoint": "endpoint"}[label]
            fix = suggest(value, choices)
            if label == "model":
                fix += f" (or declare alias '{value}' under aliases:)"
            self.r.error(node, f"unknown {kind} '{value}'", fix)
            return None
        return value

    def number_field(
        self, label: str, get: Callable[[Facts], float | None], node: Node
    ) -> Condition | None:
        maximum = 1.0 if label in ("budget_used", "task_confidence") else None

        def value(item: Node) -> float | None:
            return self.r.number(item, f"'{label}'", minimum=0.0, maximum=maximum)

        if not node.is_mapping:
            if node.is_sequence:
                self.r.error(
                    node,
                    f"'{label}' compares numbers; a list is not allowed",
                    "write e.g. {gt: 1000}",
                )
                return None
            v = value(node)
            return compare(label, get, "eq", v) if v is not None else None
        ops = self._ops(node, label, tuple(ORDER_OPS))
        if ops is None:
            return None
        return self._combine_ops(label, get, ops, value)

    def estimated_cost(self, node: Node) -> Condition | None:
        entries = self._ops(node, "estimated_cost", ("target", *ORDER_OPS))
        if entries is None:
            return None
        if "target" not in entries:
            self.r.error(
                node,
                "'estimated_cost' needs 'target' (whose prices to use)",
                "add target: <a target name>",
            )
            return None
        target = self.r.string(entries.pop("target"), "'estimated_cost.target'")
        if target is None:
            return None
        prices = self.vocab.prices.get(target)
        if prices is None:
            self.r.error(
                node,
                f"unknown target '{target}' in 'estimated_cost'",
                suggest(target, self.vocab.prices)
                + f" (or declare target '{target}' under targets:)",
            )
            return None
        if not entries:
            self.r.error(node, "'estimated_cost' has no comparison", "add e.g. gt: 0.01")
            return None
        expected_out = self.vocab.expected_completion_tokens

        def cost(f: Facts) -> float:
            out = f.max_tokens if f.max_tokens is not None else expected_out
            return prices.cost(f.prompt_tokens, out)

        def value(item: Node) -> float | None:
            return self.r.number(item, "'estimated_cost'", minimum=0.0)

        return self._combine_ops(f"estimated cost on {target}", cost, entries, value)

    def entities(self, node: Node) -> Condition | None:
        if not node.is_mapping:
            names = self._entity_names(node)
            return entities_check("any", names) if names is not None else None
        ops = self._ops(node, "entities", ("any", "all", "none"))
        if ops is None:
            return None
        parts = []
        for op, arg in ops.items():
            names = self._entity_names(arg)
            if names is None:
                return None
            parts.append(entities_check(op, names))
        return all_of(parts)

    def _entity_names(self, node: Node) -> frozenset[str] | None:
        names = self.r.names(node, "entities")
        if names is None:
            return None
        ok = True
        for name in names:
            if name not in self.vocab.entities:
                self.r.error(
                    node,
                    f"unknown entity '{name}'",
                    suggest(name, self.vocab.entities) + f" (or declare '{name}' under entities:)",
                )
                ok = False
        return frozenset(names) if ok else None

    def _scalar_or_list(
        self, node: Node, label: str, get: Callable[[Facts], Any], value: Callable[[Node], Any]
    ) -> Condition | None:
        if node.is_sequence:
            return self._one_op(label, get, "in", node, value)
        return self._one_op(label, get, "eq", node, value)

    def _one_op(
        self,
        label: str,
        get: Callable[[Facts], Any],
        op: str,
        arg: Node,
        value: Callable[[Node], Any],
    ) -> Condition | None:
        if op in ("in", "not_in"):
            items = self.r.sequence(arg, f"'{label}.{op}'")
            if items is None:
                return None
            values = [value(item) for item in items]
            if any(v is None for v in values):
                return None
            return compare(label, get, op, tuple(values))
        v = value(arg)
        return compare(label, get, op, v) if v is not None else None

    def _combine_ops(
        self,
        label: str,
        get: Callable[[Facts], Any],
        ops: dict[str, Node],
        value: Callable[[Node], Any],
    ) -> Condition | None:
        parts = [self._one_op(label, get, op, arg, value) for op, arg in ops.items()]
        if any(p is None for p in parts):
            return None
        return all_of([p for p in parts if p is not None])


__all__ = [
    "CONDITION_KEYS",
    "ENDPOINTS",
    "LEVEL_NAMES",
    "ConditionParser",
    "Vocabulary",
]
