"""The litellm adapter against the providers' real wire formats, through respx.

litellm is configured (by the adapter) to use httpx, so respx sees exactly the
HTTP requests litellm would send to Anthropic and Gemini.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import orjson
import pytest
import respx
from openai.types import Completion, CreateEmbeddingResponse
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from gateway.endpoints import Endpoint
from gateway.errors import (
    InvalidRequest,
    UpstreamConnectError,
    UpstreamError,
    UpstreamStatusError,
    UpstreamTimeout,
    is_retryable,
)
from gateway.targets import Target, Timeouts
from gateway.upstream.litellm_adapter import LiteLLMProvider, load_litellm, map_error
from gateway.upstream.litellm_request import (
    ALLOWED_FIELDS,
    STEERING_FIELDS,
    build_kwargs,
    model_name,
)
from gateway.upstream.litellm_wire import shape_response
from gateway.upstream.provider import UpstreamCall
from tests.upstream.conftest import (
    ANTHROPIC_KEY,
    GEMINI_KEY,
    anthropic_target,
    gemini_target,
    read_data,
)

# litellm builds some pydantic adapters lazily, on its first call, and pydantic
# warns about one of litellm's own TypedDicts; that is no fault of ours.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Item .* is using the `ReadOnly` qualifier:UserWarning"
)

ANTHROPIC_URL = "https://api.anthropic.com/v1/messages"
GEMINI_BASE = "https://generativelanguage.googleapis.com/v1beta/models/gemini-1.5-flash"
SSE = {"content-type": "text/event-stream"}

MESSAGES = [
    {"role": "system", "content": "You answer in one sentence."},
    {"role": "user", "content": "What is the capital of France?"},
]


def chat(target: Target, **body: Any) -> UpstreamCall:
    full = {"model": target.model, "messages": MESSAGES, **body}
    return UpstreamCall(Endpoint.CHAT, target, full, request_id="req-1")


async def collect(stream: AsyncIterator[bytes]) -> list[dict[str, Any]]:
    return [orjson.loads(payload) async for batch in stream for payload in batch]


@pytest.fixture
async def provider() -> AsyncIterator[LiteLLMProvider]:
    instance = LiteLLMProvider()
    yield instance
    await instance.aclose()


@pytest.fixture
def upstream() -> Iterator[respx.MockRouter]:
    """The providers' HTTP endpoints; every route a test declares must be called."""
    with respx.mock(assert_all_called=True) as router:
        yield router


def sent_json(route: respx.Route) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(route.calls.last.request.content)
    return body


# --- import cost and request building --------------------------------------


def test_importing_the_adapter_does_not_import_litellm() -> None:
    code = (
        "import sys, time; t = time.perf_counter()\n"
        "import gateway.upstream.litellm_adapter as a; a.LiteLLMProvider()\n"
        "assert 'litellm' not in sys.modules and 'httpx' not in sys.modules\n"
        "print(time.perf_counter() - t)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert float(out.stdout) < 1.0


def test_no_steering_field_is_ever_allowed() -> None:
    for endpoint, allowed in ALLOWED_FIELDS.items():
        assert not allowed & STEERING_FIELDS, endpoint
        assert not {name for name in allowed if name.startswith("litellm")}


def test_build_kwargs_keeps_openai_fields_and_drops_steering_ones() -> None:
    target = anthropic_target(
        base_url="https://anthropic.internal.test", headers=(("x-team", "blue"),)
    )
    hostile = {name: "https://evil.test" for name in STEERING_FIELDS}
    body = {
        **hostile,
        "messages": MESSAGES,
        "temperature": 0.2,
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}],
        "stream_options": {"include_usage": True},
        "litellm_logging_obj": "x",
        "vendor_extension": 1,
    }
    call = UpstreamCall(Endpoint.CHAT, target, body, request_id="r")

    kwargs = build_kwargs(call, stream=False)

    assert kwargs == {
        "messages": MESSAGES,
        "temperature": 0.2,
        "tools": body["tools"],
        "_skip_mcp_handler": True,
        "model": "anthropic/claude-3-5-sonnet-20240620",
        "timeout": 10.0,
        "num_retries": 0,
        "max_retries": 0,
        "drop_params": True,
        "api_key": ANTHROPIC_KEY,
        "api_base": "https://anthropic.internal.test",
        "extra_headers": {"x-team": "blue"},
    }
    streamed = build_kwargs(call, stream=True)
    assert streamed["stream"] is True
    assert streamed["stream_options"] == {"include_usage": True}


