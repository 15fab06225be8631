"""Stored Responses: the same contract in memory, on Redis and on Redis Cluster."""

from __future__ import annotations

import asyncio

from tests.state.conftest import Backend


async def test_put_get_delete_and_team_scope(backend: Backend) -> None:
    store = backend.state.conversations
    await store.put("research", "resp_1", b'{"a": 1}', 60)
    assert await store.get("research", "resp_1") == b'{"a": 1}'
    # another team (or a caller without a key) never sees it
    assert await store.get("finance", "resp_1") is None
    assert await store.get(None, "resp_1") is None
    assert await store.delete("finance", "resp_1") is False
    assert await store.get("research", "resp_1") == b'{"a": 1}'
    assert await store.delete("research", "resp_1") is True
    assert await store.get("research", "resp_1") is None
    assert await store.delete("research", "resp_1") is False


async def test_another_replica_reads_what_one_stored(backend: Backend) -> None:
    other = await backend.replica()
    await backend.state.conversations.put(None, "resp_2", b"x", 60)
    assert await other.conversations.get(None, "resp_2") == b"x"


async def test_entries_expire(backend: Backend) -> None:
    store = backend.state.conversations
    await store.put("t", "resp_3", b"x", 0.2)
    if backend.kind == "memory":
        backend.clock.advance(0.3)
    else:
        await asyncio.sleep(0.35)  # Redis keeps its own time
    assert await store.get("t", "resp_3") is None
