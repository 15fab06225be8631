"""Relay an upstream stream to the client as server-sent events.

Contract:

* Each upstream event is written as ``data: <payload>\\n\\n`` as soon as it
  arrives (one write per event, no buffering), and ``data: [DONE]\\n\\n``
  ends every stream.
* The gateway always asks the upstream for usage; the usage-only chunk
  (``"choices": []``) is hidden from a client that did not ask for it.
* With a restoring redaction, placeholders in content deltas are put back to
  the original values, per choice, even when split across chunks.
* A failure after the first event ends the stream with one OpenAI-shaped
  error event, then ``[DONE]``.
* ``on_done`` is called exactly once, with the usage seen, the raw events
  (for the cache) when the stream completed, the error if any, and how many
  upstream events arrived.
* With a :class:`StreamCap`, a stream whose upstream sends more events than
  the cap allows (an upstream that ignores ``max_tokens`` and would spend past
  what the request reserved of its team's budget) is ended there: the
  cap's error event, then ``[DONE]``; nothing past the cap is sent.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson

from gateway.errors import GatewayError, UpstreamDisconnected
from gateway.upstream.provider import FramedBatch, Usage

DONE = b"data: [DONE]\n\n"
_USAGE = b'"usage"'
_NOTHING: list[bytes] = []


class Restorer:
    """Puts redacted values back into streamed deltas (see :mod:`gateway.judging.redaction`)."""

    def __init__(self, make: Callable[[], Any]) -> None:
        self._make = make
        self._by_index: dict[int, Any] = {}
        #: id/object/created/model of the last event, for a trailing chunk
        self.meta: dict[str, Any] = {}

    def feed(self, index: int, text: str) -> str:
        restorer = self._by_index.get(index)
        if restorer is None:
            restorer = self._by_index[index] = self._make()
        out: str = restorer.feed(text)
        return out

    def flush(self, index: int) -> str:
        restorer = self._by_index.pop(index, None)
        return "" if restorer is None else str(restorer.flush())

    def pending(self) -> list[int]:
        return list(self._by_index)


@dataclass(slots=True)
class StreamResult:
    usage: Usage | None
    #: every upstream event payload, when the stream completed (for the cache)
    events: list[bytes] | None
    error: GatewayError | None
    first_event_sent: bool
    #: upstream events that arrived (about one token each)
    events_seen: int = 0


@dataclass(frozen=True, slots=True)
class StreamCap:
    """At most ``events`` upstream events; past them, end the stream with ``error``."""

    events: int
    error: GatewayError


def sse(payload: bytes) -> bytes:
    return b"data: " + payload + b"\n\n"


def error_event(error: GatewayError) -> bytes:
    return sse(orjson.dumps(error.body()))


def is_usage_only(event: dict[str, Any]) -> bool:
    return event.get("choices") == [] and isinstance(event.get("usage"), dict)


async def relay(
    first: list[bytes] | None,
    rest: AsyncIterator[list[bytes]] | None,
    *,
    include_usage: bool,
    restorer: Restorer | None,
    capture: bool,
    on_done: Callable[[StreamResult], Awaitable[None] | None],
    on_first: Callable[[], None] | None = None,
    cap: StreamCap | None = None,
) -> AsyncIterator[bytes]:
    """Yield the SSE bytes of ``first`` and then of each batch of ``rest`` (one
    write per batch); ``rest`` is closed when the relay ends, however it ends."""
    usage: Usage | None = None
    captured: list[bytes] | None = [] if capture else None
    error: GatewayError | None = None
    sent_any = False
    seen = 0
    #: set by render when a batch reached the cap (a list: mypy narrows a flag
    #: written only in the closure to always False)
    capped: list[bool] = []

    def render(batch: list[bytes]) -> bytes | None:
        nonlocal usage, sent_any, seen
        seen += len(batch)
        if cap is not None and seen > cap.events:
            # what fits under the cap is sent, then the stream ends (see the loop)
            capped.append(True)
            batch = list(batch[: max(0, len(batch) - (seen - cap.events))])
        out: list[bytes] = []
        if captured is not None:
            captured.extend(batch)
        if type(batch) is FramedBatch and restorer is None:
            # forwarded as it came, up to the first event that mentions usage
            raw = batch.raw
            found_at = raw.find(_USAGE)
            if found_at < 0:
                out.append(raw)
                batch = _NOTHING
            else:
                cut = raw.rfind(b"\n\n", 0, found_at) + 2  # 1: the first event
                if cut > 1:
                    out.append(raw[:cut])
                    batch = batch[raw.count(b"\n\n", 0, cut) :]
        for payload in batch:
            if _USAGE in payload or restorer is not None:
                sent, found = _transform(payload, include_usage, restorer)
                if found is not None:
                    usage = found
                if sent is None:
                    continue
                payload = sent
            out.append(b"data: " + payload + b"\n\n")
        if not out:
            return None
        if not sent_any and on_first is not None:
            on_first()
        sent_any = True
        return out[0] if len(out) == 1 else b"".join(out)

    try:
        if first is not None and (chunk := render(first)) is not None:
            yield chunk
        if rest is not None and not capped:
            async for batch in rest:
                if (chunk := render(batch)) is not None:
                    yield chunk
                if capped:
                    break
        if capped and cap is not None:
            raise cap.error
        if restorer is not None:
            for tail in _flush_all(restorer):
                yield sse(tail)
        yield DONE
    except GatewayError as exc:
        error = exc
        yield error_event(exc)
        yield DONE
    except (OSError, ValueError) as exc:
        error = UpstreamDisconnected(f"the upstream stream failed: {type(exc).__name__}")
        yield error_event(error)
        yield DONE
    finally:
        result = StreamResult(usage, captured if error is None else None, error, sent_any, seen)
        done = on_done(result)
        if done is not None:
            await done
        closer = getattr(rest, "aclose", None)
        if closer is not None:
            await closer()


def _transform(
    payload: bytes, include_usage: bool, restorer: Restorer | None
) -> tuple[bytes | None, Usage | None]:
    """(payload to send or None to hide it, usage found in it)."""
    try:
        event = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return payload, None
    if not isinstance(event, dict):
        return payload, None
    usage = Usage.from_wire(event.get("usage"))
    if is_usage_only(event) and not include_usage:
        return None, usage
    changed = False
    if usage is not None and not include_usage and "usage" in event:
        # usage riding on a content chunk: the client did not ask for it
        del event["usage"]
        changed = True
    if restorer is not None:
        changed = _restore_choices(event, restorer) or changed
    return (orjson.dumps(event) if changed else payload), usage


def _restore_choices(event: dict[str, Any], restorer: Restorer) -> bool:
    changed = False
    choices = event.get("choices")
    if not isinstance(choices, list):
        return False
    restorer.meta = {k: event[k] for k in ("id", "object", "created", "model") if k in event}
    for choice in choices:
        if not isinstance(choice, dict):
            continue
        index = choice.get("index", 0) if isinstance(choice.get("index"), int) else 0
        delta = choice.get("delta")
        holder, field = (delta, "content") if isinstance(delta, dict) else (choice, "text")
        text = holder.get(field) if isinstance(holder, dict) else None
        if isinstance(text, str):
            restored = restorer.feed(index, text)
            if choice.get("finish_reason") is not None:
                restored += restorer.flush(index)
            holder[field] = restored
            changed = True
        elif choice.get("finish_reason") is not None:
            tail = restorer.flush(index)
            if tail and isinstance(delta, dict):
                delta["content"] = tail
                changed = True
    return changed


def _flush_all(restorer: Restorer) -> list[bytes]:
    tails = []
    for index in restorer.pending():
        text = restorer.flush(index)
        if text:
            choice = {"index": index, "delta": {"content": text}, "finish_reason": None}
            tails.append(orjson.dumps({**restorer.meta, "choices": [choice]}))
    return tails
