"""OpenAI's Responses API through the gateway, with the official ``openai`` SDK in
strict mode (every answer must match the SDK's models).

The gateway translates each Responses request onto its chat pipeline and keeps
stored responses itself, so ``previous_response_id`` works against any target;
the upstream here is the test's real OpenAI-compatible server.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import openai
import orjson
import pytest
from pydantic import BaseModel

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


def _sent(upstream: Upstream, marker: str) -> dict[str, Any]:
    for request in reversed(upstream.requests):
        if marker in str(request["body"]):
            body: dict[str, Any] = request["body"]
            return body
    raise AssertionError("never reached the upstream")


def test_create_with_a_string(client: openai.OpenAI) -> None:
    response = client.responses.create(model="echo", input="hello there")
    assert response.object == "response" and response.status == "completed"
    assert response.id.startswith("resp_")
    assert response.output_text == "echo: hello there"
    assert response.usage is not None and response.usage.output_tokens == 3
    assert response.usage.total_tokens == response.usage.input_tokens + 3


def test_items_instructions_and_options_reach_the_upstream(
    client: openai.OpenAI, upstream: Upstream
) -> None:
    marker = uuid.uuid4().hex
    client.responses.create(
        model="echo",
        instructions=f"be brief {marker}",
        input=[
            {"role": "user", "content": [{"type": "input_text", "text": "first"}]},
            {"role": "assistant", "content": "ok"},
            {"role": "user", "content": "second"},
        ],
        max_output_tokens=50,
        temperature=0,
        metadata={"ticket": "T-1"},
    )
    sent = _sent(upstream, marker)
    assert sent["messages"] == [
        {"role": "system", "content": f"be brief {marker}"},
        {"role": "user", "content": [{"type": "text", "text": "first"}]},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": "second"},
    ]
    assert sent["max_tokens"] == 50 and sent["temperature"] == 0
    assert "metadata" not in sent  # kept by the gateway, never sent


def test_stream_events(client: openai.OpenAI) -> None:
    with client.responses.stream(model="echo", input="stream me please") as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[2:4] == ["response.output_item.added", "response.content_part.added"]
    assert kinds.count("response.output_text.delta") == 4
    assert kinds[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert final.output_text == "echo: stream me please"
    assert final.usage is not None and final.usage.output_tokens == 4


def test_function_tools_whole_streamed_and_their_output(
    client: openai.OpenAI, upstream: Upstream
) -> None:
    response = client.responses.create(
        model="echo", input="weather in Paris?", tools=[WEATHER], tool_choice="required"
    )
    call = response.output[0]
    assert call.type == "function_call" and call.name == "get_weather"
    assert call.arguments == '{"city": "Paris"}'
    sent = upstream.requests[-1]["body"]
    assert sent["tools"][0]["function"]["parameters"] == WEATHER["parameters"]
    assert sent["tool_choice"] == "required"
    with client.responses.stream(model="echo", input="weather?", tools=[WEATHER]) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert "response.function_call_arguments.delta" in kinds
    assert "response.function_call_arguments.done" in kinds
    assert final.output[0].type == "function_call"
    assert final.output[0].arguments == '{"city": "Paris"}'
    client.responses.create(
        model="echo",
        input=[
            {"role": "user", "content": "weather in Paris?"},
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
    messages = upstream.requests[-1]["body"]["messages"]
    assert messages[1]["tool_calls"][0]["id"] == call.call_id
    assert messages[2] == {"role": "tool", "tool_call_id": call.call_id, "content": "sunny"}


def test_structured_output_format_becomes_response_format(
    client: openai.OpenAI, upstream: Upstream
) -> None:
    class City(BaseModel):
        name: str

    marker = uuid.uuid4().hex
    client.responses.create(
        model="echo",
        input=f"a city {marker}",
        text={
            "format": {
                "type": "json_schema",
                "name": "city",
                "schema": City.model_json_schema(),
                "strict": False,
            }
        },
    )
    fmt = _sent(upstream, marker)["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["name"] == "city"


def test_follow_up_retrieve_items_and_delete(client: openai.OpenAI, upstream: Upstream) -> None:
    marker = uuid.uuid4().hex
    first = client.responses.create(model="echo", input=f"remember {marker}")
    second = client.responses.create(model="echo", input="and now?", previous_response_id=first.id)
    assert second.previous_response_id == first.id
    history = upstream.requests[-1]["body"]["messages"]
    assert history == [
        {"role": "user", "content": f"remember {marker}"},
        {"role": "assistant", "content": f"echo: remember {marker}"},
        {"role": "user", "content": "and now?"},
    ]
    again = client.responses.retrieve(first.id)
    assert again.id == first.id and again.output_text == first.output_text
    items = client.responses.input_items.list(second.id)
    assert [item.type for item in items.data] == ["message"]
    deleted = client.responses.delete(first.id)
    assert deleted is None or getattr(deleted, "deleted", True)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(first.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model="echo", input="x", previous_response_id=first.id)


def test_store_false_is_not_kept(client: openai.OpenAI) -> None:
    response = client.responses.create(model="echo", input="forget me", store=False)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(response.id)


def test_a_conversation_keeps_its_highest_level(gateway: GatewayServer) -> None:
    """A turn declared restricted: every later turn of that conversation is judged
    restricted too, though its own text is harmless and it declares nothing."""
    first = httpx.post(
        gateway.url + "/v1/responses",
        json={"model": "auto", "input": "the plan for next quarter"},
        headers={"x-data-classification": "restricted"},
    ).json()
    second = httpx.post(
        gateway.url + "/v1/responses",
        json={"model": "auto", "input": "summarise it", "previous_response_id": first["id"]},
    )
    third = httpx.post(
        gateway.url + "/v1/responses",
        json={"model": "auto", "input": "thanks", "previous_response_id": second.json()["id"]},
        headers={"x-data-classification": "public"},  # cannot lower it either
    )
    unrelated = httpx.post(
        gateway.url + "/v1/responses", json={"model": "auto", "input": "summarise it"}
    )
    log_path = gateway.settings.decision_log
    assert log_path is not None
    levels = {}
    for line in log_path.read_text().splitlines():
        record = orjson.loads(line)
        if "request_id" in record:  # not the file's open/close records
            levels[record["request_id"]] = record["level"]
    assert levels[second.headers["x-request-id"]] == "restricted"
    assert levels[third.headers["x-request-id"]] == "restricted"
    assert levels[unrelated.headers["x-request-id"]] == "public"


def test_errors(gateway: GatewayServer) -> None:
    url = gateway.url + "/v1/responses"
    for body, param in (
        ({"input": "hi"}, "model"),
        ({"model": "echo"}, "input"),
        ({"model": "echo", "input": 3}, "input"),
        ({"model": "echo", "input": "x", "tools": [{"type": "web_search"}]}, "tools[0].type"),
        ({"model": "echo", "input": [{"type": "computer_call"}]}, "input[0].type"),
        ({"model": "echo", "input": "x", "stream": "yes"}, "stream"),
    ):
        response = httpx.post(url, json=body)
        assert response.status_code == 400, body
        assert response.json()["error"]["param"] == param, body
    assert httpx.post(url, json={"model": "nope", "input": "x"}).status_code == 404
    assert httpx.get(gateway.url + "/v1/responses/resp_unknown").status_code == 404


def test_explain_accepts_a_responses_body(gateway: GatewayServer) -> None:
    body = {"model": "auto", "input": [{"role": "user", "content": "ssn 078-05-1120"}]}
    for params in ({}, {"api": "responses"}):
        explained = httpx.post(gateway.url + "/gateway/explain", json=body, params=params)
        assert explained.status_code == 200, explained.text
        assert explained.json()["sensitivity"]["level"] == "restricted"
    bad = httpx.post(gateway.url + "/gateway/explain", json=body, params={"api": "soap"})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "api"
