"""Decision log, simulate, test cases, hot reload and the CLI commands."""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import logging
import shutil
from pathlib import Path

import orjson
import pytest

from gateway.judging.build import FactsBuilder
from gateway.judging.prices import PriceBook
from gateway.levels import Level
from gateway.observability.audit_log import AuditLog
from gateway.policy.cases import run_cases
from gateway.policy.commands import add_policy_parser
from gateway.policy.decision_log import BadRecord, LoggedDecision, read_log
from gateway.policy.loader import load_policy
from gateway.policy.model import Action, Decision
from gateway.policy.reload import PolicyHolder, ReloadResult
from gateway.policy.simulate import check_invariant, simulate
from gateway.settings import Settings
from tests.policy.conftest import BASE, SHIPPED, WriteDir, load

SECRET = "alice.smith@example.com"
KEYS = {"OPENAI_API_KEY": "sk-test", "ANTHROPIC_API_KEY": "sk-ant-test"}


def shipped_copy(tmp_path: Path) -> Path:
    target = tmp_path / "policies"
    shutil.copytree(SHIPPED, target)
    return target


def write_log(tmp_path: Path, builder: FactsBuilder) -> Path:
    path = tmp_path / "decisions.jsonl"
    bodies = [
        (
            {"model": "auto", "messages": [{"role": "user", "content": f"Fix SQL for {SECRET}"}]},
            "code",
        ),
        ({"model": "auto", "messages": [{"role": "user", "content": "Write a poem"}]}, "creative"),
        (
            {"model": "auto", "messages": [{"role": "user", "content": "Sort a list in Python"}]},
            "code",
        ),
    ]
    with AuditLog(path) as log:
        for i, (body, task) in enumerate(bodies):
            facts = builder.build(
                endpoint="chat",
                body=body,
                headers={"x-gateway-task": task, "x-api-key": "sk"},
                team="growth",
            )
            log.write(facts, builder.policy.decide(facts), request_id=f"r{i}", ts=1000.0 + i)
    return path


def test_decision_log_round_trip_without_values(tmp_path: Path) -> None:
    builder = FactsBuilder(load(SHIPPED))
    path = write_log(tmp_path, builder)
    text = path.read_text()
    first = json.loads(text.splitlines()[1])
    assert SECRET not in text and first["header_names"] == ["x-gateway-task"]
    for key in (
        "ts",
        "request_id",
        "endpoint",
        "alias",
        "team",
        "key_id",
        "level",
        "entities",
        "task",
        "prompt_tokens",
        "stream",
        "tools",
        "rule",
        "action",
        "targets",
        "estimated_cost_usd",
    ):
        assert key in first
    records = list(read_log(path))
    assert all(isinstance(r, LoggedDecision) for r in records)
    logged = records[0]
    assert isinstance(logged, LoggedDecision)
    assert logged.facts.sensitivity.entities == ("email",)
    assert logged.rule == "confidential-code-redacted"
    # the rebuilt facts give the same decision
    assert builder.policy.decide(logged.facts).targets == logged.targets


def test_simulate_against_another_policy(tmp_path: Path) -> None:
    policy = load_policy(SHIPPED, KEYS, prices=PriceBook.from_litellm())
    path = write_log(tmp_path, FactsBuilder(policy))
    with path.open("ab") as f:
        f.write(b"not json\n")
    same = simulate(read_log(path), policy)
    assert same.total == 3 and same.changed == 0 and len(same.bad_lines) == 1
    assert same.violations == []
    candidate_dir = shipped_copy(tmp_path)
    routing = candidate_dir / "routing.yaml"
    routing.write_text(
        routing.read_text().replace(
            "route: {targets: [openai-gpt-4o, anthropic-sonnet, local]}\n\n  - name: open-first",
            "route: {targets: [local, openai-gpt-4o]}\n\n  - name: open-first",
        )
    )
    candidate = load_policy(candidate_dir, KEYS, prices=PriceBook.from_litellm())
    report = simulate(read_log(path), policy, candidate)
    assert report.changed == 1
    assert report.changes[("code-and-math -> openai-gpt-4o", "code-and-math -> local")] == 1
    assert report.cost_after_usd < report.cost_before_usd
    text = report.render()
    assert "decisions that change: 1" in text and "sensitivity invariant: holds" in text


