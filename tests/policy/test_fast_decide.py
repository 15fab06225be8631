"""``decide``'s fast path agrees with the explaining one.

``decide`` tests conditions without words, uses targets prepared at load and
builds its trace only when read. :func:`reference_decide` is the evaluation as
it was before (every condition's ``check`` with its words, every step of the
trace built as it goes, targets worked out per request); for generated
policies and requests both give equal decisions, traces included.
"""

from __future__ import annotations

import inspect
import tempfile
from dataclasses import FrozenInstanceError, fields, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.levels import LEVEL_NAMES, Level
from gateway.policy.compiled import CompiledPolicy, worst_cost
from gateway.policy.model import Action, Decision, Facts, Sensitivity, TraceStep
from gateway.policy.predicates import Condition
from gateway.policy.rules import Rule
from gateway.policy.strategies import Strategy, available_first, order
from gateway.policy.trace import Trace
from tests.policy.conftest import WriteDir, load
from tests.policy.test_properties import ENTITIES, STRATEGIES, TASKS, targets

levels = st.sampled_from(LEVEL_NAMES)
ALIASES = ("auto", "pinned", "empty")
ENDPOINTS = ("chat", "completions", "embeddings")


# --- the evaluation as it was: eager words, targets per request --------------------


def reference_decide(policy: CompiledPolicy, facts: Facts, rule_set: str) -> Decision:
    trace: list[TraceStep] = []
    for rule in policy.rule_sets[rule_set].rules:
        why = rule.when.check(facts)
        if why is None and rule.use_alias:
            alias = policy.aliases.get(facts.alias)
            if alias is None or not alias.targets:
                why = f"model '{facts.alias}' names no targets of its own"
        if why is not None:
            trace.append(TraceStep(rule.name, False, why))
            continue
        trace.append(TraceStep(rule.name, True, rule.when.text))
        return _reference_apply(policy, rule, facts, tuple(trace))
    return Decision(
        rule="<none>",
        action=Action.DENY,
        level=facts.sensitivity.level,
        deny_message=f"no rule of rule set '{rule_set}' matched this request",
        trace=tuple(trace),
    )


def _reference_apply(
    policy: CompiledPolicy, rule: Rule, facts: Facts, trace: tuple[TraceStep, ...]
) -> Decision:
    if rule.action is Action.DENY:
        return Decision(
            rule=rule.name,
            action=Action.DENY,
            level=facts.sensitivity.level,
            deny_message=rule.deny_message or f"denied by rule '{rule.name}'",
            trace=trace,
        )
    redact = CompiledPolicy._redaction(rule, facts)
    level = _reference_level(policy, facts, redact.entities if redact is not None else frozenset())
    names = policy.aliases[facts.alias].targets if rule.use_alias else rule.targets
    named = [policy.targets[n] for n in names]
    eligible = [t for t in named if t.may_receive(level)]
    excluded = tuple(t.name for t in named if not t.may_receive(level))
    if not eligible:
        limits = ", ".join(f"{t.name} (max {t.max_sensitivity.label})" for t in named)
        return Decision(
            rule=rule.name,
            action=Action.DENY,
            level=level,
            excluded=excluded,
            deny_message=(
                f"rule '{rule.name}': no target may receive {level.label} data "
                f"(its targets: {limits}); refusing rather than sending it"
            ),
            trace=trace,
        )
    completion = (
        facts.max_tokens if facts.max_tokens is not None else policy.expected_completion_tokens
    )
    costs = {t.name: t.prices.cost(facts.prompt_tokens, completion) for t in eligible}
    ranked = order(rule.strategy, eligible, facts, costs)
    worst = {t.name: worst_cost(t, facts.prompt_tokens, facts.max_tokens) for t in eligible}
    names = tuple(t.name for t in ranked)
    stepped_down = False
    remaining = facts.budget_remaining_usd
    if rule.step_down and remaining is not None and worst[names[0]] > remaining:
        covered = sorted((n for n in names if worst[n] <= remaining), key=worst.__getitem__)
        if covered:
            names, stepped_down = tuple(covered), True
    return Decision(
        rule=rule.name,
        action=Action.ROUTE,
        targets=names,
        reserve_usd=max(worst[n] for n in names),
        soft_cap=rule.step_down,
        stepped_down=stepped_down,
        level=level,
        excluded=excluded,
        redact=redact,
        cache=rule.cache or policy.default_cache,
        limits=rule.limits,
        baseline=rule.baseline or policy.default_baseline,
        estimated_cost_usd=MappingProxyType(costs),
        trace=trace,
        spill=rule.strategy is Strategy.SPILL,
        spilled_from=_reference_spilled_from(rule, eligible, ranked),
    )


