"""decide(): first match wins, sensitivity filtering, strategies, trace, purity."""

from __future__ import annotations

import builtins
import socket
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest

from gateway.errors import PolicyDenied
from gateway.levels import Level
from gateway.policy.compiled import CompiledPolicy
from gateway.policy.model import Action, CacheMode, Facts, Sensitivity
from tests.policy.conftest import WriteDir, load

POLICY = """
targets:
  local: {kind: open, base_url: http://127.0.0.1:9/v1, model: llama, weight: 1}
  small: {kind: open, base_url: http://127.0.0.1:9/v1, model: qwen, max_sensitivity: internal, weight: 3,
          price: {input_per_mtok: 0.1, output_per_mtok: 0.1}}
  cloud: {kind: proprietary, base_url: http://127.0.0.1:9/v1, model: gpt-4o, api_key: k,
          price: {input_per_mtok: 2.5, output_per_mtok: 10}}
  cheap-cloud: {kind: proprietary, base_url: http://127.0.0.1:9/v1, model: mini, api_key: k,
          price: {input_per_mtok: 0.15, output_per_mtok: 0.6}}
  keyless: {kind: proprietary, base_url: http://127.0.0.1:9/v1, model: m, api_key: "${NOPE:-}",
          price: {input_per_mtok: 0.01, output_per_mtok: 0.01}}
aliases:
  gpt-4o: {targets: [cloud]}
  rules-only: {}
entities:
  ticket: {pattern: 'TCK-[0-9]{4}', level: internal}
defaults:
  cache: {mode: always, ttl_s: 60}
  baseline: cloud
rules:
  - name: blocked-app
    when: {header.x-app: {matches: '^legacy-'}}
    deny: {message: legacy apps are retired}
  - name: vip
    when: {metadata.tier: gold, not: {team: interns}}
    route: {targets: [cloud]}
    limits: {rpm: 10}
  - name: pinned
    when: {model: {ne: auto}}
    route: {alias: true}
  - name: redact-code
    when: {task: code, entities: {any: [email, phone]}}
    redact: {entities: [email], restore: true}
    route: {targets: [cloud, local]}
    cache: {mode: never}
  - name: expensive
    when: {estimated_cost: {target: cloud, gt: 0.05}}
    route: {targets: [small, local], strategy: weighted}
  - name: fast
    when: {any: [{stream: true}, {tools: true}]}
    route: {targets: [cloud, cheap-cloud, local], strategy: lowest-latency}
  - name: tight-budget
    when: {budget_used: {gte: 0.8}}
    route: {targets: [local]}
  - name: everything
    route: {targets: [keyless, cloud, cheap-cloud, local, small], strategy: cheapest}
policies:
  strict:
    rules:
      - {name: strict-all, route: {targets: [local]}}
teams:
  research: {policy: strict}
sensitivity:
  declassify: {teams: [security]}
"""


@pytest.fixture
def policy(write_policy: WriteDir) -> CompiledPolicy:
    return load(write_policy(**{"p.yaml": POLICY}))


def facts(**kw: Any) -> Facts:
    entities: tuple[str, ...] = kw.pop("entities", ())
    levels = {"email": Level.CONFIDENTIAL, "phone": Level.CONFIDENTIAL, "ticket": Level.INTERNAL}
    entity_levels = kw.pop("entity_levels", {e: levels.get(e, Level.RESTRICTED) for e in entities})
    level = kw.pop("level", max([Level.PUBLIC, *entity_levels.values()]))
    base: dict[str, Any] = {
        "endpoint": "chat",
        "alias": "auto",
        "sensitivity": Sensitivity(level, tuple(sorted(entities))),
        "task": "chat",
        "prompt_tokens": 100,
        "entity_levels": MappingProxyType(entity_levels),
    }
    base.update(kw)
    return Facts(**base)


