"""Money as a user meets it: `gateway serve` started through the CLI with only
environment variables (the shipped policies, litellm's prices, keys made by
`gateway keys create`), with and without a real Redis. Only the upstream URLs
point at a local fake.

Checked: the cost header is litellm's price of the reported usage; spend and
savings per team in /gateway/spend, `gateway spend` and the savings metric;
a budget refusal that names used, limit, period and reset; the shipped soft
cap (past 80% of its budget a team goes to the free open model instead of
being refused); concurrent streams that never overspend by more than one
request's worst case; and a revoked key refused by every replica within
REVOKE_WITHIN_S seconds.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
import pytest

from gateway.quota.auth import FRESH_S
from gateway.state.key_file import CHECK_INTERVAL_S
from tests.harness import ROOT, GatewayProcess
from tests.servers import RedisServer
from tests.upstream_server import Upstream

ADMIN = "admin-key-for-tests-0123456789"
#: what the docs promise: a revocation reaches every replica within this time
REVOKE_WITHIN_S = FRESH_S + CHECK_INTERVAL_S + 1.0
#: gpt-4o in litellm's map, USD per token
GPT4O_IN, GPT4O_OUT = 2.5e-06, 1e-05
WORDS = " ".join(f"word{i}" for i in range(100))


@dataclass
class Deployment:
    env: dict[str, str]
    replicas: list[GatewayProcess]

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "gateway", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
        )


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    server = Upstream().start()
    yield server
    server.stop()


@pytest.fixture(params=["memory", "redis"])
def deployment(
    request: pytest.FixtureRequest, tmp_path: Path, upstream: Upstream
) -> Iterator[Deployment]:
    policies = tmp_path / "policies"
    shutil.copytree(ROOT / "policies", policies)
    env = {
        "GATEWAY_POLICIES": str(policies),
        "GATEWAY_KEYS_FILE": str(tmp_path / "keys.json"),
        "GATEWAY_ADMIN_KEY": ADMIN,
        "OPENAI_BASE_URL": upstream.url,
        "OPENAI_API_KEY": "sk-test-0123456789",
        "OPEN_MODEL_BASE_URL": upstream.url,
        "OPEN_MODEL_NAME": "echo",
        "GATEWAY_LOG_LEVEL": "warning",
    }
    if request.param == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        # a database of its own: other tests share this Redis
        env["GATEWAY_REDIS_URL"] = server.url.rsplit("/", 1)[0] + "/5"
        env["GATEWAY_REDIS_TIMEOUT_S"] = "1.0"
        subprocess.run(
            ["redis-cli", "-p", str(server.port), "-n", "5", "FLUSHDB"],
            check=True,
            capture_output=True,
        )
    replicas = [GatewayProcess(env=env) for _ in range(2)]
    for replica in replicas:
        replica.env.update(env)
    try:
        for replica in replicas:
            replica.wait_ready()
        yield Deployment({**replicas[0].env}, replicas)
    finally:
        for replica in replicas:
            replica.stop()


def create_key(deployment: Deployment, team: str, *extra: str) -> str:
    made = deployment.cli("keys", "create", "--team", team, *extra)
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    assert key.startswith("gw-")
    # the first key ends open mode on every replica within seconds
    deadline = time.monotonic() + 10
    for replica in deployment.replicas:
        while chat(replica.url, "", "hi", model="local").status_code != 401:
            assert time.monotonic() < deadline, "the gateway stayed open after a key was made"
            time.sleep(0.2)
    return key


def chat(
    url: str, key: str, text: str, *, model: str = "gpt-4o", max_tokens: int | None = None
) -> httpx.Response:
    body: dict[str, object] = {"model": model, "messages": [{"role": "user", "content": text}]}
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    return httpx.post(
        url + "/v1/chat/completions",
        json=body,
        headers={"authorization": f"Bearer {key}", "x-gateway-task": "chat"} if key else {},
        timeout=20,
    )


def spend(url: str) -> dict[str, object]:
    answer = httpx.get(
        url + "/gateway/spend?period=day", headers={"authorization": f"Bearer {ADMIN}"}
    )
    assert answer.status_code == 200, answer.text
    report: dict[str, object] = answer.json()
    return report


def metric(url: str, name: str, team: str) -> float:
    text = httpx.get(url + "/metrics").text
    found = re.search(rf'^{name}\{{[^}}]*team="{team}"[^}}]*\}} (\S+)$', text, re.M)
    return float(found.group(1)) if found else 0.0


def test_cost_spend_savings_refusal_soft_cap_and_revoke(deployment: Deployment) -> None:
    url = deployment.replicas[0].url
    key = create_key(deployment, "money", "--budget-usd", "0.0025", "--period", "day")

    # priced from litellm's map: the header is gpt-4o's price of the reported usage
    first = chat(url, key, WORDS, max_tokens=150)
    assert first.status_code == 200, first.text
    assert first.headers["x-gateway-target"] == "openai-gpt-4o"
    usage = first.json()["usage"]
    expected = usage["prompt_tokens"] * GPT4O_IN + usage["completion_tokens"] * GPT4O_OUT
    cost = float(first.headers["x-gateway-cost-usd"])
    assert cost == pytest.approx(expected, abs=1e-8) and cost > 0.001

    # without max_tokens the request may cost gpt-4o's whole output limit: refused,
    # and the refusal says how much was used of what, and when it resets
    refused = chat(url, key, WORDS)
    assert refused.status_code == 429, refused.text
    error = refused.json()["error"]
    assert error["code"] == "insufficient_quota"
    assert "of its daily budget of $0.0025" in error["message"]
    assert re.search(r"has used \$0\.00\d+ \(\d+%\)", error["message"]), error["message"]
    assert "resets at" in error["message"]

    # traffic to the open model costs nothing and saves what gpt-4o would have cost
    local = chat(url, key, "hello there", model="local")
    assert local.status_code == 200 and local.headers["x-gateway-target"] == "local"
    assert float(local.headers["x-gateway-cost-usd"]) == 0.0

    report = spend(url)
    by_team = report["by_team"]
    savings = report["savings_by_team"]
    baseline = report["baseline_by_team"]
    assert isinstance(by_team, dict) and isinstance(savings, dict) and isinstance(baseline, dict)
    assert by_team["money"] == pytest.approx(cost, abs=1e-6)
    assert savings["money"] > 0 and baseline["money"] > by_team["money"]
    assert metric(url, "gateway_savings_usd_total", "money") > 0
    assert metric(url, "gateway_cost_usd_total", "money") == pytest.approx(cost, abs=1e-6)

    # `gateway spend` shows the same, from Redis or from the running gateway
    args = ("spend", "--period", "day") + (
        () if "GATEWAY_REDIS_URL" in deployment.env else ("--url", url)
    )
    shown = deployment.cli(*args)
    assert shown.returncode == 0, shown.stderr
    cli_report = orjson.loads(shown.stdout)
    assert cli_report["by_team"]["money"] == pytest.approx(cost, abs=1e-6)
    assert cli_report["savings_by_team"]["money"] > 0

    # soft cap (shipped rule budget-nearly-spent): spend past 80%, then the request
    # that was refused above goes to the free open model instead
    for _ in range(20):
        small = chat(url, key, "word " * 20, max_tokens=30)
        assert small.status_code in (200, 429), small.text
        if small.headers.get("x-gateway-rule") == "budget-nearly-spent":
            break
        time.sleep(1.1 if small.status_code == 429 else 0)  # the budget fact is 1 s old at most
    else:
        pytest.fail("the team never reached 80% of its budget")
    stepped = chat(url, key, WORDS)
    assert stepped.status_code == 200, stepped.text
    assert stepped.headers["x-gateway-rule"] == "budget-nearly-spent"
    assert stepped.headers["x-gateway-target"] == "local"

    # revoke: every replica refuses the key within the stated time
    listed = deployment.cli("keys", "list", "--json")
    key_id = orjson.loads(listed.stdout)[0]["key_id"]
    for replica in deployment.replicas:
        assert chat(replica.url, key, "hi", model="local").status_code == 200
    revoked = deployment.cli("keys", "revoke", key_id)
    assert revoked.returncode == 0, revoked.stderr
    started = time.monotonic()
    pending = set(range(len(deployment.replicas)))
    while pending and time.monotonic() - started < REVOKE_WITHIN_S + 2:
        for i in list(pending):
            if chat(deployment.replicas[i].url, key, "hi", model="local").status_code == 401:
                pending.discard(i)
        time.sleep(0.2)
    elapsed = time.monotonic() - started
    assert not pending, f"replicas {pending} still accept a revoked key after {elapsed:.1f}s"
    assert elapsed <= REVOKE_WITHIN_S


def test_concurrent_streams_never_overspend(deployment: Deployment) -> None:
    url = deployment.replicas[0].url
    budget = 0.01
    key = create_key(deployment, "streams", "--budget-usd", str(budget), "--period", "day")
    max_tokens = 150

    def stream(_: int) -> tuple[int, float]:
        with httpx.stream(
            "POST",
            url + "/v1/chat/completions",
            json={
                "model": "gpt-4o",
                "stream": True,
                "max_tokens": max_tokens,
                "messages": [{"role": "user", "content": WORDS}],
            },
            headers={"authorization": f"Bearer {key}"},
            timeout=30,
        ) as response:
            response.read()
            return response.status_code, float(response.headers.get("x-gateway-cost-usd", 0))

    with ThreadPoolExecutor(20) as pool:
        outcomes = list(pool.map(stream, range(20)))
    served = [o for o in outcomes if o[0] == 200]
    assert served and len(served) < 20, outcomes
    assert {o[0] for o in outcomes} <= {200, 429}
    time.sleep(1.5)  # the last streams' spend reaches the ledger
    spent = spend(url)["by_team"]
    assert isinstance(spent, dict)
    prompt_tokens = len(orjson.dumps([{"role": "user", "content": WORDS}])) // 4
    worst = prompt_tokens * GPT4O_IN + max_tokens * GPT4O_OUT
    assert spent["streams"] > 0
    assert spent["streams"] <= budget + worst


def test_a_stream_past_its_reservation_ends_cleanly(deployment: Deployment) -> None:
    """The fake upstream ignores max_tokens (as a misbehaving server might): the
    gateway ends the stream where its reservation ends, with an error event
    and [DONE], and charges what arrived."""
    url = deployment.replicas[0].url
    key = create_key(deployment, "cutoff", "--budget-usd", "1", "--period", "day")
    with httpx.stream(
        "POST",
        url + "/v1/chat/completions",
        json={
            "model": "gpt-4o",
            "stream": True,
            "max_tokens": 10,
            "messages": [{"role": "user", "content": WORDS}],
        },
        headers={"authorization": f"Bearer {key}"},
        timeout=30,
    ) as response:
        assert response.status_code == 200
        events = [line for line in response.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "data: [DONE]"
    error = orjson.loads(events[-2].removeprefix("data: "))["error"]
    assert error["code"] == "insufficient_quota" and "reserved" in error["message"]
    words = sum("word" in e for e in events)
    assert 5 <= words <= 10 + 8, words  # not the 100 words the upstream sent
    time.sleep(1.5)
    spent = spend(url)["by_team"]
    assert isinstance(spent, dict) and spent["cutoff"] > 0
