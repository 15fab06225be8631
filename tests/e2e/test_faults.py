"""Upstream faults: refused, hanging, 5xx, 429, dropped mid-stream; fallbacks and breakers."""

from __future__ import annotations

import time
from typing import Any

import httpx
import openai
import orjson
import pytest

from tests.harness import GatewayServer
from tests.upstream_server import Upstream

USER = [{"role": "user", "content": "ping"}]


def test_5xx_falls_back_to_next_target(client: Any) -> None:
    raw = client.chat.completions.with_raw_response.create(model="fallback-500", messages=USER)
    assert raw.headers["x-gateway-target"] == "echo"
    assert raw.headers["x-gateway-attempts"] == "2"


def test_connection_refused_falls_back(client: Any) -> None:
    raw = client.chat.completions.with_raw_response.create(model="fallback-refused", messages=USER)
    assert raw.headers["x-gateway-target"] == "echo"


def test_hang_times_out_on_first_byte_and_falls_back(client: Any) -> None:
    started = time.perf_counter()
    raw = client.chat.completions.with_raw_response.create(model="fallback-hang", messages=USER)
    assert raw.headers["x-gateway-target"] == "echo"
    assert time.perf_counter() - started < 2.5


def test_hang_in_stream_falls_back_before_first_byte(client: Any) -> None:
    chunks = list(client.chat.completions.create(model="fallback-hang", messages=USER, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "echo: ping"


def test_missing_key_target_is_skipped(client: Any) -> None:
    raw = client.chat.completions.with_raw_response.create(model="fallback-nokey", messages=USER)
    assert raw.headers["x-gateway-target"] == "echo"


def test_not_openai_format_falls_back(client: Any) -> None:
    raw = client.chat.completions.with_raw_response.create(model="fallback-not-json", messages=USER)
    assert raw.headers["x-gateway-target"] == "echo"


def test_retries_same_target_with_backoff(client: Any, upstream: Upstream) -> None:
    before = sum(1 for r in upstream.requests if r["body"].get("model") == "flaky:2")
    raw = client.chat.completions.with_raw_response.create(model="flaky", messages=USER)
    assert raw.headers["x-gateway-target"] == "flaky"
    assert raw.headers["x-gateway-attempts"] == "3"
    after = sum(1 for r in upstream.requests if r["body"].get("model") == "flaky:2")
    assert after - before == 3


def test_429_reaches_client_with_retry_after_and_sdk_retries(
    gateway: GatewayServer, upstream: Upstream
) -> None:
    response = httpx.post(
        gateway.url + "/v1/chat/completions", json={"model": "status-429", "messages": USER}
    )
    assert response.status_code == 429
    assert response.headers["retry-after"]
    before = sum(1 for r in upstream.requests if r["body"].get("model") == "status:429")
    sdk = openai.OpenAI(
        base_url=gateway.url + "/v1", api_key="x", max_retries=2, _strict_response_validation=True
    )
    with pytest.raises(openai.RateLimitError):
        sdk.chat.completions.create(model="status-429", messages=USER)
    after = sum(1 for r in upstream.requests if r["body"].get("model") == "status:429")
    assert after - before == 3, "the SDK retried twice after the first 429"


def test_503_upstream_and_sdk_retry(gateway: GatewayServer, upstream: Upstream) -> None:
    before = sum(1 for r in upstream.requests if r["body"].get("model") == "status:503")
    sdk = openai.OpenAI(
        base_url=gateway.url + "/v1", api_key="x", max_retries=1, _strict_response_validation=True
    )
    with pytest.raises(openai.APIStatusError) as caught:
        sdk.chat.completions.create(model="status-503", messages=USER)
    assert caught.value.status_code == 502
    after = sum(1 for r in upstream.requests if r["body"].get("model") == "status:503")
    assert after - before == 2


def test_drop_mid_stream_ends_with_error_event_then_done(gateway: GatewayServer) -> None:
    with httpx.stream(
        "POST",
        gateway.url + "/v1/chat/completions",
        json={
            "model": "fallback-drop",
            "messages": [{"role": "user", "content": "one two three four"}],
            "stream": True,
        },
        timeout=10,
    ) as response:
        assert response.status_code == 200
        assert response.headers["x-gateway-target"] == "drop"
        events = [e for e in response.read().split(b"\n\n") if e]
    assert events[-1] == b"data: [DONE]"
    error = orjson.loads(events[-2][len(b"data: ") :])
    assert set(error["error"]) == {"message", "type", "param", "code"}
    contents = [orjson.loads(e[6:]) for e in events[:-2]]
    assert all("choices" in c for c in contents)


def test_sdk_surfaces_mid_stream_error(client: Any) -> None:
    with pytest.raises(openai.APIError):
        list(
            client.chat.completions.create(
                model="fallback-drop",
                messages=[{"role": "user", "content": "one two three"}],
                stream=True,
            )
        )


def test_circuit_breaker_opens_then_half_open_probe(
    gateway: GatewayServer, upstream: Upstream
) -> None:
    def calls() -> int:
        return sum(1 for r in upstream.requests if r["body"].get("model") == "status:500")

    start = calls()
    for _ in range(2):
        ok = httpx.post(
            gateway.url + "/v1/chat/completions",
            json={"model": "fallback-breaker", "messages": USER},
        )
        assert ok.headers["x-gateway-target"] == "echo-2"
    assert calls() - start == 2
    # open: the failing target is skipped without a call
    skipped = httpx.post(
        gateway.url + "/v1/chat/completions", json={"model": "fallback-breaker", "messages": USER}
    )
    assert skipped.headers["x-gateway-target"] == "echo-2"
    assert calls() - start == 2
    ready = httpx.get(gateway.url + "/readyz").json()
    assert ready["targets"]["breaker"]["available"] is False
    metrics = httpx.get(gateway.url + "/metrics").text
    assert 'gateway_circuit_state{target="breaker"} 2.0' in metrics
    time.sleep(1.6)
    # half-open: exactly one probe goes through, fails, and opens it again
    httpx.post(
        gateway.url + "/v1/chat/completions", json={"model": "fallback-breaker", "messages": USER}
    )
    assert calls() - start == 3
    httpx.post(
        gateway.url + "/v1/chat/completions", json={"model": "fallback-breaker", "messages": USER}
    )
    assert calls() - start == 3


def test_client_disconnect_cancels_upstream(gateway: GatewayServer, upstream: Upstream) -> None:
    """A client that gives up on a hanging stream: the gateway stops waiting too."""
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(
            gateway.url + "/v1/chat/completions",
            json={"model": "hang", "messages": USER},
            timeout=httpx.Timeout(10, read=0.2),
        )
    time.sleep(0.3)
    metrics = httpx.get(gateway.url + "/metrics").text
    assert 'outcome="cancelled"' in metrics


def test_client_leaving_mid_stream_cancels_the_upstream_stream(
    gateway: GatewayServer, upstream: Upstream
) -> None:
    request_id = "leaves-early-1"
    with httpx.stream(
        "POST",
        gateway.url + "/v1/chat/completions",
        json={"model": "slow-stream", "messages": USER, "stream": True},
        headers={"x-request-id": request_id},
        timeout=10,
    ) as response:
        assert response.status_code == 200
        # the upstream sees the gateway's own id, never the client's
        request_id = response.headers["x-gateway-request-id"]
        next(response.iter_raw())  # the stream is flowing; then the client goes away
    deadline = time.monotonic() + 3
    while request_id not in upstream.abandoned and time.monotonic() < deadline:
        time.sleep(0.05)
    # the gateway closed its upstream connection well before the 5 s stream ended
    assert request_id in upstream.abandoned
