"""Every PromQL expression in deploy/ uses only what gateway/observability/metrics.py exports."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.deploy import promql_refs
from tests.deploy.conftest import ALERTS, DASHBOARDS, K8S, load_json, load_yaml


@pytest.fixture(scope="module")
def series() -> dict[str, frozenset[str]]:
    return promql_refs.gateway_series()


def _dashboard_exprs() -> Iterator[tuple[str, str]]:
    for path in sorted(DASHBOARDS.glob("*.json")):
        for panel in _panels(load_json(path)["panels"]):
            for target in panel.get("targets", []):
                yield f"{path.name}: {panel['title']} [{target['refId']}]", target["expr"]


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))


def _alert_exprs() -> Iterator[tuple[str, str]]:
    for path in (ALERTS, K8S / "monitoring" / "prometheusrule.yaml"):
        doc = load_yaml(path)
        groups = doc["spec"]["groups"] if "spec" in doc else doc["groups"]
        for group in groups:
            for rule in group["rules"]:
                yield f"{path.name}: {rule.get('alert') or rule.get('record')}", rule["expr"]


def _variable_queries() -> Iterator[tuple[str, str]]:
    for path in sorted(DASHBOARDS.glob("*.json")):
        for variable in load_json(path)["templating"]["list"]:
            if variable["type"] == "query":
                yield f"{path.name}: ${variable['name']}", variable["query"]["query"]


DASHBOARD_EXPRS = list(_dashboard_exprs())
ALERT_EXPRS = list(_alert_exprs())
VARIABLE_QUERIES = list(_variable_queries())


def test_there_is_something_to_check() -> None:
    assert len(DASHBOARD_EXPRS) >= 50
    assert len(ALERT_EXPRS) >= 20
    assert len(VARIABLE_QUERIES) >= 5


@pytest.mark.parametrize(("where", "expr"), DASHBOARD_EXPRS, ids=[w for w, _ in DASHBOARD_EXPRS])
def test_dashboard_expression_uses_gateway_metrics(
    where: str, expr: str, series: dict[str, frozenset[str]]
) -> None:
    report = promql_refs.check(promql_refs.substitute_grafana(expr), series)
    assert report.metrics, f"{where}: no metric in {expr!r}"
    assert report.problems == [], f"{where}: {expr}"


@pytest.mark.parametrize(("where", "expr"), ALERT_EXPRS, ids=[w for w, _ in ALERT_EXPRS])
def test_alert_expression_uses_gateway_metrics(
    where: str, expr: str, series: dict[str, frozenset[str]]
) -> None:
    report = promql_refs.check(expr, series)
    assert report.metrics, f"{where}: no metric in {expr!r}"
    assert report.problems == [], f"{where}: {expr}"


@pytest.mark.parametrize(("where", "query"), VARIABLE_QUERIES, ids=[w for w, _ in VARIABLE_QUERIES])
def test_template_variable_reads_a_gateway_label(
    where: str, query: str, series: dict[str, frozenset[str]]
) -> None:
    match = promql_refs.LABEL_VALUES.match(query)
    assert match, f"{where}: only label_values(metric, label) is used here, got {query!r}"
    metric, label = match["metric"], match["label"]
    assert metric in series, f"{where}: unknown metric {metric!r}"
    assert label in series[metric], f"{where}: {metric} has no label {label!r}"


def test_every_gateway_metric_family_appears_on_a_dashboard(
    series: dict[str, frozenset[str]],
) -> None:
    # A metric nobody can see is a metric nobody watches.
    used: set[str] = set()
    for _, expr in DASHBOARD_EXPRS:
        used |= promql_refs.check(promql_refs.substitute_grafana(expr), series).metrics
    families = {_family(name) for name in series}
    unseen = sorted(families - {_family(name) for name in used})
    assert unseen == []


def _family(name: str) -> str:
    for suffix in ("_total", "_bucket", "_sum", "_count", "_created"):
        if name.endswith(suffix):
            return name.removesuffix(suffix)
    return name


# -- the checker itself ------------------------------------------------------


def test_series_include_histogram_and_counter_suffixes(series: dict[str, frozenset[str]]) -> None:
    assert "le" in series["gateway_request_duration_seconds_bucket"]
    assert "le" not in series["gateway_request_duration_seconds_count"]
    assert {"gateway_requests_total", "gateway_requests_created"} <= series.keys()
    assert series["gateway_active_streams"] == promql_refs.TARGET_LABELS
    assert series["gateway_target_available"] >= {"target", "kind", "max_sensitivity"}
    assert "gateway_requests" not in series


@pytest.mark.parametrize(
    ("expr", "problem"),
    [
        ("rate(gateway_request_total[5m])", "unknown metric 'gateway_request_total'"),
        ('gateway_cost_usd_total{tenant="a"}', "gateway_cost_usd_total has no label 'tenant'"),
        ("sum by (team) (rate(gateway_requests_total[5m]))", "missing label 'team'"),
        ("sum by (target) (sum by (kind) (gateway_cost_usd_total))", "missing label 'target'"),
        (
            "histogram_quantile(0.99, sum by (endpoint) (rate(gateway_overhead_seconds_bucket[5m])))",
            "without 'le'",
        ),
        ("gateway_cost_usd_total / on (rule) gateway_savings_usd_total", "missing label 'rule'"),
        (
            "gateway_savings_usd_total * on (team) group_left (kind) gateway_baseline_cost_usd_total",
            "copies missing label 'kind'",
        ),
        ('{__name__="gateway_made_up"}', "unknown metric 'gateway_made_up'"),
    ],
)
def test_checker_reports_what_the_gateway_lacks(
    expr: str, problem: str, series: dict[str, frozenset[str]]
) -> None:
    report = promql_refs.check(expr, series)
    assert any(problem in p for p in report.problems), report.problems


def test_grafana_macros_and_variables_are_substituted() -> None:
    expr = 'sum(rate(gateway_cost_usd_total{team=~"$team",target=~"${target}"}[$__rate_interval])) [[x]]'
    assert (
        promql_refs.substitute_grafana(expr)
        == 'sum(rate(gateway_cost_usd_total{team=~"x",target=~"x"}[5m])) x'
    )
