"""``POST /v1/responses`` of the test upstream (:mod:`tests.upstream_server`):
OpenAI's Responses API in its real wire format, as OpenAI and vLLM serve it.

The Response object and the event stream follow OpenAI's OpenAPI spec
(``/work/shared/openai/openai-openapi.yaml``: ``Response``,
``ResponseStreamEvent``) and what OpenAI's API sends: ``event: <type>`` then
``data: {"type": ..., "sequence_number": n, ...}`` per event, no ``[DONE]``;
``response.created`` and ``response.in_progress`` first, per output item
``response.output_item.added``, its content part and deltas
(``response.output_text.delta`` / ``response.function_call_arguments.delta``),
their ``.done`` events and ``response.output_item.done``, then
``response.completed`` with usage.

Behaviour, by model (as the chat endpoint's): ``status:<code>``, ``hang``,
``flaky:<n>`` … (the shared ones); otherwise "echo: <last user text>"; with
function tools and no tool output yet in the conversation, a call of the
first tool with ``{"city": "Paris"}``, and once a ``function_call_output``
came back, "the tool said: <output>" (so an agent's loop ends). A response
with ``store`` (the default) is kept, and ``previous_response_id`` prepends
its conversation (an unknown id is OpenAI's 404). The model ``usage-details``
reports cached and reasoning tokens.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import orjson
from aiohttp import web

_ids = itertools.count(1)


class _Server(Protocol):
    responses_store: dict[str, list[dict[str, Any]]]

    async def _record(self, request: web.Request) -> dict[str, Any]: ...

    async def _common(self, body: dict[str, Any]) -> web.StreamResponse | None: ...


def _id(prefix: str) -> str:
    return f"{prefix}_{next(_ids):08d}{int(time.time() * 1000):013d}"


def _conversation(items: Any) -> list[dict[str, Any]]:
    if isinstance(items, str):
        return [{"type": "message", "role": "user", "content": items}]
    return [item for item in items or [] if isinstance(item, dict)]


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            str(p.get("text", ""))
            for p in content
            if isinstance(p, dict) and p.get("type") in ("input_text", "output_text")
        )
    return ""


def _answer(body: dict[str, Any], conversation: list[dict[str, Any]]) -> dict[str, Any]:
    """The output item this upstream answers with (before ids)."""
    last = conversation[-1] if conversation else {}
    tools = [t for t in body.get("tools") or [] if t.get("type") == "function"]
    if last.get("type") == "function_call_output":
        return {"kind": "text", "text": f"the tool said: {last.get('output')}"}
    if tools and body.get("tool_choice") != "none":
        return {"kind": "call", "name": tools[0]["name"], "arguments": '{"city": "Paris"}'}
    text = ""
    for item in reversed(conversation):
        if item.get("role") == "user":
            text = _text_of(item.get("content"))
            break
    return {"kind": "text", "text": "echo: " + text}


def _usage(body: dict[str, Any], conversation: list[dict[str, Any]], out: str) -> dict[str, Any]:
    prompt = max(1, len(orjson.dumps(conversation)) // 4)
    if body.get("instructions"):
        prompt += len(str(body["instructions"])) // 4
    completion = max(1, len(out.split()))
    detailed = body.get("model") == "usage-details"
    return {
        "input_tokens": prompt,
        "input_tokens_details": {
            "cached_tokens": prompt // 2 if detailed else 0,
            "cache_write_tokens": 0,
        },
        "output_tokens": completion,
        "output_tokens_details": {"reasoning_tokens": 1 if detailed else 0},
        "total_tokens": prompt + completion,
    }


def _response(
    body: dict[str, Any], rid: str, status: str, output: list[dict[str, Any]], usage: Any
) -> dict[str, Any]:
    return {
        "id": rid,
        "object": "response",
        "created_at": int(time.time()),
        "status": status,
        "background": False,
        "error": None,
        "incomplete_details": None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "max_tool_calls": None,
        "model": body.get("model"),
        "output": output,
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": body.get("previous_response_id"),
        "reasoning": {"effort": None, "summary": None},
        "service_tier": "default",
        "store": body.get("store", True),
        "temperature": body.get("temperature", 1.0),
        "text": body.get("text") or {"format": {"type": "text"}, "verbosity": "medium"},
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools") or [],
        "top_logprobs": 0,
        "top_p": body.get("top_p", 1.0),
        "truncation": "disabled",
        "usage": usage,
        "user": body.get("user"),
        "metadata": {},
    }


def handler(server: _Server) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def responses(request: web.Request) -> web.StreamResponse:
        body = await server._record(request)
        early = await server._common(body)
        if early is not None:
            return early
        conversation: list[dict[str, Any]] = []
        previous = body.get("previous_response_id")
        if previous is not None:
            if previous not in server.responses_store:
                return web.json_response(
                    {
                        "error": {
                            "message": f"Previous response with id '{previous}' not found.",
                            "type": "invalid_request_error",
                            "param": "previous_response_id",
                            "code": "previous_response_not_found",
                        }
                    },
                    status=404,
                )
            conversation = list(server.responses_store[previous])
        conversation += _conversation(body.get("input"))
        answer = _answer(body, conversation)
        if answer["kind"] == "text":
            item: dict[str, Any] = {
                "id": _id("msg"),
                "type": "message",
                "status": "completed",
                "role": "assistant",
                "content": [
                    {
                        "type": "output_text",
                        "text": answer["text"],
                        "annotations": [],
                        "logprobs": [],
                    }
                ],
            }
            said = answer["text"]
        else:
            item = {
                "id": _id("fc"),
                "type": "function_call",
                "status": "completed",
                "arguments": answer["arguments"],
                "call_id": _id("call"),
                "name": answer["name"],
            }
            said = answer["arguments"]
        rid = _id("resp")
        usage = _usage(body, conversation, said)
        if body.get("store", True):
            kept = {k: v for k, v in item.items() if k not in ("id", "status")}
            server.responses_store[rid] = [*conversation, kept]
        if not body.get("stream"):
            return web.json_response(
                _response(body, rid, "completed", [item], usage),
                dumps=lambda v: orjson.dumps(v).decode(),
            )
        return await _stream(request, body, rid, item, usage)

    return responses


async def _stream(
    request: web.Request, body: dict[str, Any], rid: str, item: dict[str, Any], usage: Any
) -> web.StreamResponse:
    response = web.StreamResponse(headers={"content-type": "text/event-stream; charset=utf-8"})
    await response.prepare(request)
    seq = itertools.count()

    async def send(kind: str, **fields: Any) -> None:
        data = {"type": kind, "sequence_number": next(seq), **fields}
        await response.write(
            b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"
        )

    await send("response.created", response=_response(body, rid, "in_progress", [], None))
    await send("response.in_progress", response=_response(body, rid, "in_progress", [], None))
    if item["type"] == "message":
        text = item["content"][0]["text"]
        added = {**item, "status": "in_progress", "content": []}
        await send("response.output_item.added", output_index=0, item=added)
        part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
        where = {"item_id": item["id"], "output_index": 0, "content_index": 0}
        await send("response.content_part.added", **where, part=part)
        words = text.split(" ")
        for i, word in enumerate(words):
            await send(
                "response.output_text.delta",
                **where,
                delta=word if i == 0 else " " + word,
                logprobs=[],
            )
            if body.get("model") == "drop-mid-stream" and i == 1:
                assert request.transport is not None
                request.transport.close()
                return response
        await send("response.output_text.done", **where, text=text, logprobs=[])
        await send("response.content_part.done", **where, part={**part, "text": text})
    else:
        added = {**item, "status": "in_progress", "arguments": ""}
        await send("response.output_item.added", output_index=0, item=added)
        for piece in ('{"city"', ': "Par', 'is"}'):
            await send(
                "response.function_call_arguments.delta",
                item_id=item["id"],
                output_index=0,
                delta=piece,
            )
        await send(
            "response.function_call_arguments.done",
            item_id=item["id"],
            output_index=0,
            name=item["name"],
            arguments=item["arguments"],
        )
    await send("response.output_item.done", output_index=0, item=item)
    await send("response.completed", response=_response(body, rid, "completed", [item], usage))
    await response.write_eof()
    return response
