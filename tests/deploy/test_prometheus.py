"""Prometheus config and alert rules: promtool accepts them and their unit tests pass."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.deploy.conftest import ALERTS, DATA, DEPLOY, K8S, load_yaml, require_tool

PROMTOOL_WHY = (
    "install Debian's 'prometheus' package (apt-get install -y prometheus), which ships promtool"
)
ALERT_NAMES = [rule["alert"] for group in load_yaml(ALERTS)["groups"] for rule in group["rules"]]


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    promtool = require_tool("promtool", PROMTOOL_WHY)
    return subprocess.run(
        [promtool, *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_promtool_accepts_the_config() -> None:
    done = _promtool("check", "config", str(DEPLOY / "prometheus" / "prometheus.yml"))
    assert done.returncode == 0, done.stdout + done.stderr
    # The config pulls in the alert rules, not an empty rule set.
    assert "1 rule files found" in done.stdout + done.stderr


def test_promtool_accepts_the_rules() -> None:
    done = _promtool("check", "rules", str(ALERTS))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{len(ALERT_NAMES)} rules found" in done.stdout + done.stderr


def test_alert_unit_tests_pass() -> None:
    done = _promtool("test", "rules", str(DATA / "alerts_test.yml"))
    assert done.returncode == 0, done.stdout + done.stderr


def test_promtool_unit_tests_catch_a_broken_threshold(tmp_path: Path) -> None:
    # The unit tests are not vacuous: loosen one threshold and they fail.
    rules = ALERTS.read_text(encoding="utf-8").replace(
        "> 0.05\n        for: 10m", "> 0.5\n        for: 10m", 1
    )
    assert rules != ALERTS.read_text(encoding="utf-8")
    broken = tmp_path / "alerts.yml"
    broken.write_text(rules, encoding="utf-8")
    test_file = tmp_path / "alerts_test.yml"
    test_file.write_text(
        (DATA / "alerts_test.yml")
        .read_text(encoding="utf-8")
        .replace("../../../deploy/prometheus/alerts.yml", str(broken)),
        encoding="utf-8",
    )
    done = _promtool("test", "rules", str(test_file))
    assert done.returncode != 0
    assert "GatewayHighErrorRate" in done.stdout + done.stderr


@pytest.mark.parametrize("name", ALERT_NAMES)
def test_alert_has_for_severity_and_annotations(name: str) -> None:
    rule = next(
        r for g in load_yaml(ALERTS)["groups"] for r in g["rules"] if r.get("alert") == name
    )
    assert re.fullmatch(r"\d+[smh]", rule["for"]), rule.get("for")
    assert rule["labels"]["severity"] in {"warning", "critical"}
    annotations = rule["annotations"]
    assert annotations["summary"].strip()
    assert annotations["description"].strip()
    assert annotations["runbook"] == f"deploy/README.md#{name.lower()}"


@pytest.mark.parametrize("name", ALERT_NAMES)
def test_alert_runbook_section_exists(name: str) -> None:
    readme = (DEPLOY / "README.md").read_text(encoding="utf-8")
    # GitHub's anchor for a heading "### Name" is "#name".
    assert re.search(rf"^#+ {name}\s*$", readme, re.MULTILINE), (
        f"no '### {name}' heading in deploy/README.md"
    )


def test_required_alerts_are_present() -> None:
    exprs = " ".join(r["expr"] for g in load_yaml(ALERTS)["groups"] for r in g["rules"])
    for needle in (
        'outcome=~"upstream_error',
        "histogram_quantile(0.99",
        "gateway_circuit_state",
        "label_replace(max by (job) (gateway_target_available{max_sensitivity=~",
        "gateway_budget_remaining_usd / gateway_budget_limit_usd < 0.1",
        "max by (job, instance) (gateway_policy_reload_failing) == 1",
        "gateway_state_backend_up",
        "gateway_state_errors_total",
        "gateway_upstream_errors_total",
    ):
        assert needle in exprs, needle


def test_prometheus_rule_for_the_operator_matches_alerts_file() -> None:
    operator_rule = load_yaml(K8S / "monitoring" / "prometheusrule.yaml")
    assert operator_rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert operator_rule["kind"] == "PrometheusRule"
    assert operator_rule["spec"] == load_yaml(ALERTS)


def test_compose_prometheus_scrapes_the_gateway() -> None:
    config = load_yaml(DEPLOY / "prometheus" / "prometheus.yml")
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    gateway = jobs["gateway"]
    assert gateway["metrics_path"] == "/metrics"
    assert gateway["static_configs"][0]["targets"] == ["gateway:8080"]
    assert config["rule_files"] == ["alerts.yml"]