def test_model_name_adds_the_provider_prefix_once() -> None:
    assert model_name(anthropic_target()) == "anthropic/claude-3-5-sonnet-20240620"
    assert model_name(anthropic_target(model="anthropic/claude-3-5")) == "anthropic/claude-3-5"
    assert model_name(anthropic_target(litellm_provider=None, model="bedrock/x")) == "bedrock/x"
    openrouter = anthropic_target(litellm_provider="openrouter", model="anthropic/claude")
    assert model_name(openrouter) == "openrouter/anthropic/claude"


# --- Anthropic ----------------------------------------------------------------


async def test_anthropic_chat_is_translated_both_ways(
    provider: LiteLLMProvider, upstream: respx.MockRouter
) -> None:
    route = upstream.post(ANTHROPIC_URL).respond(
        200, content=read_data("anthropic/message_text.json")
    )
    call = chat(
        anthropic_target(),
        temperature=0.3,
        max_tokens=256,
        api_base="https://evil.test/v1",
        base_url="https://evil.test/v1",
        api_key="sk-ant-stolen",
        extra_headers={"x-api-key": "sk-ant-stolen"},
        mock_response="not from upstream",
        metadata={"litellm_debug": True},
    )

    reply = await provider.complete(call)

    request = route.calls.last.request
    assert str(request.url) == ANTHROPIC_URL
    assert request.headers["x-api-key"] == ANTHROPIC_KEY
    assert request.headers["anthropic-version"] == "2023-06-01"
    sent = sent_json(route)
    assert sent["model"] == "claude-3-5-sonnet-20240620"
    assert sent["max_tokens"] == 256
    assert sent["temperature"] == 0.3
    assert sent["system"] == [{"type": "text", "text": "You answer in one sentence."}]
    assert [m["role"] for m in sent["messages"]] == ["user"]
    assert "stream" not in sent or sent["stream"] is False

    completion = ChatCompletion.model_validate(reply.data)
    assert completion.object == "chat.completion"
    assert completion.model == "claude-3-5-sonnet-20240620"
    assert completion.choices[0].message.content == "Paris is the capital of France."
    assert completion.choices[0].finish_reason == "stop"
    assert reply.usage is not None
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (21, 9)
    assert reply.data["usage"]["total_tokens"] == 30
    assert set(reply.data) == {"id", "object", "created", "model", "choices", "usage"}
    assert orjson.loads(reply.to_bytes()) == reply.data


async def test_the_attempts_trace_context_reaches_the_provider(
    provider: LiteLLMProvider, upstream: respx.MockRouter
) -> None:
    route = upstream.post(ANTHROPIC_URL).respond(
        200, content=read_data("anthropic/message_text.json")
    )
    traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    call = dataclasses.replace(chat(anthropic_target()), traceparent=traceparent)
    await provider.complete(call)
    assert route.calls.last.request.headers["traceparent"] == traceparent


async def test_anthropic_gets_a_default_max_tokens(
    provider: LiteLLMProvider, upstream: respx.MockRouter
) -> None:
    route = upstream.post(ANTHROPIC_URL).respond(
        200, content=read_data("anthropic/message_text.json")
    )
    await provider.complete(chat(anthropic_target()))
    assert isinstance(sent_json(route)["max_tokens"], int)


async def test_target_base_url_and_headers_are_used(
    provider: LiteLLMProvider, upstream: respx.MockRouter
) -> None:
    route = upstream.post("https://llm-proxy.test/v1/messages").respond(
        200, content=read_data("anthropic/message_text.json")
    )
    target = anthropic_target(base_url="https://llm-proxy.test", headers=(("x-team", "blue"),))
    await provider.complete(chat(target, api_base="https://evil.test"))
    assert route.calls.last.request.headers["x-team"] == "blue"


