"""Every input has a 4xx or a 200, never a 5xx: fuzzing every endpoint over a real socket.

The bodies are shaped like the endpoint's own (so the fuzzer reaches the
fields the gateway reads: roles, content parts, tool calls, prompts, inputs),
with any field replaced, now and then, by arbitrary JSON; and bodies nested
around and past every depth that once broke a step (254 for orjson's writer,
~900 for Python's recursion limit, 1024 for orjson's reader).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.e2e.test_errors import assert_openai_error
from tests.harness import GatewayServer
from tests.upstream_server import Upstream

json_any = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()  # past 64 bits too: sent as JSON text, whatever orjson makes of it
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=10,
)


def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly ``strategy``, sometimes any JSON value at all."""
    return st.one_of(strategy, strategy, strategy, json_any)


text = st.text(max_size=40)
models = maybe(st.sampled_from(["echo", "auto", "redact-cloud", "no-such-model"]))
part = maybe(
    st.fixed_dictionaries(
        {"type": maybe(st.sampled_from(["text", "image_url", "input_audio", "file", "refusal"]))},
        optional={
            "text": maybe(text),
            "image_url": maybe(st.fixed_dictionaries({"url": maybe(text)})),
            "refusal": maybe(text),
        },
    )
)
content = st.one_of(text, st.lists(part, max_size=4), json_any)
function = maybe(
    st.fixed_dictionaries({}, optional={"name": maybe(text), "arguments": maybe(text)})
)
tool_call = maybe(
    st.fixed_dictionaries(
        {"id": maybe(text), "type": maybe(st.just("function")), "function": function}
    )
)
message = maybe(
    st.fixed_dictionaries(
        {"role": maybe(st.sampled_from(["system", "developer", "user", "assistant", "tool"]))},
        optional={
            "content": content,
            "name": maybe(text),
            "tool_calls": maybe(st.lists(tool_call, max_size=3)),
            "tool_call_id": maybe(text),
            "function_call": function,
            "refusal": maybe(text),
        },
    )
)
tool = maybe(
    st.fixed_dictionaries(
        {
            "type": maybe(st.just("function")),
            "function": maybe(st.fixed_dictionaries({"name": text})),
        }
    )
)
common: dict[str, st.SearchStrategy[Any]] = {
    "stream": maybe(st.booleans()),
    "stream_options": maybe(st.fixed_dictionaries({}, optional={"include_usage": st.booleans()})),
    "temperature": maybe(st.floats(0, 2)),
    "top_p": maybe(st.floats(0, 1)),
    "n": maybe(st.integers(1, 2)),
    "max_tokens": maybe(st.integers(1, 50)),
    "seed": maybe(st.integers()),
    "stop": maybe(st.one_of(text, st.lists(text, max_size=4))),
    "user": maybe(text),
    "metadata": maybe(st.dictionaries(st.text(max_size=8), text, max_size=3)),
    "x-unknown": json_any,
}
chat_body = st.fixed_dictionaries(
    {"model": models, "messages": maybe(st.lists(message, min_size=1, max_size=4))},
    optional={
        **common,
        "tools": maybe(st.lists(tool, max_size=3)),
        "tool_choice": maybe(st.sampled_from(["auto", "none", "required"])),
        "response_format": maybe(st.fixed_dictionaries({"type": st.just("json_object")})),
        "prediction": maybe(
            st.fixed_dictionaries({"type": st.just("content"), "content": content})
        ),
    },
)
prompt = maybe(
    st.one_of(
        text,
        st.lists(
            st.one_of(text, st.integers(0, 50_000), st.lists(st.integers(0, 50_000))), max_size=4
        ),
    )
)
completions_body = st.fixed_dictionaries(
    {"model": models, "prompt": prompt}, optional={**common, "suffix": maybe(text)}
)
embeddings_body = st.fixed_dictionaries(
    {"model": models, "input": prompt},
    optional={
        "encoding_format": maybe(st.sampled_from(["float", "base64"])),
        "dimensions": maybe(st.integers(1, 8)),
        "x-unknown": json_any,
    },
)

