"""The authenticator against a key store that fails now and then (the in-memory
store behind a thin wrapper that raises the state error the Redis store raises)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from gateway.errors import ServiceUnavailable
from gateway.observability.metrics import Metrics
from gateway.quota.auth import Authenticator
from gateway.state.base import KeyStore, StateUnavailable
from gateway.state.factory import memory_state


class Flaky:
    """A key store whose next ``failures`` lookups raise, and that counts lookups."""

    def __init__(self, inner: KeyStore, failures: int = 0) -> None:
        self.inner = inner
        self.failures = failures
        self.lookups = 0

    async def authenticate(self, presented: str) -> Any:
        self.lookups += 1
        await asyncio.sleep(0.01)
        if self.failures:
            self.failures -= 1
            raise StateUnavailable("redis get failed: TimeoutError")
        return await self.inner.authenticate(presented)

    async def has_keys(self) -> bool:
        if self.failures:
            self.failures -= 1
            raise StateUnavailable("redis exists failed: TimeoutError")
        return await self.inner.has_keys()


async def _setup(failures: int) -> tuple[Authenticator, Flaky, str]:
    state = memory_state()
    key, _ = await state.keys.create_key("team")
    flaky = Flaky(state.keys)
    auth = Authenticator(flaky, Metrics())  # type: ignore[arg-type]
    await auth.warm()
    flaky.failures = failures
    return auth, flaky, key


async def test_a_transient_store_error_is_retried_not_refused() -> None:
    auth, flaky, key = await _setup(failures=3)
    record = await auth.authenticate(f"Bearer {key}")
    assert record is not None and record.team == "team"
    assert flaky.lookups == 4


async def test_a_store_down_for_longer_than_the_budget_is_a_503() -> None:
    auth, _, key = await _setup(failures=100)
    with pytest.raises(ServiceUnavailable):
        await auth.authenticate(f"Bearer {key}")


async def test_concurrent_lookups_of_one_key_share_one_round_trip() -> None:
    auth, flaky, key = await _setup(failures=0)
    records = await asyncio.gather(*(auth.authenticate(f"Bearer {key}") for _ in range(50)))
    assert all(r is not None for r in records)
    assert flaky.lookups == 1


async def test_one_caller_cancelled_does_not_cancel_the_shared_lookup() -> None:
    auth, flaky, key = await _setup(failures=0)
    first = asyncio.ensure_future(auth.authenticate(f"Bearer {key}"))
    second = asyncio.ensure_future(auth.authenticate(f"Bearer {key}"))
    await asyncio.sleep(0)
    first.cancel()
    assert (await second) is not None
    assert flaky.lookups == 1


async def test_warm_waits_for_the_store_then_knows_keys_exist() -> None:
    state = memory_state()
    await state.keys.create_key("team")
    flaky = Flaky(state.keys, failures=3)
    auth = Authenticator(flaky, Metrics())  # type: ignore[arg-type]
    assert not auth.warmed
    await auth.warm()
    assert auth.warmed and await auth.has_keys()


async def test_warm_gives_up_after_its_bound_and_turns_ready_degraded() -> None:
    state = memory_state()
    flaky = Flaky(state.keys, failures=10**6)
    auth = Authenticator(flaky, Metrics())  # type: ignore[arg-type]
    await auth.warm(within_s=0.2)
    assert auth.warmed
