"""Benchmark: a dry run of the shop scenario next to its real run, same database, same hour.

    SEEDBED_TEST_PG_URL=postgresql://… .venv/bin/python -m tests.bench.bench_dryrun [--customers N --orders M]

The scenario is examples/shop/seed.py as it ships (its schema step, then customers and orders as
upserts), with the shop's templates and a PostgreSQL connection. First a dry run against the empty
schema (every write checked against the live tables, nothing written), then the real run, then a dry
run again (now every row exists: the upserts' keys are all looked up and found). Each is timed
inside the run (start → end as the coordinator records it) and from RunScenario to completion; the
ratio is dry run ÷ real run. A warm-up run (image, worker process, imports) is not counted.
Embedded defaults otherwise: SQLite store, local Ray, local Docker.
"""

from __future__ import annotations

import argparse
import secrets
import sys
import tempfile
import time
from pathlib import Path

import psycopg

from seedbed.api.v1 import connection_pb2, run_pb2, scenario_pb2
from seedbed.client import Client
from seedbed.coordinator import CoordinatorSettings, running_in_thread
from tests.bench._postgres import scratch_database

ROOT = Path(__file__).resolve().parents[2]
SHOP = ROOT / "examples" / "shop"
ADMIN_KEY = "bench-admin-key-" + secrets.token_hex(12)


def timed(client: Client, params: dict[str, str], *, dry_run: bool) -> tuple[float, float, run_pb2.Run]:
    """(seconds in the run, seconds from RunScenario to completion, the run)."""
    start = time.perf_counter()
    run = client.wait(client.run("shop", params, dry_run=dry_run).run_id)
    wall = time.perf_counter() - start
    recorded = (run.end_time.ToDatetime() - run.start_time.ToDatetime()).total_seconds()
    return recorded, wall, run


def measure(url: str, customers: int, orders: int) -> list[tuple[str, float, float, run_pb2.Run]]:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute((SHOP / "schema.sql").read_text())
    params = {"connection": "conn_shop", "customers": str(customers), "orders": str(orders)}
    with (
        tempfile.TemporaryDirectory() as tmp,
        running_in_thread(
            CoordinatorSettings(
                listen="127.0.0.1:0", rest_listen="", data_dir=Path(tmp), admin_api_key=ADMIN_KEY
            )
        ) as coordinator,
        Client(coordinator.address, api_key=ADMIN_KEY) as client,
    ):
        client.put_template((SHOP / "customer.yaml").read_text())
        client.put_template((SHOP / "order.yaml").read_text())
        client.upload_file("shop/schema.sql", (SHOP / "schema.sql").read_bytes(), overwrite=True)
        client.create_connection(
            connection_pb2.CreateConnectionRequest(
                connection_id="conn_shop", kind=connection_pb2.CONNECTION_KIND_POSTGRESQL, url=url
            )
        )
        queue = scenario_pb2.ScenarioSettings(overlap_policy=scenario_pb2.OVERLAP_POLICY_QUEUE_ALL)
        client.put_scenario("shop", script=(SHOP / "seed.py").read_text(), settings=queue)
        timed(client, {**params, "customers": "10", "orders": "10"}, dry_run=True)  # warm
        out = []
        for name, dry in (
            ("dry run (empty tables)", True),
            ("real run", False),
            ("dry run (rows exist)", True),
        ):
            recorded, wall, run = timed(client, params, dry_run=dry)
            out.append((name, recorded, wall, run))
    with psycopg.connect(url) as conn:
        written = conn.execute(
            "SELECT (SELECT count(*) FROM customers), (SELECT count(*) FROM orders)"
        ).fetchone()
    assert written == (customers, orders), written
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--orders", type=int, default=100_000)
    args = parser.parse_args()
    with scratch_database() as url:
        results = measure(url, args.customers, args.orders)
    real = next(r for r in results if r[0] == "real run")
    print(
        f"\nexamples/shop/seed.py: {args.customers:,} customers + {args.orders:,} orders "
        "into PostgreSQL; 2 cores"
    )
    print("seconds inside the run (start → end) and from RunScenario to completion; ratio: ÷ the real run")
    print(f"{'run':<28} {'state':>8} {'problems':>9} {'in run (s)':>11} {'wall (s)':>9} {'ratio':>7}")
    for name, recorded, wall, run in results:
        state = run_pb2.RunState.Name(run.state).removeprefix("RUN_STATE_")
        problems = run.dry_run_report.problem_count if run.dry_run else 0
        print(
            f"{name:<28} {state:>8} {problems:>9,} {recorded:>11.2f} {wall:>9.2f} {recorded / real[1]:>7.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
