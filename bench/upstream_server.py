"""A fast, fixed-answer OpenAI-compatible upstream for benchmarks.

Run: ``python bench/upstream_server.py --port 9100 [--chunks 20] [--delay-ms 0]``.

Raw asyncio (uvloop when installed) + httptools, HTTP/1.1 keep-alive, so that
the upstream costs as little CPU as possible and the proxy under test is what
is measured. ``POST /v1/chat/completions`` answers:

* without ``"stream": true`` in the body: one small fixed JSON completion with
  ``usage``;
* with it: ``--chunks`` content chunks, one usage chunk and ``data: [DONE]``,
  as a chunked ``text/event-stream``.

``POST /v1/responses`` answers the same in OpenAI's Responses wire format: a
Response object, or the Responses event stream (``response.created``,
``response.in_progress``, the item and content part, ``--chunks``
``response.output_text.delta`` events, their ``.done`` events and
``response.completed`` with usage), for ``OPEN_MODEL_RESPONSES=native``.

The body is not parsed as JSON; a byte search for ``"stream":true`` (with or
without a space) decides. Any other path answers 404. ``--delay-ms`` sleeps
before answering (0 by default: no artificial latency).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time

import httptools
import orjson

_MODEL = "bench-model"


def _completion() -> bytes:
    return orjson.dumps(
        {
            "id": "chatcmpl-bench",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": _MODEL,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "Hello from the bench upstream."},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 12, "completion_tokens": 7, "total_tokens": 19},
        }
    )


def _stream_body(chunks: int) -> bytes:
    """The whole SSE answer, pre-encoded as HTTP chunks (one per event)."""

    def event(payload: dict[str, object]) -> bytes:
        return b"data: " + orjson.dumps(payload) + b"\n\n"

    base = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": _MODEL,
    }
    events = [event({**base, "choices": [{"index": 0, "delta": _delta(i)}]}) for i in range(chunks)]
    events.append(event({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}))
    events.append(
        event(
            {
                **base,
                "choices": [],
                "usage": {
                    "prompt_tokens": 12,
                    "completion_tokens": chunks,
                    "total_tokens": 12 + chunks,
                },
            }
        )
    )
    events.append(b"data: [DONE]\n\n")
    out = bytearray()
    for e in events:
        out += f"{len(e):x}\r\n".encode() + e + b"\r\n"
    out += b"0\r\n\r\n"
    return bytes(out)


def _response(text: str, output_tokens: int) -> dict[str, object]:
    item = {
        "id": "msg_bench",
        "type": "message",
        "status": "completed",
        "role": "assistant",
        "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}],
    }
    return {
        "id": "resp_bench",
        "object": "response",
        "created_at": int(time.time()),
        "status": "completed",
        "error": None,
        "incomplete_details": None,
        "instructions": None,
        "model": _MODEL,
        "output": [item],
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "store": True,
        "tool_choice": "auto",
        "tools": [],
        "usage": {
            "input_tokens": 12,
            "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
            "output_tokens": output_tokens,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": 12 + output_tokens,
        },
        "metadata": {},
    }


def _responses_stream_body(chunks: int) -> bytes:
    """The Responses event stream, pre-encoded as HTTP chunks (one per event)."""
    seq = iter(range(chunks + 10))

    def event(kind: str, **fields: object) -> bytes:
        data = {"type": kind, "sequence_number": next(seq), **fields}
        return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"

    text = "".join(f"w{i} " for i in range(chunks))
    final = _response(text, chunks)
    started = {**final, "status": "in_progress", "output": [], "usage": None}
    item = final["output"][0]  # type: ignore[index]
    where = {"item_id": "msg_bench", "output_index": 0, "content_index": 0}
    part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
    events = [
        event("response.created", response=started),
        event("response.in_progress", response=started),
        event("response.output_item.added", output_index=0, item={**item, "content": []}),
        event("response.content_part.added", **where, part=part),
    ]
    events += [
        event("response.output_text.delta", **where, delta=f"w{i} ", logprobs=[])
        for i in range(chunks)
    ]
    events += [
        event("response.output_text.done", **where, text=text, logprobs=[]),
        event("response.content_part.done", **where, part={**part, "text": text}),
        event("response.output_item.done", output_index=0, item=item),
        event("response.completed", response=final),
    ]
    out = bytearray()
    for e in events:
        out += f"{len(e):x}\r\n".encode() + e + b"\r\n"
    out += b"0\r\n\r\n"
    return bytes(out)


def _delta(i: int) -> dict[str, str]:
    return {"role": "assistant", "content": f"w{i} "} if i == 0 else {"content": f"w{i} "}


class Answers:
    """Pre-built response bytes (headers included), shared by every connection."""

    def __init__(self, chunks: int) -> None:
        body = _completion()
        self.whole = (
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
            + f"content-length: {len(body)}\r\n\r\n".encode()
            + body
        )
        self.stream = (
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
            b"cache-control: no-cache\r\ntransfer-encoding: chunked\r\n\r\n" + _stream_body(chunks)
        )
        response = orjson.dumps(_response("Hello from the bench upstream.", 7))
        self.response = (
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
            + f"content-length: {len(response)}\r\n\r\n".encode()
            + response
        )
        self.response_stream = (
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
            b"cache-control: no-cache\r\ntransfer-encoding: chunked\r\n\r\n"
            + _responses_stream_body(chunks)
        )
        missing = b'{"error":{"message":"not found","type":"invalid_request_error"}}'
        self.not_found = (
            b"HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\n"
            + f"content-length: {len(missing)}\r\n\r\n".encode()
            + missing
        )


class Upstream(asyncio.Protocol):
    def __init__(self, answers: Answers, delay_s: float) -> None:
        self._answers = answers
        self._delay_s = delay_s
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._url = b""
        self._body = bytearray()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses
        self._transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError:
            if self._transport is not None:
                self._transport.close()

    # httptools callbacks
    def on_message_begin(self) -> None:
        self._url = b""
        self._body.clear()

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_body(self, body: bytes) -> None:
        self._body += body

    def on_message_complete(self) -> None:
        answer = self._answer()
        keep_alive = self._parser.should_keep_alive()
        if self._delay_s > 0:
            asyncio.get_running_loop().call_later(self._delay_s, self._send, answer, keep_alive)
        else:
            self._send(answer, keep_alive)

    def _answer(self) -> bytes:
        body = bytes(self._body)
        stream = b'"stream":true' in body or b'"stream": true' in body
        if self._url.startswith(b"/v1/responses"):
            return self._answers.response_stream if stream else self._answers.response
        if not self._url.startswith(b"/v1/chat/completions"):
            return self._answers.not_found
        return self._answers.stream if stream else self._answers.whole

    def _send(self, answer: bytes, keep_alive: bool) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        transport.write(answer)
        if not keep_alive:
            transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None


async def serve(host: str, port: int, chunks: int, delay_s: float) -> None:
    answers = Answers(chunks)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: Upstream(answers, delay_s), host, port, backlog=4096, reuse_address=True
    )
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--chunks", type=int, default=20, help="content chunks per stream")
    parser.add_argument("--delay-ms", type=float, default=0.0, help="wait before answering")
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.host, args.port, args.chunks, args.delay_ms / 1000))


if __name__ == "__main__":
    main()
