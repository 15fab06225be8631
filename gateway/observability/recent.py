"""The last N decisions, in memory, for the console: facts and decisions, never text.

A bounded ring (``collections.deque``) owned by the services object; the
pipeline adds one entry per decided request (a tuple of references: the
request path pays one append). Read, an entry is the decision log's record
without the fields a client fills with free text (``metadata``, headers), so
nothing a user typed is shown.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from gateway.policy.decision_log import record
from gateway.policy.model import Decision, Facts

#: the decision-log fields the console shows (no free text)
_FIELDS = (
    "ts",
    "request_id",
    "endpoint",
    "alias",
    "team",
    "key_id",
    "rule_set",
    "level",
    "entities",
    "task",
    "prompt_tokens",
    "stream",
    "tools",
    "rule",
    "action",
    "targets",
    "sent_level",
    "excluded",
    "redacted",
    "estimated_cost_usd",
)


class RecentDecisions:
    """At most ``size`` entries, newest last; ``size`` 0 keeps none."""

    def __init__(self, size: int) -> None:
        self._ring: deque[tuple[Facts, Decision, str, float, str]] = deque(maxlen=max(0, size))

    def add(
        self, facts: Facts, decision: Decision, *, request_id: str, ts: float, rule_set: str
    ) -> None:
        if self._ring.maxlen:
            self._ring.append((facts, decision, request_id, ts, rule_set))  # atomic

    def newest_first(self) -> list[dict[str, Any]]:
        entries = list(self._ring)
        entries.reverse()
        shown = []
        for facts, decision, request_id, ts, rule_set in entries:
            full = record(facts, decision, request_id=request_id, ts=ts, rule_set=rule_set)
            shown.append({name: full[name] for name in _FIELDS})
        return shown
