"""Benchmark: the REST and MCP faces against gRPC, on the same coordinator and the same runs.

    .venv/bin/python -m tests.bench.bench_faces [--runs 10] [--seconds 3]

A coordinator on embedded defaults (SQLite store, local Ray, local Docker sandboxes) serving all
three faces. Two tables, gRPC (the contract) as the baseline measured in the same run:

1. Run to first log line (median and worst of ``--runs``, ms): from the call that triggers a run of a
   trivial script to the moment its first stdout line reaches the client — gRPC RunScenario then
   StreamRunLogs(follow); REST POST …/run then the SSE log stream; MCP execute_scenario then
   get_scenario_run_logs polled every 50 ms (MCP has no push for a tool's later output). Runs go one
   at a time, each waited for.
2. Calls per second: ``--seconds`` of sequential GetRun (gRPC), GET /v1/runs/{id} (REST, one
   keep-alive connection) and get_scenario_run (MCP, streamable HTTP) on a finished run, each as
   the admin (the key checked on every call).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import docker
import httpx
import httpx2
from mcp import Client as McpClient
from mcp.client.streamable_http import streamable_http_client

from seedbed.api.v1 import run_pb2, scenario_pb2
from seedbed.client import Client, LogEvent
from seedbed.coordinator import CoordinatorSettings, running_in_thread
from seedbed.worker.images import ensure_image

TRIVIAL = "print('hello', flush=True)\n"


def grpc_first_line(client: Client, scenario_id: str) -> tuple[float, str]:
    start = time.perf_counter()
    run_id = client.run(scenario_id).run_id
    for event in client.stream_logs(run_id):
        if isinstance(event, LogEvent) and event.line.stream == run_pb2.LOG_STREAM_STDOUT:
            return time.perf_counter() - start, run_id
    raise AssertionError(f"run {run_id} ended without a stdout line")


def rest_first_line(http: httpx.Client, scenario_id: str) -> tuple[float, str]:
    start = time.perf_counter()
    run_id = http.post(f"/v1/scenarios/{scenario_id}/run", json={}).json()["fire"]["run_id"]
    with http.stream("GET", f"/v1/runs/{run_id}/logs", params={"follow": "true"}) as answer:
        for line in answer.iter_lines():
            if line.startswith("data: ") and '"LOG_STREAM_STDOUT"' in line:
                return time.perf_counter() - start, run_id
    raise AssertionError(f"run {run_id} ended without a stdout line")


async def mcp_first_line(mcp: McpClient, scenario_id: str) -> tuple[float, str]:
    start = time.perf_counter()
    fire = (await mcp.call_tool("execute_scenario", {"scenario_id": scenario_id})).structured_content or {}
    run_id = str(fire["run_id"])
    while True:
        page = (await mcp.call_tool("get_scenario_run_logs", {"run_id": run_id})).structured_content or {}
        if any(line["stream"] == "STDOUT" for line in page["lines"]):
            return time.perf_counter() - start, run_id
        if page["run_finished"]:
            raise AssertionError(f"run {run_id} ended without a stdout line")
        await asyncio.sleep(0.05)


def per_second(call: Callable[[], Any], seconds: float) -> float:
    call()  # warm: connections, the key's trust
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        call()
        count += 1
    return count / (time.perf_counter() - start)


async def per_second_async(call: Callable[[], Awaitable[Any]], seconds: float) -> float:
    await call()
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        await call()
        count += 1
    return count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    ensure_image(docker.from_env())  # built beforehand: not part of any face's figure
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        settings = CoordinatorSettings(
            listen="127.0.0.1:0",
            rest_listen="127.0.0.1:0",
            metrics_listen="",
            store_url=f"sqlite+aiosqlite:///{data / 'store.db'}",
            data_dir=data,
        )
        with running_in_thread(settings) as coordinator:
            key = (data / "admin-api-key").read_text().strip()
            with (
                Client(coordinator.address, api_key=key) as client,
                httpx.Client(
                    base_url=f"http://{coordinator.rest_address}",
                    headers={"Authorization": f"Bearer {key}"},
                    timeout=120,
                ) as http,
            ):
                scenario_id = client.put_scenario(
                    "scn_bench_faces",
                    script=TRIVIAL,
                    settings=scenario_pb2.ScenarioSettings(
                        overlap_policy=scenario_pb2.OVERLAP_POLICY_ALLOW_CONCURRENT
                    ),
                ).id
                client.wait(grpc_first_line(client, scenario_id)[1])  # warm: image, Ray workers
                latency: dict[str, list[float]] = {"gRPC": [], "REST": [], "MCP": []}
                rates: dict[str, float] = {}
                for _ in range(args.runs):
                    seconds, run_id = grpc_first_line(client, scenario_id)
                    latency["gRPC"].append(seconds)
                    client.wait(run_id)
                    seconds, run_id = rest_first_line(http, scenario_id)
                    latency["REST"].append(seconds)
                    client.wait(run_id)
                finished = run_id
                rates["gRPC"] = per_second(lambda: client.get_run(finished), args.seconds)
                rates["REST"] = per_second(
                    lambda: http.get(f"/v1/runs/{finished}").raise_for_status(), args.seconds
                )

                async def mcp_part() -> None:
                    url = f"http://{coordinator.rest_address}/mcp"
                    async with (
                        httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=120) as h,
                        McpClient(streamable_http_client(url, http_client=h)) as mcp,
                    ):
                        for _ in range(args.runs):
                            seconds, run_id = await mcp_first_line(mcp, scenario_id)
                            latency["MCP"].append(seconds)
                            await asyncio.to_thread(client.wait, run_id)
                        rates["MCP"] = await per_second_async(
                            lambda: mcp.call_tool("get_scenario_run", {"run_id": finished}), args.seconds
                        )

                asyncio.run(mcp_part())
    base_median = statistics.median(latency["gRPC"])
    print(f"\nRun to first log line, {args.runs} runs per face (ms)\n")
    print("| face | median | worst | × gRPC (median) |")
    print("|---|---:|---:|---:|")
    for face, values in latency.items():
        median = statistics.median(values)
        print(f"| {face} | {median * 1000:,.0f} | {max(values) * 1000:,.0f} | {median / base_median:.2f} |")
    print(f"\nSequential reads of a run, {args.seconds:g} s per face\n")
    print("| face | calls/s | × gRPC |")
    print("|---|---:|---:|")
    for face, rate in rates.items():
        print(f"| {face} | {rate:,.0f} | {rate / rates['gRPC']:.2f} |")
    print(
        json.dumps(
            {
                "latency_ms": {f: statistics.median(v) * 1000 for f, v in latency.items()},
                "calls_per_second": rates,
            }
        )
    )


if __name__ == "__main__":
    main()
