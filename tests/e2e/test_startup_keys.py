"""The start-up block counts keys, as an operator starts the gateway: `gateway
serve` with environment variables, keys made by `gateway keys create` in a
keys file or in a real Redis, and open mode."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.test_operator import Output
from tests.harness import ROOT, GatewayProcess
from tests.servers import RedisServer
from tests.upstream_server import free_port


def keys_create(env: dict[str, str], team: str, *extra: str) -> None:
    made = subprocess.run(
        [sys.executable, "-m", "gateway", "keys", "create", "--team", team, *extra],
        cwd=ROOT,
        env={**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert made.returncode == 0, made.stderr


def auth_line(env: dict[str, str]) -> str:
    env = {
        "GATEWAY_LOG_LEVEL": "info",
        "OPEN_MODEL_BASE_URL": f"http://127.0.0.1:{free_port()}/v1",
        **env,
    }
    process = GatewayProcess(env=env)
    try:
        output = Output(process)
        lines = output.wait_for("auth: ")
    finally:
        process.stop()
    (line,) = [line for line in lines if '"gateway.startup"' in line and "auth: " in line]
    return line


@pytest.fixture
def redis_db(redis_server: RedisServer) -> Iterator[str]:
    # a database of its own: other tests share this Redis
    flush = ["redis-cli", "-p", str(redis_server.port), "-n", "6", "FLUSHDB"]
    subprocess.run(flush, check=True, capture_output=True)
    yield redis_server.url.rsplit("/", 1)[0] + "/6"
    subprocess.run(flush, check=True, capture_output=True)


def test_a_keys_file_with_two_keys(tmp_path: Path) -> None:
    keys = tmp_path / "keys.json"
    env = {"GATEWAY_KEYS_FILE": str(keys)}
    keys_create(env, "search")
    keys_create(env, "billing", "--rpm", "60")
    assert f"auth: keys (2 keys, 2 teams; source: file {keys})" in auth_line(env)


def test_keys_in_redis(redis_db: str, tmp_path: Path) -> None:
    env = {"GATEWAY_REDIS_URL": redis_db, "GATEWAY_KEYS_FILE": str(tmp_path / "unused.json")}
    for _ in range(3):
        keys_create(env, "search")
    assert "auth: keys (3 keys, 1 team; source: redis)" in auth_line(env)


def test_open_mode_says_so_and_warns(tmp_path: Path) -> None:
    keys = tmp_path / "keys.json"
    line = auth_line({"GATEWAY_KEYS_FILE": str(keys)})
    assert f"auth: open (no keys configured; source: file {keys}; see the warning below)" in line
