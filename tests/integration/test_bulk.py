"""Bulk seeding end to end: row sets that stay on the worker, sharded COPY as Ray tasks, references
recomputed from indices, and the bad inputs the bulk path must survive — through gRPC → Ray →
Docker → agent → a real PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from seedbed.api.v1 import connection_pb2, run_pb2, scenario_pb2
from seedbed.client import Client, LogEvent
from seedbed.coordinator import running_in_thread
from seedbed.worker import templates
from tests.conftest import ROOT, eventually, scratch_pg, settings_for

pytestmark = pytest.mark.integration

EXAMPLE = ROOT / "examples" / "bulk"
SEED = """
from seedbed.sdk import Seedbed, log, params
dm = Seedbed()
db = dm.connection("conn_bulk")
with dm.step("customers"):
    customers = dm.generate("tmpl_bulk_customer", count=int(params["customers"]))
    assert len(customers) == int(params["customers"]) and not customers.read
    db.insert("customers", customers)
with dm.step("orders"):
    orders = dm.generate("tmpl_bulk_order", count=int(params["orders"]))
    db.insert("orders", orders)
log.info("seeded", read=customers.read or orders.read)
"""


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    """One store: the bulk path lives on the workers and in the target (the store's own behaviour,
    write batches included, is tested against SQLite and PostgreSQL elsewhere)."""
    return f"sqlite+aiosqlite:///{tmp_path / 'seedbed.db'}"


@pytest.fixture
def bulk_pg() -> Iterator[str]:
    with scratch_pg((EXAMPLE / "schema.sql").read_text(), "seedbed_bulk") as url:
        yield url


def _connect(client: Client, url: str, **bulk: int) -> None:
    client.put_template((EXAMPLE / "customer.yaml").read_text())
    client.put_template((EXAMPLE / "order.yaml").read_text())
    client.create_connection(
        connection_pb2.CreateConnectionRequest(
            connection_id="conn_bulk",
            kind=connection_pb2.CONNECTION_KIND_POSTGRESQL,
            url=url,
            bulk=connection_pb2.BulkOptions(**bulk),
        )
    )


def _start(client: Client, scenario: str, script: str, params: dict[str, str]) -> str:
    client.put_scenario(
        scenario,
        script=script,
        settings=scenario_pb2.ScenarioSettings(overlap_policy=scenario_pb2.OVERLAP_POLICY_ALLOW_CONCURRENT),
    )
    return client.run(scenario, params).run_id


def _logs(client: Client, run_id: str) -> str:
    return "\n".join(e.line.text for e in client.stream_logs(run_id, follow=False) if isinstance(e, LogEvent))


def _counts(url: str) -> tuple[int, int, int]:
    with psycopg.connect(url) as conn:
        customers = conn.execute("SELECT count(*) FROM customers").fetchone()
        orders = conn.execute("SELECT count(*) FROM orders").fetchone()
        orphans = conn.execute(
            "SELECT count(*) FROM orders o LEFT JOIN customers c ON c.id = o.customer_id WHERE c.id IS NULL"
        ).fetchone()
    assert customers and orders and orphans
    return customers[0], orders[0], orphans[0]


def test_sharded_seed_writes_every_row_once_with_valid_keys(
    coordinator: tuple[Any, Client], bulk_pg: str
) -> None:
    _, client = coordinator
    _connect(client, bulk_pg, writers=2, shard_rows=10_000)
    run = client.wait(_start(client, "bulk", SEED, {"customers": "30000", "orders": "45000"}))
    logs = _logs(client, run.id)
    assert run.state == run_pb2.RUN_STATE_SUCCESS, (run.first_error, logs)
    assert _counts(bulk_pg) == (30_000, 45_000, 0)
    # The rows never crossed into the sandbox, and the run tells how they were written.
    assert "seeded read=false" in logs
    assert "insert customers: 30,000 rows in" in logs and "3 shards, up to 2 at once" in logs
    assert "insert orders: 45,000 rows in" in logs and "5 shards" in logs
    with psycopg.connect(bulk_pg) as conn:
        distinct = conn.execute("SELECT count(DISTINCT customer_id) FROM orders").fetchone()
        assert distinct and distinct[0] > 10_000
        ledger = conn.execute("SELECT count(*), sum(row_count) FROM seedbed_ledger").fetchone()
        assert ledger == (8, 75_000)  # one entry per 10,000-row batch
    steps = {s.name: s for s in run.steps}
    assert steps["customers"].rows_written == 30_000 and steps["orders"].rows_written == 45_000
    batches = client.write_batches(run.id)
    assert sum(b.rows for b in batches) == 75_000 and len(batches) == 8
    # The same run's rows can be removed again, shard by shard.
    summary = client.purge_run(run.id)
    assert sum(t.rows_deleted for t in summary.targets) == 75_000 and not summary.failures
    assert _counts(bulk_pg) == (0, 0, 0)


def test_rows_read_into_the_script_equal_the_rows_written(
    coordinator: tuple[Any, Client], bulk_pg: str
) -> None:
    """A row set read in the sandbox is the same rows a bulk insert writes; pick_from over a column
    and inserting a generator work as DataMaker's do."""
    _, client = coordinator
    _connect(client, bulk_pg, writers=2, shard_rows=10_000)
    script = """
import json
from seedbed.sdk import Seedbed, log
dm = Seedbed()
db = dm.connection("conn_bulk")
customers = dm.generate("tmpl_bulk_customer", count=25000)
db.insert("customers", customers)
again = dm.template("tmpl_bulk_customer").rows(25000, seed=None)
log.info("ids", n=len(set(c["id"] for c in customers)))
sample = customers[12345]
log.info("sample", row=json.dumps(sample))
orders = dm.generate("tmpl_bulk_order", count=3000,
                     overrides={"customer_id": dm.pick_from(customers.column("id"))})
def more():
    for row in orders.batches(700):
        for r in row:
            yield r
n = db.insert("orders", more())
log.info("streamed", n=n)
"""
    run = client.wait(_start(client, "read", script, {}))
    logs = _logs(client, run.id)
    assert run.state == run_pb2.RUN_STATE_SUCCESS, (run.first_error, logs)
    assert "ids n=25000" in logs and "streamed n=3000" in logs
    sample = logs.split("sample row=", 1)[1].splitlines()[0]
    with psycopg.connect(bulk_pg) as conn:
        row_id = sample.split('\\"id\\": \\"', 1)[1].split('\\"', 1)[0]
        found = conn.execute("SELECT name, country FROM customers WHERE id = %s", [row_id]).fetchone()
        assert found is not None and found[0] in sample and found[1] in sample
    assert _counts(bulk_pg) == (25_000, 3_000, 0)


