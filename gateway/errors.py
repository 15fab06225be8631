"""One exception tree for the whole gateway.

Every error the gateway can answer with is a :class:`GatewayError`. Each class
knows its HTTP status, its OpenAI error ``type`` and ``code``, and whether a
failure of that kind may be retried on the next target (``retryable``). One
handler in :mod:`gateway.api.render` turns any of them into OpenAI's body::

    {"error": {"message": ..., "type": ..., "param": ..., "code": ...}}

Nothing classifies errors by matching their text: the class is the contract.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar


class GatewayError(Exception):
    """Base of every error the gateway renders to a client."""

    status: ClassVar[int] = 500
    type: ClassVar[str] = "api_error"
    default_code: ClassVar[str | None] = None
    #: may the router try the next target after this failure?
    retryable: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code if code is not None else self.default_code
        self.headers: dict[str, str] = dict(headers or {})

    @property
    def http_status(self) -> int:
        return self.status

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }


# --- the client's fault (4xx): never retried, never reaches an upstream ----


class InvalidRequest(GatewayError):
    status = 400
    type = "invalid_request_error"


class PayloadTooLarge(InvalidRequest):
    status = 413
    default_code = "request_too_large"


class RequestTimeout(InvalidRequest):
    """The client took too long to send its request (headers or body)."""

    status = 408
    default_code = "request_timeout"


class HeadersTooLarge(InvalidRequest):
    status = 431
    default_code = "request_headers_too_large"


class AuthenticationFailed(GatewayError):
    status = 401
    type = "invalid_request_error"
    default_code = "invalid_api_key"


class PolicyDenied(GatewayError):
    """A policy rule denied the request (403)."""

    status = 403
    type = "permission_error"
    default_code = "policy_denied"


class ModelNotFound(GatewayError):
    status = 404
    type = "invalid_request_error"
    default_code = "model_not_found"


class NotFound(GatewayError):
    status = 404
    type = "invalid_request_error"
    default_code = "not_found"


class MethodNotAllowed(GatewayError):
    status = 405
    type = "invalid_request_error"
    default_code = "method_not_allowed"


def retry_after_header(seconds: float) -> int:
    """The whole seconds a ``Retry-After`` header says: rounded up, at least 1 (a client told
    0 would retry at once). ``x-ratelimit-reset-*`` on the same 429 say the same number."""
    return max(1, math.ceil(seconds - 1e-9))


class RateLimited(GatewayError):
    """A gateway limit (requests, tokens, concurrent streams) refused the request."""

    status = 429
    type = "rate_limit_exceeded"
    default_code = "rate_limit_exceeded"

    def __init__(
        self,
        message: str,
        *,
        retry_after_s: float,
        headers: Mapping[str, str] | None = None,
        code: str | None = None,
    ) -> None:
        merged = {"retry-after": str(retry_after_header(retry_after_s))}
        merged.update(headers or {})
        super().__init__(message, code=code, headers=merged)
        self.retry_after_s = retry_after_s


class CapacityExhausted(RateLimited):
    """Every target the request may go to is at capacity, and its queue was full
    or the wait ran out (``max_wait_ms``): 429 with ``Retry-After``."""

    default_code = "target_at_capacity"

    def __init__(self, message: str, *, retry_after_s: float, target: str) -> None:
        super().__init__(message, retry_after_s=retry_after_s, code="target_at_capacity")
        #: the target that was full (a name from the policy)
        self.target = target


class BudgetExceeded(GatewayError):
    status = 429
    type = "insufficient_quota"
    default_code = "insufficient_quota"


# --- failures of the gateway's own path (5xx) ------------------------------


class NoTargetAvailable(GatewayError):
    """Every eligible target failed or is unavailable; names why."""

    status = 503
    type = "api_error"
    default_code = "no_target_available"


class NoEligibleTarget(GatewayError):
    """The data's sensitivity allows none of the rule's targets: fail closed."""

    status = 403
    type = "permission_error"
    default_code = "no_eligible_target"


class ServiceUnavailable(GatewayError):
    status = 503
    type = "api_error"
    default_code = "service_unavailable"


class InternalError(GatewayError):
    status = 500
    type = "api_error"
    default_code = "internal_error"


# --- upstream failures ------------------------------------------------------


class UpstreamError(GatewayError):
    """An upstream target failed. ``reason`` is a bounded label for metrics."""

    status = 502
    type = "api_error"
    default_code = "upstream_error"
    retryable = True
    reason: ClassVar[str] = "error"


class UpstreamConnectError(UpstreamError):
    """No connection to a target. ``detail`` says why and where, in words
    ("connection refused at http://localhost:8000/v1"), for error messages."""

    reason = "connect"

    def __init__(self, message: str, *, detail: str | None = None) -> None:
        super().__init__(message)
        self.detail = detail


class UpstreamTimeout(UpstreamError):
    status = 504
    default_code = "upstream_timeout"
    reason = "timeout"


class UpstreamProtocolError(UpstreamError):
    """The upstream answered something that is not OpenAI's wire format."""

    reason = "protocol"


