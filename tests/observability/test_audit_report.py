"""``gateway audit report``: what went where, in a window, in three formats."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import orjson
import pytest

from gateway.cli import main
from gateway.judging.build import FactsBuilder
from gateway.levels import Level
from gateway.observability.audit_log import AuditLog
from gateway.observability.audit_report import build_report
from gateway.policy.compiled import CompiledPolicy
from gateway.policy.decision_log import Outcome
from gateway.policy.model import Action, Decision, Facts, RedactSpec
from tests.policy.conftest import SHIPPED, load

EMAIL = "Summarise the thread with carol@example.com about the launch"
SSN = "My SSN is 123-45-6789, fill in the form"


@pytest.fixture(scope="module")
def builder() -> FactsBuilder[CompiledPolicy]:
    return FactsBuilder(load(SHIPPED))


def facts_for(builder: FactsBuilder[CompiledPolicy], text: str, team: str) -> Facts:
    body = {"model": "auto", "messages": [{"role": "user", "content": text}]}
    return builder.build(endpoint="chat", body=body, headers={}, team=team)


@pytest.fixture
def log_path(tmp_path: Path, builder: FactsBuilder[CompiledPolicy]) -> Path:
    path = tmp_path / "decisions.jsonl"
    policy = builder.policy
    with AuditLog(path) as log:
        # an email, redacted, answered by a proprietary target
        facts = facts_for(builder, EMAIL, "growth")
        redacting = Decision(
            rule="redact-to-cloud",
            action=Action.ROUTE,
            targets=("openai-gpt-4o",),
            level=Level.PUBLIC,
            redact=RedactSpec(frozenset({"email"})),
        )
        log.write(
            facts,
            redacting,
            request_id="redacted",
            ts=100.0,
            outcome=Outcome(
                "success", 200, "openai-gpt-4o", "proprietary", 1, "miss", 0.002, 0.002
            ),
        )
        # an SSN, kept on the open model
        facts = facts_for(builder, SSN, "growth")
        decision = policy.decide(facts)
        log.write(
            facts,
            decision,
            request_id="open",
            ts=200.0,
            outcome=Outcome("success", 200, "local", "open", 1, "miss", 0.0, 0.01),
        )
        # denied
        deny = Decision(rule="no-restricted-out", action=Action.DENY)
        log.write(
            facts,
            deny,
            request_id="denied",
            ts=300.0,
            outcome=Outcome("denied", 403),
        )
        # a public request of another team, outside the window below
        facts = facts_for(builder, "Write a haiku", "finance")
        log.write(
            facts,
            policy.decide(facts),
            request_id="late",
            ts=10_000.0,
            outcome=Outcome("success", 200, "openai-gpt-4o", "proprietary", 1, "miss", 0.01, 0.01),
        )
    return path


def test_what_went_where(log_path: Path) -> None:
    report = build_report([log_path], since=0, until=1000)
    assert report.total == 3
    sections = report.sections()
    data = {(r["entity"], r["destination"]): r["requests"] for r in sections["data"]}
    assert data[("email", "proprietary_redacted")] == 1
    assert data[("us_ssn", "open")] == 1
    assert data[("us_ssn", "denied")] == 1
    assert report.restricted_to_proprietary == []
    spend = {r["team"]: r for r in sections["spend"]}
    assert spend["growth"]["savings_usd"] == pytest.approx(0.01)
    assert {(r["team"], r["rule"]) for r in sections["requests"]} >= {("growth", "redact-to-cloud")}


def test_restricted_data_sent_to_a_proprietary_target_is_called_out(
    tmp_path: Path, builder: FactsBuilder[CompiledPolicy]
) -> None:
    path = tmp_path / "leak.jsonl"
    with AuditLog(path) as log:
        facts = facts_for(builder, SSN, "growth")
        leak = Decision(
            rule="bad", action=Action.ROUTE, targets=("openai-gpt-4o",), level=Level.RESTRICTED
        )
        log.write(
            facts,
            leak,
            request_id="leak-1",
            ts=1.0,
            outcome=Outcome("success", 200, "openai-gpt-4o", "proprietary"),
        )
    report = build_report([path])
    assert report.restricted_to_proprietary == ["leak-1"]
    assert "restricted data answered by a proprietary target: 1" in report.to_table()


def test_the_report_command_in_every_format(
    log_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    window = ["--since", "1970-01-01", "--until", "1970-01-01T00:16:40"]
    assert main(["audit", "report", str(log_path), *window, "--format", "json"]) == 0
    out = orjson.loads(capsys.readouterr().out)
    assert out["total"] == 3 and out["restricted_to_proprietary"]["requests"] == 0
    assert main(["audit", "report", str(log_path), "--team", "finance", "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert {r["team"] for r in rows if r["section"] == "requests"} == {"finance"}
    assert main(["audit", "report", str(log_path)]) == 0
    table = capsys.readouterr().out
    assert "requests: 4" in table and "proprietary_redacted" in table
    with pytest.raises(SystemExit):
        main(["audit", "report", str(log_path), "--since", "yesterday"])


def test_findings_are_counted_per_kind_and_old_records_count_one(
    tmp_path: Path, builder: FactsBuilder[CompiledPolicy]
) -> None:
    path = tmp_path / "counts.jsonl"
    text = "mail ann@example.com, bo@example.com and cy@example.com; SSN 123-45-6789"
    with AuditLog(path) as log:
        for i in range(2):
            facts = facts_for(builder, f"{text} ({i})", "growth")
            log.write(
                facts,
                builder.policy.decide(facts),
                request_id=f"r{i}",
                ts=1.0 + i,
                outcome=Outcome("success", 200, "local", "open"),
            )
    # a record written before counts were kept: each kind it names counts once
    records = [orjson.loads(line) for line in path.read_text().splitlines()]
    old = next(rec for rec in records if "entity_counts" in rec)
    del old["entity_counts"]
    report = build_report([path])
    report.add(old)
    totals = {r["entity"]: (r["requests"], r["count"]) for r in report.sections()["entities"]}
    assert totals == {"email": (3, 3 + 3 + 1), "us_ssn": (3, 3)}
    assert "ann@" not in path.read_text()
    table = report.to_table()
    assert any(line.split() == ["3", "7", "email"] for line in table.splitlines())
    rows = list(csv.DictReader(io.StringIO(report.to_csv())))
    assert {r["count"] for r in rows if r["section"] == "entities"} == {"7", "3"}
