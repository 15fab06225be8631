"""Shared-state interfaces: one per concern, each with a Redis and an in-memory
implementation that pass the same contract tests.

Every method may be slow or fail when the backend is Redis; implementations
bound each call with a tight timeout and raise :class:`StateUnavailable` on any
backend failure so that callers can apply the configured fail mode. Corrupt or
wrongly-typed data under a key is treated as absent (and logged), never raised.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol


class StateUnavailable(Exception):
    """The shared-state backend did not answer in time or failed."""


# --- response cache ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CachedResponse:
    """A complete answer, stored once it finished.

    ``chunks`` holds the stream event payloads of a streamed answer (replayed
    as a stream on a hit); ``body`` holds a whole JSON answer. ``level`` is the
    sensitivity level of the request data that produced it and ``target`` the
    target that answered: a hit is served only where that target could receive
    the requester's data.
    """

    target: str
    level: int
    body: bytes | None = None
    chunks: tuple[bytes, ...] = ()
    prompt_tokens: int = 0
    completion_tokens: int = 0
    created_at: float = 0.0


class ResponseCache(Protocol):
    async def get(self, key: str) -> CachedResponse | None: ...

    async def set(self, key: str, entry: CachedResponse, ttl_s: float) -> None: ...


# --- keys and teams ----------------------------------------------------------


class Period(StrEnum):
    DAY = "day"
    MONTH = "month"


@dataclass(frozen=True, slots=True)
class KeyLimits:
    rpm: int | None = None
    tpm: int | None = None
    max_streams: int | None = None


@dataclass(frozen=True, slots=True)
class Budget:
    usd: float
    period: Period = Period.MONTH


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """What the gateway knows of an API key. Never holds the key itself."""

    key_id: str
    team: str
    limits: KeyLimits = KeyLimits()
    budget: Budget | None = None
    #: name of the policy this key's team uses, if not the default
    policy: str | None = None
    created_at: float = 0.0
    #: when the key stops working (epoch seconds); None: never
    expires_at: float | None = None
    #: when the key was revoked; a revoked key never authenticates again
    revoked_at: float | None = None
    #: a note for people (who holds the key, what for)
    name: str | None = None

    def usable(self, now: float) -> bool:
        """Neither revoked nor expired at ``now``."""
        return self.revoked_at is None and (self.expires_at is None or now < self.expires_at)


@dataclass(frozen=True, slots=True)
class TeamRecord:
    team: str
    limits: KeyLimits = KeyLimits()
    budget: Budget | None = None
    policy: str | None = None


class KeyStore(Protocol):
    async def create_key(
        self,
        team: str,
        *,
        limits: KeyLimits = KeyLimits(),
        budget: Budget | None = None,
        policy: str | None = None,
        expires_at: float | None = None,
        name: str | None = None,
    ) -> tuple[str, KeyRecord]:
        """Make a new key; returns the plaintext (shown once) and its record.
        Only a hash of the key is stored."""
        ...

    async def authenticate(self, presented: str) -> KeyRecord | None:
        """The record for a presented key, compared in constant time; None if
        unknown, revoked or expired."""
        ...

    async def list_keys(self) -> list[KeyRecord]:
        """Every key's record, revoked and expired ones too, oldest first."""
        ...

    async def update_key(self, record: KeyRecord) -> bool:
        """Replace the record of the key ``record.key_id``; False when there is none."""
        ...

    async def has_keys(self) -> bool: ...

    def key_pages(self, size: int = 500) -> AsyncIterator[list[KeyRecord]]:
        """Every key's record (revoked and expired too), a page of about
        ``size`` at a time, in no order: for counting without one large read."""
        ...

    async def set_team(self, record: TeamRecord) -> None: ...

    async def get_team(self, team: str) -> TeamRecord | None: ...

    async def list_teams(self) -> list[TeamRecord]: ...


# --- rate limits ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LimitDecision:
    allowed: bool
    #: which limit refused (``rpm`` | ``tpm`` | ``streams``), when refused
    limit: str | None = None
    retry_after_s: float = 0.0
    #: for ``x-ratelimit-*`` headers
    limit_requests: int | None = None
    remaining_requests: int | None = None
    reset_requests_s: float | None = None
    limit_tokens: int | None = None
    remaining_tokens: int | None = None
    reset_tokens_s: float | None = None