class UpstreamDisconnected(UpstreamError):
    reason = "disconnected"


class UpstreamStatusError(UpstreamError):
    """The upstream answered with an HTTP error status.

    5xx and 429 are retryable on the next target; any other 4xx is the
    client's (context length exceeded, bad parameter) and reaches the client
    with the upstream's own message, type, param and code.
    """

    def __init__(
        self,
        upstream_status: int,
        message: str,
        *,
        error_type: str | None = None,
        param: str | None = None,
        code: str | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        headers = {}
        if retry_after_s is not None and upstream_status == 429:
            headers["retry-after"] = str(retry_after_header(retry_after_s))
        super().__init__(message, param=param, code=code, headers=headers)
        self.upstream_status = upstream_status
        self.error_type = error_type
        self.retry_after_s = retry_after_s

    @property
    def http_status(self) -> int:
        if self.is_client_error:
            return self.upstream_status
        if self.upstream_status == 429:
            return 429
        return 502

    @property
    def is_client_error(self) -> bool:
        # 401/403 upstream mean the gateway's own credentials were refused.
        return 400 <= self.upstream_status < 500 and self.upstream_status not in (
            401,
            403,
            408,
            429,
        )

    @property
    def is_retryable(self) -> bool:
        return not self.is_client_error

    @property
    def status_reason(self) -> str:
        if self.upstream_status == 429:
            return "429"
        if self.upstream_status >= 500:
            return "5xx"
        return "4xx"

    def body(self) -> dict[str, Any]:
        default_type = "invalid_request_error" if self.is_client_error else "api_error"
        if self.upstream_status == 429:
            default_type = "rate_limit_exceeded"
        return {
            "error": {
                "message": self.message,
                "type": self.error_type or default_type,
                "param": self.param,
                "code": self.code,
            }
        }


#: every value :func:`failure_reason` gives for an upstream failure (a closed set for metrics)
FAILURE_REASONS = (
    "connect",
    "timeout",
    "protocol",
    "disconnected",
    "circuit_open",
    "unavailable",
    "error",
    "5xx",
    "429",
    "4xx",
    "capacity",
)


def is_retryable(error: BaseException) -> bool:
    """May the router try the next target after ``error``?"""
    if isinstance(error, UpstreamStatusError):
        return error.is_retryable
    return isinstance(error, GatewayError) and error.retryable


def failure_reason(error: BaseException) -> str:
    """A bounded label naming a failure, for metrics and traces."""
    if isinstance(error, CapacityExhausted):
        return "capacity"
    if isinstance(error, UpstreamStatusError):
        return error.status_reason
    if isinstance(error, UpstreamError):
        return error.reason
    if isinstance(error, GatewayError):
        return type(error).__name__
    return "internal"
