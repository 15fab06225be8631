"""What the steps before the upstream call worked out for one request."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gateway.judging.redaction import Redaction
from gateway.judging.request import ParsedRequest
from gateway.policy.compiled import CompiledPolicy
from gateway.policy.model import Decision, Facts
from gateway.quota.limits import Admission
from gateway.state.base import KeyRecord
from gateway.targets import Target
from gateway.upstream.responses_wire import NativeResponses


@dataclass(slots=True)
class Work:
    parsed: ParsedRequest
    policy: CompiledPolicy
    facts: Facts
    decision: Decision
    targets: list[Target]
    who: KeyRecord | None
    #: the body to send (redacted when the rule says so)
    body: dict[str, Any]
    #: the client's headers that go upstream (validated, judged like the body)
    forwarded: tuple[tuple[str, str], ...] = ()
    redaction: Redaction | None = None
    #: where to look for a cached answer (None: don't read the cache)
    cache_read: str | None = None
    #: where to store the answer (None: don't store it)
    cache_write: str | None = None
    #: what the request holds of limits and budgets until it is settled
    admission: Admission = field(default_factory=Admission)
    #: a Responses request's native plan (None: chat, or translated only)
    native: NativeResponses | None = None
    #: the answer is a Response (from a target that speaks Responses natively)
    answered_native: bool = False
