"""One request's record, and what is emitted when it finishes: metrics and one
structured log line.

The log line holds ids, names, numbers and outcomes — never prompt or
completion text, never an API key (only its id).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from gateway.errors import (
    AuthenticationFailed,
    BudgetExceeded,
    CapacityExhausted,
    GatewayError,
    InvalidRequest,
    ModelNotFound,
    NoEligibleTarget,
    NoTargetAvailable,
    PolicyDenied,
    RateLimited,
    UpstreamError,
    UpstreamStatusError,
)
from gateway.observability.metrics import Metrics
from gateway.observability.tracing import NO_SPAN, RequestSpan
from gateway.policy.decision_log import Outcome

access_log = logging.getLogger("gateway.access")

_MAX_REQUEST_ID = 128
#: ``x-gateway-cache`` of every answer the response cache did not consider
CACHE_BYPASS = "bypass"


def new_request_id() -> str:
    """The gateway's own id of a request: the one upstreams and logs see."""
    # 128 random bits, like a UUID4 but ~20x cheaper to make (and unique per
    # process: the generator is seeded from os.urandom at start)
    return f"req_{random.getrandbits(128):032x}"


def client_request_id(value: str | None) -> str | None:
    """The client's ``x-request-id`` when it is sane (printable ASCII, at most
    128 characters), to echo back to that client only: it is never sent
    upstream nor logged (a client may put anything in it)."""
    if value and len(value) <= _MAX_REQUEST_ID and value.isprintable() and value.isascii():
        return value
    return None


@dataclass(slots=True)
class Exchange:
    """The record of one request. ``request_id`` is the gateway's own (sent
    upstream, logged, and returned as ``x-gateway-request-id`` when the client
    sent an ``x-request-id`` of its own, which is echoed as ``x-request-id``)."""

    request_id: str
    endpoint: str
    client_request_id: str | None = None
    started: float = field(default_factory=time.perf_counter)
    alias: str | None = None
    key_id: str | None = None
    team: str | None = None
    rule: str | None = None
    action: str | None = None
    target: str | None = None
    kind: str | None = None
    attempts: int = 0
    cache: str = CACHE_BYPASS
    outcome: str = "success"
    status: int = 200
    #: the level detected in the request
    level: str | None = None
    #: the level of the data that left (after redaction), when it was routed
    sent_level: str | None = None
    task: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = None
    #: what the same usage would have cost on the rule's baseline target
    baseline_usd: float | None = None
    upstream_s: float = 0.0
    first_token_s: float | None = None
    stream: bool = False
    #: e.g. ``x-ratelimit-*``
    extra_headers: dict[str, str] = field(default_factory=dict)
    #: a redacted prompt excerpt, only when the operator turned sampling on
    sample: str | None = None
    #: the request's trace span (:data:`NO_SPAN` when tracing is off)
    trace: RequestSpan = NO_SPAN
    #: writes the request's decision record, given how it ended (set once decided)
    audit: Callable[[Outcome], None] | None = None
    #: called once when the exchange is finished (the key's in-flight slot)
    on_finish: Callable[[], None] | None = None

    def headers(self) -> dict[str, str]:
        given = self.client_request_id
        if given is None:
            headers = {"x-request-id": self.request_id, "x-gateway-cache": self.cache}
        else:
            headers = {
                "x-request-id": given,
                "x-gateway-request-id": self.request_id,
                "x-gateway-cache": self.cache,
            }
        if self.rule is not None:
            headers["x-gateway-rule"] = self.rule
        if self.target is not None:
            headers["x-gateway-target"] = self.target
        if self.attempts:
            headers["x-gateway-attempts"] = str(self.attempts)
        if self.cost_usd is not None:
            headers["x-gateway-cost-usd"] = f"{self.cost_usd:.8f}"
        headers.update(self.extra_headers)
        return headers

    def failed(self, error: GatewayError) -> None:
        self.outcome = outcome_of(error)
        self.status = error.http_status

    def cancelled(self) -> None:
        """The client went away before its answer was complete."""
        self.outcome = "cancelled"
        self.status = 499


