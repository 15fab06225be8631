"""Entity counts as an auditor meets them: `gateway serve --demo` with the
GATEWAY_AUDIT_* settings, a request holding two email addresses and one IBAN;
the decision record, `POST /gateway/explain`, `gateway audit report` (json and
table) count 2 emails and 1 IBAN, no value is written anywhere, and `gateway
audit verify` still passes on the chained, HMAC'd log."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import orjson

from tests.harness import ROOT, GatewayProcess

EMAILS = ("ada@example.com", "grace@example.org")
IBAN = "DE89 3704 0044 0532 0130 00"
TEXT = f"Write to {EMAILS[0]} and cc {EMAILS[1]}; pay to {IBAN}. Summarise the terms."


def test_two_emails_and_one_iban_are_counted_everywhere_and_the_log_verifies(
    tmp_path: Path,
) -> None:
    log_path = tmp_path / "decisions.jsonl"
    gateway = GatewayProcess(
        "--demo",
        env={
            "GATEWAY_DECISION_LOG": str(log_path),
            "GATEWAY_AUDIT_HMAC_KEY": "k-for-counts",
        },
    )
    chat = {"model": "auto", "messages": [{"role": "user", "content": TEXT}]}
    try:
        gateway.wait_ready()
        explained = httpx.post(gateway.url + "/gateway/explain", json=chat, timeout=10)
        assert explained.status_code == 200, explained.text
        sensitivity = explained.json()["sensitivity"]
        assert sensitivity["counts"] == {"email": 2, "iban": 1}
        answered = httpx.post(gateway.url + "/v1/chat/completions", json=chat, timeout=10)
        assert answered.status_code == 200, answered.text
    finally:
        gateway.proc.terminate()  # SIGTERM: drain and close the log
        gateway.proc.communicate(timeout=30)
    written = log_path.read_text()
    for value in (*EMAILS, IBAN, IBAN.replace(" ", "")):
        assert value not in written
    (record,) = [orjson.loads(line) for line in written.splitlines() if '"decision"' in line]
    assert record["entity_counts"] == {"email": 2, "iban": 1}
    env = {
        **os.environ,
        "GATEWAY_AUDIT_HMAC_KEY": "k-for-counts",
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    }
    audit = [sys.executable, "-m", "gateway", "audit"]

    def run(*args: str) -> str:
        done = subprocess.run(
            [*audit, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    run("verify", str(log_path))
    summary = orjson.loads(run("report", str(log_path), "--format", "json"))
    totals = {row["entity"]: (row["requests"], row["count"]) for row in summary["entities"]}
    assert totals == {"email": (1, 2), "iban": (1, 1)}
    assert {row["entity"]: row["count"] for row in summary["data"]} == {"email": 2, "iban": 1}
    table = run("report", str(log_path))
    assert "entity kinds in all (requests, findings):" in table
    assert any(line.split() == ["1", "2", "email"] for line in table.splitlines())
    assert any(line.split() == ["1", "1", "iban"] for line in table.splitlines())
