"""Purging a run: the row keys the write ledger records per batch (PostgreSQL, and SQLite, MariaDB
and PostgreSQL through SQLAlchemy), `purge_run` on a real PostgreSQL with foreign keys, and
`seedbed run purge` end to end through a real coordinator, Ray and Docker."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import grpc
import psycopg
import pytest

from seedbed.api.v1 import run_pb2, scenario_pb2
from seedbed.client import Client, ClientError
from seedbed.worker.ledger import LEDGER_TABLE, AttemptStamp, LedgeredSql, LedgerSeal, purge_run
from seedbed.worker.sinks import ConnectionSpec, PostgresSink, open_sink
from tests.conftest import eventually
from tests.integration.test_cli import seedbed
from tests.integration.test_ledger import ITEMS, LEDGER_KEY, SERIAL, Attempt, items, target  # noqa: F401
from tests.integration.test_seeding import CLASSIC, _logs, _pg_connection, _run, _setup, target_pg  # noqa: F401

pytestmark = pytest.mark.integration


def row_keys(attempt: Attempt) -> list[tuple[int, int, Any]]:
    rows = attempt.sink.fetch(
        f"SELECT call_no, batch_no, row_keys FROM {LEDGER_TABLE} ORDER BY call_no, batch_no"
    )
    return [
        (r["call_no"], r["batch_no"], json.loads(r["row_keys"]) if r["row_keys"] is not None else None)
        for r in rows
    ]


def id_keys(ids: Any) -> dict[str, Any]:
    return {"columns": ["id"], "values": [[i] for i in ids]}


# -- row keys in the ledger -------------------------------------------------------------------------


def test_a_plain_insert_with_its_key_records_the_keys_of_its_rows(
    target: tuple[str, str, str],  # noqa: F811
    tmp_path: Path,
) -> None:
    attempt = Attempt(target, tmp_path, 1)
    attempt.ledger.execute(1, ITEMS)
    attempt.ledger.insert(2, "items", items(1500))
    assert row_keys(attempt) == [
        (1, 0, None),  # a statement: never purgeable
        (2, 0, id_keys(range(1000))),
        (2, 1, id_keys(range(1000, 1500))),
    ]
    attempt.close()


def test_an_upsert_records_the_prior_state_of_its_rows(
    target: tuple[str, str, str],  # noqa: F811
    tmp_path: Path,
) -> None:
    attempt = Attempt(target, tmp_path, 1)
    attempt.ledger.execute(1, ITEMS)
    attempt.ledger.insert(2, "items", items(10))
    # Both may touch rows that existed before the run: their prior state is kept for a purge.
    attempt.ledger.insert(3, "items", items(20, tag=" v2"), on_conflict="update", key=["id"])
    attempt.ledger.insert(4, "items", items(5, start=30), on_conflict="ignore", key=["id"])
    recorded = [k for _, _, k in row_keys(attempt)]
    assert recorded[:2] == [None, id_keys(range(10))]
    upsert = recorded[2]  # see test_purge_upserts.py for the purge
    assert upsert["values"] == [[i] for i in range(20)]
    assert upsert["upsert"]["by"] == ("postgresql" if target[0] == "postgresql" else "sqlalchemy")
    assert json.loads(upsert["upsert"]["prior"][0]) == {"id": 0, "name": "item 0", "n": 0}
    assert upsert["upsert"]["prior"][10:] == [None] * 10
    assert all(len(h) == 64 for h in upsert["upsert"]["after"])
    assert recorded[3]["upsert"]["prior"] == [None] * 5
    attempt.close()


def test_keys_the_database_generates_are_unknown_without_returning(
    target: tuple[str, str, str],  # noqa: F811
    tmp_path: Path,
) -> None:
    attempt = Attempt(target, tmp_path, 1)
    attempt.ledger.execute(1, SERIAL[target[1]])
    attempt.ledger.insert(2, "events", [{"label": f"e{i}"} for i in range(50)])  # COPY on PostgreSQL
    assert row_keys(attempt)[1] == (2, 0, None)
    summary = purge_run(attempt.sink, attempt.seal, dry_run=False)
    assert summary.tables == [] and summary.failure is None
    assert [(s.operation, s.call) for s in summary.skipped] == [("insert", 2), ("execute", 1)]
    assert "returning=[the key columns]" in summary.skipped[0].reason
    assert attempt.count("events") == 50
    attempt.close()


# MariaDB has no INSERT … RETURNING for several rows in SQLAlchemy (the sink refuses it clearly).
@pytest.mark.parametrize("target", ["pg", "sql-sqlite", "sql-postgresql"], indirect=True)
def test_generated_keys_asked_back_with_returning_are_recorded_and_purged(
    target: tuple[str, str, str],  # noqa: F811
    tmp_path: Path,
) -> None:
    attempt = Attempt(target, tmp_path, 1)
    attempt.ledger.execute(1, SERIAL[target[1]])
    labels = [{"label": f"e{i}"} for i in range(1200)]
    returned = attempt.ledger.insert(2, "events", labels, returning=["id"]).rows_returned
    assert returned is not None
    ids = [r["id"] for r in returned]
    # Returning other columns than the key tells nothing about the rows' identity.
    attempt.ledger.insert(3, "events", [{"label": "other"}], returning=["label"])
    assert row_keys(attempt)[1:] == [
        (2, 0, id_keys(ids[:1000])),
        (2, 1, id_keys(ids[1000:])),
        (3, 0, None),
    ]
    summary = purge_run(attempt.sink, attempt.seal, dry_run=False)
    assert [(t.table, t.rows_deleted, t.rows_recorded, t.batches) for t in summary.tables] == [
        ("events", 1200, 1200, 2)
    ]
    assert [r["label"] for r in attempt.sink.fetch("SELECT label FROM events")] == ["other"]
    attempt.close()


def test_a_composite_key_written_as_text_is_purged_and_other_runs_stay(
    target: tuple[str, str, str],  # noqa: F811
    tmp_path: Path,
) -> None:
    setup = Attempt(target, tmp_path, 0, run_key="setup")
    setup.ledger.execute(
        1,
        "CREATE TABLE visits (shop integer NOT NULL, day date NOT NULL, n integer, PRIMARY KEY (shop, day))",
    )
    setup.ledger.execute(2, "CREATE TABLE notes (body varchar(100))")  # no primary key
    setup.close()
    visits = [{"shop": s, "day": f"2024-01-{d:02d}", "n": s * d} for s in (1, 2, 3) for d in range(1, 21)]
    run = Attempt(target, tmp_path, 1, run_key="rk")
    run.ledger.insert(1, "visits", visits)
    run.ledger.insert(2, "notes", [{"body": "kept"}])
    run.close()
    other = Attempt(target, tmp_path, 1, run_key="other")
    other.ledger.insert(1, "visits", [{"shop": 9, "day": "2024-01-01", "n": 0}])

    dry = purge_run(other.sink, run.seal, dry_run=True)
    assert [(t.table, t.rows_deleted, t.rows_recorded) for t in dry.tables] == [("visits", 60, 60)]
    assert other.count("visits") == 61

    done = purge_run(other.sink, run.seal, dry_run=False)
    assert [(t.table, t.rows_deleted, t.rows_recorded) for t in done.tables] == [("visits", 60, 60)]
    assert [(s.target, s.reason) for s in done.skipped] == [
        ("notes", "table notes has no primary key: its rows cannot be told apart")
    ]
    assert other.sink.fetch("SELECT shop FROM visits") == [{"shop": 9}]
    assert other.count("notes") == 1
    left = other.sink.fetch(f"SELECT run_key, call_no FROM {LEDGER_TABLE} ORDER BY run_key, call_no")
    assert [(r["run_key"], r["call_no"]) for r in left] == [
        ("other", 1),
        ("rk", 2),
        ("setup", 1),
        ("setup", 2),
    ]
    other.close()


@pytest.mark.parametrize("target", ["pg", "sql-postgresql"], indirect=True)
def test_uuid_keys_written_as_text_are_purged(target: tuple[str, str, str], tmp_path: Path) -> None:  # noqa: F811
    attempt = Attempt(target, tmp_path, 1)
    attempt.ledger.execute(1, "CREATE TABLE tokens (id uuid PRIMARY KEY, label text)")
    tokens = [{"id": str(uuid.UUID(int=i)), "label": f"t{i}"} for i in range(1, 31)]
    attempt.ledger.insert(2, "tokens", tokens)
    summary = purge_run(attempt.sink, attempt.seal, dry_run=False)
    assert [(t.table, t.rows_deleted, t.rows_recorded) for t in summary.tables] == [("tokens", 30, 30)]
    assert attempt.count("tokens") == 0
    attempt.close()


# -- purge_run on PostgreSQL with foreign keys -------------------------------------------------------

SHOP = """
CREATE TABLE customers (id integer PRIMARY KEY, name text NOT NULL);
CREATE TABLE orders (
    id integer PRIMARY KEY,
    customer_id integer NOT NULL REFERENCES customers (id),
    amount numeric(10, 2) NOT NULL
);
CREATE TABLE tags (name text PRIMARY KEY, n integer NOT NULL);
"""


class Shop:
    """A fresh PostgreSQL database with customers ← orders, and the run `rk` writing into it."""

    def __init__(self, pg_database: str, tmp_path: Path) -> None:
        self.url = pg_database.replace("postgresql+psycopg://", "postgresql://", 1)
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(SHOP)
        sink = open_sink(ConnectionSpec("conn_shop", "postgresql", {"url": self.url}), artifacts_dir=tmp_path)
        assert isinstance(sink, PostgresSink)
        self.sink = sink

    def ledger(self, run_key: str) -> LedgeredSql:
        stamp = AttemptStamp(
            run_key=run_key, run_id=f"run_{run_key}", attempt=1, fencing_token=1, ledger_key=LEDGER_KEY
        )
        return LedgeredSql(self.sink, stamp, report=lambda _: None, batch_rows=100)

    def seal(self, run_key: str) -> LedgerSeal:
        return LedgerSeal(run_key, f"run_{run_key}", LEDGER_KEY)

    def sql(self, statement: str) -> list[Any]:
        with psycopg.connect(self.url, autocommit=True) as conn:
            cursor = conn.execute(statement)
            return cursor.fetchall() if cursor.description else []

    def ids(self, table: str) -> list[int]:
        return [r[0] for r in self.sql(f"SELECT id FROM {table} ORDER BY id")]

    def ledger_calls(self, run_key: str) -> list[tuple[int, int]]:
        rows = self.sql(
            f"SELECT call_no, batch_no FROM {LEDGER_TABLE} WHERE run_key = '{run_key}' ORDER BY 1, 2"
        )
        return [(r[0], r[1]) for r in rows]


@pytest.fixture
def shop(pg_database: str, tmp_path: Path) -> Any:
    found = Shop(pg_database, tmp_path)
    yield found
    found.sink.close()


def customers(ids: Any) -> list[dict[str, Any]]:
    return [{"id": i, "name": f"customer {i}"} for i in ids]


def orders(ids: Any, of: int = 100) -> list[dict[str, Any]]:
    return [{"id": i, "customer_id": i % of, "amount": 10.5 + i} for i in ids]


def test_purge_deletes_orders_then_customers_and_leaves_the_rest(shop: Shop) -> None:
    shop.sql("INSERT INTO customers VALUES (1000, 'not from the run')")
    run = shop.ledger("rk")
    run.insert(1, "customers", customers(range(100)))
    run.insert(2, "orders", orders(range(250)))  # three batches: 100, 100, 50
    run.insert(3, "tags", [{"name": "vip", "n": 1}], on_conflict="update", key=["name"])
    run.execute(4, "UPDATE customers SET name = name || '!' WHERE id = 1000")
    shop.ledger("other").insert(1, "customers", customers(range(500, 510)))
    shop.sql("INSERT INTO orders VALUES (9000, 1000, 1)")
    shop.sql("DELETE FROM orders WHERE id = 7")  # by hand: already gone at purge time

    dry = purge_run(shop.sink, shop.seal("rk"), dry_run=True)
    # The upsert created its row: deleted (test_purge_upserts.py has the rows it changed).
    expected = [("tags", 1, 1, 1), ("orders", 249, 250, 3), ("customers", 100, 100, 1)]
    assert [(t.table, t.rows_deleted, t.rows_recorded, t.batches) for t in dry.tables] == expected
    assert len(shop.ids("orders")) == 250 and len(shop.ids("customers")) == 111
    assert shop.ledger_calls("rk") == [(1, 0), (2, 0), (2, 1), (2, 2), (3, 0), (4, 0)]

    done = purge_run(shop.sink, shop.seal("rk"), dry_run=False)
    assert done.failure is None
    # Newest first: the orders (which reference the customers) went before the customers.
    assert [(t.table, t.rows_deleted, t.rows_recorded, t.batches) for t in done.tables] == expected
    assert [(s.operation, s.target, s.call) for s in done.skipped] == [
        ("execute", "UPDATE customers SET name = name || '!' WHERE id = 1000", 4),
    ]
    assert "a statement (execute)" in done.skipped[0].reason
    assert shop.ids("orders") == [9000]
    assert shop.ids("customers") == [*range(500, 510), 1000]
    assert shop.sql("SELECT name, n FROM tags") == []
    assert shop.ledger_calls("rk") == [(4, 0)]  # the skipped batch stays recorded
    assert shop.ledger_calls("other") == [(1, 0)]
    assert done.to_json()["tables"][1] == {
        "table": "orders",
        "rows_deleted": 249,
        "rows_recorded": 250,
        "batches": 3,
        "rows_restored": 0,
        "rows_changed": 0,
    }

    again = purge_run(shop.sink, shop.seal("rk"), dry_run=False)
    assert again.tables == [] and again.failure is None and len(again.skipped) == 1


def test_a_foreign_key_from_outside_the_run_stops_the_purge_with_what_was_done(shop: Shop) -> None:
    run = shop.ledger("rk")
    run.insert(1, "customers", customers(range(10)))
    run.insert(2, "orders", orders(range(10), of=10))
    shop.sql("INSERT INTO orders VALUES (500, 3, 99)")  # someone else's order, of the run's customer

    stopped = purge_run(shop.sink, shop.seal("rk"), dry_run=False)
    assert [(t.table, t.rows_deleted) for t in stopped.tables] == [("orders", 10)]
    assert stopped.failure is not None
    assert (stopped.failure.table, stopped.failure.call, stopped.failure.batch) == ("customers", 1, 0)
    message = stopped.failure.message
    assert "cannot delete the rows call 1 (batch 0) inserted into customers" in message
    assert "through foreign key orders_customer_id_fkey of table orders" in message
    assert "Key (id)=(3) is still referenced" in message
    assert "the 1 batch purged before it on this connection is committed and stays purged" in message
    assert shop.ids("orders") == [500]  # the run's orders are gone: committed before the failure
    assert shop.ids("customers") == list(range(10))
    assert shop.ledger_calls("rk") == [(1, 0)]

    shop.sql("DELETE FROM orders WHERE id = 500")
    resumed = purge_run(shop.sink, shop.seal("rk"), dry_run=False)
    assert resumed.failure is None
    assert [(t.table, t.rows_deleted) for t in resumed.tables] == [("customers", 10)]
    assert shop.ids("customers") == [] and shop.ledger_calls("rk") == []


# -- through the coordinator -------------------------------------------------------------------------


def _counts(url: str) -> tuple[int, int]:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM customers), (SELECT count(*) FROM orders)"
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def _targets(response: run_pb2.PurgeRunResponse) -> list[tuple[str, str, int, int]]:
    return [(t.connection_id, t.table, t.rows_deleted, t.rows_recorded) for t in response.targets]


def test_purge_of_a_classic_run_through_the_coordinator(
    coordinator: tuple[Any, Client],
    target_pg: str,  # noqa: F811
) -> None:
    _, client = coordinator
    _setup(client)
    _pg_connection(client, "conn_postgres", target_pg)
    run = _run(client, "classic", CLASSIC)
    assert run.state == run_pb2.RUN_STATE_SUCCESS, (run.first_error, _logs(client, run.id))
    expected = [("conn_postgres", "orders", 500, 500), ("conn_postgres", "customers", 100, 100)]

    dry = client.purge_run(run.id, dry_run=True)
    assert dry.dry_run and _targets(dry) == expected and not dry.failures and not dry.skipped
    assert _counts(target_pg) == (100, 500)

    # A connection deleted since the run: its batches cannot be reached, and it says so (a dry
    # run: a purge that ended DONE is not done again, even once the connection is back).
    client.delete_connection("conn_postgres")
    unreachable = client.purge_run(run.id, dry_run=True)
    assert [(c.connection_id, c.reason[:22]) for c in unreachable.skipped_connections] == [
        ("conn_postgres", "deleted since the run:")
    ]
    assert not unreachable.targets and _counts(target_pg) == (100, 500)
    _pg_connection(client, "conn_postgres", target_pg)

    purged = client.purge_run(run.id)
    assert not purged.dry_run and _targets(purged) == expected
    assert not purged.failures and not purged.skipped and not purged.skipped_connections
    assert _counts(target_pg) == (0, 0)
    with psycopg.connect(target_pg) as conn:
        assert conn.execute(f"SELECT count(*) FROM {LEDGER_TABLE}").fetchone() == (0,)
    eventually(lambda: "purged 600 rows: 500 from orders (conn_postgres)" in _logs(client, run.id))

    # DONE: asked again, its record answers and nothing is purged again.
    assert client.purge_run(run.id) == purged


def test_purge_refuses_an_active_run_and_an_unknown_one(coordinator: tuple[Any, Client]) -> None:
    _, client = coordinator
    client.put_scenario(
        "sleeper",
        script="import time\ntime.sleep(120)\n",
        settings=scenario_pb2.ScenarioSettings(overlap_policy=scenario_pb2.OVERLAP_POLICY_ALLOW_CONCURRENT),
    )
    run_id = client.run("sleeper").run_id
    with pytest.raises(ClientError) as caught:
        client.purge_run(run_id)
    assert caught.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert "abort it first or wait for it to end" in caught.value.details
    client.abort(run_id, "test over")
    assert client.wait(run_id).state == run_pb2.RUN_STATE_ABORTED
    nothing = client.purge_run(run_id)
    assert not nothing.targets and not nothing.failures

    with pytest.raises(ClientError) as caught:
        client.purge_run("run_0123456789abcdef")
    assert caught.value.code == grpc.StatusCode.NOT_FOUND


def test_seedbed_run_purge_command(
    coordinator: tuple[Any, Client],
    target_pg: str,  # noqa: F811
) -> None:
    coord, client = coordinator
    address = ["--address", coord.address]
    _setup(client)
    _pg_connection(client, "conn_postgres", target_pg)
    run = _run(client, "classic", CLASSIC)
    assert run.state == run_pb2.RUN_STATE_SUCCESS, (run.first_error, _logs(client, run.id))

    dry = seedbed(*address, "run", "purge", run.id, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "dry run, nothing deleted; a purge would delete 600 row(s)" in dry.stdout
    assert "WOULD DELETE" in dry.stdout
    assert _counts(target_pg) == (100, 500)

    # An order from outside the run holds one of its customers: the purge stops there (exit 1).
    with psycopg.connect(target_pg, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO orders (id, customer_id, amount, status, ordered_at) "
            "SELECT 999999, min(id), 1, 'kept', now() FROM customers"
        )
    stopped = seedbed(*address, "run", "purge", run.id, "--yes")
    assert stopped.returncode == 1, stopped.stdout + stopped.stderr
    assert "purged 500 row(s)" in stopped.stdout
    assert "FAILED on conn_postgres, table customers, call " in stopped.stdout
    assert "orders_customer_id_fkey" in stopped.stdout
    assert _counts(target_pg) == (100, 1)

    with psycopg.connect(target_pg, autocommit=True) as conn:
        conn.execute("DELETE FROM orders WHERE id = 999999")
    resumed = seedbed(*address, "run", "purge", run.id, "--yes", "-o", "json")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    report = json.loads(resumed.stdout)
    assert report["run_id"] == run.id and report["dry_run"] is False and report["failures"] == []
    assert [(t["table"], int(t["rows_deleted"]), int(t["rows_recorded"])) for t in report["targets"]] == [
        ("customers", 100, 100)
    ]
    assert _counts(target_pg) == (0, 0)

    # DONE: asked again, the purge answers its record (the resumed purge's) and does nothing.
    done = seedbed(*address, "run", "purge", run.id, "--yes")
    assert done.returncode == 0 and f"run {run.id}: purged 100 row(s)" in done.stdout

    unknown = seedbed(*address, "run", "purge", "run_0123456789abcdef", "--yes")
    assert unknown.returncode == 5 and "NOT_FOUND" in unknown.stderr
    misplaced = seedbed(*address, "run", "show", run.id, "--dry-run")
    assert misplaced.returncode == 2 and "No such option '--dry-run'" in misplaced.stderr
