"""The one walk: every string of any body, what it cannot read, and the rebuild."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.errors import InvalidRequest
from gateway.judging.walk import MAX_DEPTH, rebuild, walk

CHAT: dict[str, Any] = {
    "model": "gpt-4o",
    "messages": [
        {"role": "system", "content": "sys text"},
        {
            "role": "user",
            "name": "alice",
            "content": [
                {"type": "text", "text": "part one"},
                {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
            ],
        },
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "f", "arguments": {"a": "x"}}}
            ],
        },
    ],
    "tools": [
        {
            "type": "function",
            "function": {
                "name": "f",
                "description": "tool description",
                "parameters": {"type": "object", "properties": {"a": {"enum": ["e1", "e2"]}}},
            },
        }
    ],
    "metadata": {"team": "meta value"},
    "stop": ["stop word"],
    "unknown_field": {"deep": [{"deeper": "hidden"}]},
    "temperature": 0.2,
    "stream": False,
}


def test_every_key_and_string_value_is_visited_except_the_model_value() -> None:
    strings = walk(CHAT).strings
    for expected in (
        "sys text", "alice", "part one", "https://example.com/a.png", "c1", "x",
        "tool description", "e1", "e2", "meta value", "team", "stop word",
        "unknown_field", "deep", "deeper", "hidden", "temperature", "model",
    ):  # fmt: skip
        assert expected in strings
    assert "gpt-4o" not in strings
    assert walk(CHAT).unjudged == 0


def test_document_order() -> None:
    assert walk({"a": "1", "b": ["2", {"c": "3"}]}).strings == ["a", "1", "b", "2", "c", "3"]


def test_structure_values_are_not_conversation_pieces() -> None:
    walked = walk({"messages": [{"role": "user", "content": "hello"}]})
    assert [walked.strings[i] for i in walked.pieces] == ["hello"]


@pytest.mark.parametrize(
    "body",
    [
        {"prompt": [1, 2, 3]},
        {"prompt": [[1, 2], [3]]},
        {"input": [101, 2023]},
        {"messages": [{"role": "user", "content": [9906, 1917]}]},
        {"anything": list(range(20))},
        {"logit_bias": {"1234": 5}},
        {"messages": [{"role": "user", "content": [{"type": "file", "file": {"file_id": "f"}}]}]},
        {"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]},
        {"x": {"type": "image_url", "image_url": {"url": "https://h/i.png?sig=abc"}}},
        {"x": {"image_url": {"url": "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAAB"}}},
        {"x": {"file_data": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="}},
    ],
)
def test_what_cannot_be_read_is_unjudged(body: dict[str, Any]) -> None:
    assert walk(body).unjudged >= 1


@pytest.mark.parametrize(
    "body",
    [
        {"tools": [{"parameters": {"enum": [1, 2, 3]}}]},  # a short list of numbers in a schema
        {"x": {"image_url": {"url": "https://example.com/a.png"}}},
        {"x": {"url": "data:text/plain;base64,aGVsbG8gd29ybGQ="}},
        {"x": {"data": "plain words in a data field"}},
        {"seed": 12345, "temperature": 0.5, "n": 2},
    ],
)
def test_ordinary_shapes_are_judged(body: dict[str, Any]) -> None:
    assert walk(body).unjudged == 0


def test_rebuild_replaces_every_string_and_copies_every_container() -> None:
    walked = walk(CHAT)
    marked = [s if s == "model" else f"<{s}>" for s in walked.strings]
    out = rebuild(CHAT, marked)
    assert walk(out).strings == marked
    assert out["model"] == "gpt-4o"
    assert out["<temperature>"] == 0.2
    original = copy.deepcopy(CHAT)
    out["<messages>"][0]["<role>"] = "changed"
    assert original == CHAT  # nothing shared with the input


def test_rebuild_replaces_unjudged_parts_when_asked() -> None:
    body = {
        "prompt": [1, 2, 3],
        "messages": [{"role": "user", "content": [{"type": "file", "file": {"file_id": "f"}}]}],
    }
    walked = walk(body)
    out = rebuild(body, walked.strings, lambda n, part: f"[UNJUDGED_{n + 1}]")
    assert out["prompt"] == "[UNJUDGED_1]"
    assert out["messages"][0]["content"] == [{"type": "text", "text": "[UNJUDGED_2]"}]


def test_depth_is_bounded() -> None:
    body: Any = "leaf"
    for _ in range(MAX_DEPTH + 5):
        body = [body]
    with pytest.raises(InvalidRequest):
        walk({"x": body})


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=20,
)


@given(st.dictionaries(st.text(max_size=6), json_values, max_size=5))
def test_identity_rebuild_is_equal(body: dict[str, Any]) -> None:
    walked = walk(body)
    assert rebuild(body, walked.strings) == body


def test_a_type_that_is_not_a_string_is_just_data() -> None:
    assert walk({"x": {"type": ["file"]}, "y": {"type": {"a": 1}}}).unjudged == 0


_KEYS = st.sampled_from(
    ["type", "url", "image_url", "data", "file_data", "logit_bias", "prompt", "input",
     "content", "text", "id", "tool_call_id", "model", "x"]
)  # fmt: skip
hostile = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.text(max_size=12)
    | st.sampled_from(
        ["data:image/png;base64,AAAA", "https://h/x?y=1", "QUtJQVo3UVgzTVBMVzlSVDJLVkI="]
    ),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_KEYS, children, max_size=4),
    max_leaves=25,
)


@given(
    st.dictionaries(
        st.sampled_from(["messages", "prompt", "input", "tools"]) | _KEYS, hostile, max_size=5
    )
)
def test_any_shape_is_judged_and_redacted_without_error(body: dict[str, Any]) -> None:
    from gateway.judging.redaction import Redaction
    from gateway.judging.sensitivity import BUILTIN_ENTITIES, Scanner
    from gateway.judging.task import task_input
    from gateway.judging.tokens import estimate_request_tokens
    from gateway.judging.views import body_entities

    scanner = Scanner()
    body_entities(scanner, walk(body))
    estimate_request_tokens(body)
    task_input(body)
    out = Redaction(scanner, BUILTIN_ENTITIES).redact_body(body)
    assert isinstance(out, dict)
