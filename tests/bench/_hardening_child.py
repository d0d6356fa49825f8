"""One side of `bench_hardening`: measures whichever Seedbed tree is first on PYTHONPATH.

Run by path, never as `tests.bench…`: the parent runs it once per (tree, runtime) with that tree's
folders first on PYTHONPATH and the tree as working directory, so the code measured is that tree's
(coordinator, Ray workers, agent, sandbox image). It therefore uses only what the oldest tree it is
pointed at already had: `Client`, `running_in_thread`, `CoordinatorSettings`, `put_scenario`,
`put_template`, `create_connection`, `run`, `wait`, `stream_logs` and `ensure_image`.

    python tests/bench/_hardening_child.py --runtime runc --out result.json --pg-url postgresql://…

Writes one JSON object to `--out` (stdout and stderr are left to the logs of the code measured).

The runtime: `--runtime` is the kind measured (runc or runsc), `--engine-runtime` the name the engine
has it under (default: the same). A tree whose `CoordinatorSettings` has `sandbox_runtime` gets it (and the
`SEEDBED_SANDBOX_RUNTIME` variable its workers read); an older tree, which picks gVisor whenever
the engine has it, is pinned by the parent's harness-only `sitecustomize` shim through
`SEEDBED_BENCH_PIN_RUNTIME` (see `bench_hardening`). Either way a run reads the kernel version its
script sees (gVisor reports its own, 4.4.0) and the child stops if it is not the runtime asked for.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import docker
import ray

import seedbed.worker.sandbox
from seedbed.api.v1 import connection_pb2, run_pb2, scenario_pb2
from seedbed.client import Client, LogEvent, RunEnded
from seedbed.coordinator import CoordinatorSettings, running_in_thread
from seedbed.worker.images import ensure_image

ADMIN_KEY = "bench-admin-key-" + secrets.token_hex(12)
TRIVIAL = "print('hello', flush=True)\n"
KERNEL = "print(open('/proc/version').read().split()[2], flush=True)\n"
GVISOR_KERNEL = "4.4.0"
GENERATE_ONLY = """
from seedbed.sdk import Seedbed
dm = Seedbed()
rows = dm.generate("tmpl_customer", count=int(dm.params["rows"]))
"""
GENERATE_AND_INSERT = """
from seedbed.sdk import Seedbed
dm = Seedbed()
rows = dm.generate("tmpl_customer", count=int(dm.params["rows"]))
dm.connection("conn_bench").insert("customers", rows)
"""


def first_line(client: Client, scenario: str) -> tuple[float, float, str]:
    """Seconds from RunScenario to the first stdout line and to the end; that line's text."""
    start = time.perf_counter()
    run_id = client.run(scenario).run_id
    first, text, output = 0.0, "", []
    for event in client.stream_logs(run_id):
        if isinstance(event, LogEvent):
            output.append(event.line.text)
            if event.line.stream == run_pb2.LOG_STREAM_STDOUT and not first:
                first, text = time.perf_counter() - start, event.line.text
        elif isinstance(event, RunEnded) and event.run.state != run_pb2.RUN_STATE_SUCCESS:
            tail = "\n".join(output[-20:])
            raise SystemExit(f"run {run_id} ended {event.run.state}: {event.run.first_error}\n{tail}")
    return first, time.perf_counter() - start, text


def burst(client: Client, scenario: str, n: int) -> float:
    """Seconds from submitting `n` runs at once to the last one's end."""
    start = time.perf_counter()
    run_ids = [client.run(scenario).run_id for _ in range(n)]
    with ThreadPoolExecutor(max_workers=16) as pool:
        runs = list(pool.map(client.wait, run_ids))
    elapsed = time.perf_counter() - start
    bad = [r.id for r in runs if r.state != run_pb2.RUN_STATE_SUCCESS]
    if bad:
        raise SystemExit(f"{len(bad)} runs of the burst did not succeed: {bad[:5]}")
    return elapsed


