"""Target probes against a real local server: reachable, model listed, and why not in words."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from gateway.levels import Level
from gateway.targets import Kind, ProviderType, Target
from gateway.upstream.http1 import Request
from gateway.upstream.probe import Prober, ProbeState
from tests.upstream_server import free_port


class ModelServer:
    """``GET /v1/models`` answering what the test sets; counts the requests."""

    def __init__(self) -> None:
        self.models: list[str] = ["served-model"]
        self.status = 200
        self.requests: list[dict[str, str]] = []
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def _models(self, request: web.Request) -> web.Response:
        self.requests.append(dict(request.headers))
        if self.status != 200:
            return web.json_response({"error": {"message": "no"}}, status=self.status)
        return web.json_response(
            {"object": "list", "data": [{"id": m, "object": "model"} for m in self.models]}
        )

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/v1/models", self._models)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        port = free_port()
        await web.TCPSite(self.runner, "127.0.0.1", port).start()
        self.url = f"http://127.0.0.1:{port}/v1"


@pytest.fixture
async def server() -> AsyncIterator[ModelServer]:
    running = ModelServer()
    await running.start()
    yield running
    assert running.runner is not None
    await running.runner.cleanup()


@pytest.fixture
async def prober() -> AsyncIterator[Prober]:
    probes = Prober(timeout_s=2.0)
    yield probes
    await probes.aclose()


def target(base_url: str | None, **changes: Any) -> Target:
    values: dict[str, Any] = {
        "name": "local",
        "kind": Kind.OPEN,
        "provider": ProviderType.OPENAI_COMPATIBLE,
        "model": "served-model",
        "max_sensitivity": Level.RESTRICTED,
        "base_url": base_url,
    }
    values.update(changes)
    return Target(**values)


def test_a_get_request_line() -> None:
    request = Request("http://example.test:8000/v1/models", (), method="GET")
    assert request.head.startswith(b"GET /v1/models HTTP/1.1\r\nHost: example.test:8000\r\n")


async def test_listed_model_is_up(server: ModelServer, prober: Prober) -> None:
    local = target(server.url, api_key="sk-local")
    assert prober.health(local).state is ProbeState.UNKNOWN
    results = await prober.probe_all([local])
    assert results["local"].state is ProbeState.UP
    assert prober.health(local).state is ProbeState.UP
    assert server.requests[0]["Authorization"] == "Bearer sk-local"


async def test_unlisted_model_says_what_the_server_lists(
    server: ModelServer, prober: Prober
) -> None:
    server.models = ["a", "b"]
    health = (await prober.probe_all([target(server.url, model="x")]))["local"]
    assert health.state is ProbeState.DOWN
    assert health.detail == "model 'x' not listed by the server (it lists: a, b)"


async def test_ollama_latest_tag_counts_as_listed(server: ModelServer, prober: Prober) -> None:
    server.models = ["llama3:latest"]
    health = (await prober.probe_all([target(server.url, model="llama3")]))["local"]
    assert health.state is ProbeState.UP


async def test_connection_refused_in_words(prober: Prober) -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    health = (await prober.probe_all([target(url)]))["local"]
    assert health.state is ProbeState.DOWN
    assert health.detail == f"connection refused at {url}"


async def test_statuses(server: ModelServer, prober: Prober) -> None:
    server.status = 404  # a server without a model list is reachable, the model unchecked
    assert (await prober.probe_all([target(server.url)]))["local"].state is ProbeState.UP
    server.status = 401
    health = (await prober.probe_all([target(server.url)]))["local"]
    assert health.down and "refused the gateway's credentials (HTTP 401" in (health.detail or "")
    server.status = 500
    health = (await prober.probe_all([target(server.url)]))["local"]
    assert health.down and health.detail == f"HTTP 500 from GET {server.url}/models"


async def test_one_request_per_server_and_key(server: ModelServer, prober: Prober) -> None:
    server.models = ["m1", "m2"]
    targets = [
        target(server.url, name="one", model="m1"),
        target(server.url, name="two", model="m2"),
    ]
    results = await prober.probe_all(targets)
    assert {r.state for r in results.values()} == {ProbeState.UP}
    assert len(server.requests) == 1


async def test_targets_that_are_not_called(prober: Prober) -> None:
    unset = target("http://127.0.0.1:1/v1", unavailable_reason="OPENAI_API_KEY is not set")
    simulated = target(None, name="sim", provider=ProviderType.SIMULATED)
    litellm = target(
        None, name="claude", provider=ProviderType.LITELLM, litellm_provider="anthropic"
    )
    results = await prober.probe_all([unset, simulated, litellm])
    assert results["local"].state is ProbeState.DOWN
    assert results["local"].detail == "OPENAI_API_KEY is not set"
    assert results["sim"].state is ProbeState.UP
    assert results["claude"].state is ProbeState.NOT_PROBED


async def test_going_down_and_up_is_logged_once_each(
    server: ModelServer, prober: Prober, caplog: pytest.LogCaptureFixture
) -> None:
    local = target(server.url)
    with caplog.at_level(logging.INFO, logger="gateway.upstream"):
        await prober.probe_all([local])
        server.status = 500
        await prober.probe_all([local])
        await prober.probe_all([local])
        server.status = 200
        await prober.probe_all([local])
    messages = [r.getMessage() for r in caplog.records]
    assert messages == [
        f"target local is down: HTTP 500 from GET {server.url}/models",
        "target local is up again: model 'served-model' listed",
    ]


async def test_a_changed_target_is_probed_afresh(server: ModelServer, prober: Prober) -> None:
    await prober.probe_all([target(server.url)])
    moved = target(f"http://127.0.0.1:{free_port()}/v1")
    assert prober.health(moved).state is ProbeState.UNKNOWN
