"""The async client against a real coordinator, real Ray workers and real Docker sandboxes: run and
wait, logs streamed live while the loop goes on, a wait cancelled mid-run (the task ends at once,
its stream and thread are let go, the run goes on), the sync client's errors, and many awaits at
once."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import pytest

from seedbed.api.v1 import run_pb2, scenario_pb2
from seedbed.client import Client, ClientError, FireCancelledError, LogEvent, RunEnded, RunFailedError
from seedbed.client.aio import AsyncClient, AsyncScenarioRun, AsyncTriggerFire
from seedbed.client.aio._threads import THREAD_NAME_PREFIX

pytestmark = pytest.mark.integration

STEPPED = """\
from seedbed.sdk import Seedbed

dm = Seedbed()
with dm.step("load"):
    print("loading")
with dm.step("check"):
    print("checking")
    if dm.params.get("fail") == "yes":
        raise RuntimeError("check failed: 3 orphans")
"""

TICKS = """\
import time
for n in range(4):
    print(f"tick {n}", flush=True)
    time.sleep(1)
"""

SLOW = """\
import time
print("started", flush=True)
time.sleep(60)
"""

NO_RETRY = scenario_pb2.ScenarioSettings(retry_policy=scenario_pb2.RetryPolicy(disabled=True))
CONCURRENT = scenario_pb2.ScenarioSettings(
    retry_policy=scenario_pb2.RetryPolicy(disabled=True),
    overlap_policy=scenario_pb2.OVERLAP_POLICY_ALLOW_CONCURRENT,
)


def _aio_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith(THREAD_NAME_PREFIX)]


async def _until(check: Any, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := await check() if asyncio.iscoroutinefunction(check) else check()):
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)
    return value


async def test_run_and_wait_and_the_sync_clients_errors(coordinator: tuple[Any, Client]) -> None:
    coord, _ = coordinator
    async with AsyncClient(coord.address) as client:
        project = await client.get_default_project()
        stepped = await project.create_scenario("stepped", "stepped", STEPPED, settings=NO_RETRY)

        run = await stepped.run_and_wait()
        assert isinstance(run, AsyncScenarioRun)
        assert run.outcome == "SUCCESS" and not run.running and run.duration is not None
        details = await run.get_details()
        assert details.run is run
        assert [(s.name, s.outcome) for s in details.steps] == [("load", "SUCCESS"), ("check", "SUCCESS")]
        assert (await run.get_log(step_id="load")).splitlines()[-1].endswith("loading")
        last = await stepped.get_last_finished_run()
        assert last is not None and last.id == run.id and last is not run  # another object, read anew
        assert await run.refresh() is run  # the same object: the same facade
        assert (await stepped.get_last_successful_run(no_fail=True)) is not None
        assert run.to_dict()["outcome"] == "SUCCESS"

        with pytest.raises(RunFailedError) as failed:
            await stepped.run_and_wait(params={"fail": "yes"})
        assert failed.value.outcome == "FAILED"
        error = failed.value.run.first_error  # the sync run: its attributes are current
        assert error is not None and (error.type, error.step) == ("RuntimeError", "check")

        with pytest.raises(ClientError) as missing:
            await project.get_scenario("missing")
        assert missing.value.code == grpc.StatusCode.NOT_FOUND
        with pytest.raises(ClientError) as unknown_run:
            await client.wait("run_0000000000000000")
        assert unknown_run.value.code == grpc.StatusCode.NOT_FOUND

        slow = await project.create_scenario("slow", "slow", SLOW, settings=NO_RETRY)
        first = await (await slow.run()).wait_for_scenario_run()
        assert first is not None
        skipped = await slow.run()  # the default overlap policy skips a fire while a run is active
        assert isinstance(skipped, AsyncTriggerFire)
        with pytest.raises(FireCancelledError) as cancelled:
            await skipped.wait_for_scenario_run()
        assert cancelled.value.reason.startswith("already running")
        assert await skipped.is_cancelled(refresh=True) and await skipped.get_scenario_run() is None
        assert await first.abort("enough") is False
        assert (await first.wait_for_completion(no_fail=True)).outcome == "ABORTED"


async def test_logs_stream_live_while_the_loop_goes_on(coordinator: tuple[Any, Client]) -> None:
    coord, _ = coordinator
    async with AsyncClient(coord.address) as client:
        ticks = await (await client.get_default_project()).create_scenario(
            "ticks", "ticks", TICKS, settings=NO_RETRY
        )
        run = await (await ticks.run()).wait_for_scenario_run()
        assert run is not None
        beats = 0

        async def heartbeat() -> None:
            nonlocal beats
            while True:
                await asyncio.sleep(0.05)
                beats += 1

        beating = asyncio.ensure_future(heartbeat())
        arrivals: dict[str, float] = {}
        async for event in client.stream_logs(run.id):
            if isinstance(event, LogEvent) and event.stream == "STDOUT":
                arrivals[event.text] = time.monotonic()
            elif isinstance(event, RunEnded):
                arrivals["end"] = time.monotonic()
                assert event.run.id == run.id
        beating.cancel()
        assert [text for text in arrivals if text != "end"] == [f"tick {n}" for n in range(4)]
        # Each line came as it was written, seconds before the run ended, not all at the end.
        assert arrivals["end"] - arrivals["tick 0"] > 2.5
        assert arrivals["tick 2"] - arrivals["tick 1"] > 0.5
        assert beats > 20  # the loop went on serving other tasks meanwhile
        # The run's own stream keeps the run current once it ends.
        lines = [event.text async for event in run.stream_logs()]
        assert "tick 3" in lines and run.outcome == "SUCCESS"


async def test_a_wait_cancelled_mid_run_lets_go_of_its_stream_and_thread(
    coordinator: tuple[Any, Client],
) -> None:
    coord, _ = coordinator
    client = AsyncClient(coord.address)
    slow = await (await client.get_default_project()).create_scenario("slow", "slow", SLOW, settings=NO_RETRY)
    run = await (await slow.run()).wait_for_scenario_run()
    assert run is not None

    async def started() -> bool:
        return "started" in await run.get_log()

    await _until(started)
    waits: list[Callable[[], Awaitable[Any]]] = [
        run.wait_for_completion,
        lambda: client.wait_for_runs([run]),
        lambda: client.wait(run.id),
    ]
    for wait in waits:
        task = asyncio.ensure_future(wait())
        await _until(lambda: client.busy)
        await asyncio.sleep(0.5)  # the thread is blocked reading the watch stream
        assert not task.done()
        began = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 5)
        assert time.monotonic() - began < 2.0
        assert client.busy == 0  # its thread returned: the stream it was reading was cancelled
    assert (await run.refresh()).state == "RUNNING"  # cancelling a wait does not stop the run
    await client.aclose()
    assert _aio_threads() == []  # every thread of the client ended
    with Client(coord.address) as sync:
        sync.abort(run.id, "done")
        assert sync.wait(run.id).state == run_pb2.RUN_STATE_ABORTED


async def test_many_awaits_at_once(coordinator: tuple[Any, Client]) -> None:
    coord, _ = coordinator
    async with AsyncClient(coord.address) as client:
        quick = await (await client.get_default_project()).create_scenario(
            "quick", "quick", 'print("quick")\n', settings=CONCURRENT
        )
        runs = await asyncio.gather(*(quick.run_and_wait(params={"n": str(n)}) for n in range(6)))
        assert all(r is not None and r.outcome == "SUCCESS" for r in runs)
        assert sorted(r.params["n"] for r in runs if r is not None) == [str(n) for n in range(6)]
        assert len({r.id for r in runs if r is not None}) == 6

        reads = await asyncio.gather(*(client.get_run(r.id) for r in runs if r is not None for _ in range(8)))
        assert len(reads) == 48 and {read.state for read in reads} == {run_pb2.RUN_STATE_SUCCESS}

        fires = [await quick.run() for _ in range(3)]
        loop_thread = threading.current_thread()
        updates: list[tuple[int, str, bool]] = []

        def on_update(position: int, item: AsyncTriggerFire | AsyncScenarioRun) -> None:
            updates.append((position, type(item).__name__, threading.current_thread() is loop_thread))

        ended = await client.wait_for_runs(fires, on_update=on_update)
        assert [r.outcome if r else None for r in ended] == ["SUCCESS"] * 3
        assert updates and all(on_loop for _, _, on_loop in updates)
        assert {name for _, name, _ in updates} <= {"AsyncTriggerFire", "AsyncScenarioRun"}
        assert client.busy == 0
