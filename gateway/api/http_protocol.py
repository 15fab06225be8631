"""The gateway's HTTP/1.1 server protocol: uvicorn's httptools protocol, with
a response's head sent with its first body bytes, and slow, idle, oversized
and surplus connections cut.

**One write per answer.** uvicorn writes a response's status line and headers
as soon as the app sends ``http.response.start``, then the body in a second
write: two system calls (and, on loopback, two trips through the receiving
side's network stack) for every answer, where one would do. Here the transport
holds a response head until the next write and sends both with one
``writelines``; if nothing follows within the current event-loop iteration
(an app that starts a response and then waits), the head goes out alone.
``100 Continue`` is never held: the client waits for it before sending its body.

**Connection limits** (:class:`ConnectionLimits`, from the ``GATEWAY_*`` settings):

* before its first request and between requests a connection may be idle for
  ``keepalive_timeout_s``; then it is closed without a word;
* from a request's first byte, its line and headers must arrive within
  ``header_timeout_s`` and stay under ``max_header_bytes`` (else 431);
* the whole request must arrive within ``body_timeout_s`` plus one second per
  ``body_min_rate`` bytes received (a minimum average rate; the clock stops
  while the app has not taken what already came). A request too slow gets a
  408 and the connection is closed;
* while the app works on a request (and streams its answer) no clock runs:
  the upstream timeouts bound that;
* past ``max_connections`` open connections, a new one gets a 503 and is closed.

**An answer before the body is in** (a 413 for a body over the limit): the
rest of the body is read and dropped, up to ``discard_bytes`` and within the
same minimum rate, and only then is the connection closed (or kept, if the
answer allowed it), so that a client that writes its whole body before reading
gets the answer instead of a connection reset.

Every refusal here is an OpenAI-shaped JSON error with ``connection: close``.
The clocks cost one timer per connection, never one per request: it is armed
at most ``tick`` seconds ahead (the shortest limit), and when it fires before
the phase's deadline it re-arms for what is left. A phase change only sets two
attributes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, cast

import httptools
import orjson
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from gateway.errors import (
    GatewayError,
    HeadersTooLarge,
    InvalidRequest,
    RequestTimeout,
    ServiceUnavailable,
)
from gateway.settings import Settings

log = logging.getLogger("gateway.api.http")

_HEAD_START = b"HTTP/1.1 "
_HEAD_END = b"\r\n\r\n"

# a connection's phases
_IDLE = 0  # no request under way: the keep-alive clock
_HEAD = 1  # a request's line and headers are arriving: the header clock
_BODY = 2  # its body is arriving: the rate clock
_BUSY = 3  # the app has the whole request: no clock
_DRAIN = 4  # answered before the body was in: dropping the rest (rate clock, byte cap)
_CLOSED = 5


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    max_header_bytes: int = 64 * 1024
    header_timeout_s: float = 10.0
    body_timeout_s: float = 10.0
    body_min_rate: int = 32 * 1024
    keepalive_timeout_s: float = 30.0
    max_connections: int = 4096
    #: after an early answer, how much more of a body is read and dropped
    #: (the larger of the body limit and 16 MiB)
    discard_bytes: int = 16 * 1024 * 1024

    @classmethod
    def of(cls, settings: Settings) -> ConnectionLimits:
        return cls(
            max_header_bytes=settings.max_header_bytes,
            header_timeout_s=settings.header_timeout_s,
            body_timeout_s=settings.body_timeout_s,
            body_min_rate=settings.body_min_rate,
            keepalive_timeout_s=settings.keepalive_timeout_s,
            max_connections=settings.max_connections,
            discard_bytes=max(settings.max_body_bytes, 16 * 1024 * 1024),
        )

    @property
    def tick(self) -> float:
        """How far ahead a connection's timer is ever armed: no new deadline can
        come sooner than this after the moment it is set."""
        return max(0.01, min(self.header_timeout_s, self.body_timeout_s, self.keepalive_timeout_s))


def protocol_class(limits: ConnectionLimits) -> type[GatewayHttpProtocol]:
    """The protocol class to pass as uvicorn's ``http`` setting, bound to ``limits``."""
    return cast(
        "type[GatewayHttpProtocol]",
        type("GatewayHttpProtocol", (GatewayHttpProtocol,), {"limits": limits}),
    )


