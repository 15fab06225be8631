"""A real local OpenAI-compatible server for tests, chosen-by-model-name behaviours.

It runs in its own thread and event loop on a free port and speaks HTTP over
real sockets, like vLLM or Ollama would. The ``model`` of each request picks
its behaviour:

* ``echo`` (or anything unknown) — answers "echo: <last user text>", streams word by word
* ``recording:<sha-prefix>`` — replays a recorded real OpenAI stream (tests/data/openai-sse)
* ``status:<code>`` — answers that HTTP status with an OpenAI error body
* ``hang`` — never answers
* ``slow-first-byte:<ms>`` — waits before the headers
* ``drop-mid-stream`` — sends two chunks then drops the connection
* ``flaky:<n>`` — the first n requests (per flaky key) get 503, then echo
* ``not-json`` — 200 with a non-JSON body
* ``agent`` — as ``echo``, but with tools it calls the first one only until the
  last message is the tool's output, then says "the tool said: <output>" (so an
  agent's loop ends); other models always call it
* ``POST /v1/responses`` — the Responses API, see :mod:`tests.responses_upstream`
* ``slow-stream`` — streams 100 chunks, 50 ms apart; a request whose client
  went away before the end is listed in ``abandoned`` (by ``x-request-id``)

``POST /v1/messages`` speaks Anthropic's Messages wire format (as Anthropic's
API does, for litellm's Anthropic provider): it replays the recorded message
or event stream in tests/data/anthropic.

Every request received is recorded (path, headers, body) for assertions.

``Upstream(max_concurrency=n, work_ms=ms)`` behaves like a vLLM server with
room for ``n`` requests at once: chat requests beyond ``n`` wait (as vLLM
queues them), each one holds its place ``work_ms`` before answering, and
``GET /metrics`` exports vLLM's load series (``vllm:num_requests_running``,
``vllm:num_requests_waiting``, ``vllm:kv_cache_usage_perc``) in Prometheus'
text format. ``peak_running`` is the most requests it ever ran at once.
"""

from __future__ import annotations

import asyncio
import base64
import socket
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from tests import responses_upstream

RECORDINGS = Path(__file__).resolve().parent / "data" / "openai-sse"
ANTHROPIC_DATA = Path(__file__).resolve().parent / "data" / "anthropic"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def recording_files() -> list[Path]:
    return sorted(RECORDINGS.glob("*.bin"))


def recording_events(path: Path) -> list[bytes]:
    """The data payloads of a recorded stream, without ``[DONE]``."""
    events = []
    for block in path.read_bytes().split(b"\n\n"):
        block = block.strip()
        if block.startswith(b"data: ") and block != b"data: [DONE]":
            events.append(block[len(b"data: ") :])
    return events