def _reference_spilled_from(rule: Rule, eligible: list[Any], ranked: list[Any]) -> str | None:
    """A spill rule's first target in declared order (unavailable last), when the
    load moved it back."""
    if rule.strategy is not Strategy.SPILL:
        return None
    first: str = available_first(eligible)[0].name
    return first if ranked[0].name != first else None


def _reference_level(policy: CompiledPolicy, facts: Facts, redacted: frozenset[str]) -> Level:
    declared = facts.declared_level if facts.declared_level is not None else Level.PUBLIC
    found = {
        e: facts.entity_levels.get(e, policy.entity_level(e)) for e in facts.sensitivity.entities
    }
    explained = max([declared, policy.default_level, *found.values()])
    kept = max(
        [declared, policy.default_level, *(lvl for e, lvl in found.items() if e not in redacted)]
    )
    if facts.sensitivity.level > explained:
        kept = max(kept, facts.sensitivity.level)
    return kept if redacted else max(kept, facts.sensitivity.level)


# --- generated policies: every kind of condition, alias rules, rule sets ------------


@st.composite
def conditions(draw: st.DrawFn, depth: int = 0) -> dict[str, Any]:
    options: list[Any] = [
        lambda: {"sensitivity": {draw(st.sampled_from(["eq", "gte", "lt", "ne"])): draw(levels)}},
        lambda: {"sensitivity": draw(st.lists(levels, min_size=1, max_size=2, unique=True))},
        lambda: {
            "entities": {
                draw(st.sampled_from(["any", "all", "none"])): draw(
                    st.lists(st.sampled_from(ENTITIES), min_size=1, max_size=3, unique=True)
                )
            }
        },
        lambda: {"task": draw(st.lists(st.sampled_from(TASKS), min_size=1, max_size=3))},
        lambda: {"task": {"not_in": [draw(st.sampled_from(TASKS))]}},
        lambda: {"model": {draw(st.sampled_from(["eq", "ne"])): draw(st.sampled_from(ALIASES))}},
        lambda: {"endpoint": draw(st.sampled_from(ENDPOINTS))},
        lambda: {
            "prompt_tokens": {draw(st.sampled_from(["gt", "lte"])): draw(st.integers(0, 2000))}
        },
        lambda: {"budget_used": {"gte": draw(st.sampled_from([0.0, 0.5, 0.8]))}},
        lambda: {"budget_remaining_usd": {"lt": draw(st.sampled_from([0.5, 5.0]))}},
        lambda: {"estimated_cost": {"target": "t0", "gt": draw(st.sampled_from([0.0, 0.001]))}},
        lambda: {"stream": draw(st.booleans())},
        lambda: {"tools": draw(st.booleans())},
        lambda: {"team": {"exists": draw(st.booleans())}},
        lambda: {"key": draw(st.sampled_from(["k1", "k2"]))},
        lambda: {"header.x-app": {"matches": draw(st.sampled_from(["^legacy-", "crm$"]))}},
        lambda: {"metadata.tier": draw(st.sampled_from(["gold", ["gold", "silver"]]))},
        lambda: {"metadata.tier": {"exists": draw(st.booleans())}},
    ]
    if depth < 2:
        options += [
            lambda: {"not": draw(conditions(depth + 1))},
            lambda: {
                draw(st.sampled_from(["any", "all"])): draw(
                    st.lists(conditions(depth + 1), min_size=1, max_size=3)
                )
            },
        ]
    picked = draw(st.lists(st.sampled_from(range(len(options))), min_size=1, max_size=3))
    when: dict[str, Any] = {}
    for index in picked:
        when.update(options[index]())
    return when