def test_invariant_check_catches_a_leak() -> None:
    policy = load(SHIPPED)
    builder = FactsBuilder(policy)
    facts = builder.build(
        endpoint="chat",
        body={"model": "auto", "messages": [{"role": "user", "content": SECRET}]},
        headers={},
    )
    leak = Decision(
        rule="x", action=Action.ROUTE, targets=("openai-gpt-4o",), level=Level.CONFIDENTIAL
    )
    assert "max internal" in (check_invariant(policy, facts, leak) or "")
    understated = Decision(rule="x", action=Action.ROUTE, targets=("local",), level=Level.PUBLIC)
    assert "sends at public" in (check_invariant(policy, facts, understated) or "")


def test_bad_log_lines_are_reported(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    path.write_text('{"endpoint": "chat"}\n[1]\n')
    items = list(read_log(path))
    assert len(items) == 2 and all(isinstance(i, BadRecord) for i in items)
    assert str(items[0]).startswith(f"{path}:1:")


def test_failing_case_shows_expected_got_and_trace(write_policy: WriteDir) -> None:
    path = write_policy(
        **{
            "p.yaml": BASE,
            "tests__t.yaml": """
            cases:
              - name: wrong
                facts: {task: code}
                expect: {rule: everything, targets: [open-a]}
              - name: right
                request: {model: auto, messages: [{role: user, content: hi}]}
                headers: {x-gateway-task: chat}
                expect: {rule: everything, targets: [prop-a, open-a], action: route, level: public, task: chat}
        """,
        }
    )
    report = run_cases(path, FactsBuilder(load(path)), {})
    assert [r.ok for r in report.results] == [False, True]
    message = report.results[0].message
    assert "targets: expected ['open-a'], got ['prop-a', 'open-a']" in message
    assert "match everything: always" in message


def test_case_files_are_strict(write_policy: WriteDir) -> None:
    path = write_policy(
        **{
            "p.yaml": BASE,
            "tests__t.yaml": "cases:\n  - name: c\n    facts: {task: code}\n    expect: {rulee: everything}\n",
        }
    )
    report = run_cases(path, FactsBuilder(load(path)), {})
    (problem,) = report.problems
    assert (
        problem.line == 4
        and "unknown key 'rulee'" in problem.message
        and problem.fix == "did you mean 'rule'?"
    )
    assert not report.ok


async def test_hot_reload_keeps_the_last_good_policy(
    write_policy: WriteDir, caplog: pytest.LogCaptureFixture
) -> None:
    path = write_policy(**{"p.yaml": BASE})
    holder = PolicyHolder(path, {})
    first = holder.current
    assert holder.try_reload() == ReloadResult(ok=True, changed=False)
    (path / "p.yaml").write_text(BASE.replace("open-a]", "open-b]"))
    with caplog.at_level(logging.ERROR, logger="gateway.policy"):
        result = holder.try_reload()
    assert not result.ok and result.error is not None and "unknown target 'open-b'" in result.error
    assert holder.current is first and holder.last_error == result.error
    assert "keeping the last good policy" in caplog.text
    (path / "p.yaml").write_text(BASE.replace("[prop-a, open-a]", "[open-a]"))
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="gateway.policy"):
        assert holder.try_reload() == ReloadResult(ok=True, changed=True, recovered=True)
    assert holder.current is not first and holder.last_error is None
    assert "policy reload recovered: new policy in force" in caplog.text
    assert holder.policy.decide(
        holder.facts.build(endpoint="chat", body={"model": "auto"}, headers={})
    ).targets == ("open-a",)

    results: list[ReloadResult] = []
    watcher = asyncio.create_task(holder.watch(0.01, results.append))
    (path / "p.yaml").write_text(BASE + "# touched\n")
    for _ in range(200):
        if results:
            break
        await asyncio.sleep(0.01)
    watcher.cancel()
    assert results == [ReloadResult(ok=True, changed=True)]


def test_a_reload_refused_then_reverted_is_logged_once_each(
    write_policy: WriteDir, caplog: pytest.LogCaptureFixture
) -> None:
    path = write_policy(**{"p.yaml": BASE})
    holder = PolicyHolder(path, {})
    with caplog.at_level(logging.INFO, logger="gateway.policy"):
        (path / "p.yaml").write_text(BASE.replace("open-a]", "open-b]"))
        assert not holder.try_reload().ok
        (path / "p.yaml").write_text(BASE)  # put back as it was: same policy, no swap
        assert holder.try_reload() == ReloadResult(ok=True, recovered=True)
        assert holder.try_reload() == ReloadResult(ok=True)
    assert holder.last_error is None
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2, messages
    assert messages[0].startswith("policy reload refused, keeping the last good policy")
    assert messages[1].startswith("policy reload recovered: the files are valid again")