def outcome_of(error: BaseException) -> str:
    if isinstance(error, UpstreamStatusError) and error.is_client_error:
        return "client_error"
    if isinstance(error, AuthenticationFailed):
        return "auth_error"
    if isinstance(error, PolicyDenied | NoEligibleTarget):
        return "denied"
    if isinstance(error, BudgetExceeded):
        return "budget_exceeded"
    if isinstance(error, CapacityExhausted):
        # "refused for capacity" in the decision log and ``gateway audit report``
        return "capacity"
    if isinstance(error, RateLimited) and error.code != "upstream_rate_limited":
        return "rate_limited"
    if isinstance(error, NoTargetAvailable):
        return "no_target"
    if isinstance(error, UpstreamError | RateLimited):
        return "upstream_error"
    if isinstance(error, InvalidRequest | ModelNotFound):
        return "client_error"
    return (
        "client_error"
        if isinstance(error, GatewayError) and error.status < 500
        else "upstream_error"
    )


def _destination(ex: Exchange) -> str:
    """Where the request's data went: a target kind, ``denied``, or ``none``."""
    if ex.outcome == "denied":
        return "denied"
    if ex.kind is not None and ex.outcome in (
        "success",
        "stream_error",
        "cancelled",
        "client_error",
    ):
        return ex.kind
    return "none"


def finish(ex: Exchange, metrics: Metrics) -> None:
    """Emit the metrics and the access line of a finished exchange: called once
    per request, by the edge, when its answer has been sent (or has failed)."""
    if ex.on_finish is not None:
        ex.on_finish()
        ex.on_finish = None
    total = time.perf_counter() - ex.started
    kind = ex.kind or "none"
    target = metrics.target(ex.target)
    # a model name the policy publishes, else ``other``: never a client's made-up value
    alias = metrics.alias(ex.alias)
    metrics.requests.labels(
        ex.endpoint,
        alias,
        metrics.rule(ex.rule),
        target,
        kind,
        ex.outcome,
        ex.cache,
    ).inc()
    metrics.request_duration.labels(ex.endpoint, kind).observe(total)
    if ex.upstream_s:
        metrics.upstream_duration.labels(target, kind).observe(ex.upstream_s)
    if ex.first_token_s is not None:
        metrics.ttft.labels(target, kind).observe(ex.first_token_s)
    metrics.overhead.labels(ex.endpoint).observe(max(0.0, total - ex.upstream_s))
    if ex.level is not None:
        destination = _destination(ex)
        # what left is what counts: a redacted confidential request sent public data
        level = (
            ex.sent_level if destination in ("open", "proprietary") and ex.sent_level else ex.level
        )
        metrics.sensitive_requests.labels(level, destination).inc()
        if ex.outcome == "capacity":
            metrics.capacity_refusals.labels(ex.level).inc()
    if access_log.isEnabledFor(logging.INFO):
        line = {
            "event": "request",
            "request_id": ex.request_id,
            "endpoint": ex.endpoint,
            "alias": alias if ex.alias is not None else None,
            "key_id": ex.key_id,
            "team": ex.team,
            "rule": ex.rule,
            "action": ex.action,
            "target": ex.target,
            "kind": ex.kind,
            "attempts": ex.attempts,
            "status": ex.status,
            "outcome": ex.outcome,
            "cache": ex.cache,
            "stream": ex.stream,
            "level": ex.level,
            "task": ex.task,
            "latency_ms": round(total * 1000, 3),
            "upstream_ms": round(ex.upstream_s * 1000, 3),
            "prompt_tokens": ex.prompt_tokens,
            "completion_tokens": ex.completion_tokens,
            "cost_usd": ex.cost_usd,
        }
        if ex.sample is not None:
            line["prompt_sample_redacted"] = ex.sample
        access_log.info("request", extra={"fields": line})
    ex.trace.end(ex)
    if ex.audit is not None:
        ex.audit(
            Outcome(
                outcome=ex.outcome,
                status=ex.status,
                target=ex.target,
                kind=ex.kind,
                attempts=ex.attempts,
                cache=ex.cache,
                cost_usd=ex.cost_usd,
                baseline_usd=ex.baseline_usd,
                prompt_tokens=ex.prompt_tokens,
                completion_tokens=ex.completion_tokens,
            )
        )
