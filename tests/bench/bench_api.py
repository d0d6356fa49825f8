"""Benchmark: what authentication costs a call, and what waiting on a stream saves over polling.

    .venv/bin/python -m tests.bench.bench_api [--calls 500] [--runs 20] [--poll 0.5]

A coordinator on loopback with a SQLite store and the fake dispatcher (the executor is not what is
measured here). Two tables, each with its baseline measured in the same run:

1. Unary round trips (median, µs): the health check (no authentication) as the baseline; WhoAmI
   (the API key checked, trusted for a few seconds once the store said yes, then the user read);
   GetRun (the key, then a run and its attempts read from the store).
2. ``--runs`` runs of half a second started at once, then waited for: one WatchRuns stream for all
   of them, against a loop polling GetRun for each every ``--poll`` seconds (the baseline: what a
   client without a stream does). Figures: how long after a run ended the waiter knew (median and
   worst), and how many calls the waiter made.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from seedbed.api.v1 import access_pb2, access_pb2_grpc, run_pb2, run_pb2_grpc, scenario_pb2, scenario_pb2_grpc
from seedbed.coordinator import CoordinatorSettings, running_in_thread
from seedbed.coordinator.fakes import FakeDispatcher

TERMINAL = {
    run_pb2.RUN_STATE_SUCCESS,
    run_pb2.RUN_STATE_WARNING,
    run_pb2.RUN_STATE_FAILED,
    run_pb2.RUN_STATE_ABORTED,
}


def median_us(call: Callable[[], Any], n: int) -> float:
    for _ in range(20):  # warm the channel and the store's caches
        call()
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1e6


def start_runs(runs: run_pb2_grpc.RunServiceStub, scenario_id: str, n: int, md: Any) -> list[str]:
    ids = []
    for _ in range(n):
        fire = runs.RunScenario(run_pb2.RunScenarioRequest(scenario_id=scenario_id), metadata=md).fire
        ids.append(fire.run_id)
    return ids


def lags(runs: run_pb2_grpc.RunServiceStub, seen: dict[str, float], md: Any) -> list[float]:
    """Seconds between each run's end (server clock) and the moment the waiter saw it end."""
    out = []
    for run_id, noticed in seen.items():
        run = runs.GetRun(run_pb2.GetRunRequest(run_id=run_id), metadata=md).run
        out.append(noticed - run.end_time.ToDatetime().timestamp() - _UTC_OFFSET)
    return out


_UTC_OFFSET = 0.0  # ToDatetime() is naive UTC; time.time() is seconds since the epoch in UTC


def wait_streaming(
    runs: run_pb2_grpc.RunServiceStub, ids: list[str], md: Any
) -> tuple[dict[str, float], int]:
    seen: dict[str, float] = {}
    for event in runs.WatchRuns(run_pb2.WatchRunsRequest(run_ids=ids), metadata=md):
        if event.HasField("run") and event.run.state in TERMINAL and event.run.id not in seen:
            seen[event.run.id] = time.time()
        if event.done:
            break
    return seen, 1


def wait_polling(
    runs: run_pb2_grpc.RunServiceStub, ids: list[str], md: Any, interval: float
) -> tuple[dict[str, float], int]:
    seen: dict[str, float] = {}
    calls = 0
    lock = threading.Lock()

    def follow(run_id: str) -> None:
        nonlocal calls
        while True:
            run = runs.GetRun(run_pb2.GetRunRequest(run_id=run_id), metadata=md).run
            with lock:
                calls += 1
            if run.state in TERMINAL:
                seen[run_id] = time.time()
                return
            time.sleep(interval)

    threads = [threading.Thread(target=follow, args=(i,)) for i in ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return seen, calls


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--poll", type=float, default=0.5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        settings = CoordinatorSettings(
            listen="127.0.0.1:0",
            rest_listen="",
            store_url=f"sqlite+aiosqlite:///{data / 'store.db'}",
            data_dir=data,
        )
        with running_in_thread(settings, FakeDispatcher()) as coordinator:
            key = (data / "admin-api-key").read_text().strip()
            md = (("authorization", f"Bearer {key}"),)
            channel = grpc.insecure_channel(coordinator.address)
            health = health_pb2_grpc.HealthStub(channel)
            access = access_pb2_grpc.AccessServiceStub(channel)
            runs = run_pb2_grpc.RunServiceStub(channel)
            scenarios = scenario_pb2_grpc.ScenarioServiceStub(channel)
            scenarios.CreateScenario(
                scenario_pb2.CreateScenarioRequest(
                    scenario_id="bench",
                    script="sleep 0.5\nprint done\n",
                    settings=scenario_pb2.ScenarioSettings(
                        overlap_policy=scenario_pb2.OVERLAP_POLICY_ALLOW_CONCURRENT
                    ),
                ),
                metadata=md,
            )
            run_id = start_runs(runs, "scn_bench", 1, md)[0]
            wait_streaming(runs, [run_id], md)

            baseline = median_us(lambda: health.Check(health_pb2.HealthCheckRequest()), args.calls)
            whoami = median_us(lambda: access.WhoAmI(access_pb2.WhoAmIRequest(), metadata=md), args.calls)
            get_run = median_us(
                lambda: runs.GetRun(run_pb2.GetRunRequest(run_id=run_id), metadata=md), args.calls
            )
            print(f"\nUnary round trips, median of {args.calls} (µs)\n")
            print("| call | µs | × health check |")
            print("|---|---:|---:|")
            for name, value in (
                ("health check, no authentication (baseline)", baseline),
                ("WhoAmI (API key checked, the user read)", whoami),
                ("GetRun (API key, run read)", get_run),
            ):
                print(f"| {name} | {value:,.0f} | {value / baseline:.2f} |")

            results = {}
            for name, waiter in (
                ("polling", lambda ids: wait_polling(runs, ids, md, args.poll)),
                ("stream", lambda ids: wait_streaming(runs, ids, md)),
            ):
                ids = start_runs(runs, "scn_bench", args.runs, md)
                seen, calls = waiter(ids)
                results[name] = (lags(runs, seen, md), calls)
            print(f"\n{args.runs} runs of 0.5 s started at once, then waited for\n")
            print("| waiter | median lag ms | worst lag ms | calls | × polling lag |")
            print("|---|---:|---:|---:|---:|")
            base = statistics.median(results["polling"][0])
            for name, label in (
                ("polling", f"GetRun every {args.poll} s per run (baseline)"),
                ("stream", "one WatchRuns stream"),
            ):
                lag, calls = results[name]
                med = statistics.median(lag)
                print(
                    f"| {label} | {med * 1000:,.0f} | {max(lag) * 1000:,.0f} | {calls} | {med / base:.2f} |"
                )
            channel.close()


if __name__ == "__main__":
    main()