async def test_anthropic_tool_use_becomes_tool_calls(
    provider: LiteLLMProvider, upstream: respx.MockRouter
) -> None:
    route = upstream.post(ANTHROPIC_URL).respond(
        200, content=read_data("anthropic/message_tool_use.json")
    )
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather for a place",
                "parameters": {
                    "type": "object",
                    "properties": {"location": {"type": "string"}, "unit": {"type": "string"}},
                    "required": ["location"],
                },
            },
        }
    ]
    reply = await provider.complete(chat(anthropic_target(), tools=tools, tool_choice="auto"))

    sent = sent_json(route)
    assert sent["tools"][0]["name"] == "get_weather"
    assert sent["tools"][0]["input_schema"]["required"] == ["location"]
    completion = ChatCompletion.model_validate(reply.data)
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls is not None
    call = choice.message.tool_calls[0]
    assert call.id == "toolu_01A09q90qw90lq917835lq9"
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"location": "Paris, FR", "unit": "celsius"}


async def test_anthropic_stream_yields_openai_chunks(
    provider: LiteLLMProvider, upstream: respx.MockRouter
) -> None:
    route = upstream.post(ANTHROPIC_URL).respond(
        200, content=read_data("anthropic/stream_text.sse"), headers=SSE
    )
    chunks = await collect(provider.stream(chat(anthropic_target())))

    assert sent_json(route)["stream"] is True
    parsed = [ChatCompletionChunk.model_validate(c) for c in chunks]
    assert len({c.id for c in parsed}) == 1
    assert all(c.object == "chat.completion.chunk" for c in parsed)
    text = "".join(c.choices[0].delta.content or "" for c in parsed if c.choices)
    assert text == "Hello, world!"
    assert parsed[0].choices[0].delta.role == "assistant"
    assert parsed[-1].choices[0].finish_reason == "stop"
    assert all("usage" not in c for c in chunks)


async def test_anthropic_stream_usage_chunk_when_asked(
    provider: LiteLLMProvider, upstream: respx.MockRouter
) -> None:
    upstream.post(ANTHROPIC_URL).respond(
        200, content=read_data("anthropic/stream_text.sse"), headers=SSE
    )
    call = chat(anthropic_target(), stream=True, stream_options={"include_usage": True})
    chunks = await collect(provider.stream(call))

    last = ChatCompletionChunk.model_validate(chunks[-1])
    assert last.choices == []
    assert last.usage is not None
    assert (last.usage.prompt_tokens, last.usage.completion_tokens) == (25, 12)
    assert last.usage.total_tokens == 37
    assert [c for c in chunks[:-1] if "usage" in c] == []
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"


async def test_anthropic_stream_tool_calls_arrive_as_deltas(
    provider: LiteLLMProvider, upstream: respx.MockRouter
) -> None:
    upstream.post(ANTHROPIC_URL).respond(
        200, content=read_data("anthropic/stream_tool_use.sse"), headers=SSE
    )
    chunks = await collect(provider.stream(chat(anthropic_target())))

    calls: dict[int, dict[str, str]] = {}
    text = ""
    finish = None
    for chunk in map(ChatCompletionChunk.model_validate, chunks):
        delta = chunk.choices[0].delta
        text += delta.content or ""
        finish = chunk.choices[0].finish_reason or finish
        for tool in delta.tool_calls or ():
            entry = calls.setdefault(tool.index, {"id": "", "name": "", "arguments": ""})
            entry["id"] += tool.id or ""
            if tool.function is not None:
                entry["name"] += tool.function.name or ""
                entry["arguments"] += tool.function.arguments or ""
    assert text == "Let me check."
    assert finish == "tool_calls"
    assert list(calls) == [0]
    assert calls[0]["id"] == "toolu_01T1x1fJ34qAmk2tNTrN7Up6"
    assert calls[0]["name"] == "get_weather"
    assert json.loads(calls[0]["arguments"]) == {"location": "Paris, FR", "unit": "celsius"}


