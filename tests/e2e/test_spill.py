"""Local first, spill only what may leave: ``gateway serve`` with the shipped
policies and ``OPEN_MODEL_MAX_IN_FLIGHT`` set, in front of a vLLM-like open
model (a real local server with a concurrency limit and vLLM's /metrics) and
a local server speaking OpenAI's wire format as the proprietary API.

* clean chat overflows to the proprietary model at once, and the answer says
  so (``x-gateway-spill``);
* confidential chat never leaves: it waits in the bounded queue, and past
  ``max_wait_ms`` it is refused with 429 and ``Retry-After`` in OpenAI's
  error shape; the decision log records "refused for capacity" and
  ``gateway audit report`` counts it;
* ``/gateway/explain`` shows the load it decided on, the server's own load
  included; ``/metrics`` counts spills, refusals and queue waits;
* two replicas on one real Redis share ``OPEN_MODEL_SHARED_MAX_IN_FLIGHT``:
  the open model never runs more than that many of their requests at once.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.harness import ROOT, GatewayProcess
from tests.servers import RedisServer
from tests.upstream_server import Upstream

OPENAI_KEY = "sk-test-spill-0000000000000000"
EMAIL = "jane.doe@example.com"
WORK_MS = 800
MAX_WAIT_MS = 1200


def chat(url: str, text: str, task: str = "chat") -> httpx.Response:
    return httpx.post(
        url + "/v1/chat/completions",
        json={"model": "auto", "messages": [{"role": "user", "content": text}]},
        headers={"x-gateway-task": task},
        timeout=30,
    )


def burst(url: str, texts: list[str]) -> list[httpx.Response]:
    with ThreadPoolExecutor(len(texts)) as pool:
        return list(pool.map(lambda t: chat(url, t), texts))


@pytest.fixture(scope="module")
def stack() -> Iterator[tuple[Upstream, Upstream, GatewayProcess, Path]]:
    open_model = Upstream(max_concurrency=8, work_ms=WORK_MS).start()
    openai = Upstream().start()
    log = Path(tempfile.mkdtemp()) / "decisions.jsonl"
    gateway = GatewayProcess(
        env={
            "GATEWAY_POLICIES": str(ROOT / "policies"),
            "OPEN_MODEL_BASE_URL": open_model.url,
            "OPEN_MODEL_MAX_IN_FLIGHT": "2",
            "OPEN_MODEL_MAX_WAIT_MS": str(MAX_WAIT_MS),
            "OPEN_MODEL_METRICS_URL": open_model.url.removesuffix("/v1") + "/metrics",
            "GATEWAY_LOAD_INTERVAL_S": "0.1",
            "OPENAI_BASE_URL": openai.url,
            "OPENAI_API_KEY": OPENAI_KEY,
            "GATEWAY_DECISION_LOG": str(log),
            "GATEWAY_RELOAD_INTERVAL_S": "0",
        }
    )
    try:
        gateway.wait_ready()
        yield open_model, openai, gateway, log
    finally:
        gateway.stop()
        open_model.stop()
        openai.stop()


def test_clean_chat_spills_to_the_proprietary_model_at_once(
    stack: tuple[Upstream, Upstream, GatewayProcess, Path],
) -> None:
    open_model, openai, gateway, _ = stack
    before = len(openai.requests)
    started = time.perf_counter()
    answers = burst(gateway.url, [f"tell me a fun fact number {i}" for i in range(6)])
    elapsed = time.perf_counter() - started
    assert [a.status_code for a in answers] == [200] * 6
    targets = sorted(a.headers["x-gateway-target"] for a in answers)
    assert targets == ["local"] * 2 + ["openai-gpt-4o-mini"] * 4
    for answer in answers:
        assert answer.headers["x-gateway-rule"] == "open-first-tasks"
        spilled = answer.headers.get("x-gateway-spill")
        if answer.headers["x-gateway-target"] == "local":
            assert spilled is None
        else:
            assert spilled == "local->openai-gpt-4o-mini"
    assert len(openai.requests) - before == 4
    # nobody waited for the open model: the spilled ones answered at once
    assert elapsed < WORK_MS / 1000 + 1.0
    assert open_model.peak_running <= 2


def test_confidential_chat_waits_then_is_refused_and_never_leaves(
    stack: tuple[Upstream, Upstream, GatewayProcess, Path],
) -> None:
    open_model, openai, gateway, log = stack
    before = len(openai.requests)
    texts = [f"please reword this note for {EMAIL}, version {i}" for i in range(6)]
    started = time.perf_counter()
    answers = burst(gateway.url, texts)
    elapsed = time.perf_counter() - started
    codes = sorted(a.status_code for a in answers)
    # two at once, two after waiting one answer's time, two past the wait: refused
    assert codes == [200] * 4 + [429] * 2, [(a.status_code, a.text[:200]) for a in answers]
    for answer in answers:
        assert answer.headers["x-gateway-rule"] == "confidential-stays-local"
        if answer.status_code == 200:
            assert answer.headers["x-gateway-target"] == "local"
            continue
        assert answer.headers["retry-after"] == "2"
        error = answer.json()["error"]
        assert error["type"] == "rate_limit_exceeded" and error["code"] == "target_at_capacity"
        assert "local" in error["message"] and EMAIL not in error["message"]
        assert "x-gateway-spill" not in answer.headers
    assert elapsed < 2 * WORK_MS / 1000 + 1.5
    # none of it reached the proprietary API
    assert len(openai.requests) == before
    assert all(EMAIL not in r["raw"].decode() for r in openai.requests)
    assert open_model.peak_running <= 2

    metrics = httpx.get(gateway.url + "/metrics").text
    assert 'gateway_capacity_refusals_total{level="confidential"} 2.0' in metrics
    assert 'gateway_spills_total{from_target="local",to_target="openai-gpt-4o-mini"} 4.0' in metrics
    assert 'gateway_target_max_in_flight{target="local"} 2.0' in metrics
    waits = [
        line
        for line in metrics.splitlines()
        if line.startswith("gateway_target_queue_wait_seconds_count")
    ]
    assert waits and float(waits[0].split()[-1]) >= 8  # every request at local, refused ones too

    # the decision log says "refused for capacity", and the audit report counts it
    deadline = time.monotonic() + 5
    records: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        records = [orjson.loads(line) for line in log.read_bytes().splitlines() if line.strip()]
        if sum(1 for r in records if r.get("outcome", {}).get("outcome") == "capacity") >= 2:
            break
        time.sleep(0.1)
    refused = [r for r in records if r.get("outcome", {}).get("outcome") == "capacity"]
    assert len(refused) == 2 and {r["level"] for r in refused} == {"confidential"}
    assert all(r["load"]["local"]["max_in_flight"] == 2 for r in refused)
    report = subprocess.run(
        [sys.executable, "-m", "gateway", "audit", "report", str(log), "--format", "json"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    assert "refused_capacity" in report.stdout


def test_explain_shows_the_load_it_decided_on(
    stack: tuple[Upstream, Upstream, GatewayProcess, Path],
) -> None:
    _, _, gateway, _ = stack
    with ThreadPoolExecutor(3) as pool:
        busy = [
            pool.submit(chat, gateway.url, f"a slow summary {i}", "summarization") for i in range(2)
        ]
        time.sleep(0.4)  # both local slots are taken and the server's /metrics was read
        explained = httpx.post(
            gateway.url + "/gateway/explain",
            json={"model": "auto", "messages": [{"role": "user", "content": "hello there"}]},
            headers={"x-gateway-task": "chat"},
        ).json()
        for future in busy:
            assert future.result().status_code == 200
    assert explained["rule"] == "open-first-tasks"
    assert explained["targets"] == ["openai-gpt-4o-mini", "local"]
    load = explained["load"]["local"]
    assert load["in_flight"] == 2 and load["max_in_flight"] == 2 and load["saturated"]
    assert load["server"] == "vllm" and load["server_running"] == 2
    assert explained["spill"] == {"saturated": ["local"], "first": "openai-gpt-4o-mini"}
    ready = httpx.get(gateway.url + "/readyz").json()["targets"]
    assert ready["local"]["load"]["max_in_flight"] == 2
    assert ready["local"]["load"]["server"] == "vllm"
    assert ready["openai-gpt-4o-mini"]["load"] is None  # not tracked


# --- two replicas, one shared limit -------------------------------------------------------


def test_two_replicas_share_the_open_models_capacity_through_redis() -> None:
    open_model = Upstream(max_concurrency=16, work_ms=WORK_MS).start()
    openai = Upstream().start()
    redis = RedisServer()
    redis.start()
    env = {
        "GATEWAY_POLICIES": str(ROOT / "policies"),
        "GATEWAY_REDIS_URL": redis.url,
        # generous: this test is about sharing the limit, not about a slow Redis (fail open)
        "GATEWAY_REDIS_TIMEOUT_S": "1",
        "OPEN_MODEL_BASE_URL": open_model.url,
        "OPEN_MODEL_SHARED_MAX_IN_FLIGHT": "3",
        "OPENAI_BASE_URL": openai.url,
        "OPENAI_API_KEY": OPENAI_KEY,
        "GATEWAY_RELOAD_INTERVAL_S": "0",
    }
    replicas = [GatewayProcess(env=env), GatewayProcess(env=env)]
    try:
        for replica in replicas:
            replica.wait_ready()
        with ThreadPoolExecutor(8) as pool:
            futures = [
                pool.submit(chat, replicas[i % 2].url, f"short story idea {i}") for i in range(8)
            ]
            answers = [f.result() for f in futures]
        assert [a.status_code for a in answers] == [200] * 8
        local = [a for a in answers if a.headers["x-gateway-target"] == "local"]
        assert len(local) == 3, [a.headers["x-gateway-target"] for a in answers]
        assert open_model.peak_running == 3
        assert all(
            a.headers["x-gateway-spill"] == "local->openai-gpt-4o-mini"
            for a in answers
            if a.headers["x-gateway-target"] != "local"
        )
    finally:
        for replica in replicas:
            replica.stop()
        redis.close()
        open_model.stop()
        openai.stop()
