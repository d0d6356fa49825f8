"""Cron triggers: validation, due times across daylight saving time, the catch-up rule, firing by a
live coordinator, and one fire per due time when several schedulers share a store.

Live firing uses the optional sixth (leading seconds) field, "* * * * * *", so a run starts within a
second or two; the other tests stop the scheduler's own loop and call ``run_once`` with a chosen
moment, which is how downtime is simulated (trigger_states.last_due_at in the past)."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import grpc
import pytest

from seedbed.api.v1 import run_pb2, scenario_pb2
from seedbed.coordinator import running_in_thread
from seedbed.coordinator.fakes import FakeDispatcher
from seedbed.coordinator.overlap import FireLauncher
from seedbed.coordinator.scheduler import TriggerScheduler
from seedbed.coordinator.store import Store
from seedbed.coordinator.triggers import CronTrigger, due_now, validate_triggers
from tests.conftest import eventually, settings_for
from tests.unit._scheduling import api

T = TypeVar("T")


def cron(expression: str, timezone: str = "", **fields: Any) -> scenario_pb2.Trigger:
    return scenario_pb2.Trigger(
        cron=scenario_pb2.CronSchedule(expression=expression, timezone=timezone), **fields
    )


# -- validation -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("trigger", "field", "words"),
    [
        (cron("61 * * * *"), "settings.triggers[1].cron.expression", "Bad minute"),
        (cron("* * *"), "settings.triggers[1].cron.expression", "has 3 fields"),
        (cron(""), "settings.triggers[1].cron.expression", "is empty"),
        (cron("0 3 * * *", "Mars/Olympus"), "settings.triggers[1].cron.timezone", "not a known IANA"),
        (scenario_pb2.Trigger(id="nokind"), "settings.triggers[1]", "has no kind"),
    ],
)
def test_invalid_triggers_name_the_field_and_the_reason(
    trigger: scenario_pb2.Trigger, field: str, words: str
) -> None:
    from seedbed.coordinator.errors import InvalidArgumentError

    with pytest.raises(InvalidArgumentError) as info:
        validate_triggers([cron("0 2 * * *"), trigger])
    assert info.value.field == field
    assert words in str(info.value)


def test_valid_triggers_get_ids_and_are_active_by_default() -> None:
    stored = validate_triggers([cron("30 2 * * 1-5", "Europe/Paris"), cron("*/10 * * * * *", id="fast")])
    assert stored[0]["id"].startswith("trg_") and stored[0]["active"] is True
    assert stored[1]["id"] == "fast"


def test_invalid_cron_is_invalid_argument_over_grpc(fake_coordinator: tuple[Any, Any]) -> None:
    coordinator, _ = fake_coordinator
    with api(coordinator.address) as a, pytest.raises(grpc.RpcError) as info:
        a.create("badcron", "print x", triggers=[cron("0 25 * * *")])
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "settings.triggers[0].cron.expression" in (info.value.details() or "")
    assert "Bad hour" in (info.value.details() or "")


# -- due times ------------------------------------------------------------------------------------


def test_next_due_across_daylight_saving_time_in_a_named_zone() -> None:
    paris = ZoneInfo("Europe/Paris")
    daily = CronTrigger("t", "30 2 * * *", "Europe/Paris")
    # 29 March 2026: clocks go from 02:00 to 03:00; 02:30 does not exist and runs at 03:00 CEST.
    spring = daily.next_due(datetime(2026, 3, 28, 12, tzinfo=paris))
    assert spring == datetime(2026, 3, 29, 3, 0, tzinfo=paris)
    assert spring.astimezone(UTC) == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    assert daily.next_due(spring) == datetime(2026, 3, 30, 2, 30, tzinfo=paris)
    # 25 October 2026: 02:30 happens twice; it runs once (the first, CEST).
    autumn = daily.next_due(datetime(2026, 10, 24, 12, tzinfo=paris))
    assert autumn.astimezone(UTC) == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    assert daily.next_due(autumn).astimezone(UTC) == datetime(2026, 10, 26, 1, 30, tzinfo=UTC)
    # The same expression in UTC is a fixed instant every day.
    assert CronTrigger("u", "30 2 * * *").next_due(datetime(2026, 3, 28, 12, tzinfo=UTC)) == datetime(
        2026, 3, 29, 2, 30, tzinfo=UTC
    )


def test_catch_up_rule() -> None:
    hourly = CronTrigger("h", "0 * * * *")
    at = datetime(2026, 1, 1, 10, 30, tzinfo=UTC)
    # Not due yet.
    assert due_now(hourly, datetime(2026, 1, 1, 10, 0, tzinfo=UTC), at).fire_at is None
    # Three due times missed: only the latest fires, once.
    missed = due_now(hourly, datetime(2026, 1, 1, 7, 0, tzinfo=UTC), at)
    assert missed.fire_at == missed.advance_to == datetime(2026, 1, 1, 10, 0, tzinfo=UTC)
    assert missed.skipped_from == datetime(2026, 1, 1, 8, 0, tzinfo=UTC)
    # Older than catch_up: skipped, but moved past.
    strict = CronTrigger("s", "0 * * * *", catch_up=timedelta(minutes=10))
    old = due_now(strict, datetime(2026, 1, 1, 7, 0, tzinfo=UTC), at)
    assert old.fire_at is None and old.advance_to == datetime(2026, 1, 1, 10, 0, tzinfo=UTC)


def test_the_repeated_hour_is_not_reported_missed_on_every_pass() -> None:
    """Europe/London falls back at 01:00 UTC on 25 October 2026: local 01:00-02:00 happens twice."""
    half_hourly = CronTrigger("t", "*/30 * * * *", timezone="Europe/London")
    last = datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # 01:30 BST, the first pass
    decisions = []
    for minute in range(0, 60, 2):  # a scheduler pass every two minutes through the second pass
        at = datetime(2026, 10, 25, 1, minute, tzinfo=UTC)
        decision = due_now(half_hourly, last, at)
        assert decision.skipped_from is None, (at, decision)
        if decision.advance_to is not None:
            assert decision.fire_at == decision.advance_to and decision.fire_at > last
            last = decision.advance_to
            decisions.append(decision.fire_at)
    assert decisions == [datetime(2026, 10, 25, 1, 0, tzinfo=UTC), datetime(2026, 10, 25, 1, 30, tzinfo=UTC)]


# -- the scheduler against a live coordinator -------------------------------------------------------


@pytest.fixture
def slow_scheduler(store_url: str, tmp_path: Path) -> Iterator[Any]:
    """A coordinator whose trigger loop is stopped: tests call ``run_once`` themselves."""
    settings = settings_for(store_url, tmp_path, trigger_interval_seconds=60)
    with running_in_thread(settings, FakeDispatcher()) as coordinator:
        on_loop(coordinator, coordinator.scheduler.aclose())
        yield coordinator


def on_loop(coordinator: Any, coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run_coroutine_threadsafe(coro, coordinator.loop).result(timeout=30)


def hourly_scenario(coordinator: Any, scenario_id: str, **trigger: Any) -> None:
    with api(coordinator.address) as a:
        a.create(
            scenario_id,
            "print hi",
            overlap_policy=scenario_pb2.OVERLAP_POLICY_ALLOW_CONCURRENT,
            triggers=[cron("0 * * * *", id="hourly", params={"from": "cron"}, **trigger)],
        )


def trigger_runs(coordinator: Any, scenario_id: str) -> list[run_pb2.Run]:
    with api(coordinator.address) as a:
        return [r for r in a.list_runs(scenario_id=scenario_id) if r.trigger_id]


def test_catch_up_fires_once_after_downtime(slow_scheduler: Any) -> None:
    coordinator = slow_scheduler
    store: Store = coordinator.store
    hourly_scenario(coordinator, "nightly")
    at = datetime.now(UTC).replace(minute=30, second=0, microsecond=0)
    # The coordinator was down for three and a half hours: three due times passed.
    assert on_loop(
        coordinator,
        store.fires.claim_trigger_due(
            "scn_nightly", "hourly", at - timedelta(hours=3, minutes=30), first=True
        ),
    )
    assert on_loop(coordinator, coordinator.scheduler.run_once(at)) == 1
    assert on_loop(coordinator, coordinator.scheduler.run_once(at + timedelta(minutes=5))) == 0
    runs = trigger_runs(coordinator, "scn_nightly")
    assert len(runs) == 1
    run = runs[0]
    assert run.params == {"from": "cron"} and run.trigger_id == "hourly"
    with api(coordinator.address) as a:
        fire = a.get_fire(run.fire_id)
    assert fire.scheduled_time.ToDatetime(UTC) == at.replace(minute=0)
    assert fire.trigger_id == "hourly"
    assert on_loop(coordinator, store.fires.trigger_last_due("scn_nightly", "hourly")) == at.replace(minute=0)


def test_missed_times_older_than_catch_up_are_skipped(slow_scheduler: Any) -> None:
    coordinator = slow_scheduler
    hourly_scenario(coordinator, "strict", catch_up_seconds=600)
    at = datetime.now(UTC).replace(minute=30, second=0, microsecond=0)
    on_loop(
        coordinator,
        coordinator.store.fires.claim_trigger_due(
            "scn_strict", "hourly", at - timedelta(hours=2), first=True
        ),
    )
    assert on_loop(coordinator, coordinator.scheduler.run_once(at)) == 0
    assert trigger_runs(coordinator, "scn_strict") == []
    # Passed over: the next hour fires normally when it is checked in time.
    assert on_loop(coordinator, coordinator.scheduler.run_once(at + timedelta(minutes=31))) == 1


def test_a_new_trigger_counts_from_when_it_is_first_seen(slow_scheduler: Any) -> None:
    coordinator = slow_scheduler
    hourly_scenario(coordinator, "fresh")
    at = datetime.now(UTC).replace(minute=59, second=0, microsecond=0)
    assert on_loop(coordinator, coordinator.scheduler.run_once(at)) == 0  # first seen
    assert on_loop(coordinator, coordinator.scheduler.run_once(at + timedelta(minutes=2))) == 1


def test_inactive_scenario_triggers_do_not_fire(slow_scheduler: Any) -> None:
    coordinator = slow_scheduler
    with api(coordinator.address) as a:
        a.create("sleepy", "print hi", active=False, triggers=[cron("0 * * * *", id="hourly")])
        assert not a.status("sleepy").HasField("next_run_time")
    at = datetime.now(UTC).replace(minute=30, second=0, microsecond=0)
    on_loop(coordinator, coordinator.scheduler.run_once(at))
    assert on_loop(coordinator, coordinator.scheduler.run_once(at + timedelta(hours=1))) == 0
    assert trigger_runs(coordinator, "scn_sleepy") == []


def test_a_trigger_fires_a_run_on_a_live_coordinator(store_url: str, tmp_path: Path) -> None:
    settings = settings_for(store_url, tmp_path, trigger_interval_seconds=0.2)
    with running_in_thread(settings, FakeDispatcher()) as coordinator, api(coordinator.address) as a:
        a.create("ticker", "print tick", triggers=[cron("* * * * * *", id="every-second")])
        status = a.status("ticker")
        assert status.next_run_trigger_id == "every-second"
        assert status.next_run_time.ToDatetime(UTC) <= datetime.now(UTC) + timedelta(seconds=2)
        run = eventually(lambda: trigger_runs(coordinator, "scn_ticker"), timeout=10)[-1]
        assert run.trigger_id == "every-second"
        fire = a.get_fire(run.fire_id)
        assert fire.idempotency_key.startswith("trigger:scn_ticker:every-second:")
        assert a.ended(run.id).state == run_pb2.RUN_STATE_SUCCESS


def test_two_schedulers_on_one_store_fire_a_due_time_once(pg_database: str, tmp_path: Path) -> None:
    settings = settings_for(pg_database, tmp_path, trigger_interval_seconds=60)
    with running_in_thread(settings, FakeDispatcher()) as coordinator:
        on_loop(coordinator, coordinator.scheduler.aclose())
        hourly_scenario(coordinator, "shared")
        at = datetime.now(UTC).replace(minute=30, second=0, microsecond=0)
        on_loop(
            coordinator,
            coordinator.store.fires.claim_trigger_due(
                "scn_shared", "hourly", at - timedelta(hours=1), first=True
            ),
        )

        async def both() -> list[int]:
            # A second coordinator's scheduler: its own connection pool on the same database.
            other = await Store.open(pg_database)
            try:
                mine = coordinator.scheduler
                launcher = FireLauncher(other, coordinator.supervisor, coordinator.hub, coordinator.tracing)
                theirs = TriggerScheduler(other, launcher, 60)
                return list(await asyncio.gather(mine.run_once(at), theirs.run_once(at)))
            finally:
                await other.aclose()

        made = on_loop(coordinator, both())
        assert sorted(made) == [0, 1]
        runs = trigger_runs(coordinator, "scn_shared")
        assert len(runs) == 1
