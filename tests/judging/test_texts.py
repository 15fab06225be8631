"""Walking and rewriting the texts of OpenAI request bodies."""

from __future__ import annotations

import copy
import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from gateway.judging.texts import iter_texts, rewrite_texts

CHAT: dict[str, Any] = {
    "model": "gpt-4o",
    "temperature": 0,
    "messages": [
        {"role": "system", "content": "sys text"},
        {"role": "developer", "content": "dev text"},
        {
            "role": "user",
            "name": "alice",
            "content": [
                {"type": "text", "text": "part one"},
                {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
                {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}},
                {"type": "text", "text": "part two"},
            ],
        },
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "lookup", "arguments": '{"q": "tool args"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "tool result"},
        {"role": "assistant", "content": None, "function_call": {"name": "f", "arguments": "{}"}},
        {"role": "function", "name": "f", "content": "function result"},
        {"role": "assistant", "content": [{"type": "refusal", "refusal": "part refusal"}]},
        {"role": "assistant", "content": "answer", "refusal": "top refusal"},
    ],
    "tools": [{"type": "function", "function": {"name": "lookup", "description": "not data"}}],
}


def test_chat_texts_cover_every_role_part_and_tool_argument() -> None:
    assert list(iter_texts(CHAT)) == [
        "sys text",
        "dev text",
        "part one",
        "part two",
        '{"q": "tool args"}',
        "tool result",
        "{}",
        "function result",
        "part refusal",
        "answer",
        "top refusal",
    ]


def test_names_and_tool_definitions_are_not_texts() -> None:
    texts = list(iter_texts(CHAT))
    assert "alice" not in texts
    assert "not data" not in texts


def test_completions_prompt_string_list_and_token_ids() -> None:
    assert list(iter_texts({"prompt": "hello"})) == ["hello"]
    assert list(iter_texts({"prompt": ["a", "b"], "suffix": "end"})) == ["a", "b", "end"]
    assert list(iter_texts({"prompt": [1, 2, 3]})) == []
    assert list(iter_texts({"prompt": [[1, 2], [3]]})) == []


def test_embeddings_input_string_list_and_token_arrays() -> None:
    assert list(iter_texts({"input": "one"})) == ["one"]
    assert list(iter_texts({"input": ["one", "two"]})) == ["one", "two"]
    assert list(iter_texts({"input": [101, 2023]})) == []
    assert list(iter_texts({"input": [[101, 2023], [7]]})) == []


def test_predicted_output_content_is_a_text() -> None:
    body = {"messages": [], "prediction": {"type": "content", "content": "predicted"}}
    assert list(iter_texts(body)) == ["predicted"]


def test_unknown_shapes_are_skipped_not_errors() -> None:
    weird: dict[str, Any] = {
        "messages": [
            "not a message",
            None,
            {"role": "user", "content": 42},
            {"role": "user", "content": [None, "str part", {"type": "text", "text": 7}]},
            {"role": "assistant", "tool_calls": "nope"},
            {"role": "assistant", "tool_calls": [None, {"function": "x"}, {"function": {}}]},
            {"role": "assistant", "function_call": [1]},
            {"role": "user", "content": "kept"},
        ],
        "prompt": {"a": 1},
        "input": None,
        "prediction": "x",
    }
    assert list(iter_texts(weird)) == ["kept"]
    assert rewrite_texts(weird, str.upper)["messages"][-1]["content"] == "KEPT"
    assert list(iter_texts({"messages": "nope"})) == []


def test_rewrite_replaces_every_text_and_nothing_else() -> None:
    original = copy.deepcopy(CHAT)
    out = rewrite_texts(CHAT, lambda t: f"<{t}>")
    assert original == CHAT, "the input was mutated"
    assert list(iter_texts(out)) == [f"<{t}>" for t in iter_texts(CHAT)]
    assert out["tools"] is CHAT["tools"]
    assert out["messages"][2]["content"][1] == CHAT["messages"][2]["content"][1]
    assert out["messages"][2]["name"] == "alice"
    assert out["messages"][3]["tool_calls"][0]["function"]["name"] == "lookup"
    assert out["messages"][3]["tool_calls"][0]["id"] == "call_1"


def test_rewrite_keeps_token_prompts_and_rewrites_string_prompts() -> None:
    assert rewrite_texts({"prompt": [1, 2]}, str.upper) == {"prompt": [1, 2]}
    assert rewrite_texts({"input": ["a", "b"]}, str.upper) == {"input": ["A", "B"]}
    assert rewrite_texts({"prompt": "a", "suffix": "z"}, str.upper) == {
        "prompt": "A",
        "suffix": "Z",
    }


# --- properties ---------------------------------------------------------------

_text = st.text(max_size=20)
_part = st.one_of(
    st.fixed_dictionaries({"type": st.just("text"), "text": _text}),
    st.fixed_dictionaries({"type": st.just("image_url"), "image_url": st.just({"url": "u"})}),
    st.fixed_dictionaries({"type": st.just("refusal"), "refusal": _text}),
)
_call = st.fixed_dictionaries(
    {
        "id": _text,
        "type": st.just("function"),
        "function": st.fixed_dictionaries({"name": _text, "arguments": _text}),
    }
)
_message = st.fixed_dictionaries(
    {
        "role": st.sampled_from(["system", "developer", "user", "assistant", "tool", "function"]),
        "content": st.one_of(st.none(), _text, st.lists(_part, max_size=3)),
    },
    optional={
        "tool_calls": st.lists(_call, max_size=2),
        "name": _text,
        "refusal": _text,
        "function_call": st.fixed_dictionaries({"name": _text, "arguments": _text}),
    },
)
_body = st.fixed_dictionaries(
    {"model": _text},
    optional={
        "messages": st.lists(_message, max_size=4),
        "prompt": st.one_of(
            _text, st.lists(_text, max_size=3), st.lists(st.integers(), max_size=3)
        ),
        "input": st.one_of(_text, st.lists(_text, max_size=3), st.lists(st.integers(), max_size=3)),
        "temperature": st.floats(0, 2),
    },
)


@given(_body)
def test_identity_rewrite_is_equal_and_never_mutates(body: dict[str, Any]) -> None:
    snapshot = json.dumps(body, sort_keys=True)
    out = rewrite_texts(body, lambda t: t)
    assert out == body
    assert json.dumps(body, sort_keys=True) == snapshot


@given(_body)
def test_rewrite_sees_exactly_the_iterated_texts(body: dict[str, Any]) -> None:
    seen: list[str] = []

    def record(text: str) -> str:
        seen.append(text)
        return text + "!"

    snapshot = json.dumps(body, sort_keys=True)
    out = rewrite_texts(body, record)
    assert seen == list(iter_texts(body))
    assert list(iter_texts(out)) == [t + "!" for t in seen]
    assert json.dumps(body, sort_keys=True) == snapshot
