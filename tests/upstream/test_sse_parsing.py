"""The fast path's SSE parser: events come out whole and in order, however the
bytes are split across network reads and whatever line ends the server uses."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.upstream.openai_compat import _event_batches
from gateway.upstream.provider import FramedBatch

payloads = st.lists(
    st.text(
        alphabet=st.characters(blacklist_characters="\r\n", blacklist_categories=["Cs"]),
        min_size=1,
        max_size=30,
    ).map(lambda t: ('{"t": "' + t.replace("\\", "").replace('"', "") + '"}').encode()),
    min_size=0,
    max_size=8,
)


def serialize(events: list[bytes], newline: bytes, with_noise: bool) -> bytes:
    out = b""
    for event in events:
        if with_noise:
            out += b": keep-alive" + newline + b"event: message" + newline
        out += b"data: " + event + newline + newline
    return out + b"data: [DONE]" + newline + newline + b"data: after-done" + newline + newline


async def reads(chunks: list[bytes]) -> AsyncIterator[bytes]:
    """The body as the HTTP client gives it: one chunk per network read."""
    for chunk in chunks:
        await asyncio.sleep(0)
        yield chunk


async def parse(chunks: list[bytes]) -> list[list[bytes]]:
    return [batch async for batch in _event_batches(reads(chunks))]


@settings(max_examples=200, deadline=None)
@given(
    events=payloads,
    newline=st.sampled_from([b"\n", b"\r\n", b"\r"]),
    noise=st.booleans(),
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=10),
)
def test_any_split_gives_the_same_events(
    events: list[bytes], newline: bytes, noise: bool, cuts: list[int]
) -> None:
    raw = serialize(events, newline, noise)
    points = sorted({c for c in cuts if 0 < c < len(raw)})
    chunks = [raw[a:b] for a, b in zip([0, *points], [*points, len(raw)], strict=True)]
    batches = asyncio.run(parse(chunks))
    assert all(batches), "a batch is never empty"
    assert [p for batch in batches for p in batch] == events, "stops at [DONE]"


def test_multi_line_data_is_joined() -> None:
    raw = b"data: line one\ndata: line two\n\ndata: [DONE]\n\n"
    assert asyncio.run(parse([raw])) == [[b"line one\nline two"]]


def test_events_read_together_come_in_one_batch() -> None:
    raw = b"data: a\n\ndata: b\n\ndata: c\n\n"
    assert asyncio.run(parse([raw])) == [[b"a", b"b", b"c"]]


def test_stream_without_done_still_yields_last_event() -> None:
    assert asyncio.run(parse([b"data: a\n\ndata: b"])) == [[b"a"], [b"b"]]


@settings(max_examples=200, deadline=None)
@given(
    events=payloads,
    newline=st.sampled_from([b"\n", b"\r\n"]),
    noise=st.booleans(),
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=10),
)
def test_framed_batches_carry_exactly_their_events_wire_bytes(
    events: list[bytes], newline: bytes, noise: bool, cuts: list[int]
) -> None:
    """A batch marked as canonically framed is forwarded as its ``raw`` bytes:
    those must be exactly ``data: <payload>\\n\\n`` for each of its events."""
    raw = serialize(events, newline, noise)
    points = sorted({c for c in cuts if 0 < c < len(raw)})
    chunks = [raw[a:b] for a, b in zip([0, *points], [*points, len(raw)], strict=True)]
    for batch in asyncio.run(parse(chunks)):
        if isinstance(batch, FramedBatch):
            assert batch.raw == b"".join(b"data: " + p + b"\n\n" for p in batch)


def test_canonical_events_come_framed_and_others_do_not() -> None:
    canonical = b'data: {"a": 1}\n\ndata: {"b": "data: x"}\n\n'
    (batch,) = asyncio.run(parse([canonical + b"data: [DONE]\n\n"]))
    assert isinstance(batch, FramedBatch)
    assert batch == [b'{"a": 1}', b'{"b": "data: x"}'] and batch.raw == canonical
    for other in (
        b": keep-alive\n\ndata: {}\n\n",  # a comment
        b"event: message\ndata: {}\n\n",  # an event name
        b"data: {}\ndata: {}\n\n",  # a multi-line data field
        b"data:{}\n\n",  # no space after the colon
    ):
        batches = asyncio.run(parse([other]))
        assert batches and not any(isinstance(b, FramedBatch) for b in batches), other
