"""A simulated upstream for ``gateway serve --demo`` and for tests.

Deterministic: the same request to the same target gives the same answer.
Every answer says it is simulated (in its text and its ``system_fingerprint``)
so nobody mistakes a demo for a model. Knobs (``Target.simulated``): latency
before the first byte, delay between chunks, completion length, tokens per
chunk, an error status (always, or for a deterministic fraction of requests)
and a mid-stream failure after N chunks.

Structured outputs work as with a real model: a ``response_format`` of type
``json_schema`` is answered with JSON valid against its schema, ``json_object``
with a JSON object, and a tool call's ``arguments`` are valid against the
tool's ``parameters`` (see :mod:`gateway.upstream.schema_instance`), so the
SDKs' ``parse()`` helpers and frameworks' structured output work in the demo.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import struct
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson

from gateway.endpoints import Endpoint
from gateway.errors import UpstreamDisconnected, UpstreamStatusError
from gateway.targets import Target
from gateway.upstream.provider import UpstreamCall, UpstreamReply
from gateway.upstream.schema_instance import instance

FINGERPRINT = "fp_simulated"
EMBEDDING_DIMENSIONS = 64

_WORDS = (
    "simulated",
    "answer",
    "routing",
    "gateway",
    "policy",
    "model",
    "token",
    "request",
    "stream",
    "cache",
    "budget",
    "sensitivity",
    "open",
    "proprietary",
    "target",
    "fallback",
    "latency",
    "cost",
    "team",
    "demo",
    "response",
)


class SimulatedProvider:
    async def aclose(self) -> None:
        return None

    async def complete(self, call: UpstreamCall) -> UpstreamReply:
        seed = _seed(call)
        await _before_first_byte(call.target, seed)
        if call.endpoint is Endpoint.EMBEDDINGS:
            return UpstreamReply(data=_embeddings(call, seed))
        return UpstreamReply(data=_completion(call, seed))

    async def stream(self, call: UpstreamCall) -> AsyncIterator[list[bytes]]:
        async for event in self._events(call):
            yield [event]

    async def _events(self, call: UpstreamCall) -> AsyncIterator[bytes]:
        seed = _seed(call)
        knobs = call.target.simulated
        await _before_first_byte(call.target, seed)
        chat = call.endpoint is Endpoint.CHAT
        created = int(time.time())
        ident = _ident(call, seed)
        n = _n(call.body)
        text, completion_tokens = _answer(call, seed)
        pieces = _pieces(call, text, max(1, knobs.chunk_tokens))
        sent = 0
        for index in range(n):
            if chat:
                yield _chunk(call, ident, created, {index: {"role": "assistant", "content": ""}})
        tool = _tool_call(call.body, seed) if chat else None
        if tool is not None:
            function = tool["function"]
            for index in range(n):
                opening = {
                    "index": 0,
                    "id": tool["id"],
                    "type": "function",
                    "function": {"name": function["name"], "arguments": ""},
                }
                yield _chunk(call, ident, created, {index: {"tool_calls": [opening]}})
                rest = {"index": 0, "function": {"arguments": function["arguments"]}}
                yield _chunk(call, ident, created, {index: {"tool_calls": [rest]}})
        else:
            for piece in pieces:
                if knobs.fail_after_chunks is not None and sent >= knobs.fail_after_chunks:
                    raise UpstreamDisconnected(f"{call.target.name} (simulated) dropped the stream")
                if knobs.chunk_delay_ms:
                    await asyncio.sleep(knobs.chunk_delay_ms / 1000)
                for index in range(n):
                    delta = {"content": piece} if chat else {"text": piece}
                    yield _chunk(call, ident, created, {index: delta})
                sent += 1
        finish = "tool_calls" if tool is not None else "stop"
        for index in range(n):
            yield _chunk(call, ident, created, {index: {}}, finish=finish)
        options = call.body.get("stream_options")
        if isinstance(options, dict) and options.get("include_usage"):
            usage = _usage(call, completion_tokens * n)
            yield orjson.dumps(
                {
                    "id": ident,
                    "object": "chat.completion.chunk" if chat else "text_completion",
                    "created": created,
                    "model": call.target.model,
                    "system_fingerprint": FINGERPRINT,
                    "choices": [],
                    "usage": usage,
                }
            )


async def _before_first_byte(target: Target, seed: int) -> None:
    knobs = target.simulated
    if knobs.latency_ms:
        await asyncio.sleep(knobs.latency_ms / 1000)
    failing = knobs.error_status is not None and (
        knobs.error_rate <= 0 or (seed % 10_000) / 10_000 < knobs.error_rate
    )
    if failing and knobs.error_status is not None:
        status = knobs.error_status
        raise UpstreamStatusError(
            status,
            f"simulated HTTP {status} from {target.name}",
            retry_after_s=1.0 if status == 429 else None,
        )


def _seed(call: UpstreamCall) -> int:
    digest = hashlib.blake2b(orjson.dumps(call.body, option=orjson.OPT_SORT_KEYS), digest_size=8)
    digest.update(call.target.name.encode())
    return int.from_bytes(digest.digest(), "big")


def _ident(call: UpstreamCall, seed: int) -> str:
    prefix = "chatcmpl" if call.endpoint is Endpoint.CHAT else "cmpl"
    return f"{prefix}-sim{seed:016x}"


def _n(body: dict[str, Any]) -> int:
    n = body.get("n", 1)
    return n if isinstance(n, int) and not isinstance(n, bool) and n > 0 else 1


def _answer_words(call: UpstreamCall, seed: int) -> list[str]:
    knobs = call.target.simulated
    count = knobs.completion_tokens
    max_tokens = call.body.get("max_completion_tokens") or call.body.get("max_tokens")
    if isinstance(max_tokens, int) and not isinstance(max_tokens, bool):
        count = min(count, max_tokens)
    label = f"[simulated {call.target.kind.value} model {call.target.name}]"
    words = [label]
    state = seed
    while len(words) < max(1, count):
        state = (state * 6364136223846793005 + 1442695040888963407) % (1 << 64)
        words.append(_WORDS[state % len(_WORDS)])
    return words[: max(1, count)]


def _answer(call: UpstreamCall, seed: int) -> tuple[str, int]:
    """The answer's text and its completion tokens: JSON for structured outputs, else words."""
    structured = _structured(call.body, call, seed)
    if structured is not None:
        return structured, max(1, len(structured) // 4)
    words = _answer_words(call, seed)
    return " ".join(words), len(words)


def _structured(body: dict[str, Any], call: UpstreamCall, seed: int) -> str | None:
    """The JSON text a ``response_format`` asks for, or ``None`` for a plain answer."""
    wanted = body.get("response_format")
    if not isinstance(wanted, dict):
        return None
    if wanted.get("type") == "json_schema":
        spec = wanted.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        value = instance(schema if isinstance(schema, dict) else {"type": "object"}, seed=seed)
        return orjson.dumps(value).decode()
    if wanted.get("type") == "json_object":
        label = f"simulated {call.target.kind.value} model {call.target.name}"
        return orjson.dumps({"simulated": True, "model": label}).decode()
    return None


def _pieces(call: UpstreamCall, text: str, per_chunk: int) -> list[str]:
    """The text as stream deltas: ``per_chunk`` words each, or about as many characters
    for JSON (which has no words to split on)."""
    wanted = call.body.get("response_format")
    if isinstance(wanted, dict) and wanted.get("type") in ("json_schema", "json_object"):
        size = 4 * per_chunk
        return [text[i : i + size] for i in range(0, len(text), size)] or [""]
    words = text.split(" ")
    return [
        (" " if start else "") + " ".join(words[start : start + per_chunk])
        for start in range(0, len(words), per_chunk)
    ]


def _prompt_tokens(call: UpstreamCall) -> int:
    size = len(
        orjson.dumps(
            call.body.get("messages") or call.body.get("prompt") or call.body.get("input") or ""
        )
    )
    return max(1, size // 4)


def _usage(call: UpstreamCall, completion_tokens: int) -> dict[str, int]:
    prompt = _prompt_tokens(call)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt + completion_tokens,
    }


def _tool_call(body: dict[str, Any], seed: int) -> dict[str, Any] | None:
    tools = body.get("tools")
    choice = body.get("tool_choice", "auto")
    if not isinstance(tools, list) or not tools or choice == "none":
        return None
    chosen = tools[0]
    if isinstance(choice, dict):
        wanted = (choice.get("function") or {}).get("name")
        chosen = next(
            (
                t
                for t in tools
                if isinstance(t, dict) and (t.get("function") or {}).get("name") == wanted
            ),
            chosen,
        )
    function = chosen.get("function") if isinstance(chosen, dict) else None
    name = function.get("name") if isinstance(function, dict) else None
    if not isinstance(name, str):
        return None
    parameters = function.get("parameters") if isinstance(function, dict) else None
    if not isinstance(parameters, dict) or not parameters:
        parameters = {"type": "object"}
    arguments = orjson.dumps(instance(parameters, seed=seed)).decode()
    return {
        "id": "call_simulated_0",
        "type": "function",
        "function": {"name": name, "arguments": arguments},
    }


def _completion(call: UpstreamCall, seed: int) -> dict[str, Any]:
    text, completion_tokens = _answer(call, seed)
    n = _n(call.body)
    chat = call.endpoint is Endpoint.CHAT
    choices: list[dict[str, Any]] = []
    for index in range(n):
        if chat:
            tool = _tool_call(call.body, seed)
            message: dict[str, Any] = {"role": "assistant", "content": None if tool else text}
            if tool is not None:
                message["tool_calls"] = [tool]
            choices.append(
                {
                    "index": index,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": "tool_calls" if tool else "stop",
                }
            )
        else:
            choices.append(
                {"index": index, "text": text, "logprobs": None, "finish_reason": "stop"}
            )
    return {
        "id": _ident(call, seed),
        "object": "chat.completion" if chat else "text_completion",
        "created": int(time.time()),
        "model": call.target.model,
        "system_fingerprint": FINGERPRINT,
        "choices": choices,
        "usage": _usage(call, completion_tokens * n),
    }


def _embeddings(call: UpstreamCall, seed: int) -> dict[str, Any]:
    raw = call.body.get("input")
    inputs: list[Any] = (
        raw if isinstance(raw, list) and raw and not isinstance(raw[0], int) else [raw]
    )
    as_base64 = call.body.get("encoding_format") == "base64"
    data = []
    for index, item in enumerate(inputs):
        digest = hashlib.blake2b(
            orjson.dumps(item), digest_size=32, key=seed.to_bytes(8, "big")
        ).digest()
        vector = [
            ((digest[i % 32] + i * 7) % 256) / 255.0 - 0.5 for i in range(EMBEDDING_DIMENSIONS)
        ]
        embedding: Any = (
            base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
            if as_base64
            else vector
        )
        data.append({"object": "embedding", "index": index, "embedding": embedding})
    prompt = _prompt_tokens(call)
    return {
        "object": "list",
        "data": data,
        "model": call.target.model,
        "usage": {"prompt_tokens": prompt, "total_tokens": prompt},
    }


def _chunk(
    call: UpstreamCall,
    ident: str,
    created: int,
    deltas: dict[int, dict[str, Any]],
    *,
    finish: str | None = None,
) -> bytes:
    chat = call.endpoint is Endpoint.CHAT
    choices = []
    for index, delta in deltas.items():
        if chat:
            choices.append(
                {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}
            )
        else:
            choices.append(
                {
                    "index": index,
                    "text": delta.get("text", ""),
                    "logprobs": None,
                    "finish_reason": finish,
                }
            )
    return orjson.dumps(
        {
            "id": ident,
            "object": "chat.completion.chunk" if chat else "text_completion",
            "created": created,
            "model": call.target.model,
            "system_fingerprint": FINGERPRINT,
            "choices": choices,
        }
    )