async def test_stream_http_error_is_raised_by_the_first_anext(
    provider: LiteLLMProvider, upstream: respx.MockRouter
) -> None:
    upstream.post(ANTHROPIC_URL).respond(529, content=read_data("anthropic/error_overloaded.json"))
    stream = provider.stream(chat(anthropic_target()))
    with pytest.raises(UpstreamStatusError) as caught:
        await anext(stream)
    assert caught.value.upstream_status == 529
    assert caught.value.http_status == 502
    assert is_retryable(caught.value)
    assert caught.value.message == "Overloaded"


async def test_stream_error_event_before_content_is_raised_first(
    provider: LiteLLMProvider, upstream: respx.MockRouter
) -> None:
    upstream.post(ANTHROPIC_URL).respond(
        200, content=read_data("anthropic/stream_error_overloaded.sse"), headers=SSE
    )
    stream = provider.stream(chat(anthropic_target()))
    with pytest.raises(UpstreamError) as caught:
        await anext(stream)
    assert is_retryable(caught.value)


async def test_stream_error_after_content_raises_a_gateway_error(
    provider: LiteLLMProvider, upstream: respx.MockRouter
) -> None:
    upstream.post(ANTHROPIC_URL).respond(
        200, content=read_data("anthropic/stream_error_midway.sse"), headers=SSE
    )
    stream = provider.stream(chat(anthropic_target()))
    first = orjson.loads((await anext(stream))[0])
    assert first["choices"][0]["delta"]["content"] == "Partial"
    with pytest.raises(UpstreamError):
        async for _ in stream:
            pass


async def test_closing_a_stream_early_is_clean(
    provider: LiteLLMProvider, upstream: respx.MockRouter
) -> None:
    upstream.post(ANTHROPIC_URL).respond(
        200, content=read_data("anthropic/stream_text.sse"), headers=SSE
    )
    stream = provider.stream(chat(anthropic_target()))
    assert isinstance(stream, AsyncIterator)
    await anext(stream)
    await stream.aclose()  # type: ignore[attr-defined]


ANTHROPIC_ERRORS = [
    # fixture, status, headers, error class, client status, retryable, code
    ("error_overloaded", 529, {}, UpstreamStatusError, 502, True, None),
    ("error_api", 500, {}, UpstreamStatusError, 502, True, None),
    ("error_rate_limit", 429, {"retry-after": "7"}, UpstreamStatusError, 429, True, None),
    ("error_invalid_request", 400, {}, UpstreamStatusError, 400, False, None),
    (
        "error_prompt_too_long",
        400,
        {},
        UpstreamStatusError,
        400,
        False,
        "context_length_exceeded",
    ),
    # the gateway's own key was refused: not the client's fault, try the next target
    ("error_authentication", 401, {}, UpstreamStatusError, 502, True, None),
    ("error_not_found", 404, {}, UpstreamStatusError, 404, False, None),
]


@pytest.mark.parametrize(
    ("fixture", "status", "headers", "error", "client_status", "retryable", "code"),
    ANTHROPIC_ERRORS,
)
async def test_anthropic_error_statuses_map_to_gateway_errors(
    provider: LiteLLMProvider,
    fixture: str,
    status: int,
    headers: dict[str, str],
    error: type[UpstreamError],
    client_status: int,
    retryable: bool,
    code: str | None,
) -> None:
    raw = read_data(f"anthropic/{fixture}.json")
    with respx.mock(assert_all_called=True) as mock:
        mock.post(ANTHROPIC_URL).respond(status, content=raw, headers=headers)
        with pytest.raises(error) as caught:
            await provider.complete(chat(anthropic_target()))
    exc = caught.value
    assert exc.http_status == client_status
    assert is_retryable(exc) is retryable
    assert exc.message == json.loads(raw)["error"]["message"]
    if code is not None:
        assert exc.code == code
    if status == 429:
        assert isinstance(exc, UpstreamStatusError)
        assert exc.retry_after_s == 7.0
        assert exc.headers["retry-after"] == "7"
        assert exc.body()["error"]["type"] == "rate_limit_exceeded"


async def test_api_key_never_reaches_the_client_message(
    provider: LiteLLMProvider, upstream: respx.MockRouter
) -> None:
    body = {
        "type": "error",
        "error": {"type": "authentication_error", "message": f"bad key {ANTHROPIC_KEY}"},
    }
    upstream.post(ANTHROPIC_URL).respond(401, json=body)
    with pytest.raises(UpstreamStatusError) as caught:
        await provider.complete(chat(anthropic_target()))
    rendered = json.dumps(caught.value.body())
    assert ANTHROPIC_KEY not in rendered
    assert "[redacted]" in rendered


