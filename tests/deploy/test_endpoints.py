"""Health checks and probes everywhere point at what the gateway serves, on 8080."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.deploy.conftest import (
    DEPLOY,
    GATEWAY_PORT,
    K8S,
    LIVENESS_PATH,
    METRICS_PATH,
    READINESS_PATH,
    REPO,
    SERVED_PATHS,
    load_yaml,
)

_URL = re.compile(r"https?://(?:127\.0\.0\.1|localhost):(\d+)(/\w*)")


def _gateway_container() -> dict[str, Any]:
    deployment = load_yaml(K8S / "deployment.yaml")
    container: dict[str, Any]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return container


def test_dockerfile_healthcheck_hits_liveness() -> None:
    text = REPO.joinpath("Dockerfile").read_text(encoding="utf-8")
    healthcheck = next(line for line in text.splitlines() if "urlopen" in line)
    assert _URL.findall(healthcheck) == [(str(GATEWAY_PORT), LIVENESS_PATH)]


@pytest.mark.parametrize("service", ["gateway", "gateway-demo"])
def test_compose_healthcheck_hits_readiness(service: str) -> None:
    compose = load_yaml(DEPLOY / "docker-compose.yml")
    test = " ".join(compose["services"][service]["healthcheck"]["test"])
    assert _URL.findall(test) == [(str(GATEWAY_PORT), READINESS_PATH)]
    assert compose["services"][service]["ports"] == [f"{GATEWAY_PORT}:{GATEWAY_PORT}"]
    assert compose["services"][service]["command"][-3:-1] == ["--port", str(GATEWAY_PORT)] or (
        compose["services"][service]["command"][-2:] == ["--port", str(GATEWAY_PORT)]
    )


def test_kubernetes_probes() -> None:
    container = _gateway_container()
    (port,) = container["ports"]
    assert port == {"name": "http", "containerPort": GATEWAY_PORT, "protocol": "TCP"}
    probes = {
        name: container[name]["httpGet"]
        for name in ("startupProbe", "readinessProbe", "livenessProbe")
    }
    assert probes["readinessProbe"]["path"] == READINESS_PATH
    assert probes["livenessProbe"]["path"] == LIVENESS_PATH
    assert probes["startupProbe"]["path"] == LIVENESS_PATH
    assert all(p["port"] == "http" for p in probes.values())
    assert container["args"][-2:] == ["--port", str(GATEWAY_PORT)]


def test_scrape_configs_read_metrics() -> None:
    annotations = load_yaml(K8S / "deployment.yaml")["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/path"] == METRICS_PATH
    assert annotations["prometheus.io/port"] == str(GATEWAY_PORT)
    monitor = load_yaml(K8S / "monitoring" / "servicemonitor.yaml")
    assert monitor["spec"]["endpoints"][0]["path"] == METRICS_PATH
    service = load_yaml(K8S / "service.yaml")
    assert service["spec"]["ports"][0]["port"] == GATEWAY_PORT
    prometheus = load_yaml(DEPLOY / "prometheus" / "prometheus.yml")
    gateway_job = next(j for j in prometheus["scrape_configs"] if j["job_name"] == "gateway")
    assert gateway_job["metrics_path"] == METRICS_PATH


def test_every_gateway_path_mentioned_in_deploy_is_served() -> None:
    # Catches a probe or scrape path typed anywhere in deploy/ that the gateway
    # does not answer (e.g. /health, /ready, /livez).
    # (components/ holds JSON patches, whose "path" is not an HTTP path.)
    manifests = [p for p in K8S.rglob("*.yaml") if "components" not in p.relative_to(K8S).parts]
    files = [
        REPO / "Dockerfile",
        DEPLOY / "docker-compose.yml",
        *manifests,
        DEPLOY / "prometheus" / "prometheus.yml",
    ]
    seen: set[str] = set()
    for path in files:
        text = path.read_text(encoding="utf-8")
        seen |= {p for port, p in _URL.findall(text) if port == str(GATEWAY_PORT)}
        seen |= set(re.findall(r"(?:path|metrics_path):\s*(/[\w/.-]*)\s*$", text, re.MULTILINE))
    assert seen, "no paths found: the scan is broken"
    assert seen <= SERVED_PATHS, sorted(seen - SERVED_PATHS)
