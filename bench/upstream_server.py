"""A fast, fixed-answer OpenAI-compatible upstream for benchmarks.

Run: ``python bench/upstream_server.py --port 9100 [--chunks 20] [--delay-ms 0]``.

Raw asyncio (uvloop when installed) + httptools, HTTP/1.1 keep-alive, so that
the upstream costs as little CPU as possible and the proxy under test is what
is measured. ``POST /v1/chat/completions`` answers:

* without ``"stream": true`` in the body: one small fixed JSON completion with
  ``usage``;
* with it: ``--chunks`` content chunks, one usage chunk and ``data: [DONE]``,
  as a chunked ``text/event-stream``.

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
        if not self._url.startswith(b"/v1/chat/completions"):
            return self._answers.not_found
        body = bytes(self._body)
        if b'"stream":true' in body or b'"stream": true' in body:
            return self._answers.stream
        return self._answers.whole

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
