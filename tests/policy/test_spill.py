"""Capacity in target specs, conditions over live load, and the ``spill``
strategy, as the policy compiles and decides them (pure: facts in)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.levels import LEVEL_NAMES, Level
from gateway.policy.model import Action, Facts, Sensitivity
from gateway.targets import Capacity, TargetLoad
from tests.policy.conftest import SHIPPED, WriteDir, load, problems_of

POLICY = """
targets:
  local:
    kind: open
    base_url: http://127.0.0.1:9/v1
    model: llama
    capacity:
      max_in_flight: ${MAX:-}
      shared_max_in_flight: ${SHARED:-}
      max_queue: 16
      max_wait_ms: 2500
    metrics_url: ${METRICS:-}
  cloud:
    kind: proprietary
    base_url: http://127.0.0.1:9/v1
    model: gpt-4o-mini
    api_key: sk-test
    price: {input_per_mtok: 0.15, output_per_mtok: 0.6}
rules:
  - name: busy
    when: {load: {local: {gte: 0.9}}, queue_wait_ms: {local: {gt: 500}}}
    route: {targets: [cloud]}
  - name: slow-first-byte
    when: {ttfb_ms: {local: {gt: 2000}}}
    route: {targets: [cloud, local]}
  - name: spill
    route: {targets: [local, cloud], strategy: spill}
