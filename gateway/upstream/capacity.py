"""Live capacity per target: slots in flight, a bounded queue, and the load board.

Contract:

* Only a target that declares a capacity (``Target.capacity``) is counted;
  for every other target the router reads one field and nothing else happens.
* ``max_in_flight`` is this replica's count, kept here; ``shared_max_in_flight``
  is every replica's, a slot in the state backend (Redis when configured,
  :meth:`~gateway.state.base.RateLimiter.open_stream` with expiring slots, so
  a crashed replica's slots run out). When the backend does not answer, the
  shared limit is not enforced (the per-replica one still is) and
  ``gateway_state_errors_total{operation="capacity"}`` counts it.
* A request that finds the target full either passes it at once (a ``spill``
  rule with a later target to try) or waits in a FIFO queue at most
  ``max_queue`` deep and ``max_wait_ms`` long. A slot freed while requests
  wait is handed to the oldest of them (no newcomer jumps the queue). A full
  queue or a wait that runs out is :class:`~gateway.errors.CapacityExhausted`
  (429 with ``Retry-After``).
* :attr:`LoadBoard.current` is the load the policy sees: an immutable
  mapping, replaced (never changed) after a count or a server reading changed,
  so the facts of a request hold one consistent snapshot. A change only marks
  the snapshot stale; the next read rebuilds the entries that changed.
  Unknown is ``None``, never zero.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from gateway.errors import CapacityExhausted
from gateway.observability.metrics import Metrics
from gateway.observability.series import GaugeChild, HistogramChild
from gateway.state.base import RateLimiter, StateUnavailable
from gateway.targets import Capacity, Target, TargetLoad

log = logging.getLogger("gateway.upstream")

#: weight of the newest wait in the queue-wait moving average
_WAIT_EWMA_ALPHA = 0.2
#: how often a request waiting only for a shared slot (other replicas') asks again
SHARED_POLL_S = 0.025
_EMPTY: Mapping[str, TargetLoad] = MappingProxyType({})


def shared_scope(target: str) -> str:
    """The state backend's slot scope of a target's shared in-flight count."""
    return f"target:{target}"


@dataclass(frozen=True, slots=True)
class ServerLoad:
    """One reading of a server's own ``/metrics``; a field it does not export is None."""

    server: str
    running: float | None = None
    waiting: float | None = None
    kv_cache_usage: float | None = None


class TargetSlots:
    """One target's slots at this replica, and the requests waiting for one."""

    def __init__(self, name: str, capacity: Capacity, metrics: Metrics) -> None:
        self.name = name
        self.capacity = capacity
        self.in_flight = 0
        #: requests waiting for a local slot (a future each: set when handed one)
        self.waiters: deque[asyncio.Future[bool]] = deque()
        #: requests polling for a shared slot (the local one was free)
        self.polling = 0
        self.wait_ms: float | None = None
        self.shared_in_flight: int | None = None
        label = metrics.target(name)
        self.in_flight_gauge: GaugeChild = metrics.target_in_flight.labels(label)
        self.depth_gauge: GaugeChild = metrics.queue_depth.labels(label)
        self.wait_histogram: HistogramChild = metrics.queue_wait.labels(label)
        self.utilisation_gauge: GaugeChild = metrics.target_utilisation.labels(label)
        metrics.target_max_in_flight.labels(label).set(capacity.max_in_flight or 0)

    @property
    def queued(self) -> int:
        return len(self.waiters) + self.polling

    def try_take(self) -> bool:
        """A local slot now, if one is free and nobody waits for it."""
        limit = self.capacity.max_in_flight
        if limit is not None and (self.in_flight >= limit or self.waiters):
            return False
        self.in_flight += 1
        return True

    def give_back(self) -> None:
        """Free a local slot: to the oldest waiter if there is one."""
        waiters = self.waiters
        while waiters:
            turn = waiters.popleft()
            if not turn.done():
                turn.set_result(True)  # the slot changes hands; in_flight stays
                return
        self.in_flight -= 1

    def make_room(self) -> None:
        """After the limit was raised (a reload): hand the new room to waiters."""
        limit = self.capacity.max_in_flight
        while self.waiters and (limit is None or self.in_flight < limit):
            turn = self.waiters.popleft()
            if not turn.done():
                self.in_flight += 1
                turn.set_result(True)

    def enqueue(self) -> asyncio.Future[bool]:
        """A place at the back of the queue (see :meth:`wait_turn`)."""
        turn: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self.waiters.append(turn)
        return turn

    async def wait_turn(self, turn: asyncio.Future[bool], timeout_s: float) -> bool:
        """Wait for a local slot; True once one is held, False when the wait ran out."""
        try:
            async with asyncio.timeout(timeout_s):
                return await turn
        except TimeoutError:
            self._leave(turn)
            return False
        except asyncio.CancelledError:
            self._leave(turn)
            raise

    def _leave(self, turn: asyncio.Future[bool]) -> None:
        if turn.done() and not turn.cancelled():
            self.give_back()  # handed a slot as the wait ended: pass it on
            return
        turn.cancel()
        with contextlib.suppress(ValueError):
            self.waiters.remove(turn)

    def observe_wait(self, seconds: float) -> None:
        self.wait_histogram.observe(seconds)
        ms = seconds * 1000
        previous = self.wait_ms
        self.wait_ms = ms if previous is None else previous + _WAIT_EWMA_ALPHA * (ms - previous)