@pytest.mark.parametrize(
    ("side_effect", "error"),
    [
        (httpx.ConnectError("connection refused"), UpstreamConnectError),
        (httpx.ReadTimeout("read timed out"), UpstreamTimeout),
        (httpx.ConnectTimeout("connect timed out"), UpstreamTimeout),
    ],
)
async def test_transport_failures_map_to_connect_and_timeout(
    provider: LiteLLMProvider, side_effect: Exception, error: type[UpstreamError]
) -> None:
    with respx.mock(assert_all_called=True) as mock:
        mock.post(ANTHROPIC_URL).mock(side_effect=side_effect)
        with pytest.raises(error) as caught:
            await provider.complete(chat(anthropic_target()))
        with pytest.raises(error):
            await anext(provider.stream(chat(anthropic_target())))
    assert is_retryable(caught.value)


async def test_total_timeout_bounds_a_slow_upstream(provider: LiteLLMProvider) -> None:
    calls = 0

    async def slow_after_first(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls > 1:
            await asyncio.sleep(5)
        return httpx.Response(200, content=read_data("anthropic/message_text.json"))

    target = anthropic_target(timeouts=Timeouts(connect=1.0, first_byte=5.0, total=0.3))
    with respx.mock(assert_all_called=True) as mock:
        mock.post(ANTHROPIC_URL).mock(side_effect=slow_after_first)
        # the first call pays litellm's one-off lazy set-up for the provider
        await provider.complete(chat(anthropic_target()))
        started = time.perf_counter()
        with pytest.raises(UpstreamTimeout):
            await provider.complete(chat(target))
        with pytest.raises(UpstreamTimeout):
            await anext(provider.stream(chat(target)))
    assert calls == 3
    assert time.perf_counter() - started < 2.0


async def test_anthropic_text_completion(
    provider: LiteLLMProvider, upstream: respx.MockRouter
) -> None:
    route = upstream.post(ANTHROPIC_URL).respond(
        200, content=read_data("anthropic/message_text.json")
    )
    body = {"model": "claude-3-5-sonnet-20240620", "prompt": "Capital of France?", "max_tokens": 20}
    reply = await provider.complete(
        UpstreamCall(Endpoint.COMPLETIONS, anthropic_target(), body, request_id="r")
    )
    assert sent_json(route)["messages"][0]["role"] == "user"
    completion = Completion.model_validate(reply.data)
    assert completion.object == "text_completion"
    assert completion.choices[0].text == "Paris is the capital of France."
    assert reply.usage is not None and reply.usage.prompt_tokens == 21


async def test_anthropic_text_completion_stream(
    provider: LiteLLMProvider, upstream: respx.MockRouter
) -> None:
    upstream.post(ANTHROPIC_URL).respond(
        200, content=read_data("anthropic/stream_text.sse"), headers=SSE
    )
    body = {
        "model": "claude-3-5-sonnet-20240620",
        "prompt": "Say hello",
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    call = UpstreamCall(Endpoint.COMPLETIONS, anthropic_target(), body, request_id="r")
    stream = provider.stream(call)
    first = orjson.loads((await anext(stream))[0])
    rest = await collect(stream)
    chunks = [first, *rest]

    # OpenAI's text-completion chunks carry finish_reason null until the last
    # one, which the SDK's (non-streaming) Completion type cannot validate
    assert {c["object"] for c in chunks} == {"text_completion"}
    assert len({c["id"] for c in chunks}) == 1
    assert "".join(c["choices"][0]["text"] for c in chunks if c["choices"]) == "Hello, world!"
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    final = Completion.model_validate(chunks[-1])
    assert final.choices == []
    assert final.usage is not None and final.usage.completion_tokens == 12


async def test_closing_a_text_completion_stream_early_is_clean(
    provider: LiteLLMProvider, upstream: respx.MockRouter
) -> None:
    upstream.post(ANTHROPIC_URL).respond(
        200, content=read_data("anthropic/stream_text.sse"), headers=SSE
    )
    body = {"model": "claude-3-5-sonnet-20240620", "prompt": "Say hello", "stream": True}
    stream = provider.stream(UpstreamCall(Endpoint.COMPLETIONS, anthropic_target(), body, "r"))
    assert orjson.loads((await anext(stream))[0])["choices"][0]["text"] == "Hello"
    await stream.aclose()  # type: ignore[attr-defined]


async def test_embeddings_cannot_be_streamed(provider: LiteLLMProvider) -> None:
    call = UpstreamCall(Endpoint.EMBEDDINGS, gemini_target(), {"input": "x"}, request_id="r")
    with pytest.raises(InvalidRequest):
        await anext(provider.stream(call))


# --- Gemini -------------------------------------------------------------------


def gemini_key_sent(request: httpx.Request) -> str | None:
    return request.headers.get("x-goog-api-key") or request.url.params.get("key")


async def test_gemini_chat_is_translated_both_ways(
    provider: LiteLLMProvider, upstream: respx.MockRouter
) -> None:
    route = upstream.post(url__startswith=f"{GEMINI_BASE}:generateContent").respond(
        200, content=read_data("gemini/generate_text.json")
    )
    reply = await provider.complete(chat(gemini_target(), temperature=0.1, api_key="stolen"))

    request = route.calls.last.request
    assert gemini_key_sent(request) == GEMINI_KEY
    sent = sent_json(route)
    texts = [part["text"] for content in sent["contents"] for part in content["parts"]]
    system = sent.get("system_instruction", {}).get("parts", [])
    assert "What is the capital of France?" in texts
    assert "You answer in one sentence." in texts + [part["text"] for part in system]
    assert sent["generationConfig"]["temperature"] == 0.1
    completion = ChatCompletion.model_validate(reply.data)
    assert completion.choices[0].message.content == "Paris is the capital of France."
    assert completion.choices[0].finish_reason == "stop"
    assert reply.usage is not None
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (8, 7)
    assert GEMINI_KEY not in reply.to_bytes().decode()


async def test_gemini_function_call_becomes_tool_calls(
    provider: LiteLLMProvider, upstream: respx.MockRouter
) -> None:
    upstream.post(url__startswith=f"{GEMINI_BASE}:generateContent").respond(
        200, content=read_data("gemini/generate_function_call.json")
    )
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {}}}]
    reply = await provider.complete(chat(gemini_target(), tools=tools))
    message = ChatCompletion.model_validate(reply.data).choices[0].message
    assert message.tool_calls is not None
    assert message.tool_calls[0].function.name == "get_weather"
    assert json.loads(message.tool_calls[0].function.arguments)["location"] == "Paris, FR"