"""


def facts(level: Level = Level.PUBLIC, **load: TargetLoad) -> Facts:
    return Facts(
        endpoint="chat",
        alias="auto",
        sensitivity=Sensitivity(level),
        task="chat",
        prompt_tokens=10,
        load=MappingProxyType(load),
        declared_level=level if level > Level.PUBLIC else None,
    )


def test_capacity_from_the_environment_and_empty_means_no_limit(write_policy: WriteDir) -> None:
    path = write_policy(**{"p.yaml": POLICY})
    unset = load(path)
    assert unset.targets["local"].capacity is None  # nothing counted per request
    assert unset.targets["local"].metrics_url is None
    env = {"MAX": "8", "SHARED": "20", "METRICS": "http://gpu:8000/metrics"}
    policy = load(path, env)
    assert policy.targets["local"].capacity == Capacity(8, 20, 16, 2500.0)
    assert policy.targets["local"].metrics_url == "http://gpu:8000/metrics"
    assert policy.targets["cloud"].capacity is None
    assert load(path, {"SHARED": "20"}).targets["local"].capacity == Capacity(None, 20, 16, 2500.0)


@pytest.mark.parametrize(
    ("env", "message", "fix"),
    [
        ({"MAX": "eight"}, "capacity.max_in_flight must be a whole number, got str 'eight'", None),
        ({"MAX": "0"}, "capacity.max_in_flight must be >= 1, got 0", None),
        (
            {"METRICS": "gpu:8000/metrics"},
            "metrics_url 'gpu:8000/metrics' is not an http(s) URL",
            "http://localhost:8000/metrics",
        ),
    ],
)
def test_capacity_errors_name_the_target_and_the_line(
    write_policy: WriteDir, env: dict[str, str], message: str, fix: str | None
) -> None:
    path = write_policy(**{"p.yaml": POLICY})
    problems = [p for p in problems_of(path, env) if message in p.message]
    assert problems, [p.message for p in problems_of(path, env)]
    assert "target 'local'" in problems[0].message
    assert problems[0].line is not None and 7 <= problems[0].line <= 14
    if fix is not None:
        assert problems[0].fix is not None and fix in problems[0].fix


def test_an_unknown_capacity_key_is_refused_with_a_suggestion(write_policy: WriteDir) -> None:
    text = POLICY.replace("max_queue: 16", "max_queeu: 16")
    problems = problems_of(write_policy(**{"p.yaml": text}))
    assert any("max_queeu" in p.message and p.fix and "max_queue" in p.fix for p in problems)


@pytest.mark.parametrize(
    ("when", "message"),
    [
        ("{load: {lokal: {gt: 0.5}}}", "unknown target 'lokal' in 'load'"),
        ("{load: 0.5}", "condition 'load' names the target(s) whose load it reads"),
        ("{load: {local: {gt: 2}}}", "must be >= 0 and <= 1"),
        ("{queue_wait_ms: {local: {about: 3}}}", "unknown key 'about'"),
        ("{in_flight: {local: {}}}", "has no operator"),
    ],
)
def test_load_condition_errors(write_policy: WriteDir, when: str, message: str) -> None:
    text = POLICY.replace("{load: {local: {gte: 0.9}}, queue_wait_ms: {local: {gt: 500}}}", when)
    problems = problems_of(write_policy(**{"p.yaml": text}))
    assert any(message in p.message for p in problems), [p.message for p in problems]


def test_conditions_over_load_and_unknown_is_not_zero(write_policy: WriteDir) -> None:
    policy = load(write_policy(**{"p.yaml": POLICY}), {"MAX": "10"})
    busy = TargetLoad.of(in_flight=9, max_in_flight=10, queue_wait_ms=800.0)
    assert policy.decide(facts(local=busy)).rule == "busy"
    calm = TargetLoad.of(in_flight=9, max_in_flight=10, queue_wait_ms=100.0)
    assert policy.decide(facts(local=calm)).rule == "spill"
    # nothing known about the queue: "queue_wait_ms > 500" does not hold (unknown is not 0 either)
    unknown_wait = TargetLoad.of(in_flight=10, max_in_flight=10)
    decision = policy.decide(facts(local=unknown_wait))
    assert decision.rule == "spill"
    why = {step.rule: step.why for step in decision.trace}
    assert why["busy"] == "queue_wait_ms of local is not known"
    # a load known only from the server's KV cache counts
    kv = TargetLoad.of(kv_cache_usage=0.95, queue_wait_ms=900.0)
    assert policy.decide(facts(local=kv)).rule == "busy"
    slow = Facts(
        endpoint="chat",
        alias="auto",
        sensitivity=Sensitivity(Level.PUBLIC),
        task="chat",
        prompt_tokens=1,
        target_latency_ms=MappingProxyType({"local": 2500.0}),
    )
    assert policy.decide(slow).targets == ("cloud", "local")


def test_spill_keeps_the_order_until_the_first_target_is_saturated(write_policy: WriteDir) -> None:
    policy = load(write_policy(**{"p.yaml": POLICY}), {"MAX": "4"})
    assert policy.decide(facts()).targets == ("local", "cloud")
    room = TargetLoad.of(in_flight=3, max_in_flight=4)
    decision = policy.decide(facts(local=room))
    assert decision.targets == ("local", "cloud") and decision.spill
    full = TargetLoad.of(in_flight=4, max_in_flight=4)
    assert policy.decide(facts(local=full)).targets == ("cloud", "local")
    queueing = TargetLoad.of(server="vllm", server_running=48, server_waiting=2)
    assert policy.decide(facts(local=queueing)).targets == ("cloud", "local")
    # confidential data: the proprietary target is not eligible, the open one stays
    decision = policy.decide(facts(Level.CONFIDENTIAL, local=full))
    assert decision.targets == ("local",) and decision.excluded == ("cloud",)


def test_the_shipped_policy_spills_clean_chat_and_keeps_confidential_chat_local() -> None:
    policy = load(SHIPPED, {"OPEN_MODEL_MAX_IN_FLIGHT": "8", "OPENAI_API_KEY": "sk-x"})
    local = policy.targets["local"]
    assert local.capacity == Capacity(8, None, 256, 5000.0)
    assert load(SHIPPED, {"OPENAI_API_KEY": "sk-x"}).targets["local"].capacity is None
    full = TargetLoad.of(in_flight=8, max_in_flight=8)
    clean = policy.decide(facts(local=full))
    assert (clean.rule, clean.targets) == ("open-first-tasks", ("openai-gpt-4o-mini", "local"))
    for level in (Level.CONFIDENTIAL, Level.RESTRICTED):
        kept = policy.decide(facts(level, local=full))
        assert kept.targets == ("local",), (level, kept)


# --- the property ---------------------------------------------------------------------------


@st.composite
def spill_policies(draw: st.DrawFn) -> dict[str, Any]:
    count = draw(st.integers(2, 5))
    targets: dict[str, Any] = {}
    for i in range(count):
        spec: dict[str, Any] = {
            "kind": draw(st.sampled_from(["open", "proprietary"])),
            "base_url": "http://127.0.0.1:9/v1",
            "model": f"m{i}",
            "api_key": "k",
            "price": {"input_per_mtok": draw(st.integers(0, 5)), "output_per_mtok": 1},
            "max_sensitivity": draw(st.sampled_from(LEVEL_NAMES)),
        }
        if draw(st.booleans()):
            spec["capacity"] = {
                "max_in_flight": draw(st.integers(1, 4)),
                "max_queue": 2,
                "max_wait_ms": 10,
            }
        targets[f"t{i}"] = spec
    names = list(targets)
    order = draw(st.permutations(names))
    return {
        "targets": targets,
        "rules": [{"name": "spill", "route": {"targets": list(order), "strategy": "spill"}}],
    }


@settings(max_examples=200, deadline=None)
@given(spec=spill_policies(), data=st.data())
def test_no_request_ever_spills_to_a_target_above_its_max_sensitivity(
    spec: dict[str, Any], data: st.DataObject
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "p.yaml").write_text(yaml.safe_dump(spec), encoding="utf-8")
        policy = load(Path(tmp))
    names = list(policy.targets)
    for _ in range(5):
        level = data.draw(st.sampled_from(list(Level)))
        loads = data.draw(
            st.dictionaries(
                st.sampled_from(names),
                st.builds(
                    TargetLoad.of,
                    in_flight=st.integers(0, 6),
                    max_in_flight=st.integers(1, 4),
                    server_waiting=st.none() | st.integers(0, 3),
                ),
            )
        )
        decision = policy.decide(facts(level, **loads))
        eligible = [
            n for n in spec["rules"][0]["route"]["targets"] if policy.targets[n].may_receive(level)
        ]
        if not eligible:
            assert decision.action is Action.DENY
            continue
        # every eligible target, none other, each free one before every saturated one
        assert sorted(decision.targets) == sorted(eligible)
        for name in decision.targets:
            assert policy.targets[name].max_sensitivity >= level
        saturated = [n in loads and loads[n].saturated for n in decision.targets]
        assert saturated == sorted(saturated)


def test_policy_explain_decides_with_a_given_load(tmp_path: Path) -> None:
    from tests.policy.test_tools import run_cli

    request = tmp_path / "r.json"
    request.write_text('{"model": "auto", "messages": [{"role": "user", "content": "hi there"}]}')
    load_file = tmp_path / "load.json"
    load_file.write_text('{"local": {"in_flight": 8, "max_in_flight": 8, "queue_depth": 3}}')
    code, out = run_cli(["policy", "explain", str(request), "--load", str(load_file)])
    assert code == 0, out
    data = yaml.safe_load(out)
    assert data["rule"] == "open-first-tasks"
    assert data["load"]["local"]["saturated"] and data["load"]["local"]["queue_depth"] == 3
    assert data["spill"]["saturated"] == ["local"]
    # without OPENAI_API_KEY the proprietary target is unavailable: the open one stays first
    assert data["targets"] == ["local", "openai-gpt-4o-mini"]
    load_file.write_text('{"local": {"in_flight": "lots"}}')
    code, out = run_cli(["policy", "explain", str(request), "--load", str(load_file)])
    assert code == 1 and "cannot read load" in out
    load_file.write_text('{"local": {"inflight": 3}}')
    code, out = run_cli(["policy", "explain", str(request), "--load", str(load_file)])
    assert code == 1 and "unknown load reading(s) ['inflight']" in out
