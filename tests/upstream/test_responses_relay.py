"""The native Responses relay and body: placeholders split across deltas are
restored (the held-back tail comes as one more delta before ``.done``), ids are
the gateway's, usage is read from ``response.completed``, a failure ends with an
``error`` event; the body a native target gets is rebuilt from the chat body."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.errors import UpstreamDisconnected
from gateway.judging.redaction import Redaction
from gateway.judging.sensitivity import Scanner
from gateway.levels import Level
from gateway.targets import Kind, ProviderType, Target
from gateway.upstream.openai_compat import _event_batches
from gateway.upstream.provider import FramedBatch, Usage
from gateway.upstream.relay import Restorer, StreamResult
from gateway.upstream.responses_relay import frame, relay_responses
from gateway.upstream.responses_wire import NativeResponses

EMAIL = "ada@example.com"
USAGE = {
    "input_tokens": 10,
    "input_tokens_details": {"cached_tokens": 4, "cache_write_tokens": 0},
    "output_tokens": 6,
    "output_tokens_details": {"reasoning_tokens": 2},
    "total_tokens": 16,
}


def _response(rid: str, status: str, output: list[Any], usage: Any) -> dict[str, Any]:
    return {"id": rid, "object": "response", "status": status, "output": output, "usage": usage}


def stream_of(pieces: list[str]) -> list[dict[str, Any]]:
    text = "".join(pieces)
    item = {"id": "msg_1", "type": "message", "role": "assistant", "status": "completed",
            "content": [{"type": "output_text", "text": text, "annotations": []}]}  # fmt: skip
    where = {"item_id": "msg_1", "output_index": 0, "content_index": 0}
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": _response("resp_up", "in_progress", [], None)},
        {"type": "response.output_item.added", "output_index": 0, "item": {**item, "content": []}},
    ]
    events += [{"type": "response.output_text.delta", **where, "delta": p} for p in pieces]
    events += [
        {"type": "response.output_text.done", **where, "text": text},
        {"type": "response.output_item.done", "output_index": 0, "item": item},
        {
            "type": "response.completed",
            "response": _response("resp_up", "completed", [item], USAGE),
        },
    ]
    for n, event in enumerate(events):
        event["sequence_number"] = n
    return events


def relayed(
    events: list[dict[str, Any]], *, redact: bool, fail: bool = False, framed: bool = False
) -> tuple[list[dict[str, Any]], StreamResult, NativeResponses]:
    redaction = Redaction(Scanner(), frozenset({"email"}))
    assert redaction.redact_text(EMAIL) == "[EMAIL_1]"
    restorer = Restorer(redaction.stream_restorer, redaction.restore_answer) if redact else None
    native = NativeResponses(response_id="resp_gw", previous_id="resp_before")
    result = StreamResult()

    async def rest() -> AsyncIterator[list[bytes]]:
        if framed:  # as the provider reads them off the wire: its own bytes
            raw = b"".join(frame(e["type"], orjson.dumps(e)) for e in events)
            async for batch in _event_batches(_chunks(raw), named=True):
                assert type(batch) is FramedBatch
                yield batch
        else:
            for event in events:
                yield [orjson.dumps(event)]
        if fail:
            raise UpstreamDisconnected("gone")

    async def go() -> bytes:
        relay = relay_responses(
            None, rest(), restorer=restorer, capture=True, result=result, native=native
        )
        return b"".join([chunk async for chunk in relay])

    out = asyncio.run(go())
    parsed = []
    for block in out.split(b"\n\n"):
        if block:
            kind, data = block.split(b"\n")
            event = orjson.loads(data[len(b"data: ") :])
            assert kind == b"event: " + event["type"].encode()
            parsed.append(event)
    return parsed, result, native


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 8), min_size=1, max_size=6))
def test_a_placeholder_split_anywhere_is_restored(cuts: list[int]) -> None:
    text = "write to [EMAIL_1] now [EMAIL_1]"
    pieces, at = [], 0
    for cut in cuts:
        if at < len(text):
            pieces.append(text[at : at + cut])
            at += cut
    if at < len(text):
        pieces.append(text[at:])
    out, result, native = relayed(stream_of(pieces), redact=True)
    deltas = "".join(e["delta"] for e in out if e["type"] == "response.output_text.delta")
    restored = f"write to {EMAIL} now {EMAIL}"
    assert deltas == restored
    done = next(e for e in out if e["type"] == "response.output_text.done")
    assert done["text"] == restored
    assert [e["sequence_number"] for e in out] == list(range(len(out)))
    final = out[-1]["response"]
    assert final["output"][0]["content"][0]["text"] == restored
    assert final["id"] == "resp_gw" and final["previous_response_id"] == "resp_before"
    assert native.provider_id == "resp_up" and native.final == final
    assert result.usage == Usage(10, 6, cached_tokens=4, reasoning_tokens=2)


async def _chunks(raw: bytes) -> AsyncIterator[bytes]:
    for at in range(0, len(raw), 97):  # network reads that split events anywhere
        yield raw[at : at + 97]


@pytest.mark.parametrize("framed", [False, True])
def test_without_redaction_events_pass_as_they_came_but_the_ids(framed: bool) -> None:
    events = stream_of(["hello", " there"])
    out, result, native = relayed(events, redact=False, framed=framed)
    assert out[1:-1] == events[1:-1] and out[0]["response"]["id"] == "resp_gw"
    assert out[-1]["response"]["id"] == "resp_gw" and native.final == out[-1]["response"]
    assert result.events is not None and len(result.events) == len(events)
    assert result.usage == Usage(10, 6, cached_tokens=4, reasoning_tokens=2)
    assert native.provider_id == "resp_up"


def test_a_failure_mid_stream_ends_with_an_error_event() -> None:
    out, result, _ = relayed(stream_of(["a"])[:3], redact=False, fail=True)
    assert out[-1]["type"] == "error" and out[-1]["sequence_number"] == 3
    assert isinstance(result.error, UpstreamDisconnected) and result.events is None


def _target(name: str, native: bool = True) -> Target:
    return Target(
        name, Kind.OPEN, ProviderType.OPENAI_COMPATIBLE, "m", Level.RESTRICTED,
        base_url="http://x/v1", responses_native=native,
    )  # fmt: skip


def test_the_native_body_is_rebuilt_from_the_chat_body() -> None:
    chat = {
        "model": "m",
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "earlier"},
            {"role": "assistant", "content": "ok"},
            {"role": "user", "content": [{"type": "text", "text": "look"},
                                         {"type": "image_url", "image_url": {"url": "data:x"}}]},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "42"},
        ],
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}],
        "tool_choice": {"type": "function", "function": {"name": "f"}},
        "response_format": {"type": "json_schema", "json_schema": {"name": "n", "schema": {}}},
        "max_tokens": 9, "stream": True, "stream_options": {"include_usage": True},
        "unknown": "dropped",
    }  # fmt: skip
    plan = NativeResponses(
        response_id="r", instructions=True, history=2, provider_target="a", provider_previous="up_1"
    )
    body = plan.body(_target("b"), chat)
    assert body["instructions"] == "be brief" and "previous_response_id" not in body
    assert [i.get("role", i["type"]) for i in body["input"]] == [
        "user", "assistant", "user", "function_call", "function_call_output"
    ]  # fmt: skip
    assert body["input"][2]["content"][1] == {
        "type": "input_image", "image_url": "data:x", "detail": "auto"
    }  # fmt: skip
    assert body["tools"] == [{"type": "function", "name": "f", "parameters": {}}]
    assert body["tool_choice"] == {"type": "function", "name": "f"}
    assert body["text"] == {"format": {"type": "json_schema", "name": "n", "schema": {}}}
    assert body["max_output_tokens"] == 9 and body["stream"] is True
    assert "unknown" not in body and "stream_options" not in body
    # the target that served the previous turn natively: its own id, this turn only
    same = plan.body(_target("a"), chat)
    assert same["previous_response_id"] == "up_1"
    assert [i.get("role", i["type"]) for i in same["input"]] == [
        "user", "function_call", "function_call_output"
    ]  # fmt: skip
