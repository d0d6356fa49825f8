"""The per-caller token buckets, on a clock the test turns."""

from __future__ import annotations

import grpc
import pytest

from seedbed.coordinator.errors import ResourceExhaustedError
from seedbed.coordinator.faces.grpc.status import status_of
from seedbed.coordinator.ratelimits import Limit, RateLimiter, upload_cost
from seedbed.coordinator.settings import CoordinatorSettings


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_of_a_minutes_allowance_then_an_even_refill() -> None:
    clock = Clock()
    limits = RateLimiter({Limit.FIRES: 6}, clock)
    for _ in range(6):
        limits.take(Limit.FIRES, "alice")
    with pytest.raises(ResourceExhaustedError) as refused:
        limits.take(Limit.FIRES, "alice")
    assert status_of(refused.value) == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert refused.value.retry_after_seconds == pytest.approx(10.0)
    assert refused.value.trailing_metadata == (("retry-after", "10"),)
    assert "6 fires a minute (SEEDBED_FIRES_PER_MINUTE)" in str(refused.value)
    assert "try again in 10 s" in str(refused.value)
    clock.now += 10
    limits.take(Limit.FIRES, "alice")  # one fire refilled every ten seconds
    with pytest.raises(ResourceExhaustedError):
        limits.take(Limit.FIRES, "alice")
    clock.now += 3600
    for _ in range(6):  # never more than the allowance, however long the pause
        limits.take(Limit.FIRES, "alice")
    with pytest.raises(ResourceExhaustedError):
        limits.take(Limit.FIRES, "alice")


def test_callers_and_limits_have_their_own_buckets_and_refunds_give_back() -> None:
    limits = RateLimiter({Limit.FIRES: 1, Limit.SCENARIO_PUTS: 1}, Clock())
    charge = limits.take(Limit.FIRES, "alice")
    limits.take(Limit.FIRES, "bob")
    limits.take(Limit.SCENARIO_PUTS, "alice")
    with pytest.raises(ResourceExhaustedError):
        limits.take(Limit.FIRES, "alice")
    charge.refund()
    charge.refund()  # once only
    limits.take(Limit.FIRES, "alice")
    with pytest.raises(ResourceExhaustedError):
        limits.take(Limit.FIRES, "alice")


def test_a_call_larger_than_the_allowance_waits_for_a_full_bucket_and_leaves_a_debt() -> None:
    clock = Clock()
    limits = RateLimiter({Limit.UPLOAD_BYTES: 6000}, clock)
    limits.take(Limit.UPLOAD_BYTES, "alice", upload_cost(10))  # counts 1 KiB
    with pytest.raises(ResourceExhaustedError) as refused:
        limits.take(Limit.UPLOAD_BYTES, "alice", 12_000)
    assert "(this call: 12000 bytes)" in str(refused.value)
    clock.now += 60
    limits.take(Limit.UPLOAD_BYTES, "alice", 12_000)  # the bucket was full: it goes through
    with pytest.raises(ResourceExhaustedError) as refused:
        limits.take(Limit.UPLOAD_BYTES, "alice", 1024)
    assert refused.value.retry_after_seconds == pytest.approx(60 + 1024 / 100)


def test_zero_is_unlimited_and_the_defaults_allow_bursts() -> None:
    limits = RateLimiter({Limit.FIRES: 0}, Clock())
    for _ in range(10_000):
        limits.take(Limit.FIRES, "alice")
    defaults = RateLimiter.from_settings(CoordinatorSettings())
    for _ in range(120):
        defaults.take(Limit.FIRES, "ci")
        defaults.take(Limit.SCENARIO_PUTS, "ci")
        defaults.take(Limit.TEMPLATE_PUSHES, "ci")
    for _ in range(16):
        defaults.take(Limit.UPLOAD_BYTES, "ci", 64 * 2**20)  # sixteen files of the largest size


def test_refilled_buckets_are_forgotten_when_many_callers_came(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("seedbed.coordinator.ratelimits._PRUNE_AT", 3)
    clock = Clock()
    limits = RateLimiter({Limit.FIRES: 2}, clock)
    for caller in ("a", "b", "c"):
        limits.take(Limit.FIRES, caller)
    limits.take(Limit.FIRES, "c")
    clock.now += 30  # a and b are full again, c is not
    limits.take(Limit.FIRES, "d")
    assert sorted(caller for caller, _ in limits._buckets) == ["c", "d"]
    with pytest.raises(ResourceExhaustedError):  # c's debt survived the pruning
        limits.take(Limit.FIRES, "c")
        limits.take(Limit.FIRES, "c")
