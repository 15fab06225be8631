"""FactsBuilder: entities to levels, hints, task, tokens, metadata, headers."""

from __future__ import annotations

import pytest

from gateway.errors import InvalidRequest
from gateway.judging.build import FactsBuilder
from gateway.judging.task import TaskInput, TaskLabel
from gateway.levels import Level
from tests.policy.conftest import BASE, WriteDir, load

POLICY = (
    BASE
    + """
entities:
  employee_id: {pattern: 'EMP-[0-9]{6}', level: internal}
sensitivity:
  entities: {email: confidential, phone: internal}
  declassify: {teams: [security]}
"""
)


class Fixed:
    def __init__(self, task: str) -> None:
        self.task = task
        self.seen: list[TaskInput] = []

    def classify(self, item: TaskInput) -> TaskLabel:
        self.seen.append(item)
        return TaskLabel(self.task, 0.75)


@pytest.fixture
def builder(write_policy: WriteDir) -> FactsBuilder:
    return FactsBuilder(load(write_policy(**{"p.yaml": POLICY})), task_classifier=Fixed("creative"))


def chat(text: str, **extra: object) -> dict[str, object]:
    return {"model": "auto", "messages": [{"role": "user", "content": text}], **extra}


def test_entities_levels_and_shape(builder: FactsBuilder) -> None:
    body = chat(
        "mail bob@example.com about EMP-123456",
        stream=True,
        max_tokens=50,
        tools=[{"type": "function", "function": {"name": "f"}}],
        metadata={"app": "crm", "n": 3},
    )
    facts = builder.build(
        endpoint="chat",
        body=body,
        headers={"X-App": "crm", "Authorization": "Bearer sk"},
        key_id="k1",
        team="t",
        budget_usd=10.0,
        budget_remaining_usd=4.0,
        draw=0.25,
    )
    assert facts.sensitivity.entities == ("email", "employee_id")
    assert facts.sensitivity.level is Level.CONFIDENTIAL
    assert dict(facts.entity_levels) == {"email": Level.CONFIDENTIAL, "employee_id": Level.INTERNAL}
    assert facts.task == "creative" and facts.alias == "auto"
    assert facts.task_confidence == 0.75
    assert facts.stream and facts.has_tools and facts.max_tokens == 50
    assert facts.prompt_tokens > 5
    assert dict(facts.metadata) == {"app": "crm"}
    assert dict(facts.headers) == {"x-app": "crm"}  # credentials never become facts
    assert facts.budget_used_fraction == pytest.approx(0.6)
    assert facts.key_id == "k1" and facts.team == "t" and facts.draw == 0.25


def test_declared_level_raises_but_does_not_lower(builder: FactsBuilder) -> None:
    up = builder.build(
        endpoint="chat", body=chat("hello"), headers={"x-data-classification": "Restricted"}
    )
    assert up.sensitivity.level is Level.RESTRICTED and up.declared_level is Level.RESTRICTED
    down = builder.build(
        endpoint="chat", body=chat("bob@example.com"), headers={"x-data-classification": "public"}
    )
    assert down.sensitivity.level is Level.CONFIDENTIAL


def test_a_permitted_team_may_declassify(builder: FactsBuilder) -> None:
    facts = builder.build(
        endpoint="chat",
        body=chat("bob@example.com"),
        headers={"x-data-classification": "internal"},
        team="security",
    )
    assert facts.sensitivity.level is Level.INTERNAL
    assert facts.entity_levels["email"] is Level.INTERNAL
    decision = builder.policy.decide(facts)
    assert decision.level is Level.INTERNAL and "prop-a" in decision.targets


def test_invalid_hints_are_the_clients_error(builder: FactsBuilder) -> None:
    with pytest.raises(InvalidRequest) as info:
        builder.build(endpoint="chat", body=chat("x"), headers={"x-data-classification": "secret"})
    assert info.value.param == "x-data-classification" and info.value.status == 400
    with pytest.raises(InvalidRequest) as info:
        builder.build(endpoint="chat", body=chat("x"), headers={"x-gateway-task": "poetry"})
    assert info.value.param == "x-gateway-task"


def test_task_hint_wins_over_the_classifier(write_policy: WriteDir) -> None:
    classifier = Fixed("creative")
    builder = FactsBuilder(load(write_policy(**{"p.yaml": POLICY})), task_classifier=classifier)
    facts = builder.build(endpoint="chat", body=chat("x"), headers={"X-Gateway-Task": "Math"})
    assert facts.task == "math" and classifier.seen == []


def test_default_classifier_and_embeddings(write_policy: WriteDir) -> None:
    builder = FactsBuilder(load(write_policy(**{"p.yaml": POLICY})))
    facts = builder.build(
        endpoint="embeddings", body={"model": "auto", "input": ["call +1 415 555 0100"]}, headers={}
    )
    assert facts.endpoint == "embeddings"
    assert "phone" in facts.sensitivity.entities
    assert facts.task in {
        "translation",
        "summarization",
        "extraction",
        "creative",
        "math",
        "code",
        "chat",
    }


def test_findings_are_counted_per_kind_never_their_values(builder: FactsBuilder) -> None:
    body = {
        "model": "auto",
        "messages": [
            {"role": "user", "content": "mail bob@example.com and eve@example.com"},
            {"role": "assistant", "content": "done"},
            # a text repeated verbatim counts once; a new one counts again
            {"role": "user", "content": "mail bob@example.com and eve@example.com"},
            {"role": "user", "content": "and EMP-123456, call zed@example.net"},
        ],
    }
    facts = builder.build(endpoint="chat", body=body, headers={})
    assert facts.sensitivity.counts == (("email", 3), ("employee_id", 1))
    assert facts.sensitivity.entities == ("email", "employee_id")
    assert "bob@" not in repr(facts.sensitivity)


def test_a_body_without_findings_counts_nothing(builder: FactsBuilder) -> None:
    facts = builder.build(endpoint="chat", body=chat("hello there"), headers={})
    assert facts.sensitivity.counts == () and facts.sensitivity.entities == ()
