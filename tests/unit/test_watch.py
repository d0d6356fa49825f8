"""WatchRuns: current state first, a message per change, a fire followed into its run, ``done`` at
the end; and its argument checks."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from seedbed.api.v1 import run_pb2, scenario_pb2
from tests.conftest import auth_metadata
from tests.unit._scheduling import api


def test_watch_ends_with_done_for_a_fire_cancelled_by_skip(fake_coordinator: tuple[Any, Any]) -> None:
    coordinator, _ = fake_coordinator
    with api(coordinator.address) as a:
        a.create("skipw", "sleep 30")
        first = a.fire("skipw")
        skipped = a.fire("skipw")
        events = a.watch(fire_ids=[skipped.id])
        assert len(events) == 1
        assert events[0].done
        assert events[0].fire.state == run_pb2.TRIGGER_FIRE_STATE_CANCELLED
        assert events[0].fire.cancel_reason.startswith("already running")
        a.abort(first.run_id)


def test_watch_follows_fires_into_runs_until_they_end(fake_coordinator: tuple[Any, Any]) -> None:
    coordinator, _ = fake_coordinator
    with api(coordinator.address) as a:
        a.create("queued", "sleep 0.3\nprint done", overlap_policy=scenario_pb2.OVERLAP_POLICY_QUEUE_ALL)
        fires = [a.fire("queued"), a.fire("queued")]
        assert fires[1].state == run_pb2.TRIGGER_FIRE_STATE_PENDING
        events = a.watch(fire_ids=[f.id for f in fires])
        assert events[-1].done and all(not e.done for e in events[:-1])
        # The current state of each fire comes first.
        assert [e.fire.id for e in events[:2]] == [fires[0].id, fires[1].id]
        fire_states = [
            e.fire.state for e in events if e.WhichOneof("event") == "fire" and e.fire.id == fires[1].id
        ]
        assert fire_states == [run_pb2.TRIGGER_FIRE_STATE_PENDING, run_pb2.TRIGGER_FIRE_STATE_RUN_CREATED]
        final: dict[str, run_pb2.Run] = {}
        for event in events:
            if event.WhichOneof("event") == "run":
                final[event.run.id] = event.run
        assert len(final) == 2
        assert {r.state for r in final.values()} == {run_pb2.RUN_STATE_SUCCESS}
        # Nothing is sent twice.
        bodies = [e.SerializeToString(deterministic=True) for e in events]
        assert len(bodies) == len(set(bodies))


def test_watch_a_run_until_it_is_aborted(fake_coordinator: tuple[Any, Any]) -> None:
    coordinator, _ = fake_coordinator
    with api(coordinator.address) as a:
        a.create("long", "sleep 30")
        fire = a.fire("long")
        a.running(fire.run_id)
        stream = a.runs.WatchRuns(
            run_pb2.WatchRunsRequest(run_ids=[fire.run_id]),
            metadata=auth_metadata(),
            timeout=60,
        )
        first = next(stream)
        assert first.run.state == run_pb2.RUN_STATE_RUNNING and not first.done
        a.abort(fire.run_id)
        rest = list(stream)
        assert rest[-1].done and rest[-1].run.state == run_pb2.RUN_STATE_ABORTED


def test_watch_an_ended_run_answers_at_once(fake_coordinator: tuple[Any, Any]) -> None:
    coordinator, _ = fake_coordinator
    with api(coordinator.address) as a:
        a.create("quick", "print x")
        fire = a.fire("quick")
        a.ended(fire.run_id)
        events = a.watch(fire_ids=[fire.id], run_ids=[fire.run_id])
        assert events[-1].done
        assert {e.WhichOneof("event") for e in events} == {"fire", "run"}


def test_watch_argument_errors(fake_coordinator: tuple[Any, Any]) -> None:
    coordinator, _ = fake_coordinator
    with api(coordinator.address) as a:
        a.create("known", "print x")
        fire = a.fire("known")
        with pytest.raises(grpc.RpcError) as info:
            a.watch(fire_ids=[fire.id, "fire_nope"], run_ids=["run_gone"])
        assert info.value.code() == grpc.StatusCode.NOT_FOUND
        assert "fire_nope" in (info.value.details() or "") and "run_gone" in (info.value.details() or "")
        assert fire.id not in (info.value.details() or "")
        with pytest.raises(grpc.RpcError) as info:
            a.watch()
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        with pytest.raises(grpc.RpcError) as info:
            a.watch(fire_ids=[f"fire_{n}" for n in range(600)], run_ids=[f"run_{n}" for n in range(401)])
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "1001" in (info.value.details() or "") and "1000" in (info.value.details() or "")
