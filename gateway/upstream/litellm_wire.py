"""OpenAI's wire shape for answers that litellm translated.

litellm's response objects carry fields of their own (``provider_specific_fields``,
``vertex_ai_*``, extra usage counters) and, on some providers, a new ``id`` per
stream chunk. These pure functions keep exactly OpenAI's fields, with OpenAI's
types, from a ``model_dump()``; they import nothing from litellm.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Final

from gateway.endpoints import Endpoint


def _present(data: Mapping[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    return {key: data[key] for key in keys if data.get(key) is not None}


def _usage(raw: Any, *, embeddings: bool = False) -> dict[str, Any] | None:
    if not isinstance(raw, dict) or not isinstance(raw.get("prompt_tokens"), int):
        return None
    prompt = raw["prompt_tokens"]
    if embeddings:
        total = raw.get("total_tokens")
        return {
            "prompt_tokens": prompt,
            "total_tokens": total if isinstance(total, int) else prompt,
        }
    completion = raw.get("completion_tokens") or 0
    usage: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
    for name, keys in (
        ("prompt_tokens_details", ("cached_tokens", "audio_tokens")),
        ("completion_tokens_details", ("reasoning_tokens", "audio_tokens")),
    ):
        details = raw.get(name)
        if isinstance(details, dict) and (kept := _present(details, keys)):
            usage[name] = kept
    written = raw.get("cache_creation_input_tokens")
    if isinstance(written, int) and written > 0:
        # what the answer cost depends on it (cache writes are priced apart)
        usage["cache_creation_input_tokens"] = written
    return usage


def _tool_calls(raw: Any) -> list[dict[str, Any]] | None:
    if not raw:
        return None
    calls = []
    for call in raw:
        shaped = _present(call, ("index", "id", "type"))
        if isinstance(call.get("function"), dict):
            shaped["function"] = _present(call["function"], ("name", "arguments"))
        calls.append(shaped)
    return calls


_MESSAGE_KEYS: Final = ("role", "content", "refusal", "reasoning_content", "function_call")


def _message(raw: Mapping[str, Any], *, delta: bool) -> dict[str, Any]:
    message = _present(raw, _MESSAGE_KEYS)
    if not delta:
        message.setdefault("role", "assistant")
        message.setdefault("content", None)
    if tool_calls := _tool_calls(raw.get("tool_calls")):
        message["tool_calls"] = tool_calls
    return message


def _envelope(raw: Mapping[str, Any], obj: str) -> dict[str, Any]:
    shaped = _present(raw, ("id", "created", "model", "system_fingerprint"))
    shaped["object"] = obj
    return shaped


def shape_response(endpoint: Endpoint, raw: Mapping[str, Any]) -> dict[str, Any]:
    """A whole litellm answer (its ``model_dump()``) in OpenAI's shape."""
    if endpoint is Endpoint.EMBEDDINGS:
        data = [
            {"object": "embedding", "index": item.get("index", i), "embedding": item["embedding"]}
            for i, item in enumerate(raw.get("data") or ())
        ]
        shaped: dict[str, Any] = {"object": "list", "data": data, "model": raw.get("model")}
        shaped["usage"] = _usage(raw.get("usage"), embeddings=True)
        return shaped
    if endpoint is Endpoint.COMPLETIONS:
        shaped = _envelope(raw, "text_completion")
        shaped["choices"] = [_completion_choice(c) for c in raw.get("choices") or ()]
    else:
        shaped = _envelope(raw, "chat.completion")
        shaped["choices"] = [
            {
                "index": c.get("index", 0),
                "message": _message(c.get("message") or {}, delta=False),
                "logprobs": c.get("logprobs"),
                "finish_reason": c.get("finish_reason"),
            }
            for c in raw.get("choices") or ()
        ]
    shaped["usage"] = _usage(raw.get("usage"))
    return shaped


def _completion_choice(raw: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "index": raw.get("index", 0),
        "text": raw.get("text") or "",
        "logprobs": raw.get("logprobs"),
        "finish_reason": raw.get("finish_reason"),
    }


def _chunk_choice(raw: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "index": raw.get("index", 0),
        "delta": _message(raw.get("delta") or {}, delta=True),
        "logprobs": raw.get("logprobs"),
        "finish_reason": raw.get("finish_reason"),
    }


class StreamShaper:
    """Turns litellm's stream chunks into OpenAI's, one stream at a time.

    Every chunk carries the first chunk's ``id`` and ``created`` (litellm's
    Gemini path mints a new id per chunk). Usage is yielded as OpenAI does, in
    a last chunk with ``choices: []``, only when ``include_usage`` was asked;
    the chunk litellm attaches it to is dropped when it carries nothing else.
    """

    def __init__(self, endpoint: Endpoint, *, include_usage: bool) -> None:
        self._completions = endpoint is Endpoint.COMPLETIONS
        self._include_usage = include_usage
        self._head: dict[str, Any] | None = None

    def shape(self, raw: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
        obj = "text_completion" if self._completions else "chat.completion.chunk"
        if self._head is None:
            self._head = _envelope(raw, obj)
        head = {
            **_envelope(raw, obj),
            "id": self._head.get("id"),
            "created": self._head.get("created"),
        }
        shape_choice = _completion_choice if self._completions else _chunk_choice
        choices = [shape_choice(c) for c in raw.get("choices") or ()]
        usage = _usage(raw.get("usage"))
        if usage is None:
            yield {**head, "choices": choices}
            return
        if any(c["finish_reason"] or c.get("delta") or c.get("text") for c in choices):
            yield {**head, "choices": choices}
        if self._include_usage:
            yield {**head, "choices": [], "usage": usage}
