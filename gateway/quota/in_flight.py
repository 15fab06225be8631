"""Requests in flight per key, in this process: one key cannot take every worker.

A request holds its key's slot from authentication (before its body is judged)
until its answer is complete, a stream included. Past ``limit`` slots a key's
next request is refused at once with a 429 and ``Retry-After: 1`` (never
queued); other keys are untouched. The count is per replica, on purpose: it
protects this process's event loop, not a quota (rate limits and budgets are
shared through the state backend, :mod:`gateway.quota.limits`).
"""

from __future__ import annotations

from collections.abc import Callable

from gateway.errors import RateLimited


def _nothing() -> None:
    return None


class InFlight:
    def __init__(self, limit: int) -> None:
        #: 0: no limit
        self.limit = limit
        self._counts: dict[str, int] = {}

    def count(self, key_id: str) -> int:
        return self._counts.get(key_id, 0)

    def enter(self, key_id: str) -> Callable[[], None]:
        """Take one of ``key_id``'s slots (or raise :class:`RateLimited`); the
        returned function gives it back, once however often it is called."""
        if not self.limit:
            return _nothing
        counts = self._counts
        held = counts.get(key_id, 0)
        if held >= self.limit:
            raise RateLimited(
                f"This key has {held} requests in flight, the most this gateway allows at once "
                f"(GATEWAY_KEY_MAX_IN_FLIGHT={self.limit}); retry when one has finished.",
                retry_after_s=1,
                code="too_many_requests_in_flight",
            )
        counts[key_id] = held + 1
        released = False

        def release() -> None:
            nonlocal released
            if released:
                return
            released = True
            left = counts[key_id] - 1
            if left:
                counts[key_id] = left
            else:
                del counts[key_id]

        return release
