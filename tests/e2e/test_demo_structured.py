"""Structured outputs in the demo: the official SDK's parse() helpers against `gateway serve --demo`.

The simulated backends answer ``response_format`` json_schema with JSON valid
against the schema, json_object with a JSON object, and tool calls whose
arguments match the tool's parameters, so the code a user points at the demo
works as it will against a real model.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import jsonschema
import openai
import pytest
from pydantic import BaseModel, Field

from tests.harness import GatewayProcess

ROOT = Path(__file__).resolve().parents[2]


class Step(BaseModel):
    explanation: str
    output: str


class MathReasoning(BaseModel):
    steps: list[Step]
    final_answer: str
    confidence: float = Field(ge=0, le=1)


class Contact(BaseModel):
    name: str
    role: Literal["buyer", "seller"]
    phone: str | None


class GetWeather(BaseModel):
    """Get the weather for a city."""

    city: str
    unit: Literal["celsius", "fahrenheit"]
    days: int = Field(ge=1, le=7)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    policies = tmp_path_factory.mktemp("demo") / "policies"
    shutil.copytree(ROOT / "policies", policies)
    process = GatewayProcess("--demo", "--policies", str(policies))
    process.wait_ready()
    yield process
    process.stop()


@pytest.fixture
def client(demo: GatewayProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=demo.url + "/v1", api_key="demo", max_retries=0, timeout=20)


MESSAGES = [{"role": "user", "content": "Solve 8x + 7 = -23 step by step."}]


@pytest.mark.parametrize("model", ["auto", "gpt-4o", "local"])
def test_parse_with_a_pydantic_model(client: openai.OpenAI, model: str) -> None:
    completion = client.chat.completions.parse(
        model=model, messages=MESSAGES, response_format=MathReasoning
    )
    message = completion.choices[0].message
    assert isinstance(message.parsed, MathReasoning)
    assert message.parsed.steps and 0 <= message.parsed.confidence <= 1
    assert completion.system_fingerprint == "fp_simulated"


def test_beta_parse_and_nested_optional_fields(client: openai.OpenAI) -> None:
    completion = client.beta.chat.completions.parse(
        model="auto",
        messages=[{"role": "user", "content": "Extract the contact: Ann sells the house."}],
        response_format=Contact,
    )
    parsed = completion.choices[0].message.parsed
    assert isinstance(parsed, Contact) and parsed.role in ("buyer", "seller")


def test_streamed_parse(client: openai.OpenAI) -> None:
    with client.chat.completions.stream(
        model="auto", messages=MESSAGES, response_format=MathReasoning
    ) as stream:
        final = stream.get_final_completion()
    assert isinstance(final.choices[0].message.parsed, MathReasoning)


def test_json_mode_answers_a_json_object(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="auto",
        messages=[{"role": "user", "content": "Answer in JSON: what is routing?"}],
        response_format={"type": "json_object"},
    )
    content = completion.choices[0].message.content
    assert content is not None and isinstance(json.loads(content), dict)


def test_parsed_tool_call_arguments(client: openai.OpenAI) -> None:
    completion = client.chat.completions.parse(
        model="auto",
        messages=[{"role": "user", "content": "What is the weather in Paris this week?"}],
        tools=[openai.pydantic_function_tool(GetWeather)],
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.tool_calls
    call = choice.message.tool_calls[0]
    assert call.function.name == "GetWeather"
    assert isinstance(call.function.parsed_arguments, GetWeather)


@pytest.mark.parametrize("stream", [False, True])
def test_tool_arguments_match_a_hand_written_schema(client: openai.OpenAI, stream: bool) -> None:
    parameters = {
        "type": "object",
        "properties": {
            "query": {"type": "string", "minLength": 3},
            "filters": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "field": {"enum": ["date", "author"]},
                        "value": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
                    },
                    "required": ["field", "value"],
                    "additionalProperties": False,
                },
                "minItems": 1,
            },
            "limit": {"type": "integer", "minimum": 1, "maximum": 50},
        },
        "required": ["query", "filters"],
        "additionalProperties": False,
    }
    tools = [{"type": "function", "function": {"name": "search", "parameters": parameters}}]
    messages = [{"role": "user", "content": "Find recent papers on routing."}]
    if stream:
        arguments = ""
        for chunk in client.chat.completions.create(
            model="auto", messages=messages, tools=tools, stream=True
        ):
            for delta_call in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
                arguments += delta_call.function.arguments or ""
    else:
        completion = client.chat.completions.create(model="auto", messages=messages, tools=tools)
        tool_calls = completion.choices[0].message.tool_calls
        assert tool_calls
        arguments = tool_calls[0].function.arguments
    jsonschema.validate(json.loads(arguments), parameters)
