"""Operators may opt in to a redacted prompt excerpt on sampled access-log lines."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from gateway.observability.logs import JsonFormatter
from gateway.settings import Settings
from tests.e2e.conftest import e2e_policy
from tests.harness import GatewayServer, write_policy
from tests.upstream_server import Upstream


@pytest.fixture
def sampling_gateway(upstream: Upstream, tmp_path: Path) -> Iterator[GatewayServer]:
    settings = Settings(
        policies=write_policy(tmp_path / "policies", e2e_policy()),
        environ={"UPSTREAM_URL": upstream.url},
        reload_interval_s=0,
        log_redacted_samples=True,
        log_sample_rate=1.0,
    )
    server = GatewayServer(settings).start()
    yield server
    server.stop()


def test_sampled_line_has_redacted_excerpt_only(
    sampling_gateway: GatewayServer, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="gateway.access"):
        response = httpx.post(
            sampling_gateway.url + "/v1/chat/completions",
            json={
                "model": "echo",
                "messages": [
                    {
                        "role": "user",
                        "content": "call me at +1 415 555 0100 or mail kim@example.com",
                    }
                ],
            },
        )
        assert response.status_code == 200
    lines = [
        orjson.loads(JsonFormatter().format(r))
        for r in caplog.records
        if r.name == "gateway.access"
    ]
    assert len(lines) == 1
    sample = lines[0]["prompt_sample_redacted"]
    assert "kim@example.com" not in sample and "555 0100" not in sample
    assert "[EMAIL_1]" in sample and "[PHONE_1]" in sample
    assert "echo:" not in caplog.text, "completion text is never logged"
