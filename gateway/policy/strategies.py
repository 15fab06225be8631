"""Orderings of a rule's eligible targets.

Every strategy is a pure function of the targets, the request's facts and the
estimated costs; ties keep the declared order. Targets that are unavailable
(no API key, ...) always go last: the router skips them and says why.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import StrEnum

from gateway.policy.model import Facts
from gateway.targets import Target


class Strategy(StrEnum):
    #: the declared order: first is preferred, the rest are fallbacks
    ORDERED = "ordered"
    #: lowest estimated cost for this request first
    CHEAPEST = "cheapest"
    #: the first target drawn by weight (``facts.draw``), the rest by weight, heaviest first
    WEIGHTED = "weighted"
    #: lowest observed p50 latency first; targets with no observation after, in declared order
    LOWEST_LATENCY = "lowest-latency"
    #: the declared order, but targets the load facts say are saturated go after
    #: the others (each group in declared order); the router passes a target found
    #: full for the next one instead of queueing, and queues only on the last
    SPILL = "spill"


def order(
    strategy: Strategy,
    targets: Sequence[Target],
    facts: Facts,
    costs: Mapping[str, float],
) -> list[Target]:
    ranked = list(targets)
    if strategy is Strategy.CHEAPEST:
        ranked.sort(key=lambda t: costs.get(t.name, 0.0))
    elif strategy is Strategy.WEIGHTED:
        ranked = _weighted(ranked, facts.draw)
    elif strategy is Strategy.LOWEST_LATENCY:
        latency = facts.target_latency_ms
        known = sorted((t for t in ranked if t.name in latency), key=lambda t: latency[t.name])
        ranked = known + [t for t in ranked if t.name not in latency]
    elif strategy is Strategy.SPILL:
        ranked = _spill(ranked, facts)
    return available_first(ranked)


def _spill(targets: list[Target], facts: Facts) -> list[Target]:
    load = facts.load
    if not load:
        return targets
    full = [t for t in targets if (seen := load.get(t.name)) is not None and seen.saturated]
    if not full:
        return targets
    return [t for t in targets if t not in full] + full


def available_first(targets: Sequence[Target]) -> list[Target]:
    """``targets`` with the unavailable ones moved last, otherwise in their order.

    This is the whole of ``ordered``, which needs no facts: its order is known at load.
    """
    available = [t for t in targets if t.unavailable_reason is None]
    return available + [t for t in targets if t.unavailable_reason is not None]


def _weighted(targets: list[Target], draw: float) -> list[Target]:
    pool = [t for t in targets if t.unavailable_reason is None] or targets
    total = sum(t.weight for t in pool)
    if total <= 0 or not pool:
        return targets
    point = min(max(draw, 0.0), 0.999999999) * total
    chosen = pool[-1]
    for target in pool:
        point -= target.weight
        if point < 0:
            chosen = target
            break
    rest = sorted((t for t in targets if t is not chosen), key=lambda t: -t.weight)
    return [chosen, *rest]
