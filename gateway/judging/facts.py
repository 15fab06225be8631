"""What judging tells the policy about one request: its :class:`Facts`.

Judging (this package) produces them; the policy (:mod:`gateway.policy`)
decides on them and never computes them. The policy's side of the seam that
judging needs, how entity types map to levels, is :class:`SensitivityRules`,
which a compiled policy implements.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Protocol

from gateway.levels import Level
from gateway.targets import TargetLoad

EMPTY: Mapping[str, str] = MappingProxyType({})
EMPTY_FLOATS: Mapping[str, float] = MappingProxyType({})
EMPTY_LOAD: Mapping[str, TargetLoad] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Sensitivity:
    level: Level
    #: distinct entity types found, sorted (names only, never values)
    entities: tuple[str, ...] = ()
    #: how many findings of each type, sorted by type (counts only, never
    #: values; a text repeated verbatim in the body counts once); empty when
    #: the detectors did not run to the end
    counts: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True, slots=True)
class Facts:
    """Everything a policy may decide on, computed once per request."""

    endpoint: str  # "chat" | "completions" | "embeddings"
    alias: str  # the ``model`` the client asked for
    sensitivity: Sensitivity
    task: str
    prompt_tokens: int
    stream: bool = False
    has_tools: bool = False
    max_tokens: int | None = None
    key_id: str | None = None
    team: str | None = None
    metadata: Mapping[str, str] = field(default_factory=lambda: EMPTY)
    #: request headers, lower-cased names
    headers: Mapping[str, str] = field(default_factory=lambda: EMPTY)
    budget_usd: float | None = None
    budget_remaining_usd: float | None = None
    #: observed p50 latency per target in ms, for the ``lowest-latency`` strategy
    target_latency_ms: Mapping[str, float] = field(default_factory=lambda: EMPTY_FLOATS)
    #: a stable number in [0, 1) derived from the request (e.g. its id), for ``weighted``
    draw: float = 0.0
    #: entity type -> level, before redaction (so a redacting rule can compute the
    #: level of the data that actually leaves)
    entity_levels: Mapping[str, Level] = field(default_factory=dict)
    #: the level the client declared with ``x-data-classification``, if any
    declared_level: Level | None = None
    #: live load per target (a snapshot: targets with a capacity or a metrics_url);
    #: a target missing here, or a field that is None, is unknown
    load: Mapping[str, TargetLoad] = field(default_factory=lambda: EMPTY_LOAD)
    #: how sure the task classifier is of ``task``, 0..1 (1.0 when the client
    #: named the task with ``x-gateway-task``)
    task_confidence: float = 1.0

    @property
    def budget_used_fraction(self) -> float | None:
        if self.budget_usd is None or self.budget_remaining_usd is None or self.budget_usd <= 0:
            return None
        return max(0.0, 1.0 - self.budget_remaining_usd / self.budget_usd)


class SensitivityRules(Protocol):
    """How a policy turns the entity types found into a level."""

    @property
    def custom_entities(self) -> Mapping[str, str]:
        """The policy's own entity types: name -> regular expression."""
        ...

    def entity_level(self, entity: str) -> Level:
        """The level of one entity type (unknown types: restricted)."""
        ...

    def sensitivity(
        self,
        entities: Iterable[str],
        declared: Level | None,
        team: str | None,
        key_id: str | None = None,
    ) -> Sensitivity:
        """The request's sensitivity from the entities found and the declared level."""
        ...
