"""Judging large bodies off the event loop, within a budget that fails closed."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from gateway.judging.build import FactsBuilder
from gateway.judging.facts import Facts
from gateway.judging.offloop import BUDGET_EXCEEDED, judge
from gateway.judging.probe import Finding
from gateway.levels import Level
from gateway.policy.compiled import CompiledPolicy
from gateway.policy.loader import load_policy

SHIPPED = Path(__file__).resolve().parents[2] / "policies"
SSN = "078-05-1120"


class SlowDetector:
    """A plug-in that takes ``delay`` seconds per text and notes the thread it ran in."""

    entities = frozenset({"slow_thing"})

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.threads: list[str] = []

    def find(self, text: str) -> Iterable[Finding]:
        self.threads.append(threading.current_thread().name)
        time.sleep(self.delay)
        return ()


@pytest.fixture(scope="module")
def policy() -> CompiledPolicy:
    return load_policy(SHIPPED, {})


@pytest.fixture
def executor() -> Iterator[ThreadPoolExecutor]:
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="judge-test")
    yield pool
    pool.shutdown(wait=True, cancel_futures=True)


def body(text: str) -> dict[str, Any]:
    return {"model": "auto", "messages": [{"role": "user", "content": text}], "max_tokens": 7}


def run(builder: FactsBuilder[CompiledPolicy], payload: dict[str, Any], **kwargs: Any) -> Facts:
    headers: dict[str, str] = kwargs.pop("headers", {})
    return asyncio.run(judge(builder, endpoint="chat", body=payload, headers=headers, **kwargs))


def test_small_bodies_are_judged_inline_and_large_ones_in_a_worker_thread(
    policy: CompiledPolicy, executor: ThreadPoolExecutor
) -> None:
    detector = SlowDetector(0.0)
    builder = FactsBuilder(policy, scanner_plugins=[detector])
    payload = body(f"my ssn is {SSN}")
    inline = run(builder, payload, size=100, threshold=1000, budget_s=5, executor=executor)
    calls = len(detector.threads)  # the plug-in sees every string of the walk
    offloop = run(builder, payload, size=1000, threshold=1000, budget_s=5, executor=executor)
    assert calls and set(detector.threads[:calls]) == {threading.current_thread().name}
    assert len(detector.threads) > calls
    assert all(name.startswith("judge-test") for name in detector.threads[calls:])
    # the same facts either way
    assert inline == offloop == builder.build(endpoint="chat", body=payload, headers={})
    assert inline.sensitivity.level is Level.RESTRICTED
    assert "us_ssn" in inline.sensitivity.entities


def test_without_an_executor_every_body_is_judged_inline(policy: CompiledPolicy) -> None:
    detector = SlowDetector(0.0)
    builder = FactsBuilder(policy, scanner_plugins=[detector])
    run(builder, body("hello"), size=10**6, threshold=1, budget_s=5, executor=None)
    assert detector.threads and set(detector.threads) == {threading.current_thread().name}


def test_an_overrun_off_the_loop_fails_closed_at_the_budget(
    policy: CompiledPolicy, executor: ThreadPoolExecutor
) -> None:
    builder = FactsBuilder(policy, scanner_plugins=[SlowDetector(1.0)])
    payload = body("a harmless question about the weather")
    started = time.perf_counter()
    facts = run(builder, payload, size=10**6, threshold=1000, budget_s=0.05, executor=executor)
    assert time.perf_counter() - started < 0.8  # the wait is cut at the budget
    assert facts.sensitivity.level is Level.RESTRICTED
    assert facts.sensitivity.entities == (BUDGET_EXCEEDED,)
    assert facts.entity_levels == {BUDGET_EXCEEDED: Level.RESTRICTED}
    # the rest of the facts is the body's shape, and the tokens of all of it
    assert facts.alias == "auto"
    assert facts.max_tokens == 7
    assert facts.prompt_tokens > 5


def test_an_overrun_inline_fails_closed_after_the_fact(policy: CompiledPolicy) -> None:
    builder = FactsBuilder(policy, scanner_plugins=[SlowDetector(0.05)])
    facts = run(builder, body(f"ssn {SSN}"), size=10, threshold=1000, budget_s=0.01, executor=None)
    assert facts.sensitivity.level is Level.RESTRICTED
    assert set(facts.sensitivity.entities) == {"us_ssn", BUDGET_EXCEEDED}
    assert facts.entity_levels[BUDGET_EXCEEDED] is Level.RESTRICTED


@pytest.mark.parametrize("off_loop", [True, False])
def test_a_declared_level_cannot_lower_an_overrun(
    policy: CompiledPolicy, executor: ThreadPoolExecutor, off_loop: bool
) -> None:
    builder = FactsBuilder(policy, scanner_plugins=[SlowDetector(0.3)])
    facts = run(
        builder,
        body("hello"),
        headers={"x-data-classification": "public"},
        size=10**6 if off_loop else 10,
        threshold=1000,
        budget_s=0.01,
        executor=executor,
    )
    assert facts.sensitivity.level is Level.RESTRICTED
    assert facts.declared_level is Level.PUBLIC


def test_the_loop_keeps_running_while_a_large_body_is_judged(
    policy: CompiledPolicy, executor: ThreadPoolExecutor
) -> None:
    builder = FactsBuilder(policy, scanner_plugins=[SlowDetector(0.3)])
    ticks: list[float] = []

    async def ticker() -> None:
        while True:
            ticks.append(time.perf_counter())
            await asyncio.sleep(0.01)

    async def scenario() -> Facts:
        task = asyncio.create_task(ticker())
        try:
            return await judge(
                builder,
                endpoint="chat",
                body=body("hello"),
                headers={},
                size=10**6,
                threshold=1000,
                budget_s=5,
                executor=executor,
            )
        finally:
            task.cancel()

    facts = asyncio.run(scenario())
    assert facts.sensitivity.level is not Level.RESTRICTED
    assert len(ticks) >= 10  # ~30 ticks of 10 ms in 0.3 s; inline there would be one


def test_a_bad_hint_is_still_the_clients_error_off_the_loop(
    policy: CompiledPolicy, executor: ThreadPoolExecutor
) -> None:
    from gateway.errors import InvalidRequest

    builder = FactsBuilder(policy)
    with pytest.raises(InvalidRequest):
        run(
            builder,
            body("hello"),
            headers={"x-gateway-task": "nonsense"},
            size=10**6,
            threshold=1000,
            budget_s=5,
            executor=executor,
        )