@st.composite
def rule_lists(draw: st.DrawFn, names: list[str], prefix: str) -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = []
    for i in range(draw(st.integers(1, 7))):
        rule: dict[str, Any] = {"name": f"{prefix}{i}"}
        if draw(st.integers(0, 4)) > 0:
            rule["when"] = draw(conditions())
        kind = draw(st.sampled_from(["deny", "alias", "targets", "targets"]))
        if kind == "deny":
            rule["deny"] = {"message": "no"}
            rules.append(rule)
            continue
        if kind == "alias":
            rule["route"] = {"alias": True}
        else:
            chosen = draw(st.lists(st.sampled_from(names), min_size=1, unique=True))
            rule["route"] = {"targets": chosen}
        rule["route"]["strategy"] = draw(st.sampled_from(STRATEGIES))
        redact = draw(st.sampled_from([None, "all", "some"]))
        if redact == "all":
            rule["redact"] = {"entities": "all", "restore": draw(st.booleans())}
        elif redact == "some":
            entities = draw(st.lists(st.sampled_from(ENTITIES), min_size=1, unique=True))
            rule["redact"] = {"entities": entities}
        if draw(st.booleans()):
            rule["cache"] = {"mode": draw(st.sampled_from(["auto", "always", "never"]))}
        if draw(st.booleans()):
            rule["limits"] = {"rpm": draw(st.integers(1, 100))}
        if draw(st.booleans()):
            rule["baseline"] = draw(st.sampled_from(names))
        rules.append(rule)
    return rules


@st.composite
def policies(draw: st.DrawFn) -> dict[str, Any]:
    declared = draw(targets())
    names = list(declared)
    spec: dict[str, Any] = {
        "targets": declared,
        "aliases": {
            "pinned": {"targets": draw(st.lists(st.sampled_from(names), min_size=1, unique=True))},
            "empty": {},
        },
        "entities": {"ticket": {"pattern": "TCK-[0-9]+", "level": draw(levels)}},
        "sensitivity": {
            "entities": {
                e: draw(levels) for e in ENTITIES if e != "ticket" and draw(st.booleans())
            },
            "default_level": draw(levels),
        },
        "defaults": {"expected_completion_tokens": draw(st.integers(1, 1000))},
        "rules": draw(rule_lists(names, "r")),
        "policies": {"other": {"rules": draw(rule_lists(names, "o"))}},
    }
    if draw(st.booleans()):
        spec["defaults"]["baseline"] = draw(st.sampled_from(names))
    return spec


@st.composite
def request_facts(draw: st.DrawFn, policy: CompiledPolicy) -> Facts:
    found = draw(st.lists(st.sampled_from(ENTITIES), max_size=4, unique=True))
    declared = draw(st.none() | st.sampled_from(list(Level)))
    sensitivity = policy.sensitivity(found, declared, None)
    if draw(st.integers(0, 5)) == 0:
        # a level the entities and the declaration do not explain
        sensitivity = replace(sensitivity, level=draw(st.sampled_from(list(Level))))
    names = list(policy.targets)
    latency = draw(st.dictionaries(st.sampled_from(names), st.floats(1, 1000), max_size=len(names)))
    budget = draw(st.none() | st.sampled_from([0.0, 10.0]))
    return Facts(
        endpoint=draw(st.sampled_from(ENDPOINTS)),
        alias=draw(st.sampled_from(ALIASES)),
        sensitivity=sensitivity,
        task=draw(st.sampled_from(TASKS)),
        prompt_tokens=draw(st.integers(0, 5000)),
        stream=draw(st.booleans()),
        has_tools=draw(st.booleans()),
        max_tokens=draw(st.none() | st.integers(1, 4000)),
        key_id=draw(st.none() | st.sampled_from(["k1", "k2"])),
        team=draw(st.none() | st.just("growth")),
        metadata=MappingProxyType(
            draw(st.dictionaries(st.just("tier"), st.sampled_from(["gold", "bronze"])))
        ),
        headers=MappingProxyType(
            draw(st.dictionaries(st.just("x-app"), st.sampled_from(["legacy-crm", "web"])))
        ),
        budget_usd=budget,
        budget_remaining_usd=None if budget is None else draw(st.sampled_from([0.0, 1.0, 9.0])),
        target_latency_ms=MappingProxyType(latency),
        draw=draw(st.floats(0, 1, exclude_max=True)),
        entity_levels=MappingProxyType({e: policy.entity_level(e) for e in sensitivity.entities}),
        declared_level=declared,
    )


