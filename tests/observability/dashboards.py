"""What the dashboards and alerts ask Prometheus: every panel's PromQL, every
``label_values`` template variable, every alert expression, and Grafana's
macros and variables expanded the way Grafana would for "All"."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
DASHBOARDS = REPO / "deploy" / "grafana" / "dashboards"
ALERTS = REPO / "deploy" / "prometheus" / "alerts.yml"

#: Grafana's macros, as Grafana would expand them for this short test: rate
#: windows hold many 1 s scrapes, the range holds the whole run.
MACROS = {"__rate_interval": "30s", "__interval": "1s", "__range": "5m"}
_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]")
_LABEL_VALUES = re.compile(r"^\s*label_values\(\s*([a-zA-Z_:][\w:]*)\s*,\s*(\w+)\s*\)\s*$")


def to_promql(expr: str) -> str:
    """Expand Grafana macros; every ``$variable`` means "All" (``.*``), so it
    must sit in a regex matcher (``=~"$var"``), as multi-value variables must."""

    def expand(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2) or match.group(3)
        if name in MACROS:
            return MACROS[name]
        before = expr[: match.start()]
        assert before.endswith('=~"'), f"${name} is used outside a regex matcher in: {expr}"
        return ".*"

    return _VARIABLE.sub(expand, expr)


@dataclass(frozen=True)
class Panel:
    dashboard: str
    title: str
    expr: str

    @property
    def id(self) -> str:
        return f"{self.dashboard}:{self.title}:{self.expr[:40]}"


def _panels(items: list[dict[str, Any]], dashboard: str) -> Iterator[Panel]:
    for panel in items:
        for target in panel.get("targets") or []:
            if target.get("expr"):
                yield Panel(dashboard, str(panel.get("title")), str(target["expr"]))
        yield from _panels(panel.get("panels") or [], dashboard)


def dashboard_panels() -> list[Panel]:
    found: list[Panel] = []
    for path in sorted(DASHBOARDS.glob("*.json")):
        found.extend(_panels(json.loads(path.read_text())["panels"], path.stem))
    return found


def dashboard_variables() -> list[tuple[str, str, str]]:
    """(dashboard, metric, label) of every ``label_values(metric, label)`` variable."""
    found = []
    for path in sorted(DASHBOARDS.glob("*.json")):
        for variable in json.loads(path.read_text()).get("templating", {}).get("list", []):
            query = variable.get("query")
            text = query.get("query") if isinstance(query, dict) else query
            match = _LABEL_VALUES.match(text or "") if variable.get("type") == "query" else None
            if match:
                found.append((path.stem, match.group(1), match.group(2)))
    return found


def alert_rules() -> list[tuple[str, str]]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [(rule["alert"], rule["expr"]) for group in groups for rule in group["rules"]]


PANELS = dashboard_panels()
VARIABLES = dashboard_variables()
ALERT_RULES = alert_rules()
