"""The official openai SDK against a real gateway and a real local upstream."""

from __future__ import annotations

import base64
import struct
from typing import Any

import httpx
import openai
import pytest

from tests.harness import GatewayServer
from tests.upstream_server import Upstream

USER = [{"role": "user", "content": "hello there gateway"}]


def test_chat_non_streaming(client: Any, upstream: Upstream) -> None:
    raw = client.chat.completions.with_raw_response.create(model="echo", messages=USER)
    completion = raw.parse()
    assert completion.choices[0].message.content == "echo: hello there gateway"
    assert completion.usage is not None and completion.usage.total_tokens > 0
    assert raw.headers["x-gateway-target"] == "echo"
    assert raw.headers["x-gateway-rule"] == "pinned"
    assert raw.headers["x-gateway-attempts"] == "1"
    assert raw.headers["x-request-id"]
    assert raw.headers["x-gateway-cache"] == "bypass"
    assert float(raw.headers["x-gateway-cost-usd"]) > 0


def test_request_id_is_kept(client: Any) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="echo", messages=USER, extra_headers={"x-request-id": "my-trace-42"}
    )
    assert raw.headers["x-request-id"] == "my-trace-42"


def test_auto_alias_routes_by_rule(client: Any) -> None:
    raw = client.chat.completions.with_raw_response.create(model="auto", messages=USER)
    assert raw.headers["x-gateway-rule"] == "default"
    assert raw.parse().choices[0].message.content.startswith("echo:")


def test_content_parts_and_passthrough_fields(client: Any, upstream: Upstream) -> None:
    client.chat.completions.create(
        model="echo",
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "describe"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                ],
            }
        ],
        seed=7,
        stop=["\n\n"],
        logprobs=True,
        top_logprobs=2,
        response_format={"type": "json_object"},
        metadata={"purpose": "test"},
        extra_body={"api_base": "http://evil.example", "api_key": "stolen", "custom_field": 1},
    )
    sent = upstream.requests[-1]["body"]
    assert sent["seed"] == 7 and sent["stop"] == ["\n\n"] and sent["logprobs"] is True
    assert sent["response_format"] == {"type": "json_object"}
    assert sent["metadata"] == {"purpose": "test"}
    assert sent["custom_field"] == 1
    assert "api_base" not in sent and "api_key" not in sent
    assert sent["messages"][0]["content"][1]["type"] == "image_url"


def test_streaming_with_usage(client: Any) -> None:
    stream = client.chat.completions.create(
        model="echo", messages=USER, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "echo: hello there gateway"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None


def test_streaming_hides_usage_the_client_did_not_ask_for(client: Any, upstream: Upstream) -> None:
    chunks = list(client.chat.completions.create(model="echo", messages=USER, stream=True))
    assert all(c.choices for c in chunks)
    assert all(getattr(c, "usage", None) is None for c in chunks)
    # the gateway asked the upstream for usage anyway, to count spend
    assert upstream.requests[-1]["body"]["stream_options"] == {"include_usage": True}


def test_streamed_tool_calls(client: Any) -> None:
    tools = [
        {
            "type": "function",
            "function": {
                "name": "weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        }
    ]
    chunks = list(
        client.chat.completions.create(model="echo", messages=USER, tools=tools, stream=True)
    )
    arguments = "".join(
        call.function.arguments or ""
        for c in chunks
        if c.choices and c.choices[0].delta.tool_calls
        for call in c.choices[0].delta.tool_calls
    )
    assert arguments == '{"city": "Paris"}'
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_n_greater_than_one(client: Any) -> None:
    completion = client.chat.completions.create(model="echo", messages=USER, n=3)
    assert [c.index for c in completion.choices] == [0, 1, 2]


def test_completions_legacy(client: Any) -> None:
    completion = client.completions.create(model="echo", prompt="say hi")
    assert completion.choices[0].text == "echo: say hi"
    # The SDK types Completion.finish_reason as non-nullable, but real legacy
    # streams (OpenAI's included) send null until the last chunk: strict
    # validation would reject OpenAI itself here, so this one call is lenient.
    lenient = openai.OpenAI(base_url=str(client.base_url), api_key="x", max_retries=0)
    streamed = list(lenient.completions.create(model="echo", prompt="say hi", stream=True))
    assert "".join(c.choices[0].text for c in streamed if c.choices).strip() == "echo: say hi"


def test_embeddings_float_and_base64(client: Any) -> None:
    floats = client.embeddings.create(model="echo", input=["a", "b"], encoding_format="float")
    assert [d.index for d in floats.data] == [0, 1]
    assert floats.data[0].embedding == [0.25, -0.5, 0.125]
    # the SDK asks for base64 by default and decodes it - after validation,
    # so strict mode would reject the (correct) base64 string: lenient client
    lenient = openai.OpenAI(base_url=str(client.base_url), api_key="x", max_retries=0)
    default = lenient.embeddings.create(model="echo", input="a")
    assert default.data[0].embedding == pytest.approx([0.25, -0.5, 0.125])
    raw = httpx.post(
        str(client.base_url) + "embeddings",
        json={"model": "echo", "input": "a", "encoding_format": "base64"},
    ).json()
    decoded = struct.unpack("<3f", base64.b64decode(raw["data"][0]["embedding"]))
    assert decoded == pytest.approx((0.25, -0.5, 0.125))


def test_models_lists_aliases(client: Any) -> None:
    ids = [m.id for m in client.models.list()]
    assert "auto" in ids and "echo" in ids and "fallback-500" in ids
    assert client.models.retrieve("echo").id == "echo"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("nope")


def test_health_and_readiness(gateway: GatewayServer) -> None:
    assert httpx.get(gateway.url + "/healthz").json() == {"status": "ok"}
    ready = httpx.get(gateway.url + "/readyz")
    assert ready.status_code == 200
    body = ready.json()
    assert body["ready"] is True
    nokey = body["targets"]["cloud-nokey"]
    assert nokey["available"] is False and "UNSET_KEY_FOR_TEST" in nokey["reason"]
    echo = body["targets"]["echo"]
    assert echo["available"] is True and echo["reason"] is None
    assert echo["kind"] == "open" and echo["max_sensitivity"] == "restricted"
