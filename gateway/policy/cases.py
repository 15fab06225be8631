"""Policy test cases as data: ``<policy dir>/tests/*.yaml``.

A case file holds ``cases:``, a list of cases. Each case has a ``name``, the
input as either ``request`` (an OpenAI request body, scanned and classified
exactly as the gateway does, with optional ``endpoint``, ``headers``,
``team``, ``key_id``, ``key_policy``, ``budget_usd``, ``budget_remaining_usd``)
or ``facts`` (the facts directly), and ``expect``: ``rule``, ``action``,
``targets`` (the exact ordered list), ``level`` (of the data sent),
``entities`` (a subset of those found), ``task``, ``excluded``, ``redact``.
Unknown keys anywhere are errors, reported like policy errors (file, line).

Cases see every target as available: their results do not depend on which
API keys happen to be set where they run.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from gateway.errors import GatewayError
from gateway.judging.build import FactsBuilder
from gateway.levels import Level
from gateway.policy.compiled import CompiledPolicy
from gateway.policy.decision_log import load_from_dict
from gateway.policy.model import Decision, Facts, Sensitivity
from gateway.policy.problems import Problem
from gateway.policy.read import Reader
from gateway.policy.simulate import all_available
from gateway.policy.source import Node, read_file

CASE_KEYS = (
    "name",
    "description",
    "request",
    "facts",
    "endpoint",
    "headers",
    "team",
    "key_id",
    "key_policy",
    "budget_usd",
    "budget_remaining_usd",
    "expect",
)
FACT_KEYS = (
    "sensitivity",
    "entities",
    "declared",
    "task",
    "task_confidence",
    "prompt_tokens",
    "max_tokens",
    "model",
    "endpoint",
    "stream",
    "tools",
    "key",
    "team",
    "metadata",
    "headers",
    "budget_usd",
    "budget_remaining_usd",
    "target_latency_ms",
    "load",
    "draw",
    "rule_set",
)
EXPECT_KEYS = ("rule", "action", "targets", "level", "entities", "task", "excluded", "redact")


@dataclass(frozen=True, slots=True)
class CaseResult:
    name: str
    file: Path
    line: int
    ok: bool
    message: str = ""


@dataclass
class CaseReport:
    results: list[CaseResult] = field(default_factory=list)
    #: problems in the case files themselves (unknown keys, bad values)
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and all(r.ok for r in self.results)

    @property
    def failed(self) -> list[CaseResult]:
        return [r for r in self.results if not r.ok]


def case_files(policy_dir: Path) -> list[Path]:
    tests = policy_dir / "tests" if policy_dir.is_dir() else policy_dir.parent / "tests"
    if not tests.is_dir():
        return []
    return sorted(p for p in tests.iterdir() if p.suffix in (".yaml", ".yml"))


def run_cases(
    policy_dir: Path, builder: FactsBuilder[CompiledPolicy], environ: Mapping[str, str]
) -> CaseReport:
    """Run every case file beside the policy with the policy ``builder`` was made for."""
    report = CaseReport()
    judge = all_available(builder.policy)
    reader = Reader(report.problems)
    for path in case_files(policy_dir):
        root = read_file(path, environ, report.problems)
        if root is None:
            continue
        top = reader.mapping(root, f"the top level of {path.name}", ("cases",), required=("cases",))
        if top is None or "cases" not in top:
            continue
        for node in reader.sequence(top["cases"], "cases") or []:
            result = _run_one(reader, builder, judge, node)
            if result is not None:
                report.results.append(result)
    return report


def _run_one(
    reader: Reader, builder: FactsBuilder[CompiledPolicy], judge: CompiledPolicy, node: Node
) -> CaseResult | None:
    name_node = node.value.get("name") if node.is_mapping else None
    name = name_node.value if name_node is not None and isinstance(name_node.value, str) else None
    with reader.in_rule(None):
        entries = reader.mapping(
            node, f"case '{name or '?'}'", CASE_KEYS, required=("name", "expect")
        )
    if entries is None or name is None or "expect" not in entries:
        return None
    before = len(reader.problems)
    if ("request" in entries) == ("facts" in entries):
        reader.error(node, f"case '{name}' needs exactly one of 'request' or 'facts'")
    expect = reader.mapping(entries["expect"], f"expect of case '{name}'", EXPECT_KEYS)
    if len(reader.problems) > before or expect is None:
        return None
    policy = builder.policy
    try:
        if "request" in entries:
            facts, rule_set = _from_request(reader, builder, entries)
        else:
            facts, rule_set = _from_facts(reader, policy, entries["facts"])
    except GatewayError as exc:
        return CaseResult(
            name, node.file, node.line, False, f"the request was refused: {exc.message}"
        )
    if facts is None or len(reader.problems) > before:
        return None
    decision = judge.decide(facts, rule_set)
    failures = _compare(expect, facts, decision)
    if not failures:
        return CaseResult(name, node.file, node.line, True)
    trace = "\n".join(
        f"      {'match' if s.matched else 'skip '} {s.rule}: {s.why}" for s in decision.trace
    )
    message = "\n".join(f"    {f}" for f in failures) + "\n    trace:\n" + trace
    if decision.deny_message:
        message += f"\n    deny: {decision.deny_message}"
    return CaseResult(name, node.file, node.line, False, message)


def _from_request(
    reader: Reader, builder: FactsBuilder[CompiledPolicy], entries: dict[str, Node]
) -> tuple[Facts | None, str]:
    body = entries["request"].plain()
    if not isinstance(body, dict):
        reader.error(entries["request"], "'request' must be a request body (a mapping)")
        return None, "default"
    headers = entries["headers"].plain() if "headers" in entries else {}
    if not isinstance(headers, dict):
        reader.error(entries["headers"], "'headers' must be a mapping")
        return None, "default"
    team = _opt_str(reader, entries, "team")
    endpoint = _opt_str(reader, entries, "endpoint") or (
        "embeddings" if "input" in body else "chat"
    )
    facts = builder.build(
        endpoint=endpoint,
        body=body,
        headers={str(k): str(v) for k, v in headers.items()},
        key_id=_opt_str(reader, entries, "key_id"),
        team=team,
        budget_usd=_opt_num(reader, entries, "budget_usd"),
        budget_remaining_usd=_opt_num(reader, entries, "budget_remaining_usd"),
    )
    return facts, builder.policy.rule_set_for(team, _opt_str(reader, entries, "key_policy"))


def _opt_str(reader: Reader, entries: Mapping[str, Node], key: str) -> str | None:
    return reader.string(entries[key], key) if key in entries else None


def _opt_num(reader: Reader, entries: Mapping[str, Node], key: str) -> float | None:
    return reader.number(entries[key], key) if key in entries else None


def _from_facts(reader: Reader, policy: CompiledPolicy, node: Node) -> tuple[Facts | None, str]:
    entries = reader.mapping(node, "facts", FACT_KEYS, required=("task",))
    if entries is None or "task" not in entries:
        return None, "default"
    raw: dict[str, Any] = {k: v.plain() for k, v in entries.items()}
    entities = reader.names(entries["entities"], "facts.entities") if "entities" in entries else []
    declared = (
        reader.level(entries["declared"], "facts.declared") if "declared" in entries else None
    )
    team = raw.get("team")
    computed = policy.sensitivity(entities or (), declared, team)
    level = (
        reader.level(entries["sensitivity"], "facts.sensitivity")
        if "sensitivity" in entries
        else computed.level
    )
    rule_set = str(raw.get("rule_set") or policy.rule_set_for(team, None))
    if rule_set not in policy.rule_sets:
        reader.error(node, f"unknown rule set '{rule_set}'")
        return None, rule_set
    try:
        facts = Facts(
            endpoint=str(raw.get("endpoint", "chat")),
            alias=str(raw.get("model", "auto")),
            sensitivity=Sensitivity(level or Level.PUBLIC, computed.entities),
            task=str(raw["task"]),
            task_confidence=float(raw.get("task_confidence", 1.0)),
            prompt_tokens=int(raw.get("prompt_tokens", 100)),
            stream=bool(raw.get("stream", False)),
            has_tools=bool(raw.get("tools", False)),
            max_tokens=raw.get("max_tokens"),
            key_id=raw.get("key"),
            team=team,
            metadata=MappingProxyType(
                {str(k): str(v) for k, v in (raw.get("metadata") or {}).items()}
            ),
            headers=MappingProxyType(
                {str(k).lower(): str(v) for k, v in (raw.get("headers") or {}).items()}
            ),
            budget_usd=raw.get("budget_usd"),
            budget_remaining_usd=raw.get("budget_remaining_usd"),
            target_latency_ms=MappingProxyType(dict(raw.get("target_latency_ms") or {})),
            load=load_from_dict(raw.get("load")),
            draw=float(raw.get("draw", 0.0)),
            entity_levels=MappingProxyType({e: policy.entity_level(e) for e in computed.entities}),
            declared_level=declared,
        )
    except (TypeError, ValueError, AttributeError) as exc:
        reader.error(node, f"invalid facts: {exc}")
        return None, rule_set
    return facts, rule_set


def _compare(expect: Mapping[str, Node], facts: Facts, decision: Decision) -> list[str]:
    failures: list[str] = []
    got: dict[str, Any] = {
        "rule": decision.rule,
        "action": decision.action.value,
        "targets": list(decision.targets),
        "level": decision.level.label,
        "task": facts.task,
        "excluded": list(decision.excluded),
        "redact": sorted(decision.redact.entities) if decision.redact is not None else [],
    }
    for key, node in expect.items():
        want = node.plain()
        if key == "entities":
            wanted = {want} if isinstance(want, str) else set(want or ())
            missing = wanted - set(facts.sensitivity.entities)
            if missing:
                failures.append(
                    f"entities: expected at least {sorted(wanted)}, got {list(facts.sensitivity.entities)}"
                )
            continue
        if key in ("targets", "excluded", "redact") and isinstance(want, str):
            want = [want]
        if key == "redact" and isinstance(want, list):
            want = sorted(want)
        if want != got[key]:
            failures.append(f"{key}: expected {want!r}, got {got[key]!r}")
    return failures