class LoadBoard:
    """Every tracked target's slots and readings, and the load snapshot built from them."""

    def __init__(
        self,
        metrics: Metrics,
        limiter: RateLimiter | None = None,
        *,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._metrics = metrics
        self._limiter = limiter
        self._clock = clock
        self._slots: dict[str, TargetSlots] = {}
        self._server: dict[str, ServerLoad] = {}
        #: shared-slot releases under way (kept referenced until done)
        self._closing: set[asyncio.Task[None]] = set()
        #: the load snapshot (see :attr:`current`) and the targets whose entry is stale
        self._snapshot: Mapping[str, TargetLoad] = _EMPTY
        self._stale: set[str] = set()

    # -- the request path ---------------------------------------------------------

    def slots(self, target: Target) -> TargetSlots:
        capacity = target.capacity
        assert capacity is not None
        slots = self._slots.get(target.name)
        if slots is None:
            slots = self._slots[target.name] = TargetSlots(target.name, capacity, self._metrics)
        elif slots.capacity is not capacity and slots.capacity != capacity:
            slots.capacity = capacity  # a reload changed it: the counts carry on
            self._metrics.target_max_in_flight.labels(self._metrics.target(target.name)).set(
                capacity.max_in_flight or 0
            )
            slots.make_room()
        return slots

    async def acquire(self, target: Target, *, may_wait: bool) -> Callable[[], None]:
        """A slot on ``target`` (which has a capacity), or :class:`CapacityExhausted`.

        ``may_wait`` False: refused at once when the target is full (the caller
        has a later target to try); True: queued, within ``max_queue`` and
        ``max_wait_ms``. The returned function frees the slot, once however
        often it is called.
        """
        slots = self.slots(target)
        capacity = slots.capacity
        started = self._clock()
        wait_s = capacity.max_wait_ms / 1000 if may_wait and capacity.max_queue else 0.0
        deadline = started + wait_s
        while True:
            held = slots.try_take()
            if not held and wait_s > 0 and slots.queued < capacity.max_queue:
                turn = slots.enqueue()
                self._publish(slots)
                held = await slots.wait_turn(turn, max(0.0, deadline - self._clock()))
            if held:
                try:
                    shared = await self._take_shared(slots, capacity)
                except BaseException:  # cancelled while asking Redis: the local slot goes back
                    slots.give_back()
                    self._publish(slots)
                    raise
                if shared is not False:
                    slots.observe_wait(self._clock() - started)
                    self._publish(slots)
                    return self._releaser(slots, shared=shared is True)
                slots.give_back()
                remaining = deadline - self._clock()
                if remaining > 0 and slots.queued < capacity.max_queue:
                    slots.polling += 1
                    self._publish(slots)
                    try:
                        await asyncio.sleep(min(SHARED_POLL_S, remaining))
                    finally:
                        slots.polling -= 1
                    continue
            waited = self._clock() - started
            if wait_s > 0:
                slots.observe_wait(waited)  # a wait that ran out is a wait too
            self._publish(slots)
            raise self._refusal(slots, capacity, waited=waited, tried=wait_s > 0)

    def _releaser(self, slots: TargetSlots, *, shared: bool) -> Callable[[], None]:
        released = False

        def release() -> None:
            nonlocal released
            if released:
                return
            released = True
            slots.give_back()
            if shared:  # only a slot that was taken is given back
                self._spawn_close(slots.name)
            self._publish(slots)

        return release

    async def _take_shared(self, slots: TargetSlots, capacity: Capacity) -> bool | None:
        """A shared slot: True taken, False none left, None none needed (no shared
        limit, or the backend did not answer: then it cannot be enforced)."""
        limit = capacity.shared_max_in_flight
        if limit is None or self._limiter is None:
            return None
        try:
            taken = await self._limiter.open_stream(shared_scope(slots.name), limit)
        except StateUnavailable:
            self._metrics.state_errors.labels("capacity").inc()
            return None  # the per-replica limit still holds
        if not taken:
            slots.shared_in_flight = limit
        return taken

    def _spawn_close(self, name: str) -> None:
        limiter = self._limiter
        if limiter is None:
            return

        async def close() -> None:
            try:
                await limiter.close_stream(shared_scope(name))
            except StateUnavailable:
                self._metrics.state_errors.labels("capacity").inc()

        task = asyncio.get_running_loop().create_task(close())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    def _refusal(
        self, slots: TargetSlots, capacity: Capacity, *, waited: float, tried: bool
    ) -> CapacityExhausted:
        if not tried:
            why = "is at capacity"
        elif waited * 1000 + 1 >= capacity.max_wait_ms:
            why = f"stayed at capacity for the {capacity.max_wait_ms:g} ms a request may wait"
        else:
            why = f"is at capacity and its queue is full ({capacity.max_queue} waiting)"
        retry = max(1.0, math.ceil(capacity.max_wait_ms / 1000))
        return CapacityExhausted(
            f"Target {slots.name} {why}; retry later.", retry_after_s=retry, target=slots.name
        )

    async def aclose(self) -> None:
        """Wait for the shared-slot releases under way (at shutdown)."""
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)

    # -- background readings ---------------------------------------------------------

    def set_server(self, target: str, reading: ServerLoad | None) -> None:
        """A server's own load, or ``None`` when it could not be read (unknown)."""
        if reading is None:
            if self._server.pop(target, None) is None and target not in self._snapshot:
                return
        else:
            self._server[target] = reading
        label = self._metrics.target(target)
        for state, value in (
            ("running", reading.running if reading else None),
            ("waiting", reading.waiting if reading else None),
        ):
            self._metrics.server_requests.labels(label, state).set(
                math.nan if value is None else value
            )
        slots = self._slots.get(target)
        self._publish_name(target, slots)

    async def refresh_shared(self, targets: list[Target]) -> None:
        """Read each shared in-flight count (a failed read is unknown)."""
        limiter = self._limiter
        if limiter is None:
            return
        for target in targets:
            if target.capacity is None or target.capacity.shared_max_in_flight is None:
                continue
            slots = self.slots(target)
            try:
                slots.shared_in_flight = await limiter.count_streams(shared_scope(target.name))
            except StateUnavailable:
                self._metrics.state_errors.labels("capacity").inc()
                slots.shared_in_flight = None
            self._publish(slots)

    # -- the snapshot ----------------------------------------------------------------

    @property
    def current(self) -> Mapping[str, TargetLoad]:
        """What the policy sees: rebuilt, for the targets that changed, when first
        read after a change (a request reads it once; its acquire and release only
        mark it stale)."""
        if self._stale:
            snapshot = dict(self._snapshot)
            for name in self._stale:
                load = self._load_of(name)
                if load is None:
                    snapshot.pop(name, None)
                else:
                    snapshot[name] = load
            self._stale.clear()
            self._snapshot = MappingProxyType(snapshot)
        return self._snapshot

    def _publish(self, slots: TargetSlots) -> None:
        """The counts of ``slots`` changed: mark the snapshot stale, set the gauges."""
        self._stale.add(slots.name)
        slots.in_flight_gauge.set(slots.in_flight)
        slots.depth_gauge.set(slots.queued)
        slots.utilisation_gauge.set(_fraction(slots, self._server.get(slots.name)))

    def _publish_name(self, name: str, slots: TargetSlots | None) -> None:
        if slots is not None:
            self._publish(slots)
            return
        self._stale.add(name)
        self._metrics.target_utilisation.labels(self._metrics.target(name)).set(
            _fraction(None, self._server.get(name))
        )

    def _load_of(self, name: str) -> TargetLoad | None:
        slots = self._slots.get(name)
        server = self._server.get(name)
        if slots is None and server is None:
            return None
        capacity = slots.capacity if slots is not None else None
        return TargetLoad.of(
            in_flight=slots.in_flight if slots is not None else None,
            max_in_flight=capacity.max_in_flight if capacity is not None else None,
            shared_in_flight=slots.shared_in_flight if slots is not None else None,
            shared_max_in_flight=capacity.shared_max_in_flight if capacity is not None else None,
            queue_depth=slots.queued if slots is not None else None,
            queue_wait_ms=slots.wait_ms if slots is not None else None,
            server=server.server if server is not None else None,
            server_running=server.running if server is not None else None,
            server_waiting=server.waiting if server is not None else None,
            kv_cache_usage=server.kv_cache_usage if server is not None else None,
        )


def _fraction(slots: TargetSlots | None, server: ServerLoad | None) -> float:
    """``TargetLoad.utilisation`` for the gauge, without building a load (NaN: unknown)."""
    best = math.nan
    if slots is not None:
        capacity = slots.capacity
        if capacity.max_in_flight:
            best = slots.in_flight / capacity.max_in_flight
        shared = slots.shared_in_flight
        if shared is not None and capacity.shared_max_in_flight:
            fraction = shared / capacity.shared_max_in_flight
            best = fraction if math.isnan(best) else max(best, fraction)
    if server is not None and server.kv_cache_usage is not None:
        usage = server.kv_cache_usage
        best = usage if math.isnan(best) else max(best, usage)
    return best