def test_a_shard_that_hits_a_constraint_names_it_and_leaves_committed_shards_purgeable(
    coordinator: tuple[Any, Client], bulk_pg: str
) -> None:
    _, client = coordinator
    _connect(client, bulk_pg, writers=1, shard_rows=10_000)
    # The customer the row set has at row 25,000 (shard 3, batch 2) is there already.
    spec = templates.parse_template((EXAMPLE / "customer.yaml").read_text())
    taken = templates.Generator(spec, seed=templates.derive_seed("", 0, 0, 5)).columns(1, start=25_000)
    with psycopg.connect(bulk_pg, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO customers (id, name, email, country, created_at) VALUES (%s, 'x', 'x', 'US', now())",
            [taken["id"][0]],
        )
    script = """
from seedbed.sdk import Seedbed
dm = Seedbed()
dm.connection("conn_bulk").insert("customers", dm.generate("tmpl_bulk_customer", count=40000, seed=5))
"""
    run = client.wait(_start(client, "constraint", script, {}))
    assert run.state == run_pb2.RUN_STATE_FAILED
    message = run.first_error.message
    assert run.first_error.type == "TargetError"
    assert "shard 3 of 4 (rows 20,000-29,999 of the row set)" in message, message
    assert "batch 2" in message and "customers_pkey" in message and "row 25000" in message, message
    assert "20,000 rows of other shards were written before it stopped" in message, message
    # The shards before it are in the ledger: purging the run removes them, and only them.
    assert _counts(bulk_pg)[0] == 20_001
    summary = client.purge_run(run.id)
    assert sum(t.rows_deleted for t in summary.targets) == 20_000 and not summary.failures
    assert _counts(bulk_pg)[0] == 1


def test_row_set_limits_and_missing_references(
    ray_session: None, store_url: str, tmp_path: Path, bulk_pg: str
) -> None:
    settings = settings_for(store_url, tmp_path, max_rowset_rows=50_000, max_generate_rows=1_000)
    with running_in_thread(settings) as coord, Client(coord.address) as client:
        _connect(client, bulk_pg)
        cases = {
            "over": ('dm.generate("tmpl_bulk_customer", count=50001)', "SEEDBED_MAX_ROWSET_ROWS"),
            "read": ('list(dm.generate("tmpl_bulk_customer", count=5000))', "SEEDBED_MAX_GENERATE_ROWS"),
            "noref": ('dm.generate("tmpl_bulk_order", count=10)', "tmpl_bulk_customer"),
            "writers": (
                'dm.connection("conn_bulk").insert("customers", '
                'dm.generate("tmpl_bulk_customer", count=5), writers=0)',
                "writers must be from 1 to 64",
            ),
        }
        for name, (line, expected) in cases.items():
            script = f"from seedbed.sdk import Seedbed\ndm = Seedbed()\n{line}\n"
            run = client.wait(_start(client, f"limit-{name}", script, {}))
            assert run.state == run_pb2.RUN_STATE_FAILED, name
            assert expected in run.first_error.message, (name, run.first_error.message)
            assert run.first_error.reason == run_pb2.FAILURE_REASON_SCRIPT_ERROR


