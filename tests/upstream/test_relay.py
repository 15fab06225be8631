"""The stream relay: events forwarded as their wire bytes (a FramedBatch) come
out exactly as when each event is framed again, wherever the usage is and
whether or not the client asked for it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.upstream.provider import FramedBatch, Usage
from gateway.upstream.relay import StreamResult, relay

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
    results: list[StreamResult] = []

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
                on_done=results.append,
            )
        ]
    )
    return out, results[0]


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
