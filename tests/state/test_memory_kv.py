"""The in-memory store's own bounds (the contract tests cover its behaviour)."""

from __future__ import annotations

from gateway.state.memory import MemoryKV
from tests.state.conftest import FakeClock


def test_expired_entries_read_as_absent() -> None:
    clock = FakeClock()
    kv = MemoryKV(clock)
    kv.put("a", b"1", ttl_s=1.0)
    assert kv.get("a") == b"1"
    clock.advance(1.0)
    assert kv.get("a") is None


def test_over_capacity_evicts_expiring_entries_oldest_first_never_records() -> None:
    clock = FakeClock()
    kv = MemoryKV(clock, max_entries=10)
    kv.put("record", b"kept")
    for i in range(30):
        kv.put(f"cache:{i}", b"x", ttl_s=60)
    assert kv.get("record") == b"kept"
    assert kv.get("cache:29") == b"x"
    assert kv.get("cache:0") is None
    assert sum(kv.get(f"cache:{i}") is not None for i in range(30)) <= 10


def test_wrong_type_reads_as_absent() -> None:
    kv = MemoryKV(FakeClock())
    kv.put("a", {"x": 1})
    assert kv.typed("a", bytes) is None
    assert kv.typed("a", dict) == {"x": 1}
