"""Check a PromQL expression against the gateway's metric registry.

Walks the expression's syntax tree (``promql_parser``) and reports every metric
name that the gateway does not export and every label name used on a series
that cannot carry it: in matchers, ``by``/``without`` and ``on``/``ignoring``/
``group_left``/``group_right``. Labels are tracked through aggregations,
functions and binary operations, so ``sum by (team) (...)`` over a metric
without ``team`` is caught, and so is a later ``by`` on a label already
aggregated away.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import promql_parser as pp
from prometheus_client import CollectorRegistry

from gateway.observability.metrics import Metrics

#: Labels Prometheus adds to every scraped series.
TARGET_LABELS = frozenset({"job", "instance"})

#: Values that Grafana substitutes before a query reaches Prometheus.
_GRAFANA_DURATIONS = re.compile(
    r"\$__(rate_interval|interval|range)\b|\$\{__(rate_interval|interval|range)\}"
)
_GRAFANA_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]")

#: label_values(metric, label) in a Grafana template variable.
LABEL_VALUES = re.compile(
    r"^\s*label_values\(\s*(?:(?P<metric>[a-zA-Z_:][\w:]*)\s*,\s*)?(?P<label>\w+)\s*\)\s*$"
)


def gateway_series() -> dict[str, frozenset[str]]:
    """Every series name the gateway exports, with the labels it may carry.

    Histograms give ``_bucket`` (plus ``le``), ``_sum``, ``_count`` and
    ``_created``; counters give ``_total`` and ``_created``. Scrape labels
    (``job``, ``instance``) are allowed everywhere.
    """
    registry = CollectorRegistry()
    Metrics(registry)
    series: dict[str, frozenset[str]] = {}
    for family in registry.collect():
        labels = frozenset(_declared_labels(registry, family.name)) | TARGET_LABELS
        if family.type == "histogram":
            series[f"{family.name}_bucket"] = labels | {"le"}
            for suffix in ("_sum", "_count", "_created"):
                series[f"{family.name}{suffix}"] = labels
        elif family.type == "counter":
            series[f"{family.name}_total"] = labels
            series[f"{family.name}_created"] = labels
        else:
            series[family.name] = labels
    return series


def _declared_labels(registry: CollectorRegistry, name: str) -> tuple[str, ...]:
    # The collector registered under this family name knows its label names even
    # before any child exists (no samples yet, so samples cannot tell).
    # prometheus_client has no public accessor for either; both are stable since 0.4.
    collector = registry._names_to_collectors[name]
    return tuple(getattr(collector, "_labelnames", ()))


def substitute_grafana(expr: str) -> str:
    """Replace Grafana's macros and ``$variables`` with values PromQL accepts."""
    expr = _GRAFANA_DURATIONS.sub("5m", expr)
    return _GRAFANA_VARIABLE.sub("x", expr)


@dataclass
class Report:
    """What one expression references and what of it the gateway lacks."""

    metrics: set[str] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)


def check(expr: str, series: Mapping[str, frozenset[str]]) -> Report:
    """Parse ``expr`` (Grafana macros already substituted) and check it."""
    report = Report()
    _labels_of(pp.parse(expr), series, report)
    return report


def _labels_of(
    node: object, series: Mapping[str, frozenset[str]], report: Report
) -> frozenset[str] | None:
    """The labels the node's result may carry; ``None`` for scalars and strings."""
    if isinstance(node, pp.VectorSelector):
        return _selector(node, series, report)
    if isinstance(node, pp.MatrixSelector):
        return _selector(node.vector_selector, series, report)
    if isinstance(node, pp.ParenExpr | pp.SubqueryExpr | pp.UnaryExpr):
        return _labels_of(node.expr, series, report)
    if isinstance(node, pp.NumberLiteral | pp.StringLiteral):
        return None
    if isinstance(node, pp.Call):
        return _call(node, series, report)
    if isinstance(node, pp.AggregateExpr):
        return _aggregate(node, series, report)
    if isinstance(node, pp.BinaryExpr):
        return _binary(node, series, report)
    raise TypeError(f"unhandled PromQL node {type(node).__name__}: {node}")


def _selector(
    node: pp.VectorSelector, series: Mapping[str, frozenset[str]], report: Report
) -> frozenset[str]:
    name = node.name
    matchers = list(node.matchers.matchers)
    if name is None:
        name = next((m.value for m in matchers if m.name == "__name__"), None)
    if name is None:
        report.problems.append(f"selector without a metric name: {node}")
        return frozenset()
    report.metrics.add(name)
    if name not in series:
        report.problems.append(f"unknown metric {name!r}")
        return frozenset()
    allowed = series[name]
    for matcher in matchers:
        if matcher.name != "__name__" and matcher.name not in allowed:
            report.problems.append(f"{name} has no label {matcher.name!r}")
    return allowed


def _call(
    node: pp.Call, series: Mapping[str, frozenset[str]], report: Report
) -> frozenset[str] | None:
    results = [_labels_of(arg, series, report) for arg in node.args]
    vectors = [labels for labels in results if labels is not None]
    if not vectors:
        return None
    labels = vectors[0]
    if node.func.name == "histogram_quantile":
        if "le" not in labels:
            report.problems.append(f"histogram_quantile over series without 'le': {node}")
        return labels - {"le"}
    return labels


def _aggregate(
    node: pp.AggregateExpr, series: Mapping[str, frozenset[str]], report: Report
) -> frozenset[str]:
    inner = _labels_of(node.expr, series, report) or frozenset()
    modifier = node.modifier
    if modifier is None:
        return frozenset()
    named = frozenset(modifier.labels)
    for label in sorted(named - inner):
        report.problems.append(f"aggregation over {sorted(inner)} uses missing label {label!r}")
    if modifier.type == pp.AggModifierType.By:
        return named & inner
    return inner - named


def _binary(
    node: pp.BinaryExpr, series: Mapping[str, frozenset[str]], report: Report
) -> frozenset[str] | None:
    left = _labels_of(node.lhs, series, report)
    right = _labels_of(node.rhs, series, report)
    modifier = node.modifier
    matching = modifier.matching if modifier is not None else None
    if matching is not None:
        for side in (left, right):
            if side is None:
                continue
            for label in sorted(frozenset(matching.labels) - side):
                report.problems.append(f"vector matching uses missing label {label!r}")
    if modifier is not None and modifier.group_labels:
        one_side = right if modifier.card == pp.VectorMatchCardinality.ManyToOne else left
        for label in sorted(frozenset(modifier.group_labels) - (one_side or frozenset())):
            report.problems.append(f"group_left/group_right copies missing label {label!r}")
    if left is None:
        return right
    return left
