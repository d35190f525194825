from __future__ import annotations

from datetime import timedelta

import pytest

from storeflow.channels import DeliveryResult, RetryPolicy

TRANSIENT = DeliveryResult("transient_failure", "HTTP 503")
PERMANENT = DeliveryResult("permanent_failure", "HTTP 400")
SENT = DeliveryResult("sent", "HTTP 200")


def test_defaults() -> None:
    policy = RetryPolicy()
    assert policy.max_attempts == 8
    assert policy.base == timedelta(seconds=10)
    assert policy.factor == 2.0
    assert policy.cap == timedelta(hours=1)
    assert policy.jitter == 0.2


def test_without_jitter_delays_grow_exponentially_up_to_the_cap() -> None:
    policy = RetryPolicy(base=timedelta(seconds=10), factor=2.0, cap=timedelta(minutes=5), jitter=0.0)
    delays = [policy.delay(n, "k").total_seconds() for n in range(1, 9)]
    assert delays == [10, 20, 40, 80, 160, 300, 300, 300]


def test_jittered_delays_stay_within_the_band_and_under_the_cap() -> None:
    policy = RetryPolicy()
    for key in ("run_1:steps[0]", "run_2:steps[4]", "x"):
        for attempt in range(1, 40):
            nominal = min(10 * 2 ** (attempt - 1), 3600)
            seconds = policy.delay(attempt, key).total_seconds()
            assert 0.8 * nominal <= seconds <= nominal
            assert seconds <= 3600


def test_jittered_delays_still_grow_monotonically_before_the_cap() -> None:
    policy = RetryPolicy()
    delays = [policy.delay(n, "run_1:steps[0]") for n in range(1, 9)]
    assert delays[:8] == sorted(delays[:8])
    assert delays[7] > delays[0] * 50


def test_jitter_is_deterministic_per_key_and_attempt() -> None:
    a, b = RetryPolicy(), RetryPolicy()
    schedule = [a.delay(n, "run_1:steps[3]") for n in range(1, 9)]
    assert schedule == [b.delay(n, "run_1:steps[3]") for n in range(1, 9)]
    assert schedule != [a.delay(n, "run_1:steps[4]") for n in range(1, 9)]
    assert len({a.delay(1, f"run_{i}") for i in range(50)}) > 40  # keys spread out


def test_huge_attempt_numbers_do_not_overflow() -> None:
    policy = RetryPolicy(jitter=0.0)
    assert policy.delay(10_000, "k") == timedelta(hours=1)


def test_delay_needs_a_positive_attempt() -> None:
    with pytest.raises(ValueError, match="attempt"):
        RetryPolicy().delay(0, "k")


def test_should_retry_transient_until_max_attempts() -> None:
    policy = RetryPolicy(max_attempts=3)
    assert policy.should_retry(TRANSIENT, 1)
    assert policy.should_retry(TRANSIENT, 2)
    assert not policy.should_retry(TRANSIENT, 3)
    assert not policy.should_retry(TRANSIENT, 4)


def test_never_retries_permanent_failures_or_successes() -> None:
    policy = RetryPolicy()
    assert not policy.should_retry(PERMANENT, 1)
    assert not policy.should_retry(SENT, 1)


def test_next_delay_honours_a_longer_retry_after() -> None:
    policy = RetryPolicy(jitter=0.0)
    assert policy.next_delay(TRANSIENT, 1, "k") == timedelta(seconds=10)
    slow = DeliveryResult("transient_failure", "HTTP 429", retry_after=timedelta(seconds=90))
    assert policy.next_delay(slow, 1, "k") == timedelta(seconds=90)
    assert policy.next_delay(slow, 5, "k") == timedelta(seconds=160)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_attempts": 0},
        {"max_attempts": True},
        {"base": timedelta(0)},
        {"base": timedelta(seconds=-1)},
        {"cap": timedelta(seconds=5)},
        {"factor": 0.5},
        {"factor": float("nan")},
        {"jitter": -0.1},
        {"jitter": 1.0},
    ],
)
def test_invalid_arguments_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]