async def test_gemini_stream_keeps_one_id_and_reports_usage(
    provider: LiteLLMProvider, upstream: respx.MockRouter
) -> None:
    route = upstream.post(url__startswith=f"{GEMINI_BASE}:streamGenerateContent").respond(
        200, content=read_data("gemini/stream_text.sse"), headers=SSE
    )
    call = chat(gemini_target(), stream=True, stream_options={"include_usage": True})
    chunks = await collect(provider.stream(call))

    assert route.calls.last.request.url.params["alt"] == "sse"
    parsed = [ChatCompletionChunk.model_validate(c) for c in chunks]
    assert len({c.id for c in parsed}) == 1
    assert "".join(c.choices[0].delta.content or "" for c in parsed if c.choices) == (
        "Hello, world!"
    )
    assert parsed[-1].choices == []
    assert parsed[-1].usage is not None
    assert (parsed[-1].usage.prompt_tokens, parsed[-1].usage.completion_tokens) == (6, 4)
    assert all(set(c) <= {"id", "object", "created", "model", "choices", "usage"} for c in chunks)


@pytest.mark.parametrize(
    ("fixture", "status", "client_status", "retryable"),
    [
        ("error_resource_exhausted", 429, 429, True),
        ("error_unavailable", 503, 502, True),
        ("error_invalid_argument", 400, 400, False),
        ("error_api_key_invalid", 400, 502, True),
    ],
)
async def test_gemini_errors_map_to_gateway_errors(
    provider: LiteLLMProvider, fixture: str, status: int, client_status: int, retryable: bool
) -> None:
    raw = read_data(f"gemini/{fixture}.json")
    with respx.mock(assert_all_called=True) as mock:
        mock.post(url__startswith=GEMINI_BASE).respond(status, content=raw)
        with pytest.raises(UpstreamStatusError) as caught:
            await provider.complete(chat(gemini_target()))
    assert caught.value.http_status == client_status
    assert is_retryable(caught.value) is retryable
    assert caught.value.message == json.loads(raw)["error"]["message"]
    assert GEMINI_KEY not in caught.value.message