@dataclass(frozen=True, slots=True)
class Grant:
    """What one :meth:`RateLimiter.lease` counted.

    ``decision`` is the verdict for the asking request; its ``x-ratelimit-*``
    figures count the asking request and not the extra units, which the
    caller holds and may still use. ``requests`` and ``tokens`` are the units
    counted beyond the asking request for the caller to admit locally later
    (0 when it asked for none, or when no limit applies to them), all in rate
    window ``window``.
    """

    decision: LimitDecision
    window: int = 0
    requests: int = 0
    tokens: int = 0


class RateLimiter(Protocol):
    async def lease(
        self,
        scope: str,
        limits: KeyLimits,
        tokens: int,
        *,
        requests: int = 1,
        want_requests: int = 0,
        want_tokens: int = 0,
    ) -> Grant:
        """Count ``requests`` (1, or 0 for a top-up) of ``tokens`` estimated
        tokens against ``scope`` (e.g. ``key:<id>``) atomically, refusing
        without counting anything when a limit would be passed. When admitted,
        also count up to ``want_requests`` and ``want_tokens`` more, each at
        most :data:`~gateway.state.window.LEASE_SHARE` of what is left under
        its limit after the request, and report them in the grant."""
        ...

    async def adjust(self, scope: str, window: int, requests: int, tokens: int) -> None:
        """Add ``requests`` and ``tokens`` (negative: give back) to what
        ``scope`` counted in rate window ``window``; counts never go below zero."""
        ...

    async def open_stream(self, scope: str, max_streams: int) -> bool:
        """Take one of ``max_streams`` concurrent stream slots; False if none left."""
        ...

    async def close_stream(self, scope: str) -> None: ...

    async def count_streams(self, scope: str) -> int:
        """How many of ``scope``'s slots are taken now (expired ones not counted)."""
        ...


# --- spend and budgets -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SpendRecord:
    key_id: str
    team: str
    target: str
    cost_usd: float
    baseline_usd: float
    prompt_tokens: int
    completion_tokens: int


@dataclass(frozen=True, slots=True)
class SpendReport:
    period: Period
    period_start: str
    by_team: dict[str, float] = field(default_factory=dict)
    by_key: dict[str, float] = field(default_factory=dict)
    by_target: dict[str, float] = field(default_factory=dict)
    baseline_by_team: dict[str, float] = field(default_factory=dict)
    tokens_by_team: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        """The report as JSON-ready data, with savings against the baseline per team."""
        return {
            "period": self.period.value,
            "period_start": self.period_start,
            "by_team": self.by_team,
            "by_key": self.by_key,
            "by_target": self.by_target,
            "baseline_by_team": self.baseline_by_team,
            "savings_by_team": {
                team: max(0.0, self.baseline_by_team.get(team, 0.0) - cost)
                for team, cost in self.by_team.items()
            },
            "tokens_by_team": self.tokens_by_team,
        }


@dataclass(frozen=True, slots=True)
class Reservation:
    """What :meth:`SpendLedger.reserve` set aside beyond the request's estimate."""

    extra_usd: float = 0.0


@dataclass(slots=True)
class SpendBatch:
    """The spend of many requests of one team, summed: what one
    :meth:`SpendLedger.record_batch` adds to the team's period hashes."""

    team: str
    #: when the requests finished (picks the day and month they count in)
    at: float
    #: field -> integer increment (see :func:`gateway.state.money.spend_increments`)
    increments: dict[str, int] = field(default_factory=dict)
    #: reservations these requests held, now released (micro-dollars)
    release_micros: int = 0


class SpendLedger(Protocol):
    async def record(self, spend: SpendRecord, reserved_usd: float = 0.0) -> None:
        """Add actual spend (atomic, all periods at once), releasing the
        ``reserved_usd`` that :meth:`reserve` set aside for this request."""
        ...

    async def team_spend(self, team: str, period: Period) -> float: ...

    async def record_batch(self, batch: SpendBatch) -> None:
        """:meth:`record` for many requests of one team at once (one atomic update)."""
        ...

    async def reserve(
        self, team: str, budget: Budget, estimate_usd: float, want_usd: float = 0.0
    ) -> Reservation | None:
        """Atomically set aside ``estimate_usd`` of ``team``'s budget for one
        request, plus up to ``want_usd`` more (at most
        :data:`~gateway.state.window.LEASE_SHARE` of what is left after the
        request) for the caller to hand out later; None (nothing set aside)
        when spend plus reservations would pass the budget. Everything set
        aside must later be released, by :meth:`record` or :meth:`release`,
        so that concurrent requests on many replicas never overspend by more
        than one request's cost."""
        ...

    async def release(self, team: str, budget: Budget, reserved_usd: float) -> None:
        """Give back a reservation whose request produced no spend."""
        ...

    async def report(self, period: Period) -> SpendReport: ...
