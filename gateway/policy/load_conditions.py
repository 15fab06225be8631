"""Conditions over one target's live load: ``load: {local: {gt: 0.8}}``.

``{<condition>: {<target>: <number or comparison>}}``; every named target's
reading must hold. The readings are the :class:`~gateway.targets.TargetLoad`
fields of ``Facts.load`` (``ttfb_ms``: the router's moving average of time to
first byte, ``Facts.target_latency_ms``). An unknown reading (not tracked, not
read, stale) fails every comparison but ``ne``, as any unknown number does.
"""

from __future__ import annotations

from collections.abc import Callable
from operator import attrgetter
from typing import TYPE_CHECKING

from gateway.policy.model import Facts
from gateway.policy.predicates import ORDER_OPS, Condition, all_of, compare
from gateway.policy.problems import suggest
from gateway.policy.source import Node

if TYPE_CHECKING:
    from gateway.policy.conditions import ConditionParser

#: condition -> the TargetLoad field it reads
LOAD_FIELDS: dict[str, str] = {
    "load": "utilisation",
    "in_flight": "in_flight",
    "shared_in_flight": "shared_in_flight",
    "queue_depth": "queue_depth",
    "queue_wait_ms": "queue_wait_ms",
    "server_running": "server_running",
    "server_waiting": "server_waiting",
    "kv_cache_usage": "kv_cache_usage",
}
LOAD_KEYS = (*LOAD_FIELDS, "ttfb_ms")
#: readings that are fractions (0..1)
_FRACTIONS = ("load", "kv_cache_usage")


def load_condition(parser: ConditionParser, key: str, node: Node) -> Condition | None:
    """The condition of ``{key: {<target>: ...}}`` (``None`` after recording problems)."""
    r = parser.r
    example = f"write e.g. {key}: {{local: {{gt: {0.8 if key in _FRACTIONS else 10}}}}}"
    targets = r.named_mapping(node, f"condition '{key}'") if node.is_mapping else None
    if not targets:
        r.error(node, f"condition '{key}' names the target(s) whose load it reads", example)
        return None
    maximum = 1.0 if key in _FRACTIONS else None
    parts: list[Condition] = []
    for name, comparison in targets.items():
        if name not in parser.vocab.prices:
            r.error(
                node,
                f"unknown target '{name}' in '{key}'",
                suggest(name, parser.vocab.prices)
                + f" (or declare target '{name}' under targets:)",
            )
            return None
        get = _reader(key, name)
        label = f"{key} of {name}"

        def value(item: Node, what: str = f"'{key}.{name}'") -> float | None:
            return r.number(item, what, minimum=0.0, maximum=maximum)

        if not comparison.is_mapping:
            number = value(comparison)
            if number is None:
                return None
            parts.append(compare(label, get, "eq", number))
            continue
        ops = parser._ops(comparison, label, tuple(ORDER_OPS))
        part = parser._combine_ops(label, get, ops, value) if ops is not None else None
        if part is None:
            return None
        parts.append(part)
    return all_of(parts)


def _reader(key: str, target: str) -> Callable[[Facts], float | None]:
    """Reads one target's reading from the facts (``None``: unknown)."""
    if key == "ttfb_ms":

        def ttfb(f: Facts) -> float | None:
            return f.target_latency_ms.get(target)

        return ttfb
    reading = attrgetter(LOAD_FIELDS[key])

    def get(f: Facts) -> float | None:
        load = f.load.get(target)
        return None if load is None else reading(load)

    return get