responses_part = maybe(
    st.fixed_dictionaries(
        {"type": maybe(st.sampled_from(["input_text", "output_text", "input_image", "x"]))},
        optional={"text": maybe(json_any), "image_url": maybe(text)},
    )
)
responses_item = st.one_of(
    st.fixed_dictionaries(
        {"role": st.one_of(st.sampled_from(["user", "assistant", "system", "x"]), json_any)},
        optional={"content": st.one_of(text, st.lists(responses_part, max_size=3), json_any)},
    ),
    st.fixed_dictionaries(
        {"type": st.sampled_from(["function_call", "function_call_output", "reasoning", "x"])},
        optional={"call_id": maybe(json_any), "name": maybe(text), "output": maybe(json_any)},
    ),
    json_any,
)
responses_body = st.fixed_dictionaries(
    {"model": models, "input": st.one_of(text, st.lists(responses_item, max_size=3), json_any)},
    optional={
        "instructions": maybe(json_any),
        "stream": maybe(st.booleans()),
        "store": maybe(st.booleans()),
        "previous_response_id": maybe(text),
        "max_output_tokens": maybe(st.integers(-2, 50)),
        "tools": maybe(st.lists(json_any, max_size=2)),
        "text": maybe(json_any),
        "metadata": maybe(json_any),
    },
)
anthropic_block = maybe(
    st.fixed_dictionaries(
        {"type": st.sampled_from(["text", "image", "tool_use", "tool_result", "thinking", "x"])},
        optional={"text": maybe(json_any), "id": maybe(text), "input": maybe(json_any)},
    )
)
messages_body = st.fixed_dictionaries(
    {
        "model": models,
        "max_tokens": maybe(st.integers(-2, 50)),
        "messages": st.one_of(
            st.lists(
                st.fixed_dictionaries(
                    {
                        "role": st.one_of(st.sampled_from(["user", "assistant", "x"]), json_any),
                        "content": st.one_of(text, st.lists(anthropic_block, max_size=3)),
                    }
                ),
                max_size=3,
            ),
            json_any,
        ),
    },
    optional={
        "system": maybe(json_any),
        "stream": maybe(st.booleans()),
        "tools": maybe(st.lists(json_any, max_size=2)),
        "tool_choice": maybe(json_any),
        "stop_sequences": maybe(json_any),
    },
)

ENDPOINTS = {
    "/v1/chat/completions": chat_body,
    "/v1/completions": completions_body,
    "/v1/embeddings": embeddings_body,
    "/gateway/explain": chat_body,
    "/v1/responses": responses_body,
    "/v1/messages": messages_body,
    "/v1/messages/count_tokens": messages_body,
}


def assert_answered(response: httpx.Response) -> None:
    """A 200, or a 4xx in the endpoint's own shape (Anthropic's for the Messages
    API, OpenAI's for the others); never a 5xx."""
    assert response.status_code == 200 or 400 <= response.status_code < 500, (
        response.status_code,
        response.text,
    )
    if response.status_code == 200:
        return
    if response.request.url.path.startswith("/v1/messages"):
        body = response.json()
        assert body["type"] == "error" and isinstance(body["error"]["message"], str), body
        assert isinstance(body["error"]["type"], str), body
    else:
        assert_openai_error(response, response.status_code)


#: one client for the module: a new one per request loads the CA bundle each time
#: (tens of ms), which made a run of many examples slow enough to time out
_CLIENT = httpx.Client()


@pytest.fixture(scope="module", autouse=True)
def _close_client() -> Iterator[None]:
    yield
    _CLIENT.close()


def send(gateway: GatewayServer, path: str, raw: bytes) -> httpx.Response:
    return _CLIENT.post(
        gateway.url + path,
        content=raw,
        headers={"content-type": "application/json"},
        timeout=10,
    )


