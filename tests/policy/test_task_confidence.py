"""The ``task_confidence`` condition: checked at load, decided on, explained."""

from __future__ import annotations

import pytest

from gateway.judging.build import FactsBuilder
from gateway.levels import Level
from gateway.policy.explain import explain_request, explanation
from gateway.policy.model import Facts, Sensitivity
from tests.policy.conftest import BASE, WriteDir, load, problems_of

UNSURE = """
targets:
  open-a: {kind: open, base_url: http://127.0.0.1:9/v1, model: llama}
  prop-a: {kind: proprietary, base_url: http://127.0.0.1:9/v1, model: gpt-4o, api_key: sk-test}
rules:
  - name: unsure
    when: {task_confidence: {lt: 0.5}}
    route: {targets: [open-a]}
  - name: sure-code
    when: {task: code, task_confidence: {gte: 0.9}}
    route: {targets: [prop-a]}
  - name: everything
    route: {targets: [open-a]}
"""


def _facts(task: str, confidence: float) -> Facts:
    return Facts(
        endpoint="chat",
        alias="auto",
        sensitivity=Sensitivity(Level.PUBLIC),
        task=task,
        prompt_tokens=10,
        task_confidence=confidence,
    )


def test_rules_decide_on_the_confidence(write_policy: WriteDir) -> None:
    policy = load(write_policy(**{"p.yaml": UNSURE}))
    assert policy.decide(_facts("code", 0.3)).rule == "unsure"
    assert policy.decide(_facts("code", 0.95)).rule == "sure-code"
    assert policy.decide(_facts("code", 0.7)).rule == "everything"
    trace = policy.decide(_facts("code", 0.7)).trace
    assert trace[0].rule == "unsure" and not trace[0].matched
    assert "task_confidence" in trace[0].why


@pytest.mark.parametrize(
    ("when", "message"),
    [
        ("{task_confidence: {lt: 1.5}}", "<= 1"),
        ("{task_confidence: {lt: -0.1}}", ">= 0"),
        ("{task_confidence: high}", "number"),
        ("{task_confidence: [0.1, 0.2]}", "a list is not allowed"),
        ("{task_confidence: {below: 0.5}}", "below"),
    ],
)
def test_invalid_values_are_refused_at_load(
    write_policy: WriteDir, when: str, message: str
) -> None:
    text = BASE.replace(
        "  - name: everything\n",
        f"  - name: bad\n    when: {when}\n    route: {{targets: [open-a]}}\n  - name: everything\n",
    )
    problems = problems_of(write_policy(**{"p.yaml": text}))
    assert any(message in p.message for p in problems), [p.message for p in problems]
    assert all(p.rule == "bad" for p in problems)


def test_explain_shows_the_confidence(write_policy: WriteDir) -> None:
    policy = load(write_policy(**{"p.yaml": UNSURE}))
    builder = FactsBuilder(policy)
    body = {"messages": [{"role": "user", "content": "Translate into German: good night"}]}
    facts, decision = explain_request(builder, body=body, headers={})
    shown = explanation(facts, decision)
    assert shown["task"] == "translation"
    assert 0.5 < shown["task_confidence"] <= 1.0
    facts, decision = explain_request(builder, body=body, headers={"x-gateway-task": "code"})
    assert explanation(facts, decision)["task_confidence"] == 1.0
