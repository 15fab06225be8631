"""Invariant 1, as a property: whatever the policy and the request, no target
receives data above its max_sensitivity, and nothing routes when no target may."""

from __future__ import annotations

import tempfile
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.levels import LEVEL_NAMES, Level
from gateway.policy.compiled import CompiledPolicy
from gateway.policy.model import Action, Facts
from gateway.targets import TargetLoad
from tests.policy.conftest import load

ENTITIES = ("email", "phone", "us_ssn", "aws_access_key", "iban", "ticket")
TASKS = ("code", "math", "chat", "summarization", "creative")
STRATEGIES = ("ordered", "cheapest", "weighted", "lowest-latency", "spill")

levels = st.sampled_from(LEVEL_NAMES)


@st.composite
def targets(draw: st.DrawFn) -> dict[str, Any]:
    count = draw(st.integers(1, 5))
    out: dict[str, Any] = {}
    for i in range(count):
        spec: dict[str, Any] = {
            "kind": draw(st.sampled_from(["open", "proprietary"])),
            "base_url": "http://127.0.0.1:9/v1",
            "model": f"m{i}",
            "price": {
                "input_per_mtok": draw(st.integers(0, 20)),
                "output_per_mtok": draw(st.integers(0, 40)),
            },
            "weight": draw(st.integers(1, 5)),
        }
        if draw(st.booleans()):
            spec["max_sensitivity"] = draw(levels)
        if draw(st.booleans()):
            spec["api_key"] = draw(st.sampled_from(["k", "${UNSET_KEY:-}"]))
        out[f"t{i}"] = spec
    return out


@st.composite
def conditions(draw: st.DrawFn) -> dict[str, Any] | None:
    options: list[dict[str, Any]] = [
        {"sensitivity": {draw(st.sampled_from(["eq", "gte", "lt", "ne"])): draw(levels)}},
        {
            "entities": {
                draw(st.sampled_from(["any", "all", "none"])): draw(
                    st.lists(st.sampled_from(ENTITIES), min_size=1, max_size=3, unique=True)
                )
            }
        },
        {"task": draw(st.lists(st.sampled_from(TASKS), min_size=1, max_size=3, unique=True))},
        {"prompt_tokens": {"gt": draw(st.integers(0, 2000))}},
        {"stream": draw(st.booleans())},
        {"not": {"task": draw(st.sampled_from(TASKS))}},
    ]
    picked = draw(st.lists(st.sampled_from(range(len(options))), max_size=2, unique=True))
    if not picked:
        return None
    when: dict[str, Any] = {}
    for index in picked:
        when.update(options[index])
    return when


@st.composite
def policies(draw: st.DrawFn) -> dict[str, Any]:
    declared = draw(targets())
    names = list(declared)
    rules: list[dict[str, Any]] = []
    for i in range(draw(st.integers(1, 6))):
        rule: dict[str, Any] = {"name": f"r{i}"}
        when = draw(conditions())
        if when is not None:
            rule["when"] = when
        if draw(st.integers(0, 5)) == 0:
            rule["deny"] = {"message": "no"}
        else:
            chosen = draw(
                st.lists(st.sampled_from(names), min_size=1, max_size=len(names), unique=True)
            )
            rule["route"] = {"targets": chosen, "strategy": draw(st.sampled_from(STRATEGIES))}
            redact = draw(st.sampled_from([None, "all", "some"]))
            if redact == "all":
                rule["redact"] = {"entities": "all"}
            elif redact == "some":
                rule["redact"] = {
                    "entities": draw(st.lists(st.sampled_from(ENTITIES), min_size=1, unique=True))
                }
        rules.append(rule)
    return {
        "targets": declared,
        "entities": {"ticket": {"pattern": "TCK-[0-9]+", "level": draw(levels)}},
        "sensitivity": {
            "entities": {e: draw(levels) for e in ENTITIES if e != "ticket" and draw(st.booleans())}
        },
        "rules": rules,
    }


@st.composite
def request_facts(draw: st.DrawFn, policy: CompiledPolicy) -> Facts:
    found = draw(st.lists(st.sampled_from(ENTITIES), max_size=4, unique=True))
    declared = draw(st.none() | st.sampled_from(list(Level)))
    sensitivity = policy.sensitivity(found, declared, None)
    names = list(policy.targets)
    latency = draw(st.dictionaries(st.sampled_from(names), st.floats(1, 1000), max_size=len(names)))
    # any live load, saturated or not: a spill must still never reach a target above its level
    load = draw(
        st.dictionaries(
            st.sampled_from(names),
            st.builds(
                TargetLoad.of,
                in_flight=st.integers(0, 10),
                max_in_flight=st.none() | st.integers(1, 8),
                queue_depth=st.none() | st.integers(0, 50),
                server_waiting=st.none() | st.floats(0, 20),
                kv_cache_usage=st.none() | st.floats(0, 1),
            ),
            max_size=len(names),
        )
    )
    return Facts(
        endpoint="chat",
        alias="auto",
        sensitivity=sensitivity,
        task=draw(st.sampled_from(TASKS)),
        prompt_tokens=draw(st.integers(0, 5000)),
        stream=draw(st.booleans()),
        max_tokens=draw(st.none() | st.integers(1, 4000)),
        draw=draw(st.floats(0, 1, exclude_max=True)),
        target_latency_ms=MappingProxyType(latency),
        load=MappingProxyType(load),
        entity_levels=MappingProxyType({e: policy.entity_level(e) for e in sensitivity.entities}),
        declared_level=declared,
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), spec=policies())
def test_no_target_ever_receives_data_above_its_level(
    data: st.DataObject, spec: dict[str, Any]
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "p.yaml").write_text(yaml.safe_dump(spec), encoding="utf-8")
        policy = load(Path(tmp))
    for _ in range(5):
        facts = data.draw(request_facts(policy))
        decision = policy.decide(facts)
        redacted = decision.redact.entities if decision.redact is not None else frozenset()
        floor = max(
            [facts.declared_level or Level.PUBLIC]
            + [facts.entity_levels[e] for e in facts.sensitivity.entities if e not in redacted]
        )
        if decision.action is Action.ROUTE:
            # what is sent is at least as sensitive as what was not redacted
            assert decision.level >= floor
        if not redacted and decision.action is Action.ROUTE:
            assert decision.level >= facts.sensitivity.level
        for name in decision.targets:
            assert policy.targets[name].may_receive(decision.level), (name, decision)
        if decision.action is Action.ROUTE:
            assert decision.targets, decision
            available = [
                t for t in decision.targets if policy.targets[t].unavailable_reason is None
            ]
            assert list(decision.targets[: len(available)]) == available
        rule = next((r for r in policy.rule_sets["default"].rules if r.name == decision.rule), None)
        if rule is not None and rule.action is Action.ROUTE:
            named = set(rule.targets)
            assert set(decision.targets) | set(decision.excluded) == named
            for name in decision.excluded:
                assert not policy.targets[name].may_receive(decision.level)
            if all(not policy.targets[n].may_receive(decision.level) for n in named):
                assert decision.action is Action.DENY
        assert policy.decide(facts) == decision