@pytest.mark.parametrize("path", list(ENDPOINTS))
def test_every_endpoint_answers_any_body_of_its_shape(gateway: GatewayServer, path: str) -> None:
    @settings(
        max_examples=int(os.environ.get("HOSTILE_EXAMPLES", "50")),
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(body=ENDPOINTS[path])
    def check(body: dict[str, Any]) -> None:
        assert_answered(send(gateway, path, json.dumps(body).encode()))

    check()


@pytest.mark.parametrize("path", list(ENDPOINTS))
def test_every_endpoint_answers_any_json_at_all(gateway: GatewayServer, path: str) -> None:
    @settings(
        max_examples=40,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(body=json_any)
    def check(body: Any) -> None:
        assert_answered(send(gateway, path, json.dumps(body).encode()))

    check()


def nested(depth: int) -> str:
    """``depth`` levels of alternating arrays and objects around a string."""
    inner = '"x"'
    for level in range(depth):
        inner = f"[{inner}]" if level % 2 else f'{{"k":{inner}}}'
    return inner


def bodies_nested(depth: int) -> dict[str, str]:
    """A body per endpoint, with a value nested ``depth`` levels at each place
    the gateway reads (or passes on) deeply."""
    user = '{"role":"user","content":"hi"}'
    return {
        "chat extra field": f'{{"model":"echo","messages":[{user}],"x":{nested(depth)}}}',
        "chat message field": f'{{"model":"echo","messages":[{{"role":"user","content":"hi","x":{nested(depth)}}}]}}',
        "chat content": f'{{"model":"echo","messages":[{{"role":"user","content":[{{"type":"text","text":"a","x":{nested(depth)}}}]}}]}}',
        "chat tools": f'{{"model":"echo","messages":[{user}],"tools":[{{"type":"function","function":{{"name":"f","parameters":{nested(depth)}}}}}]}}',
        "chat metadata": f'{{"model":"echo","messages":[{user}],"metadata":{{"m":{nested(depth)}}}}}',
        "completions prompt": f'{{"model":"echo","prompt":[{"[" * depth}1{"]" * depth}]}}',
        "embeddings input": f'{{"model":"echo","input":[{"[" * depth}1{"]" * depth}]}}',
    }


PATHS = {
    "chat": "/v1/chat/completions",
    "completions": "/v1/completions",
    "embeddings": "/v1/embeddings",
}


@pytest.mark.parametrize("depth", [60, 64, 65, 253, 254, 255, 300, 900, 1023, 1024, 1025, 5000])
def test_deep_bodies_get_a_400_that_names_the_limit(
    gateway: GatewayServer, upstream: Upstream, depth: int
) -> None:
    limit = gateway.settings.max_json_depth
    for where, raw in bodies_nested(depth).items():
        path = PATHS[where.split()[0]]
        for endpoint in (path, "/gateway/explain") if path == PATHS["chat"] else (path,):
            before = len(upstream.requests)
            response = send(gateway, endpoint, raw.encode())
            assert_answered(response)
            # the deepest container: the nested value plus the levels around it
            if depth + 3 <= limit:
                continue
            if depth > limit:
                error = assert_openai_error(response, 400)
                assert error["code"] in ("too_deep", "invalid_json", "invalid_type"), (where, error)
                assert len(upstream.requests) == before, where


def test_depth_error_names_the_setting(gateway: GatewayServer) -> None:
    response = send(
        gateway, "/v1/chat/completions", bodies_nested(100)["chat extra field"].encode()
    )
    error = assert_openai_error(response, 400, "too_deep")
    assert "GATEWAY_MAX_JSON_DEPTH" in error["message"]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "echo", "messages": [{"role": ["user"], "content": "hi"}]}, "messages[0].role"),
        ({"model": "echo", "messages": [{"role": {"a": 1}, "content": "hi"}]}, "messages[0].role"),
        ({"model": "echo", "messages": [{"role": 3, "content": "hi"}]}, "messages[0].role"),
        (
            {"model": "echo", "messages": [{"role": "user", "content": "hi", "name": 5}]},
            "messages[0].name",
        ),
        (
            {"model": "echo", "messages": [{"role": "assistant", "tool_calls": {"a": 1}}]},
            "messages[0].tool_calls",
        ),
        (
            {
                "model": "echo",
                "messages": [
                    {"role": "assistant", "tool_calls": [{"function": {"arguments": {}}}]}
                ],
            },
            "messages[0].tool_calls[0].function.arguments",
        ),
        (
            {"model": "echo", "messages": [{"role": "user", "content": "x"}], "tools": [1]},
            "tools[0]",
        ),
        ({"model": "echo", "messages": [{"role": "user", "content": "x"}], "stop": [1]}, "stop"),
        ({"model": "echo", "messages": [{"role": "user", "content": "x"}], "user": {}}, "user"),
        ({"model": "echo", "prompt": [[1, "a"]]}, "prompt"),
        ({"model": "echo", "prompt": [[[1]]]}, "prompt"),
        ({"model": "echo", "prompt": "x", "suffix": 1}, "suffix"),
        ({"model": "echo", "input": [True]}, "input"),
    ],
)
def test_wrong_types_are_400_naming_the_field(
    gateway: GatewayServer, body: dict[str, Any], param: str
) -> None:
    path = (
        "/v1/chat/completions"
        if "messages" in body
        else "/v1/completions"
        if "prompt" in body
        else "/v1/embeddings"
    )
    for endpoint in (path, "/gateway/explain") if "messages" in body else (path,):
        error = assert_openai_error(send(gateway, endpoint, orjson.dumps(body)), 400)
        assert error["param"] == param


@pytest.mark.parametrize(
    ("body", "param", "setting"),
    [
        (
            {"model": "echo", "messages": [{"role": "user", "content": "x"}] * 2049},
            "messages",
            "GATEWAY_MAX_MESSAGES",
        ),
        (
            {
                "model": "echo",
                "messages": [{"role": "user", "content": [{"type": "text", "text": "x"}] * 1025}],
            },
            "messages[0].content",
            "GATEWAY_MAX_CONTENT_PARTS",
        ),
        (
            {
                "model": "echo",
                "messages": [{"role": "user", "content": "x"}],
                "tools": [{"type": "function", "function": {"name": "f"}}] * 129,
            },
            "tools",
            "GATEWAY_MAX_TOOLS",
        ),
        ({"model": "echo", "prompt": ["x"] * 2049}, "prompt", "GATEWAY_MAX_INPUTS"),
        ({"model": "echo", "input": ["x"] * 2049}, "input", "GATEWAY_MAX_INPUTS"),
    ],
)
def test_too_many_items_are_400_naming_the_limit(
    gateway: GatewayServer, body: dict[str, Any], param: str, setting: str
) -> None:
    path = (
        "/v1/chat/completions"
        if "messages" in body
        else "/v1/completions"
        if "prompt" in body
        else "/v1/embeddings"
    )
    error = assert_openai_error(send(gateway, path, orjson.dumps(body)), 400)
    assert error["param"] == param and error["code"] == "array_above_max_length"
    assert setting in error["message"]
