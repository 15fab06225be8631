"""Real recorded OpenAI streams, replayed by the upstream, come out of the gateway unchanged."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.harness import GatewayServer
from tests.upstream_server import recording_events, recording_files

RECORDINGS = recording_files()


def gateway_events(gateway: GatewayServer, model: str, include_usage: bool) -> list[bytes]:
    body: dict[str, Any] = {
        "model": model,
        "messages": [{"role": "user", "content": "x"}],
        "stream": True,
    }
    if include_usage:
        body["stream_options"] = {"include_usage": True}
    with httpx.stream(
        "POST", gateway.url + "/v1/chat/completions", json=body, timeout=10
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        raw = response.read()
    blocks = [b for b in raw.split(b"\n\n") if b]
    assert blocks[-1] == b"data: [DONE]"
    assert all(b.startswith(b"data: ") for b in blocks)
    return [b[len(b"data: ") :] for b in blocks[:-1]]


def test_recordings_are_present() -> None:
    assert len(RECORDINGS) == 12


@pytest.mark.parametrize("path", RECORDINGS, ids=lambda p: p.name[:8])
def test_replayed_stream_is_byte_identical_when_usage_asked(
    gateway: GatewayServer, path: Path
) -> None:
    assert gateway_events(gateway, f"rec-{path.name[:8]}", include_usage=True) == recording_events(
        path
    )


@pytest.mark.parametrize("path", RECORDINGS, ids=lambda p: p.name[:8])
def test_replayed_stream_without_usage_drops_only_the_usage_chunk(
    gateway: GatewayServer, path: Path
) -> None:
    expected = [e for e in recording_events(path) if orjson.loads(e).get("choices") != []]
    assert gateway_events(gateway, f"rec-{path.name[:8]}", include_usage=False) == expected


@pytest.mark.parametrize("path", RECORDINGS, ids=lambda p: p.name[:8])
def test_sdk_parses_every_replayed_stream(client: Any, path: Path) -> None:
    chunks = list(
        client.chat.completions.create(
            model=f"rec-{path.name[:8]}",
            messages=[{"role": "user", "content": "x"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[-1].usage is not None
    assert any(c.choices and c.choices[0].finish_reason for c in chunks)