def test_abort_during_a_sharded_insert_stops_every_shard(
    coordinator: tuple[Any, Client], bulk_pg: str
) -> None:
    _, client = coordinator
    _connect(client, bulk_pg, writers=2, shard_rows=10_000)
    run_id = _start(client, "abort", SEED, {"customers": "400000", "orders": "10"})

    def writing() -> bool:
        return _counts(bulk_pg)[0] > 0

    eventually(writing, timeout=120)
    client.abort(run_id)
    run = client.wait(run_id)
    assert run.state == run_pb2.RUN_STATE_ABORTED
    settled = _counts(bulk_pg)[0]
    time.sleep(3)
    assert _counts(bulk_pg)[0] == settled < 400_000
    with psycopg.connect(bulk_pg) as conn:
        active = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND query ILIKE 'COPY%%' AND state = 'active'"
        ).fetchone()
    assert active == (0,)


def test_a_shard_whose_worker_is_killed_is_written_once(
    coordinator: tuple[Any, Client], bulk_pg: str
) -> None:
    _, client = coordinator
    _connect(client, bulk_pg, writers=2, shard_rows=20_000)
    run_id = _start(client, "kill", SEED, {"customers": "200000", "orders": "20000"})

    def shard_pids() -> list[int]:
        out = subprocess.run(["pgrep", "-f", "ray::seedbed-shard-"], capture_output=True, text=True).stdout
        return [int(p) for p in out.split()]

    def writing_with_a_shard() -> list[int]:
        return shard_pids() if _counts(bulk_pg)[0] > 0 else []

    pids = eventually(writing_with_a_shard, timeout=120, interval=0.1)
    os.kill(pids[0], signal.SIGKILL)
    run = client.wait(run_id)
    assert run.state == run_pb2.RUN_STATE_SUCCESS, (run.first_error, _logs(client, run_id))
    assert _counts(bulk_pg) == (200_000, 20_000, 0)
    with psycopg.connect(bulk_pg) as conn:
        ledger = conn.execute(
            "SELECT count(*), count(DISTINCT (call_no, batch_no)) FROM seedbed_ledger"
        ).fetchone()
    assert ledger == (22, 22)


def test_the_bulk_example_through_the_cli(coordinator: tuple[Any, Client], bulk_pg: str) -> None:
    """examples/bulk as its docstring says to run it, at a reduced count, with every key valid."""
    from tests.integration.test_cli import seedbed

    coord, _ = coordinator
    address = ["--address", coord.address]

    pushed = seedbed(
        *address, "template", "create", str(EXAMPLE / "customer.yaml"), str(EXAMPLE / "order.yaml")
    )
    assert pushed.returncode == 0, pushed.stderr
    created = seedbed(
        *address,
        "connection",
        "create",
        "conn_warehouse",
        "--kind",
        "postgresql",
        "--url",
        bulk_pg,
        "--writers",
        "2",
        "--shard-rows",
        "20000",
    )
    assert created.returncode == 0, created.stderr
    run = seedbed(
        *address, "run", "submit", str(EXAMPLE / "seed.py"), "-p", "customers=40000", "-p", "orders=120000"
    )
    assert run.returncode == 0, run.stderr
    assert "seeded 40,000 customers and 120,000 orders" in run.stdout
    assert "insert orders: 120,000 rows in" in run.stderr
    assert _counts(bulk_pg) == (40_000, 120_000, 0)


KEYS_AFTER = """
from seedbed.sdk import Seedbed
dm = Seedbed()
db = dm.connection("conn_bulk")
db.execute("ALTER TABLE orders DROP CONSTRAINT orders_customer_id_fkey")
db.execute("ALTER TABLE orders DROP CONSTRAINT orders_pkey")
db.execute("ALTER TABLE customers DROP CONSTRAINT customers_pkey")
db.insert("customers", dm.generate("tmpl_bulk_customer", count=20000), key="id")
db.insert("orders", dm.generate("tmpl_bulk_order", count=30000), key=["id"])
db.execute("ALTER TABLE customers ADD PRIMARY KEY (id)")
db.execute("ALTER TABLE orders ADD PRIMARY KEY (id), ADD FOREIGN KEY (customer_id) REFERENCES customers (id)")
"""


def test_keys_added_after_the_load_leave_the_run_purgeable(
    coordinator: tuple[Any, Client], bulk_pg: str
) -> None:
    """The fast way to load (keys after): `key=` names the rows' identity while the table has no
    primary key, so the run is still purgeable."""
    _, client = coordinator
    _connect(client, bulk_pg, writers=2, shard_rows=10_000)
    run = client.wait(_start(client, "keys-after", KEYS_AFTER, {}))
    assert run.state == run_pb2.RUN_STATE_SUCCESS, (run.first_error, _logs(client, run.id))
    assert _counts(bulk_pg) == (20_000, 30_000, 0)
    summary = client.purge_run(run.id)
    assert sum(t.rows_deleted for t in summary.targets) == 50_000, summary
    assert _counts(bulk_pg) == (0, 0, 0)
