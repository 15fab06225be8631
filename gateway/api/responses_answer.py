"""The answer of a Responses request: a chat completion as a Response object
(:func:`response_object`, :func:`output_from_chat`) or a chat stream as the
Responses event stream (:class:`EventStream`).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson

from gateway.api.chat_events import ChatEvents
from gateway.api.responses import new_id


def usage_of(usage: Any) -> dict[str, Any] | None:
    if not isinstance(usage, dict):
        return None
    prompt = int(usage.get("prompt_tokens") or 0)
    completion = int(usage.get("completion_tokens") or 0)
    details = usage.get("prompt_tokens_details") or {}
    out_details = usage.get("completion_tokens_details") or {}
    return {
        "input_tokens": prompt,
        "input_tokens_details": {
            "cached_tokens": int(details.get("cached_tokens") or 0),
            "cache_write_tokens": 0,
        },
        "output_tokens": completion,
        "output_tokens_details": {
            "reasoning_tokens": int(out_details.get("reasoning_tokens") or 0)
        },
        "total_tokens": prompt + completion,
    }


def response_object(
    response_id: str,
    echo: dict[str, Any],
    output: list[dict[str, Any]],
    usage: dict[str, Any] | None,
    *,
    status: str = "completed",
    created_at: float | None = None,
) -> dict[str, Any]:
    return {
        "id": response_id,
        "object": "response",
        "created_at": int(created_at if created_at is not None else time.time()),
        "status": status,
        "error": None,
        "incomplete_details": None,
        "output": output,
        "usage": usage,
        **echo,
    }


def output_from_chat(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Output items of a whole chat completion (its first choice)."""
    choices = data.get("choices") or [{}]
    choice = choices[0] if isinstance(choices[0], dict) else {}
    message = choice.get("message") or {}
    output: list[dict[str, Any]] = []
    text = message.get("content")
    if isinstance(text, str) and text:
        output.append(_message_item(new_id("msg"), text, "completed"))
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        output.append(
            _call_item(
                new_id("fc"),
                call.get("id") or new_id("call"),
                function.get("name", ""),
                function.get("arguments") or "",
                "completed",
            )
        )
    return output


def _message_item(item_id: str, text: str, status: str) -> dict[str, Any]:
    return {
        "type": "message",
        "id": item_id,
        "status": status,
        "role": "assistant",
        "content": [{"type": "output_text", "text": text, "annotations": []}],
    }


def _call_item(
    item_id: str, call_id: str, name: str, arguments: str, status: str
) -> dict[str, Any]:
    return {
        "type": "function_call",
        "id": item_id,
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
        "status": status,
    }


def _event(data: dict[str, Any]) -> bytes:
    return b"event: " + str(data["type"]).encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


