"""A seeding run to break: the scenario, the real components around it, and the faults.

`SeedingHarness` sets up a real coordinator's catalog (the shop templates; connections to a
PostgreSQL database, directly and through a `TcpProxy`; a `RestTarget`; a file target) and the
scenario `FAULT_SCRIPT`, which seeds customers in rounds with a pause between them (where faults
land), then orders that reference them, then 20 orders to the REST target and all orders to a
file. Every run writes into its own PostgreSQL schema (`ns`), so many runs share one database.

`check_exactly_once` is the verdict of every fault test: every expected row present exactly once
in every target, the ledger consistent with the rows, no container left.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import psycopg
import psycopg.errors

from seedbed.api.v1 import connection_pb2, run_pb2, scenario_pb2
from seedbed.client import Client, LogEvent
from seedbed.worker.settings import worker_settings
from seedbed.worker.sinks import connection_folder
from tests.conftest import ROOT, eventually
from tests.faults.proxy import TcpProxy
from tests.faults.rest_target import RestTarget

SCENARIO = "faults"
FAULT_SCRIPT = """\
import random
import time
from seedbed.sdk import Seedbed

dm = Seedbed()
p = dm.params
ns = p["ns"]
db = dm.connection(p.get("conn", "conn_pg"))
rounds, size, pause = int(p.get("rounds", "3")), int(p.get("size", "40")), float(p.get("pause", "0.4"))
with dm.step("schema"):
    db.execute(f"CREATE SCHEMA IF NOT EXISTS {ns}")
    db.execute(
        f"CREATE TABLE IF NOT EXISTS {ns}.customers (id integer, name text, email text, city text, "
        "country text, signup_date date, vip boolean)"
    )
    db.execute(
        f"CREATE TABLE IF NOT EXISTS {ns}.orders (id integer, customer_id integer, amount numeric(10, 2), "
        "status text, ordered_at timestamp)"
    )
customers = dm.generate("tmpl_customer", count=rounds * size)
if p.get("nondeterministic"):
    # Unseeded randomness: a replay writes different names.
    customers = [dict(c, name=f"{c['name']} {random.random()}") for c in customers]
with dm.step("customers"):
    for r in range(rounds):
        db.insert(f"{ns}.customers", customers[r * size:(r + 1) * size])
        print(f"round {r + 1}/{rounds} written", flush=True)
        time.sleep(pause)
with dm.step("orders"):
    ids = [c["id"] for c in customers]
    orders = dm.generate("tmpl_order", count=2 * len(customers), overrides={"customer_id": dm.pick_from(ids)})
    db.insert(f"{ns}.orders", orders)
if p.get("rest_path"):
    dm.connection("conn_api").post(p["rest_path"], orders[:20], mode="batch")
