"""Shared locations and loaders for the static checks of Dockerfile and deploy/."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
K8S = DEPLOY / "k8s"
DASHBOARDS = DEPLOY / "grafana" / "dashboards"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
DATA = Path(__file__).resolve().parent / "data"

#: What the gateway serves for operators, and where. Probes and health checks
#: anywhere in deploy/ may only point at these.
GATEWAY_PORT = 8080
LIVENESS_PATH = "/healthz"
READINESS_PATH = "/readyz"
METRICS_PATH = "/metrics"
SERVED_PATHS = frozenset({LIVENESS_PATH, READINESS_PATH, METRICS_PATH})


def load_yaml(path: Path) -> Any:
    with path.open(encoding="utf-8") as f:
        return yaml.safe_load(f)


def load_yaml_all(path: Path) -> list[Any]:
    with path.open(encoding="utf-8") as f:
        return [doc for doc in yaml.safe_load_all(f) if doc]


def load_json(path: Path) -> Any:
    with path.open(encoding="utf-8") as f:
        return json.load(f)


def require_tool(name: str, why: str) -> str:
    """The tool's path, or a skip that says what is missing and how CI gets it.

    In CI (``CI`` set, as .ci/run is run) a missing tool fails the test instead:
    no check may silently stop running there."""
    # Tools installed from PyPI land beside the interpreter, which may not be on PATH.
    found = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if found is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} not on PATH in CI: {why}", pytrace=False)
        pytest.skip(f"{name} not on PATH: {why}")
    return found