class EventStream(ChatEvents):
    """Re-encodes a chat SSE stream (the pipeline's bytes) as Responses events.

    ``response.created`` and ``response.in_progress`` first; per output item
    ``response.output_item.added``, its deltas (``response.output_text.delta`` in
    a content part, or ``response.function_call_arguments.delta``), their
    ``.done`` events and ``response.output_item.done``; ``response.completed``
    with usage. A chat error event becomes ``error`` and ends the stream.
    ``on_complete`` gets the final Response object (for the store)."""

    def __init__(
        self,
        response_id: str,
        echo: dict[str, Any],
        on_complete: Callable[[dict[str, Any]], None],
    ) -> None:
        super().__init__()
        self._id, self._echo, self._on_complete = response_id, echo, on_complete
        self._created = time.time()
        self._seq = 0
        self._output: list[dict[str, Any]] = []
        #: the open item: ("text", index) or ("call", index, chat tool index)
        self._open: tuple[str, int, int] | None = None
        self._tools: dict[int, int] = {}
        self._usage: dict[str, Any] | None = None

    async def translate(self, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        yield self._start()
        try:
            async for chunk in chunks:
                out = self.feed(chunk)
                if out:
                    yield out
        finally:
            closer = getattr(chunks, "aclose", None)
            if closer is not None:
                await closer()

    def _emit(self, data: dict[str, Any]) -> bytes:
        data["sequence_number"] = self._seq
        self._seq += 1
        return _event(data)

    def _response(self, status: str) -> dict[str, Any]:
        return response_object(
            self._id,
            self._echo,
            list(self._output),
            self._usage if status == "completed" else None,
            status=status,
            created_at=self._created,
        )

    def _start(self) -> bytes:
        created = self._emit(
            {"type": "response.created", "response": self._response("in_progress")}
        )
        progress = self._emit(
            {"type": "response.in_progress", "response": self._response("in_progress")}
        )
        return created + progress

    def _payload(self, payload: bytes) -> list[bytes]:
        if payload == b"[DONE]":
            return self._finish()
        try:
            data = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return []
        if not isinstance(data, dict):
            return []
        if isinstance(data.get("error"), dict):
            self._ended = True
            error = data["error"]
            return [
                self._emit(
                    {
                        "type": "error",
                        "code": error.get("code"),
                        "message": str(error.get("message", "upstream error")),
                        "param": error.get("param"),
                    }
                )
            ]
        if isinstance(data.get("usage"), dict):
            self._usage = usage_of(data["usage"])
        out: list[bytes] = []
        for choice in data.get("choices") or []:
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            text = delta.get("content")
            if isinstance(text, str) and text:
                out.extend(self._text(text))
            for call in delta.get("tool_calls") or []:
                if isinstance(call, dict):
                    out.extend(self._call(call))
        return out

    def _text(self, text: str) -> list[bytes]:
        out: list[bytes] = []
        if self._open is None or self._open[0] != "text":
            out.extend(self._close())
            index = len(self._output)
            item = _message_item(new_id("msg"), "", "in_progress")
            item["content"] = []
            self._output.append(item)
            self._open = ("text", index, -1)
            out.append(
                self._emit(
                    {"type": "response.output_item.added", "output_index": index, "item": item}
                )
            )
            out.append(
                self._emit(
                    {
                        "type": "response.content_part.added",
                        "item_id": item["id"],
                        "output_index": index,
                        "content_index": 0,
                        "part": {"type": "output_text", "text": "", "annotations": []},
                    }
                )
            )
            item["content"] = [{"type": "output_text", "text": "", "annotations": []}]
        index = self._open[1]
        item = self._output[index]
        item["content"][0]["text"] += text
        out.append(
            self._emit(
                {
                    "type": "response.output_text.delta",
                    "item_id": item["id"],
                    "output_index": index,
                    "content_index": 0,
                    "delta": text,
                    "logprobs": [],
                }
            )
        )
        return out

    def _call(self, call: dict[str, Any]) -> list[bytes]:
        out: list[bytes] = []
        tool = call.get("index", 0)
        function = call.get("function") or {}
        if tool not in self._tools:
            out.extend(self._close())
            index = len(self._output)
            item = _call_item(
                new_id("fc"),
                call.get("id") or new_id("call"),
                function.get("name", ""),
                "",
                "in_progress",
            )
            self._output.append(item)
            self._tools[tool] = index
            self._open = ("call", index, tool)
            out.append(
                self._emit(
                    {"type": "response.output_item.added", "output_index": index, "item": item}
                )
            )
        index = self._tools[tool]
        arguments = function.get("arguments")
        if isinstance(arguments, str) and arguments:
            item = self._output[index]
            item["arguments"] += arguments
            out.append(
                self._emit(
                    {
                        "type": "response.function_call_arguments.delta",
                        "item_id": item["id"],
                        "output_index": index,
                        "delta": arguments,
                    }
                )
            )
        return out

    def _close(self) -> list[bytes]:
        if self._open is None:
            return []
        kind, index, _ = self._open
        self._open = None
        item = self._output[index]
        item["status"] = "completed"
        out: list[bytes] = []
        if kind == "text":
            text = item["content"][0]["text"]
            common = {"item_id": item["id"], "output_index": index, "content_index": 0}
            out.append(
                self._emit(
                    {"type": "response.output_text.done", **common, "text": text, "logprobs": []}
                )
            )
            out.append(
                self._emit(
                    {
                        "type": "response.content_part.done",
                        **common,
                        "part": {"type": "output_text", "text": text, "annotations": []},
                    }
                )
            )
        else:
            out.append(
                self._emit(
                    {
                        "type": "response.function_call_arguments.done",
                        "item_id": item["id"],
                        "output_index": index,
                        "name": item["name"],
                        "arguments": item["arguments"],
                    }
                )
            )
        out.append(
            self._emit({"type": "response.output_item.done", "output_index": index, "item": item})
        )
        return out

    def _finish(self) -> list[bytes]:
        self._ended = True
        out = self._close()
        for item in self._output:  # items a later one interrupted
            item["status"] = "completed"
        final = self._response("completed")
        self._on_complete(final)
        out.append(self._emit({"type": "response.completed", "response": final}))
        return out
