"""Circuit breakers on a fake clock, and the jittered backoff between retries.

The state machine: closed -> (``failures_to_open`` consecutive failures) -> open
-> (``open_seconds`` later) -> half-open, which lets exactly one probe through;
the probe's success closes the circuit, its failure opens it again for another
``open_seconds``.
"""

from __future__ import annotations

import random

import pytest

from gateway.targets import CircuitPolicy, RetryPolicy
from gateway.upstream.breakers import CircuitBreakers, CircuitState, backoff_delay

POLICY = CircuitPolicy(failures_to_open=3, open_seconds=30.0)


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def breakers(clock: FakeClock) -> CircuitBreakers:
    return CircuitBreakers(clock=clock)


def open_circuit(breakers: CircuitBreakers, target: str = "a") -> None:
    for _ in range(POLICY.failures_to_open):
        breakers.failure(target, POLICY)
    assert breakers.state(target, POLICY) is CircuitState.OPEN


# --- closed -------------------------------------------------------------------


def test_a_new_circuit_is_closed_and_allows_every_request(breakers: CircuitBreakers) -> None:
    assert breakers.state("a", POLICY) is CircuitState.CLOSED
    assert [breakers.allow("a", POLICY) for _ in range(10)] == [True] * 10


def test_it_opens_on_exactly_the_nth_consecutive_failure(breakers: CircuitBreakers) -> None:
    states = [breakers.failure("a", POLICY) for _ in range(POLICY.failures_to_open)]
    assert states == [CircuitState.CLOSED, CircuitState.CLOSED, CircuitState.OPEN]
    assert breakers.state("a", POLICY) is CircuitState.OPEN
    assert breakers.allow("a", POLICY) is False


def test_a_success_resets_the_count_of_consecutive_failures(breakers: CircuitBreakers) -> None:
    breakers.failure("a", POLICY)
    breakers.failure("a", POLICY)
    breakers.success("a", POLICY)
    # two more failures are not three in a row
    assert breakers.failure("a", POLICY) is CircuitState.CLOSED
    assert breakers.failure("a", POLICY) is CircuitState.CLOSED
    assert breakers.state("a", POLICY) is CircuitState.CLOSED
    assert breakers.failure("a", POLICY) is CircuitState.OPEN


def test_targets_have_circuits_of_their_own(breakers: CircuitBreakers) -> None:
    open_circuit(breakers, "a")
    assert breakers.state("b", POLICY) is CircuitState.CLOSED
    assert breakers.allow("b", POLICY) is True


# --- open -> half-open ----------------------------------------------------------


def test_open_until_open_seconds_have_passed_then_half_open(
    breakers: CircuitBreakers, clock: FakeClock
) -> None:
    open_circuit(breakers)
    clock.advance(POLICY.open_seconds - 0.001)
    assert breakers.state("a", POLICY) is CircuitState.OPEN
    assert breakers.allow("a", POLICY) is False
    clock.advance(0.001)
    assert breakers.state("a", POLICY) is CircuitState.HALF_OPEN


def test_half_open_lets_exactly_one_probe_through(
    breakers: CircuitBreakers, clock: FakeClock
) -> None:
    open_circuit(breakers)
    clock.advance(POLICY.open_seconds)
    assert [breakers.allow("a", POLICY) for _ in range(5)] == [True, False, False, False, False]
    # still half-open while the probe is out: time alone changes nothing
    clock.advance(POLICY.open_seconds * 10)
    assert breakers.state("a", POLICY) is CircuitState.HALF_OPEN
    assert breakers.allow("a", POLICY) is False


def test_the_probes_success_closes_the_circuit(breakers: CircuitBreakers, clock: FakeClock) -> None:
    open_circuit(breakers)
    clock.advance(POLICY.open_seconds)
    assert breakers.allow("a", POLICY) is True
    breakers.success("a", POLICY)
    assert breakers.state("a", POLICY) is CircuitState.CLOSED
    assert [breakers.allow("a", POLICY) for _ in range(3)] == [True] * 3
    # closed again with a fresh count: it takes failures_to_open failures to reopen
    assert breakers.failure("a", POLICY) is CircuitState.CLOSED


