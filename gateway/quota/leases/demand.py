"""What rate and budget leases share: demand estimates and background top-ups."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

#: a demand sample spans at least this long, so that two requests a moment
#: apart do not read as thousands per second
MIN_SAMPLE_S = 0.1
#: leases kept per process; past it the oldest gives back what it holds
MAX_LEASES = 10_000


@dataclass(slots=True)
class Demand:
    """Units handed out per second, smoothed over the samples between grants."""

    since: float
    taken: int = 0
    rate: float = 0.0

    def sample(self, now: float) -> float:
        span = max(now - self.since, MIN_SAMPLE_S)
        self.rate = (self.rate + self.taken / span) / 2
        self.since, self.taken = now, 0
        return self.rate


def want(demand: Demand, now: float, lease_s: float) -> int:
    return math.floor(demand.sample(now) * lease_s) if lease_s > 0 else 0


class Background:
    """The top-ups a lease holder has on their way."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def start(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def wait(self) -> None:
        """Until every top-up on its way is in (each is bounded by the state
        backend's timeout; one cancelled mid-call could leave units counted
        that no lease holds)."""
        await asyncio.gather(*self._tasks, return_exceptions=True)
