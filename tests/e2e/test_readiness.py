"""/readyz tells the truth about the shipped policies' self-hosted model.

The gateway starts the way a user starts it (``Settings.from_env`` over the
shipped policies, a real socket); only ``OPEN_MODEL_BASE_URL`` changes: it
points at nothing, at a server that lists other models, or at one that lists
the chat model but not the embeddings model.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.settings import Settings
from tests.harness import GatewayServer
from tests.upstream_server import free_port

SHIPPED = Path(__file__).resolve().parents[2] / "policies"


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a probe cut short at shutdown: not the test's business


class Models:
    """A stand-in for vLLM's ``GET /v1/models``, listing ``listed``."""

    def __init__(self, listed: list[str]) -> None:
        self.listed = listed
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = json.dumps({"object": "list", "data": [{"id": m} for m in owner.listed]})
                self.send_response(200 if self.path == "/v1/models" else 404)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body.encode())

            def log_message(self, *args: Any) -> None:
                pass

        self.server = _QuietServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def start(open_model_url: str) -> GatewayServer:
    environ = {
        "GATEWAY_POLICIES": str(SHIPPED),
        "GATEWAY_PORT": str(free_port()),
        "GATEWAY_PROBE_INTERVAL_S": "0.2",
        "GATEWAY_RELOAD_INTERVAL_S": "0",
        "OPEN_MODEL_BASE_URL": open_model_url,
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    }
    return GatewayServer(Settings.from_env(environ)).start()


def probed(gateway: GatewayServer) -> httpx.Response:
    """/readyz once every probed target has been probed."""
    deadline = time.monotonic() + 10
    while True:
        ready = httpx.get(gateway.url + "/readyz", timeout=5)
        targets = ready.json()["targets"]
        if all(t["probe"]["state"] != "unknown" for t in targets.values()):
            return ready
        assert time.monotonic() < deadline, "the targets were never probed"
        time.sleep(0.05)


@pytest.fixture
def nothing_listening() -> Iterator[GatewayServer]:
    gateway = start(f"http://127.0.0.1:{free_port()}/v1")
    yield gateway
    gateway.stop()


def test_no_open_model_running_means_not_ready(nothing_listening: GatewayServer) -> None:
    url = nothing_listening.settings.environ["OPEN_MODEL_BASE_URL"]
    ready = probed(nothing_listening)
    # the shipped policy cannot serve restricted data at all: out of the load balancer
    assert ready.status_code == 503
    body = ready.json()
    assert body["ready"] is False and body["status"] == "unavailable"
    local = body["targets"]["local"]
    assert local["available"] is False
    assert local["reason"] == f"connection refused at {url}"
    assert local["probe"]["state"] == "down"
    assert (
        f"target local (takes restricted data) is unavailable: connection refused at {url}"
        in (body["problems"])
    )
    metrics = httpx.get(nothing_listening.url + "/metrics").text
    assert (
        'gateway_target_available{kind="open",max_sensitivity="restricted",target="local"} 0.0'
        in metrics
    )
    # a proprietary target without its key says so, and is never called
    assert "OPENAI_API_KEY" in body["targets"]["openai-gpt-4o"]["reason"]
    # and a request that needs the open model says why in the same words
    chat = httpx.post(
        nothing_listening.url + "/v1/chat/completions",
        json={"model": "local", "messages": [{"role": "user", "content": "hi"}]},
        timeout=10,
    )
    assert chat.status_code in (502, 503)
    assert f"local: connection refused at {url}" in chat.json()["error"]["message"]


def test_a_server_without_the_model_says_what_it_lists() -> None:
    models = Models(["qwen2.5-7b-instruct", "BAAI/bge-small-en-v1.5"])
    gateway = start(models.url)
    try:
        ready = probed(gateway)
        body = ready.json()
        assert ready.status_code == 200, body  # the embeddings target still takes restricted data
        assert body["status"] == "degraded"
        assert body["targets"]["local"]["reason"] == (
            "model 'meta-llama/Llama-3.1-8B-Instruct' not listed by the server "
            "(it lists: qwen2.5-7b-instruct, BAAI/bge-small-en-v1.5)"
        )
        assert body["targets"]["local-embed"]["available"] is True
    finally:
        gateway.stop()
        models.close()


def test_everything_listed_is_ok() -> None:
    models = Models(["meta-llama/Llama-3.1-8B-Instruct", "BAAI/bge-small-en-v1.5"])
    gateway = start(models.url)
    try:
        ready = probed(gateway)
        body = ready.json()
        assert ready.status_code == 200
        assert body["status"] == "ok" and body["problems"] == [], body
        assert body["targets"]["local"]["probe"]["detail"] == (
            "model 'meta-llama/Llama-3.1-8B-Instruct' listed"
        )
    finally:
        gateway.stop()
        models.close()