class _Refused(Exception):
    def __init__(self, error: GatewayError) -> None:
        self.error = error


def _no_linger() -> bool:
    return False


class _HeadHoldingTransport:
    __slots__ = ("_head", "_linger", "_loop", "_transport")

    def __init__(
        self,
        transport: asyncio.Transport,
        loop: asyncio.AbstractEventLoop,
        linger: Callable[[], bool] = _no_linger,
    ) -> None:
        self._transport = transport
        self._loop = loop
        self._head: bytes | None = None
        self._linger = linger

    def write(self, data: bytes) -> None:
        head = self._head
        if head is not None:
            self._head = None
            self._transport.writelines((head, data))
        elif (
            data.startswith(_HEAD_START)
            and data.endswith(_HEAD_END)
            and data[9:10] != b"1"  # informational (100 Continue): never held
        ):
            self._head = data
            self._loop.call_soon(self._flush)
        else:
            self._transport.write(data)

    def _flush(self) -> None:
        head = self._head
        if head is not None:
            self._head = None
            self._transport.write(head)

    def close(self) -> None:
        """uvicorn's close after an answer: lingers while the request's body is
        still arriving (see the module's docstring)."""
        self._flush()
        if not self._linger():
            self._transport.close()

    def force_close(self) -> None:
        self._flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class GatewayHttpProtocol(HttpToolsProtocol):
    """Use :func:`protocol_class` to bind the limits (as :mod:`gateway.server` does)."""

    limits: ClassVar[ConnectionLimits] = ConnectionLimits()

    _phase: int
    _since: float
    _count: int
    _idle_s: float
    _timer: asyncio.TimerHandle | None
    _keep_after_drain: bool

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._phase = _IDLE
        self._count = 0
        self._timer = None
        self._keep_after_drain = False
        held = _HeadHoldingTransport(cast(asyncio.Transport, transport), self.loop, self._linger)
        super().connection_made(cast(asyncio.Transport, held))
        limits = self.limits
        if len(self.connections) > limits.max_connections:
            self._refuse(
                ServiceUnavailable(
                    "The gateway has too many open connections; try again shortly.",
                    code="too_many_connections",
                )
            )
            return
        self._idle_s = limits.keepalive_timeout_s
        self._since = now = self.loop.time()
        self._arm(now)

    def connection_lost(self, exc: Exception | None) -> None:
        self._phase = _CLOSED
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        phase = self._phase
        if phase == _IDLE:
            self._phase = phase = _HEAD
            self._since = self.loop.time()
            self._count = 0
        if phase <= _BODY:
            self._count += len(data)
        elif phase == _DRAIN:
            self._count += len(data)
            if self._count > self.limits.discard_bytes:
                self._close()
                return
        elif phase == _CLOSED:
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            refused = exc.__context__
            if isinstance(refused, _Refused):
                self._refuse(refused.error)
                return
            self._bad_request()
            return
        except httptools.HttpParserError:
            self._bad_request()
            return
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        if self._phase == _HEAD and self._count > self.limits.max_header_bytes:
            self._refuse(self._headers_too_large())

    def on_headers_complete(self) -> None:
        limits = self.limits
        # the bytes so far may include the start of the body: count exactly
        if self._count > limits.max_header_bytes and self._head_size() > limits.max_header_bytes:
            raise _Refused(self._headers_too_large())
        self._phase = _BODY
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        if self._phase == _DRAIN:
            if self._keep_after_drain:
                self._to_idle()
            else:
                self._close()
        elif self._phase != _CLOSED:
            self._phase = _BUSY

    def on_response_complete(self) -> None:
        # uvicorn's, with this protocol's clocks instead of a keep-alive timer per response
        self.server_state.total_requests += 1
        if self.transport.is_closing() or self._phase == _CLOSED:
            return
        self.flow.resume_reading()
        if self.pipeline:
            cycle, app = self.pipeline.pop()
            self._start_asgi_task(cycle, app)
        elif self._phase == _BODY:  # answered before the body was in
            self._start_drain(keep=True)
        elif self._phase == _BUSY:
            self._to_idle()

    # -- clocks ---------------------------------------------------------------

    def _to_idle(self) -> None:
        self._phase = _IDLE
        self._since = self.loop.time()

    def _deadline(self) -> float:
        phase, limits = self._phase, self.limits
        if phase == _IDLE:
            return self._since + self._idle_s
        if phase == _HEAD:
            return self._since + limits.header_timeout_s
        if phase in (_BODY, _DRAIN):
            return self._since + limits.body_timeout_s + self._count / limits.body_min_rate
        return float("inf")

    def _arm(self, now: float) -> None:
        self._timer = self.loop.call_at(
            min(self._deadline(), now + self.limits.tick), self._on_timer
        )

    def _on_timer(self) -> None:
        self._timer = None
        phase = self._phase
        if phase == _CLOSED:
            return
        now = self.loop.time()
        if phase == _BODY and self.flow.read_paused:
            # the app has not taken what came yet: not the client's delay
            self._since, self._count = now, 0
        if now < self._deadline():
            self._arm(now)
            return
        if phase in (_IDLE, _DRAIN):
            log.debug("closing an idle or draining connection from %s", self.client)
            self._close()
        elif self.cycle is not None and self.cycle.response_started and phase == _BODY:
            self._close()
        else:
            what = "headers" if phase == _HEAD else "body"
            log.debug("request %s from %s too slow; closing", what, self.client)
            self._refuse(
                RequestTimeout(
                    f"The request's {what} did not arrive in time; the connection is closed.",
                )
            )

    # -- ending a connection ----------------------------------------------------

    def _linger(self) -> bool:
        """Called when uvicorn closes after an answer: while the body is still
        arriving, drop it first (see the module's docstring)."""
        if self._phase == _BODY:
            self._start_drain(keep=False)
            return True
        return self._phase == _DRAIN

    def _start_drain(self, *, keep: bool) -> None:
        if self._phase != _DRAIN:
            self._phase = _DRAIN
            self._keep_after_drain = keep
            self._count = 0
            self._since = self.loop.time()
        else:
            self._keep_after_drain = self._keep_after_drain and keep

    def _close(self) -> None:
        self._phase = _CLOSED
        transport = cast(_HeadHoldingTransport, self.transport)
        transport.force_close()

    def _refuse(self, error: GatewayError) -> None:
        """Answer ``error`` in OpenAI's shape and close."""
        body = orjson.dumps(error.body())
        head = b"".join(
            (
                STATUS_LINE[error.http_status],
                b"content-type: application/json\r\ncontent-length: ",
                str(len(body)).encode(),
                b"\r\nconnection: close\r\n\r\n",
            )
        )
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            # the app's answer, if any comes, goes nowhere; its reads see the client gone
            cycle.disconnected = True
            cycle.message_event.set()
        if not self.transport.is_closing():
            self.transport.write(head + body)
        self._close()

    def _bad_request(self) -> None:
        log.debug("invalid HTTP request from %s", self.client)
        self._refuse(InvalidRequest("Invalid HTTP request received.", code="invalid_http"))

    def _headers_too_large(self) -> HeadersTooLarge:
        return HeadersTooLarge(
            f"The request line and headers are over {self.limits.max_header_bytes} bytes "
            "(GATEWAY_MAX_HEADER_BYTES).",
        )

    def _head_size(self) -> int:
        return len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)
