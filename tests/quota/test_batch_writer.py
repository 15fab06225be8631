"""The bookkeeping worker: started on first use, flushes within its interval,
keeps flushing while something is held, survives a failing flush, and flushes
once more when closed."""

from __future__ import annotations

import asyncio

import pytest

from gateway.quota.batch_writer import BatchWriter


class Recorder:
    def __init__(self, busy_times: int = 0, fail: bool = False) -> None:
        self.calls = 0
        self.busy_times = busy_times
        self.fail = fail
        self.flushed = asyncio.Event()

    async def __call__(self) -> bool:
        self.calls += 1
        self.flushed.set()
        if self.fail:
            raise RuntimeError("a bug in a flush")
        return self.calls <= self.busy_times


async def test_a_poke_is_flushed_within_the_interval() -> None:
    recorder = Recorder()
    keeper = BatchWriter([recorder], interval_s=0.01)
    keeper.poke()
    keeper.poke()  # several pokes before the flush make one flush
    await asyncio.wait_for(recorder.flushed.wait(), 1.0)
    await asyncio.sleep(0.05)
    assert recorder.calls == 1
    await keeper.aclose()
    assert recorder.calls == 2


async def test_it_keeps_flushing_while_something_is_held() -> None:
    recorder = Recorder(busy_times=3)
    keeper = BatchWriter([recorder], interval_s=0.005)
    keeper.poke()
    for _ in range(100):
        if recorder.calls >= 4:
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)
    assert recorder.calls == 4  # three busy answers, then one that holds nothing
    await keeper.aclose()


async def test_a_failing_flush_is_logged_and_the_others_still_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    broken, fine = Recorder(fail=True), Recorder()
    keeper = BatchWriter([broken, fine], interval_s=0.005)
    keeper.poke()
    await asyncio.wait_for(fine.flushed.wait(), 1.0)
    assert "bookkeeping flush failed" in caplog.text
    # the worker is still there for the next poke
    fine.flushed.clear()
    keeper.poke()
    await asyncio.wait_for(fine.flushed.wait(), 1.0)
    assert fine.calls == 2
    await keeper.aclose()


async def test_closing_without_a_poke_still_flushes() -> None:
    recorder = Recorder()
    keeper = BatchWriter([recorder])
    await keeper.aclose()
    assert recorder.calls == 1


async def test_a_flush_waits_for_the_one_under_way() -> None:
    """A reader that flushes first (the spend report) must see what the worker's
    own flush had already taken and was still writing."""
    written: list[str] = []
    gate = asyncio.Event()

    async def slow_write() -> bool:
        await gate.wait()
        written.append("batch")
        return False

    writer = BatchWriter([slow_write])
    first = asyncio.create_task(writer.flush())
    await asyncio.sleep(0)
    second = asyncio.create_task(writer.flush())
    await asyncio.sleep(0.01)
    assert not second.done()  # waits for the first write
    gate.set()
    await asyncio.gather(first, second)
    assert written == ["batch", "batch"]
