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
from gateway.targets import Prices, Target


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens an answer used, in OpenAI's convention: ``prompt_tokens``
    counts every prompt token, including those read from the provider's
    prompt cache (``cached_tokens``) and those written to it
    (``cache_write_tokens``); ``completion_tokens`` includes
    ``reasoning_tokens``."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def cost(self, prices: Prices) -> float:
        """USD of this usage at ``prices`` (each kind of token at its own rate)."""
        return prices.cost(
            self.prompt_tokens,
            self.completion_tokens,
            cached_tokens=self.cached_tokens,
            cache_write_tokens=self.cache_write_tokens,
            reasoning_tokens=self.reasoning_tokens,
        )

    @classmethod
    def from_wire(cls, usage: Any) -> Usage | None:
        """Read a ``usage`` object; ``None`` when absent or malformed.

        OpenAI's shape: ``prompt_tokens``, ``completion_tokens``,
        ``prompt_tokens_details.cached_tokens`` and
        ``completion_tokens_details.reasoning_tokens``; the cache-write count
        litellm adds for Anthropic (``cache_creation_input_tokens``, or
        ``prompt_tokens_details.cache_creation_tokens``) is read too.
        Anthropic's own shape (``input_tokens`` without the cache reads and
        writes, ``output_tokens``, ``cache_read_input_tokens``,
        ``cache_creation_input_tokens``) is turned into OpenAI's."""
        if not isinstance(usage, dict):
            return None
        prompt = usage.get("prompt_tokens")
        if prompt is None and isinstance(usage.get("input_tokens"), int):
            return cls._from_anthropic(usage)
        completion = usage.get("completion_tokens", 0)
        if not isinstance(prompt, int) or not isinstance(completion, int):
            return None
        details = usage.get("prompt_tokens_details")
        out_details = usage.get("completion_tokens_details")
        if details is None and out_details is None and "cache_creation_input_tokens" not in usage:
            return cls(prompt_tokens=prompt, completion_tokens=completion)
        details = details if isinstance(details, dict) else {}
        out_details = out_details if isinstance(out_details, dict) else {}
        cached = _count(details.get("cached_tokens")) or _count(
            usage.get("cache_read_input_tokens")
        )
        written = _count(details.get("cache_creation_tokens")) or _count(
            usage.get("cache_creation_input_tokens")
        )
        return cls(
            prompt_tokens=prompt,
            completion_tokens=completion,
            cached_tokens=cached,
            cache_write_tokens=written,
            reasoning_tokens=_count(out_details.get("reasoning_tokens")),
        )

    @classmethod
    def from_responses(cls, usage: Any) -> Usage | None:
        """Read a Responses API ``usage`` (``input_tokens`` counting the cached
        ones, ``output_tokens`` counting the reasoning ones, and their
        ``input_tokens_details.cached_tokens`` and
        ``output_tokens_details.reasoning_tokens``); ``None`` when absent."""
        if not isinstance(usage, dict) or not isinstance(usage.get("input_tokens"), int):
            return None
        details = usage.get("input_tokens_details")
        out_details = usage.get("output_tokens_details")
        details = details if isinstance(details, dict) else {}
        out_details = out_details if isinstance(out_details, dict) else {}
        return cls(
            prompt_tokens=_count(usage.get("input_tokens")),
            completion_tokens=_count(usage.get("output_tokens")),
            cached_tokens=_count(details.get("cached_tokens")),
            cache_write_tokens=_count(details.get("cache_write_tokens")),
            reasoning_tokens=_count(out_details.get("reasoning_tokens")),
        )

    @classmethod
    def _from_anthropic(cls, usage: dict[str, Any]) -> Usage:
        read = _count(usage.get("cache_read_input_tokens"))
        written = _count(usage.get("cache_creation_input_tokens"))
        return cls(
            prompt_tokens=_count(usage.get("input_tokens")) + read + written,
            completion_tokens=_count(usage.get("output_tokens")),
            cached_tokens=read,
            cache_write_tokens=written,
        )


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
    #: client headers this target gets (judged; :mod:`gateway.judging.forwarded`)
    forwarded: tuple[tuple[str, str], ...] = ()

    def trace_headers(self) -> tuple[tuple[str, str], ...]:
        """The gateway's own headers for the upstream: its request id and trace context."""
        if self.traceparent is None:
            return ((_REQUEST_ID, self.request_id),)
        return ((_REQUEST_ID, self.request_id), ("traceparent", self.traceparent))


@dataclass(slots=True)
class UpstreamReply:
    """A whole (non-streamed) answer in OpenAI's wire format: a chat
    completion (or completion, embeddings), or a Response object when the
    call went to a target's native Responses endpoint (``responses``)."""

    data: dict[str, Any]
    #: the upstream's bytes when they can be forwarded unchanged
    raw: bytes | None = None
    responses: bool = False

    @property
    def usage(self) -> Usage | None:
        if self.responses:
            return Usage.from_responses(self.data.get("usage"))
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