class Upstream:
    def __init__(self, *, max_concurrency: int | None = None, work_ms: float = 0.0) -> None:
        self.max_concurrency = max_concurrency
        self.work_ms = work_ms
        self.running = 0
        self.waiting = 0
        self.peak_running = 0
        self.chats = 0
        self._slots: asyncio.Semaphore | None = None
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.requests: list[dict[str, Any]] = []
        #: x-request-ids of streams whose reader went away before the end
        self.abandoned: list[str] = []
        self._flaky: dict[str, int] = {}
        #: stored Responses (``/v1/responses``): id -> the conversation so far
        self.responses_store: dict[str, list[dict[str, Any]]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._ready = threading.Event()

    # -- lifecycle ------------------------------------------------------------

    def start(self) -> Upstream:
        self._thread = threading.Thread(target=self._run, name="upstream", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the test upstream did not start")
        return self

    def stop(self) -> None:
        if self._loop is None:
            return
        future = asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop)
        future.result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        app = web.Application(client_max_size=64 * 1024 * 1024)
        if self.max_concurrency is not None:
            self._slots = asyncio.Semaphore(self.max_concurrency)
        app.router.add_get("/metrics", self._metrics)
        app.router.add_post("/v1/chat/completions", self._limited_chat)
        app.router.add_post("/v1/completions", self._completions)
        app.router.add_post("/v1/embeddings", self._embeddings)
        app.router.add_post("/v1/responses", responses_upstream.handler(self))
        app.router.add_post("/v1/messages", self._anthropic_messages)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        loop.run_until_complete(site.start())
        self._ready.set()
        loop.run_forever()
        loop.close()

    async def _shutdown(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        # handlers still hanging (the "hang" behaviour) end with the server
        pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    def bodies(self) -> Iterator[dict[str, Any]]:
        for request in self.requests:
            yield request["body"]

    # -- handlers ---------------------------------------------------------------

    async def _record(self, request: web.Request) -> dict[str, Any]:
        raw = await request.read()
        body = orjson.loads(raw)
        self.requests.append(
            {"path": request.path, "headers": dict(request.headers), "body": body, "raw": raw}
        )
        return dict(body)

    async def _common(self, body: dict[str, Any]) -> web.StreamResponse | None:
        model = str(body.get("model", ""))
        if model.startswith("status:"):
            status = int(model.split(":", 1)[1])
            headers = {"retry-after": "0"} if status == 429 else {}
            return _error(status, f"upstream says {status}", headers)
        if model == "hang":
            await asyncio.sleep(3600)
        if model.startswith("slow-first-byte:"):
            await asyncio.sleep(int(model.split(":", 1)[1]) / 1000)
        if model.startswith("flaky:"):
            failures = int(model.split(":", 1)[1])
            seen = self._flaky.get(model, 0)
            self._flaky[model] = seen + 1
            if seen < failures:
                return _error(503, "warming up")
        if model == "not-json":
            return web.Response(body=b"<html>oops</html>", content_type="text/html")
        if model == "context-too-long":
            return web.json_response(
                {
                    "error": {
                        "message": "This model's maximum context length is 8 tokens.",
                        "type": "invalid_request_error",
                        "param": "messages",
                        "code": "context_length_exceeded",
                    }
                },
                status=400,
            )
        return None

    async def _limited_chat(self, request: web.Request) -> web.StreamResponse:
        self.chats += 1
        if self._slots is None:
            self.running += 1
            try:
                if self.work_ms:
                    await asyncio.sleep(self.work_ms / 1000)
                return await self._chat(request)
            finally:
                self.running -= 1
        self.waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self.waiting -= 1
        self.running += 1
        self.peak_running = max(self.peak_running, self.running)
        try:
            if self.work_ms:
                await asyncio.sleep(self.work_ms / 1000)
            return await self._chat(request)
        finally:
            self.running -= 1
            self._slots.release()

    async def _metrics(self, request: web.Request) -> web.Response:
        """vLLM's load series, as its /metrics exports them."""
        model = 'model_name="meta-llama/Llama-3.1-8B-Instruct",engine="0"'
        usage = self.running / self.max_concurrency if self.max_concurrency else 0.0
        page = (
            "# HELP vllm:num_requests_running Number of requests in model execution batches.\n"
            "# TYPE vllm:num_requests_running gauge\n"
            f"vllm:num_requests_running{{{model}}} {float(self.running)}\n"
            "# HELP vllm:num_requests_waiting Number of requests waiting to be processed.\n"
            "# TYPE vllm:num_requests_waiting gauge\n"
            f"vllm:num_requests_waiting{{{model}}} {float(self.waiting)}\n"
            "# HELP vllm:kv_cache_usage_perc KV-cache usage. 1 means 100 percent usage.\n"
            "# TYPE vllm:kv_cache_usage_perc gauge\n"
            f"vllm:kv_cache_usage_perc{{{model}}} {usage}\n"
            "# HELP vllm:prompt_tokens_total Number of prefill tokens processed.\n"
            "# TYPE vllm:prompt_tokens_total counter\n"
            f"vllm:prompt_tokens_total{{{model}}} 1234.0\n"
        )
        return web.Response(text=page, content_type="text/plain", charset="utf-8")

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await self._record(request)
        early = await self._common(body)
        if early is not None:
            return early
        model = str(body.get("model"))
        if model.startswith("recording:"):
            return await self._replay(request, model.split(":", 1)[1])
        if model == "slow-stream":
            return await self._slow_stream(request)
        text = "echo: " + _last_user_text(body)
        n = int(body.get("n") or 1)
        tools = body.get("tools")
        last = (body.get("messages") or [{}])[-1]
        if model == "agent" and tools and last.get("role") == "tool":  # the tool answered
            tools, text = None, f"the tool said: {last.get('content')}"
        if body.get("stream"):
            return await self._stream_chat(request, body, text, n, bool(tools))
        choices = []
        for index in range(n):
            message: dict[str, Any] = {"role": "assistant", "content": text, "refusal": None}
            finish = "stop"
            if tools:
                name = tools[0]["function"]["name"]
                message = {
                    "role": "assistant",
                    "content": None,
                    "refusal": None,
                    "tool_calls": [
                        {
                            "id": f"call_{index}",
                            "type": "function",
                            "function": {"name": name, "arguments": '{"city": "Paris"}'},
                        }
                    ],
                }
                finish = "tool_calls"
            choices.append(
                {"index": index, "message": message, "logprobs": None, "finish_reason": finish}
            )
        prompt = _prompt_tokens(body)
        completion = len(text.split()) * n
        return web.json_response(
            {
                "id": "chatcmpl-test",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "system_fingerprint": "fp_test",
                "choices": choices,
                "usage": {
                    "prompt_tokens": prompt,
                    "completion_tokens": completion,
                    "total_tokens": prompt + completion,
                },
            },
            dumps=lambda v: orjson.dumps(v).decode(),
        )

    async def _stream_chat(
        self, request: web.Request, body: dict[str, Any], text: str, n: int, tools: bool
    ) -> web.StreamResponse:
        response = await _open_sse(request)
        model = str(body.get("model"))
        base = {
            "id": "chatcmpl-test",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model,
            "system_fingerprint": "fp_test",
        }

        async def send(choices: list[dict[str, Any]], **extra: Any) -> None:
            await response.write(
                b"data: " + orjson.dumps({**base, "choices": choices, **extra}) + b"\n\n"
            )

        for index in range(n):
            await send(
                [
                    {
                        "index": index,
                        "delta": {"role": "assistant", "content": ""},
                        "logprobs": None,
                        "finish_reason": None,
                    }
                ]
            )
        if tools:
            name = body["tools"][0]["function"]["name"]
            for index in range(n):
                await send(
                    [
                        {
                            "index": index,
                            "delta": {
                                "tool_calls": [
                                    {
                                        "index": 0,
                                        "id": f"call_{index}",
                                        "type": "function",
                                        "function": {"name": name, "arguments": ""},
                                    }
                                ]
                            },
                            "logprobs": None,
                            "finish_reason": None,
                        }
                    ]
                )
                for piece in ('{"city"', ': "Par', 'is"}'):
                    await send(
                        [
                            {
                                "index": index,
                                "delta": {
                                    "tool_calls": [{"index": 0, "function": {"arguments": piece}}]
                                },
                                "logprobs": None,
                                "finish_reason": None,
                            }
                        ]
                    )
        else:
            words = text.split(" ")
            for i, word in enumerate(words):
                piece = word if i == 0 else " " + word
                for index in range(n):
                    await send(
                        [
                            {
                                "index": index,
                                "delta": {"content": piece},
                                "logprobs": None,
                                "finish_reason": None,
                            }
                        ]
                    )
                if model == "drop-mid-stream" and i == 1:
                    assert request.transport is not None
                    request.transport.close()
                    return response
        finish = "tool_calls" if tools else "stop"
        for index in range(n):
            await send([{"index": index, "delta": {}, "logprobs": None, "finish_reason": finish}])
        options = body.get("stream_options") or {}
        if options.get("include_usage"):
            prompt = _prompt_tokens(body)
            completion = len(text.split()) * n
            await send(
                [],
                usage={
                    "prompt_tokens": prompt,
                    "completion_tokens": completion,
                    "total_tokens": prompt + completion,
                },
            )
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    async def _slow_stream(self, request: web.Request) -> web.StreamResponse:
        response = await _open_sse(request)
        chunk = {
            "id": "chatcmpl-slow",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": "slow-stream",
        }
        try:
            for i in range(100):
                delta = {
                    "index": 0,
                    "delta": {"content": f"{i} "},
                    "logprobs": None,
                    "finish_reason": None,
                }
                await response.write(
                    b"data: " + orjson.dumps({**chunk, "choices": [delta]}) + b"\n\n"
                )
                await asyncio.sleep(0.05)
        except (ConnectionResetError, asyncio.CancelledError):
            self.abandoned.append(request.headers.get("x-request-id", ""))
            raise
        await response.write(b"data: [DONE]\n\n")
        return response

    async def _replay(self, request: web.Request, prefix: str) -> web.StreamResponse:
        path = next(p for p in recording_files() if p.name.startswith(prefix))
        response = await _open_sse(request)
        for event in recording_events(path):
            await response.write(b"data: " + event + b"\n\n")
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    async def _anthropic_messages(self, request: web.Request) -> web.StreamResponse:
        return await _anthropic_messages_reply(request, await self._record(request))

    async def _completions(self, request: web.Request) -> web.StreamResponse:
        body = await self._record(request)
        early = await self._common(body)
        if early is not None:
            return early
        prompt = body.get("prompt")
        text = "echo: " + (prompt if isinstance(prompt, str) else str(prompt))
        base = {
            "id": "cmpl-test",
            "object": "text_completion",
            "created": int(time.time()),
            "model": body.get("model"),
        }
        if body.get("stream"):
            response = await _open_sse(request)
            for word in text.split(" "):
                chunk = {
                    **base,
                    "choices": [
                        {"index": 0, "text": word + " ", "logprobs": None, "finish_reason": None}
                    ],
                }
                await response.write(b"data: " + orjson.dumps(chunk) + b"\n\n")
            final = {
                **base,
                "choices": [{"index": 0, "text": "", "logprobs": None, "finish_reason": "stop"}],
            }
            await response.write(b"data: " + orjson.dumps(final) + b"\n\n")
            if (body.get("stream_options") or {}).get("include_usage"):
                usage = {
                    **base,
                    "choices": [],
                    "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7},
                }
                await response.write(b"data: " + orjson.dumps(usage) + b"\n\n")
            await response.write(b"data: [DONE]\n\n")
            await response.write_eof()
            return response
        return web.json_response(
            {
                **base,
                "choices": [{"index": 0, "text": text, "logprobs": None, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7},
            }
        )

    async def _embeddings(self, request: web.Request) -> web.StreamResponse:
        body = await self._record(request)
        early = await self._common(body)
        if early is not None:
            return early
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        data = []
        for index, _ in enumerate(inputs):
            vector = [0.25 * (index + 1), -0.5, 0.125]
            embedding: Any = vector
            if body.get("encoding_format") == "base64":
                embedding = base64.b64encode(struct.pack("<3f", *vector)).decode()
            data.append({"object": "embedding", "index": index, "embedding": embedding})
        return web.json_response(
            {
                "object": "list",
                "data": data,
                "model": body["model"],
                "usage": {"prompt_tokens": 5, "total_tokens": 5},
            }
        )


async def _anthropic_messages_reply(
    request: web.Request, body: dict[str, Any]
) -> web.StreamResponse:
    if request.headers.get("x-api-key") is None or request.headers.get("anthropic-version") is None:
        raw = (ANTHROPIC_DATA / "error_authentication.json").read_bytes()
        return web.Response(status=401, body=raw, content_type="application/json")
    if body.get("stream") is True:
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        await response.write((ANTHROPIC_DATA / "stream_text.sse").read_bytes())
        await response.write_eof()
        return response
    raw = (ANTHROPIC_DATA / "message_text.json").read_bytes()
    return web.Response(body=raw, content_type="application/json")


async def _open_sse(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"content-type": "text/event-stream; charset=utf-8"})
    await response.prepare(request)
    return response


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    kind = (
        "rate_limit_exceeded"
        if status == 429
        else ("server_error" if status >= 500 else "invalid_request_error")
    )
    return web.json_response(
        {"error": {"message": message, "type": kind, "param": None, "code": None}},
        status=status,
        headers=headers or {},
    )


def _last_user_text(body: dict[str, Any]) -> str:
    for message in reversed(body.get("messages") or []):
        if message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            return content
        if isinstance(content, list):
            return " ".join(
                p.get("text", "")
                for p in content
                if isinstance(p, dict) and p.get("type") == "text"
            )
    return ""


def _prompt_tokens(body: dict[str, Any]) -> int:
    return max(1, len(orjson.dumps(body.get("messages") or [])) // 4)
