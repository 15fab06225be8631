"""Every place user text can hide in an OpenAI request body.

The walk is lenient, like the wire: a body is a dict as parsed from JSON, and
any shape the walk does not recognise is skipped, never an error. Covered:

- chat: ``messages[*].content`` (a string, or parts of type ``text`` /
  ``refusal``; image, audio and file parts are skipped), the assistant's
  ``refusal``, ``tool_calls[*].function.arguments`` and the legacy
  ``function_call.arguments`` (JSON strings, walked as text), and
  ``prediction.content`` (predicted outputs), for every role;
- completions: ``prompt`` (a string or a list of strings; token-id lists are
  skipped) and ``suffix``;
- embeddings: ``input`` (a string or a list of strings; token arrays skipped).

Not walked: message ``name`` fields, and tool *definitions* (``tools``,
``functions``), which are the application's schema rather than its data.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

Rewrite = Callable[[str], str]

#: content-part types whose ``text`` field is text
_TEXT_PARTS = frozenset({"text", "input_text", "output_text"})


def iter_texts(body: Mapping[str, Any]) -> Iterator[str]:
    """Yield every text of ``body``, in document order."""
    messages = body.get("messages")
    if isinstance(messages, list):
        for message in messages:
            # dict first: the JSON parser's type, checked without the ABC machinery
            if type(message) is dict or isinstance(message, Mapping):
                content = message.get("content")
                if type(content) is str:  # the common case, without a nested generator
                    yield content
                    if len(message) > 2 or "role" not in message:
                        # anything besides role and content may hold text
                        yield from _other_message_texts(message)
                else:
                    yield from _message_texts(message)
    prediction = body.get("prediction")
    if prediction is not None and isinstance(prediction, Mapping):
        yield from _content_texts(prediction.get("content"))
    for key in ("prompt", "suffix", "input"):
        prompt = body.get(key)
        if prompt is not None:
            yield from _prompt_texts(prompt)


def rewrite_texts(body: dict[str, Any], fn: Rewrite) -> dict[str, Any]:
    """Return a new body with every text ``t`` that :func:`iter_texts` yields replaced by ``fn(t)``.

    ``body`` is never mutated. Containers on the way to a text are copied
    (shallowly); everything else is shared with the input.
    """
    out = dict(body)
    messages = body.get("messages")
    if isinstance(messages, list):
        out["messages"] = [
            _rewrite_message(m, fn) if isinstance(m, Mapping) else m for m in messages
        ]
    prediction = body.get("prediction")
    if isinstance(prediction, Mapping) and "content" in prediction:
        new_prediction = dict(prediction)
        new_prediction["content"] = _rewrite_content(prediction["content"], fn)
        out["prediction"] = new_prediction
    for key in ("prompt", "suffix", "input"):
        if key in body:
            out[key] = _rewrite_prompt(body[key], fn)
    return out


def _message_texts(message: Mapping[str, Any]) -> Iterator[str]:
    yield from _content_texts(message.get("content"))
    yield from _other_message_texts(message)


def _other_message_texts(message: Mapping[str, Any]) -> Iterator[str]:
    """The texts of a message besides its content."""
    refusal = message.get("refusal")
    if isinstance(refusal, str):
        yield refusal
    tool_calls = message.get("tool_calls")
    if isinstance(tool_calls, list):
        for call in tool_calls:
            if isinstance(call, Mapping):
                yield from _arguments_texts(call.get("function"))
    yield from _arguments_texts(message.get("function_call"))


def _content_texts(content: Any) -> Iterator[str]:
    if isinstance(content, str):
        yield content
    elif isinstance(content, list):
        for part in content:
            if not isinstance(part, Mapping):
                continue
            kind = part.get("type")
            field = "text" if kind in _TEXT_PARTS else "refusal" if kind == "refusal" else None
            if field is not None:
                value = part.get(field)
                if isinstance(value, str):
                    yield value


def _arguments_texts(function: Any) -> Iterator[str]:
    if isinstance(function, Mapping):
        arguments = function.get("arguments")
        if isinstance(arguments, str):
            yield arguments


def _prompt_texts(prompt: Any) -> Iterator[str]:
    if isinstance(prompt, str):
        yield prompt
    elif isinstance(prompt, list):
        for item in prompt:
            if isinstance(item, str):
                yield item


def _rewrite_message(message: Mapping[str, Any], fn: Rewrite) -> dict[str, Any]:
    out = dict(message)
    if "content" in message:
        out["content"] = _rewrite_content(message["content"], fn)
    refusal = message.get("refusal")
    if isinstance(refusal, str):
        out["refusal"] = fn(refusal)
    tool_calls = message.get("tool_calls")
    if isinstance(tool_calls, list):
        out["tool_calls"] = [_rewrite_call(call, fn) for call in tool_calls]
    if "function_call" in message:
        out["function_call"] = _rewrite_function(message["function_call"], fn)
    return out


def _rewrite_content(content: Any, fn: Rewrite) -> Any:
    if isinstance(content, str):
        return fn(content)
    if not isinstance(content, list):
        return content
    parts: list[Any] = []
    for part in content:
        if isinstance(part, Mapping):
            kind = part.get("type")
            field = "text" if kind in _TEXT_PARTS else "refusal" if kind == "refusal" else None
            if field is not None and isinstance(part.get(field), str):
                new_part = dict(part)
                new_part[field] = fn(part[field])
                part = new_part
        parts.append(part)
    return parts


def _rewrite_call(call: Any, fn: Rewrite) -> Any:
    if not isinstance(call, Mapping) or "function" not in call:
        return call
    out = dict(call)
    out["function"] = _rewrite_function(call["function"], fn)
    return out


def _rewrite_function(function: Any, fn: Rewrite) -> Any:
    if not isinstance(function, Mapping) or not isinstance(function.get("arguments"), str):
        return function
    out = dict(function)
    out["arguments"] = fn(function["arguments"])
    return out


def _rewrite_prompt(prompt: Any, fn: Rewrite) -> Any:
    if isinstance(prompt, str):
        return fn(prompt)
    if isinstance(prompt, list) and any(isinstance(item, str) for item in prompt):
        return [fn(item) if isinstance(item, str) else item for item in prompt]
    return prompt
