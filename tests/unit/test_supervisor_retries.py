"""Retries, leases and the janitor's rules, with the fake dispatcher and a real store (SQLite and
PostgreSQL): over gRPC where a client sees the effect, on the supervisor itself for leases."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from seedbed.api.v1 import run_pb2, scenario_pb2
from seedbed.client import Client, LogEvent
from seedbed.coordinator.fakes import FakeDispatcher
from seedbed.coordinator.janitor import Sandbox, SandboxJanitor, stale_sandboxes
from seedbed.coordinator.logs import LogHub
from seedbed.coordinator.model import FailureReason, OverlapPolicy, RunState
from seedbed.coordinator.store import ErrorInfo, ScenarioSettingsValue, Store, now
from seedbed.coordinator.supervisor import RunSupervisor
from tests.conftest import eventually, settings_for


def _put(client: Client, scenario: str, script: str, **policy: Any) -> str:
    """A scenario with quick backoffs (and the given policy fields); its run id once fired."""
    retry = scenario_pb2.RetryPolicy(initial_backoff_seconds=0.05, maximum_backoff_seconds=0.2, **policy)
    client.put_scenario(
        scenario,
        script=script,
        settings=scenario_pb2.ScenarioSettings(
            overlap_policy=scenario_pb2.OVERLAP_POLICY_ALLOW_CONCURRENT, retry_policy=retry
        ),
    )
    return client.run(scenario).run_id


def _system(client: Client, run_id: str) -> list[str]:
    return [
        e.line.text
        for e in client.stream_logs(run_id, follow=False)
        if isinstance(e, LogEvent) and e.line.stream == run_pb2.LOG_STREAM_SYSTEM
    ]


def test_lost_worker_then_success_records_both_attempts(fake_coordinator: tuple[Any, Client]) -> None:
    _, client = fake_coordinator
    run_id = _put(client, "flaky", "print starting\nattempt<2: lost node went away\nprint done")
    run = client.wait(run_id)
    assert run.state == run_pb2.RUN_STATE_SUCCESS and run.attempt_count == 2
    run = client.get_run(run_id)
    assert [(a.number, a.state, a.outcome) for a in run.attempts] == [
        (1, "ENDED", "INFRASTRUCTURE"),
        (2, "ENDED", "SUCCEEDED"),
    ]
    first, second = run.attempts
    assert first.error.type == "WorkerLost" and "node went away" in first.error.message
    assert first.error.reason == run_pb2.FAILURE_REASON_INFRASTRUCTURE
    assert not second.HasField("error") or not second.error.type
    assert second.fencing_token > first.fencing_token
    assert all(a.node == "fake" and a.worker_pid > 0 and a.container_id for a in run.attempts)
    assert all(a.start_time.ToDatetime() <= a.end_time.ToDatetime() for a in run.attempts)
    assert not run.HasField("next_attempt_time") and not run.first_error.type
    retry_line = next(t for t in _system(client, run_id) if t.startswith("attempt 1 failed"))
    assert "(INFRASTRUCTURE: WorkerLost: " in retry_line
    assert "; attempt 2 in 0." in retry_line and "(retry policy: up to 3 attempts)" in retry_line
    listed = next(r for r in client.list_runs() if r.id == run_id)
    assert [a.outcome for a in listed.attempts] == ["INFRASTRUCTURE", "SUCCEEDED"]


def test_script_errors_are_retried_only_when_asked(fake_coordinator: tuple[Any, Client]) -> None:
    _, client = fake_coordinator
    plain = client.wait(_put(client, "strict", "attempt<3: fail boom\nprint ok"))
    assert plain.state == run_pb2.RUN_STATE_FAILED and plain.attempt_count == 1
    assert plain.first_error.reason == run_pb2.FAILURE_REASON_SCRIPT_ERROR
    retried = client.wait(
        _put(
            client,
            "lenient",
            "attempt<3: fail boom\nprint ok",
            retry_on=[run_pb2.FAILURE_REASON_SCRIPT_ERROR],
        )
    )
    assert retried.state == run_pb2.RUN_STATE_SUCCESS and retried.attempt_count == 3
    assert [a.outcome for a in client.get_run(retried.id).attempts] == [
        "SCRIPT_ERROR",
        "SCRIPT_ERROR",
        "SUCCEEDED",
    ]


def test_nondeterministic_is_never_retried(fake_coordinator: tuple[Any, Client]) -> None:
    _, client = fake_coordinator
    everything = [
        run_pb2.FAILURE_REASON_SCRIPT_ERROR,
        run_pb2.FAILURE_REASON_TIMEOUT,
        run_pb2.FAILURE_REASON_OOM,
        run_pb2.FAILURE_REASON_KILLED,
        run_pb2.FAILURE_REASON_INFRASTRUCTURE,
    ]
    run = client.wait(_put(client, "drifts", "nondeterministic batch 3 changed", retry_on=everything))
    assert run.state == run_pb2.RUN_STATE_FAILED and run.attempt_count == 1
    assert run.first_error.reason == run_pb2.FAILURE_REASON_NONDETERMINISTIC
    assert "batch 3 changed" in run.first_error.message
    assert [a.outcome for a in client.get_run(run.id).attempts] == ["NONDETERMINISTIC"]


def test_exhausted_attempts_fail_with_the_last_error(fake_coordinator: tuple[Any, Client]) -> None:
    _, client = fake_coordinator
    run = client.wait(_put(client, "doomed", "attempt<3: lost gone\nkill", maximum_attempts=3))
    assert run.state == run_pb2.RUN_STATE_FAILED and run.attempt_count == 3
    assert run.first_error.reason == run_pb2.FAILURE_REASON_KILLED  # the third attempt's, not the first's
    run = client.get_run(run.id)
    assert [a.outcome for a in run.attempts] == ["INFRASTRUCTURE", "INFRASTRUCTURE", "KILLED"]
    assert any("after 3 attempts (retry policy: up to 3 attempts)" in t for t in _system(client, run.id))


def test_abort_during_the_backoff_wait_is_quick(fake_coordinator: tuple[Any, Client]) -> None:
    _, client = fake_coordinator
    retry = scenario_pb2.RetryPolicy(initial_backoff_seconds=60, maximum_backoff_seconds=60)
    client.put_scenario(
        "patient", script="lost gone", settings=scenario_pb2.ScenarioSettings(retry_policy=retry)
    )
    run_id = client.run("patient").run_id
    waiting = eventually(
        lambda: client.get_run(run_id).HasField("next_attempt_time") and client.get_run(run_id)
    )
    assert waiting.state == run_pb2.RUN_STATE_RUNNING and waiting.attempt_count == 1
    wait = waiting.next_attempt_time.ToDatetime(tzinfo=UTC) - datetime.now(UTC)
    assert timedelta(seconds=40) < wait <= timedelta(seconds=60)
    started = time.monotonic()
    response = client.abort(run_id, "no more waiting")
    assert time.monotonic() - started < 5
    assert response.run.state == run_pb2.RUN_STATE_ABORTED
    assert response.run.first_error.message == "no more waiting"
    run = client.get_run(run_id)
    assert run.attempt_count == 1 and not run.HasField("next_attempt_time")
    assert [a.outcome for a in run.attempts] == ["INFRASTRUCTURE"]


# -- leases and fencing, on the supervisor itself ---------------------------------------------------


@contextlib.asynccontextmanager
async def _supervisor(
    store_url: str, tmp_path: Path
) -> AsyncIterator[tuple[Store, RunSupervisor, FakeDispatcher]]:
    """A supervisor with short leases over a real store; not started."""
    settings = settings_for(
        store_url, tmp_path, lease_seconds=0.6, recovery_interval_seconds=0.1, coordinator_id="here"
    )
    store = await Store.open(settings.resolved_store_url())
    dispatcher = FakeDispatcher()
    supervisor = RunSupervisor(store, dispatcher, LogHub(), settings)
    try:
        yield store, supervisor, dispatcher
    finally:
        await supervisor.aclose()
        await store.aclose()


async def _queued(store: Store, scenario: str, script: str) -> str:
    settings = ScenarioSettingsValue(overlap_policy=OverlapPolicy.ALLOW_CONCURRENT)
    await store.create_scenario(scenario, scenario, script, settings)
    _, run, _ = await store.fires.fire(scenario, {}, "")
    assert run is not None
    return run.id


async def _until(check: Callable[[], Awaitable[Any]], timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last value {value!r})")
        await asyncio.sleep(0.05)


async def test_recovery_loop_drives_a_run_whose_lease_lapsed(store_url: str, tmp_path: Path) -> None:
    async with _supervisor(store_url, tmp_path) as (store, supervisor, _):
        run_id = await _queued(store, "scn_orphaned", "print recovered")
        # A coordinator that began attempt 1 and died: nobody renews its lease.
        await store.attempts.begin(run_id, seen_attempts=0, holder="gone", lease=timedelta(seconds=1))
        await supervisor.start()
        assert (await store.get_run(run_id)).attempt_count == 1  # not taken before the lease lapses
        run = await _until(lambda: _terminal(store, run_id))
        assert run.state is RunState.SUCCESS and run.attempt_count == 2
        first, second = await store.attempts.for_run(run_id)
        assert (first.outcome, first.error and first.error.type) == ("INFRASTRUCTURE", "Superseded")
        assert (first.holder, second.holder, second.outcome) == ("gone", "here", "SUCCEEDED")
        assert second.fencing_token > first.fencing_token


async def test_a_recovered_run_waits_out_its_backoff_or_is_aborted(store_url: str, tmp_path: Path) -> None:
    async with _supervisor(store_url, tmp_path) as (store, supervisor, _):
        due = now() + timedelta(seconds=1.5)
        runs = []
        for name in ("scn_resumes", "scn_stopped"):
            # A coordinator ended attempt 1, scheduled attempt 2, and died during the backoff.
            run_id = await _queued(store, name, "print again")
            number, token = await store.attempts.begin(
                run_id, seen_attempts=0, holder="gone", lease=timedelta(milliseconds=100)
            )
            lost = ErrorInfo(FailureReason.INFRASTRUCTURE, "WorkerLost", "gone")
            assert await store.attempts.end(run_id, number, token, "INFRASTRUCTURE", lost)
            assert await store.attempts.schedule_next(run_id, number, due)
            runs.append(run_id)
        resumes, stopped = runs
        await asyncio.sleep(0.2)
        await supervisor.start()
        await _until(lambda: _attempt_count(store, stopped, 1))
        started = time.monotonic()
        run, already = await supervisor.abort(stopped, "not now")
        assert not already and run.state is RunState.ABORTED and time.monotonic() - started < 2
        assert run.attempt_count == 1 and run.next_attempt_at is None
        run = await _until(lambda: _terminal(store, resumes))
        assert run.state is RunState.SUCCESS and run.attempt_count == 2
        second = (await store.attempts.for_run(resumes))[1]
        assert second.created_at >= due


async def test_a_superseded_driver_stops_and_does_not_finish_the_run(store_url: str, tmp_path: Path) -> None:
    async with _supervisor(store_url, tmp_path) as (store, supervisor, dispatcher):
        run_id = await _queued(store, "scn_contested", "print one\nsleep 5\nprint two")
        await supervisor.start()
        supervisor.launch(run_id)
        first = await _until(lambda: _attempt_in(store, run_id, 1, "RUNNING"))
        # Another coordinator takes the run over (as if it had seen the lease lapse).
        number, token = await store.attempts.begin(
            run_id, seen_attempts=1, holder="elsewhere", lease=timedelta(minutes=5)
        )
        assert number == 2 and token > first.fencing_token
        # The next renewal finds the token superseded: the dispatch is closed, its sandbox gone.
        await _until(lambda: _no_sandbox(dispatcher, run_id))
        await asyncio.sleep(0.5)  # several recovery passes: attempt 2's lease is valid, nobody retakes it
        run = await store.get_run(run_id)
        assert run.state is RunState.RUNNING and run.attempt_count == 2 and run.ended_at is None
        attempts = await store.attempts.for_run(run_id)
        assert [(a.number, a.state, a.holder) for a in attempts] == [
            (1, "ENDED", "here"),
            (2, "DISPATCHED", "elsewhere"),
        ]
        texts = [line.text for line in await store.read_logs(run_id, 0, 100)]
        assert "two" not in texts and not any(t.startswith("run ended") for t in texts)
        assert [spec.attempt for spec in dispatcher.specs] == [1]


async def test_a_second_coordinator_cannot_begin_the_same_attempt(store_url: str, tmp_path: Path) -> None:
    async with _supervisor(store_url, tmp_path) as (store, _, _):
        run_id = await _queued(store, "scn_race", "print x")
        results = await asyncio.gather(
            *(
                store.attempts.begin(run_id, seen_attempts=0, holder=f"c{i}", lease=timedelta(seconds=30))
                for i in range(5)
            ),
            return_exceptions=True,
        )
        won = [r for r in results if isinstance(r, tuple)]
        assert won == [(1, won[0][1])] and len(results) - len(won) == 4
        assert (await store.get_run(run_id)).attempt_count == 1


async def _terminal(store: Store, run_id: str) -> Any:
    run = await store.get_run(run_id)
    return run if run.state.is_terminal else None


async def _attempt_count(store: Store, run_id: str, count: int) -> bool:
    return (await store.get_run(run_id)).attempt_count == count


async def _attempt_in(store: Store, run_id: str, number: int, state: str) -> Any:
    for attempt in await store.attempts.for_run(run_id):
        if attempt.number == number and attempt.state == state:
            return attempt
    return None


async def _no_sandbox(dispatcher: FakeDispatcher, run_id: str) -> bool:
    return not any(box["run"] == run_id for box in await dispatcher.list_sandboxes())


# -- the janitor's rules ------------------------------------------------------------------------------


def test_janitor_rules() -> None:
    at = datetime(2026, 1, 1, 12, tzinfo=UTC)
    old, young = at - timedelta(hours=1), at - timedelta(seconds=5)
    boxes = [
        Sandbox("current", "run_a", 2, young),
        Sandbox("superseded", "run_a", 1, young),
        Sandbox("ended", "run_b", 1, young),
        Sandbox("unknown-old", "run_x", 1, old),
        Sandbox("unknown-young", "run_y", 1, young),
        Sandbox("current-old", "run_c", 1, old),
    ]
    runs = {"run_a": (RunState.RUNNING, 2), "run_b": (RunState.SUCCESS, 1), "run_c": (RunState.QUEUED, 1)}
    stale = {box.id: reason for box, reason in stale_sandboxes(boxes, runs, at, timedelta(minutes=10))}
    assert stale == {
        "superseded": "superseded by attempt 2",
        "ended": "the run has ended (SUCCESS)",
        "unknown-old": "its run is unknown to the store",
    }


async def test_janitor_removes_superseded_and_ended_sandboxes_only(store_url: str, tmp_path: Path) -> None:
    async with _supervisor(store_url, tmp_path) as (store, _, dispatcher):
        settings = settings_for(store_url, tmp_path)
        active = await _queued(store, "scn_active", "print x")
        await store.attempts.begin(active, seen_attempts=0, holder="c", lease=timedelta(seconds=30))
        await store.attempts.begin(active, seen_attempts=1, holder="c", lease=timedelta(seconds=30))
        created = datetime.now(UTC).isoformat()
        dispatcher.sandboxes = [
            {"id": "c-old", "run": active, "attempt": "1", "created": created},
            {"id": "c-current", "run": active, "attempt": "2", "created": created},
            {"id": "c-stranger", "run": "run_unknown", "attempt": "1", "created": created},
        ]
        removed = await SandboxJanitor(store, dispatcher, settings).sweep()
        assert removed == ["c-old"] and dispatcher.removed == ["c-old"]
        assert {box["id"] for box in dispatcher.sandboxes} == {"c-current", "c-stranger"}
