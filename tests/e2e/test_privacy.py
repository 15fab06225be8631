"""Issue 19 end to end: nothing reaches the proprietary API that the gateway did not judge.

The gateway runs the way a user runs it (``create_app(Settings.from_env(...))``
over a real socket, the shipped ``policies/``), with two real recording
upstreams: one plays the self-hosted open model (``OPEN_MODEL_BASE_URL``), one
plays OpenAI (``OPENAI_BASE_URL``, ``OPENAI_API_KEY``). A corpus plants a key,
an email, an SSN or a token in every field of every endpoint, plainly and in
every obfuscation the issue lists, and sends each request both as a chat task
(the policy keeps sensitive data local) and as a code task (the policy redacts
and sends to OpenAI). OpenAI's log must never hold a planted value: not
literally, not any 8-character piece, not after normalisation.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import orjson
import pytest

from gateway.judging.fold import fold
from gateway.judging.walk import walk
from gateway.settings import Settings
from tests.harness import ROOT, GatewayServer
from tests.upstream_server import Upstream

OPENAI_KEY = "sk-test-openai-0123456789abcdef"
VALUES = {
    "aws": "AKIAZ7QX3MPLW9RT2KVB",
    "email": "ada.lovelace@example.com",
    "ssn": "078-05-1120",
    "github": "ghp_R8x2Kq9LmZ4vT7wN3pY6sD1fH5jB0cXeGaUo",
}
CARD = "4111111111111111"


@pytest.fixture(scope="module")
def clouds() -> Iterator[tuple[Upstream, Upstream, GatewayServer]]:
    open_model, openai = Upstream().start(), Upstream().start()
    settings = Settings.from_env(
        {
            "GATEWAY_POLICIES": str(ROOT / "policies"),
            "OPEN_MODEL_BASE_URL": open_model.url,
            "OPENAI_BASE_URL": openai.url,
            "OPENAI_API_KEY": OPENAI_KEY,
        }
    )
    gateway = GatewayServer(settings).start()
    try:
        yield open_model, openai, gateway
    finally:
        gateway.stop()
        open_model.stop()
        openai.stop()


# --- the obfuscations ------------------------------------------------------------

Obfuscation = Callable[[str], str]


def b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


OBFUSCATIONS: dict[str, Obfuscation] = {
    "plain": lambda s: s,
    "zero-width": lambda s: "\u200b".join(s[i : i + 3] for i in range(0, len(s), 3)),
    "soft-hyphen": lambda s: "\u00ad".join(s[i : i + 4] for i in range(0, len(s), 4)),
    "homoglyph": lambda s: s.replace("A", "\u0410").replace("a", "\u0430").replace("e", "\u0435"),
    "full-width": lambda s: "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in s),
    "nul": lambda s: s[:4] + "\x00" + s[4:],
    "nul-escape": lambda s: s[:4] + "\\u0000" + s[4:],
    "base64": b64,
    "hex": lambda s: s.encode().hex(),
    "percent": lambda s: "".join(f"%{ord(c):02X}" if c in "@.-_" else c for c in s),
    "glued": lambda s: "mykeyis" + s,
    "data-uri": lambda s: "data:text/plain;base64," + b64(s),
}


# --- where a value can hide -------------------------------------------------------


def user(content: Any, **extra: Any) -> dict[str, Any]:
    return {"role": "user", "content": content, **extra}


def chat(*messages: dict[str, Any], **extra: Any) -> tuple[str, dict[str, Any]]:
    body = {"model": "gpt-4o", "messages": list(messages) or [user("hello")], **extra}
    return "/v1/chat/completions", body


def tool(**function: Any) -> list[dict[str, Any]]:
    return [{"type": "function", "function": {"name": "lookup", **function}}]


def placements(v: str) -> list[tuple[str, dict[str, Any]]]:
    """One request per field of every endpoint, with ``v`` in that field."""
    call = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    return [
        chat(user(f"please look at {v}")),
        chat(user([{"type": "text", "text": f"see {v}"}])),
        chat(user([{"type": "TEXT", "text": v}])),
        chat(user([{"type": "text", "text": [v]}])),
        chat(user([{"type": "input_text", "text": v}])),
        chat(user("hi", name=v)),
        chat(user("hi", x_vendor={"note": v})),
        chat({"role": "system", "content": v}, user("hi")),
        chat({"role": "developer", "content": [{"type": "text", "text": v}]}, user("hi")),
        chat(user("hi"), {"role": "assistant", "content": None, "refusal": v}),
        chat(
            user("hi"),
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": v, "content": "ok"},
        ),
        chat(
            user("hi"),
            {
                "role": "assistant",
                "tool_calls": [{**call, "function": {"name": "f", "arguments": f'{{"k": "{v}"}}'}}],
            },
        ),
        chat(
            user("hi"),
            {
                "role": "assistant",
                "tool_calls": [{**call, "function": {"name": "f", "arguments": {"k": v}}}],
            },
        ),
        chat(user("hi"), {"role": "assistant", "function_call": {"name": "f", "arguments": v}}),
        chat(user("hi"), tools=tool(description=f"calls {v}")),
        chat(
            user("hi"),
            tools=tool(
                parameters={"type": "object", "properties": {"q": {"type": "string", "default": v}}}
            ),
        ),
        chat(
            user("hi"),
            tools=tool(
                parameters={"type": "object", "properties": {"q": {"enum": [v], "examples": [v]}}}
            ),
        ),
        chat(
            user("hi"),
            tools=tool(parameters={"type": "object", "properties": {v: {"type": "string"}}}),
        ),
        chat(user("hi"), functions=[{"name": "f", "description": v}]),
        chat(
            user("hi"),
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "s", "schema": {"description": v}},
            },
        ),
        chat(user("hi"), stop=[v]),
        chat(user("hi"), stop=v),
        chat(user("hi"), metadata={"ticket": v}),
        chat(user("hi"), metadata={v: "1"}),
        chat(user("hi"), user=v),
        chat(user("hi"), stream_options={"include_usage": True, "extra": v}),
        chat(user("hi"), prediction={"type": "content", "content": v}),
        chat(user("hi"), x_unknown_field=v),
        chat(user("hi"), x_unknown={"deep": [{"deeper": {"deepest": v}}]}),
        chat(
            user([{"type": "image_url", "image_url": {"url": f"https://img.example/a.png?k={v}"}}])
        ),
        chat(
            user([{"type": "image_url", "image_url": {"url": "data:text/plain;base64," + b64(v)}}])
        ),
        chat(user([{"type": "file", "file": {"filename": v, "file_data": b64(v)}}])),
        chat(user([{"type": "input_audio", "input_audio": {"data": b64(v), "format": "wav"}}])),
        chat(user(f"part one {v[:7]}"), user(f"{v[7:]} part two")),
        chat(user([{"type": "text", "text": v[:9]}, {"type": "text", "text": v[9:]}])),
        chat(user("hi"), stream=True, x_note=v),
        ("/v1/completions", {"model": "gpt-4o", "prompt": f"complete {v}"}),
        ("/v1/completions", {"model": "gpt-4o", "prompt": ["a", v]}),
        ("/v1/completions", {"model": "gpt-4o", "prompt": [[v]]}),
        ("/v1/completions", {"model": "gpt-4o", "prompt": "a", "suffix": v}),
        ("/v1/completions", {"model": "gpt-4o", "prompt": "a", "x_extra": {"k": v}}),
        ("/v1/embeddings", {"model": "text-embedding-3-small", "input": v}),
        ("/v1/embeddings", {"model": "text-embedding-3-small", "input": ["a", v]}),
        ("/v1/embeddings", {"model": "text-embedding-3-small", "input": "a", "user": v}),
    ]


def corpus() -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(the value that must not leave, path, body)."""
    for value in VALUES.values():
        for path, body in placements(value):
            yield value, path, body
    for obfuscate in OBFUSCATIONS.values():
        for value in (VALUES["aws"], VALUES["email"]):
            for path, body in placements(obfuscate(value))[:8]:
                yield value, path, body
    for card in ("4111.1111.1111.1111", "4111  1111  1111  1111", "4111_1111_1111_1111"):
        for path, body in placements(card)[:6]:
            yield CARD, path, body


