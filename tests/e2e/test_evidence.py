"""Evidence end to end: OpenTelemetry traces at a real OTLP/HTTP receiver, the
trace context passed to upstreams, JSON log lines from a real ``gateway serve``,
and the decision log it wrote verified and reported on by ``gateway audit``."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from gateway.settings import Settings
from tests.e2e.conftest import CLOUD_KEY, e2e_policy
from tests.harness import ROOT, GatewayProcess, GatewayServer, write_policy
from tests.otlp_receiver import Receiver
from tests.upstream_server import Upstream

PLANT = "PlantedValue9f3k"
SECRET = "the vault code is 88-TANGO-41 and mail dora@example.org"
CLIENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_SPAN = "00f067aa0ba902b7"
SERVER, CLIENT = 2, 3  # OTLP span kinds
ERROR = 2  # OTLP status code


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    server = Receiver().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def traced(
    upstream: Upstream, receiver: Receiver, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayServer]:
    policies = write_policy(tmp_path_factory.mktemp("policies"), e2e_policy())
    settings = Settings(
        policies=Path(policies),
        environ={"UPSTREAM_URL": upstream.url, "CLOUD_KEY": CLOUD_KEY},
        reload_interval_s=0,
        otel_traces_endpoint=receiver.url,
    )
    server = GatewayServer(settings).start()
    yield server
    server.stop()


def spans_of(receiver: Receiver, gateway: GatewayServer, trace_id: str) -> list[dict[str, Any]]:
    assert gateway.services is not None
    gateway.services.tracer.force_flush()
    return [s for s in receiver.spans if s["trace_id"] == trace_id]


def test_a_request_is_one_trace_with_every_attempt(
    traced: GatewayServer, receiver: Receiver, upstream: Upstream
) -> None:
    traceparent = f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-01"
    response = httpx.post(
        traced.url + "/v1/chat/completions",
        json={"model": "fallback-500", "messages": [{"role": "user", "content": SECRET}]},
        headers={"traceparent": traceparent},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    spans = spans_of(receiver, traced, CLIENT_TRACE)
    (root,) = [s for s in spans if s["kind"] == SERVER]
    assert root["parent_id"] == CLIENT_SPAN
    assert root["name"] == "chat fallback-500"
    attrs = root["attributes"]
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.request.model"] == "fallback-500"
    assert attrs["gen_ai.usage.input_tokens"] > 0 and attrs["gen_ai.usage.output_tokens"] > 0
    assert attrs["gateway.rule"] == "pinned" and attrs["gateway.target"] == "echo"
    assert attrs["gateway.sensitivity.level"] == "confidential"
    assert attrs["gateway.cache"] == "bypass" and attrs["gateway.attempts"] == 2
    assert attrs["gateway.cost_usd"] >= 0
    children = {s["name"]: s for s in spans if s["parent_id"] == root["span_id"]}
    assert {"gateway.decide", "gateway.cache", "chat status:500", "chat echo"} <= set(children)
    failed, served = children["chat status:500"], children["chat echo"]
    assert failed["kind"] == CLIENT and failed["status"] == ERROR
    assert failed["attributes"]["error.type"] and failed["attributes"]["gateway.attempt"] == 1
    assert served["attributes"]["gen_ai.request.model"] == "echo"
    assert served["attributes"]["gateway.target.kind"] == "open"
    # each attempt's own context went upstream with it
    sent = [r["headers"].get("traceparent") for r in upstream.requests[-2:]]
    assert sent == [f"00-{CLIENT_TRACE}-{s['span_id']}-01" for s in (failed, served)]
    # never text: no attribute holds any of the prompt
    values = orjson.dumps([s["attributes"] for s in spans]).decode()
    assert "88-TANGO" not in values and "dora@" not in values


def test_a_stream_span_ends_with_the_stream(traced: GatewayServer, receiver: Receiver) -> None:
    trace_id = "5bf92f3577b34da6a3ce929d0e0e4737"
    with httpx.stream(
        "POST",
        traced.url + "/v1/chat/completions",
        json={"model": "echo", "stream": True, "messages": [{"role": "user", "content": "hi"}]},
        headers={"traceparent": f"00-{trace_id}-{CLIENT_SPAN}-01"},
        timeout=10,
    ) as response:
        assert response.status_code == 200
        response.read()
    spans: list[dict[str, Any]] = []
    for _ in range(50):
        spans = spans_of(receiver, traced, trace_id)
        if any(s["kind"] == SERVER for s in spans):
            break
    (root,) = [s for s in spans if s["kind"] == SERVER]
    assert root["attributes"]["gateway.stream"] is True
    assert root["attributes"]["gen_ai.usage.output_tokens"] > 0


def test_gateway_serve_writes_json_lines_traces_and_a_verifiable_log(
    receiver: Receiver, tmp_path: Path
) -> None:
    log_path = tmp_path / "decisions.jsonl"
    gateway = GatewayProcess(
        "--demo",
        env={
            "GATEWAY_LOG_LEVEL": "info",
            "GATEWAY_DECISION_LOG": str(log_path),
            "GATEWAY_AUDIT_HMAC_KEY": "k-for-test",
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url.removesuffix("/v1/traces"),
            "OTEL_SERVICE_NAME": "gateway-under-test",
        },
    )
    try:
        gateway.wait_ready()
        chat = {"model": "auto", "messages": [{"role": "user", "content": SECRET}]}
        # a value planted in every place a client can put one: no log may hold it
        planted = {
            **chat,
            "messages": [{"role": "user", "name": PLANT, "content": f"hi {PLANT}"}],
            "metadata": {"ticket": PLANT},
            "user": PLANT,
            "tools": [
                {
                    "type": "function",
                    "function": {"name": "f", "description": PLANT, "parameters": {}},
                }
            ],
        }
        ok = httpx.post(
            gateway.url + "/v1/chat/completions",
            json=planted,
            headers={"x-app-note": PLANT},
            timeout=10,
        )
        assert ok.status_code == 200, ok.text
        streamed = httpx.post(
            gateway.url + "/v1/chat/completions", json={**chat, "stream": True}, timeout=10
        )
        assert streamed.status_code == 200
        bad = httpx.post(
            gateway.url + "/v1/chat/completions",
            content=b"{not json",
            headers={"content-type": "application/json"},
            timeout=10,
        )
        assert bad.status_code == 400
        unknown = httpx.post(
            gateway.url + "/v1/chat/completions", json={**chat, "model": "nope"}, timeout=10
        )
        assert unknown.status_code == 404
    finally:
        gateway.proc.terminate()  # SIGTERM: drain, close the log, export the spans
        out, err = gateway.proc.communicate(timeout=30)
    # every line the process wrote is one JSON object with the documented fields
    lines = []
    for stream in (out, err):
        for text in stream.splitlines():
            line = orjson.loads(text)
            assert isinstance(line, dict)
            assert {"ts", "level", "logger", "msg"} <= set(line), line
            lines.append(line)
    assert any(line["logger"].startswith("uvicorn") for line in lines)
    access = [line for line in lines if line["logger"] == "gateway.access"]
    assert len(access) == 4
    for line in access:
        assert line["event"] == "request" and line["request_id"] and line["trace_id"]
    assert {line["status"] for line in access} == {200, 400, 404}
    assert "88-TANGO" not in out + err and "dora@" not in out + err
    spans_text = orjson.dumps(receiver.spans).decode()
    for text in (out, err, spans_text, log_path.read_text()):
        assert PLANT not in text
        assert PLANT[:8] not in text
    # the spans of the process reached the receiver, under the same trace ids
    mine = [s for s in receiver.spans if s["service"] == "gateway-under-test"]
    assert {line["trace_id"] for line in access} <= {s["trace_id"] for s in mine}
    # the log closed on shutdown verifies, with its HMAC
    env = {
        "GATEWAY_AUDIT_HMAC_KEY": "k-for-test",
        "PATH": "",
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    }
    audit = [sys.executable, "-m", "gateway", "audit"]
    verified = subprocess.run(
        [*audit, "verify", str(log_path)], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    report = subprocess.run(
        [*audit, "report", str(log_path), "--format", "json"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert report.returncode == 0, report.stderr
    summary = orjson.loads(report.stdout)
    assert summary["total"] == 2  # the two answered requests; bad input is never decided
    assert summary["restricted_to_proprietary"]["requests"] == 0
    assert "88-TANGO" not in log_path.read_text()
