"""Overlap policies: what a fire does while a run of its scenario is active (live coordinator, fake
executor, SQLite and PostgreSQL)."""

from __future__ import annotations

from asyncio import run_coroutine_threadsafe
from pathlib import Path
from typing import Any

from seedbed.api.v1 import run_pb2, scenario_pb2
from seedbed.coordinator import running_in_thread
from seedbed.coordinator.fakes import FakeDispatcher
from tests.conftest import eventually, settings_for
from tests.unit._scheduling import api

SLOW = "sleep 30\nprint done"
QUICK = "print done"

PENDING = run_pb2.TRIGGER_FIRE_STATE_PENDING
CREATED = run_pb2.TRIGGER_FIRE_STATE_RUN_CREATED
CANCELLED = run_pb2.TRIGGER_FIRE_STATE_CANCELLED


def test_skip_cancels_the_fire_with_the_active_run_named(fake_coordinator: tuple[Any, Any]) -> None:
    coordinator, _ = fake_coordinator
    with api(coordinator.address) as a:
        a.create("skip", SLOW)
        first = a.fire("skip")
        second = a.fire("skip")
        assert first.state == CREATED
        assert second.state == CANCELLED
        assert second.cancel_reason.startswith("already running")
        assert first.run_id in second.cancel_reason
        assert second.HasField("resolve_time")
        a.abort(first.run_id)


def test_allow_concurrent_starts_a_run_per_fire(fake_coordinator: tuple[Any, Any]) -> None:
    coordinator, _ = fake_coordinator
    with api(coordinator.address) as a:
        a.create("both", SLOW, overlap_policy=scenario_pb2.OVERLAP_POLICY_ALLOW_CONCURRENT)
        fires = [a.fire("both") for _ in range(2)]
        assert [f.state for f in fires] == [CREATED, CREATED]
        for fire in fires:
            a.running(fire.run_id)
            a.abort(fire.run_id)


def test_queue_one_waits_then_runs_and_cancels_a_second_waiter(fake_coordinator: tuple[Any, Any]) -> None:
    coordinator, _ = fake_coordinator
    with api(coordinator.address) as a:
        a.create("q1", SLOW, overlap_policy=scenario_pb2.OVERLAP_POLICY_QUEUE_ONE)
        first = a.fire("q1")
        waiting = a.fire("q1", size="2")
        extra = a.fire("q1")
        assert waiting.state == PENDING
        assert waiting.queue_reason.startswith(f"queued behind run {first.run_id}")
        assert not waiting.HasField("resolve_time")
        assert extra.state == CANCELLED
        assert extra.cancel_reason.startswith(
            f"already queued: fire {waiting.id} waits behind run {first.run_id}"
        )
        status = a.status("q1")
        assert list(status.current_run_ids) == [first.run_id]
        assert list(status.queued_fire_ids) == [waiting.id]

        a.abort(first.run_id)
        resolved = eventually(lambda: (f := a.get_fire(waiting.id)).state == CREATED and f)
        assert resolved.queue_reason == "" and resolved.HasField("resolve_time")
        run = a.get_run(resolved.run_id)
        assert run.fire_id == waiting.id and run.params == {"size": "2"}
        a.abort(run.id)


def test_queue_all_runs_fires_one_at_a_time_in_order(fake_coordinator: tuple[Any, Any]) -> None:
    coordinator, _ = fake_coordinator
    with api(coordinator.address) as a:
        a.create("qall", "sleep 0.3", overlap_policy=scenario_pb2.OVERLAP_POLICY_QUEUE_ALL)
        fires = [a.fire("qall", n=str(n)) for n in range(4)]
        assert [f.state for f in fires] == [CREATED, PENDING, PENDING, PENDING]
        assert "2 fire(s) ahead" in fires[3].queue_reason
        runs = [a.ended(eventually(lambda f=f: a.get_fire(f.id).run_id)) for f in fires]
        assert [r.params["n"] for r in runs] == ["0", "1", "2", "3"]
        assert all(r.state == run_pb2.RUN_STATE_SUCCESS for r in runs)
        for before, after in zip(runs, runs[1:], strict=False):
            # One at a time: each starts only after the one before it ended.
            assert before.end_time.ToDatetime() <= after.start_time.ToDatetime()