# --- what OpenAI saw ----------------------------------------------------------------


def readings(record: dict[str, Any]) -> list[str]:
    """The request as the proprietary upstream got it, and every string of it normalised."""
    raw = record["raw"].decode("utf-8", "replace")
    out = [raw, orjson.dumps(record["body"]).decode()]
    for text in walk(record["body"]).strings:
        folded = fold(text)
        out.append(folded.text if folded is not None else text)
        out.append("".join(ch for ch in text if ch.isdigit()))
    return out


def leaks(value: str, text: str) -> bool:
    return value in text or any(value[i : i + 8] in text for i in range(len(value) - 7))


def test_no_planted_value_reaches_the_proprietary_api(
    clouds: tuple[Upstream, Upstream, GatewayServer],
) -> None:
    open_model, openai, gateway = clouds
    statuses: dict[int, int] = {}
    with httpx.Client(base_url=gateway.url, timeout=20) as client:
        # the control: without a planted value, these requests do go to OpenAI
        for task in ("chat", "code"):
            answer = client.post(
                "/v1/chat/completions",
                content=orjson.dumps(chat(user("hello there"))[1]),
                headers={"content-type": "application/json", "x-gateway-task": task},
            )
            assert answer.status_code == 200, answer.text
            assert answer.headers["x-gateway-target"] == "openai-gpt-4o"
        sent = 0
        for value, path, body in corpus():
            for task in ("chat", "code"):
                before = len(openai.requests)
                answer = client.post(
                    path,
                    content=orjson.dumps(body),
                    headers={"content-type": "application/json", "x-gateway-task": task},
                )
                statuses[answer.status_code] = statuses.get(answer.status_code, 0) + 1
                assert answer.status_code < 500, (answer.status_code, answer.text, body)
                for record in openai.requests[before:]:
                    for text in readings(record):
                        assert not leaks(value, text), (value, task, body, record["body"])
                sent += 1
    assert sent > 500
    # the corpus exercised every way: kept local, redacted to OpenAI, refused
    assert len(open_model.requests) > 100
    assert len(openai.requests) > 20
    assert statuses.get(200, 0) > 300


