"""The one interface every upstream provider implements.

A provider gets an :class:`UpstreamCall` (an OpenAI-shaped body whose ``model``
is already the target's model) and either returns the whole answer
(:meth:`Provider.complete`) or yields it as stream events
(:meth:`Provider.stream`). Both speak OpenAI's wire format whatever the
upstream speaks; translation happens inside the provider.

Failures are raised as :class:`gateway.errors.UpstreamError` subclasses. For a
stream, everything that fails before the first batch of events is raised by the
first ``__anext__`` so that the router can still fall back to the next target.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from gateway.endpoints import Endpoint
from gateway.targets import Target


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @classmethod
    def from_wire(cls, usage: Any) -> Usage | None:
        """Read OpenAI's ``usage`` object; ``None`` when absent or malformed."""
        if not isinstance(usage, dict):
            return None
        prompt = usage.get("prompt_tokens")
        completion = usage.get("completion_tokens", 0)
        if not isinstance(prompt, int) or not isinstance(completion, int):
            return None
        return cls(prompt_tokens=prompt, completion_tokens=completion)


_REQUEST_ID = "x-request-id"


@dataclass(frozen=True, slots=True)
class UpstreamCall:
    endpoint: Endpoint
    target: Target
    #: OpenAI-shaped request body; ``model`` is the target's model
    body: dict[str, Any]
    request_id: str
    #: W3C trace context of this attempt, sent upstream as ``traceparent``
    traceparent: str | None = None

    def trace_headers(self) -> tuple[tuple[str, str], ...]:
        """The gateway's own headers for the upstream: its request id and trace context."""
        if self.traceparent is None:
            return ((_REQUEST_ID, self.request_id),)
        return ((_REQUEST_ID, self.request_id), ("traceparent", self.traceparent))


@dataclass(slots=True)
class UpstreamReply:
    """A whole (non-streamed) answer in OpenAI's wire format."""

    data: dict[str, Any]
    #: the upstream's bytes when they can be forwarded unchanged
    raw: bytes | None = None

    @property
    def usage(self) -> Usage | None:
        return Usage.from_wire(self.data.get("usage"))

    def to_bytes(self) -> bytes:
        if self.raw is None:
            self.raw = orjson.dumps(self.data)
        return self.raw


class FramedBatch(list[bytes]):
    """A batch of stream events (their payloads, as a list) that arrived in
    canonical framing: ``raw`` is their exact bytes on the wire, each event
    ``data: <payload>\n\n``, so the relay may forward them without
    re-framing each one."""

    __slots__ = ("raw",)

    def __init__(self, payloads: list[bytes], raw: bytes) -> None:
        super().__init__(payloads)
        self.raw = raw


class Provider(Protocol):
    """An upstream that answers OpenAI-shaped calls."""

    async def complete(self, call: UpstreamCall) -> UpstreamReply:
        """The whole answer. Raises ``UpstreamError`` subclasses on failure."""
        ...

    def stream(self, call: UpstreamCall) -> AsyncIterator[list[bytes]]:
        """Yield the stream's events in batches: each batch is the JSON payloads
        (the text after ``data: ``) of the events that arrived together, in
        order, never empty, without the final ``[DONE]``. Batching lets the
        gateway write what arrived in one network read with one write, instead
        of one per event; a :class:`FramedBatch` also carries the events'
        wire bytes. Closing the iterator cancels the upstream."""
        ...

    async def aclose(self) -> None:
        """Release connections and sessions."""
        ...
