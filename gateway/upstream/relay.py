"""Relay an upstream stream to the client as server-sent events.

Contract:

* Each upstream event is written as ``data: <payload>\\n\\n`` as soon as it
  arrives (one write per event, no buffering), and ``data: [DONE]\\n\\n``
  ends every stream.
* The gateway always asks the upstream for usage; the usage-only chunk
  (``"choices": []``) is hidden from a client that did not ask for it.
* With a restoring redaction, placeholders are put back to the original
  values in every text a client reads — ``content``, ``refusal``, each tool
  call's ``function.arguments``, legacy ``function_call`` and ``text`` — per
  choice and per tool call, even when split across chunks.
* A failure after the first event ends the stream with one OpenAI-shaped
  error event, then ``[DONE]``.
* The relay hands its outcome back in the :class:`StreamResult` its caller
  passed (it calls nothing up): filled in once, when the relay ends however
  it ends, with the usage seen, whether the stream completed, the raw events
  (for the cache) when it did, the error if any, and how many upstream events
  arrived. The caller reads it after closing the relay
  (:class:`gateway.pipeline.settlement.SettledStream`).
* With a :class:`StreamCap`, a stream whose upstream sends more events than
  the cap allows (an upstream that ignores ``max_tokens`` and would spend past
  what the request reserved of its team's budget) is ended there: the
  cap's error event, then ``[DONE]``; nothing past the cap is sent.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import orjson

from gateway.errors import GatewayError, UpstreamDisconnected
from gateway.upstream.provider import FramedBatch, Usage

DONE = b"data: [DONE]\n\n"
_USAGE = b'"usage"'
_NOTHING: list[bytes] = []


#: where a streamed text sits: (choice index, field, tool-call index or 0)
Slot = tuple[int, str, int]


class Restorer:
    """Puts redacted values back into streamed deltas (see :mod:`gateway.judging.redaction`).

    One restorer per :data:`Slot`: a choice's ``content``, ``refusal``, legacy
    ``text``, each tool call's ``function.arguments`` and the legacy
    ``function_call.arguments`` are separate streams of text.
    """

    def __init__(
        self, make: Callable[[], Any], answer: Callable[[bytes], bytes] | None = None
    ) -> None:
        self._make = make
        #: restores a whole JSON event (the Responses relay's non-delta events)
        self.answer: Callable[[bytes], bytes] = answer or _unchanged
        self._by_slot: dict[Slot, Any] = {}
        #: id/object/created/model of the last event, for a trailing chunk
        self.meta: dict[str, Any] = {}

    def feed(self, slot: Slot, text: str) -> str:
        restorer = self._by_slot.get(slot)
        if restorer is None:
            restorer = self._by_slot[slot] = self._make()
        out: str = restorer.feed(text)
        return out

    def flush(self, slot: Slot) -> str:
        restorer = self._by_slot.pop(slot, None)
        return "" if restorer is None else str(restorer.flush())

    def pending(self, index: int | None = None) -> list[Slot]:
        """The slots still holding text (of choice ``index`` when given)."""
        return [slot for slot in self._by_slot if index is None or slot[0] == index]


@dataclass(slots=True)
class StreamResult:
    """How a relayed stream ended: made empty by the caller, filled by the relay."""

    usage: Usage | None = None
    #: every upstream event payload, when the stream completed (for the cache)
    events: list[bytes] | None = None
    error: GatewayError | None = None
    first_event_sent: bool = False
    #: upstream events that arrived (about one token each)
    events_seen: int = 0
    #: every event was relayed (only ``[DONE]`` was left to send)
    completed: bool = False
    #: the relay ran and ended (False: it was closed before it started)
    ended: bool = False

    def end(
        self,
        usage: Usage | None,
        error: GatewayError | None,
        seen: int,
        captured: list[bytes] | None,
        *,
        completed: bool,
        sent_any: bool,
    ) -> None:
        """What a relay records once it ends, however it ends."""
        self.usage, self.error, self.events_seen = usage, error, seen
        self.events = captured if completed else None
        self.first_event_sent, self.completed, self.ended = sent_any, completed, True


@dataclass(frozen=True, slots=True)
class StreamCap:
    """At most ``events`` upstream events; past them, end the stream with ``error``."""

    events: int
    error: GatewayError


def _unchanged(raw: bytes) -> bytes:
    return raw


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
    result: StreamResult,
    on_first: Callable[[], None] | None = None,
    cap: StreamCap | None = None,
) -> AsyncGenerator[bytes, None]:
    """Yield the SSE bytes of ``first`` and then of each batch of ``rest`` (one
    write per batch); ``rest`` is closed when the relay ends, however it ends,
    and ``result`` filled in."""
    usage: Usage | None = None
    captured: list[bytes] | None = [] if capture else None
    error: GatewayError | None = None
    sent_any = False
    completed = False
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
        completed = True
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
        result.end(usage, error, seen, captured, completed=completed, sent_any=sent_any)
        await close_stream(rest)


async def close_stream(rest: AsyncIterator[list[bytes]] | None) -> None:
    """Close the upstream's event iterator (cancelling the upstream call)."""
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
        for holder, field, slot in _texts(choice, delta, index):
            text = holder.get(field)
            if isinstance(text, str):
                holder[field] = restorer.feed(slot, text)
                changed = True
        if choice.get("finish_reason") is not None:
            for slot in restorer.pending(index):
                tail = restorer.flush(slot)
                if tail:
                    _put(choice, delta, slot, tail)
                    changed = True
    return changed


