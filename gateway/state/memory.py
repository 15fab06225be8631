"""In-memory state: the embedded default of a single gateway process.

Behaves like the Redis backend (same key names, same stored forms, same
arithmetic) so that one contract test suite covers both. Every operation runs
to completion without awaiting, so on one event loop each is atomic: no locks
are needed and concurrent coroutines can never interleave inside a check and
its update. Not thread-safe: use it from the event loop that owns it.

Nothing here can be unavailable; :class:`StateUnavailable` is never raised.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Callable
from typing import TypeVar

from gateway.state import kv_names, money
from gateway.state.api_keys import (
    NO_LIMITS,
    decode_key_record,
    decode_team_record,
    encode_key_record,
    encode_team_record,
    hash_key,
    hashes_match,
    new_key,
    new_record,
    plausible_key,
)
from gateway.state.base import (
    Budget,
    CachedResponse,
    Grant,
    KeyLimits,
    KeyRecord,
    LimitDecision,
    Period,
    Reservation,
    SpendBatch,
    SpendRecord,
    SpendReport,
    TeamRecord,
)
from gateway.state.cache_codec import decode, encode
from gateway.state.window import (
    DEFAULT_STREAM_TTL_S,
    RATE_WINDOW_TTL_S,
    WindowCounts,
    decide,
    estimate,
    extra,
    fits,
    window_of,
)

logger = logging.getLogger("gateway.state")

T = TypeVar("T")

#: teams whose spend key names are kept for the day (see MemorySpendLedger)
_MAX_CACHED_TEAMS = 1024


class MemoryKV:
    """A small key-value store with clock-driven expiry, standing in for Redis.

    Values are Python objects; each store checks the type it expects and
    treats anything else as absent. When more than ``max_entries`` keys are
    held, expired ones are swept, then the oldest keys that have an expiry
    (cache entries, rate windows) are evicted: records without expiry (keys,
    teams, spend) are never evicted.
    """

    def __init__(self, clock: Callable[[], float], max_entries: int = 100_000) -> None:
        self._clock = clock
        self._max_entries = max_entries
        self._data: dict[str, tuple[object, float | None]] = {}

    def get(self, name: str) -> object | None:
        item = self._data.get(name)
        if item is None:
            return None
        value, expires_at = item
        if expires_at is not None and expires_at <= self._clock():
            del self._data[name]
            return None
        return value

    def put(self, name: str, value: object, ttl_s: float | None = None) -> None:
        expires_at = None if ttl_s is None else self._clock() + ttl_s
        self._data.pop(name, None)  # re-inserting moves the key to the newest end
        self._data[name] = (value, expires_at)
        if len(self._data) > self._max_entries:
            self._shrink()

    def delete(self, name: str) -> None:
        self._data.pop(name, None)

    def typed(self, name: str, kind: type[T]) -> T | None:
        """The value under ``name`` if it is a ``kind``; otherwise None (logged)."""
        value = self.get(name)
        if value is None or isinstance(value, kind):
            return value
        logger.warning("wrong type %s at %s treated as missing", type(value).__name__, name)
        return None

    def _shrink(self) -> None:
        now = self._clock()
        for name in [n for n, (_, exp) in self._data.items() if exp is not None and exp <= now]:
            del self._data[name]
        excess = len(self._data) - int(self._max_entries * 0.9)
        if excess <= 0:
            return
        evictable = [n for n, (_, exp) in self._data.items() if exp is not None][:excess]
        for name in evictable:
            del self._data[name]


class MemoryResponseCache:
    def __init__(self, kv: MemoryKV) -> None:
        self._kv = kv

    async def get(self, key: str) -> CachedResponse | None:
        name = kv_names.cache(key)
        raw = self._kv.typed(name, bytes)
        return None if raw is None else decode(raw, where=name)

    async def set(self, key: str, entry: CachedResponse, ttl_s: float) -> None:
        if ttl_s > 0:
            self._kv.put(kv_names.cache(key), encode(entry), ttl_s)


class MemoryKeyStore:
    def __init__(self, kv: MemoryKV, clock: Callable[[], float]) -> None:
        self._kv = kv
        self._clock = clock

    async def create_key(
        self,
        team: str,
        *,
        limits: KeyLimits = NO_LIMITS,
        budget: Budget | None = None,
        policy: str | None = None,
        expires_at: float | None = None,
        name: str | None = None,
    ) -> tuple[str, KeyRecord]:
        plaintext = new_key()
        key_hash = hash_key(plaintext)
        record = new_record(
            key_hash,
            team,
            limits=limits,
            budget=budget,
            policy=policy,
            now=self._clock(),
            expires_at=expires_at,
            name=name,
        )
        self._kv.put(kv_names.key_record(key_hash), encode_key_record(key_hash, record))
        self._kv.put(kv_names.KEYS_PRESENT, b"1")
        index = self._kv.typed(kv_names.KEY_HASHES, set) or set()
        index.add(key_hash)
        self._kv.put(kv_names.KEY_HASHES, index)
        return plaintext, record

    async def authenticate(self, presented: str) -> KeyRecord | None:
        if not plausible_key(presented):
            return None
        presented_hash = hash_key(presented)
        name = kv_names.key_record(presented_hash)
        raw = self._kv.typed(name, bytes)
        found = None if raw is None else decode_key_record(raw, where=name)
        if found is None:
            return None
        stored_hash, record = found
        if not hashes_match(stored_hash, presented_hash):
            return None
        return record if record.usable(self._clock()) else None

    async def _records(self) -> list[tuple[str, KeyRecord]]:
        found = []
        for key_hash in self._kv.typed(kv_names.KEY_HASHES, set) or ():
            name = kv_names.key_record(str(key_hash))
            raw = self._kv.typed(name, bytes)
            decoded = None if raw is None else decode_key_record(raw, where=name)
            if decoded is not None:
                found.append(decoded)
        return found

    async def _write(self, key_hash: str, record: KeyRecord) -> None:
        self._kv.put(kv_names.key_record(key_hash), encode_key_record(key_hash, record))

    async def key_pages(self, size: int = 500) -> AsyncIterator[list[KeyRecord]]:
        yield [record for _, record in await self._records()]

    async def list_keys(self) -> list[KeyRecord]:
        return sorted((r for _, r in await self._records()), key=lambda r: r.created_at)

    async def update_key(self, record: KeyRecord) -> bool:
        for key_hash, old in await self._records():
            if old.key_id == record.key_id:
                await self._write(key_hash, record)
                return True
        return False

    async def has_keys(self) -> bool:
        return self._kv.get(kv_names.KEYS_PRESENT) is not None

    async def set_team(self, record: TeamRecord) -> None:
        self._kv.put(kv_names.team(record.team), encode_team_record(record))
        index = self._kv.typed(kv_names.TEAMS_INDEX, set) or set()
        index.add(record.team)
        self._kv.put(kv_names.TEAMS_INDEX, index)

    async def get_team(self, team: str) -> TeamRecord | None:
        name = kv_names.team(team)
        raw = self._kv.typed(name, bytes)
        return None if raw is None else decode_team_record(raw, where=name)

    async def list_teams(self) -> list[TeamRecord]:
        teams = []
        for team in sorted(self._kv.typed(kv_names.TEAMS_INDEX, set) or ()):
            record = await self.get_team(str(team))
            if record is not None:
                teams.append(record)
        return teams


class MemoryRateLimiter:
    def __init__(
        self,
        kv: MemoryKV,
        clock: Callable[[], float],
        stream_ttl_s: float = DEFAULT_STREAM_TTL_S,
    ) -> None:
        self._kv = kv
        self._clock = clock
        self._stream_ttl_s = stream_ttl_s

    def _window(self, scope: str, index: int) -> list[int]:
        counts = self._kv.typed(kv_names.rate_window(scope, index), list)
        return counts if counts is not None and len(counts) == 2 else [0, 0]

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
        index, elapsed = window_of(self._clock())
        if limits.rpm is None and limits.tpm is None:
            return Grant(LimitDecision(allowed=True), index)
        cur = self._window(scope, index)
        prev = self._window(scope, index - 1)
        counts = WindowCounts(cur[0], cur[1], prev[0], prev[1])
        admitted = fits(cur[0], prev[0], elapsed, requests, limits.rpm) and fits(
            cur[1], prev[1], elapsed, tokens, limits.tpm
        )
        extra_r = extra_t = 0
        if admitted:
            extra_r = extra(
                limits.rpm, estimate(cur[0], prev[0], elapsed) + requests, want_requests
            )
            extra_t = extra(limits.tpm, estimate(cur[1], prev[1], elapsed) + tokens, want_tokens)
            self._kv.put(
                kv_names.rate_window(scope, index),
                [cur[0] + requests + extra_r, cur[1] + tokens + extra_t],
                RATE_WINDOW_TTL_S,
            )
        verdict = decide(counts, limits, tokens, elapsed, admitted, requests)
        return Grant(verdict, index, extra_r, extra_t)

    async def adjust(self, scope: str, window: int, requests: int, tokens: int) -> None:
        name = kv_names.rate_window(scope, window)
        counts = self._kv.typed(name, list)
        if counts is None or len(counts) != 2:
            if requests <= 0 and tokens <= 0:
                return
            counts = [0, 0]
        self._kv.put(
            name,
            [max(0, counts[0] + requests), max(0, counts[1] + tokens)],
            RATE_WINDOW_TTL_S,
        )

    def _live_slots(self, scope: str) -> dict[str, float]:
        slots = self._kv.typed(kv_names.streams(scope), dict) or {}
        now = self._clock()
        return {slot: exp for slot, exp in slots.items() if exp > now}

    async def open_stream(self, scope: str, max_streams: int) -> bool:
        slots = self._live_slots(scope)
        if len(slots) >= max_streams:
            return False
        slots[uuid.uuid4().hex] = self._clock() + self._stream_ttl_s
        self._kv.put(kv_names.streams(scope), slots, self._stream_ttl_s)
        return True

    async def count_streams(self, scope: str) -> int:
        return len(self._live_slots(scope))

    async def close_stream(self, scope: str) -> None:
        slots = self._live_slots(scope)
        if slots:
            # the newest slot goes: a crashed replica's old slots keep expiring
            del slots[max(slots, key=lambda slot: slots[slot])]
        self._kv.put(kv_names.streams(scope), slots, self._stream_ttl_s)


class MemorySpendLedger:
    def __init__(
        self,
        kv: MemoryKV,
        clock: Callable[[], float],
        reservation_ttl_s: float = money.DEFAULT_RESERVATION_TTL_S,
    ) -> None:
        self._kv = kv
        self._clock = clock
        self._reservation_ttl_s = reservation_ttl_s
        self._keys: dict[str, list[tuple[str, str, int]]] = {}
        self._keys_day = -1

    def _spend(self, team: str, period: Period, now: float) -> dict[str, int]:
        name = kv_names.spend(team, period, money.period_start(period, now))
        return self._kv.typed(name, dict) or {}

    def _live_reservations(self, team: str, now: float) -> dict[int, int]:
        buckets = self._kv.typed(kv_names.reservations(team), dict) or {}
        oldest = money.oldest_live_bucket(now, self._reservation_ttl_s)
        return {b: v for b, v in buckets.items() if b >= oldest}

    def _release(self, team: str, amount: int, now: float) -> None:
        buckets = self._live_reservations(team, now)
        money.take_newest_first(buckets, amount)
        self._kv.put(kv_names.reservations(team), buckets, self._reservation_ttl_s)

    async def record(self, spend: SpendRecord, reserved_usd: float = 0.0) -> None:
        await self.record_batch(money.batch_of(spend, reserved_usd, self._clock()))

    async def record_batch(self, batch: SpendBatch) -> None:
        kv = self._kv
        for name, index_name, ttl in self._record_keys(batch.team, batch.at):
            fields = kv.typed(name, dict)
            if fields is None:
                fields = {}
            for field, value in batch.increments.items():
                fields[field] = fields.get(field, 0) + value
            kv.put(name, fields, ttl)
            index = kv.typed(index_name, set)
            if index is None:
                index = set()
            index.add(batch.team)
            kv.put(index_name, index, ttl)
        if batch.release_micros > 0:
            self._release(batch.team, batch.release_micros, self._clock())

    def _record_keys(self, team: str, now: float) -> list[tuple[str, str, int]]:
        """Per period: the team's spend hash, the period's team index, their TTL.
        Cached for the current day (names are formatted once per team and day)."""
        day = int(now // 86_400)
        if day != self._keys_day:
            self._keys_day = day
            self._keys.clear()
        keys = self._keys.get(team)
        if keys is None:
            keys = []
            for period in Period:
                start = money.period_start(period, now)
                keys.append(
                    (
                        kv_names.spend(team, period, start),
                        kv_names.spend_teams(period, start),
                        money.spend_ttl_s(period),
                    )
                )
            if len(self._keys) < _MAX_CACHED_TEAMS:
                self._keys[team] = keys
        return keys

    async def team_spend(self, team: str, period: Period) -> float:
        fields = self._spend(team, period, self._clock())
        return money.from_micros(fields.get(money.USD, 0))

    async def reserve(
        self, team: str, budget: Budget, estimate_usd: float, want_usd: float = 0.0
    ) -> Reservation | None:
        now = self._clock()
        estimate = money.to_micros(estimate_usd)
        spent = self._spend(team, budget.period, now).get(money.USD, 0)
        buckets = self._live_reservations(team, now)
        used_after = spent + sum(buckets.values()) + estimate
        limit = money.to_micros(budget.usd)
        if used_after > limit:
            return None
        more = extra(limit, used_after, money.to_micros(want_usd))
        bucket = money.reservation_bucket(now)
        buckets[bucket] = buckets.get(bucket, 0) + estimate + more
        self._kv.put(kv_names.reservations(team), buckets, self._reservation_ttl_s)
        return Reservation(money.from_micros(more))

    async def release(self, team: str, budget: Budget, reserved_usd: float) -> None:
        if reserved_usd > 0:
            self._release(team, money.to_micros(reserved_usd), self._clock())

    async def report(self, period: Period) -> SpendReport:
        now = self._clock()
        start = money.period_start(period, now)
        teams = sorted(self._kv.typed(kv_names.spend_teams(period, start), set) or ())
        return money.build_report(
            period, start, ((str(t), self._spend(str(t), period, now)) for t in teams)
        )
