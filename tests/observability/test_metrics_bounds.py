"""A client cannot grow /metrics: every label value comes from a closed set.

Hundreds of distinct unknown models, unknown API keys, request ids, metadata,
``user`` fields and team-looking headers go through a real gateway; the
number of series stays put, every label value is a policy name, a closed
vocabulary word, ``other`` or ``none``, and none of what the clients sent
(ids, keys, prompt text, metadata) shows up in the exposition.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.judging.sensitivity import BUILTIN_ENTITIES
from gateway.judging.task import TASKS
from gateway.observability.metrics import MAX_TEAMS, NONE, OTHER, Metrics
from gateway.settings import Settings
from tests.harness import GatewayServer, write_policy
from tests.observability.conftest import chat, observed_policy, policy_environ
from tests.upstream_server import Upstream

N = 200
TEAM = "known-team"
#: more series than this after the flood means some label took client input
MAX_SERIES_GROWTH = 40


@dataclass
class Stack:
    gateway: GatewayServer
    key: str


@pytest.fixture(scope="module")
def stack(upstream: Upstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    settings = Settings(
        policies=write_policy(tmp_path_factory.mktemp("bounds"), observed_policy()),
        environ=policy_environ(upstream),
        reload_interval_s=0,
    )
    gateway = GatewayServer(settings).start()
    services = gateway.services
    assert services is not None

    async def make_key() -> str:
        key, _ = await services.state.keys.create_key(TEAM)
        services.auth.forget()  # keys exist from now on
        return key

    try:
        yield Stack(gateway, gateway.call(make_key()))
    finally:
        gateway.stop()


def series(text: str) -> list[tuple[str, dict[str, str]]]:
    return [
        (sample.name, dict(sample.labels))
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    ]


def flood(client: httpx.Client, key: str, n: int) -> list[str]:
    """Send ``n`` rounds of one-off values; returns every value a client made up."""
    made_up: list[str] = []
    for _ in range(n):
        rid, model, bad_key, marker, meta, team = (uuid.uuid4().hex for _ in range(6))
        rid, model, bad_key = f"rid-{rid}", f"model-{model}", f"sk-{bad_key}"
        marker, meta, team = f"marker{marker}", f"meta-{meta}", f"team-{team}"
        made_up += [rid, model, bad_key, marker, meta, team]
        own = {"authorization": f"Bearer {key}", "x-team": team, "openai-organization": team}
        body: dict[str, Any] = chat(
            f"Please answer {marker} briefly", metadata={"tag": meta, meta: team}, user=team
        )
        answer = client.post(
            "/v1/chat/completions", json=body, headers={**own, "x-request-id": rid}
        )
        assert answer.status_code == 200, answer.text
        answer = client.post(
            "/v1/chat/completions",
            json={**body, "model": model},
            headers={**own, "x-request-id": rid + "-m"},
        )
        assert answer.status_code == 404, answer.text
        answer = client.post(
            "/v1/chat/completions",
            json=body,
            headers={"authorization": f"Bearer {bad_key}", "x-request-id": rid + "-k"},
        )
        assert answer.status_code == 401, answer.text
        answer = client.post(
            "/v1/chat/completions", json=body, headers={**own, "x-gateway-task": meta}
        )
        assert answer.status_code == 400, answer.text
    return made_up


def test_series_stay_bounded_and_hold_nothing_a_client_sent(stack: Stack) -> None:
    with httpx.Client(base_url=stack.gateway.url, timeout=15) as client:
        flood(client, stack.key, 3)  # every kind of answer has its series now
        before = series(client.get("/metrics").text)
        made_up = flood(client, stack.key, N)
        text = client.get("/metrics").text
    after = series(text)
    print(f"series: {len(before)} before, {len(after)} after {N} rounds")
    assert len(after) - len(before) <= MAX_SERIES_GROWTH, (
        f"{len(before)} series before, {len(after)} after {N} rounds of one-off values"
    )
    leaked = [value for value in made_up if value in text]
    assert not leaked, f"{len(leaked)} client values in /metrics, e.g. {leaked[:3]}"
    assert stack.key not in text


def test_every_label_value_comes_from_a_closed_set(stack: Stack) -> None:
    with httpx.Client(base_url=stack.gateway.url, timeout=15) as client:
        flood(client, stack.key, 20)
        text = client.get("/metrics").text
    policy = observed_policy()
    names = {"none", "other"}
    allowed = {
        "alias": names | set(policy["aliases"]),
        "target": names | set(policy["targets"]),
        "rule": names | {rule["name"] for rule in policy["rules"]},
        "team": names | {TEAM},
        "entity": names | BUILTIN_ENTITIES,
        "task": names | set(TASKS),
    }
    strays = {
        (name, label, value)
        for name, labels in series(text)
        for label, value in labels.items()
        if label in allowed and value not in allowed[label]
    }
    assert not strays
    aliases = {labels["alias"] for name, labels in series(text) if "alias" in labels}
    assert OTHER in aliases  # the unknown models were counted, under `other`


def test_teams_beyond_the_cap_share_one_series() -> None:
    metrics = Metrics()
    for i in range(MAX_TEAMS + 100):
        metrics.cost.labels(metrics.team(f"team-{i}"), "t", "open").inc()
    teams = {
        labels["team"] for _, labels in series(metrics.render()[0].decode()) if "team" in labels
    }
    assert len(teams) == MAX_TEAMS + 1
    assert OTHER in teams and f"team-{MAX_TEAMS + 50}" not in teams
    assert metrics.team(None) == NONE and metrics.team("") == NONE
