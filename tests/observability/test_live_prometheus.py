"""The dashboards and alerts, proved against a real Prometheus scraping a real gateway.

One stack per module: a real Redis (keys, budgets, limits, cache), the local
upstream, a gateway on real sockets and Debian's ``prometheus`` scraping it
every second with ``deploy/prometheus/alerts.yml`` loaded. Traffic takes every
path the dashboards show (open and proprietary, fallback, retry, circuit
breaker, cache hit, deny, redaction, rule limit, budget, restricted data kept
open, stream, embeddings, a shared-state outage); then every PromQL expression
of every dashboard must return data, and every alert expression must evaluate.
"""

from __future__ import annotations

import asyncio
import json
import math
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from gateway.quota.keys_admin import create_key
from gateway.settings import Settings
from tests.harness import GatewayServer, write_policy
from tests.observability.conftest import (
    ADMIN_KEY,
    CLOUD_KEY,
    observed_policy,
    policy_environ,
)
from tests.observability.dashboards import (
    ALERT_RULES,
    ALERTS,
    PANELS,
    VARIABLES,
    Panel,
    to_promql,
)
from tests.observability.prometheus import Prometheus, prometheus_binary, prometheus_config
from tests.observability.traffic import EMAIL, SSN, drive, shared_state_outage
from tests.servers import RedisServer, command
from tests.upstream_server import Upstream

pytestmark = pytest.mark.slow

#: Panels whose right answer after this traffic is zero: no stream is open at
#: the end, the policy was not reloaded, no unredacted data left for a proprietary target.
ZERO_IS_RIGHT = frozenset(
    {
        "Active streams",
        "Active streams by instance",
        "Policy reloads by result",
        "Confidential or restricted sent to proprietary (range)",
    }
)

# --- the stack and its traffic ------------------------------------------------------


@dataclass
class Live:
    prometheus: Prometheus
    gateway: GatewayServer
    #: when Prometheus first scraped the gateway, before any request
    first_scrape: float
    #: a scrape after the first round of traffic, before the second
    mid: float
    #: the last scrape, after the second round (the dashboards are evaluated here)
    at: float
    #: what each kind of request answered in the first round
    answers: dict[str, list[httpx.Response]] = field(default_factory=dict)


@pytest.fixture(scope="module")
def live(
    redis_server: RedisServer, upstream: Upstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Live]:
    redis_server.start()  # another test may have stopped it
    command(redis_server.port, "FLUSHALL")
    base = tmp_path_factory.mktemp("live")
    settings = Settings(
        policies=write_policy(base / "policies", observed_policy()),
        redis_url=redis_server.url,
        environ=policy_environ(upstream),
        admin_key=ADMIN_KEY,
        reload_interval_s=0,
        redis_timeout_s=0.2,
        load_interval_s=0.2,
    )

    async def make_keys() -> dict[str, str]:
        alpha, _ = await create_key(settings, team="alpha", budget_usd=100.0)
        broke, _ = await create_key(settings, team="broke", budget_usd=0.000001)
        return {"alpha": alpha, "broke": broke}

    keys = asyncio.run(make_keys())
    gateway = GatewayServer(settings).start()
    address = gateway.url.removeprefix("http://")
    prometheus = Prometheus(base / "prometheus", prometheus_config(address, [ALERTS]))
    try:
        prometheus.start()
        first = prometheus.wait_for_scrapes(after=0, count=1)
        # The traffic counters (requests, tokens, cost) are born at their first
        # event, which rate() cannot see; the dashboards are judged on round
        # two, after Prometheus has seen every series at least twice.
        answers = drive(gateway, keys)
        answers["outage"] = [shared_state_outage(gateway, redis_server, keys["alpha"])]
        mid = prometheus.wait_for_scrapes(after=time.time(), count=2)
        drive(gateway, keys)
        shared_state_outage(gateway, redis_server, keys["alpha"])
        at = prometheus.wait_for_scrapes(after=time.time(), count=3)
        yield Live(prometheus, gateway, first, mid, at, answers)
    finally:
        prometheus.stop()
        gateway.stop()
        command(redis_server.port, "FLUSHALL")  # the keys made here are no other test's


