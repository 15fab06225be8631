"""With keys configured, every /v1/* and /gateway/* route needs one; probes and metrics stay open.
And one key cannot hold more than its share of requests in flight (429 + Retry-After)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gateway.settings import Settings
from tests.e2e.conftest import e2e_policy
from tests.e2e.test_errors import assert_openai_error
from tests.harness import GatewayServer, write_policy
from tests.upstream_server import Upstream

CHAT = {"model": "echo", "messages": [{"role": "user", "content": "hi"}]}
SLOW = {
    "model": "slow-stream",
    "stream": True,
    "messages": [{"role": "user", "content": "x"}],
}
MAX_IN_FLIGHT = 3


@pytest.fixture(scope="module")
def keyed(upstream: Upstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayServer]:
    policies = write_policy(tmp_path_factory.mktemp("policies"), e2e_policy())
    settings = Settings(
        policies=Path(policies),
        environ={"UPSTREAM_URL": upstream.url},
        reload_interval_s=0,
        key_max_in_flight=MAX_IN_FLIGHT,
    )
    server = GatewayServer(settings).start()
    yield server
    server.stop()


def new_key(gateway: GatewayServer, team: str) -> str:
    return new_key_and_id(gateway, team)[0]


def new_key_and_id(gateway: GatewayServer, team: str) -> tuple[str, str]:
    assert gateway.services is not None
    services = gateway.services
    key, record = gateway.call(services.state.keys.create_key(team))
    services.auth.forget()
    return str(key), str(record.key_id)


ROUTES = [
    ("GET", "/v1/models", None),
    ("GET", "/v1/models/echo", None),
    ("POST", "/v1/chat/completions", CHAT),
    ("POST", "/v1/completions", {"model": "echo", "prompt": "hi"}),
    ("POST", "/v1/embeddings", {"model": "echo", "input": "hi"}),
    ("POST", "/gateway/explain", CHAT),
]


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
def test_every_api_route_needs_a_key(
    keyed: GatewayServer, method: str, path: str, body: object
) -> None:
    key = new_key(keyed, "t")
    without = httpx.request(method, keyed.url + path, json=body, timeout=10)
    assert_openai_error(without, 401, "missing_api_key")
    wrong = httpx.request(
        method, keyed.url + path, json=body, headers={"authorization": "Bearer sk-nope"}, timeout=10
    )
    assert_openai_error(wrong, 401)
    right = httpx.request(
        method, keyed.url + path, json=body, headers={"authorization": f"Bearer {key}"}, timeout=10
    )
    assert right.status_code == 200, right.text


def test_spend_needs_the_admin_key(keyed: GatewayServer) -> None:
    key = new_key(keyed, "t")
    response = httpx.get(
        keyed.url + "/gateway/spend", headers={"authorization": f"Bearer {key}"}, timeout=10
    )
    assert response.status_code in (401, 403)
    assert_openai_error(response, response.status_code)


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics"])
def test_probes_and_metrics_stay_open(keyed: GatewayServer, path: str) -> None:
    new_key(keyed, "t")
    assert httpx.get(keyed.url + path, timeout=10).status_code == 200


async def _hold_streams(url: str, key: str, n: int, started: asyncio.Event) -> list[int]:
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        headers = {"authorization": f"Bearer {key}"}

        async def one() -> int:
            async with client.stream(
                "POST", "/v1/chat/completions", json=SLOW, headers=headers
            ) as response:
                started.set()
                async for _ in response.aiter_bytes():
                    pass
                return response.status_code

        return list(await asyncio.gather(*(one() for _ in range(n))))


def test_a_key_past_its_requests_in_flight_gets_a_429_and_others_are_served(
    keyed: GatewayServer,
) -> None:
    (busy, busy_id), other = new_key_and_id(keyed, "busy"), new_key(keyed, "other")

    async def scenario() -> tuple[list[int], httpx.Response, httpx.Response, httpx.Response]:
        started = asyncio.Event()
        holding = asyncio.create_task(_hold_streams(keyed.url, busy, MAX_IN_FLIGHT, started))
        await started.wait()
        await asyncio.sleep(0.3)  # every stream under way
        async with httpx.AsyncClient(base_url=keyed.url, timeout=10) as client:
            refused = await client.post(
                "/v1/chat/completions", json=CHAT, headers={"authorization": f"Bearer {busy}"}
            )
            served = await client.post(
                "/v1/chat/completions", json=CHAT, headers={"authorization": f"Bearer {other}"}
            )
            statuses = await holding
            after = await client.post(
                "/v1/chat/completions", json=CHAT, headers={"authorization": f"Bearer {busy}"}
            )
        return statuses, refused, served, after

    statuses, refused, served, after = asyncio.run(scenario())
    assert statuses == [200] * MAX_IN_FLIGHT
    error = assert_openai_error(refused, 429, "too_many_requests_in_flight")
    assert "GATEWAY_KEY_MAX_IN_FLIGHT" in str(error["message"])
    assert refused.headers["retry-after"] == "1"
    assert served.status_code == 200
    assert after.status_code == 200  # the slots came back when the streams ended
    assert keyed.services is not None
    assert keyed.services.in_flight.count(busy_id) == 0
