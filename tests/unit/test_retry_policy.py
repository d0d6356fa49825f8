"""The retry policy as a value object: validation that names the field and the range, the backoff
arithmetic, and its JSON and contract forms."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

import grpc
import pytest

from seedbed.api.v1 import run_pb2, scenario_pb2
from seedbed.client import Client, ClientError
from seedbed.coordinator import _convert as cv
from seedbed.coordinator.errors import InvalidArgumentError
from seedbed.coordinator.model import FailureReason
from seedbed.coordinator.retry import RetryPolicy
from seedbed.coordinator.store import ScenarioSettingsValue


def test_defaults_match_the_contract() -> None:
    policy = RetryPolicy()
    assert policy.maximum_attempts == 3
    assert policy.initial_backoff == timedelta(seconds=1)
    assert policy.maximum_backoff == timedelta(seconds=60)
    assert (policy.backoff_coefficient, policy.jitter) == (2.0, 0.2)
    assert policy.retry_on == {FailureReason.INFRASTRUCTURE, FailureReason.KILLED}
    assert cv.retry_policy_from_proto(scenario_pb2.RetryPolicy()) == policy


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"maximum_attempts": 0}, "retry_policy.maximum_attempts", "outside 1..20"),
        ({"maximum_attempts": 21}, "retry_policy.maximum_attempts", "outside 1..20"),
        ({"initial_backoff": timedelta(0)}, "retry_policy.initial_backoff_seconds", "more than 0"),
        ({"maximum_backoff": timedelta(hours=2)}, "retry_policy.maximum_backoff_seconds", "at most 3600"),
        (
            {"initial_backoff": timedelta(seconds=10), "maximum_backoff": timedelta(seconds=5)},
            "retry_policy.initial_backoff_seconds",
            "exceeds maximum_backoff_seconds",
        ),
        ({"backoff_coefficient": 0.5}, "retry_policy.backoff_coefficient", "outside 1..10"),
        ({"backoff_coefficient": 11}, "retry_policy.backoff_coefficient", "outside 1..10"),
        ({"jitter": -0.1}, "retry_policy.jitter", "outside 0..1"),
        ({"jitter": 1.5}, "retry_policy.jitter", "outside 0..1"),
        (
            {"retry_on": frozenset({FailureReason.NONDETERMINISTIC})},
            "retry_policy.retry_on",
            "NONDETERMINISTIC can never be retried",
        ),
    ],
)
def test_validation_names_the_field_and_the_range(changes: dict[str, Any], field: str, words: str) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        RetryPolicy(**changes)
    assert info.value.field == field
    assert words in str(info.value)
    assert str(info.value).startswith(field + ":")


def test_nondeterministic_refusal_says_why() -> None:
    with pytest.raises(InvalidArgumentError) as info:
        RetryPolicy(retry_on=frozenset({FailureReason.KILLED, FailureReason.NONDETERMINISTIC}))
    assert "replay would write different data" in str(info.value)


def test_should_retry_counts_attempts_and_reasons() -> None:
    policy = RetryPolicy()
    assert policy.should_retry(1, FailureReason.INFRASTRUCTURE)
    assert policy.should_retry(2, FailureReason.KILLED)
    assert not policy.should_retry(3, FailureReason.KILLED)  # the third attempt was the last
    assert not policy.should_retry(1, FailureReason.SCRIPT_ERROR)
    assert not policy.should_retry(1, None)
    scripted = RetryPolicy(retry_on=frozenset({FailureReason.SCRIPT_ERROR}))
    assert scripted.should_retry(1, FailureReason.SCRIPT_ERROR)
    assert not scripted.should_retry(1, FailureReason.INFRASTRUCTURE)
    assert not RetryPolicy(disabled=True).should_retry(1, FailureReason.INFRASTRUCTURE)
    assert not RetryPolicy(maximum_attempts=1).should_retry(1, FailureReason.INFRASTRUCTURE)
    assert not RetryPolicy().should_retry(1, FailureReason.NONDETERMINISTIC)


def test_backoff_grows_by_the_coefficient_up_to_the_maximum() -> None:
    policy = RetryPolicy(
        maximum_attempts=20,
        initial_backoff=timedelta(seconds=1),
        maximum_backoff=timedelta(seconds=10),
        backoff_coefficient=3,
        jitter=0,
    )
    rng = random.Random(1)
    assert [policy.backoff(n, rng).total_seconds() for n in range(1, 6)] == [1, 3, 9, 10, 10]
    assert policy.backoff(10_000, rng) == timedelta(seconds=10)  # no overflow far out


def test_jitter_spreads_within_its_range_and_never_past_the_maximum() -> None:
    policy = RetryPolicy(
        maximum_attempts=20,
        initial_backoff=timedelta(seconds=2),
        maximum_backoff=timedelta(seconds=5),
        backoff_coefficient=2,
        jitter=0.25,
    )
    rng = random.Random(7)
    first = [policy.backoff(1, rng).total_seconds() for _ in range(500)]
    assert all(1.5 <= d <= 2.5 for d in first)
    assert max(first) - min(first) > 0.5  # actually spread, not constant
    capped = [policy.backoff(5, rng).total_seconds() for _ in range(500)]
    assert all(3.75 <= d <= 5.0 for d in capped)


def test_json_round_trip_and_settings_without_a_policy() -> None:
    policy = RetryPolicy(
        maximum_attempts=5,
        initial_backoff=timedelta(milliseconds=250),
        maximum_backoff=timedelta(seconds=30),
        backoff_coefficient=1.5,
        jitter=0.1,
        retry_on=frozenset({FailureReason.SCRIPT_ERROR, FailureReason.OOM}),
        disabled=True,
    )
    assert RetryPolicy.from_json(policy.to_json()) == policy
    settings = ScenarioSettingsValue(retry_policy=policy)
    assert ScenarioSettingsValue.from_json(settings.to_json()) == settings
    # Settings stored before retries existed carry no policy: the default one.
    old = {"active": True, "timeout_seconds": 5, "memory_limit_bytes": 0, "overlap_policy": "SKIP"}
    assert ScenarioSettingsValue.from_json(old).retry_policy == RetryPolicy()


def test_proto_round_trip_and_bad_values() -> None:
    msg = scenario_pb2.RetryPolicy(
        maximum_attempts=4,
        initial_backoff_seconds=0.5,
        maximum_backoff_seconds=8,
        backoff_coefficient=3,
        jitter=0.5,
        retry_on=[run_pb2.FAILURE_REASON_SCRIPT_ERROR],
    )
    policy = cv.retry_policy_from_proto(msg)
    assert policy.retry_on == {FailureReason.SCRIPT_ERROR}
    assert cv.retry_policy_to_proto(policy) == msg
    with pytest.raises(InvalidArgumentError, match=r"retry_policy\.retry_on: 99"):
        cv.retry_policy_from_proto(scenario_pb2.RetryPolicy(retry_on=[99]))  # type: ignore[list-item]
    with pytest.raises(InvalidArgumentError, match=r"retry_policy\.initial_backoff_seconds"):
        cv.retry_policy_from_proto(scenario_pb2.RetryPolicy(initial_backoff_seconds=float("nan")))
    with pytest.raises(InvalidArgumentError, match="can never be retried"):
        cv.retry_policy_from_proto(
            scenario_pb2.RetryPolicy(retry_on=[run_pb2.FAILURE_REASON_NONDETERMINISTIC])
        )


def test_scenarios_round_trip_their_policy(fake_coordinator: tuple[Any, Client]) -> None:
    _, client = fake_coordinator
    assert client.put_scenario("plain", script="print x").settings.retry_policy == cv.retry_policy_to_proto(
        RetryPolicy()
    )
    asked = scenario_pb2.RetryPolicy(maximum_attempts=5, retry_on=[run_pb2.FAILURE_REASON_OOM])
    created = client.put_scenario(
        "tuned", script="print x", settings=scenario_pb2.ScenarioSettings(retry_policy=asked)
    )
    policy = created.settings.retry_policy
    assert (policy.maximum_attempts, list(policy.retry_on)) == (5, [run_pb2.FAILURE_REASON_OOM])
    assert (policy.initial_backoff_seconds, policy.jitter) == (1.0, 0.2)  # defaults, explicit
    assert client.get_scenario("tuned").settings.retry_policy == policy
    # Settings without a policy keep the one in place; a policy replaces it.
    kept = client.put_scenario(
        "tuned", script="print y", settings=scenario_pb2.ScenarioSettings(timeout_seconds=9)
    )
    assert kept.settings.retry_policy == policy
    off = client.put_scenario(
        "tuned",
        script="print y",
        settings=scenario_pb2.ScenarioSettings(retry_policy=scenario_pb2.RetryPolicy(disabled=True)),
    )
    assert off.settings.retry_policy.disabled and client.get_scenario("tuned").settings.retry_policy.disabled
    with pytest.raises(ClientError) as info:
        client.put_scenario(
            "tuned",
            script="print y",
            settings=scenario_pb2.ScenarioSettings(
                retry_policy=scenario_pb2.RetryPolicy(maximum_attempts=50)
            ),
        )
    assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "retry_policy.maximum_attempts: 50 is outside 1..20" in info.value.details
