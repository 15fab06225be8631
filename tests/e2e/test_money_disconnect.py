"""A client that goes away mid-stream, as a user meets it: `gateway serve`
through the CLI with only environment variables, a copy of the shipped
policies (the open target given a price, so that what was streamed costs
something), and a key made by `gateway keys create` with one stream and one
request in flight at a time. Only the upstream URL points at a local fake (its
``slow-stream`` model: 100 events, 50 ms apart, no usage).

Checked after each disconnect: no active stream is left, the key's stream
slot and in-flight slot are back (the next stream is admitted, not 429), the
request is counted once, as ``cancelled``, and the spend of what was streamed
is recorded for the key's team (tokens and USD).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.harness import ROOT, GatewayProcess
from tests.upstream_server import Upstream

ADMIN = "admin-key-for-tests-0123456789"
#: USD per million tokens given to the open target in the policy copy
IN_PER_MTOK, OUT_PER_MTOK = 1.0, 2.0


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    server = Upstream().start()
    yield server
    server.stop()


@pytest.fixture
def gateway(tmp_path: Path, upstream: Upstream) -> Iterator[tuple[GatewayProcess, str]]:
    policies = tmp_path / "policies"
    shutil.copytree(ROOT / "policies", policies)
    targets_file = policies / "targets.yaml"
    targets = yaml.safe_load(targets_file.read_text())
    targets["targets"]["local"]["price"] = {
        "input_per_mtok": IN_PER_MTOK,
        "output_per_mtok": OUT_PER_MTOK,
    }
    targets_file.write_text(yaml.safe_dump(targets, sort_keys=False))
    env = {
        "GATEWAY_POLICIES": str(policies),
        "GATEWAY_KEYS_FILE": str(tmp_path / "keys.json"),
        "GATEWAY_ADMIN_KEY": ADMIN,
        "GATEWAY_KEY_MAX_IN_FLIGHT": "1",
        "OPEN_MODEL_BASE_URL": upstream.url,
        "OPEN_MODEL_NAME": "slow-stream",
        "GATEWAY_LOG_LEVEL": "warning",
    }
    made = subprocess.run(
        [sys.executable, "-m", "gateway", "keys", "create", "--team", "ops", "--max-streams", "1"],
        cwd=ROOT,
        env={**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    process = GatewayProcess(env=env)
    try:
        process.wait_ready()
        yield process, key
    finally:
        process.stop()


def stream_then_leave(url: str, key: str, events: int) -> int:
    """Open a stream, read ``events`` events, close the connection; the status."""
    payload: dict[str, Any] = {
        "model": "local",
        "stream": True,
        "messages": [{"role": "user", "content": "count slowly to a hundred"}],
    }
    with (
        httpx.Client(timeout=20) as client,
        client.stream(
            "POST",
            url + "/v1/chat/completions",
            json=payload,
            headers={"authorization": f"Bearer {key}"},
        ) as answer,
    ):
        if answer.status_code != 200:
            answer.read()
            return answer.status_code
        seen = 0
        for line in answer.iter_lines():
            if line.startswith("data: "):
                seen += 1
                if seen >= events:
                    break
        return answer.status_code


def metric(url: str, name: str, **labels: str) -> float:
    text = httpx.get(url + "/metrics").text
    total = 0.0
    for found in re.finditer(rf"^{name}(\{{[^}}]*\}})? (\S+)$", text, re.M):
        given = found.group(1) or ""
        if all(f'{k}="{v}"' in given for k, v in labels.items()):
            total += float(found.group(2))
    return total


def settled(url: str, cancelled: int) -> bool:
    return (
        metric(url, "gateway_active_streams") == 0
        and metric(url, "gateway_requests_total", outcome="cancelled") == cancelled
    )


def wait_until(condition: Any, what: str, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def spend(url: str) -> dict[str, Any]:
    answer = httpx.get(
        url + "/gateway/spend?period=day", headers={"authorization": f"Bearer {ADMIN}"}
    )
    assert answer.status_code == 200, answer.text
    report: dict[str, Any] = answer.json()
    return report


def test_a_client_leaving_mid_stream_gives_everything_back_and_pays_for_what_it_read(
    gateway: tuple[GatewayProcess, str],
) -> None:
    process, key = gateway
    url = process.url
    assert stream_then_leave(url, key, events=6) == 200
    wait_until(lambda: settled(url, cancelled=1), "the stream was not settled")
    # the key's one stream slot and one in-flight slot are free again
    assert stream_then_leave(url, key, events=3) == 200
    wait_until(lambda: settled(url, cancelled=2), "the second stream was not settled")
    assert metric(url, "gateway_requests_total") == 2  # each counted once
    wait_until(lambda: spend(url)["by_team"].get("ops", 0) > 0, "no spend recorded", 5)
    report = spend(url)
    tokens = report["tokens_by_team"]["ops"]
    # two prompt estimates plus about one token per event that reached the
    # gateway: the client read 6 and 3 (the relay may have taken a few more)
    assert 6 + 3 + 2 <= tokens < 2 * 50, "not priced for what was streamed"
    cost = report["by_team"]["ops"]
    assert tokens * IN_PER_MTOK / 1e6 <= cost <= tokens * OUT_PER_MTOK / 1e6
