"""Benchmark: replaying a bulk seed — 1M customers + 5M orders, first run vs its replay elsewhere.

    SEEDBED_TEST_PG_URL=postgresql://… .venv/bin/python -m tests.bench.bench_replay \
        [--scale 1.0] [--writers 2]

Scale 1.0 is 1,000,000 customers and 5,000,000 orders (the templates of examples/bulk, the schema of
`_bulk_baselines` with its keys declared before the load). One embedded coordinator (SQLite store,
local Ray, local Docker), after a small warm-up run (image, worker processes):

- the first run, into a fresh database A, from RunScenario to the run's end as the client sees it;
- its replay into a fresh database B (`ReplayRun` with `{conn_warehouse: conn_warehouse_b}`), timed
  the same way: the same rows are generated again (every seed derives from the run key) and written;
- its replay into A itself: every batch is in A's write ledger already, so nothing is written (the
  ledger is read, batch by batch).

Both databases are checked afterwards (`check_load`), and a fingerprint of every table's rows (count
and the sum of a 60-bit prefix of each row's md5) must be the same in A and B. The table gives each
figure and its ratio to the first run; the replay's target is within 1.2x of the first run.

Rejected: a string_agg md5 over the ordered rows (the integration tests use it; at 5M rows it
builds a string of hundreds of megabytes in the server), and replaying into a TRUNCATEd A (the
database's bloat from the first load would weigh on the replay).
"""

from __future__ import annotations

import argparse
import secrets
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

import psycopg

from seedbed.api.v1 import connection_pb2, run_pb2, scenario_pb2
from seedbed.client import Client
from seedbed.coordinator import CoordinatorSettings, running_in_thread
from tests.bench._bulk_baselines import check_load, create_schema
from tests.bench._postgres import scratch_database

FULL_CUSTOMERS, FULL_ORDERS = 1_000_000, 5_000_000
ADMIN_KEY = "bench-admin-key-" + secrets.token_hex(12)
SCENARIO = "bench-replay"
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "bulk"
REPLAY_TARGET = 1.2
SCRIPT = """\
from seedbed.sdk import Seedbed, params
dm = Seedbed()
db = dm.connection("conn_warehouse")
db.insert("customers", dm.generate("tmpl_bulk_customer", count=int(params["customers"])))
db.insert("orders", dm.generate("tmpl_bulk_order", count=int(params["orders"])))
"""


def fingerprint(url: str) -> tuple[tuple[int, int], ...]:
    """Per table: rows, and the sum of a 60-bit prefix of each row's md5 (order-free, exact)."""
    out = []
    with psycopg.connect(url) as conn:
        for table in ("customers", "orders"):
            row = conn.execute(
                "SELECT count(*),"
                " coalesce(sum(('x' || substr(md5(t::text), 1, 15))::bit(60)::bigint::numeric), 0)"
                f" FROM {table} t"
            ).fetchone()
            assert row is not None
            out.append((int(row[0]), int(row[1])))
    return tuple(out)


def connection(client: Client, connection_id: str, url: str, writers: int) -> None:
    request = connection_pb2.CreateConnectionRequest(
        connection_id=connection_id,
        kind=connection_pb2.CONNECTION_KIND_POSTGRESQL,
        url=url,
        allow_update=True,
    )
    request.bulk.writers = writers
    client.create_connection(request)


def timed(client: Client, start: Callable[[], run_pb2.TriggerFire]) -> tuple[run_pb2.Run, float]:
    """The run a call starts, waited for; seconds from the call to its end as the client sees it."""
    began = time.perf_counter()
    run = client.wait(start().run_id)
    seconds = time.perf_counter() - began
    if run.state != run_pb2.RUN_STATE_SUCCESS:
        raise SystemExit(f"run {run.id} ended {run_pb2.RunState.Name(run.state)}: {run.first_error}")
    return run, seconds


def applied(client: Client, run_id: str) -> tuple[int, int]:
    """Batches the run wrote, and batches it found in the ledger already."""
    batches = client.write_batches(run_id)
    written = sum(1 for b in batches if b.status == run_pb2.WRITE_BATCH_STATUS_APPLIED)
    return written, len(batches) - written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="1.0: 1M customers + 5M orders")
    parser.add_argument("--writers", type=int, default=2, help="the connections' bulk writers")
    args = parser.parse_args()
    customers, orders = int(FULL_CUSTOMERS * args.scale), int(FULL_ORDERS * args.scale)
    params = {"customers": str(customers), "orders": str(orders)}
    with ExitStack() as stack:
        settings = CoordinatorSettings(
            listen="127.0.0.1:0",
            rest_listen="",
            data_dir=Path(stack.enter_context(tempfile.TemporaryDirectory())),
            admin_api_key=ADMIN_KEY,
            metrics_listen="127.0.0.1:0",
        )
        coordinator = stack.enter_context(running_in_thread(settings))
        client = stack.enter_context(Client(coordinator.address, api_key=ADMIN_KEY))
        for name in ("customer.yaml", "order.yaml"):
            client.put_template((EXAMPLE / name).read_text())
        client.put_scenario(
            SCENARIO,
            script=SCRIPT,
            settings=scenario_pb2.ScenarioSettings(
                timeout_seconds=3 * 3600,
                retry_policy=scenario_pb2.RetryPolicy(disabled=True),  # a retry would hide in the figure
                overlap_policy=scenario_pb2.OVERLAP_POLICY_ALLOW_CONCURRENT,
            ),
        )
        with scratch_database() as warm:  # image, worker processes, imports
            create_schema(warm)
            connection(client, "conn_warehouse", warm, args.writers)
            timed(client, lambda: client.run(SCENARIO, {"customers": "100", "orders": "500"}))
        a = stack.enter_context(scratch_database())
        b = stack.enter_context(scratch_database())
        create_schema(a)
        create_schema(b)
        connection(client, "conn_warehouse", a, args.writers)
        connection(client, "conn_warehouse_b", b, args.writers)

        first, first_s = timed(client, lambda: client.run(SCENARIO, params))
        check_load(a, customers, orders)
        mapping = {"conn_warehouse": "conn_warehouse_b"}
        elsewhere, elsewhere_s = timed(client, lambda: client.replay_run(first.id, mapping))
        check_load(b, customers, orders)
        if fingerprint(a) != fingerprint(b):
            raise SystemExit(
                f"the replay into B wrote other rows than the first run into A: {fingerprint(b)}"
            )
        same, same_s = timed(client, lambda: client.replay_run(first.id))
        check_load(a, customers, orders)
        results = [
            (label, seconds, *applied(client, run.id))
            for label, run, seconds in (
                ("first run, into A", first, first_s),
                ("replay into B (fresh database)", elsewhere, elsewhere_s),
                ("replay into A (every batch in its ledger)", same, same_s),
            )
        ]

    rows = customers + orders
    print(f"{'run':<44} {'rows':>10} {'seconds':>9} {'rows/s':>10} {'vs first':>9} {'written/skipped':>16}")
    for label, seconds, written, skipped in results:
        print(
            f"{label:<44} {rows:>10,} {seconds:>9.1f} {rows / seconds:>10,.0f} {seconds / first_s:>8.2f}x "
            f"{written:>7,}/{skipped:<8,}"
        )
    ratio = elsewhere_s / first_s
    verdict = "met" if ratio <= REPLAY_TARGET else "MISSED"
    print(
        f"target: the replay into a fresh database within {REPLAY_TARGET}x of the first run: "
        f"{ratio:.2f}x, {verdict}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