def test_the_probes_failure_opens_it_again_for_another_open_seconds(
    breakers: CircuitBreakers, clock: FakeClock
) -> None:
    open_circuit(breakers)
    clock.advance(POLICY.open_seconds)
    assert breakers.allow("a", POLICY) is True
    assert breakers.failure("a", POLICY) is CircuitState.OPEN
    assert breakers.state("a", POLICY) is CircuitState.OPEN
    assert breakers.allow("a", POLICY) is False
    # the open period restarts at the probe's failure, not at the first opening
    clock.advance(POLICY.open_seconds - 0.001)
    assert breakers.state("a", POLICY) is CircuitState.OPEN
    clock.advance(0.001)
    assert breakers.state("a", POLICY) is CircuitState.HALF_OPEN
    assert breakers.allow("a", POLICY) is True


def test_one_failed_probe_reopens_whatever_failures_to_open_is(clock: FakeClock) -> None:
    policy = CircuitPolicy(failures_to_open=100, open_seconds=5.0)
    breakers = CircuitBreakers(clock=clock)
    for _ in range(100):
        breakers.failure("a", policy)
    clock.advance(5.0)
    assert breakers.allow("a", policy) is True
    assert breakers.failure("a", policy) is CircuitState.OPEN


def test_a_released_probe_frees_the_slot_for_the_next_request(
    breakers: CircuitBreakers, clock: FakeClock
) -> None:
    """A probe that ended without telling anything (the client's error, a cancel)
    neither closes nor reopens the circuit: the next request probes instead."""
    open_circuit(breakers)
    clock.advance(POLICY.open_seconds)
    assert breakers.allow("a", POLICY) is True
    breakers.release_probe("a", POLICY)
    assert breakers.state("a", POLICY) is CircuitState.HALF_OPEN
    assert [breakers.allow("a", POLICY) for _ in range(3)] == [True, False, False]


def test_a_changed_circuit_policy_starts_closed(breakers: CircuitBreakers) -> None:
    """A reloaded policy with other circuit settings gets a fresh breaker."""
    open_circuit(breakers)
    changed = CircuitPolicy(failures_to_open=3, open_seconds=60.0)
    assert breakers.state("a", changed) is CircuitState.CLOSED
    assert breakers.allow("a", changed) is True


def test_the_default_clock_is_monotonic_time() -> None:
    breakers = CircuitBreakers()
    policy = CircuitPolicy(failures_to_open=1, open_seconds=3600.0)
    assert breakers.failure("a", policy) is CircuitState.OPEN
    assert breakers.state("a", policy) is CircuitState.OPEN


# --- backoff ----------------------------------------------------------------------

RETRY = RetryPolicy(attempts=8, backoff_base_s=0.1, backoff_max_s=2.0)


def test_backoff_ceiling_doubles_per_attempt_up_to_the_maximum() -> None:
    ceilings = [backoff_delay(RETRY, attempt, None, rand=lambda: 1.0) for attempt in range(1, 8)]
    assert ceilings == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.6, 2.0, 2.0])


@pytest.mark.parametrize(("draw", "expected"), [(0.0, 0.0), (0.25, 0.1), (0.5, 0.2)])
def test_backoff_is_the_ceiling_times_the_draw(draw: float, expected: float) -> None:
    # attempt 3: ceiling 0.4 s
    assert backoff_delay(RETRY, 3, None, rand=lambda: draw) == pytest.approx(expected)


def test_full_jitter_spreads_delays_over_the_whole_window() -> None:
    draws = random.Random(20261207)
    delays = [backoff_delay(RETRY, 2, None, rand=draws.random) for _ in range(2000)]
    assert all(d is not None and 0.0 <= d < 0.2 for d in delays)
    values = [d for d in delays if d is not None]
    # both ends of [0, 0.2) are reached, and the mean is the window's middle
    assert min(values) < 0.01 and max(values) > 0.19
    assert sum(values) / len(values) == pytest.approx(0.1, abs=0.01)


@pytest.mark.parametrize("retry_after", [0.0, 0.5, 2.0])
def test_retry_after_within_the_maximum_is_waited_exactly(retry_after: float) -> None:
    assert backoff_delay(RETRY, 1, retry_after, rand=lambda: 0.0) == retry_after
    assert backoff_delay(RETRY, 5, retry_after, rand=lambda: 1.0) == retry_after


def test_retry_after_beyond_the_maximum_means_move_on() -> None:
    assert backoff_delay(RETRY, 1, 2.001) is None
    assert backoff_delay(RETRY, 1, 60.0) is None
