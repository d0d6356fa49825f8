"""Benchmark: Seedbed's overhead over a bare `docker run` of the same image, measured in one run.

    .venv/bin/python -m tests.bench.bench_runs [--repeat 10] [--burst 50] [--slots 4]

Figures (medians): RunScenario → first log line, and → completion, for a trivial script, next to
`docker run` of the same image (process start → first stdout line, → exit). Then throughput:
`--burst` trivial runs submitted at once, completed runs per second, next to the same number of
bare `docker run`s with the same concurrency. Embedded defaults: SQLite store, local Ray, local
Docker.

A second table sets the same Seedbed figures with tracing on (the default: every run a trace, kept in
the store) against tracing off (SEEDBED_TRACING=false), measured in the same run, on the same Ray.
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import docker

from seedbed.api.v1 import run_pb2, scenario_pb2
from seedbed.client import Client, LogEvent, RunEnded
from seedbed.coordinator import CoordinatorSettings, running_in_thread
from seedbed.worker.images import ensure_image

# The benchmark's coordinator makes this the admin's API key; its client sends it.
ADMIN_KEY = "bench-admin-key-" + secrets.token_hex(12)

TRIVIAL = "print('hello', flush=True)\n"


# The sandbox's hardening as `docker run` flags: separates the cost of the hardening itself from
# Seedbed's own (dispatch, channel, store, streaming).
HARDENED = [
    "--read-only",
    "--tmpfs",
    "/tmp:rw,nosuid,nodev,size=256m",
    "--cap-drop",
    "ALL",
    "--security-opt",
    "no-new-privileges",
    "--pids-limit",
    "256",
    "--memory",
    "512m",
    "--memory-swap",
    "512m",
    "--init",
    "--user",
    "10001:10001",
    "--ulimit",
    "nofile=1024:1024",
]


def bare_docker(image: str, hardened: bool = False) -> tuple[float, float]:
    """Seconds to the first stdout line and to exit of `docker run --rm` with the same script."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        [
            "docker",
            "run",
            "--rm",
            "--network",
            "none",
            *(HARDENED if hardened else []),
            "--entrypoint",
            "/opt/venv/bin/python",
            image,
            "-c",
            TRIVIAL,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    proc.stdout.readline()
    first = time.perf_counter() - start
    proc.wait()
    if proc.returncode != 0:
        raise SystemExit(f"docker run failed with exit code {proc.returncode}")
    return first, time.perf_counter() - start


def seedbed_run(client: Client, scenario: str) -> tuple[float, float]:
    start = time.perf_counter()
    run_id = client.run(scenario).run_id
    first = 0.0
    for event in client.stream_logs(run_id):
        if isinstance(event, LogEvent) and event.line.stream == run_pb2.LOG_STREAM_STDOUT and not first:
            first = time.perf_counter() - start
        elif isinstance(event, RunEnded) and event.run.state != run_pb2.RUN_STATE_SUCCESS:
            raise SystemExit(f"run {run_id} ended {event.run.state}: {event.run.first_error}")
    return first, time.perf_counter() - start


def burst_seedbed(client: Client, scenario: str, n: int) -> float:
    start = time.perf_counter()
    run_ids = [client.run(scenario).run_id for _ in range(n)]
    with ThreadPoolExecutor(max_workers=16) as pool:
        runs = list(pool.map(client.wait, run_ids))
    elapsed = time.perf_counter() - start
    bad = [r.id for r in runs if r.state != run_pb2.RUN_STATE_SUCCESS]
    if bad:
        raise SystemExit(f"{len(bad)} runs did not succeed: {bad[:5]}")
    return n / elapsed


def burst_docker(image: str, n: int, slots: int, hardened: bool = False) -> float:
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=slots) as pool:
        list(pool.map(lambda _: bare_docker(image, hardened), range(n)))
    return n / (time.perf_counter() - start)


def seedbed_figures(args: argparse.Namespace, tracing: bool) -> tuple[list[tuple[float, float]], float]:
    """Seedbed's latencies (first line, completion) and burst rate, with tracing on or off."""
    with (
        tempfile.TemporaryDirectory() as tmp,
        running_in_thread(
            CoordinatorSettings(
                listen="127.0.0.1:0",
                rest_listen="",
                data_dir=Path(tmp),
                sandbox_slots=args.slots,
                admin_api_key=ADMIN_KEY,
                tracing=tracing,
                metrics_listen="127.0.0.1:0",
            )
        ) as coordinator,
        Client(coordinator.address, api_key=ADMIN_KEY) as client,
    ):
        client.put_scenario(
            "bench-trivial",
            script=TRIVIAL,
            settings=scenario_pb2.ScenarioSettings(
                overlap_policy=scenario_pb2.OVERLAP_POLICY_ALLOW_CONCURRENT
            ),
        )
        ours = [seedbed_run(client, "bench-trivial") for _ in range(args.repeat + 1)][1:]
        return ours, burst_seedbed(client, "bench-trivial", args.burst)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--burst", type=int, default=50)
    parser.add_argument("--slots", type=int, default=4, help="sandboxes at once (both sides)")
    args = parser.parse_args()

    image = ensure_image(docker.from_env())
    bare = [bare_docker(image) for _ in range(args.repeat + 1)][1:]  # first one warms the cache
    hard = [bare_docker(image, hardened=True) for _ in range(args.repeat)]
    untraced, untraced_rate = seedbed_figures(args, tracing=False)
    ours, ours_rate = seedbed_figures(args, tracing=True)
    bare_rate = burst_docker(image, args.burst, args.slots)
    hard_rate = burst_docker(image, args.burst, args.slots, hardened=True)

    def med(values: list[tuple[float, float]], i: int) -> float:
        return statistics.median(v[i] for v in values)

    rows = [
        ("to first log line (s, median)", med(ours, 0), med(bare, 0), med(hard, 0)),
        ("to completion (s, median)", med(ours, 1), med(bare, 1), med(hard, 1)),
        (f"{args.burst} runs at once (runs/s)", ours_rate, bare_rate, hard_rate),
    ]
    print(f"\nrepeat={args.repeat} burst={args.burst} slots={args.slots} image={image}")
    print("baseline: `docker run --rm` of the same image and script; 'hardened' adds the sandbox's flags")
    header = f"{'measure':<32} {'seedbed':>9} {'docker run':>11} {'ratio':>6} {'hardened':>9} {'ratio':>6}"
    print(header)
    for name, ours_v, bare_v, hard_v in rows:
        ratios = f"{ours_v / bare_v:>6.2f} {hard_v:>9.3f} {ours_v / hard_v:>6.2f}"
        print(f"{name:<32} {ours_v:>9.3f} {bare_v:>11.3f} {ratios}")

    print("\ntracing on (every run a trace, kept in the store) vs off (SEEDBED_TRACING=false)")
    print(f"{'measure':<32} {'on':>9} {'off':>9} {'cost':>6}")
    traced = [
        ("to first log line (s, median)", med(ours, 0), med(untraced, 0), False),
        ("to completion (s, median)", med(ours, 1), med(untraced, 1), False),
        (f"{args.burst} runs at once (runs/s)", ours_rate, untraced_rate, True),
    ]
    for name, on, off, rate in traced:
        # The cost as a ratio ≥ 1 when tracing is slower: time on/off, or rate off/on.
        cost = off / on if rate else on / off
        print(f"{name:<32} {on:>9.3f} {off:>9.3f} {cost:>6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
