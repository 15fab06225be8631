"""The seam between the policy and the router: facts in, a decision out.

``decide(facts) -> Decision`` is pure: no I/O, no clock, no randomness that is
not seeded by the facts. The router (:mod:`gateway.upstream.router`) executes the
decision: limits, cache, targets in order, fallbacks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import NamedTuple

from gateway.judging.facts import EMPTY, EMPTY_FLOATS, EMPTY_LOAD, Facts, Sensitivity
from gateway.levels import Level

__all__ = ["EMPTY", "EMPTY_FLOATS", "EMPTY_LOAD", "Facts", "Sensitivity"]


class Action(StrEnum):
    ROUTE = "route"
    DENY = "deny"


class CacheMode(StrEnum):
    #: cache deterministic requests (temperature 0, or a seed) only
    AUTO = "auto"
    #: cache every request, deterministic or not
    ALWAYS = "always"
    NEVER = "never"


@dataclass(frozen=True, slots=True)
class RedactSpec:
    """Replace these entity types by numbered placeholders (``[EMAIL_1]``)."""

    entities: frozenset[str]
    #: put the original values back into the answer (streaming included)
    restore: bool = False


@dataclass(frozen=True, slots=True)
class CacheSpec:
    mode: CacheMode = CacheMode.AUTO
    ttl_s: float = 3600.0
    #: share entries across teams (default: scoped per team)
    shared: bool = False


@dataclass(frozen=True, slots=True)
class RuleLimits:
    rpm: int | None = None
    tpm: int | None = None
    max_streams: int | None = None


class TraceStep(NamedTuple):
    """One rule considered by ``decide`` (built only when a trace is read)."""

    rule: str
    matched: bool
    why: str


#: the cache spec of a decision that names none (one instance, shared)
_DEFAULT_CACHE = CacheSpec()


@dataclass(frozen=True, init=False)
class Decision:
    rule: str
    action: Action
    #: eligible targets in the order to try them; every one may receive the
    #: data at ``level`` (the level of what leaves, after any redaction)
    targets: tuple[str, ...] = ()
    #: the level of the data that will be sent (after redaction)
    level: Level = Level.PUBLIC
    #: targets the rule named but the data's sensitivity excluded
    excluded: tuple[str, ...] = ()
    deny_message: str | None = None
    redact: RedactSpec | None = None
    cache: CacheSpec = _DEFAULT_CACHE
    limits: RuleLimits | None = None
    baseline: str | None = None
    #: estimated cost in USD per eligible target
    estimated_cost_usd: Mapping[str, float] = field(default_factory=lambda: EMPTY_FLOATS)
    #: what the request may cost at most on any of its targets (prompt plus
    #: ``max_tokens``, or each target's output limit): what its budget
    #: reservation covers
    reserve_usd: float = 0.0
    #: the rule steps down instead of refusing a team past its budget
    #: (``over_budget: step_down``); True also when it did
    soft_cap: bool = False
    #: the rule's targets were replaced by cheaper ones the remaining budget covers
    stepped_down: bool = False
    #: the rules considered, in order (``decide`` gives a
    #: :class:`~gateway.policy.trace.Trace`, which builds its steps when read)
    trace: Sequence[TraceStep] = ()
    #: the rule's strategy is ``spill``: a target at capacity is passed over for
    #: the next one at once instead of queueing (the router queues only on the last)
    spill: bool = False
    #: for ``spill``: the target first in the rule's order that the load facts
    #: found saturated and moved back (None: no spill was decided)
    spilled_from: str | None = None

    # Written by hand, with the fields' names and defaults (a test holds it to them):
    # the __init__ a frozen dataclass generates sets each field through
    # object.__setattr__, ~40% of ``decide``'s time (one decision is built per
    # request); stores into the instance dict are ~4x cheaper.
    def __init__(
        self,
        rule: str,
        action: Action,
        targets: tuple[str, ...] = (),
        level: Level = Level.PUBLIC,
        excluded: tuple[str, ...] = (),
        deny_message: str | None = None,
        redact: RedactSpec | None = None,
        cache: CacheSpec = _DEFAULT_CACHE,
        limits: RuleLimits | None = None,
        baseline: str | None = None,
        estimated_cost_usd: Mapping[str, float] = EMPTY_FLOATS,
        reserve_usd: float = 0.0,
        soft_cap: bool = False,
        stepped_down: bool = False,
        trace: Sequence[TraceStep] = (),
        spill: bool = False,
        spilled_from: str | None = None,
    ) -> None:
        values = self.__dict__
        values["rule"] = rule
        values["action"] = action
        values["targets"] = targets
        values["level"] = level
        values["excluded"] = excluded
        values["deny_message"] = deny_message
        values["redact"] = redact
        values["cache"] = cache
        values["limits"] = limits
        values["baseline"] = baseline
        values["estimated_cost_usd"] = estimated_cost_usd
        values["reserve_usd"] = reserve_usd
        values["soft_cap"] = soft_cap
        values["stepped_down"] = stepped_down
        values["trace"] = trace
        values["spill"] = spill
        values["spilled_from"] = spilled_from
