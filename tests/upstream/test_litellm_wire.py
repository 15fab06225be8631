"""OpenAI's wire shape for litellm's answers: pure functions on dicts."""

from __future__ import annotations

from typing import Any

from openai.types.chat import ChatCompletionChunk

from gateway.endpoints import Endpoint
from gateway.upstream.litellm_wire import StreamShaper, shape_response


def chunk(**changes: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "id": "chatcmpl-1",
        "created": 1700000000,
        "model": "claude",
        "object": "chat.completion.chunk",
        "system_fingerprint": None,
        "provider_specific_fields": None,
        "choices": [
            {
                "index": 0,
                "delta": {"content": "hi", "role": None, "provider_specific_fields": None},
                "finish_reason": None,
                "logprobs": None,
            }
        ],
    }
    raw.update(changes)
    return raw


USAGE = {
    "prompt_tokens": 5,
    "completion_tokens": 2,
    "total_tokens": 7,
    "prompt_tokens_details": {"cached_tokens": 3, "text_tokens": 5, "audio_tokens": None},
    "cache_read_input_tokens": 3,
}

FINISH = [{"index": 0, "delta": {}, "finish_reason": "stop", "logprobs": None}]


def test_usage_on_a_finish_chunk_is_split_into_finish_then_usage_only() -> None:
    shaper = StreamShaper(Endpoint.CHAT, include_usage=True)
    out = list(shaper.shape(chunk(choices=FINISH, usage=USAGE)))
    assert [c["choices"] for c in out] == [
        [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}],
        [],
    ]
    assert "usage" not in out[0]
    assert out[1]["usage"] == {
        "prompt_tokens": 5,
        "completion_tokens": 2,
        "total_tokens": 7,
        "prompt_tokens_details": {"cached_tokens": 3},
    }
    for payload in out:
        ChatCompletionChunk.model_validate(payload)


def test_usage_is_withheld_when_not_asked_for() -> None:
    shaper = StreamShaper(Endpoint.CHAT, include_usage=False)
    empty = [{"index": 0, "delta": {"content": None}, "finish_reason": None}]
    assert list(shaper.shape(chunk(choices=empty, usage=USAGE))) == []
    out = list(shaper.shape(chunk(choices=FINISH, usage=USAGE)))
    assert len(out) == 1 and "usage" not in out[0]


def test_every_chunk_keeps_the_first_id_and_created() -> None:
    shaper = StreamShaper(Endpoint.CHAT, include_usage=False)
    first = next(shaper.shape(chunk()))
    second = next(shaper.shape(chunk(id="chatcmpl-2", created=1700000009)))
    assert (second["id"], second["created"]) == (first["id"], first["created"])
    assert set(first) == {"id", "created", "model", "object", "choices"}
    assert first["choices"][0]["delta"] == {"content": "hi"}


def test_whole_chat_answer_keeps_only_openai_fields() -> None:
    raw = {
        "id": "chatcmpl-9",
        "created": 1700000000,
        "model": "gemini-1.5-flash",
        "object": "chat.completion",
        "vertex_ai_safety_ratings": [],
        "choices": [
            {
                "index": 0,
                "finish_reason": "tool_calls",
                "message": {
                    "role": "assistant",
                    "content": None,
                    "provider_specific_fields": {"x": 1},
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "f", "arguments": "{}"},
                        }
                    ],
                },
            }
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7},
    }
    shaped = shape_response(Endpoint.CHAT, raw)
    assert shaped == {
        "id": "chatcmpl-9",
        "created": 1700000000,
        "model": "gemini-1.5-flash",
        "object": "chat.completion",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "f", "arguments": "{}"},
                        }
                    ],
                },
                "logprobs": None,
                "finish_reason": "tool_calls",
            }
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7},
    }


def test_embeddings_answer_shape() -> None:
    raw = {
        "model": "text-embedding-004",
        "object": "list",
        "data": [{"object": "embedding", "index": 0, "embedding": [0.5]}],
        "usage": {"prompt_tokens": 2, "total_tokens": 2, "completion_tokens": 0},
    }
    assert shape_response(Endpoint.EMBEDDINGS, raw) == {
        "object": "list",
        "data": [{"object": "embedding", "index": 0, "embedding": [0.5]}],
        "model": "text-embedding-004",
        "usage": {"prompt_tokens": 2, "total_tokens": 2},
    }