dm.connection("conn_files").write(f"{ns}-orders.jsonl", orders, format="jsonl")
print("seeded", len(customers), "customers and", len(orders), "orders")
"""


@dataclass
class SeedingHarness:
    client: Client
    docker: docker.DockerClient
    pg_url: str  # a plain postgresql:// URL of the target database
    api: RestTarget
    proxy: TcpProxy
    runs: int = field(default=0)

    def set_up(self, *, timeout_seconds: int = 120) -> None:
        for path in sorted((ROOT / "examples" / "shop").glob("*.yaml")):
            self.client.put_template(path.read_text())
        pg = connection_pb2.CONNECTION_KIND_POSTGRESQL
        self.client.create_connection(
            connection_pb2.CreateConnectionRequest(connection_id="conn_pg", kind=pg, url=self.pg_url)
        )
        self.client.create_connection(
            connection_pb2.CreateConnectionRequest(
                connection_id="conn_pg_proxy", kind=pg, url=self.proxy.proxied_url(self.pg_url)
            )
        )
        self.client.create_connection(
            connection_pb2.CreateConnectionRequest(
                connection_id="conn_api",
                kind=connection_pb2.CONNECTION_KIND_REST,
                rest=connection_pb2.RestOptions(
                    base_url=self.api.url, idempotent=True, timeout_seconds=1, batch_size=10
                ),
            )
        )
        self.client.create_connection(
            connection_pb2.CreateConnectionRequest(
                connection_id="conn_files", kind=connection_pb2.CONNECTION_KIND_FILE
            )
        )
        self.client.put_scenario(
            SCENARIO,
            script=FAULT_SCRIPT,
            settings=scenario_pb2.ScenarioSettings(
                overlap_policy=scenario_pb2.OVERLAP_POLICY_ALLOW_CONCURRENT,
                timeout_seconds=timeout_seconds,
                retry_policy=scenario_pb2.RetryPolicy(
                    maximum_attempts=4, initial_backoff_seconds=0.2, maximum_backoff_seconds=1
                ),
            ),
        )

    # -- runs ----------------------------------------------------------------------------------

    def new_namespace(self) -> str:
        self.runs += 1
        ns = f"s{self.runs}_{os.getpid()}"
        # The tables exist before the run, so a test can lock them before the first insert.
        with psycopg.connect(self.pg_url, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {ns}")
            conn.execute(
                f"CREATE TABLE {ns}.customers (id integer, name text, email text, city text, "
                "country text, signup_date date, vip boolean)"
            )
            conn.execute(
                f"CREATE TABLE {ns}.orders (id integer, customer_id integer, amount numeric(10, 2), "
                "status text, ordered_at timestamp)"
            )
        return ns

    def start(self, ns: str, **params: str) -> run_pb2.TriggerFire:
        return self.client.run(SCENARIO, {"ns": ns, **params})

    def wait(self, run_id: str, timeout: float = 180) -> run_pb2.Run:
        def ended() -> run_pb2.Run | None:
            run = self.client.get_run(run_id)
            return run if run.state not in (run_pb2.RUN_STATE_QUEUED, run_pb2.RUN_STATE_RUNNING) else None

        return eventually(ended, timeout=timeout, interval=0.2)  # type: ignore[no-any-return]

    def logs(self, run_id: str) -> str:
        return "\n".join(
            e.line.text for e in self.client.stream_logs(run_id, follow=False) if isinstance(e, LogEvent)
        )

    # -- observing a run -----------------------------------------------------------------------

    def ledger_entries(self, run_key: str, target: str) -> int:
        with psycopg.connect(self.pg_url, autocommit=True) as conn:
            try:
                row = conn.execute(
                    "SELECT count(*) FROM seedbed_ledger WHERE run_key = %s AND target = %s",
                    [run_key, target],
                ).fetchone()
            except psycopg.errors.UndefinedTable:
                return 0
        return int(row[0]) if row else 0

    def wait_for_ledger(self, run_key: str, target: str, entries: int = 1, timeout: float = 60) -> None:
        eventually(lambda: self.ledger_entries(run_key, target) >= entries, timeout=timeout, interval=0.02)

    def waiting_backends(self) -> list[int]:
        """Seedbed's PostgreSQL backends waiting for a lock."""
        with psycopg.connect(self.pg_url, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                "AND application_name = 'seedbed' AND wait_event_type = 'Lock'"
            ).fetchall()
        return [int(r[0]) for r in rows]

    @contextlib.contextmanager
    def table_locked(self, table: str) -> Iterator[None]:
        """Hold an EXCLUSIVE lock on `table` (reads pass, writes wait) until the block ends."""
        conn = psycopg.connect(self.pg_url)
        try:
            conn.execute(f"LOCK TABLE {table} IN EXCLUSIVE MODE")
            yield
        finally:
            conn.rollback()
            conn.close()

    def current_attempt(self, run_id: str) -> run_pb2.Attempt:
        def running() -> run_pb2.Attempt | None:
            run = self.client.get_run(run_id)
            if run.attempts and run.attempts[-1].worker_pid and run.attempts[-1].container_id:
                return run.attempts[-1]
            return None

        return eventually(running, timeout=60, interval=0.05)  # type: ignore[no-any-return]

    def kill_worker(self, run_id: str) -> int:
        """SIGKILL the Ray worker process that runs the run's current attempt."""
        pid = self.current_attempt(run_id).worker_pid
        os.kill(pid, signal.SIGKILL)
        return pid

    def kill_container(self, run_id: str) -> str:
        container_id = self.current_attempt(run_id).container_id
        self.docker.api.kill(container_id)
        return container_id

    # -- the verdict -----------------------------------------------------------------------------

    def check_exactly_once(
        self,
        run: run_pb2.Run,
        ns: str,
        *,
        customers: int,
        rest_path: str | None = None,
        complete: bool = True,
    ) -> None:
        """Every row of the run present once; the ledger agrees with the tables; no container left.
        With `complete=False` (a failed or aborted run) the tables hold what the ledger says, once."""
        with psycopg.connect(self.pg_url, autocommit=True) as conn:
            counts = {}
            for table in ("customers", "orders"):
                total, distinct = conn.execute(
                    f"SELECT count(*), count(DISTINCT id) FROM {ns}.{table}"
                ).fetchone()  # type: ignore[misc]
                assert total == distinct, (
                    f"{ns}.{table}: {total} rows but {distinct} distinct ids: duplicates"
                )
                counts[table] = total
            try:
                ledger = dict(
                    conn.execute(
                        "SELECT target, sum(row_count) FROM seedbed_ledger "
                        "WHERE run_key = %s AND operation = 'insert' GROUP BY target",
                        [run.run_key],
                    ).fetchall()
                )
            except psycopg.errors.UndefinedTable:
                ledger = {}
        assert counts["customers"] == int(ledger.get(f"{ns}.customers", 0)), (counts, ledger)
        assert counts["orders"] == int(ledger.get(f"{ns}.orders", 0)), (counts, ledger)
        if complete:
            assert counts == {"customers": customers, "orders": 2 * customers}, counts
            if rest_path is not None:
                rows = self.api.rows(rest_path)
                assert len(rows) == 20 and len({r["id"] for r in rows}) == 20, len(rows)
            artifact = artifacts_of(run.id) / f"{ns}-orders.jsonl"
            lines = artifact.read_text().splitlines()
            assert len(lines) == 2 * customers and len({json.loads(x)["id"] for x in lines}) == len(lines)
        eventually(lambda: not self.containers(run.id), timeout=30, interval=0.2)

    def tally(self, run: run_pb2.Run, ns: str, *, customers: int, rest_path: str | None) -> tuple[int, int]:
        """(duplicated, lost) rows of a successful run over every target."""
        expected = {"customers": customers, "orders": 2 * customers}
        duplicated = lost = 0
        with psycopg.connect(self.pg_url, autocommit=True) as conn:
            for table, want in expected.items():
                row = conn.execute(f"SELECT count(*), count(DISTINCT id) FROM {ns}.{table}").fetchone()
                assert row is not None
                duplicated += row[0] - row[1]
                lost += max(0, want - row[1])
        if rest_path is not None:
            ids = [r["id"] for r in self.api.rows(rest_path)]
            duplicated += len(ids) - len(set(ids))
            lost += max(0, 20 - len(set(ids)))
        artifact = artifacts_of(run.id) / f"{ns}-orders.jsonl"
        ids = (
            [json.loads(line)["id"] for line in artifact.read_text().splitlines()]
            if artifact.exists()
            else []
        )
        duplicated += len(ids) - len(set(ids))
        lost += max(0, 2 * customers - len(set(ids)))
        return duplicated, lost

    def containers(self, run_id: str) -> list[Any]:
        return list(
            self.docker.containers.list(
                all=True, filters={"label": f"seedbed.run={run_id}"}, ignore_removed=True
            )
        )


def artifacts_of(run_id: str) -> Path:
    """Where the run's `conn_files` connection wrote (each file connection has a folder of its own)."""
    return connection_folder(worker_settings().artifacts_dir / run_id, "conn_files")


def settle(seconds: float) -> None:
    """A short pause where a fault must land between two writes (not a synchronisation)."""
    time.sleep(seconds)
