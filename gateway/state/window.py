"""Sliding-window-counter arithmetic for requests- and tokens-per-minute limits.

Each scope counts requests and tokens in fixed 60-second buckets (bucket
``floor(now / 60)``). The load over the last minute is estimated from the
current bucket and the previous one, weighted by how much of it still lies in
the sliding minute::

    estimate = previous * (1 - elapsed / 60) + current

A request of cost ``c`` fits under ``limit`` when ``estimate + c <= limit``.
This is the classic two-bucket approximation: O(1) state per scope, no drift,
and at most a few percent over a true sliding log when traffic is very uneven
across the boundary.

A *lease* (see :mod:`gateway.quota.leases`) counts extra units with an admitted
request, for the replica to admit locally later: at most what it asked for,
and at most :data:`LEASE_SHARE` of what is left under the limit once the
request is counted (:func:`extra`), so that leases shrink to nothing near a
limit and every request there is counted by itself.

The same functions serve both backends: the in-memory limiter calls them
directly; the Redis limiter repeats :func:`fits` in its Lua script (the one
atomic check) and uses :func:`decide` on the counts the script returns, so the
headers and ``retry_after_s`` are computed identically everywhere.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from gateway.state.base import KeyLimits, LimitDecision

WINDOW_S = 60.0
#: a window's counts are read until the end of the following window
RATE_WINDOW_TTL_S = 2 * WINDOW_S + 30
#: a stream slot not closed within this time is presumed leaked (crashed replica)
DEFAULT_STREAM_TTL_S = 900.0
#: a lease takes at most this share of what is left under a limit (a power of
#: two, so that Lua and Python compute the same product)
LEASE_SHARE = 0.125


def window_of(now: float) -> tuple[int, float]:
    """``(bucket index, seconds elapsed in that bucket)`` for ``now``."""
    index = math.floor(now / WINDOW_S)
    return index, now - index * WINDOW_S


@dataclass(frozen=True, slots=True)
class WindowCounts:
    """What a scope has counted, before the request being decided."""

    cur_requests: int = 0
    cur_tokens: int = 0
    prev_requests: int = 0
    prev_tokens: int = 0


def estimate(cur: float, prev: float, elapsed: float) -> float:
    return prev * (1.0 - elapsed / WINDOW_S) + cur


def fits(cur: float, prev: float, elapsed: float, cost: float, limit: int | None) -> bool:
    return limit is None or estimate(cur, prev, elapsed) + cost <= limit


def extra(limit: int | None, used_after: float, want: int) -> int:
    """Units a lease may count beyond the request: at most ``want`` and at most
    :data:`LEASE_SHARE` of what is left under ``limit`` once the request is
    counted (``used_after``). Nothing when no limit applies."""
    if limit is None or want <= 0:
        return 0
    return max(0, min(want, math.floor((limit - used_after) * LEASE_SHARE)))


def wait_s(cur: float, prev: float, elapsed: float, cost: float, limit: int) -> float:
    """Seconds until ``cost`` fits, if nothing else is counted meanwhile."""
    room = limit - cost
    if room < 0:
        # larger than the limit itself: it never fits; say when the scope is empty
        return 2 * WINDOW_S - elapsed
    if cur <= room:
        if prev <= 0:
            return 0.0
        needed_fraction = 1.0 - (room - cur) / prev
        return max(0.0, needed_fraction * WINDOW_S - elapsed)
    # the current bucket alone is too full: wait until it is the previous one
    # and has decayed enough
    return (WINDOW_S - elapsed) + (1.0 - room / cur) * WINDOW_S


def _reset_s(cur_after: float, prev: float, elapsed: float) -> float:
    """Seconds until the scope is back to its full quota."""
    if cur_after > 0:
        return 2 * WINDOW_S - elapsed
    if prev > 0:
        return WINDOW_S - elapsed
    return 0.0


def decide(
    counts: WindowCounts,
    limits: KeyLimits,
    tokens: int,
    elapsed: float,
    admitted: bool,
    requests: int = 1,
) -> LimitDecision:
    """The decision and its ``x-ratelimit-*`` numbers for counts taken before
    the request (of ``requests`` requests: 1, or 0 for a lease top-up); when
    ``admitted`` the request itself is counted in them."""
    c = counts
    rpm, tpm = limits.rpm, limits.tpm
    added_r, added_t = (requests, tokens) if admitted else (0, 0)
    limit: str | None = None
    waits = [0.0]
    if not admitted:
        if rpm is not None and not fits(c.cur_requests, c.prev_requests, elapsed, requests, rpm):
            limit = "rpm"
            waits.append(wait_s(c.cur_requests, c.prev_requests, elapsed, requests, rpm))
        if tpm is not None and not fits(c.cur_tokens, c.prev_tokens, elapsed, tokens, tpm):
            limit = limit or "tpm"
            waits.append(wait_s(c.cur_tokens, c.prev_tokens, elapsed, tokens, tpm))
    retry = max(waits)
    cur_r, cur_t = c.cur_requests + added_r, c.cur_tokens + added_t
    return LimitDecision(
        allowed=admitted,
        limit=limit,
        retry_after_s=retry,
        limit_requests=rpm,
        remaining_requests=None
        if rpm is None
        else _remaining(rpm, cur_r, c.prev_requests, elapsed),
        reset_requests_s=None if rpm is None else _reset_s(cur_r, c.prev_requests, elapsed),
        limit_tokens=tpm,
        remaining_tokens=None if tpm is None else _remaining(tpm, cur_t, c.prev_tokens, elapsed),
        reset_tokens_s=None if tpm is None else _reset_s(cur_t, c.prev_tokens, elapsed),
    )


def _remaining(limit: int, cur: float, prev: float, elapsed: float) -> int:
    return max(0, math.floor(limit - estimate(cur, prev, elapsed)))
