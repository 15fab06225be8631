"""Anthropic's Messages API (``POST /v1/messages``) spoken over the chat pipeline.

A Messages request is translated into an OpenAI chat body (:func:`to_chat`), which
the pipeline judges, decides on and routes like any chat request, under the same
policies (the policy sees ``endpoint: chat``); the chat answer is translated back
into a Message (:func:`from_chat`), or, streamed, into Anthropic's event stream
(:class:`EventStream`). What the translation drops (``thinking`` blocks,
``cache_control``, ``top_k``, unknown fields) is never sent anywhere, so what is
sent is still what was judged.

Translation:

* ``system`` (a string or text blocks) becomes the first, system message;
* ``text`` and ``image`` blocks become chat content parts (base64 images as
  ``data:`` URLs); an assistant's ``tool_use`` blocks become its ``tool_calls``
  (``input`` as JSON arguments); a user's ``tool_result`` blocks become ``tool``
  messages, ahead of the rest of that user turn;
* ``tools`` become function tools (``input_schema`` as ``parameters``);
  ``tool_choice`` ``auto|any|tool|none`` becomes ``auto|required|{function}|none``;
  server tools (typed tools such as web search) are refused with a 400;
* ``max_tokens``, ``stop_sequences``, ``temperature``, ``top_p``,
  ``metadata.user_id`` map to ``max_tokens``, ``stop``, ``temperature``, ``top_p``,
  ``user``.

Errors are Anthropic-shaped: ``{"type": "error", "error": {"type", "message"}}``
with the same HTTP status as the gateway's error (:func:`error_body`).
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from typing import Any

import orjson

from gateway.errors import GatewayError, InvalidRequest

#: chat finish reason -> Messages stop reason
_STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}
#: the gateway's error status -> Anthropic's error type
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "request_too_large",
    429: "rate_limit_error",
    503: "overloaded_error",
    529: "overloaded_error",
}


def error_body(error: GatewayError) -> dict[str, Any]:
    """``error`` in Anthropic's shape (the status stays the gateway's)."""
    kind = _ERROR_TYPES.get(error.http_status, "api_error")
    return {"type": "error", "error": {"type": kind, "message": error.message}}


def message_id() -> str:
    return f"msg_{random.getrandbits(96):024x}"


# --- request ---------------------------------------------------------------------


def to_chat(body: Any, *, counting: bool = False) -> dict[str, Any]:
    """The chat body of a Messages request; raises :class:`InvalidRequest`.
    ``counting``: a ``count_tokens`` body, which has no ``max_tokens``."""
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("model: Field required (a non-empty string)", param="model")
    max_tokens = body.get("max_tokens", 1 if counting else None)
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise InvalidRequest("max_tokens: Field required (an integer >= 1)", param="max_tokens")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("messages: Field required (a non-empty array)", param="messages")
    chat: list[dict[str, Any]] = []
    system = body.get("system")
    if system is not None:
        chat.append({"role": "system", "content": _text_of(system, "system")})
    for i, message in enumerate(messages):
        chat.extend(_message(message, f"messages.{i}"))
    out: dict[str, Any] = {"model": model, "messages": chat}
    if not counting:
        out["max_tokens"] = max_tokens
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise InvalidRequest("stream: Input should be a valid boolean", param="stream")
    if stream:
        out["stream"] = True
        out["stream_options"] = {"include_usage": True}
    for name in ("temperature", "top_p"):
        value = body.get(name)
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise InvalidRequest(f"{name}: Input should be a valid number", param=name)
            out[name] = value
    stops = body.get("stop_sequences")
    if stops is not None:
        if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
            raise InvalidRequest(
                "stop_sequences: Input should be an array of strings", param="stop_sequences"
            )
        if stops:
            out["stop"] = stops
    tools = body.get("tools")
    if tools is not None:
        out["tools"] = _tools(tools)
    choice = body.get("tool_choice")
    if choice is not None:
        out.update(_tool_choice(choice))
    metadata = body.get("metadata")
    if isinstance(metadata, dict) and isinstance(metadata.get("user_id"), str):
        out["user"] = metadata["user_id"]
    return out


def _text_of(value: Any, where: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        texts = []
        for j, block in enumerate(value):
            if not isinstance(block, dict) or block.get("type") != "text":
                raise InvalidRequest(f"{where}.{j}: expected a text block", param=where)
            text = block.get("text")
            if not isinstance(text, str):
                raise InvalidRequest(f"{where}.{j}.text: Field required", param=where)
            texts.append(text)
        return "\n".join(texts)
    raise InvalidRequest(f"{where}: Input should be a string or an array of blocks", param=where)


def _message(message: Any, where: str) -> list[dict[str, Any]]:
    if not isinstance(message, dict):
        raise InvalidRequest(f"{where}: Input should be an object", param=where)
    role = message.get("role")
    if role not in ("user", "assistant"):
        raise InvalidRequest(
            f"{where}.role: Input should be 'user' or 'assistant'", param=f"{where}.role"
        )
    content = message.get("content")
    if isinstance(content, str):
        return [{"role": role, "content": content}]
    if not isinstance(content, list):
        raise InvalidRequest(
            f"{where}.content: Input should be a string or an array of blocks",
            param=f"{where}.content",
        )
    if role == "assistant":
        return [_assistant(content, where)]
    tool_messages: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for j, block in enumerate(content):
        at = f"{where}.content.{j}"
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "tool_result":
            assert isinstance(block, dict)
            tool_messages.append(_tool_result(block, at))
        elif kind in ("thinking", "redacted_thinking"):
            continue
        else:
            parts.append(_part(block, at))
    out = tool_messages
    if parts:
        out.append({"role": "user", "content": parts})
    return out


def _part(block: Any, where: str) -> dict[str, Any]:
    if not isinstance(block, dict):
        raise InvalidRequest(f"{where}: Input should be an object", param=where)
    kind = block.get("type")
    if kind == "text":
        text = block.get("text")
        if not isinstance(text, str):
            raise InvalidRequest(f"{where}.text: Field required", param=where)
        return {"type": "text", "text": text}
    if kind == "image":
        source = block.get("source")
        if isinstance(source, dict) and source.get("type") == "base64":
            media, data = source.get("media_type"), source.get("data")
            if isinstance(media, str) and isinstance(data, str):
                return {"type": "image_url", "image_url": {"url": f"data:{media};base64,{data}"}}
        if isinstance(source, dict) and source.get("type") == "url":
            url = source.get("url")
            if isinstance(url, str):
                return {"type": "image_url", "image_url": {"url": url}}
        raise InvalidRequest(f"{where}.source: an image needs a base64 or url source", param=where)
    raise InvalidRequest(
        f"{where}.type: blocks of type {kind!r} are not supported by the gateway "
        "(use text, image, tool_use, tool_result or thinking)",
        param=where,
    )


def _assistant(content: list[Any], where: str) -> dict[str, Any]:
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for j, block in enumerate(content):
        at = f"{where}.content.{j}"
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text":
            texts.append(_part(block, at)["text"])
        elif kind == "tool_use":
            assert isinstance(block, dict)
            call_id, name = block.get("id"), block.get("name")
            if not isinstance(call_id, str) or not isinstance(name, str):
                raise InvalidRequest(f"{at}: a tool_use block needs an id and a name", param=at)
            arguments = orjson.dumps(block.get("input", {})).decode()
            calls.append(
                {
                    "id": call_id,
                    "type": "function",
                    "function": {"name": name, "arguments": arguments},
                }
            )
        elif kind in ("thinking", "redacted_thinking"):
            continue
        else:
            raise InvalidRequest(
                f"{at}.type: an assistant turn holds text, tool_use or thinking blocks", param=at
            )
    out: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts else None}
    if calls:
        out["tool_calls"] = calls
    return out


def _tool_result(block: dict[str, Any], where: str) -> dict[str, Any]:
    call_id = block.get("tool_use_id")
    if not isinstance(call_id, str):
        raise InvalidRequest(f"{where}.tool_use_id: Field required", param=where)
    content = block.get("content", "")
    if isinstance(content, list):
        pieces = []
        for j, inner in enumerate(content):
            part = _part(inner, f"{where}.content.{j}")
            if part["type"] != "text":
                raise InvalidRequest(
                    f"{where}.content.{j}: a tool result holds text blocks", param=where
                )
            pieces.append(part["text"])
        content = "\n".join(pieces)
    elif not isinstance(content, str):
        raise InvalidRequest(f"{where}.content: a string or text blocks", param=where)
    if block.get("is_error") is True:
        content = f"[tool error] {content}"
    return {"role": "tool", "tool_call_id": call_id, "content": content}


def _tools(tools: Any) -> list[dict[str, Any]]:
    if not isinstance(tools, list):
        raise InvalidRequest("tools: Input should be an array", param="tools")
    out = []
    for i, tool in enumerate(tools):
        where = f"tools.{i}"
        if not isinstance(tool, dict):
            raise InvalidRequest(f"{where}: Input should be an object", param=where)
        kind = tool.get("type")
        if kind not in (None, "custom"):
            raise InvalidRequest(
                f"{where}: the server tool {kind!r} is not supported by the gateway's targets; "
                "declare a client tool (name, description, input_schema) instead",
                param=where,
            )
        name, schema = tool.get("name"), tool.get("input_schema")
        if not isinstance(name, str) or not isinstance(schema, dict):
            raise InvalidRequest(f"{where}: a tool needs a name and an input_schema", param=where)
        function: dict[str, Any] = {"name": name, "parameters": schema}
        if isinstance(tool.get("description"), str):
            function["description"] = tool["description"]
        out.append({"type": "function", "function": function})
    return out


def _tool_choice(choice: Any) -> dict[str, Any]:
    if not isinstance(choice, dict):
        raise InvalidRequest("tool_choice: Input should be an object", param="tool_choice")
    kind = choice.get("type")
    out: dict[str, Any]
    if kind == "auto":
        out = {"tool_choice": "auto"}
    elif kind == "any":
        out = {"tool_choice": "required"}
    elif kind == "none":
        out = {"tool_choice": "none"}
    elif kind == "tool" and isinstance(choice.get("name"), str):
        out = {"tool_choice": {"type": "function", "function": {"name": choice["name"]}}}
    else:
        raise InvalidRequest(
            "tool_choice.type: use auto, any, tool (with a name) or none", param="tool_choice"
        )
    if choice.get("disable_parallel_tool_use") is True:
        out["parallel_tool_calls"] = False
    return out


# --- answer ----------------------------------------------------------------------


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


class EventStream:
    """Re-encodes a chat SSE stream (the pipeline's bytes) as Anthropic's events.

    ``message_start`` and a ``ping`` first; then one content block per text run
    or tool call (``content_block_start``, deltas, ``content_block_stop``);
    ``message_delta`` with the stop reason and usage; ``message_stop``. A chat
    error event becomes Anthropic's ``error`` event and ends the stream."""

    def __init__(self, model: str) -> None:
        self._model = model
        self._started = False
        self._block: int = -1
        self._block_kind: str | None = None
        #: chat tool-call index -> content block index
        self._tools: dict[int, int] = {}
        self._stop = "end_turn"
        self._usage: dict[str, Any] = {}
        self._buffer = b""
        self._ended = False

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

    def feed(self, chunk: bytes) -> bytes:
        self._buffer += chunk
        out: list[bytes] = []
        while not self._ended:
            end = self._buffer.find(b"\n\n")
            if end < 0:
                break
            event, self._buffer = self._buffer[:end], self._buffer[end + 2 :]
            for line in event.split(b"\n"):
                if line.startswith(b"data: "):
                    out.extend(self._payload(line[6:]))
        return b"".join(out)

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
