"""The stream relay: events forwarded as their wire bytes (a FramedBatch) come
out exactly as when each event is framed again, wherever the usage is and
whether or not the client asked for it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.judging.redaction import Redaction
from gateway.judging.sensitivity import Scanner
from gateway.upstream.provider import FramedBatch, Usage
from gateway.upstream.relay import Restorer, StreamResult, relay

USAGE = {"prompt_tokens": 3, "completion_tokens": 5, "total_tokens": 8}


def content(i: int, with_usage: bool) -> bytes:
    event: dict[str, object] = {"id": "c", "choices": [{"index": 0, "delta": {"content": f"w{i}"}}]}
    if with_usage:
        event["usage"] = USAGE  # usage riding on a content chunk
    return orjson.dumps(event)


USAGE_ONLY = orjson.dumps({"id": "c", "choices": [], "usage": USAGE})

events = st.lists(
    st.one_of(
        st.integers(0, 99).map(lambda i: content(i, False)),
        st.integers(0, 99).map(lambda i: content(i, True)),
        st.just(USAGE_ONLY),
    ),
    max_size=12,
)


async def run(batches: list[list[bytes]], include_usage: bool) -> tuple[bytes, StreamResult]:
    result = StreamResult()

    async def rest() -> AsyncIterator[list[bytes]]:
        for batch in batches[1:]:
            yield batch

    out = b"".join(
        [
            chunk
            async for chunk in relay(
                batches[0] if batches else None,
                rest(),
                include_usage=include_usage,
                restorer=None,
                capture=True,
                result=result,
            )
        ]
    )
    assert result.ended and result.completed
    return out, result


def framed(payloads: list[bytes]) -> FramedBatch:
    return FramedBatch(payloads, b"".join(b"data: " + p + b"\n\n" for p in payloads))


@settings(max_examples=300, deadline=None)
@given(
    stream=events,
    cuts=st.lists(st.integers(0, 12), max_size=4),
    include_usage=st.booleans(),
)
def test_framed_batches_relay_like_plain_ones(
    stream: list[bytes], cuts: list[int], include_usage: bool
) -> None:
    points = sorted({c for c in cuts if 0 < c < len(stream)})
    plain = [stream[a:b] for a, b in zip([0, *points], [*points, len(stream)], strict=True)]
    plain = [batch for batch in plain if batch]
    expected, expected_result = asyncio.run(run(plain, include_usage))
    got, result = asyncio.run(run([framed(batch) for batch in plain], include_usage))
    assert got == expected
    assert result.usage == expected_result.usage
    assert result.events == stream


def test_usage_is_hidden_from_a_client_that_did_not_ask() -> None:
    payloads = [content(1, False), content(2, False), USAGE_ONLY]
    out, result = asyncio.run(run([framed(payloads)], include_usage=False))
    assert out == b"".join(b"data: " + p + b"\n\n" for p in payloads[:2]) + b"data: [DONE]\n\n"
    assert result.usage == Usage(3, 5)


def restored_stream(events: list[dict[str, object]], mapping: dict[str, str]) -> list[Any]:
    """The events a client reads when ``events`` are relayed with a restoring redaction."""
    redaction = Redaction(Scanner(), frozenset({"email"}))
    for value in mapping.values():
        redaction.redact_text(value)  # registers value -> placeholder
    assert dict(redaction.mapping) == mapping

    async def go() -> bytes:
        async def rest() -> AsyncIterator[list[bytes]]:
            for event in events:
                yield [orjson.dumps(event)]

        return b"".join(
            [
                chunk
                async for chunk in relay(
                    None,
                    rest(),
                    include_usage=False,
                    restorer=Restorer(redaction.stream_restorer),
                    capture=False,
                    result=StreamResult(),
                )
            ]
        )

    out = asyncio.run(go())
    blocks = [b[len(b"data: ") :] for b in out.split(b"\n\n") if b and b != b"data: [DONE]"]
    return [orjson.loads(b) for b in blocks]


def test_placeholders_split_across_tool_call_argument_chunks_are_restored() -> None:
    mapping = {"[EMAIL_1]": "ada@example.com"}
    pieces = ['{"to": "[EM', "AIL", '_1]"}']
    events: list[dict[str, object]] = [
        {
            "choices": [
                {"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": p}}]}}
            ]
        }
        for p in pieces
    ]
    events.append({"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]})
    seen = restored_stream(events, mapping)
    arguments = "".join(
        call["function"]["arguments"]
        for e in seen
        for c in e["choices"]
        for call in c.get("delta", {}).get("tool_calls", [])
    )
    assert arguments == '{"to": "ada@example.com"}'


def test_refusal_and_content_are_restored_separately() -> None:
    mapping = {"[EMAIL_1]": "ada@example.com"}
    events: list[dict[str, object]] = [
        {"choices": [{"index": 0, "delta": {"refusal": "no mail to [EMAI"}}]},
        {"choices": [{"index": 0, "delta": {"content": "write [EMAIL_1]"}}]},
        {"choices": [{"index": 0, "delta": {"refusal": "L_1]"}}]},
    ]
    seen = restored_stream(events, mapping)
    deltas = [c["delta"] for e in seen for c in e["choices"]]
    assert "".join(d.get("refusal") or "" for d in deltas) == "no mail to ada@example.com"
    assert "".join(d.get("content") or "" for d in deltas) == "write ada@example.com"
