"""What a request reserves, soft caps that step down, and what a refusal says."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.errors import BudgetExceeded
from gateway.judging.prices import PriceBook
from gateway.levels import Level
from gateway.observability.metrics import Metrics
from gateway.policy.compiled import UNKNOWN_OUTPUT_LIMIT, CompiledPolicy
from gateway.policy.loader import load_policy
from gateway.policy.model import Action, Facts, Sensitivity
from gateway.quota.limits import Limits, budget_refusal, period_end
from gateway.settings import FailMode
from gateway.state.base import Budget, KeyRecord, Period, SpendRecord, TeamRecord
from gateway.state.factory import memory_state
from tests.harness import upstream_target, write_policy

PROPRIETARY = {"input_per_mtok": 2.5, "output_per_mtok": 10.0}


@pytest.fixture
def policy(tmp_path: Path) -> CompiledPolicy:
    write_policy(
        tmp_path,
        {
            "targets": {
                "strong": upstream_target("gpt-4o", kind="proprietary", price=PROPRIETARY),
                "mini": upstream_target(
                    "mini",
                    kind="proprietary",
                    price={"input_per_mtok": 0.1, "output_per_mtok": 0.4},
                ),
                "local": upstream_target(
                    "local", price={"input_per_mtok": 0, "output_per_mtok": 0}
                ),
                "capped": upstream_target(
                    "capped", kind="proprietary", price=PROPRIETARY, max_output_tokens=100
                ),
            },
            "aliases": {"auto": {"targets": ["strong"]}},
            "rules": [
                {"name": "capped", "when": {"task": "code"}, "route": {"targets": ["capped"]}},
                {
                    "name": "soft",
                    "when": {"task": "chat"},
                    "route": {"targets": ["strong", "mini", "local"]},
                    "over_budget": "step_down",
                },
                {"name": "hard", "route": {"targets": ["strong", "local"]}},
            ],
        },
    )
    return load_policy(tmp_path, {"UPSTREAM_URL": "http://127.0.0.1:9/v1"}, prices=PriceBook({}))


def facts(task: str, *, max_tokens: int | None = None, remaining: float | None = None) -> Facts:
    return Facts(
        endpoint="chat",
        alias="auto",
        sensitivity=Sensitivity(Level.PUBLIC),
        task=task,
        prompt_tokens=1000,
        max_tokens=max_tokens,
        budget_usd=1.0 if remaining is not None else None,
        budget_remaining_usd=remaining,
    )


def test_reservation_covers_max_tokens_or_the_output_limit(policy: CompiledPolicy) -> None:
    with_max = policy.decide(facts("summarization", max_tokens=500))
    assert with_max.reserve_usd == pytest.approx((1000 * 2.5 + 500 * 10.0) / 1e6)
    unknown_limit = policy.decide(facts("summarization"))
    assert unknown_limit.reserve_usd == pytest.approx(
        (1000 * 2.5 + UNKNOWN_OUTPUT_LIMIT * 10.0) / 1e6
    )
    declared_limit = policy.decide(facts("code"))
    assert declared_limit.reserve_usd == pytest.approx((1000 * 2.5 + 100 * 10.0) / 1e6)


def test_output_limit_comes_from_litellms_map(tmp_path: Path) -> None:
    gpt = upstream_target("gpt-4o", kind="proprietary")
    del gpt["price"]
    write_policy(
        tmp_path,
        {"targets": {"gpt": gpt}, "rules": [{"name": "all", "route": {"targets": ["gpt"]}}]},
    )
    loaded = load_policy(tmp_path, {"UPSTREAM_URL": "http://x/v1"}, prices=PriceBook.from_litellm())
    target = loaded.targets["gpt"]
    assert target.price_source.value == "litellm"
    assert target.max_output_tokens is not None and target.max_output_tokens >= 4096


def test_soft_cap_steps_down_to_what_the_budget_covers(policy: CompiledPolicy) -> None:
    rich = policy.decide(facts("chat", max_tokens=100, remaining=0.5))
    assert rich.targets[0] == "strong" and not rich.stepped_down and rich.soft_cap
    # $0.001 left: gpt-4o's $0.0035 worst case does not fit, mini's $0.00014 does
    poor = policy.decide(facts("chat", max_tokens=100, remaining=0.001))
    assert poor.stepped_down and poor.targets == ("local", "mini")
    broke = policy.decide(facts("chat", max_tokens=100, remaining=0.0))
    assert broke.action is Action.ROUTE and broke.targets == ("local",)
    assert broke.reserve_usd == 0.0
    # a rule without the soft cap keeps its targets (and is refused at admission)
    hard = policy.decide(facts("translation", max_tokens=100, remaining=0.0))
    assert hard.targets[0] == "strong" and not hard.soft_cap


async def test_a_stepped_down_request_is_admitted_past_the_budget(
    policy: CompiledPolicy,
) -> None:
    state = memory_state()
    budget = Budget(0.003, Period.MONTH)
    await state.keys.set_team(TeamRecord("t", budget=budget))
    who = KeyRecord("k", "t", budget=budget)
    await state.ledger.record(SpendRecord("k", "t", "strong", 0.003, 0.003, 10, 10))
    limits = Limits(state, Metrics(), fail_mode=FailMode.CLOSED)
    soft = policy.decide(facts("chat", max_tokens=100, remaining=0.0))
    admission, _ = await limits.admit(who, soft, facts("chat", max_tokens=100), stream=True)
    assert admission.reserved_usd == 0.0
    hard = policy.decide(facts("translation", max_tokens=100, remaining=0.0))
    with pytest.raises(BudgetExceeded) as refused:
        await limits.admit(who, hard, facts("translation", max_tokens=100), stream=False)
    message = refused.value.message
    assert "used $0.003 (100%) of its monthly budget of $0.003" in message
    assert "resets at" in message
    assert refused.value.headers["x-should-retry"] == "false"
    await limits.aclose()


def test_refusal_names_used_limit_period_and_reset() -> None:
    now = 1_795_900_000.0  # 2026-11-28
    message = budget_refusal("team-a", Budget(0.003, Period.MONTH), 0.00045, 0.0012, now)
    assert "team-a" in message
    assert "used $0.00045 (15%) of its monthly budget of $0.003" in message
    assert "may cost up to $0.0012" in message
    assert "resets at 2026-12-01T00:00:00Z" in message
    daily = budget_refusal("b", Budget(2.0, Period.DAY), 2.5, 0.01, now)
    assert "daily budget of $2.00" in daily and "2026-11-29T00:00:00Z" in daily


def test_period_end_rolls_over_the_year() -> None:
    dec = 1_798_000_000.0  # 2026-12-23
    assert period_end(Period.MONTH, dec) == 1_798_761_600.0  # 2027-01-01
