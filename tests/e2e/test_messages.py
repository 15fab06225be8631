"""Anthropic's Messages API through the gateway, with the official ``anthropic`` SDK.

The gateway translates each Messages request onto its chat pipeline (same policy,
judging, redaction and routing) and the answer back; the upstream here is the
test's real OpenAI-compatible server.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import pytest

from tests.harness import GatewayServer
from tests.upstream_server import Upstream

WEATHER = {
    "name": "get_weather",
    "description": "The weather in a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


@pytest.fixture
def claude(gateway: GatewayServer) -> Iterator[anthropic.Anthropic]:
    # closed after the test: an unclosed client's sockets surface later as a
    # ResourceWarning in whichever test happens to collect them
    with anthropic.Anthropic(base_url=gateway.url, api_key="anything", max_retries=0) as client:
        yield client


def _user(text: str) -> list[Any]:
    return [{"role": "user", "content": text}]


def test_create_answers_a_message(claude: anthropic.Anthropic) -> None:
    message = claude.messages.create(model="echo", max_tokens=64, messages=_user("hello there"))
    assert message.type == "message" and message.role == "assistant"
    assert message.id.startswith("msg_")
    assert [block.type for block in message.content] == ["text"]
    assert message.content[0].text == "echo: hello there"  # type: ignore[union-attr]
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens > 0 and message.usage.output_tokens == 3


def test_system_blocks_and_history_reach_the_upstream(
    claude: anthropic.Anthropic, upstream: Upstream
) -> None:
    marker = uuid.uuid4().hex
    claude.messages.create(
        model="echo",
        max_tokens=32,
        system=[{"type": "text", "text": f"be brief {marker}"}],
        messages=[
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": [{"type": "text", "text": "ok"}]},
            {"role": "user", "content": [{"type": "text", "text": "second"}]},
        ],
        stop_sequences=["END"],
    )
    sent = next(b for b in reversed(list(upstream.bodies())) if marker in str(b))
    assert sent["messages"] == [
        {"role": "system", "content": f"be brief {marker}"},
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": [{"type": "text", "text": "second"}]},
    ]
    assert sent["stop"] == ["END"] and sent["max_tokens"] == 32


def test_stream_gives_anthropics_events(claude: anthropic.Anthropic) -> None:
    with claude.messages.stream(
        model="echo", max_tokens=64, messages=_user("stream me please")
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "echo: stream me please"
    assert final.content[0].text == text  # type: ignore[union-attr]
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == 4


def test_raw_event_order(gateway: GatewayServer) -> None:
    with httpx.stream(
        "POST",
        gateway.url + "/v1/messages",
        json={"model": "echo", "max_tokens": 8, "stream": True, "messages": _user("hi")},
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [line[7:] for line in response.iter_lines() if line.startswith("event: ")]
    assert events[:3] == ["message_start", "ping", "content_block_start"]
    assert set(events[3:-3]) == {"content_block_delta"}
    assert events[-3:] == ["content_block_stop", "message_delta", "message_stop"]


def test_tools_whole_and_streamed(claude: anthropic.Anthropic, upstream: Upstream) -> None:
    message = claude.messages.create(
        model="echo",
        max_tokens=64,
        tools=[WEATHER],  # type: ignore[list-item]
        tool_choice={"type": "any"},
        messages=_user("weather in Paris?"),
    )
    assert message.stop_reason == "tool_use"
    call = message.content[0]
    assert call.type == "tool_use" and call.name == "get_weather"
    assert call.input == {"city": "Paris"}
    sent = upstream.requests[-1]["body"]
    assert sent["tools"][0]["function"]["parameters"] == WEATHER["input_schema"]
    assert sent["tool_choice"] == "required"
    with claude.messages.stream(
        model="echo",
        max_tokens=64,
        tools=[WEATHER],  # type: ignore[list-item]
        messages=_user("weather in Paris?"),
    ) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "tool_use"
    assert final.content[0].input == {"city": "Paris"}  # type: ignore[union-attr]
    # the tool's result goes back as a tool message
    follow = claude.messages.create(
        model="echo",
        max_tokens=64,
        tools=[WEATHER],  # type: ignore[list-item]
        messages=[
            *_user("weather in Paris?"),
            {
                "role": "assistant",
                "content": [
                    {"type": "tool_use", "id": call.id, "name": call.name, "input": call.input}
                ],
            },
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "sunny"}],
            },
        ],
    )
    assert follow.stop_reason == "tool_use"
    sent = upstream.requests[-1]["body"]["messages"]
    assert sent[1]["tool_calls"][0]["function"] == {
        "name": "get_weather",
        "arguments": '{"city":"Paris"}',
    }
    assert sent[2] == {"role": "tool", "tool_call_id": call.id, "content": "sunny"}


def test_count_tokens(claude: anthropic.Anthropic) -> None:
    short = claude.messages.count_tokens(model="echo", messages=_user("hi"))
    long = claude.messages.count_tokens(model="echo", messages=_user("hi " * 200))
    assert 0 < short.input_tokens < long.input_tokens


def test_errors_are_anthropic_shaped(claude: anthropic.Anthropic, gateway: GatewayServer) -> None:
    with pytest.raises(anthropic.NotFoundError) as caught:
        claude.messages.create(model="no-such-model", max_tokens=8, messages=_user("hi"))
    assert caught.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
    for body in (
        {"model": "echo", "messages": _user("hi")},  # max_tokens is required
        {"model": "echo", "max_tokens": 8, "messages": [{"role": "system", "content": "x"}]},
        {"model": "echo", "max_tokens": 8, "messages": _user("x"), "tools": [{"type": "bash"}]},
    ):
        response = httpx.post(gateway.url + "/v1/messages", json=body)
        assert response.status_code == 400, body
        assert response.json()["type"] == "error"
        assert response.json()["error"]["type"] == "invalid_request_error"
    response = httpx.post(gateway.url + "/v1/messages", content=b"{not json")
    assert response.status_code == 400 and response.json()["type"] == "error"
    assert httpx.get(gateway.url + "/v1/messages").status_code == 405


def test_redaction_and_restore_under_the_same_policy(
    claude: anthropic.Anthropic, upstream: Upstream
) -> None:
    email = f"kim.{uuid.uuid4().hex[:8]}@example.com"
    message = claude.messages.create(
        model="redact-cloud", max_tokens=64, messages=_user(f"write to {email} today")
    )
    sent = upstream.requests[-1]["body"]
    assert email not in str(sent) and "[EMAIL_1]" in str(sent)
    assert message.content[0].text == f"echo: write to {email} today"  # type: ignore[union-attr]
    with claude.messages.stream(
        model="redact-cloud", max_tokens=64, messages=_user(f"write to {email} now")
    ) as stream:
        text = "".join(stream.text_stream)
    assert email not in str(upstream.requests[-1]["body"])
    assert text == f"echo: write to {email} now"


def test_explain_accepts_a_messages_body(gateway: GatewayServer) -> None:
    body = {
        "model": "auto",
        "max_tokens": 16,
        "system": "you help",
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "my ssn is 078-05-1120"}]}
        ],
    }
    for params in ({}, {"api": "messages"}):
        explained = httpx.post(gateway.url + "/gateway/explain", json=body, params=params)
        assert explained.status_code == 200, explained.text
        assert explained.json()["sensitivity"]["level"] == "restricted"
        assert "us_ssn" in explained.json()["sensitivity"]["entities"]
