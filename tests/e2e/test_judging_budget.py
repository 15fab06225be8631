"""Judging end to end: large bodies off the event loop, and the budget failing closed.

Gateways started from ``Settings.from_env`` with the shipped policies; only the
open model's URL points at the local upstream (no proprietary key is set, so
the proprietary targets are unavailable and a request that may go only there
is refused).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.settings import Settings
from tests.harness import GatewayServer
from tests.upstream_server import Upstream

SHIPPED = Path(__file__).resolve().parents[2] / "policies"
SSN = "078-05-1120"


def start(upstream: Upstream, **env: str) -> GatewayServer:
    settings = Settings.from_env(
        {
            "GATEWAY_POLICIES": str(SHIPPED),
            "GATEWAY_RELOAD_INTERVAL_S": "0",
            "OPEN_MODEL_BASE_URL": upstream.url,
            **env,
        }
    )
    return GatewayServer(settings).start()


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    server = Upstream().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def offloop(upstream: Upstream) -> Iterator[GatewayServer]:
    """Every body of 1 KB or more is judged in a worker thread."""
    server = start(upstream, GATEWAY_JUDGE_OFFLOOP_BYTES="1024", GATEWAY_JUDGE_BUDGET_MS="5000")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def no_time(upstream: Upstream) -> Iterator[GatewayServer]:
    """A budget no judging can meet: every request is judged restricted."""
    server = start(upstream, GATEWAY_JUDGE_BUDGET_MS="0")
    yield server
    server.stop()


def explain(gateway: GatewayServer, text: str, **headers: str) -> dict[str, Any]:
    response = httpx.post(
        gateway.url + "/gateway/explain",
        json={"model": "auto", "messages": [{"role": "user", "content": text}]},
        headers=headers,
        timeout=30,
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def test_a_large_body_judged_off_the_loop_finds_what_inline_judging_finds(
    offloop: GatewayServer,
) -> None:
    padding = "Please review the attached quarterly notes carefully. " * 4000  # ~200 KB
    found = explain(offloop, padding + f"my ssn is {SSN}")["sensitivity"]
    assert found["level"] == "restricted"
    assert "us_ssn" in found["entities"]
    clean = explain(offloop, padding)["sensitivity"]
    assert clean["level"] != "restricted"
    assert "judging_budget_exceeded" not in clean["entities"]


def test_healthz_answers_while_pathological_prompts_are_judged(offloop: GatewayServer) -> None:
    prompts = ["key" * 300_000, "1 " * 400_000, ":" * 800_000]
    errors: list[BaseException] = []

    def flood() -> None:
        try:
            for text in prompts:
                explain(offloop, text)
        except BaseException as exc:  # noqa: BLE001 - reported by the test thread
            errors.append(exc)

    flooder = threading.Thread(target=flood)
    flooder.start()
    worst = 0.0
    with httpx.Client(base_url=offloop.url, timeout=10) as client:
        while flooder.is_alive():
            started = time.perf_counter()
            assert client.get("/healthz").status_code == 200
            worst = max(worst, time.perf_counter() - started)
            time.sleep(0.02)
    flooder.join()
    assert not errors
    # generous for a loaded CI machine: inline, the first prompt alone stalled it for minutes
    assert worst < 1.0


def test_judging_past_the_budget_fails_closed(no_time: GatewayServer) -> None:
    result = explain(no_time, "What is the capital of France?")
    assert result["sensitivity"]["level"] == "restricted"
    assert "judging_budget_exceeded" in result["sensitivity"]["entities"]
    # a client cannot declare its way out of it
    declared = explain(no_time, "hello", **{"x-data-classification": "public"})
    assert declared["sensitivity"]["level"] == "restricted"


def test_a_request_past_the_budget_goes_only_to_an_open_target(
    no_time: GatewayServer, upstream: Upstream
) -> None:
    response = httpx.post(
        no_time.url + "/v1/chat/completions",
        json={"model": "auto", "messages": [{"role": "user", "content": "Write a haiku"}]},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    assert response.headers["x-gateway-target"] == "local"
