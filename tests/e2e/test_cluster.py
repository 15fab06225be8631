"""The gateway on a real 3-master Redis Cluster, and the key/spend commands against it."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from gateway.settings import Settings
from tests.e2e.conftest import e2e_policy
from tests.harness import ROOT, GatewayServer, write_policy
from tests.servers import RedisCluster
from tests.upstream_server import Upstream


def gateway_cli(*args: str, keys_file: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    if keys_file is not None:
        env["GATEWAY_KEYS_FILE"] = str(keys_file)
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


@pytest.fixture(scope="module")
def cluster_gateway(
    upstream: Upstream, redis_cluster: RedisCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[GatewayServer, str]]:
    redis_cluster.flushall()
    created = gateway_cli(
        "keys", "create", "--team", "cluster-team", "--rpm", "3", "--redis-url", redis_cluster.url
    )
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    assert key.startswith("gw-") and "key id" in created.stderr
    policy = e2e_policy()
    policy["defaults"] = {"cache": {"mode": "auto", "ttl_s": 60}}
    settings = Settings(
        policies=Path(write_policy(tmp_path_factory.mktemp("cluster-policies"), policy)),
        environ={"UPSTREAM_URL": upstream.url},
        redis_url=redis_cluster.url,
        redis_timeout_s=0.5,
        reload_interval_s=0,
    )
    server = GatewayServer(settings).start()
    yield server, key
    server.stop()
    redis_cluster.flushall()


def test_cache_limits_and_spend_on_a_cluster(
    cluster_gateway: tuple[GatewayServer, str], redis_cluster: RedisCluster
) -> None:
    gateway, key = cluster_gateway
    headers = {"authorization": f"Bearer {key}"}
    body = {"model": "echo", "temperature": 0, "messages": [{"role": "user", "content": "cluster"}]}
    first = httpx.post(gateway.url + "/v1/chat/completions", json=body, headers=headers)
    second = httpx.post(gateway.url + "/v1/chat/completions", json=body, headers=headers)
    assert (first.headers["x-gateway-cache"], second.headers["x-gateway-cache"]) == ("miss", "hit")
    assert httpx.get(gateway.url + "/readyz").json()["state"] == {
        "backend": "redis-cluster",
        "ok": True,
        "problems": [],
    }
    third = httpx.post(gateway.url + "/v1/chat/completions", json=body, headers=headers)
    assert third.status_code == 200
    refused = httpx.post(gateway.url + "/v1/chat/completions", json=body, headers=headers)
    assert refused.status_code == 429 and refused.headers["retry-after"]
    report = gateway_cli("spend", "--period", "day", "--redis-url", redis_cluster.url)
    assert report.returncode == 0, report.stderr
    spend = orjson.loads(report.stdout)
    assert spend["by_team"]["cluster-team"] > 0
    assert key not in report.stdout


def test_key_commands_without_redis_use_the_keys_file(tmp_path: Path) -> None:
    keys_file = tmp_path / "keys.json"
    result = gateway_cli("keys", "create", "--team", "x", keys_file=keys_file)
    assert result.returncode == 0, result.stderr
    key = result.stdout.strip()
    assert key.startswith("gw-") and keys_file.is_file()
    assert key not in keys_file.read_text()
