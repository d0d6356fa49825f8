"""Benchmark: seeding through the SDK path, next to a plain Faker + SQLAlchemy script, same run.

    SEEDBED_TEST_PG_URL=postgresql://… .venv/bin/python -m tests.bench.bench_seed [--rows 20000]

Seedbed: a scenario generates the shop's customers from `tmpl_customer` and inserts them into
PostgreSQL through a connection (gRPC → Ray → sandbox → agent → COPY); timed from the run's start
to its end as the coordinator records them, and from RunScenario to completion. Baseline: a plain
script in this process making the same rows with Faker (the common way: one Faker, a call per
field) and inserting them with SQLAlchemy Core executemany. Both write into fresh tables of the
same database. Embedded defaults otherwise: SQLite store, local Ray, local Docker.
"""

from __future__ import annotations

import argparse
import datetime
import random
import secrets
import sys
import tempfile
import time
from pathlib import Path

import psycopg
import sqlalchemy as sa
from faker import Faker

from seedbed.api.v1 import connection_pb2, run_pb2, scenario_pb2
from seedbed.client import Client
from seedbed.coordinator import CoordinatorSettings, running_in_thread
from tests.bench._postgres import scratch_database

ROOT = Path(__file__).resolve().parents[2]
SHOP = ROOT / "examples" / "shop"
# The benchmark's coordinator makes this the admin's API key; its client sends it.
ADMIN_KEY = "bench-admin-key-" + secrets.token_hex(12)
CUSTOMERS_DDL = (SHOP / "schema.sql").read_text().split(";")[0]


def baseline(url: str, rows: int) -> tuple[float, float]:
    """Seconds to generate, and to insert, `rows` customers with Faker and SQLAlchemy Core."""
    fake = Faker("en_US")
    fake.seed_instance(7)
    rng = random.Random(7)
    start = time.perf_counter()
    data = [
        {
            "id": i,
            "name": fake.name(),
            "email": f"{i}.{fake.email()}",
            "city": fake.city(),
            "country": rng.choices(["US", "CA", "GB", "DE"], [60, 15, 15, 10])[0],
            "signup_date": fake.date_between_dates(datetime.date(2021, 1, 1), datetime.date(2024, 12, 31)),
            "vip": rng.random() < 0.1,
        }
        for i in range(1, rows + 1)
    ]
    generated = time.perf_counter() - start
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    table = sa.Table("customers", sa.MetaData(), autoload_with=engine)
    start = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(table.insert(), data)
    inserted = time.perf_counter() - start
    engine.dispose()
    return generated, inserted


def seedbed(client: Client, scenario: str, rows: int) -> tuple[float, float]:
    """(run duration as recorded, RunScenario → completion) in seconds."""
    start = time.perf_counter()
    run = client.wait(client.run(scenario, {"rows": str(rows)}).run_id)
    wall = time.perf_counter() - start
    if run.state != run_pb2.RUN_STATE_SUCCESS:
        raise SystemExit(f"run {run.id} ended {run.state}: {run.first_error}")
    recorded = (run.end_time.ToDatetime() - run.start_time.ToDatetime()).total_seconds()
    return recorded, wall


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


def measure(base_url: str, target_url: str, n: int) -> tuple[float, float, float, float, float, float]:
    """Seconds: Seedbed's generate run (in the run, wall) and generate+insert run (in the run, wall),
    and the baseline's generate and insert."""
    for url in (base_url, target_url):
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(CUSTOMERS_DDL)
    base_gen, base_ins = baseline(base_url, n)
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
        client.create_connection(
            connection_pb2.CreateConnectionRequest(
                connection_id="conn_bench", kind=connection_pb2.CONNECTION_KIND_POSTGRESQL, url=target_url
            )
        )
        allow = scenario_pb2.ScenarioSettings(overlap_policy=scenario_pb2.OVERLAP_POLICY_ALLOW_CONCURRENT)
        client.put_scenario("bench-gen", script=GENERATE_ONLY, settings=allow)
        client.put_scenario("bench-seed", script=GENERATE_AND_INSERT, settings=allow)
        seedbed(client, "bench-gen", 100)  # warm: image, worker process, imports
        gen_run, gen_wall = seedbed(client, "bench-gen", n)
        seed_run, seed_wall = seedbed(client, "bench-seed", n)
    with psycopg.connect(target_url) as conn:
        written = conn.execute("SELECT count(*) FROM customers").fetchone()
    assert written == (n,), written
    return gen_run, gen_wall, seed_run, seed_wall, base_gen, base_ins


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=20_000)
    args = parser.parse_args()
    with scratch_database() as base_url, scratch_database() as target_url:
        gen_run, gen_wall, seed_run, seed_wall, base_gen, base_ins = measure(base_url, target_url, args.rows)

    n = args.rows
    rows = [
        ("generate (rows/s)", n / gen_run, n / gen_wall, n / base_gen),
        ("generate + insert (rows/s)", n / seed_run, n / seed_wall, n / (base_gen + base_ins)),
        ("insert alone (rows/s)", n / max(seed_run - gen_run, 1e-9), None, n / base_ins),
    ]
    print(f"\nrows={n}; customers template (7 fields) into PostgreSQL; 2 cores")
    print(
        "seedbed: inside the run (start → end) and from RunScenario to completion; "
        "baseline: Faker + SQLAlchemy"
    )
    print(f"{'measure':<28} {'seedbed run':>12} {'seedbed wall':>13} {'baseline':>10} {'ratio':>7}")
    for name, ours, wall, base in rows:
        wall_text = f"{wall:>13.0f}" if wall is not None else f"{'—':>13}"
        print(f"{name:<28} {ours:>12.0f} {wall_text} {base:>10.0f} {ours / base:>7.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