def test_catch_all_cheapest_with_unavailable_target_last(policy: CompiledPolicy) -> None:
    d = policy.decide(facts())
    assert d.rule == "everything" and d.action is Action.ROUTE
    # local (0) < small < cheap-cloud < cloud; keyless is cheapest but has no key: last
    assert d.targets == ("local", "small", "cheap-cloud", "cloud", "keyless")
    assert d.estimated_cost_usd["cloud"] == pytest.approx((100 * 2.5 + 256 * 10) / 1e6)
    assert d.baseline == "cloud"
    assert d.cache.mode is CacheMode.ALWAYS and d.cache.ttl_s == 60
    assert [s.rule for s in d.trace] == [
        "blocked-app",
        "vip",
        "pinned",
        "redact-code",
        "expensive",
        "fast",
        "tight-budget",
        "everything",
    ]
    assert d.trace[0].why == "header.x-app not set does not match /^legacy-/"
    assert d.trace[-1].matched


def test_confidential_data_never_reaches_internal_targets(policy: CompiledPolicy) -> None:
    d = policy.decide(facts(entities=("email",)))
    assert d.rule == "everything"
    assert d.targets == ("local",)
    assert set(d.excluded) == {"keyless", "cloud", "cheap-cloud", "small"}
    assert d.level is Level.CONFIDENTIAL


def test_deny_rule(policy: CompiledPolicy) -> None:
    d = policy.decide(facts(headers=MappingProxyType({"x-app": "legacy-crm"})))
    assert d.action is Action.DENY and d.rule == "blocked-app"
    assert d.deny_message == "legacy apps are retired"
    assert d.targets == ()


def test_metadata_and_not(policy: CompiledPolicy) -> None:
    gold = MappingProxyType({"tier": "gold"})
    d = policy.decide(facts(metadata=gold))
    assert d.rule == "vip" and d.limits is not None and d.limits.rpm == 10
    d = policy.decide(facts(metadata=gold, team="interns"))
    assert d.rule == "everything"
    assert d.trace[1].why == "team = interns holds"


def test_vip_with_confidential_data_fails_closed(policy: CompiledPolicy) -> None:
    d = policy.decide(facts(metadata=MappingProxyType({"tier": "gold"}), entities=("phone",)))
    assert d.action is Action.DENY and d.rule == "vip"
    assert d.excluded == ("cloud",)
    assert (
        d.deny_message is not None and "no target may receive confidential data" in d.deny_message
    )
    assert "cloud (max internal)" in d.deny_message


def test_pinned_alias_and_alias_without_targets(policy: CompiledPolicy) -> None:
    d = policy.decide(facts(alias="gpt-4o"))
    assert d.rule == "pinned" and d.targets == ("cloud",)
    d = policy.decide(facts(alias="rules-only"))
    assert d.rule == "everything"
    assert d.trace[2].why == "model 'rules-only' names no targets of its own"


def test_redaction_lowers_the_level_of_what_leaves(policy: CompiledPolicy) -> None:
    d = policy.decide(facts(task="code", entities=("email",)))
    assert d.rule == "redact-code"
    assert d.redact is not None and d.redact.entities == {"email"} and d.redact.restore
    assert d.level is Level.PUBLIC and d.targets == ("cloud", "local")
    assert d.cache.mode is CacheMode.NEVER


def test_unredacted_entities_keep_their_level(policy: CompiledPolicy) -> None:
    d = policy.decide(facts(task="code", entities=("email", "phone")))
    assert d.rule == "redact-code"
    assert d.level is Level.CONFIDENTIAL and d.targets == ("local",) and d.excluded == ("cloud",)


def test_declared_level_is_not_redacted_away(policy: CompiledPolicy) -> None:
    d = policy.decide(
        facts(
            task="code",
            entities=("email",),
            level=Level.CONFIDENTIAL,
            declared_level=Level.CONFIDENTIAL,
        )
    )
    assert d.level is Level.CONFIDENTIAL and d.targets == ("local",)


def test_an_unexplained_level_is_not_redacted_away(policy: CompiledPolicy) -> None:
    d = policy.decide(facts(task="code", entities=("email",), level=Level.RESTRICTED))
    assert d.level is Level.RESTRICTED and d.targets == ("local",)