def test_cancel_running_aborts_the_active_run_and_starts_a_new_one(fake_coordinator: tuple[Any, Any]) -> None:
    coordinator, _ = fake_coordinator
    with api(coordinator.address) as a:
        a.create("cancel", SLOW, overlap_policy=scenario_pb2.OVERLAP_POLICY_CANCEL_RUNNING)
        first = a.fire("cancel")
        a.running(first.run_id)
        second = a.fire("cancel")
        assert second.state == CREATED and second.run_id != first.run_id
        old = a.ended(first.run_id)
        assert old.state == run_pb2.RUN_STATE_ABORTED
        assert f"cancelled by {second.id}: overlap policy CANCEL_RUNNING" in old.first_error.message
        assert a.running(second.run_id)
        a.abort(second.run_id)


def test_runs_carry_provenance(fake_coordinator: tuple[Any, Any]) -> None:
    coordinator, _ = fake_coordinator
    with api(coordinator.address) as a:
        a.create("prov", QUICK)
        fire = a.fire("prov")
        run = a.ended(fire.run_id)
        assert run.project_key == "default"
        assert run.trigger_id == "" and fire.trigger_id == ""


def test_inactive_scenario_runs_explicit_fires_unless_set_to_refuse_them(
    fake_coordinator: tuple[Any, Any],
) -> None:
    """Inactive stops the triggers (test_triggers), not explicit runs, as in Dataiku; the setting
    refuse_runs_when_inactive brings the refusal back."""
    import grpc
    import pytest

    coordinator, _ = fake_coordinator
    with api(coordinator.address) as a:
        a.create("off", QUICK, active=False)
        fire = a.fire("off")
        assert fire.state == CREATED
        assert a.ended(fire.run_id).state == run_pb2.RUN_STATE_SUCCESS

        a.create("strict", QUICK, active=False, refuse_runs_when_inactive=True)
        with pytest.raises(grpc.RpcError) as info:
            a.fire("strict")
        assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "refuse_runs_when_inactive" in (info.value.details() or "")
        assert a.list_runs(scenario_id="strict") == []


def test_a_fire_waiting_when_its_scenario_is_deactivated_runs_unless_runs_are_refused(
    fake_coordinator: tuple[Any, Any],
) -> None:
    from tests.conftest import auth_metadata

    coordinator, _ = fake_coordinator
    queue = scenario_pb2.OVERLAP_POLICY_QUEUE_ONE
    with api(coordinator.address) as a:
        for name, refuse in (("lenient", False), ("strict", True)):
            a.create(name, SLOW, overlap_policy=queue, refuse_runs_when_inactive=refuse)
            first = a.fire(name)
            waiting = a.fire(name)
            assert waiting.state == PENDING
            off = scenario_pb2.ScenarioSettings(
                active=False, overlap_policy=queue, refuse_runs_when_inactive=refuse
            )
            a.scenarios.UpdateScenario(
                scenario_pb2.UpdateScenarioRequest(scenario_id=name, settings=off), metadata=auth_metadata()
            )
            a.abort(first.run_id)
            resolved = eventually(lambda f=waiting: (x := a.get_fire(f.id)).state != PENDING and x)
            if refuse:
                assert resolved.state == CANCELLED
                assert resolved.cancel_reason == f"scenario scn_{name} became inactive while the fire waited"
            else:
                assert resolved.state == CREATED
                a.running(resolved.run_id)
                a.abort(resolved.run_id)


def test_a_waiting_fire_left_behind_is_released_by_the_scheduler_pass(store_url: str, tmp_path: Path) -> None:
    """A coordinator that stopped between a run's end and the release of the next fire: the next
    pass of any coordinator's trigger loop gives the waiting fire its run."""
    settings = settings_for(store_url, tmp_path, trigger_interval_seconds=60)
    with running_in_thread(settings, FakeDispatcher()) as coordinator, api(coordinator.address) as a:
        run_coroutine_threadsafe(coordinator.scheduler.aclose(), coordinator.loop).result(timeout=30)
        # Simulate the lost release: nobody listens for the run's end.
        coordinator.supervisor._listeners.remove(coordinator.fires)
        a.create("orphan", SLOW, overlap_policy=scenario_pb2.OVERLAP_POLICY_QUEUE_ONE)
        first = a.fire("orphan")
        waiting = a.fire("orphan")
        a.abort(first.run_id)
        assert a.ended(first.run_id).state == run_pb2.RUN_STATE_ABORTED
        assert a.get_fire(waiting.id).state == PENDING
        run_coroutine_threadsafe(coordinator.scheduler.run_once(), coordinator.loop).result(timeout=30)
        released = a.get_fire(waiting.id)
        assert released.state == CREATED
        a.running(released.run_id)
        a.abort(released.run_id)