def run_cli(argv: list[str], policies: Path = SHIPPED) -> tuple[int, str]:
    parser = argparse.ArgumentParser()
    add_policy_parser(parser.add_subparsers())
    args = parser.parse_args(argv)
    out = io.StringIO()
    code = args.func(args, Settings(policies=policies, environ={}), out)
    return code, out.getvalue()


def test_cli_check(write_policy: WriteDir) -> None:
    code, out = run_cli(["policy", "check"])
    assert code == 0 and out.startswith("ok: ") and "unavailable targets" in out
    broken = write_policy(**{"p.yaml": BASE.replace("open-a]", "opn-a]")})
    code, out = run_cli(["policy", "check", str(broken)])
    assert code == 1 and "did you mean 'open-a'?" in out


def test_cli_test(write_policy: WriteDir) -> None:
    code, out = run_cli(["policy", "test"])
    assert code == 0 and out.strip().endswith("0 failed")
    path = write_policy(
        **{
            "p.yaml": BASE,
            "tests__t.yaml": "cases:\n  - {name: c, facts: {task: code}, expect: {rule: nope}}\n",
        }
    )
    code, out = run_cli(["policy", "test", str(path)])
    assert code == 1 and "FAIL c" in out and "0 passed, 1 failed" in out


def test_cli_explain(tmp_path: Path) -> None:
    request = tmp_path / "r.json"
    request.write_text(
        json.dumps(
            {"model": "auto", "messages": [{"role": "user", "content": f"SQL for {SECRET}"}]}
        )
    )
    code, out = run_cli(["policy", "explain", str(request), "--header", "x-gateway-task: code"])
    assert code == 0
    data = orjson.loads(out)
    assert data["rule"] == "confidential-code-redacted" and data["sensitivity"]["entities"] == [
        "email"
    ]
    assert SECRET not in out
    code, out = run_cli(["policy", "explain", str(request), "--team", "legal"])
    assert code == 0 and orjson.loads(out)["rule"] == "local-everything"
    code, out = run_cli(
        ["policy", "explain", str(request), "--header", "x-data-classification:top"]
    )
    assert code == 1 and "x-data-classification" in out
    code, out = run_cli(["policy", "explain", str(tmp_path / "missing.json")])
    assert code == 1


def test_cli_simulate(tmp_path: Path) -> None:
    path = write_log(tmp_path, FactsBuilder(load(SHIPPED)))
    code, out = run_cli(["policy", "simulate", "--log", str(path), "--against", str(SHIPPED)])
    assert code == 0 and "requests replayed: 3" in out and "decisions that change: 0" in out


def test_cli_test_names_invalid_cases_and_does_not_call_them_passed(
    write_policy: WriteDir,
) -> None:
    path = write_policy(
        **{
            "p.yaml": BASE,
            "tests__t.yaml": (
                "cases:\n"
                "  - {name: good, facts: {task: code}, expect: {rule: everything}}\n"
                "  - {name: typo, facts: {task: code}, expect: {rulle: everything}}\n"
            ),
        }
    )
    code, out = run_cli(["policy", "test", str(path)])
    assert code == 1
    assert "INVALID: 1 problems in the case files (not run):" in out
    assert "t.yaml:3: error: unknown key 'rulle' in expect of case 'typo'" in out
    assert out.strip().splitlines()[-1] == "1 passed, 0 failed, 1 invalid"


def test_cli_test_without_cases_fails_with_a_message(write_policy: WriteDir) -> None:
    path = write_policy(**{"p.yaml": BASE})
    code, out = run_cli(["policy", "test", str(path)])
    assert code == 1 and out.startswith("error: no test cases for ") and "tests" in out
    write_policy(**{"tests__empty.yaml": "cases: []\n"})
    code, out = run_cli(["policy", "test", str(path)])
    assert code == 1 and "hold no cases" in out


