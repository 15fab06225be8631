"""``when:`` conditions: parsed and checked at load, compiled to closures over :class:`Facts`.

A mapping of conditions means *all of them*; ``all``, ``any`` and ``not``
combine. Each compiled :class:`Condition` answers ``None`` when it holds, or
a short sentence saying why it does not (the first failing part), which is
what the decision trace shows. Evaluation is pure: facts in, answer out.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from gateway.levels import LEVEL_NAMES, Level
from gateway.policy.model import Facts
from gateway.policy.problems import suggest
from gateway.policy.read import Reader, describe
from gateway.policy.source import Node
from gateway.targets import Prices

Check = Callable[[Facts], str | None]

ENDPOINTS = ("chat", "completions", "embeddings")


@dataclass(frozen=True, slots=True)
class Condition:
    text: str
    check: Check
    #: true for an omitted or empty ``when`` (the rule always matches)
    always: bool = False


ALWAYS = Condition("always", lambda _facts: None, always=True)


@dataclass(frozen=True, slots=True)
class Vocabulary:
    """The names a condition may refer to, and what estimated costs need."""

    tasks: frozenset[str]
    entities: frozenset[str]
    aliases: frozenset[str]
    prices: Mapping[str, Prices]
    expected_completion_tokens: int


_ORDER_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "lt": operator.lt,
    "lte": operator.le,
    "gt": operator.gt,
    "gte": operator.ge,
}
_OP_WORDS = {"eq": "=", "ne": "!=", "lt": "<", "lte": "<=", "gt": ">", "gte": ">="}
_STRING_OPS = ("eq", "ne", "in", "not_in", "matches", "exists")
_LEVEL_OPS = (*_ORDER_OPS, "in", "not_in")

_STRING_FIELDS: dict[str, Callable[[Facts], str | None]] = {
    "task": lambda f: f.task,
    "model": lambda f: f.alias,
    "endpoint": lambda f: f.endpoint,
    "key": lambda f: f.key_id,
    "team": lambda f: f.team,
}
_NUMBER_FIELDS: dict[str, Callable[[Facts], float | None]] = {
    "prompt_tokens": lambda f: f.prompt_tokens,
    "budget_remaining_usd": lambda f: f.budget_remaining_usd,
    "budget_used": lambda f: f.budget_used_fraction,
}
_BOOL_FIELDS: dict[str, Callable[[Facts], bool]] = {
    "stream": lambda f: f.stream,
    "tools": lambda f: f.has_tools,
}
_COMBINATORS = ("all", "any", "not")
CONDITION_KEYS = (
    "sensitivity",
    "entities",
    "estimated_cost",
    *_STRING_FIELDS,
    *_NUMBER_FIELDS,
    *_BOOL_FIELDS,
    *_COMBINATORS,
    "metadata.<name>",
    "header.<name>",
)


def _fmt(value: Any) -> str:
    if type(value) is str:
        return value
    if isinstance(value, Level):
        return value.label
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list | tuple | frozenset):
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    return str(value)


def _all(parts: list[Condition]) -> Condition:
    if not parts:
        return ALWAYS
    if len(parts) == 1:
        return parts[0]
    checks = tuple(p.check for p in parts)

    def check(facts: Facts) -> str | None:
        for part in checks:
            why = part(facts)
            if why is not None:
                return why
        return None

    return Condition(" and ".join(p.text for p in parts), check)


def _any(parts: list[Condition]) -> Condition:
    checks = tuple(p.check for p in parts)

    def check(facts: Facts) -> str | None:
        whys = []
        for part in checks:
            why = part(facts)
            if why is None:
                return None
            whys.append(why)
        return "none of: " + "; ".join(whys)

    return Condition("any of (" + "; ".join(p.text for p in parts) + ")", check)


def _not(inner: Condition) -> Condition:
    def check(facts: Facts) -> str | None:
        return f"{inner.text} holds" if inner.check(facts) is None else None

    return Condition(f"not ({inner.text})", check)


def _compare(label: str, get: Callable[[Facts], Any], op: str, expected: Any) -> Condition:
    # the words are built once here, not per request
    shown = _fmt(expected)
    text = f"{label} {_fmt_op(op)} {shown}"
    wanted = f"{_fmt_op(op)} {shown}"
    if op in ("in", "not_in"):
        members = frozenset(expected)
        want = op == "in"

        def check_in(facts: Facts) -> str | None:
            actual = get(facts)
            if (actual in members) is want:
                return None
            return f"{label} is {_fmt(actual) if actual is not None else 'not set'}, not {wanted}"

        return Condition(text, check_in)
    if op == "matches":
        pattern: re.Pattern[str] = expected

        def check_match(facts: Facts) -> str | None:
            actual = get(facts)
            if actual is not None and pattern.search(actual) is not None:
                return None
            shown = repr(actual) if actual is not None else "not set"
            return f"{label} {shown} does not match /{pattern.pattern}/"

        return Condition(f"{label} matches /{pattern.pattern}/", check_match)
    if op == "exists":
        want_exists = bool(expected)

        def check_exists(facts: Facts) -> str | None:
            if (get(facts) is not None) is want_exists:
                return None
            return f"{label} is {'not set' if want_exists else 'set'}"

        return Condition(f"{label} {'is set' if want_exists else 'is not set'}", check_exists)
    fn = _ORDER_OPS[op]

    def check_order(facts: Facts) -> str | None:
        actual = get(facts)
        if actual is None:
            return None if op == "ne" else f"{label} is not known"
        if fn(actual, expected):
            return None
        if op == "eq":
            return f"{label} is {_fmt(actual)}, not {shown}"
        return f"{label} is {_fmt(actual)}, not {wanted}"

    return Condition(text, check_order)


def _fmt_op(op: str) -> str:
    return _OP_WORDS.get(op, op.replace("_", " "))


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
        return _all(parts) if ok else None

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
            return _all(conds) if key == "all" else _any(conds)
        if key == "not":
            inner = self.parse(node)
            return _not(inner) if inner is not None else None
        if key == "sensitivity":
            return self.level_field(node)
        if key == "entities":
            return self.entities(node)
        if key == "estimated_cost":
            return self.estimated_cost(node)
        if key in _STRING_FIELDS:
            return self.string_field(key, _STRING_FIELDS[key], node)
        if key in _NUMBER_FIELDS:
            return self.number_field(key, _NUMBER_FIELDS[key], node)
        if key in _BOOL_FIELDS:
            value = self.r.boolean(node, f"'{key}'")
            if value is None:
                return None
            get = _BOOL_FIELDS[key]
            return _compare(key, get, "eq", value)
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
        get: Callable[[Facts], Level] = lambda f: f.sensitivity.level  # noqa: E731
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
                part = _compare(label, get, "exists", flag) if flag is not None else None
            else:
                part = self._one_op(label, get, op, arg, value)
            ok = ok and part is not None
            if part is not None:
                parts.append(part)
        return _all(parts) if ok else None

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
        return _compare(label, get, "matches", pattern)

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
        maximum = 1.0 if label == "budget_used" else None

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
            return _compare(label, get, "eq", v) if v is not None else None
        ops = self._ops(node, label, tuple(_ORDER_OPS))
        if ops is None:
            return None
        return self._combine_ops(label, get, ops, value)

    def estimated_cost(self, node: Node) -> Condition | None:
        entries = self._ops(node, "estimated_cost", ("target", *_ORDER_OPS))
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
            return self._entity_op("any", names) if names is not None else None
        ops = self._ops(node, "entities", ("any", "all", "none"))
        if ops is None:
            return None
        parts = []
        for op, arg in ops.items():
            names = self._entity_names(arg)
            if names is None:
                return None
            parts.append(self._entity_op(op, names))
        return _all(parts)

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

    @staticmethod
    def _entity_op(op: str, names: frozenset[str]) -> Condition:
        shown = _fmt(sorted(names))

        def check(facts: Facts) -> str | None:
            found = set(facts.sensitivity.entities)
            hit = names & found
            if op == "any" and hit:
                return None
            if op == "all" and hit == names:
                return None
            if op == "none" and not hit:
                return None
            if op == "none":
                return f"entities {_fmt(sorted(hit))} were found"
            return f"entities found {_fmt(sorted(found))}, not {op} of {shown}"

        return Condition(f"entities {op} of {shown}", check)

    # --- shared shapes ---------------------------------------------------------

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
            return _compare(label, get, op, tuple(values))
        v = value(arg)
        return _compare(label, get, op, v) if v is not None else None

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
        return _all([p for p in parts if p is not None])


__all__ = [
    "ALWAYS",
    "CONDITION_KEYS",
    "ENDPOINTS",
    "LEVEL_NAMES",
    "Condition",
    "ConditionParser",
    "Vocabulary",
]