def _texts(
    choice: dict[str, Any], delta: Any, index: int
) -> list[tuple[dict[str, Any], str, Slot]]:
    """The text fields of one streamed choice: (the dict holding it, its key, its slot)."""
    if not isinstance(delta, dict):
        return [(choice, "text", (index, "text", 0))]
    out: list[tuple[dict[str, Any], str, Slot]] = [
        (delta, "content", (index, "content", 0)),
        (delta, "refusal", (index, "refusal", 0)),
    ]
    calls = delta.get("tool_calls")
    if isinstance(calls, list):
        for j, call in enumerate(calls):
            function = call.get("function") if isinstance(call, dict) else None
            if isinstance(function, dict):
                k = call.get("index", j)
                out.append((function, "arguments", (index, "tool", k if isinstance(k, int) else j)))
    function_call = delta.get("function_call")
    if isinstance(function_call, dict):
        out.append((function_call, "arguments", (index, "function_call", 0)))
    return out


def _put(choice: dict[str, Any], delta: Any, slot: Slot, tail: str) -> None:
    """Append a flushed ``tail`` to where its slot lives in this choice."""
    _, field, k = slot
    if field == "text" or not isinstance(delta, dict):
        choice["text"] = (choice.get("text") or "") + tail
    elif field in ("content", "refusal"):
        delta[field] = (delta.get(field) or "") + tail
    elif field == "function_call":
        function_call = delta.setdefault("function_call", {})
        function_call["arguments"] = (function_call.get("arguments") or "") + tail
    else:
        calls = delta.setdefault("tool_calls", [])
        for call in calls:
            if isinstance(call, dict) and call.get("index") == k:
                function = call.setdefault("function", {})
                function["arguments"] = (function.get("arguments") or "") + tail
                return
        calls.append({"index": k, "function": {"arguments": tail}})


def _flush_all(restorer: Restorer) -> list[bytes]:
    tails = []
    for slot in restorer.pending():
        text = restorer.flush(slot)
        if text:
            index, field, _ = slot
            choice: dict[str, Any] = {"index": index, "finish_reason": None}
            if field == "text":
                choice["text"] = text
            else:
                choice["delta"] = {}
                _put(choice, choice["delta"], slot, text)
            tails.append(orjson.dumps({**restorer.meta, "choices": [choice]}))
    return tails
