"""The answer of a Messages request: a chat completion as a Message
(:func:`from_chat`) or a chat stream as Anthropic's event stream
(:class:`EventStream`).
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from typing import Any

import orjson

from gateway.api.chat_events import ChatEvents
from gateway.api.messages import message_id

#: chat finish reason -> Messages stop reason
_STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}


def from_chat(data: dict[str, Any], model: str) -> dict[str, Any]:
    """The Message of a whole chat completion (its first choice)."""
    choices = data.get("choices") or [{}]
    choice = choices[0] if isinstance(choices[0], dict) else {}
    message = choice.get("message") or {}
    content: list[dict[str, Any]] = []
    text = message.get("content")
    if isinstance(text, str) and text:
        content.append({"type": "text", "text": text})
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        content.append(
            {
                "type": "tool_use",
                "id": call.get("id") or f"toolu_{random.getrandbits(64):016x}",
                "name": function.get("name", ""),
                "input": _arguments(function.get("arguments")),
            }
        )
    usage = data.get("usage") or {}
    return {
        "id": message_id(),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": _STOP_REASONS.get(choice.get("finish_reason") or "stop", "end_turn"),
        "stop_sequence": None,
        "usage": _usage(usage),
    }


def _arguments(raw: Any) -> Any:
    if isinstance(raw, str):
        try:
            return orjson.loads(raw) if raw else {}
        except orjson.JSONDecodeError:
            return {"arguments": raw}
    return raw if isinstance(raw, dict) else {}


def _usage(usage: Any) -> dict[str, Any]:
    usage = usage if isinstance(usage, dict) else {}
    details = usage.get("prompt_tokens_details") or {}
    cached = details.get("cached_tokens") if isinstance(details, dict) else None
    prompt = int(usage.get("prompt_tokens") or 0)
    return {
        "input_tokens": prompt - int(cached or 0),
        "output_tokens": int(usage.get("completion_tokens") or 0),
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": int(cached or 0),
    }


def _event(name: str, data: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


class EventStream(ChatEvents):
    """Re-encodes a chat SSE stream (the pipeline's bytes) as Anthropic's events.

    ``message_start`` and a ``ping`` first; then one content block per text run
    or tool call (``content_block_start``, deltas, ``content_block_stop``);
    ``message_delta`` with the stop reason and usage; ``message_stop``. A chat
    error event becomes Anthropic's ``error`` event and ends the stream."""

    def __init__(self, model: str) -> None:
        super().__init__()
        self._model = model
        self._started = False
        self._block: int = -1
        self._block_kind: str | None = None
        #: chat tool-call index -> content block index
        self._tools: dict[int, int] = {}
        self._stop = "end_turn"
        self._usage: dict[str, Any] = {}

    async def translate(self, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        try:
            async for chunk in chunks:
                out = self.feed(chunk)
                if out:
                    yield out
        finally:
            closer = getattr(chunks, "aclose", None)
            if closer is not None:
                await closer()

    def _start(self) -> list[bytes]:
        if self._started:
            return []
        self._started = True
        message: dict[str, Any] = {
            "id": message_id(),
            "type": "message",
            "role": "assistant",
            "model": self._model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 0, "output_tokens": 0},
        }
        return [
            _event("message_start", {"type": "message_start", "message": message}),
            _event("ping", {"type": "ping"}),
        ]

    def _close_block(self) -> list[bytes]:
        if self._block_kind is None:
            return []
        self._block_kind = None
        return [_event("content_block_stop", {"type": "content_block_stop", "index": self._block})]

    def _open_block(self, kind: str, block: dict[str, Any]) -> list[bytes]:
        out = self._close_block()
        self._block += 1
        self._block_kind = kind
        out.append(
            _event(
                "content_block_start",
                {"type": "content_block_start", "index": self._block, "content_block": block},
            )
        )
        return out

    def _payload(self, payload: bytes) -> list[bytes]:
        if payload == b"[DONE]":
            return self._finish()
        try:
            data = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return []
        if not isinstance(data, dict):
            return []
        out = self._start()
        if "error" in data and isinstance(data["error"], dict):
            self._ended = True
            error = data["error"]
            out.append(
                _event(
                    "error",
                    {
                        "type": "error",
                        "error": {
                            "type": "api_error",
                            "message": str(error.get("message", "upstream error")),
                        },
                    },
                )
            )
            return out
        if isinstance(data.get("usage"), dict):
            self._usage = data["usage"]
        for choice in data.get("choices") or []:
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            text = delta.get("content")
            if isinstance(text, str) and text:
                if self._block_kind != "text":
                    out.extend(self._open_block("text", {"type": "text", "text": ""}))
                out.append(
                    _event(
                        "content_block_delta",
                        {
                            "type": "content_block_delta",
                            "index": self._block,
                            "delta": {"type": "text_delta", "text": text},
                        },
                    )
                )
            for call in delta.get("tool_calls") or []:
                out.extend(self._tool_delta(call))
            reason = choice.get("finish_reason")
            if isinstance(reason, str):
                self._stop = _STOP_REASONS.get(reason, "end_turn")
        return out

    def _tool_delta(self, call: Any) -> list[bytes]:
        if not isinstance(call, dict):
            return []
        out: list[bytes] = []
        index = call.get("index", 0)
        function = call.get("function") or {}
        if index not in self._tools:
            block = {
                "type": "tool_use",
                "id": call.get("id") or f"toolu_{random.getrandbits(64):016x}",
                "name": function.get("name", ""),
                "input": {},
            }
            out.extend(self._open_block("tool_use", block))
            self._tools[index] = self._block
        arguments = function.get("arguments")
        if isinstance(arguments, str) and arguments and self._tools[index] == self._block:
            out.append(
                _event(
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": self._block,
                        "delta": {"type": "input_json_delta", "partial_json": arguments},
                    },
                )
            )
        return out

    def _finish(self) -> list[bytes]:
        self._ended = True
        out = self._start()
        out.extend(self._close_block())
        usage = _usage(self._usage)
        out.append(
            _event(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": self._stop, "stop_sequence": None},
                    "usage": usage,
                },
            )
        )
        out.append(_event("message_stop", {"type": "message_stop"}))
        return out
