"""Anthropic's Messages API (``POST /v1/messages``) spoken over the chat pipeline.

A Messages request is translated into an OpenAI chat body (:func:`to_chat`), which
the pipeline judges, decides on and routes like any chat request, under the same
policies (the policy sees ``endpoint: chat``); the chat answer is translated back
into a Message, or, streamed, into Anthropic's event stream
(:mod:`gateway.api.messages_answer`). What the translation drops (``thinking`` blocks,
unknown fields) is never sent anywhere, so what is sent is still what was judged.
``cache_control`` markers (on system, text and image blocks, tool results and
tools) and ``top_k`` are kept on the chat body for Anthropic targets, which
get them back in Anthropic's format through litellm with the client's
``anthropic-version`` and ``anthropic-beta`` headers; every other target gets
the body without them (:mod:`gateway.upstream.dialect`).

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
from typing import Any

import orjson

from gateway.errors import GatewayError, InvalidRequest

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
        chat.append({"role": "system", "content": _system(system)})
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
    top_k = body.get("top_k")
    if top_k is not None:
        if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
            raise InvalidRequest("top_k: Input should be an integer >= 1", param="top_k")
        out["top_k"] = top_k
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


def _system(system: Any) -> str | list[dict[str, Any]]:
    """A string, or the blocks as text parts when any carries ``cache_control``
    (Anthropic caches up to a marked block)."""
    if isinstance(system, list) and any(isinstance(b, dict) and _MARK in b for b in system):
        parts = []
        for j, block in enumerate(system):
            at = f"system.{j}"
            if not isinstance(block, dict) or block.get("type") != "text":
                raise InvalidRequest(f"{at}: expected a text block", param="system")
            parts.append(_part(block, at))
        return parts
    return _text_of(system, "system")


_MARK = "cache_control"
_TTLS = ("5m", "1h")


def _marked(out: dict[str, Any], block: dict[str, Any], where: str) -> dict[str, Any]:
    """``out`` with the block's ``cache_control`` (validated), when it has one."""
    mark = block.get(_MARK)
    if mark is None:
        return out
    if (
        not isinstance(mark, dict)
        or mark.get("type") != "ephemeral"
        or not set(mark) <= {"type", "ttl"}
        or mark.get("ttl", "5m") not in _TTLS
    ):
        raise InvalidRequest(
            f"{where}.cache_control: use {{'type': 'ephemeral'}}, with an optional ttl "
            "of '5m' or '1h'",
            param=f"{where}.cache_control",
        )
    out[_MARK] = (
        {"type": "ephemeral", "ttl": mark["ttl"]} if "ttl" in mark else {"type": "ephemeral"}
    )
    return out


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
        return _marked({"type": "text", "text": text}, block, where)
    if kind == "image":
        source = block.get("source")
        if isinstance(source, dict) and source.get("type") == "base64":
            media, data = source.get("media_type"), source.get("data")
            if isinstance(media, str) and isinstance(data, str):
                inline = f"data:{media};base64,{data}"
                return _marked({"type": "image_url", "image_url": {"url": inline}}, block, where)
        if isinstance(source, dict) and source.get("type") == "url":
            url = source.get("url")
            if isinstance(url, str):
                return _marked({"type": "image_url", "image_url": {"url": url}}, block, where)
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
    return _marked({"role": "tool", "tool_call_id": call_id, "content": content}, block, where)


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
        out.append(_marked({"type": "function", "function": function}, tool, where))
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
