"""Latency of the per-request state calls on a local Redis (loopback).

Run: ``python bench/state_bench.py [--redis-url URL] [-n N] [--uvloop]``.
Without ``--redis-url`` it starts a throw-away ``redis-server`` on a free port.
Prints p50/p99 in milliseconds, one call at a time (latency, not throughput),
of: ``limiter.lease`` (one request counted by itself); ``ledger.reserve``;
``ledger.record``; the lease + reserve + record of a budgeted request counted
by itself; lease + record (no budget); the same request admitted through this
replica's leases (``gateway.quota.leases``, what the gateway does: steady traffic is
admitted without a round trip); and a ``cache.get`` hit of a 2 KB answer. The
in-memory backend is measured too, for comparison. Not a test: numbers depend
on the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gateway.quota.leases import BudgetLeases, RateLeases
from gateway.state.base import Budget, CachedResponse, KeyLimits, Period, SpendRecord
from gateway.state.factory import StateBackends, build_state
from tests.servers import RedisServer

LIMITS = KeyLimits(rpm=10**9, tpm=10**12)
BUDGET = Budget(usd=10.0**9, period=Period.MONTH)
SPEND = SpendRecord("0123456789ab", "research", "gpt-4o", 0.0021, 0.0042, 900, 120)
ENTRY = CachedResponse(target="gpt-4o", level=1, body=b"x" * 2048, prompt_tokens=900)


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def measure(n: int, call: Callable[[], Awaitable[object]]) -> tuple[float, float]:
    for _ in range(min(200, n)):
        await call()
    samples = []
    for _ in range(n):
        started = time.perf_counter_ns()
        await call()
        samples.append((time.perf_counter_ns() - started) / 1e6)
    return statistics.median(samples), percentile(samples, 0.99)


async def bench(state: StateBackends, n: int) -> None:
    await state.cache.set("bench", ENTRY, 3600)

    async def admit() -> object:
        return await state.limiter.lease("key:bench", LIMITS, 1000)

    async def reserve() -> object:
        return await state.ledger.reserve("research", BUDGET, 0.01)

    async def record() -> None:
        await state.ledger.record(SPEND, 0.01)

    async def admit_reserve_record() -> None:
        await admit()
        await reserve()
        await record()

    rates = RateLeases(state.limiter, lease_s=1.0, on_error=lambda: None)
    budgets = BudgetLeases(state.ledger, lease_s=1.0, on_error=lambda: None)

    async def leased() -> None:
        await rates.admit("key:leased", LIMITS, 1000)
        await budgets.reserve("leased", BUDGET, 0.01)

    async def admit_record() -> None:
        await admit()
        await state.ledger.record(SPEND)

    cases: list[tuple[str, Callable[[], Awaitable[object]]]] = [
        ("limiter.lease", admit),
        ("ledger.reserve", reserve),
        ("ledger.record", record),
        ("admit + record", admit_record),
        ("admit + reserve + record", admit_reserve_record),
        ("leased admit + reserve", leased),
        ("cache.get (2 KB hit)", lambda: state.cache.get("bench")),
    ]
    print(f"\n{state.backend}: {n} sequential calls each")
    print(f"  {'operation':<26} {'p50 ms':>8} {'p99 ms':>8}")
    for name, call in cases:
        p50, p99 = await measure(n, call)
        print(f"  {name:<26} {p50:8.3f} {p99:8.3f}")


async def main(url: str, n: int) -> None:
    for target in (None, url):
        state = await build_state(target, timeout_s=1.0)
        try:
            await bench(state, n)
        finally:
            await state.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis-url")
    parser.add_argument("-n", type=int, default=5000)
    parser.add_argument("--uvloop", action="store_true", help="run on uvloop")
    options = parser.parse_args()
    runner: Callable[[Awaitable[None]], None] = asyncio.run  # type: ignore[assignment]
    if options.uvloop:
        import uvloop

        runner = uvloop.run  # type: ignore[assignment]
    if options.redis_url:
        runner(main(options.redis_url, options.n))
    else:
        with RedisServer() as server:
            runner(main(server.url, options.n))