def seed(client: Client, scenario: str, rows: int) -> tuple[float, float]:
    """(run start → end as the coordinator records them, RunScenario → completion) in seconds."""
    start = time.perf_counter()
    run = client.wait(client.run(scenario, {"rows": str(rows)}).run_id)
    wall = time.perf_counter() - start
    if run.state != run_pb2.RUN_STATE_SUCCESS:
        raise SystemExit(f"run {run.id} ended {run.state}: {run.first_error}")
    return (run.end_time.ToDatetime() - run.start_time.ToDatetime()).total_seconds(), wall


def _sandbox_module_file() -> str:
    import seedbed.worker.sandbox as module

    return str(module.__file__)


def pin_runtime(runtime: str) -> tuple[dict[str, Any], str]:
    """Settings fields and how the runtime is pinned: the tree's own setting, else the shim."""
    if "sandbox_runtime" in CoordinatorSettings.model_fields:
        os.environ["SEEDBED_SANDBOX_RUNTIME"] = runtime
        return {"sandbox_runtime": runtime}, "setting"
    # Read by the shim in every process started from here on, Ray's workers included.
    os.environ["SEEDBED_BENCH_PIN_RUNTIME"] = runtime
    return {}, "shim"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runtime", choices=["runc", "runsc"], required=True, help="the kind measured")
    parser.add_argument("--engine-runtime", default="", help="the engine's name for it; default: --runtime")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--pg-url", required=True, help="database with an empty customers table")
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--burst", type=int, default=50)
    parser.add_argument("--slots", type=int, default=4)
    parser.add_argument("--rows", type=int, default=20_000)
    args = parser.parse_args()

    engine_runtime = args.engine_runtime or args.runtime
    fields, pinned_by = pin_runtime(engine_runtime)
    image = ensure_image(docker.from_env())  # built outside the timings (first use of a tree)
    shop = Path("examples") / "shop"
    allow = scenario_pb2.ScenarioSettings(overlap_policy=scenario_pb2.OVERLAP_POLICY_ALLOW_CONCURRENT)
    with (
        tempfile.TemporaryDirectory() as tmp,
        running_in_thread(
            CoordinatorSettings(
                listen="127.0.0.1:0",
                rest_listen="",
                data_dir=Path(tmp),
                sandbox_slots=args.slots,
                admin_api_key=ADMIN_KEY,
                **fields,
            )
        ) as coordinator,
        Client(coordinator.address, api_key=ADMIN_KEY) as client,
    ):
        worker_file = ray.get(ray.remote(num_cpus=0)(_sandbox_module_file).remote())
        for name, script in (
            ("bench-trivial", TRIVIAL),
            ("bench-kernel", KERNEL),
            ("bench-gen", GENERATE_ONLY),
            ("bench-seed", GENERATE_AND_INSERT),
        ):
            client.put_scenario(name, script=script, settings=allow)
        client.put_template((shop / "customer.yaml").read_text())
        client.create_connection(
            connection_pb2.CreateConnectionRequest(
                connection_id="conn_bench", kind=connection_pb2.CONNECTION_KIND_POSTGRESQL, url=args.pg_url
            )
        )
        kernel = first_line(client, "bench-kernel")[2].strip()  # also warms the worker and the image
        expected = GVISOR_KERNEL if args.runtime == "runsc" else platform.release()
        if kernel != expected:
            raise SystemExit(
                f"asked for {engine_runtime} (pinned by {pinned_by}) but the script saw kernel {kernel!r}, "
                f"not {expected!r}: the runtime pin did not reach the sandbox"
            )
        lines = [first_line(client, "bench-trivial") for _ in range(args.repeat)]
        burst_seconds = burst(client, "bench-trivial", args.burst)
        seed(client, "bench-gen", 100)  # warm the template and the SDK's generate path
        seed_run, seed_wall = seed(client, "bench-seed", args.rows)

    result = {
        "sandbox_file": seedbed.worker.sandbox.__file__,
        "worker_sandbox_file": worker_file,
        "image": image,
        "runtime": args.runtime,
        "engine_runtime": engine_runtime,
        "pinned_by": pinned_by,
        "kernel": kernel,
        "first_line_s": statistics.median(v[0] for v in lines),
        "completion_s": statistics.median(v[1] for v in lines),
        "burst": args.burst,
        "burst_s": burst_seconds,
        "rows": args.rows,
        "seed_run_s": seed_run,
        "seed_wall_s": seed_wall,
    }
    args.out.write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
