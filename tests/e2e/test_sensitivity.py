"""Invariant 1 end to end: data never reaches a target above its max_sensitivity."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest

from tests.e2e.conftest import CLOUD_KEY
from tests.harness import GatewayServer
from tests.upstream_server import Upstream

SSN = "078-05-1120"
EMAIL = "ada.lovelace@example.com"


def cloud_bodies(upstream: Upstream) -> list[str]:
    return [
        str(r["body"])
        for r in upstream.requests
        if r["headers"].get("Authorization") == f"Bearer {CLOUD_KEY}"
    ]


def test_restricted_data_skips_proprietary_fallback(client: Any, upstream: Upstream) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="cloud-then-echo", messages=[{"role": "user", "content": f"my ssn is {SSN}"}]
    )
    assert raw.headers["x-gateway-target"] == "echo"
    assert not any(SSN in body for body in cloud_bodies(upstream))


def test_restricted_data_to_proprietary_only_fails_closed(client: Any, upstream: Upstream) -> None:
    before = len(upstream.requests)
    with pytest.raises(openai.PermissionDeniedError) as caught:
        client.chat.completions.create(
            model="cloud", messages=[{"role": "user", "content": f"ssn {SSN}"}]
        )
    assert caught.value.status_code == 403
    assert SSN not in caught.value.message
    assert len(upstream.requests) == before


def test_declared_classification_raises_the_level(client: Any, upstream: Upstream) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="cloud-then-echo",
        messages=[{"role": "user", "content": "quarterly plan"}],
        extra_headers={"x-data-classification": "restricted"},
    )
    assert raw.headers["x-gateway-target"] == "echo"


def test_bad_classification_header_is_400(gateway: GatewayServer) -> None:
    response = httpx.post(
        gateway.url + "/v1/chat/completions",
        json={"model": "echo", "messages": [{"role": "user", "content": "x"}]},
        headers={"x-data-classification": "top-secret"},
    )
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_redacted_then_restored_non_streaming(client: Any, upstream: Upstream) -> None:
    answer = client.chat.completions.create(
        model="redact-cloud", messages=[{"role": "user", "content": f"write to {EMAIL} please"}]
    )
    sent = upstream.requests[-1]
    assert sent["headers"]["Authorization"] == f"Bearer {CLOUD_KEY}"
    assert EMAIL not in str(sent["body"])
    assert "[EMAIL_1]" in sent["body"]["messages"][0]["content"]
    # the upstream echoed the placeholder; the gateway put the value back
    assert answer.choices[0].message.content == f"echo: write to {EMAIL} please"


def test_redacted_then_restored_streaming(client: Any, upstream: Upstream) -> None:
    chunks = list(
        client.chat.completions.create(
            model="redact-cloud",
            messages=[{"role": "user", "content": f"mail {EMAIL} and call +1 415 555 0100"}],
            stream=True,
        )
    )
    sent = str(upstream.requests[-1]["body"])
    assert EMAIL not in sent and "415 555 0100" not in sent
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == f"echo: mail {EMAIL} and call +1 415 555 0100"


def test_explain_shows_decision_without_calling_upstream(
    gateway: GatewayServer, upstream: Upstream
) -> None:
    before = len(upstream.requests)
    response = httpx.post(
        gateway.url + "/gateway/explain",
        json={
            "model": "cloud-then-echo",
            "messages": [{"role": "user", "content": f"ssn {SSN} mail {EMAIL}"}],
        },
    )
    assert response.status_code == 200
    body = response.json()
    assert body["rule"] == "pinned"
    assert body["targets"] == ["echo"]
    assert body["sensitivity"]["level"] == "restricted"
    assert set(body["sensitivity"]["entities"]) == {"us_ssn", "email"}
    assert SSN not in response.text and EMAIL not in response.text
    assert isinstance(body["trace"], list) and body["trace"]
    assert len(upstream.requests) == before
