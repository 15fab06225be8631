"""Money, periods and reservations: the ledger arithmetic both backends share.

Money is stored as integer micro-dollars so that millions of small additions
never drift. A period starts at ``YYYY-MM-DD`` (day) or ``YYYY-MM`` (month),
in UTC, from the injected clock.

Each team has one spend hash per period with these integer fields:
``usd`` and ``baseline`` (micro-dollars), ``tokens``, ``k:<key_id>`` and
``t:<target>`` (micro-dollars per key and per target).

Reservations are kept per team in buckets of :data:`RESERVATION_BUCKET_S`
seconds (bucket index -> micro-dollars). Buckets older than the reservation
TTL are dropped: that is the safety net that frees what a crashed replica had
set aside. A release takes from the newest bucket first, so the long-lived
leftovers of a crash stay in old buckets and expire, instead of being shifted
forward by the steady traffic of live requests.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, MutableMapping
from datetime import UTC, datetime
from functools import lru_cache

from gateway.state.base import Period, SpendBatch, SpendRecord, SpendReport

MICROS = 1_000_000
RESERVATION_BUCKET_S = 60.0
#: how long a reservation may stay outstanding before it is presumed leaked
DEFAULT_RESERVATION_TTL_S = 900.0
#: how long spend hashes are kept (reports for past periods stay available)
DAY_SPEND_TTL_S = 400 * 86400
MONTH_SPEND_TTL_S = 800 * 86400

USD = "usd"
BASELINE = "baseline"
TOKENS = "tokens"


def to_micros(usd: float) -> int:
    return round(usd * MICROS)


def from_micros(micros: int) -> float:
    return micros / MICROS


def period_start(period: Period, now: float) -> str:
    """``YYYY-MM-DD`` or ``YYYY-MM`` (UTC) of ``now``; cached per day, since it
    runs several times per request and formatting a date is not free."""
    return _period_label(period, int(now // 86_400))


@lru_cache(maxsize=64)
def _period_label(period: Period, day: int) -> str:
    moment = datetime.fromtimestamp(day * 86_400, UTC)
    return moment.strftime("%Y-%m-%d" if period is Period.DAY else "%Y-%m")


def spend_ttl_s(period: Period) -> int:
    return DAY_SPEND_TTL_S if period is Period.DAY else MONTH_SPEND_TTL_S


def spend_increments(spend: SpendRecord) -> dict[str, int]:
    """The fields one :class:`SpendRecord` adds to each of its team's period hashes."""
    cost = to_micros(spend.cost_usd)
    return {
        USD: cost,
        BASELINE: to_micros(spend.baseline_usd),
        TOKENS: spend.prompt_tokens + spend.completion_tokens,
        "k:" + spend.key_id: cost,
        "t:" + spend.target: cost,
    }


def add_spend(batch: SpendBatch, spend: SpendRecord, reserved_usd: float = 0.0) -> None:
    """Sum one request's spend, and the reservation it releases, into ``batch``."""
    fields = batch.increments
    for name, value in spend_increments(spend).items():
        fields[name] = fields.get(name, 0) + value
    if reserved_usd > 0:
        batch.release_micros += to_micros(reserved_usd)


def batch_of(spend: SpendRecord, reserved_usd: float, now: float) -> SpendBatch:
    """A batch of one request."""
    batch = SpendBatch(spend.team, now)
    add_spend(batch, spend, reserved_usd)
    return batch


def reservation_bucket(now: float) -> int:
    return math.floor(now / RESERVATION_BUCKET_S)


def oldest_live_bucket(now: float, ttl_s: float) -> int:
    """Buckets below this index have outlived the reservation TTL."""
    return reservation_bucket(now - ttl_s) + 1


def take_newest_first(buckets: MutableMapping[int, int], amount: int) -> None:
    """Remove ``amount`` from ``buckets``, newest first, never below zero."""
    for bucket in sorted(buckets, reverse=True):
        if amount <= 0:
            break
        taken = min(buckets[bucket], amount)
        buckets[bucket] -= taken
        amount -= taken
        if buckets[bucket] <= 0:
            del buckets[bucket]


def build_report(
    period: Period, start: str, by_team: Iterable[tuple[str, Mapping[str, int]]]
) -> SpendReport:
    """Sum each team's period hash into one report (dollars, not micros)."""
    report = SpendReport(period=period, period_start=start)
    by_target: dict[str, int] = {}
    for team_name, fields in by_team:
        report.by_team[team_name] = from_micros(fields.get(USD, 0))
        report.baseline_by_team[team_name] = from_micros(fields.get(BASELINE, 0))
        report.tokens_by_team[team_name] = fields.get(TOKENS, 0)
        for name, value in fields.items():
            if name.startswith("k:"):
                report.by_key[name[2:]] = report.by_key.get(name[2:], 0.0) + from_micros(value)
            elif name.startswith("t:"):
                by_target[name[2:]] = by_target.get(name[2:], 0) + value
    report.by_target.update({t: from_micros(v) for t, v in by_target.items()})
    return report
