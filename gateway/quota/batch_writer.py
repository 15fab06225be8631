"""One background worker for the bookkeeping requests leave behind.

After an answer, a request's spend, its token corrections and what its leases
no longer need are not written one request at a time: they are summed in
memory (:class:`gateway.quota.spend.Accountant`, :class:`gateway.quota.limits.Limits`)
and written by one worker, at most every ``interval_s``. A request costs a
few dictionary updates instead of a task and two to three Redis round trips.

Contract:

* :meth:`BatchWriter.poke` (synchronous, cheap) says there is something to
  write; the worker starts on first use and writes within ``interval_s``.
* Each flush function returns whether it still holds something that a later
  flush must handle (a lease not yet idle, a batch Redis refused): the worker
  keeps flushing every ``interval_s`` until none does.
* A flush function handles the state backend's failures itself; anything
  else it raises is a bug, logged with its traceback, and never stops the
  worker.
* :meth:`BatchWriter.aclose` stops the worker and flushes once more.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

log = logging.getLogger("gateway.quota.batch_writer")

#: how long written-later bookkeeping may wait
DEFAULT_INTERVAL_S = 0.05

Flush = Callable[[], Awaitable[bool]]


class BatchWriter:
    def __init__(self, flushes: Sequence[Flush], *, interval_s: float = DEFAULT_INTERVAL_S) -> None:
        self._flushes = tuple(flushes)
        self._interval_s = interval_s
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        #: one flush at a time: a flush that finds the batches already taken by
        #: the worker's own must wait for that write, or a reader after it (the
        #: spend report) would miss what was still on its way
        self._lock: tuple[asyncio.AbstractEventLoop, asyncio.Lock] | None = None

    def poke(self) -> None:
        """There is something to write: make sure the worker runs."""
        wake, task = self._wake, self._task
        loop = asyncio.get_running_loop()
        if wake is None or task is None or task.done() or task.get_loop() is not loop:
            wake = self._wake = asyncio.Event()
            self._task = loop.create_task(self._run(wake))
        wake.set()

    async def flush(self) -> bool:
        """Run every flush function once, after any flush already under way has
        written what it took; True when one still holds something."""
        loop = asyncio.get_running_loop()
        if self._lock is None or self._lock[0] is not loop:
            self._lock = (loop, asyncio.Lock())
        async with self._lock[1]:
            busy = False
            for flush in self._flushes:
                try:
                    busy = await flush() or busy
                except Exception:  # a bug: logged, and the other flushes still run
                    log.exception("bookkeeping flush failed")
            return busy

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await self.flush()

    async def _run(self, wake: asyncio.Event) -> None:
        while True:
            await wake.wait()
            wake.clear()
            await asyncio.sleep(self._interval_s)
            if await self.flush():
                wake.set()
