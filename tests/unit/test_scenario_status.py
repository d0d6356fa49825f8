"""GetScenarioStatus, and ListRuns' filters (states, creation time, project)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from seedbed.api.v1 import run_pb2, scenario_pb2
from tests.conftest import auth_metadata, eventually
from tests.unit._scheduling import api


def stamp(value: datetime) -> Timestamp:
    out = Timestamp()
    out.FromDatetime(value)
    return out


def test_status_running_queued_and_last_outcome(fake_coordinator: tuple[Any, Any]) -> None:
    coordinator, _ = fake_coordinator
    with api(coordinator.address) as a:
        a.create("stat", "fail nope", overlap_policy=scenario_pb2.OVERLAP_POLICY_QUEUE_ALL)
        idle = a.status("stat")
        assert not idle.running and not idle.current_run_ids and not idle.last_run_id
        assert not idle.HasField("next_run_time")
        failed = a.ended(a.fire("stat").run_id)
        status = a.status("stat")
        assert status.last_run_id == failed.id
        assert status.last_outcome == run_pb2.RUN_STATE_FAILED
        assert status.last_end_time == failed.end_time

        a.scenarios.UpdateScenario(
            scenario_pb2.UpdateScenarioRequest(scenario_id="stat", script="sleep 30"),
            metadata=auth_metadata(),
        )
        running = a.fire("stat")
        waiting = a.fire("stat")
        status = a.status("stat")
        assert status.running and list(status.current_run_ids) == [running.run_id]
        assert list(status.queued_fire_ids) == [waiting.id]
        assert status.last_run_id == failed.id
        a.abort(running.run_id)
        a.abort(str(eventually(lambda: a.get_fire(waiting.id).run_id)))


def test_status_next_run_from_the_earliest_active_trigger(fake_coordinator: tuple[Any, Any]) -> None:
    coordinator, _ = fake_coordinator
    with api(coordinator.address) as a:
        a.create(
            "sched",
            "print x",
            triggers=[
                scenario_pb2.Trigger(id="yearly", cron=scenario_pb2.CronSchedule(expression="0 0 1 1 *")),
                scenario_pb2.Trigger(
                    id="daily", cron=scenario_pb2.CronSchedule(expression="15 4 * * *", timezone="Asia/Tokyo")
                ),
                scenario_pb2.Trigger(
                    id="off", active=False, cron=scenario_pb2.CronSchedule(expression="* * * * *")
                ),
            ],
        )
        status = a.status("sched")
        assert status.next_run_trigger_id == "daily"
        due = status.next_run_time.ToDatetime(UTC)
        assert (due.hour, due.minute) == (19, 15)  # 04:15 in Tokyo (UTC+9)
        assert datetime.now(UTC) < due <= datetime.now(UTC) + timedelta(days=1)


def test_list_runs_filters(fake_coordinator: tuple[Any, Any]) -> None:
    coordinator, _ = fake_coordinator
    with api(coordinator.address) as a:
        a.create("ok", "print x", overlap_policy=scenario_pb2.OVERLAP_POLICY_ALLOW_CONCURRENT)
        a.create("bad", "fail x", overlap_policy=scenario_pb2.OVERLAP_POLICY_ALLOW_CONCURRENT)
        good = [a.ended(a.fire("ok").run_id) for _ in range(2)]
        broken = a.ended(a.fire("bad").run_id)
        failed = a.list_runs(states=[run_pb2.RUN_STATE_FAILED])
        assert [r.id for r in failed] == [broken.id]
        both = a.list_runs(states=[run_pb2.RUN_STATE_FAILED, run_pb2.RUN_STATE_SUCCESS])
        assert {r.id for r in both} == {broken.id, *(g.id for g in good)}
        # Half-open: created_after is included, created_before is not.
        second = good[1].create_time.ToDatetime(UTC)
        window = a.list_runs(created_after=good[1].create_time, created_before=broken.create_time)
        assert [r.id for r in window] == [good[1].id]
        assert a.list_runs(created_after=stamp(second + timedelta(days=1))) == []
        assert len(a.list_runs(project_key="default")) == 3
        assert a.list_runs(project_key="elsewhere") == []

        for fields in (
            {"states": [42]},
            {"states": [run_pb2.RUN_STATE_UNSPECIFIED]},
            {"created_after": broken.create_time, "created_before": good[0].create_time},
        ):
            with pytest.raises(grpc.RpcError) as info:
                a.list_runs(**fields)
            assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT, fields
