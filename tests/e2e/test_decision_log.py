"""The decision log: one JSON line per decision, never prompt text; replayable."""

from __future__ import annotations

import io
from argparse import Namespace
from typing import Any

import orjson

from gateway.policy.commands import add_policy_parser
from tests.harness import GatewayServer

SECRET_TEXT = "the launch code is swordfish and mail bob@example.org"


def test_decisions_are_logged_without_prompt_text(gateway: GatewayServer, client: Any) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": SECRET_TEXT}]
    )
    request_id = raw.headers["x-request-id"]
    log_path = gateway.settings.decision_log
    assert log_path is not None
    text = log_path.read_text()
    assert "swordfish" not in text and "bob@example.org" not in text
    lines = [orjson.loads(line) for line in text.splitlines()]
    mine = [line for line in lines if line.get("request_id") == request_id]
    assert len(mine) == 1
    assert mine[0]["rule"] == "default"
    assert "email" in mine[0]["entities"]


def test_logged_traffic_replays_through_policy_simulate(
    gateway: GatewayServer, client: Any
) -> None:
    client.chat.completions.create(model="echo", messages=[{"role": "user", "content": "hi"}])
    import argparse

    parser = argparse.ArgumentParser()
    add_policy_parser(parser.add_subparsers())
    args: Namespace = parser.parse_args(
        [
            "policy",
            "simulate",
            "--log",
            str(gateway.settings.decision_log),
            "--dir",
            str(gateway.settings.policies),
        ]
    )
    out = io.StringIO()
    code = args.func(args, gateway.settings, out=out)
    assert code == 0, out.getvalue()
    assert "default" in out.getvalue()
