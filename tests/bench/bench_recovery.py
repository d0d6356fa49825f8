"""Benchmark: how long a seeding run takes to recover after its worker is killed, next to the same
run without a fault, measured in one run.

    SEEDBED_TEST_PG_URL=postgresql://… .venv/bin/python -m tests.bench.bench_recovery [--repeat 5]

The run is the fault tests' scenario (tests/faults/seeding.py: 3 rounds of 40 customers with a
pause, then orders, a file) on the embedded defaults (SQLite store, local Ray, local Docker) with a
real PostgreSQL target. With the fault, the Ray worker running the attempt is SIGKILLed right after
its first batch commits. Figures (medians):

- kill → the next attempt RUNNING (the coordinator notices, backs off 0.2 s, dispatches again);
- kill → the run SUCCESS (the replay skips the committed batch);
- the whole faulted run, next to the fault-free run (the baseline).
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

import docker
import ray

from seedbed.api.v1 import run_pb2
from seedbed.client import Client
from seedbed.coordinator import CoordinatorSettings, running_in_thread
from seedbed.worker.attempt import SANDBOX_RESOURCE
from tests.bench._postgres import scratch_database
from tests.faults.proxy import TcpProxy
from tests.faults.rest_target import RestTarget
from tests.faults.seeding import SeedingHarness

# The benchmark's coordinator makes this the admin's API key; its client sends it.
ADMIN_KEY = "bench-admin-key-" + secrets.token_hex(12)


def timed_run(h: SeedingHarness, *, kill: bool) -> tuple[float, float, float]:
    """(whole run, kill → next attempt running, kill → end) in seconds; zeros without a kill."""
    ns = h.new_namespace()
    started = time.perf_counter()
    fire = h.start(ns, pause="1")
    to_running = to_end = 0.0
    if kill:
        run_key = h.client.get_run(fire.run_id).run_key
        h.wait_for_ledger(run_key, f"{ns}.customers")
        h.kill_worker(fire.run_id)
        killed = time.perf_counter()
        while True:
            run = h.client.get_run(fire.run_id)
            if len(run.attempts) >= 2 and run.attempts[1].start_time.seconds:
                to_running = time.perf_counter() - killed
                break
            time.sleep(0.01)
    run = h.wait(fire.run_id)
    if run.state != run_pb2.RUN_STATE_SUCCESS:
        sys.exit(f"run {run.id} ended {run_pb2.RunState.Name(run.state)}: {run.first_error.message}")
    ended = time.perf_counter()
    if kill:
        to_end = ended - killed
    h.check_exactly_once(run, ns, customers=120)
    return ended - started, to_running, to_end


def measure(url: str, repeat: int) -> tuple[list[float], list[tuple[float, float, float]]]:
    """Fault-free run times, and (run, kill → running, kill → end) of the faulted runs."""
    ray.init(num_cpus=2, resources={SANDBOX_RESOURCE: 4.0}, include_dashboard=False, log_to_driver=False)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            settings = CoordinatorSettings(
                listen="127.0.0.1:0",
                rest_listen="",
                store_url=f"sqlite+aiosqlite:///{Path(tmp) / 'seedbed.db'}",
                data_dir=Path(tmp),
                janitor_interval_seconds=1,
                admin_api_key=ADMIN_KEY,
            )
            host_port = url.rpartition("@")[2].partition("/")[0]
            host, _, port = host_port.partition(":")
            with (
                running_in_thread(settings) as coordinator,
                Client(coordinator.address, api_key=ADMIN_KEY) as client,
                RestTarget() as api,
                TcpProxy(host, int(port or 5432)) as proxy,
            ):
                h = SeedingHarness(client=client, docker=docker.from_env(), pg_url=url, api=api, proxy=proxy)
                h.set_up()
                timed_run(h, kill=False)  # warm-up: image check, Ray workers
                clean = [timed_run(h, kill=False)[0] for _ in range(repeat)]
                faulted = [timed_run(h, kill=True) for _ in range(repeat)]
    finally:
        ray.shutdown()
    return clean, faulted


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with scratch_database() as url:
        clean, faulted = measure(url, args.repeat)
    baseline = statistics.median(clean)
    whole = statistics.median(f[0] for f in faulted)
    print(f"\n| seeding run, median of {args.repeat} | seconds | × fault-free run |")
    print("|---|---:|---:|")
    print(f"| fault-free run (baseline) | {baseline:.2f} | 1.00 |")
    print(f"| run with its worker killed after the first commit | {whole:.2f} | {whole / baseline:.2f} |")
    to_running = statistics.median(f[1] for f in faulted)
    to_end = statistics.median(f[2] for f in faulted)
    print(f"| kill → next attempt running | {to_running:.2f} | {to_running / baseline:.2f} |")
    print(f"| kill → run SUCCESS | {to_end:.2f} | {to_end / baseline:.2f} |")


if __name__ == "__main__":
    main()
