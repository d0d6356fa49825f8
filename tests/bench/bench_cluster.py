"""Benchmark: the compose cluster (deploy/compose/) with one Ray worker node, then two, in one run.

    .venv/bin/python -m tests.bench.bench_cluster [--burst 50] [--customers 1000000] [--orders 5000000]

Brings a cluster up with one worker node (images built when missing), measures, scales it to two
worker nodes (`seedbed deploy up --workers 2`), measures again, and takes it down:

- `--burst` trivial runs submitted at once: wall time until the last ends, runs per second;
- the bulk seed (examples/bulk/seed.py) of `--customers` + `--orders` rows into the cluster's
  PostgreSQL, 4 writers, 100,000-row shards: wall time, rows per second, and on how many Ray nodes
  its shards ran.

On one 2-core machine two worker nodes share the same two cores: the point is that work spreads
over the nodes, not that it speeds up.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from seedbed.api.v1 import run_pb2, scenario_pb2
from tests.cluster._compose import BULK, Cluster, count, prepare_targets, running_cluster, tail

TRIVIAL = "print('hello', flush=True)\n"
CONCURRENT = scenario_pb2.ScenarioSettings(overlap_policy=scenario_pb2.OVERLAP_POLICY_ALLOW_CONCURRENT)


def _burst(cluster: Cluster, runs: int) -> tuple[float, int]:
    with cluster.client() as client:
        client.put_scenario("tiny", script=TRIVIAL, settings=CONCURRENT)
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=16) as pool:
            fires = list(pool.map(lambda _: client.run("tiny"), range(runs)))
            ended = list(pool.map(lambda fire: client.wait(fire.run_id), fires))
        seconds = time.monotonic() - started
    failed = [r.id for r in ended if r.state != run_pb2.RUN_STATE_SUCCESS]
    assert not failed, f"runs did not succeed: {failed}"
    nodes = {a.node for r in ended for a in r.attempts}
    return seconds, len(nodes)


def _bulk(cluster: Cluster, customers: int, orders: int) -> tuple[float, int]:
    with cluster.store("warehouse") as conn:
        conn.execute("TRUNCATE orders, customers")
    with cluster.client() as client:
        client.put_scenario("bulk", script=(BULK / "seed.py").read_text())
        started = time.monotonic()
        fire = client.run(
            "bulk",
            {"connection": "conn_bench", "customers": str(customers), "orders": str(orders)},
        )
        run = client.wait(fire.run_id)
        seconds = time.monotonic() - started
        assert run.state == run_pb2.RUN_STATE_SUCCESS, run.first_error
        trace = client.get_run_trace(fire.run_id)
    assert count(cluster, "warehouse", "SELECT count(*) FROM orders") == orders
    shard_nodes = {
        span.attributes.get("seedbed.ray.node_id") for span in trace.spans if span.name.startswith("shard ")
    }
    return seconds, len(shard_nodes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--burst", type=int, default=50)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--orders", type=int, default=5_000_000)
    args = parser.parse_args()
    figures: dict[int, dict[str, tuple[float, int]]] = {}
    with (
        tempfile.TemporaryDirectory() as tmp,
        running_cluster(Path(tmp), "seedbedbench", workers=1) as cluster,
    ):
        prepare_targets(cluster)
        password = cluster.values["SEEDBED_STORE_PASSWORD"]
        made = cluster.cli(
            "connection", "create", "conn_bench", "--kind", "postgresql",
            "--url", f"postgresql://seedbed:{password}@store:5432/warehouse", "--writers", "4",
        )  # fmt: skip
        assert made.returncode == 0, tail(made)
        for nodes in (1, 2):
            if nodes == 2:
                up = cluster.deploy("up", "--workers", "2", "--wait", "300")
                assert up.returncode == 0, tail(up)
            cluster.wait_for_workers(nodes)
            print(f"[bench] {nodes} worker node(s): {args.burst} tiny runs", flush=True)
            burst = _burst(cluster, args.burst)
            print(f"[bench] {nodes} worker node(s): bulk {args.customers:,} + {args.orders:,}", flush=True)
            bulk = _bulk(cluster, args.customers, args.orders)
            figures[nodes] = {"burst": burst, "bulk": bulk}
    rows = args.customers + args.orders
    one, two = figures[1], figures[2]
    burst_1, burst_2 = one["burst"][0], two["burst"][0]
    bulk_1, bulk_2 = one["bulk"][0], two["bulk"][0]
    print()
    _row("compose cluster, same run", "1 worker node", "2 worker nodes", "ratio 2/1")
    _row(
        f"{args.burst} tiny runs at once: seconds",
        f"{burst_1:.1f}",
        f"{burst_2:.1f}",
        f"{burst_2 / burst_1:.2f}",
    )
    _row(
        "  runs per second",
        f"{args.burst / burst_1:.2f}",
        f"{args.burst / burst_2:.2f}",
        f"{burst_1 / burst_2:.2f}",
    )
    _row("  worker nodes their attempts ran on", str(one["burst"][1]), str(two["burst"][1]), "")
    _row(
        f"bulk {args.customers:,} + {args.orders:,}: seconds",
        f"{bulk_1:.1f}",
        f"{bulk_2:.1f}",
        f"{bulk_2 / bulk_1:.2f}",
    )
    _row("  rows per second", f"{rows / bulk_1:,.0f}", f"{rows / bulk_2:,.0f}", f"{bulk_1 / bulk_2:.2f}")
    _row("  Ray nodes its shards ran on", str(one["bulk"][1]), str(two["bulk"][1]), "")
    print("(one 2-core machine: two worker nodes share its cores; the point is that work spreads)")


def _row(label: str, one: str, two: str, ratio: str) -> None:
    print(f"{label:<44} {one:>15} {two:>15} {ratio:>10}")


if __name__ == "__main__":
    main()
