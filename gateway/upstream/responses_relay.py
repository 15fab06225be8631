"""Relay a native Responses event stream to the client.

Contract (the Responses counterpart of :mod:`.relay`, same arguments):

* Each upstream event is written as ``event: <type>\\ndata: <payload>\\n\\n``
  as it arrives (one write per batch); the stream ends with the upstream's last
  event (``response.completed``, ``response.failed`` or ``response.incomplete``),
  without ``[DONE]``, as OpenAI's does.
* The events that carry the Response object (``response.created``,
  ``response.in_progress``, ``response.completed``, …) get the gateway's ids
  (:meth:`NativeResponses.rewrite`); the provider's own id is kept on the
  plan, and ``response.completed``'s object becomes ``NativeResponses.final``.
  Its ``usage`` is the stream's usage (spend).
* With a restoring redaction, placeholders are put back in every text a client
  reads: the ``.delta`` events of output text, refusals, function-call
  arguments and reasoning text through one stream restorer per output item
  and part (a placeholder split across deltas is held back until whole, and
  what is still held when the part's ``.done`` arrives is sent as one more
  delta first); every other event is restored whole. Sequence numbers are then
  the relay's own, consecutive from 0.
* A failure after the first event ends the stream with a Responses ``error``
  event. The caller's ``StreamResult`` is filled in once it ends, as in :mod:`.relay`; with a
  :class:`~.relay.StreamCap` the stream is ended at the cap the same way.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Any

import orjson

from gateway.errors import GatewayError, UpstreamDisconnected
from gateway.targets import Target
from gateway.upstream.provider import FramedBatch, Usage
from gateway.upstream.relay import Restorer, Slot, StreamCap, StreamResult, close_stream, relay
from gateway.upstream.responses_wire import NativeResponses

_TYPE_PREFIX = b'{"type":"'
#: events that carry the whole Response object
_WITH_RESPONSE = frozenset(
    {
        "response.created",
        "response.in_progress",
        "response.completed",
        "response.failed",
        "response.incomplete",
        "response.queued",
    }
)
#: streamed texts: delta event -> (done event, the done event's text field, slot kind)
_DELTAS = {
    "response.output_text.delta": ("response.output_text.done", "text", "text"),
    "response.refusal.delta": ("response.refusal.done", "refusal", "refusal"),
    "response.function_call_arguments.delta": (
        "response.function_call_arguments.done",
        "arguments",
        "arguments",
    ),
    "response.reasoning_text.delta": ("response.reasoning_text.done", "text", "reasoning"),
    "response.reasoning_summary_text.delta": (
        "response.reasoning_summary_text.done",
        "text",
        "summary",
    ),
}
_DONES = {done: (delta, kind) for delta, (done, _, kind) in _DELTAS.items()}
#: the event lines of the events that carry the Response object
_OBJECT_LINES = frozenset(b"event: " + kind.encode() + b"\n" for kind in _WITH_RESPONSE)


def frame(kind: str, payload: bytes) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + payload + b"\n\n"


def error_frame(error: GatewayError, sequence_number: int) -> bytes:
    inner = error.body()["error"]
    data = {
        "type": "error",
        "code": inner.get("code") or inner.get("type"),
        "message": inner.get("message"),
        "param": inner.get("param"),
        "sequence_number": sequence_number,
    }
    return frame("error", orjson.dumps(data))


def _slot(event: dict[str, Any], kind: str) -> Slot:
    index = event.get("output_index")
    part = event.get("content_index", event.get("summary_index", 0))
    return (
        index if isinstance(index, int) else 0,
        kind,
        part if isinstance(part, int) else 0,
    )


def _kind_of(payload: bytes) -> str | None:
    """The event's ``type`` without parsing it, when it comes first (OpenAI's order)."""
    if payload.startswith(_TYPE_PREFIX):
        end = payload.find(b'"', len(_TYPE_PREFIX))
        if end > 0:
            return payload[len(_TYPE_PREFIX) : end].decode()
    return None


class _Events:
    """The per-stream state: ids, usage, restoration, numbering."""

    def __init__(self, native: NativeResponses | None, restorer: Restorer | None) -> None:
        self.native, self.restorer = native, restorer
        self.usage: Usage | None = None
        self.sent = 0

    def render_framed(self, batch: FramedBatch) -> bytes:
        """A batch in canonical framing, without restoration: its bytes as they
        came, but the few events that carry the Response object (ids, usage)."""
        raw = batch.raw
        if len(batch) == 1:  # the usual read: one event, told by its event line
            if raw[: raw.find(b"\n") + 1] in _OBJECT_LINES:
                return self.render(batch[0])
            self.sent += 1
            return raw
        blocks = raw[:-2].split(b"\n\n")
        lines = [block[: block.find(b"\n") + 1] for block in blocks]
        if _OBJECT_LINES.isdisjoint(lines):
            self.sent += len(batch)
            return raw
        return b"".join(
            self.render(payload) if line in _OBJECT_LINES else self._count(block + b"\n\n")
            for line, block, payload in zip(lines, blocks, batch, strict=True)
        )

    def _count(self, framed: bytes) -> bytes:
        self.sent += 1
        return framed

    def render(self, payload: bytes) -> bytes:
        kind = _kind_of(payload)
        if (
            self.restorer is None
            and kind is not None
            and kind not in _WITH_RESPONSE
            and kind != "error"
        ):
            self.sent += 1
            return frame(kind, payload)  # the common case: forwarded as it came
        try:
            event = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return b""
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            return b""
        return b"".join(frame(e["type"], orjson.dumps(e)) for e in self._events(event))

    def _events(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        kind = event["type"]
        out = [event]
        restorer = self.restorer
        if restorer is not None:
            if kind in _DELTAS and isinstance(event.get("delta"), str):
                event["delta"] = restorer.feed(_slot(event, _DELTAS[kind][2]), event["delta"])
            else:
                if kind in _DONES:
                    delta_kind, slot_kind = _DONES[kind]
                    tail = restorer.flush(_slot(event, slot_kind))
                    if tail:
                        extra = {
                            k: v
                            for k, v in event.items()
                            if k not in ("text", "arguments", "refusal")
                        }
                        out.insert(0, {**extra, "type": delta_kind, "delta": tail})
                restored = orjson.loads(restorer.answer(orjson.dumps(event)))
                out[-1] = event = restored
        response = event.get("response")
        if kind in _WITH_RESPONSE and isinstance(response, dict):
            if self.native is not None:
                self.native.rewrite(response)
            if kind == "response.completed":
                self.usage = Usage.from_responses(response.get("usage"))
                if self.native is not None:
                    self.native.final = response
        if restorer is not None:
            for e in out:
                e["sequence_number"] = self.sent
                self.sent += 1
        else:
            self.sent += len(out)
        return out


async def relay_responses(
    first: list[bytes] | None,
    rest: AsyncIterator[list[bytes]] | None,
    *,
    include_usage: bool = True,
    restorer: Restorer | None,
    capture: bool,
    result: StreamResult,
    on_first: Callable[[], None] | None = None,
    cap: StreamCap | None = None,
    native: NativeResponses | None = None,
) -> AsyncGenerator[bytes, None]:
    """Yield the SSE bytes of ``first`` and then of each batch of ``rest``;
    ``rest`` is closed when the relay ends, however it ends, and ``result``
    filled in (as the chat relay does). ``include_usage`` is the chat relay's;
    a Response always carries its usage."""
    del include_usage
    state = _Events(native, restorer)
    captured: list[bytes] | None = [] if capture else None
    error: GatewayError | None = None
    sent_any = False
    completed = False
    seen = 0
    #: a list, as in the chat relay: mypy narrows a flag set only in the closure
    capped: list[bool] = []

    def render(batch: list[bytes]) -> bytes | None:
        nonlocal sent_any, seen
        seen += len(batch)
        if cap is not None and seen > cap.events:
            capped.append(True)
            batch = list(batch[: max(0, len(batch) - (seen - cap.events))])
        if captured is not None:
            captured.extend(batch)
        if type(batch) is FramedBatch and restorer is None and not capped:
            out = state.render_framed(batch)
        else:
            out = b"".join(state.render(payload) for payload in batch)
        if not out:
            return None
        if not sent_any and on_first is not None:
            on_first()
        sent_any = True
        return out

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
        completed = True
    except GatewayError as exc:
        error = exc
        yield error_frame(exc, state.sent)
    except (OSError, ValueError) as exc:
        error = UpstreamDisconnected(f"the upstream stream failed: {type(exc).__name__}")
        yield error_frame(error, state.sent)
    finally:
        result.end(state.usage, error, seen, captured, completed=completed, sent_any=sent_any)
        await close_stream(rest)


def relay_for(native: NativeResponses | None) -> Callable[..., AsyncGenerator[bytes, None]]:
    """The relay of an answer: chat's, or (``native`` given) the Responses one."""
    if native is None:
        return relay
    return functools.partial(relay_responses, native=native)


def cache_label(native: NativeResponses, targets: list[Target]) -> str:
    """The cache's endpoint label of a Responses request: its own space, and
    per target whether the answer cached is a Response or a chat completion."""
    return "responses:" + "".join("n" if native.speaks(t) else "t" for t in targets)