def test_estimated_cost_condition_uses_max_tokens_and_weighted_draw(policy: CompiledPolicy) -> None:
    small_request = facts(max_tokens=100)
    assert policy.decide(small_request).rule == "everything"
    big = facts(prompt_tokens=10_000, max_tokens=4000)  # 0.025 + 0.04 > 0.05
    d = policy.decide(replace(big, draw=0.0))
    assert d.rule == "expensive" and d.targets == ("small", "local")
    # weights small=3, local=1: draws in [0.75, 1) pick local first
    assert policy.decide(replace(big, draw=0.9)).targets == ("local", "small")
    assert policy.decide(replace(big, draw=0.74)).targets == ("small", "local")


def test_lowest_latency_unknown_after_known(policy: CompiledPolicy) -> None:
    latency = MappingProxyType({"local": 80.0, "cheap-cloud": 300.0})
    d = policy.decide(facts(stream=True, target_latency_ms=latency))
    assert d.rule == "fast" and d.targets == ("local", "cheap-cloud", "cloud")
    d = policy.decide(facts(has_tools=True))
    assert d.targets == ("cloud", "cheap-cloud", "local")


def test_budget_used(policy: CompiledPolicy) -> None:
    assert policy.decide(facts(budget_usd=10.0, budget_remaining_usd=1.0)).rule == "tight-budget"
    assert policy.decide(facts(budget_usd=10.0, budget_remaining_usd=5.0)).rule == "everything"
    d = policy.decide(facts())
    assert d.trace[6].why == "budget_used is not known"


def test_rule_sets_and_teams(policy: CompiledPolicy) -> None:
    assert policy.rule_set_for("research", None) == "strict"
    assert policy.rule_set_for("research", "default") == "default"
    assert policy.rule_set_for(None, None) == "default"
    assert policy.rule_set_for("unknown-team", None) == "default"
    with pytest.raises(PolicyDenied):
        policy.rule_set_for(None, "laxer")
    assert policy.decide(facts(), "strict").rule == "strict-all"
    assert policy.rules()[-1] == "strict-all"


def test_sensitivity_declared_raises_and_declassify(policy: CompiledPolicy) -> None:
    assert policy.sensitivity(["email"], None, None).level is Level.CONFIDENTIAL
    assert policy.sensitivity(["ticket"], Level.RESTRICTED, None).level is Level.RESTRICTED
    assert policy.sensitivity(["email"], Level.PUBLIC, "devs").level is Level.CONFIDENTIAL
    assert policy.sensitivity(["email"], Level.PUBLIC, "security").level is Level.PUBLIC
    assert policy.sensitivity(["made_up"], None, None).level is Level.RESTRICTED
    assert policy.sensitivity([], None, None) == Sensitivity(Level.PUBLIC, ())


def test_no_rule_matches_denies(write_policy: WriteDir) -> None:
    text = POLICY.replace(
        "  - name: everything\n    route: {targets: [keyless, cloud, cheap-cloud, local, small], strategy: cheapest}\n",
        "",
    )
    policy = load(write_policy(**{"p.yaml": text}))
    d = policy.decide(facts())
    assert d.action is Action.DENY and d.rule == "<none>"
    assert d.deny_message == "no rule of rule set 'default' matched this request"


def test_decide_is_pure_and_does_no_io(
    policy: CompiledPolicy, monkeypatch: pytest.MonkeyPatch
) -> None:
    cases = [
        facts(),
        facts(entities=("email",), task="code"),
        facts(prompt_tokens=10_000, max_tokens=4000, draw=0.5),
        facts(stream=True, target_latency_ms=MappingProxyType({"cloud": 5.0})),
        facts(alias="gpt-4o"),
    ]
    expected = [policy.decide(f) for f in cases]

    def refuse(*_a: object, **_k: object) -> None:
        raise AssertionError("decide did I/O")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(builtins, "open", refuse)
    monkeypatch.setattr(Path, "open", refuse)
    for f, first in zip(cases, expected, strict=True):
        for _ in range(3):
            assert policy.decide(f) == first
            assert policy.decide(replace(f)) == first