@pytest.fixture(scope="module")
def dashboard_results(live: Live) -> dict[Panel, dict[str, Any]]:
    """Every dashboard expression evaluated once; prints the ones without data."""
    results = {panel: live.prometheus.query(to_promql(panel.expr), at=live.at) for panel in PANELS}
    empty = [
        p for p, r in results.items() if r.get("status") != "success" or not r["data"]["result"]
    ]
    if empty:
        print("\nDashboard expressions without data:")
        print(f"{'dashboard':<26} {'panel':<48} expression")
        for panel in empty:
            print(f"{panel.dashboard:<26} {panel.title[:48]:<48} {to_promql(panel.expr)}")
    return results


# --- the tests ------------------------------------------------------------------------


def test_promtool_accepts_the_generated_config(live: Live) -> None:
    promtool = prometheus_binary("promtool")
    result = subprocess.run(
        [promtool, "check", "config", str(live.prometheus.config_file)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_traffic_took_every_path(live: Live) -> None:
    a = live.answers

    def statuses(name: str) -> list[int]:
        return [r.status_code for r in a[name]]

    def header(name: str, header: str, index: int = -1) -> str | None:
        value: str | None = a[name][index].headers.get(header)
        return value

    assert statuses("plain") == [200] and header("plain", "x-gateway-target") == "open-a"
    assert statuses("completions") == [200]
    assert statuses("proprietary") == [200] and header("proprietary", "x-gateway-target") == "cloud"
    # two tries on the failing target (one retry), then open-a
    assert statuses("fallback") == [200] and header("fallback", "x-gateway-attempts") == "3"
    assert statuses("retry") == [200] and header("retry", "x-gateway-attempts") == "2"
    assert statuses("breaker") == [200, 200, 200]
    # the circuit opened after two failures: the third request went straight to open-a
    assert header("breaker", "x-gateway-attempts") == "1"
    assert header("cache", "x-gateway-cache") == "hit", [
        r.headers.get("x-gateway-cache") for r in a["cache"]
    ]
    assert statuses("deny") == [403]
    redacted = a["redact"][0]
    assert redacted.status_code == 200 and redacted.headers["x-gateway-target"] == "cloud"
    assert EMAIL in redacted.json()["choices"][0]["message"]["content"]  # restored
    assert statuses("limited") == [200, 200, 429]
    assert (
        statuses("restricted") == [200]
        and header("restricted", "x-gateway-rule") == "restricted-stays-open"
    )
    assert statuses("classified") == [200] and header("classified", "x-gateway-target") == "open-a"
    assert statuses("unservable") == [403]
    assert statuses("stream") == [200] and b"data: [DONE]" in a["stream"][0].content
    assert statuses("broken-stream") == [200] and b'"error"' in a["broken-stream"][0].content
    assert statuses("all-fail") == [503]  # both tries failed: no target could serve it
    assert statuses("embeddings") == [200]
    assert (
        statuses("budget") == [429]
        and a["budget"][0].json()["error"]["code"] == "insufficient_quota"
    )
    assert statuses("bad-key") == [401]
    assert statuses("unknown-model") == [404]
    assert statuses("outage") == [200]
    assert statuses("spill") == [200] * 3
    assert sorted(r.headers["x-gateway-target"] for r in a["spill"]) == ["busy", "cloud", "cloud"]
    assert sorted(str(r.headers.get("x-gateway-spill")) for r in a["spill"]) == [
        "None",
        "busy->cloud",
        "busy->cloud",
    ]
    assert sorted(statuses("held")) == [200] * 3 + [429] * 3
    assert {r.headers.get("x-gateway-target") for r in a["held"]} <= {"busy", None}


def test_the_proprietary_target_never_saw_the_email_or_the_ssn(
    live: Live, upstream: Upstream
) -> None:
    to_cloud = [r for r in upstream.requests if CLOUD_KEY in r["headers"].get("Authorization", "")]
    assert to_cloud, "the proprietary target saw no traffic"
    assert all(EMAIL not in json.dumps(r["body"]) for r in upstream.requests)
    assert all(SSN not in json.dumps(r["body"]) for r in to_cloud)


#: PromQL (evaluated at the last scrape) -> what the traffic above must have made of it
EXPECTED_NUMBERS: dict[str, Callable[[float], bool]] = {
    'sum(gateway_cache_requests_total{result="hit"})': lambda v: v >= 1,
    'max(gateway_circuit_state{target="breaker"})': lambda v: v == 2,
    'max(gateway_target_available{target="breaker"})': lambda v: v == 0,
    'sum(gateway_redactions_total{entity="email"})': lambda v: v == 1,
    'sum(gateway_decisions_total{action="redact"})': lambda v: v == 1,
    'sum(gateway_decisions_total{action="deny"})': lambda v: v >= 1,
    'sum(gateway_sensitive_entities_total{entity="us_ssn"})': lambda v: v == 1,
    'sum(gateway_rate_limited_total{scope="rule",limit="rpm"})': lambda v: v == 1,
    'sum(gateway_rate_limited_total{scope="team",limit="budget"})': lambda v: v == 1,
    'sum(gateway_fallbacks_total{target="failing"})': lambda v: v >= 1,
    'sum(gateway_retries_total{target="flaky"})': lambda v: v == 1,
    'sum(gateway_retries_total{target="failing"})': lambda v: v == 2,
    'sum(gateway_upstream_errors_total{target="breaker"})': lambda v: v == 2,
    "sum(gateway_time_to_first_token_seconds_count)": lambda v: v >= 1,
    'sum(gateway_requests_total{outcome="stream_error"})': lambda v: v == 1,
    'sum(gateway_requests_total{outcome="no_target"})': lambda v: v == 1,
    'sum(gateway_requests_total{endpoint="embeddings"})': lambda v: v == 1,
    # the proprietary model, the redacted email, and two requests spilled to it
    'sum(gateway_requests_total{kind="proprietary",outcome="success"})': lambda v: v == 4,
    'sum(gateway_spills_total{from_target="busy",to_target="cloud"})': lambda v: v == 2,
    'sum(gateway_capacity_refusals_total{level="confidential"})': lambda v: v == 3,
    'sum(gateway_requests_total{outcome="capacity"})': lambda v: v == 3,
    'sum(gateway_savings_usd_total{team="alpha"})': lambda v: v > 0,
    'sum(gateway_cost_usd_total{team="alpha",kind="proprietary"})': lambda v: v > 0,
    'max(gateway_budget_limit_usd{team="alpha"})': lambda v: v == 100,
    'max(gateway_budget_remaining_usd{team="alpha"})': lambda v: 0 < v < 100,
    "sum(gateway_state_errors_total)": lambda v: v >= 1,
    "max(gateway_state_backend_up)": lambda v: v == 1,
    "sum(gateway_active_streams)": lambda v: v == 0,
}


def test_the_numbers_match_the_traffic(live: Live) -> None:
    sent = sum(len(v) for k, v in live.answers.items() if k != "ready")
    expected: dict[str, Callable[[float], bool]] = {
        **EXPECTED_NUMBERS,
        "sum(gateway_requests_total)": lambda v: v == sent,
    }
    wrong = {}
    for expr, holds in expected.items():
        result = live.prometheus.query(expr, at=live.mid)["data"]["result"]
        value = float(result[0]["value"][1]) if result else None
        if value is None or not holds(value):
            wrong[expr] = value
    assert not wrong, f"{wrong} ({sent} requests sent)"


def test_sensitive_requests_are_counted_by_level_and_destination(live: Live) -> None:
    """The privacy dashboard's source: restricted data (the SSN, the declared
    header) stayed open, refusals count as denied, and nothing confidential or
    restricted is counted as sent to a proprietary target (the email left redacted)."""
    result = live.prometheus.query(
        "sum by (level, destination) (gateway_sensitive_requests_total)", at=live.mid
    )["data"]["result"]
    counts = {
        (r["metric"]["level"], r["metric"]["destination"]): float(r["value"][1]) for r in result
    }
    assert counts.get(("restricted", "open"), 0) >= 2, counts
    assert sum(v for (_, dest), v in counts.items() if dest == "denied") >= 2, counts
    leaked = {
        k: v
        for k, v in counts.items()
        if k[0] in ("confidential", "restricted") and k[1] == "proprietary" and v
    }
    assert not leaked, counts


def _by_labels(answer: dict[str, Any]) -> dict[frozenset[tuple[str, str]], float]:
    return {
        frozenset((k, v) for k, v in r["metric"].items() if k != "__name__"): float(r["value"][1])
        for r in answer["data"]["result"]
    }


#: counters of discrete events whose every known series the gateway creates at 0
#: (the traffic counters - requests, tokens, cost - have label sets too large for that)
EVENT_COUNTERS = {
    "gateway_sensitive_requests_total",
    "gateway_sensitive_entities_total",
    "gateway_redactions_total",
    "gateway_decisions_total",
    "gateway_tasks_total",
    "gateway_cache_requests_total",
    "gateway_rate_limited_total",
    "gateway_fallbacks_total",
    "gateway_retries_total",
    "gateway_upstream_errors_total",
    "gateway_policy_reloads_total",
    "gateway_state_errors_total",
}


def test_the_first_event_of_a_series_shows_in_rate_and_increase(live: Live) -> None:
    """Prometheus scraped the gateway before any request, so every counter
    series born in round one grew from nothing: ``increase`` over that round
    (what the dashboards' stats and rates are built on) must see it grow."""
    names = httpx.get(f"{live.prometheus.url}/api/v1/label/__name__/values", timeout=10).json()
    counters = [n for n in names["data"] if n in EVENT_COUNTERS]
    assert set(counters) == EVENT_COUNTERS, set(EVENT_COUNTERS) - set(counters)
    invisible: list[tuple[float, str]] = []
    for name in counters:
        before = _by_labels(live.prometheus.query(name, at=live.first_scrape))
        now = _by_labels(live.prometheus.query(f"{name} > 0", at=live.mid))
        grew = _by_labels(live.prometheus.query(f"increase({name}[5m])", at=live.mid))
        for labels, value in now.items():
            if labels not in before and grew.get(labels, 0) == 0:
                shown = ",".join(
                    f"{k}={v}" for k, v in sorted(labels) if k not in ("job", "instance")
                )
                invisible.append((value, f"{name}{{{shown}}} = {value:g}"))
    # single events first: for a rare event (a leak, a denial) the whole event is lost
    invisible.sort(key=lambda item: (item[0] != 1, item[1]))
    assert not invisible, f"{len(invisible)} series, e.g. " + "; ".join(
        text for _, text in invisible[:8]
    )


@pytest.mark.parametrize("panel", PANELS, ids=[p.id for p in PANELS])
def test_dashboard_expression_returns_data(
    panel: Panel, dashboard_results: dict[Panel, dict[str, Any]]
) -> None:
    answer = dashboard_results[panel]
    where = f"dashboard {panel.dashboard}, panel {panel.title!r}: {to_promql(panel.expr)}"
    assert answer.get("status") == "success", f"{where}\n{answer}"
    assert answer["data"]["result"], f"no data for {where}"
    if panel.title not in ZERO_IS_RIGHT:
        values = [float(r["value"][1]) for r in answer["data"]["result"]]
        assert any(v != 0 and not math.isnan(v) for v in values), f"only {values} for {where}"


@pytest.mark.parametrize(
    ("dashboard", "metric", "label"), VARIABLES, ids=[f"{d}:{lbl}" for d, _, lbl in VARIABLES]
)
def test_dashboard_variable_has_values(live: Live, dashboard: str, metric: str, label: str) -> None:
    response = httpx.get(
        f"{live.prometheus.url}/api/v1/label/{label}/values", params={"match[]": metric}, timeout=10
    )
    answer = response.json()
    assert answer["status"] == "success" and answer["data"], (
        f"{dashboard}: label_values({metric}, {label}) is empty"
    )


@pytest.mark.parametrize(("alert", "expr"), ALERT_RULES, ids=[name for name, _ in ALERT_RULES])
def test_alert_expression_evaluates(live: Live, alert: str, expr: str) -> None:
    answer = live.prometheus.query(expr, at=live.at)
    assert answer.get("status") == "success", f"{alert}: {answer}"


def test_prometheus_loaded_every_alert_and_evaluates_it_cleanly(live: Live) -> None:
    answer = httpx.get(f"{live.prometheus.url}/api/v1/rules", timeout=10).json()
    rules = {rule["name"]: rule for group in answer["data"]["groups"] for rule in group["rules"]}
    assert set(rules) == {name for name, _ in ALERT_RULES}
    unhealthy = {
        name: (rule["health"], rule.get("lastError"))
        for name, rule in rules.items()
        if rule["health"] != "ok"
    }
    assert not unhealthy
