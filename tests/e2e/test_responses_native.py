"""Responses forwarded natively to targets that speak it (``responses: native``),
with the official ``openai`` SDK in strict mode against the test upstream's real
``/v1/responses`` (OpenAI's wire format, :mod:`tests.responses_upstream`).

Checked: the body sent is rebuilt from the judged request (unknown fields
dropped, placeholders instead of redacted values) and the native answer, whole
or streamed, comes back with the gateway's ids and restored values; fallbacks
between native and translated targets; spend from the Responses usage (cached
and reasoning tokens at their own prices); the provider's own id on a follow-up
to the same target, the whole conversation to another one.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import openai
import pytest

from tests.harness import GatewayServer
from tests.upstream_server import Upstream

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


def _native_requests(upstream: Upstream, marker: str) -> list[dict[str, Any]]:
    return [
        r for r in upstream.requests if r["path"] == "/v1/responses" and marker in str(r["body"])
    ]


def test_create_is_forwarded_and_answered_natively(
    client: openai.OpenAI, upstream: Upstream
) -> None:
    marker = uuid.uuid4().hex
    raw = client.responses.with_raw_response.create(
        model="native",
        instructions="be brief",
        input=[{"role": "user", "content": [{"type": "input_text", "text": f"hi {marker}"}]}],
        max_output_tokens=40,
        metadata={"ticket": "T-1"},
        extra_body={"unknown_field": "never judged, never sent"},
    )
    response = raw.parse()
    assert raw.headers["x-gateway-target"] == "native"
    assert response.output_text == f"echo: hi {marker}"
    (sent,) = _native_requests(upstream, marker)
    body = sent["body"]
    assert body["model"] == "echo" and body["instructions"] == "be brief"
    assert body["input"] == [
        {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": f"hi {marker}"}],
        }
    ]
    assert body["max_output_tokens"] == 40 and body["store"] is True
    assert "unknown_field" not in body and "metadata" not in body
    # the gateway's id, not the provider's
    assert response.id.startswith("resp_") and response.id not in upstream.responses_store
    assert client.responses.retrieve(response.id).output_text == response.output_text


def test_stream_is_relayed_natively(client: openai.OpenAI, upstream: Upstream) -> None:
    marker = uuid.uuid4().hex
    with client.responses.stream(model="native", input=f"stream {marker} now") as stream:
        events = list(stream)
        final = stream.get_final_response()
    kinds = [event.type for event in events]
    assert kinds[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert kinds.count("response.output_text.delta") == 4
    assert kinds[-1] == "response.completed"
    assert [event.sequence_number for event in events] == list(range(len(events)))
    assert final.output_text == f"echo: stream {marker} now"
    assert {e.response.id for e in events if hasattr(e, "response")} == {final.id}
    assert _native_requests(upstream, marker)[0]["body"]["stream"] is True
    assert client.responses.retrieve(final.id).output_text == final.output_text


def test_function_calls_natively_whole_and_streamed(client: openai.OpenAI) -> None:
    response = client.responses.create(model="native", input="weather?", tools=[WEATHER])
    call = response.output[0]
    assert call.type == "function_call" and call.arguments == '{"city": "Paris"}'
    with client.responses.stream(model="native", input="weather?", tools=[WEATHER]) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert kinds.count("response.function_call_arguments.delta") == 3
    assert final.output[0].type == "function_call"
    after = client.responses.create(
        model="native",
        input=[
            {"role": "user", "content": "weather?"},
            {
                "type": "function_call",
                "call_id": call.call_id,
                "name": call.name,
                "arguments": call.arguments,
            },
            {"type": "function_call_output", "call_id": call.call_id, "output": "sunny"},
        ],
        tools=[WEATHER],
    )
    assert after.output_text == "the tool said: sunny"


def test_a_native_target_failing_falls_back_translated_and_back(
    client: openai.OpenAI, upstream: Upstream
) -> None:
    marker = uuid.uuid4().hex
    raw = client.responses.with_raw_response.create(model="native-then-chat", input=marker)
    assert raw.headers["x-gateway-target"] == "echo"
    assert raw.parse().output_text == f"echo: {marker}"
    paths = [r["path"] for r in upstream.requests if marker in str(r["body"])]
    assert paths == ["/v1/responses", "/v1/chat/completions"]
    marker = uuid.uuid4().hex
    with client.responses.stream(model="chat-then-native", input=marker) as stream:
        final = stream.get_final_response()
    assert final.output_text == f"echo: {marker}"
    paths = [r["path"] for r in upstream.requests if marker in str(r["body"])]
    assert paths == ["/v1/chat/completions", "/v1/responses"]


def test_a_native_stream_dropped_mid_way_ends_with_an_error_event(gateway: GatewayServer) -> None:
    with httpx.stream(
        "POST",
        gateway.url + "/v1/responses",
        json={"model": "native-drop", "input": "one two three four", "stream": True},
    ) as response:
        text = response.read().decode()
    assert response.status_code == 200
    assert "event: response.output_text.delta" in text
    assert text.rstrip().split("\n\n")[-1].startswith("event: error\ndata: ")
    assert "[DONE]" not in text


def _metric(gateway: GatewayServer, prefix: str) -> float:
    text = httpx.get(gateway.url + "/metrics").text
    return sum(
        float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(prefix)
    )


def test_spend_comes_from_the_responses_usage(
    client: openai.OpenAI, gateway: GatewayServer
) -> None:
    tokens = 'gateway_tokens_total{direction="completion",kind="open",target="native-priced"'
    requests = 'gateway_requests_total{alias="native-priced",cache="bypass",endpoint="responses"'
    before = _metric(gateway, tokens), _metric(gateway, requests)
    for stream in (False, True):
        if stream:
            with client.responses.with_streaming_response.create(
                model="native-priced", input="price me", stream=True
            ) as raw:
                headers = raw.headers
                list(raw.iter_lines())
            continue
        raw = client.responses.with_raw_response.create(model="native-priced", input="price me")
        usage = raw.parse().usage
        assert usage is not None
        cached = usage.input_tokens_details.cached_tokens
        reasoning = usage.output_tokens_details.reasoning_tokens
        assert cached > 0 and reasoning == 1
        expected = (
            (usage.input_tokens - cached) * 10
            + cached * 1
            + (usage.output_tokens - reasoning) * 20
            + reasoning * 40
        ) / 1e6
        assert float(raw.headers["x-gateway-cost-usd"]) == pytest.approx(expected, rel=1e-3)
    assert headers["x-gateway-target"] == "native-priced"
    # metrics as for chat: each answer's output tokens, each request once
    after = _metric(gateway, tokens), _metric(gateway, requests)
    assert after[0] - before[0] == 2 * usage.output_tokens and after[1] - before[1] == 2


def test_redaction_before_a_native_target_and_restore_after(
    client: openai.OpenAI, upstream: Upstream
) -> None:
    """The shipped-style redact rule to a proprietary (native by default) target:
    the upstream gets placeholders in every text, the client its own values back,
    whole and streamed (placeholders split across deltas)."""
    email = f"ada.{uuid.uuid4().hex[:8]}@example.com"
    body: dict[str, Any] = {
        "model": "redact-cloud",
        # (no value at the end of a text: the redactor also takes text glued
        # to a value across neighbouring strings)
        "instructions": f"reply to {email} politely",
        "input": [
            {"role": "user", "content": [{"type": "input_text", "text": f"mail {email} please"}]}
        ],
        "tools": [{**WEATHER, "description": f"ask {email} first"}],
        "tool_choice": "none",
    }
    whole = client.responses.create(**body)
    assert whole.output_text == f"echo: mail {email} please"
    with client.responses.stream(**body) as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert "".join(deltas) == f"echo: mail {email} please"
    assert final.output_text == f"echo: mail {email} please"
    sent = [r for r in upstream.requests[-2:] if r["path"] == "/v1/responses"]
    assert len(sent) == 2
    for request in sent:
        assert email not in str(request["raw"])
        assert "[EMAIL_1]" in request["body"]["instructions"]
        assert "[EMAIL_1]" in request["body"]["tools"][0]["description"]
