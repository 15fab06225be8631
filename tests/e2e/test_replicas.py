"""Three gateway processes on one real Redis behave as one gateway.

* a cache entry written through one replica is a hit on another;
* the (N+1)th request in a minute is refused whichever replica it hits, also
  when the replicas admit from local leases (and no leased unit is lost);
* concurrent spending across replicas never passes a budget by more than one
  request's cost;
* Redis stopped mid-test and restarted: with the default fail-open mode no
  client request fails, /readyz says "degraded", and the cache works again.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from gateway.quota.keys_admin import create_key, spend_report
from gateway.settings import Settings
from tests.e2e.conftest import CLOUD_KEY, e2e_policy
from tests.harness import GatewayProcess, write_policy
from tests.servers import RedisServer
from tests.upstream_server import Upstream

BUDGET_USD = 10.0
ADMIN_KEY = "admin-secret-for-tests"


@pytest.fixture(scope="module")
def redis() -> Iterator[RedisServer]:
    # persistent, like a production Redis: a restart keeps keys, limits and spend
    server = RedisServer(extra_args=("--appendonly", "yes", "--appendfsync", "always"))
    server.start()
    yield server
    server.close()


@pytest.fixture(scope="module")
def keys(redis: RedisServer) -> dict[str, str]:
    settings = Settings(redis_url=redis.url)
    limited, _ = asyncio.run(create_key(settings, team="limited", rpm=5))
    spender, _ = asyncio.run(
        create_key(settings, team="spenders", budget_usd=BUDGET_USD, period="day")
    )
    plain, _ = asyncio.run(create_key(settings, team="plain"))
    other, _ = asyncio.run(create_key(settings, team="other"))
    return {"limited": limited, "spender": spender, "plain": plain, "other": other}


@pytest.fixture(scope="module")
def replicas(
    upstream: Upstream,
    redis: RedisServer,
    keys: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[list[GatewayProcess]]:
    policy = e2e_policy()
    policy["defaults"] = {"cache": {"mode": "auto", "ttl_s": 60}, "expected_completion_tokens": 256}
    price = {"input_per_mtok": 5000, "output_per_mtok": 15000}
    policy["targets"]["pricey"] = {**policy["targets"]["echo"], "price": price}
    policy["aliases"]["pricey"] = {"targets": ["pricey"]}
    directory = write_policy(tmp_path_factory.mktemp("replica-policies"), policy)
    env = {
        "GATEWAY_REDIS_URL": redis.url,
        "UPSTREAM_URL": upstream.url,
        "CLOUD_KEY": CLOUD_KEY,
        # 3 gateways, Redis and the test share 2 cores: a 50 ms bound would trip
        # the fail-open path under load and make the budget assertions meaningless
        "GATEWAY_REDIS_TIMEOUT_S": "0.5",
        "GATEWAY_ADMIN_KEY": ADMIN_KEY,
    }
    processes = [GatewayProcess("--policies", str(directory), env=env) for _ in range(3)]
    try:
        for process in processes:
            process.wait_ready()
        yield processes
    finally:
        for process in processes:
            process.stop()


def chat(process: GatewayProcess, key: str, **body: Any) -> httpx.Response:
    payload = {"model": "echo", "messages": [{"role": "user", "content": "hello"}], **body}
    return httpx.post(
        process.url + "/v1/chat/completions",
        json=payload,
        headers={"authorization": f"Bearer {key}"},
        timeout=10,
    )


def test_keys_are_required(replicas: list[GatewayProcess]) -> None:
    missing = httpx.post(
        replicas[0].url + "/v1/chat/completions", json={"model": "echo", "messages": []}
    )
    assert missing.status_code == 401
    wrong = chat(replicas[1], "gw-not-a-real-key")
    assert wrong.status_code == 401
    assert wrong.json()["error"]["code"] == "invalid_api_key"


def test_cache_entry_is_shared_across_replicas(
    replicas: list[GatewayProcess], keys: dict[str, str]
) -> None:
    body = {"temperature": 0, "messages": [{"role": "user", "content": "cache me across replicas"}]}
    first = chat(replicas[0], keys["plain"], **body)
    assert first.headers["x-gateway-cache"] == "miss"
    for other in replicas[1:]:
        hit = chat(other, keys["plain"], **body)
        assert hit.headers["x-gateway-cache"] == "hit"
        assert hit.json()["choices"] == first.json()["choices"]
    # another team never gets this team's entry
    assert chat(replicas[1], keys["other"], **body).headers["x-gateway-cache"] == "miss"


def test_streamed_answer_is_cached_and_replayed_as_stream(
    replicas: list[GatewayProcess], keys: dict[str, str]
) -> None:
    body = {"seed": 3, "stream": True, "messages": [{"role": "user", "content": "stream me once"}]}
    first = chat(replicas[0], keys["plain"], **body)
    assert first.headers["x-gateway-cache"] == "miss"
    second = chat(replicas[2], keys["plain"], **body)
    assert second.headers["x-gateway-cache"] == "hit"
    assert second.headers["content-type"].startswith("text/event-stream")
    assert second.text == first.text


def test_rate_limit_is_shared_across_replicas(
    replicas: list[GatewayProcess], keys: dict[str, str]
) -> None:
    statuses = [
        chat(process, keys["limited"]).status_code
        for process in itertools.islice(itertools.cycle(replicas), 5)
    ]
    assert statuses == [200] * 5
    refused = chat(replicas[2], keys["limited"])
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.headers["x-ratelimit-limit-requests"] == "5"
    assert refused.headers["x-ratelimit-remaining-requests"] == "0"
    assert refused.json()["error"]["type"] == "rate_limit_exceeded"


def test_leased_rate_limit_is_exact_across_replicas(
    replicas: list[GatewayProcess], keys: dict[str, str]
) -> None:
    """A limit high enough for the replicas to admit from local leases: a burst
    spread over them never passes it, and once their idle leases are given
    back, exactly the limit was admitted in all."""
    rpm = 100
    settings = Settings(redis_url=replicas_redis_url(replicas))
    key, _ = asyncio.run(create_key(settings, team="leased", rpm=rpm))
    # stay inside one rate window: across its end the previous window decays
    while time.time() % 60 > 45:
        time.sleep(0.5)

    def one(i: int) -> int:
        return chat(replicas[i % 3], key).status_code

    with ThreadPoolExecutor(max_workers=12) as pool:
        burst = list(pool.map(one, range(150)))
    assert set(burst) <= {200, 429}
    first = burst.count(200)
    assert first <= rpm
    time.sleep(1.5)  # leases idle for longer than GATEWAY_LIMITS_LEASE_S go back
    later = 0
    for process in itertools.cycle(replicas):
        status = chat(process, key).status_code
        if status == 429:
            break
        assert status == 200
        later += 1
        assert first + later <= rpm
    assert first + later == rpm


def test_concurrent_spend_never_passes_the_budget(
    replicas: list[GatewayProcess], keys: dict[str, str]
) -> None:
    def one(i: int) -> httpx.Response:
        # max_tokens: what each request reserves (without it, the target's whole output limit)
        return chat(replicas[i % 3], keys["spender"], model="pricey", max_tokens=200)

    with ThreadPoolExecutor(max_workers=12) as pool:
        responses = list(pool.map(one, range(60)))
    ok = [r for r in responses if r.status_code == 200]
    refused = [r for r in responses if r.status_code == 429]
    assert ok and refused
    assert all(r.json()["error"]["code"] == "insufficient_quota" for r in refused)
    costs = [float(r.headers["x-gateway-cost-usd"]) for r in ok]
    # spend is written just after each answer: wait for the last writes to land
    deadline = time.monotonic() + 5
    while True:
        report = asyncio.run(spend_report(Settings(redis_url=replicas_redis_url(replicas)), "day"))
        spent = report["by_team"]["spenders"]
        if spent == pytest.approx(sum(costs), rel=1e-6) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert spent == pytest.approx(sum(costs), rel=1e-6)
    assert spent <= BUDGET_USD + max(costs)


def test_spend_report_needs_the_admin_key(
    replicas: list[GatewayProcess], keys: dict[str, str]
) -> None:
    assert chat(replicas[0], keys["plain"]).status_code == 200
    anonymous = httpx.get(replicas[1].url + "/gateway/spend")
    assert anonymous.status_code == 401
    with_team_key = httpx.get(
        replicas[1].url + "/gateway/spend", headers={"authorization": f"Bearer {keys['plain']}"}
    )
    assert with_team_key.status_code == 401
    report = httpx.get(
        replicas[2].url + "/gateway/spend?period=day",
        headers={"authorization": f"Bearer {ADMIN_KEY}"},
    ).json()
    assert report["period"] == "day"
    assert report["by_team"]["plain"] > 0
    # no rule names a baseline target: the baseline is what was spent, and nothing was saved
    assert report["baseline_by_team"]["plain"] == report["by_team"]["plain"]
    assert report["savings_by_team"]["plain"] == 0.0
    assert all(not key.startswith("gw-") for key in report["by_key"]), "keys are reported by id"


def replicas_redis_url(replicas: list[GatewayProcess]) -> str:
    return replicas[0].env["GATEWAY_REDIS_URL"]


def test_redis_outage_is_survived(
    replicas: list[GatewayProcess], redis: RedisServer, keys: dict[str, str]
) -> None:
    for process in replicas:
        assert chat(process, keys["plain"]).status_code == 200
    redis.stop()
    try:
        for process in replicas:
            during = chat(process, keys["plain"], temperature=0)
            assert during.status_code == 200
            assert during.headers["x-gateway-cache"] == "bypass"
            ready = httpx.get(process.url + "/readyz").json()
            assert ready["ready"] is True and ready["status"] == "degraded"
            assert any("state backend is not answering" in p for p in ready["problems"])
    finally:
        redis.start()
    body = {"temperature": 0, "messages": [{"role": "user", "content": "after the outage"}]}
    # back to normal by itself: the first request after the restart already uses Redis
    assert chat(replicas[0], keys["plain"], **body).headers["x-gateway-cache"] == "miss"
    assert chat(replicas[1], keys["plain"], **body).headers["x-gateway-cache"] == "hit"
    ready = httpx.get(replicas[2].url + "/readyz").json()
    # (the policy's "refused" target keeps the status degraded: only the state is back)
    assert ready["state"]["ok"] is True
    assert not any("state backend" in p for p in ready["problems"]), ready["problems"]
