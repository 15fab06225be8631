"""A Messages request reaching an Anthropic target keeps what only Anthropic
understands (``cache_control``, ``top_k``, the ``anthropic-*`` headers), on
Anthropic's real wire format (respx on litellm's HTTP call); every other target
gets the body without them."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import respx
from hypothesis import given
from hypothesis import strategies as st

from gateway.api import messages
from gateway.endpoints import Endpoint
from gateway.errors import InvalidRequest
from gateway.judging.forwarded import forwarded_headers
from gateway.levels import Level
from gateway.targets import Kind, ProviderType, Target
from gateway.upstream.dialect import for_target
from gateway.upstream.litellm_adapter import LiteLLMProvider
from gateway.upstream.provider import UpstreamCall
from tests.upstream.conftest import anthropic_target, read_data

ANTHROPIC_URL = "https://api.anthropic.com/v1/messages"
EPHEMERAL = {"type": "ephemeral"}

BODY: dict[str, Any] = {
    "model": "claude-sonnet-4-5",
    "max_tokens": 300,
    "top_k": 5,
    "system": [
        {"type": "text", "text": "You are a contracts assistant."},
        {"type": "text", "text": "Long shared context " * 40, "cache_control": EPHEMERAL},
    ],
    "tools": [
        {
            "name": "lookup",
            "description": "Find a clause",
            "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}},
            "cache_control": {"type": "ephemeral", "ttl": "1h"},
        }
    ],
    "messages": [
        {"role": "user", "content": [{"type": "text", "text": "Find the term clause."}]},
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {"q": "term"}}],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "12 months", "cache_control": EPHEMERAL},
                {"type": "text", "text": "Summarise it.", "cache_control": EPHEMERAL},
            ],
        },
    ],
}  # fmt: skip


def _open_target() -> Target:
    return Target(
        name="local",
        kind=Kind.OPEN,
        provider=ProviderType.OPENAI_COMPATIBLE,
        model="llama",
        base_url="http://127.0.0.1:9/v1",
        max_sensitivity=Level.RESTRICTED,
    )


@pytest.fixture
async def provider() -> AsyncIterator[LiteLLMProvider]:
    instance = LiteLLMProvider()
    yield instance
    await instance.aclose()


@pytest.fixture
def upstream() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=True) as router:
        yield router


async def test_anthropic_gets_cache_control_top_k_and_its_headers(
    provider: LiteLLMProvider, upstream: respx.MockRouter
) -> None:
    route = upstream.post(ANTHROPIC_URL).respond(
        200, content=read_data("anthropic/message_text.json")
    )
    target = anthropic_target()
    chat = messages.to_chat(BODY)
    headers = {"anthropic-version": "2023-06-01", "anthropic-beta": "extended-cache-ttl-2025-04-11"}
    body = {**for_target(chat, target), "model": target.model}
    call = UpstreamCall(
        Endpoint.CHAT, target, body, request_id="r1", forwarded=forwarded_headers(headers)
    )
    await provider.complete(call)

    request = route.calls.last.request
    assert "extended-cache-ttl-2025-04-11" in request.headers["anthropic-beta"]
    assert request.headers["anthropic-version"] == "2023-06-01"
    sent = json.loads(request.content)
    assert sent["top_k"] == 5
    assert sent["system"][0].get("cache_control") is None
    assert sent["system"][1]["cache_control"] == EPHEMERAL
    assert sent["tools"][0]["cache_control"] == {"type": "ephemeral", "ttl": "1h"}
    last = sent["messages"][-1]
    assert last["role"] == "user"
    result = next(block for block in last["content"] if block["type"] == "tool_result")
    assert result["cache_control"] == EPHEMERAL
    text = next(block for block in last["content"] if block["type"] == "text")
    assert text["text"] == "Summarise it." and text["cache_control"] == EPHEMERAL


def test_other_targets_get_the_body_without_anthropic_markers() -> None:
    chat = messages.to_chat(BODY)
    plain = for_target(chat, _open_target())
    assert "cache_control" not in json.dumps(plain)
    assert plain["top_k"] == 5  # a self-hosted server samples with it
    proprietary = Target(
        name="gpt",
        kind=Kind.PROPRIETARY,
        provider=ProviderType.OPENAI_COMPATIBLE,
        model="gpt-4o",
        base_url="https://api.openai.com/v1",
        max_sensitivity=Level.INTERNAL,
    )
    sent = for_target(chat, proprietary)
    assert "cache_control" not in json.dumps(sent) and "top_k" not in sent
    # the texts are the same objects' texts: only the markers went
    assert [m.get("role") for m in sent["messages"]] == [m.get("role") for m in chat["messages"]]


def test_a_body_without_markers_is_passed_as_it_is() -> None:
    chat = {"model": "x", "messages": [{"role": "user", "content": "hi"}]}
    assert for_target(chat, _open_target()) is chat


@pytest.mark.parametrize(
    "mark",
    [{"type": "persistent"}, "ephemeral", {"type": "ephemeral", "ttl": "9h"}, {"type": "ephemeral", "x": 1}],
)  # fmt: skip
def test_a_bad_cache_control_is_a_400(mark: Any) -> None:
    body = {**BODY, "messages": [{"role": "user", "content": [{"type": "text", "text": "hi", "cache_control": mark}]}]}  # fmt: skip
    with pytest.raises(InvalidRequest, match="cache_control"):
        messages.to_chat(body)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("anthropic-version", "latest"),
        ("anthropic-version", "2023-06-01; x=1"),
        ("anthropic-beta", "prompt caching"),
        ("anthropic-beta", "sk-ant-api03-AbCdEf"),
        ("anthropic-beta", ",".join(f"feature{i}-2024-01-01" for i in range(17))),
    ],
)
def test_forwarded_headers_must_parse(name: str, value: str) -> None:
    with pytest.raises(InvalidRequest, match=name):
        forwarded_headers({name: value})


def test_forwarded_headers_are_normalised() -> None:
    got = forwarded_headers(
        {
            "anthropic-beta": " prompt-caching-2024-07-31, token-efficient-tools-2025-02-19,",
            "x": "y",
        }
    )
    assert got == (
        ("anthropic-beta", "prompt-caching-2024-07-31,token-efficient-tools-2025-02-19"),
    )


@given(st.text(max_size=60))
def test_what_is_forwarded_is_only_ever_the_grammar(value: str) -> None:
    try:
        got = forwarded_headers({"anthropic-beta": value, "anthropic-version": value})
    except InvalidRequest:
        return
    for _, sent in got:
        assert all(ch.islower() or ch.isdigit() or ch in "-," for ch in sent)