async def test_gemini_embeddings(provider: LiteLLMProvider, upstream: respx.MockRouter) -> None:
    route = upstream.post(url__regex=r".*/models/text-embedding-004:batchEmbedContents.*").respond(
        200, json={"embeddings": [{"values": [0.25, -0.5, 0.125]}, {"values": [1.0, 0.0, 0.5]}]}
    )
    target = gemini_target(model="text-embedding-004")
    body = {"model": "text-embedding-004", "input": ["a", "b"], "api_base": "https://evil.test"}
    reply = await provider.complete(UpstreamCall(Endpoint.EMBEDDINGS, target, body, "r"))

    assert gemini_key_sent(route.calls.last.request) == GEMINI_KEY
    embeddings = CreateEmbeddingResponse.model_validate(reply.data)
    assert [e.embedding for e in embeddings.data] == [[0.25, -0.5, 0.125], [1.0, 0.0, 0.5]]
    assert [e.index for e in embeddings.data] == [0, 1]


# --- error mapping by class ---------------------------------------------------


def test_mid_stream_fallback_wrapper_maps_to_what_it_wraps() -> None:
    litellm = load_litellm()
    limited = litellm.exceptions.RateLimitError(
        "slow down", llm_provider="anthropic", model="claude"
    )
    wrapped = litellm.exceptions.MidStreamFallbackError(
        "stream failed", model="claude", llm_provider="anthropic", original_exception=limited
    )
    mapped = map_error(litellm, wrapped, anthropic_target())
    assert isinstance(mapped, UpstreamStatusError)
    assert mapped.upstream_status == 429


def test_litellm_timeout_and_connection_errors_map_by_class() -> None:
    litellm = load_litellm()
    target = anthropic_target()
    timeout = litellm.exceptions.Timeout("took too long", model="claude", llm_provider="anthropic")
    assert isinstance(map_error(litellm, timeout, target), UpstreamTimeout)
    broken = litellm.exceptions.APIConnectionError(
        "broken", llm_provider="anthropic", model="claude"
    )
    assert isinstance(map_error(litellm, broken, target), UpstreamConnectError)
    unavailable = litellm.exceptions.ServiceUnavailableError(
        "busy", llm_provider="anthropic", model="c"
    )
    mapped = map_error(litellm, unavailable, target)
    assert isinstance(mapped, UpstreamStatusError) and mapped.upstream_status == 503


# --- overhead -----------------------------------------------------------------


async def test_adapter_overhead_per_call_is_bounded(
    provider: LiteLLMProvider, upstream: respx.MockRouter
) -> None:
    """Regression canary, not a benchmark. litellm itself spends tens of ms of
    CPU per call here (cost lookup, logging payload); the adapter's own share,
    ``model_dump`` plus shaping, must stay small."""
    upstream.post(ANTHROPIC_URL).respond(200, content=read_data("anthropic/message_text.json"))
    call = chat(anthropic_target())
    await provider.complete(call)
    calls = []
    for _ in range(10):
        started = time.perf_counter()
        await provider.complete(call)
        calls.append(time.perf_counter() - started)
    assert sorted(calls)[len(calls) // 2] < 0.5

    response = await load_litellm().acompletion(**build_kwargs(call, stream=False))
    shaping = []
    for _ in range(50):
        started = time.perf_counter()
        shape_response(Endpoint.CHAT, response.model_dump())
        shaping.append(time.perf_counter() - started)
    assert sorted(shaping)[len(shaping) // 2] < 0.002