def _load(spec: dict[str, Any]) -> CompiledPolicy:
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "p.yaml").write_text(yaml.safe_dump(spec), encoding="utf-8")
        return load(Path(tmp))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), spec=policies())
def test_decide_agrees_with_the_explaining_evaluation(
    data: st.DataObject, spec: dict[str, Any]
) -> None:
    policy = _load(spec)
    for _ in range(5):
        facts = data.draw(request_facts(policy))
        for rule_set in policy.rule_sets:
            for rule in policy.rule_sets[rule_set].rules:
                assert rule.when.test(facts) is (rule.when.check(facts) is None), rule.when.text
            expected = reference_decide(policy, facts, rule_set)
            decision = policy.decide(facts, rule_set)
            assert decision == expected
            assert tuple(decision.trace) == expected.trace
            assert [step.why for step in decision.trace] == [step.why for step in expected.trace]
            assert repr(decision) == repr(expected)
            assert policy.leaving_level(facts, frozenset()) == _reference_level(
                policy, facts, frozenset()
            )


# --- the pieces ------------------------------------------------------------------

SMALL = """
targets:
  open-a: {kind: open, base_url: http://127.0.0.1:9/v1, model: llama}
rules:
  - name: streams
    when: {stream: true}
    route: {targets: [open-a]}
  - name: everything
    route: {targets: [open-a]}
"""


def _facts(**changes: Any) -> Facts:
    base = Facts(
        endpoint="chat",
        alias="auto",
        sensitivity=Sensitivity(Level.PUBLIC),
        task="chat",
        prompt_tokens=5,
    )
    return replace(base, **changes)


def test_the_trace_is_built_when_read_not_when_deciding(write_policy: WriteDir) -> None:
    policy = load(write_policy(**{"p.yaml": SMALL}))
    streams = policy.rule_sets["default"].rules[0]

    def unexplained(_facts: Facts) -> str | None:
        raise AssertionError("the words were built")

    quiet = replace(streams, when=Condition("stream = true", unexplained, streams.when.test))
    rules = (quiet, *policy.rule_sets["default"].rules[1:])
    patched = replace(
        policy, rule_sets={"default": replace(policy.rule_sets["default"], rules=rules)}
    )
    decision = patched.decide(_facts())
    assert decision.rule == "everything"
    with pytest.raises(AssertionError, match="the words were built"):
        list(decision.trace)


def test_a_trace_is_its_tuple_of_steps(write_policy: WriteDir) -> None:
    policy = load(write_policy(**{"p.yaml": SMALL}))
    trace = policy.decide(_facts()).trace
    steps = (
        TraceStep("streams", False, "stream is False, not True"),
        TraceStep("everything", True, "always"),
    )
    assert isinstance(trace, Trace)
    assert trace == steps and steps == trace and trace != list(steps)
    assert hash(trace) == hash(steps)
    assert repr(trace) == repr(steps)
    assert len(trace) == 2 and trace[-1] == steps[-1] and trace[:1] == steps[:1]
    assert list(reversed(trace)) == list(reversed(steps))
    assert steps[0] in trace and trace.index(steps[1]) == 1
    assert trace == policy.decide(_facts()).trace
    assert trace != policy.decide(_facts(stream=True)).trace
    assert policy.decide(_facts(stream=True)).trace == (
        TraceStep("streams", True, "stream = True"),
    )


def test_the_decision_init_takes_the_fields_in_order_with_their_defaults() -> None:
    params = list(inspect.signature(Decision.__init__).parameters.values())[1:]
    declared = fields(Decision)
    assert [p.name for p in params] == [f.name for f in declared]
    bare = Decision("r", Action.DENY)
    for f in declared[2:]:
        default = f.default_factory() if callable(f.default_factory) else f.default
        assert getattr(bare, f.name) == default, f.name
        assert getattr(bare, f.name) is default, f.name
    assert replace(bare, rule="s") == Decision("s", Action.DENY)
    with pytest.raises(FrozenInstanceError):
        bare.rule = "s"  # type: ignore[misc]
