"""The response cache's rules: an entry is served only where invariant 1 holds
(docs/invariants.md), and its key separates what must not share an answer."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.levels import Level
from gateway.pipeline.response_cache import cache_key, cacheable, may_serve
from gateway.policy.model import Action, CacheMode, Decision
from gateway.state.base import CachedResponse
from gateway.targets import Kind, ProviderType, Target

LOCAL = Target("local", Kind.OPEN, ProviderType.SIMULATED, "m", Level.RESTRICTED)
CLOUD = Target("cloud", Kind.PROPRIETARY, ProviderType.SIMULATED, "m", Level.INTERNAL)
TARGETS = {t.name: t for t in (LOCAL, CLOUD)}
BODY: dict[str, Any] = {"messages": [{"role": "user", "content": "hi"}], "temperature": 0}


def decision(*targets: str, level: Level) -> Decision:
    return Decision("r", Action.ROUTE, targets=targets, level=level)


def entry(target: str, level: Level) -> CachedResponse:
    return CachedResponse(target=target, level=int(level), body=b"{}")


def test_an_entry_from_an_allowed_target_at_the_same_level_is_served() -> None:
    assert may_serve(
        decision("cloud", "local", level=Level.INTERNAL), TARGETS, entry("cloud", Level.INTERNAL)
    )


def test_an_entry_from_a_target_this_decision_does_not_allow_is_not_served() -> None:
    # e.g. written under another rule, or before a policy change removed the target
    assert not may_serve(
        decision("local", level=Level.PUBLIC), TARGETS, entry("cloud", Level.PUBLIC)
    )


def test_an_entry_is_not_served_above_its_targets_max_sensitivity() -> None:
    """Were the decision ever to list a target above its level, the hit still
    would not carry confidential data's answer from that target."""
    forced = decision("cloud", level=Level.CONFIDENTIAL)
    assert not may_serve(forced, TARGETS, entry("cloud", Level.INTERNAL))


def test_an_entry_made_from_more_sensitive_data_is_not_served_to_less() -> None:
    # the answer to a confidential prompt may echo that data: not for a public request
    assert not may_serve(
        decision("local", level=Level.PUBLIC), TARGETS, entry("local", Level.CONFIDENTIAL)
    )
    assert may_serve(
        decision("local", level=Level.CONFIDENTIAL), TARGETS, entry("local", Level.PUBLIC)
    )


def test_an_entry_of_a_target_gone_from_the_policy_is_not_served() -> None:
    assert not may_serve(decision("old", level=Level.PUBLIC), TARGETS, entry("old", Level.PUBLIC))


def key(**changes: Any) -> str:
    values: dict[str, Any] = {
        "scope": "team-a",
        "endpoint": "chat",
        "stream": False,
        "targets": [LOCAL],
        "body": BODY,
    }
    values.update(changes)
    return cache_key(**values)


@pytest.mark.parametrize(
    "changes",
    [
        {"scope": "team-b"},
        {"endpoint": "completions"},
        {"stream": True},
        {"targets": [CLOUD]},
        {"targets": [LOCAL, CLOUD]},
        {"body": {**BODY, "messages": [{"role": "user", "content": "hello"}]}},
        {"body": {**BODY, "temperature": 0.0, "seed": 1}},
        {"body": {**BODY, "tools": [{"type": "function", "function": {"name": "f"}}]}},
    ],
    ids=["team", "endpoint", "stream", "target", "target-order", "messages", "seed", "tools"],
)
def test_what_can_change_the_answer_changes_the_key(changes: dict[str, Any]) -> None:
    assert key(**changes) != key()


@pytest.mark.parametrize(
    "extra",
    [
        {"user": "u-1"},
        {"metadata": {"trace": "x"}},
        {"stream_options": {"include_usage": True}},
        {"model": "alias-2"},
    ],
    ids=["user", "metadata", "stream_options", "model"],
)
def test_what_cannot_change_the_answer_keeps_the_key(extra: dict[str, Any]) -> None:
    assert key(body={**BODY, **extra}) == key()


@pytest.mark.parametrize(
    ("mode", "body", "expected"),
    [
        (CacheMode.NEVER, BODY, False),
        (CacheMode.ALWAYS, {"messages": []}, True),
        (CacheMode.AUTO, {"temperature": 0}, True),
        (CacheMode.AUTO, {"seed": 7}, True),
        (CacheMode.AUTO, {"temperature": 0.7}, False),
        (CacheMode.AUTO, {"temperature": False}, False),
        (CacheMode.AUTO, {}, False),
    ],
)
def test_only_deterministic_requests_are_cached_in_auto_mode(
    mode: CacheMode, body: dict[str, Any], expected: bool
) -> None:
    assert cacheable(mode, body) is expected
