"""Circuit breakers per target and jittered backoff.

A breaker opens after ``failures_to_open`` consecutive retryable failures and
stays open for ``open_seconds``; then it is half-open and lets exactly one
probe through. The probe's success closes it, its failure opens it again.
Client errors (an upstream 4xx caused by the request) are not the target's
fault and do not count. State is per process: each replica learns on its own,
which is what a load-balanced fleet wants (no shared flapping).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum

from gateway.targets import CircuitPolicy, RetryPolicy


class CircuitState(IntEnum):
    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2


@dataclass(slots=True)
class _Breaker:
    policy: CircuitPolicy
    failures: int = 0
    opened_at: float | None = None
    probing: bool = False


class CircuitBreakers:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._breakers: dict[str, _Breaker] = {}

    def _get(self, target: str, policy: CircuitPolicy) -> _Breaker:
        breaker = self._breakers.get(target)
        if breaker is None or breaker.policy != policy:
            breaker = self._breakers[target] = _Breaker(policy)
        return breaker

    def state(self, target: str, policy: CircuitPolicy) -> CircuitState:
        breaker = self._get(target, policy)
        if breaker.opened_at is None:
            return CircuitState.CLOSED
        if self._clock() - breaker.opened_at >= policy.open_seconds:
            return CircuitState.HALF_OPEN
        return CircuitState.OPEN

    def allow(self, target: str, policy: CircuitPolicy) -> bool:
        """May a request go to ``target`` now? Takes the half-open probe slot."""
        breaker = self._get(target, policy)
        state = self.state(target, policy)
        if state is CircuitState.CLOSED:
            return True
        if state is CircuitState.HALF_OPEN and not breaker.probing:
            breaker.probing = True
            return True
        return False

    def success(self, target: str, policy: CircuitPolicy) -> None:
        breaker = self._get(target, policy)
        breaker.failures = 0
        breaker.opened_at = None
        breaker.probing = False

    def failure(self, target: str, policy: CircuitPolicy) -> CircuitState:
        breaker = self._get(target, policy)
        breaker.failures += 1
        if breaker.probing or breaker.failures >= policy.failures_to_open:
            breaker.opened_at = self._clock()
            breaker.probing = False
            return CircuitState.OPEN
        return CircuitState.CLOSED

    def release_probe(self, target: str, policy: CircuitPolicy) -> None:
        """The probe ended without telling anything (client error, cancel)."""
        self._get(target, policy).probing = False


def backoff_delay(
    policy: RetryPolicy,
    attempt: int,
    retry_after_s: float | None,
    rand: Callable[[], float] = random.random,
) -> float | None:
    """Seconds to wait before retry number ``attempt`` (1-based) on the same
    target, or ``None`` when the upstream asks for longer than ``backoff_max_s``
    (the router then moves on to the next target instead of waiting)."""
    if retry_after_s is not None:
        return retry_after_s if retry_after_s <= policy.backoff_max_s else None
    ceiling = min(policy.backoff_max_s, policy.backoff_base_s * (2 ** (attempt - 1)))
    # "full jitter": spreads retries of many clients over the whole window
    return float(ceiling * rand())
