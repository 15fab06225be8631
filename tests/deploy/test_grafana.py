"""Grafana: provisioning points at the dashboards, dashboards are well-formed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.deploy.conftest import DASHBOARDS, DEPLOY, load_json, load_yaml

PROVISIONING = DEPLOY / "grafana" / "provisioning"
DATASOURCE_UID = "prometheus"
DASHBOARD_FILES = sorted(DASHBOARDS.glob("*.json"))


def _panels(panels: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for panel in panels:
        out.append(panel)
        out.extend(_panels(panel.get("panels", [])))
    return out


def test_datasource_has_the_fixed_uid() -> None:
    provisioned = load_yaml(PROVISIONING / "datasources" / "prometheus.yml")
    (source,) = provisioned["datasources"]
    assert source["uid"] == DATASOURCE_UID
    assert source["type"] == "prometheus"
    assert source["url"] == "http://prometheus:9090"


def test_dashboard_provider_reads_the_mounted_folder() -> None:
    compose = load_yaml(DEPLOY / "docker-compose.yml")
    mounts = dict(
        m.rsplit(":", 1)[0].split(":", 1)
        for m in compose["services"]["grafana"]["volumes"]
        if m.startswith("./")
    )
    provider = load_yaml(PROVISIONING / "dashboards" / "gateway.yml")["providers"][0]
    assert mounts["./grafana/dashboards"] == provider["options"]["path"]
    assert mounts["./grafana/provisioning"] == "/etc/grafana/provisioning"


def test_the_five_dashboards_exist() -> None:
    titles = {load_json(p)["title"] for p in DASHBOARD_FILES}
    assert titles == {
        "LLM gateway / Overview",
        "LLM gateway / Routing & savings",
        "LLM gateway / Privacy",
        "LLM gateway / Reliability",
        "LLM gateway / Cache & limits",
    }


@pytest.mark.parametrize("path", DASHBOARD_FILES, ids=lambda p: p.name)
def test_dashboard_is_well_formed(path: Path) -> None:
    dashboard = load_json(path)
    assert 36 <= dashboard["schemaVersion"] <= 41
    assert dashboard["uid"] and len(dashboard["uid"]) <= 40
    panels = _panels(dashboard["panels"])
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": DATASOURCE_UID}, panel["title"]
        assert panel["targets"], panel["title"]
        ref_ids = [t["refId"] for t in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids)), panel["title"]
        for target in panel["targets"]:
            assert target["expr"].strip(), panel["title"]
            assert target["datasource"]["uid"] == DATASOURCE_UID, panel["title"]


@pytest.mark.parametrize("path", DASHBOARD_FILES, ids=lambda p: p.name)
def test_panels_do_not_overlap(path: Path) -> None:
    occupied: set[tuple[int, int]] = set()
    for panel in _panels(load_json(path)["panels"]):
        g = panel["gridPos"]
        cells = {
            (x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])
        }
        assert not occupied & cells, f"{panel['title']} overlaps another panel"
        occupied |= cells


@pytest.mark.parametrize("path", DASHBOARD_FILES, ids=lambda p: p.name)
def test_variables_used_are_defined(path: Path) -> None:
    dashboard = load_json(path)
    defined = {v["name"] for v in dashboard["templating"]["list"]}
    text = path.read_text(encoding="utf-8")
    for name in ("team", "target", "job"):
        if f'=~\\"${name}\\"' in text:
            assert name in defined, f"${name} used but not defined"


def test_routing_dashboard_has_team_and_target_variables() -> None:
    dashboard = load_json(DASHBOARDS / "gateway-routing-savings.json")
    assert {"team", "target"} <= {v["name"] for v in dashboard["templating"]["list"]}


def test_privacy_dashboard_shows_denials_by_deny_action() -> None:
    exprs = [
        t["expr"]
        for p in _panels(load_json(DASHBOARDS / "gateway-privacy.json")["panels"])
        for t in p.get("targets", [])
    ]
    assert any('gateway_decisions_total{job=~"$job",action="deny"}' in e for e in exprs)
