"""Compiled conditions: closures over :class:`Facts` and the ways to combine them.

Each :class:`Condition` has two closures that agree: ``test`` answers whether
it holds (the per-request path; it builds no words), and ``check`` answers
``None`` when it holds, or a short sentence saying why it does not (the first
failing part), which is what the decision trace shows, built only when the
trace is read. Fixed words are built once, when the condition is built.
Evaluation is pure: facts in, answer out.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gateway.levels import Level
from gateway.policy.model import Facts

Check = Callable[[Facts], str | None]
Test = Callable[[Facts], bool]


@dataclass(frozen=True, slots=True)
class Condition:
    text: str
    #: ``None`` when the condition holds, else why not (for the trace)
    check: Check
    #: whether the condition holds; always ``check(facts) is None``, without the words
    test: Test
    #: true for an omitted or empty ``when`` (the rule always matches)
    always: bool = False


ALWAYS = Condition("always", lambda _facts: None, lambda _facts: True, always=True)

ORDER_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "lt": operator.lt,
    "lte": operator.le,
    "gt": operator.gt,
    "gte": operator.ge,
}
_OP_WORDS = {"eq": "=", "ne": "!=", "lt": "<", "lte": "<=", "gt": ">", "gte": ">="}


def show(value: Any) -> str:
    """``value`` as a trace shows it: levels by label, floats short, lists bracketed."""
    if type(value) is str:
        return value
    if isinstance(value, Level):
        return value.label
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list | tuple | frozenset):
        return "[" + ", ".join(show(v) for v in value) + "]"
    return str(value)


def all_of(parts: list[Condition]) -> Condition:
    """Holds when every part holds; the reason is the first failing part's."""
    if not parts:
        return ALWAYS
    if len(parts) == 1:
        return parts[0]
    checks = tuple(p.check for p in parts)
    tests = tuple(p.test for p in parts)

    def check(facts: Facts) -> str | None:
        for part in checks:
            why = part(facts)
            if why is not None:
                return why
        return None

    # a plain loop: all() over a generator costs a generator per request
    def test(facts: Facts) -> bool:
        for part in tests:  # noqa: SIM110
            if not part(facts):
                return False
        return True

    return Condition(" and ".join(p.text for p in parts), check, test)


def any_of(parts: list[Condition]) -> Condition:
    """Holds when some part holds; the reason lists every part's."""
    checks = tuple(p.check for p in parts)

    def check(facts: Facts) -> str | None:
        whys = []
        for part in checks:
            why = part(facts)
            if why is None:
                return None
            whys.append(why)
        return "none of: " + "; ".join(whys)

    tests = tuple(p.test for p in parts)

    def test(facts: Facts) -> bool:
        for part in tests:  # noqa: SIM110 (no generator per request)
            if part(facts):
                return True
        return False

    return Condition("any of (" + "; ".join(p.text for p in parts) + ")", check, test)


def negate(inner: Condition) -> Condition:
    """Holds when ``inner`` does not."""

    def check(facts: Facts) -> str | None:
        return f"{inner.text} holds" if inner.check(facts) is None else None

    inner_test = inner.test

    def test(facts: Facts) -> bool:
        return not inner_test(facts)

    return Condition(f"not ({inner.text})", check, test)


def compare(label: str, get: Callable[[Facts], Any], op: str, expected: Any) -> Condition:
    """``label`` (read by ``get``) against ``expected`` with ``op``: an order op, ``in``,
    ``not_in``, ``matches`` (a compiled pattern) or ``exists``.

    An unknown value fails every order op but ``ne``.
    """
    # the words are built once here, not per request
    shown = show(expected)
    text = f"{label} {_fmt_op(op)} {shown}"
    wanted = f"{_fmt_op(op)} {shown}"
    if op in ("in", "not_in"):
        members = frozenset(expected)
        want = op == "in"

        def check_in(facts: Facts) -> str | None:
            actual = get(facts)
            if (actual in members) is want:
                return None
            return f"{label} is {show(actual) if actual is not None else 'not set'}, not {wanted}"

        def test_in(facts: Facts) -> bool:
            return (get(facts) in members) is want

        return Condition(text, check_in, test_in)
    if op == "matches":
        pattern: re.Pattern[str] = expected

        def check_match(facts: Facts) -> str | None:
            actual = get(facts)
            if actual is not None and pattern.search(actual) is not None:
                return None
            shown = repr(actual) if actual is not None else "not set"
            return f"{label} {shown} does not match /{pattern.pattern}/"

        def test_match(facts: Facts) -> bool:
            actual = get(facts)
            return actual is not None and pattern.search(actual) is not None

        return Condition(f"{label} matches /{pattern.pattern}/", check_match, test_match)
    if op == "exists":
        want_exists = bool(expected)

        def check_exists(facts: Facts) -> str | None:
            if (get(facts) is not None) is want_exists:
                return None
            return f"{label} is {'not set' if want_exists else 'set'}"

        def test_exists(facts: Facts) -> bool:
            return (get(facts) is not None) is want_exists

        return Condition(
            f"{label} {'is set' if want_exists else 'is not set'}", check_exists, test_exists
        )
    fn = ORDER_OPS[op]

    def check_order(facts: Facts) -> str | None:
        actual = get(facts)
        if actual is None:
            return None if op == "ne" else f"{label} is not known"
        if fn(actual, expected):
            return None
        if op == "eq":
            return f"{label} is {show(actual)}, not {shown}"
        return f"{label} is {show(actual)}, not {wanted}"

    unknown_holds = op == "ne"

    def test_order(facts: Facts) -> bool:
        actual = get(facts)
        if actual is None:
            return unknown_holds
        return fn(actual, expected)

    return Condition(text, check_order, test_order)


def _fmt_op(op: str) -> str:
    return _OP_WORDS.get(op, op.replace("_", " "))


def entities_check(op: str, names: frozenset[str]) -> Condition:
    """``any``, ``all`` or ``none`` of ``names`` among the entities found."""
    shown = show(sorted(names))

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
            return f"entities {show(sorted(hit))} were found"
        return f"entities found {show(sorted(found))}, not {op} of {shown}"

    test: Test
    if op == "any":
        test = lambda facts: not names.isdisjoint(facts.sensitivity.entities)  # noqa: E731
    elif op == "all":
        test = lambda facts: names.issubset(facts.sensitivity.entities)  # noqa: E731
    elif op == "none":
        test = lambda facts: names.isdisjoint(facts.sensitivity.entities)  # noqa: E731
    else:
        raise ValueError(f"unknown entities operator {op!r}")
    return Condition(f"entities {op} of {shown}", check, test)