def test_token_ids_never_reach_the_proprietary_api(
    clouds: tuple[Upstream, Upstream, GatewayServer],
) -> None:
    _, openai, gateway = clouds
    bodies = [
        ("/v1/completions", {"model": "gpt-4o", "prompt": [9906, 1917, 15339]}),
        ("/v1/completions", {"model": "gpt-4o", "prompt": [[9906, 1917], [15339]]}),
        ("/v1/embeddings", {"model": "text-embedding-3-small", "input": [9906, 1917]}),
        chat(
            user(
                [
                    {
                        "type": "input_audio",
                        "input_audio": {
                            "data": "UklGRiQAAABXQVZFZm10IBAAAAABAAEA",
                            "format": "wav",
                        },
                    }
                ]
            )
        ),
        chat(
            user(
                [
                    {
                        "type": "image_url",
                        "image_url": {"url": "https://img.example/a.png?X-Amz-Signature=abc"},
                    }
                ]
            )
        ),
    ]
    with httpx.Client(base_url=gateway.url, timeout=20) as client:
        for path, body in bodies:
            for task in ("chat", "code"):
                before = len(openai.requests)
                answer = client.post(
                    path,
                    content=orjson.dumps(body),
                    headers={"content-type": "application/json", "x-gateway-task": task},
                )
                assert answer.status_code in (200, 403), answer.text
                for record in openai.requests[before:]:
                    sent = orjson.dumps(record["body"]).decode()
                    assert "9906" not in sent and "UklGRiQ" not in sent and "Signature" not in sent


def test_a_large_body_is_redacted_off_the_event_loop_as_well(
    clouds: tuple[Upstream, Upstream, GatewayServer],
) -> None:
    """A body past the off-loop threshold under the shipped redaction rule (an
    email in a code question): redacted in the judging threads, restored in the
    answer, and the address never reaches OpenAI."""
    _, openai, gateway = clouds
    email = "kim.offloop@example.com"
    filler = "def f(x):\n    return x + 1\n" * 4000  # ~100 KB, past the 64 KB threshold
    body = chat(user(f"fix this code and mail {email}:\n{filler}"))[1]
    before = len(openai.requests)
    answer = httpx.post(
        gateway.url + "/v1/chat/completions",
        content=orjson.dumps(body),
        headers={"content-type": "application/json", "x-gateway-task": "code"},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["x-gateway-target"] == "openai-gpt-4o"
    sent = openai.requests[before:]
    assert sent and all(email not in str(record["body"]) for record in sent)
    assert email in answer.json()["choices"][0]["message"]["content"]  # restored