def write_team_log(tmp_path: Path, policy_dir: Path, team: str) -> Path:
    """A log of one team's requests, written under ``policy_dir`` the way the gateway would."""
    policy = load_policy(policy_dir, KEYS, prices=PriceBook.from_litellm())
    builder = FactsBuilder(policy)
    path = tmp_path / f"{team}.jsonl"
    with AuditLog(path) as log:
        for i, text in enumerate(["Sort a list in Python", "Write a poem", "Summarize this"]):
            body = {"model": "auto", "messages": [{"role": "user", "content": text}]}
            facts = builder.build(endpoint="chat", body=body, headers={}, team=team)
            rule_set = policy.rule_set_for(team, None)
            log.write(
                facts,
                policy.decide(facts, rule_set),
                request_id=f"r{i}",
                ts=1000.0 + i,
                rule_set=rule_set,
            )
    return path


def test_simulate_against_sees_a_changed_team_mapping(tmp_path: Path) -> None:
    current = load_policy(SHIPPED, KEYS, prices=PriceBook.from_litellm())
    log = write_team_log(tmp_path, SHIPPED, "legal")
    candidate_dir = shipped_copy(tmp_path)
    teams = candidate_dir / "teams.yaml"
    teams.write_text(teams.read_text().replace("  legal:\n    policy: local-only\n", ""))
    candidate = load_policy(candidate_dir, KEYS, prices=PriceBook.from_litellm())
    report = simulate(read_log(log), current, candidate)
    # every request of team legal moves from the local-only rule set to the default rules
    assert report.total == 3 and report.changed == 3, report.render()
    assert all(old.startswith("local-everything") for old, _ in report.changes)
    # and the other way round: a team newly given a rule set moves too
    growth = write_team_log(tmp_path, SHIPPED, "growth")
    teams.write_text(teams.read_text() + "  growth:\n    policy: local-only\n")
    candidate = load_policy(candidate_dir, KEYS, prices=PriceBook.from_litellm())
    report = simulate(read_log(growth), current, candidate)
    assert report.changed == 3 and all(
        new.startswith("local-everything") for _, new in report.changes
    )


def test_simulate_keeps_a_keys_own_policy(tmp_path: Path) -> None:
    policy = load_policy(SHIPPED, KEYS, prices=PriceBook.from_litellm())
    builder = FactsBuilder(policy)
    path = tmp_path / "key.jsonl"
    body = {"model": "auto", "messages": [{"role": "user", "content": "Sort a list in Python"}]}
    facts = builder.build(endpoint="chat", body=body, headers={}, team="growth")
    with AuditLog(path) as log:
        decision = policy.decide(facts, "local-only")
        log.write(facts, decision, request_id="r", ts=1.0, rule_set="local-only")
    report = simulate(read_log(path), policy, policy)
    assert report.changed == 0 and report.rule_counts["local-everything"] == 1


def test_simulate_does_not_depend_on_the_keys_in_the_shell(tmp_path: Path) -> None:
    log = write_team_log(tmp_path, SHIPPED, "growth")
    candidate_dir = shipped_copy(tmp_path)
    renders = []
    for environ in ({}, KEYS, {"OPENAI_API_KEY": "sk-only-openai"}):
        policy = load_policy(SHIPPED, environ, prices=PriceBook.from_litellm())
        candidate = load_policy(candidate_dir, environ, prices=PriceBook.from_litellm())
        renders.append(simulate(read_log(log), policy, candidate).render())
        renders.append(simulate(read_log(log), policy).render())
    assert renders[0::2] == [renders[0]] * 3 and renders[1::2] == [renders[1]] * 3
    assert "decisions that change: 0" in renders[0] and "decisions that change: 0" in renders[1]


def test_cli_explain_refuses_an_unknown_model_like_the_server(tmp_path: Path) -> None:
    request = tmp_path / "r.json"
    request.write_text(
        json.dumps({"model": "gpt-5-turbo", "messages": [{"role": "user", "content": "hi"}]})
    )
    code, out = run_cli(["policy", "explain", str(request)])
    assert code == 1
    assert out.strip() == (
        "request refused (404): The model `gpt-5-turbo` does not exist or you do not have access to it."
    )
    # a chat alias asked for on the embeddings endpoint is unknown there too
    request.write_text(json.dumps({"model": "gpt-4o", "input": "hello"}))
    code, out = run_cli(["policy", "explain", str(request)])
    assert code == 1 and "(404)" in out
