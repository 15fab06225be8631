"""The state interfaces over Redis, one class per concern.

They talk to Redis only through :class:`RedisConnection` (so the ``redis``
import stays in :mod:`gateway.state.redis_backend`) and share their key names
(:mod:`gateway.state.redis_names`), stored forms and arithmetic with the in-memory
backend. Every method raises :class:`StateUnavailable` when Redis fails or
does not answer within the connection's deadline.

Times (rate windows, periods, stream and reservation expiry) come from the
injected clock of the calling replica, not from the Redis server, so that all
backends read the same clock; replicas are expected to run NTP.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import AsyncIterator, Callable

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
from gateway.state.redis_backend import RedisConnection
from gateway.state.redis_scripts import (
    ADJUST,
    CLOSE_STREAM,
    COUNT_STREAMS,
    LEASE,
    OPEN_STREAM,
    RECORD,
    RELEASE,
    RESERVE,
)
from gateway.state.window import (
    DEFAULT_STREAM_TTL_S,
    LEASE_SHARE,
    RATE_WINDOW_TTL_S,
    WINDOW_S,
    WindowCounts,
    decide,
    window_of,
)


def _seconds(ttl_s: float) -> int:
    return max(1, math.ceil(ttl_s))


class RedisResponseCache:
    def __init__(self, redis: RedisConnection) -> None:
        self._redis = redis

    async def get(self, key: str) -> CachedResponse | None:
        name = kv_names.cache(key)
        raw = await self._redis.get(name)
        return None if raw is None else decode(raw, where=name)

    async def get_with_ttl(self, key: str) -> tuple[CachedResponse | None, float | None]:
        name = kv_names.cache(key)
        raw, ttl_s = await self._redis.get_with_ttl(name)
        return (None, None) if raw is None else (decode(raw, where=name), ttl_s)

    async def set(self, key: str, entry: CachedResponse, ttl_s: float) -> None:
        if ttl_s > 0:
            await self._redis.set(kv_names.cache(key), encode(entry), ttl_s)


class RedisKeyStore:
    def __init__(self, redis: RedisConnection, clock: Callable[[], float]) -> None:
        self._redis = redis
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
        await self._redis.commands(
            ("SET", kv_names.key_record(key_hash), encode_key_record(key_hash, record)),
            ("SET", kv_names.KEYS_PRESENT, b"1"),
            ("SADD", kv_names.KEY_HASHES, key_hash),
        )
        return plaintext, record

    async def authenticate(self, presented: str) -> KeyRecord | None:
        if not plausible_key(presented):
            return None
        presented_hash = hash_key(presented)
        name = kv_names.key_record(presented_hash)
        raw = await self._redis.get(name)
        found = None if raw is None else decode_key_record(raw, where=name)
        if found is None:
            return None
        stored_hash, record = found
        if not hashes_match(stored_hash, presented_hash):
            return None
        return record if record.usable(self._clock()) else None

    async def _records(self) -> list[tuple[str, KeyRecord]]:
        hashes = await self._redis.smembers(kv_names.KEY_HASHES)
        names = [kv_names.key_record(h) for h in hashes]
        raws = await self._redis.get_many(names) if names else []
        found = []
        for name, raw in zip(names, raws, strict=True):
            decoded = None if raw is None else decode_key_record(raw, where=name)
            if decoded is not None:
                found.append(decoded)
        return found

    async def key_pages(self, size: int = 500) -> AsyncIterator[list[KeyRecord]]:
        """Every key's record, a page at a time (SSCAN: Redis never blocks on
        one large read)."""
        cursor = 0
        while True:
            cursor, hashes = await self._redis.sscan(kv_names.KEY_HASHES, cursor, size)
            names = [kv_names.key_record(h) for h in hashes]
            raws = await self._redis.get_many(names) if names else []
            page = []
            for name, raw in zip(names, raws, strict=True):
                decoded = None if raw is None else decode_key_record(raw, where=name)
                if decoded is not None:
                    page.append(decoded[1])
            yield page
            if cursor == 0:
                return

    async def _write(self, key_hash: str, record: KeyRecord) -> None:
        await self._redis.set(kv_names.key_record(key_hash), encode_key_record(key_hash, record))

    async def list_keys(self) -> list[KeyRecord]:
        return sorted((r for _, r in await self._records()), key=lambda r: r.created_at)

    async def update_key(self, record: KeyRecord) -> bool:
        for key_hash, old in await self._records():
            if old.key_id == record.key_id:
                await self._write(key_hash, record)
                return True
        return False

    async def has_keys(self) -> bool:
        return await self._redis.exists(kv_names.KEYS_PRESENT)

    async def set_team(self, record: TeamRecord) -> None:
        await self._redis.commands(
            ("SET", kv_names.team(record.team), encode_team_record(record)),
            ("SADD", kv_names.TEAMS_INDEX, record.team),
        )

    async def get_team(self, team: str) -> TeamRecord | None:
        name = kv_names.team(team)
        raw = await self._redis.get(name)
        return None if raw is None else decode_team_record(raw, where=name)

    async def list_teams(self) -> list[TeamRecord]:
        teams = await self._redis.smembers(kv_names.TEAMS_INDEX)
        record_names = [kv_names.team(t) for t in teams]
        raws = await self._redis.get_many(record_names) if teams else []
        records = []
        for name, raw in zip(record_names, raws, strict=True):
            record = None if raw is None else decode_team_record(raw, where=name)
            if record is not None:
                records.append(record)
        return records


class RedisRateLimiter:
    def __init__(
        self,
        redis: RedisConnection,
        clock: Callable[[], float],
        stream_ttl_s: float = DEFAULT_STREAM_TTL_S,
    ) -> None:
        self._redis = redis
        self._clock = clock
        self._stream_ttl_s = stream_ttl_s

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
        admitted, cur_r, cur_t, prev_r, prev_t, extra_r, extra_t = await self._redis.run(
            LEASE,
            (kv_names.rate_window(scope, index), kv_names.rate_window(scope, index - 1)),
            (
                -1 if limits.rpm is None else limits.rpm,
                -1 if limits.tpm is None else limits.tpm,
                tokens,
                repr(elapsed),
                _seconds(RATE_WINDOW_TTL_S),
                repr(WINDOW_S),
                requests,
                want_requests,
                want_tokens,
                repr(LEASE_SHARE),
            ),
        )
        counts = WindowCounts(int(cur_r), int(cur_t), int(prev_r), int(prev_t))
        verdict = decide(counts, limits, tokens, elapsed, admitted == 1, requests)
        return Grant(verdict, index, int(extra_r), int(extra_t))

    async def adjust(self, scope: str, window: int, requests: int, tokens: int) -> None:
        if requests or tokens:
            await self._redis.run(
                ADJUST,
                (kv_names.rate_window(scope, window),),
                (requests, tokens, _seconds(RATE_WINDOW_TTL_S)),
            )

    async def open_stream(self, scope: str, max_streams: int) -> bool:
        now = self._clock()
        taken = await self._redis.run(
            OPEN_STREAM,
            (kv_names.streams(scope),),
            (
                repr(now),
                max_streams,
                uuid.uuid4().hex,
                repr(now + self._stream_ttl_s),
                _seconds(self._stream_ttl_s),
            ),
        )
        return bool(taken == 1)

    async def count_streams(self, scope: str) -> int:
        count = await self._redis.run(
            COUNT_STREAMS, (kv_names.streams(scope),), (repr(self._clock()),)
        )
        return int(count or 0)

    async def close_stream(self, scope: str) -> None:
        await self._redis.run(
            CLOSE_STREAM,
            (kv_names.streams(scope),),
            (repr(self._clock()), _seconds(self._stream_ttl_s)),
        )


class RedisSpendLedger:
    def __init__(
        self,
        redis: RedisConnection,
        clock: Callable[[], float],
        reservation_ttl_s: float = money.DEFAULT_RESERVATION_TTL_S,
    ) -> None:
        self._redis = redis
        self._clock = clock
        self._reservation_ttl_s = reservation_ttl_s

    async def record(self, spend: SpendRecord, reserved_usd: float = 0.0) -> None:
        await self.record_batch(money.batch_of(spend, reserved_usd, self._clock()))

    async def record_batch(self, batch: SpendBatch) -> None:
        now, team = batch.at, batch.team
        day = money.period_start(Period.DAY, now)
        month = money.period_start(Period.MONTH, now)
        day_ttl = money.spend_ttl_s(Period.DAY)
        month_ttl = money.spend_ttl_s(Period.MONTH)
        pairs: list[str | int] = []
        for field, value in batch.increments.items():
            pairs += [field, value]
        spend_keys = (
            kv_names.spend(team, Period.DAY, day),
            kv_names.spend(team, Period.MONTH, month),
            kv_names.reservations(team),
        )
        index_keys = (
            kv_names.spend_teams(Period.DAY, day),
            kv_names.spend_teams(Period.MONTH, month),
        )
        args = (
            day_ttl,
            month_ttl,
            max(0, batch.release_micros),
            money.oldest_live_bucket(self._clock(), self._reservation_ttl_s),
            _seconds(self._reservation_ttl_s),
            team,
            *pairs,
        )
        if not self._redis.cluster:
            await self._redis.run(RECORD, (*spend_keys, *index_keys), args)
            return
        # in a cluster the indexes live in other hash slots than the team's keys:
        # they ride in the same round trip, outside the script (SADD is idempotent)
        await self._redis.run(
            RECORD,
            spend_keys,
            args,
            also=(
                ("SADD", index_keys[0], team),
                ("EXPIRE", index_keys[0], day_ttl),
                ("SADD", index_keys[1], team),
                ("EXPIRE", index_keys[1], month_ttl),
            ),
        )

    async def team_spend(self, team: str, period: Period) -> float:
        start = money.period_start(period, self._clock())
        (fields,) = await self._redis.hgetall_many([kv_names.spend(team, period, start)])
        return money.from_micros(fields.get(money.USD, 0))

    async def reserve(
        self, team: str, budget: Budget, estimate_usd: float, want_usd: float = 0.0
    ) -> Reservation | None:
        now = self._clock()
        start = money.period_start(budget.period, now)
        extra = await self._redis.run(
            RESERVE,
            (kv_names.spend(team, budget.period, start), kv_names.reservations(team)),
            (
                money.to_micros(budget.usd),
                money.to_micros(estimate_usd),
                max(0, money.to_micros(want_usd)),
                repr(LEASE_SHARE),
                money.reservation_bucket(now),
                money.oldest_live_bucket(now, self._reservation_ttl_s),
                _seconds(self._reservation_ttl_s),
            ),
        )
        extra = int(extra)
        return None if extra < 0 else Reservation(money.from_micros(extra))

    async def release(self, team: str, budget: Budget, reserved_usd: float) -> None:
        if reserved_usd <= 0:
            return
        now = self._clock()
        await self._redis.run(
            RELEASE,
            (kv_names.reservations(team),),
            (
                money.to_micros(reserved_usd),
                money.oldest_live_bucket(now, self._reservation_ttl_s),
                _seconds(self._reservation_ttl_s),
            ),
        )

    async def report(self, period: Period) -> SpendReport:
        start = money.period_start(period, self._clock())
        teams = await self._redis.smembers(kv_names.spend_teams(period, start))
        hashes = (
            await self._redis.hgetall_many([kv_names.spend(t, period, start) for t in teams])
            if teams
            else []
        )
        return money.build_report(period, start, zip(teams, hashes, strict=True))
