"""``/v1/messages`` routed to an Anthropic target by the shipped policies, through
`gateway serve`, with the official ``anthropic`` SDK as the client.

The Anthropic target's upstream is the test's real local server speaking
Anthropic's Messages wire format (``ANTHROPIC_BASE_URL``), reached through
litellm's Anthropic provider exactly as api.anthropic.com would be: what only
Anthropic understands (``cache_control``, ``top_k``, ``anthropic-beta``) reaches
it; the self-hosted target gets the same request without them.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import pytest

from tests.harness import ROOT, GatewayProcess
from tests.upstream_server import Upstream

BETA = "extended-cache-ttl-2025-04-11"
SYSTEM: list[Any] = [
    {"type": "text", "text": "You are a careful assistant."},
    {"type": "text", "text": "Shared context. " * 50, "cache_control": {"type": "ephemeral"}},
]


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    server = Upstream().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, upstream: Upstream) -> Iterator[str]:
    policies = tmp_path_factory.mktemp("policies") / "policies"
    shutil.copytree(ROOT / "policies", policies)
    process = GatewayProcess(
        env={
            "GATEWAY_POLICIES": str(policies),
            "OPEN_MODEL_BASE_URL": upstream.url,
            "OPEN_MODEL_NAME": "echo",
            "ANTHROPIC_BASE_URL": upstream.url.removesuffix("/v1"),
            "ANTHROPIC_API_KEY": "sk-ant-test-0123456789abcdef",
        }
    )
    try:
        process.wait_ready()
        yield process.url
    finally:
        process.stop()


@pytest.fixture
def claude(gateway: str) -> Iterator[anthropic.Anthropic]:
    # closed after the test: an unclosed client's sockets surface later as a
    # ResourceWarning in whichever test happens to collect them
    with anthropic.Anthropic(base_url=gateway, api_key="anything", max_retries=0) as client:
        yield client


def _last(upstream: Upstream, path: str) -> dict[str, Any]:
    return next(r for r in reversed(upstream.requests) if r["path"] == path)


def test_anthropic_target_gets_cache_control_top_k_and_the_beta_header(
    claude: anthropic.Anthropic, upstream: Upstream
) -> None:
    message = claude.messages.create(
        model="claude-sonnet-4-5",
        max_tokens=200,
        extra_body={"top_k": 4},
        system=SYSTEM,
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is the capital of France?",
                     "cache_control": {"type": "ephemeral", "ttl": "1h"}}
                ],
            }
        ],
        extra_headers={"anthropic-beta": BETA},
    )  # fmt: skip
    assert message.content[0].text == "Paris is the capital of France."  # type: ignore[union-attr]
    assert message.usage.input_tokens > 0
    sent = _last(upstream, "/v1/messages")
    assert BETA in sent["headers"]["anthropic-beta"]
    assert sent["headers"]["x-api-key"] == "sk-ant-test-0123456789abcdef"
    body = sent["body"]
    assert body["model"] == "claude-sonnet-4-5" and body["top_k"] == 4
    assert body["system"][1]["cache_control"] == {"type": "ephemeral"}
    assert "cache_control" not in body["system"][0]
    part = body["messages"][0]["content"][0]
    assert part["cache_control"] == {"type": "ephemeral", "ttl": "1h"}


def test_anthropic_target_streams_anthropics_events_back(
    claude: anthropic.Anthropic, upstream: Upstream
) -> None:
    with claude.messages.stream(
        model="claude-sonnet-4-5",
        max_tokens=100,
        system=SYSTEM,
        messages=[{"role": "user", "content": "Say hello"}],
        extra_headers={"anthropic-beta": BETA},
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "Hello, world!"
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens > 0
    sent = _last(upstream, "/v1/messages")
    assert sent["body"]["stream"] is True and BETA in sent["headers"]["anthropic-beta"]


def test_other_targets_get_neither_the_markers_nor_the_headers(
    claude: anthropic.Anthropic, upstream: Upstream
) -> None:
    claude.messages.create(
        model="local",
        max_tokens=50,
        extra_body={"top_k": 4},
        system=SYSTEM,
        messages=[{"role": "user", "content": [
            {"type": "text", "text": "hello local", "cache_control": {"type": "ephemeral"}}]}],
        extra_headers={"anthropic-beta": BETA, "anthropic-version": "2023-06-01"},
    )  # fmt: skip
    sent = _last(upstream, "/v1/chat/completions")
    assert "cache_control" not in str(sent["body"])
    assert sent["body"]["top_k"] == 4  # a self-hosted server samples with it
    assert not any(name.lower().startswith("anthropic-") for name in sent["headers"])
    assert sent["body"]["messages"][0]["role"] == "system"


def test_a_header_that_does_not_parse_is_an_anthropic_shaped_400(
    claude: anthropic.Anthropic, upstream: Upstream
) -> None:
    before = len(upstream.requests)
    with pytest.raises(anthropic.BadRequestError) as caught:
        claude.messages.create(
            model="claude-sonnet-4-5",
            max_tokens=20,
            messages=[{"role": "user", "content": "hi"}],
            extra_headers={"anthropic-beta": "please forward this: sk-ant-api03-xyz"},
        )
    assert caught.value.body["type"] == "error"  # type: ignore[index]
    assert "anthropic-beta" in caught.value.message
    assert len(upstream.requests) == before


def test_a_secret_in_a_forwarded_header_is_judged(gateway: str, upstream: Upstream) -> None:
    # a value of the header's grammar that also holds a detected secret counts
    # like a secret in the body: restricted, so it never goes to Anthropic
    token = "glpat-" + "a1b2c3d4e5f6g7h8i9j0"  # GitLab token shape, lower-case
    body = {"model": "claude-sonnet-4-5", "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]}  # fmt: skip
    clean = httpx.post(
        f"{gateway}/v1/messages",
        json=body,
        headers={"anthropic-beta": "prompt-caching-2024-07-31"},
        timeout=30,
    )
    assert clean.status_code == 200 and clean.headers["x-gateway-target"] == "anthropic-sonnet"
    before = len(upstream.requests)
    tainted = httpx.post(
        f"{gateway}/v1/messages",
        json=body,
        headers={"anthropic-beta": f"{token}-2024-01-01"},
        timeout=30,
    )
    assert tainted.headers.get("x-gateway-target") != "anthropic-sonnet", tainted.text
    assert all(r["path"] != "/v1/messages" for r in upstream.requests[before:])
    assert tainted.status_code == 200 and tainted.headers["x-gateway-target"] == "local"
    assert tainted.headers["x-gateway-rule"].startswith("restricted")
