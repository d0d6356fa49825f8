"""Finding 5 of issue 10: the agent works on after the attempt ended.

Once an attempt ends (its deadline, an abort, the sandbox's exit), nothing the script asked for may
still happen: calls queued behind a slow one are refused instead of served, and a SQL statement in
flight is cancelled in the database instead of running to its end. The attacks go through the real
coordinator, Ray, Docker sandbox and target databases: threads that keep a queue of slow inserts
full until the deadline or an abort, and one statement that would run for a minute.
"""

from __future__ import annotations

import secrets
import sqlite3
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa

from seedbed.api.v1 import connection_pb2, run_pb2, scenario_pb2
from seedbed.client import Client
from tests.conftest import eventually, pg_admin_url

pytestmark = pytest.mark.integration

TIMEOUT_SECONDS = 6
# How long a statement may still run past the end: the cancel's round trip, on a busy machine.
SLACK = timedelta(seconds=0.75)


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    """The coordinator's own store plays no part here: SQLite only, to keep the module fast."""
    return f"sqlite+aiosqlite:///{tmp_path / 'seedbed.db'}"


@pytest.fixture
def target_pg() -> Iterator[str]:
    """A fresh PostgreSQL database with a table the script fills; its plain URL."""
    admin = pg_admin_url()
    name = f"seedbed_after_{secrets.token_hex(5)}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = f"{admin.rpartition('/')[0]}/{name}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE hits (id bigserial PRIMARY KEY, at timestamptz NOT NULL)")
        # A sequence moves on even when its statement's transaction is rolled back: it shows every
        # statement that ran, committed or not.
        conn.execute("CREATE SEQUENCE ticks")
    yield url
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _start(client: Client, script: str, connection: connection_pb2.CreateConnectionRequest) -> str:
    client.create_connection(connection)
    client.put_scenario(
        "after-end",
        script=script,
        settings=scenario_pb2.ScenarioSettings(
            overlap_policy=scenario_pb2.OVERLAP_POLICY_ALLOW_CONCURRENT, timeout_seconds=TIMEOUT_SECONDS
        ),
    )
    return client.run("after-end", {}).run_id


def _pg(url: str, kind: str = "postgresql") -> connection_pb2.CreateConnectionRequest:
    """The target as a `postgresql` connection (psycopg) or a `sql` one (SQLAlchemy)."""
    if kind == "sql":
        return connection_pb2.CreateConnectionRequest(
            connection_id="conn_target",
            kind=connection_pb2.CONNECTION_KIND_SQL,
            url=url.replace("postgresql://", "postgresql+psycopg://", 1),
        )
    return connection_pb2.CreateConnectionRequest(
        connection_id="conn_target", kind=connection_pb2.CONNECTION_KIND_POSTGRESQL, url=url
    )


# Thirty threads keep thirty slow inserts queued at every moment: each takes 0.2 s in the database.
FLOOD = """
import threading
from seedbed.sdk import Seedbed
db = Seedbed().connection("conn_target")

def work():
    while True:
        db.execute(
            "INSERT INTO hits (at) SELECT clock_timestamp() FROM pg_sleep(0.2) WHERE nextval('ticks') > 0"
        )

threads = [threading.Thread(target=work, daemon=True) for _ in range(30)]
for t in threads:
    t.start()
print("flooding", flush=True)
for t in threads:
    t.join()
"""


def _count(url: str) -> tuple[int, datetime | None, int]:
    """Rows committed, when the last one was, and how many statements ran at all."""
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*), max(at), (SELECT last_value FROM ticks) FROM hits").fetchone()
    assert row is not None
    return int(row[0]), row[1], int(row[2])


def _assert_nothing_lands_later(url: str, end: datetime) -> None:
    count, last, ran = _count(url)
    assert count > 0, "the flood wrote nothing before the end: the test proves nothing"
    # Nothing committed after the end…
    assert last is not None and last <= end + SLACK, (last, end)
    # …and nothing runs later either: the queue is not served after the run is over.
    deadline = time.monotonic() + 4
    while time.monotonic() < deadline:
        assert _count(url) == (count, last, ran), "a statement ran after the run had ended"
        time.sleep(0.25)
    assert _no_statement_of(url, "pg_sleep")


def _no_statement_of(url: str, needle: str) -> bool:
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid, state, query FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid() AND state <> 'idle' "
            "AND query LIKE %s",
            (f"%{needle}%",),
        ).fetchall()
    assert rows == [], rows
    return True


@pytest.mark.parametrize("kind", ["postgresql", "sql"])
def test_queued_inserts_stop_at_the_deadline(
    coordinator: tuple[Any, Client], target_pg: str, kind: str
) -> None:
    _, client = coordinator
    run = client.wait(_start(client, FLOOD, _pg(target_pg, kind)))
    assert run.state == run_pb2.RUN_STATE_FAILED, run
    assert run.first_error.reason == run_pb2.FAILURE_REASON_TIMEOUT, run.first_error
    attempt = run.attempts[-1]
    # The driver's clock starts a moment before the coordinator records the start.
    end = attempt.start_time.ToDatetime(tzinfo=UTC) + timedelta(seconds=TIMEOUT_SECONDS)
    _assert_nothing_lands_later(target_pg, end)


def test_queued_inserts_stop_at_an_abort(coordinator: tuple[Any, Client], target_pg: str) -> None:
    _, client = coordinator
    run_id = _start(client, FLOOD, _pg(target_pg, "sql"))
    eventually(lambda: _count(target_pg)[0] >= 3, timeout=60)
    aborted_at = datetime.now(UTC)
    client.abort(run_id, "enough")
    run = client.wait(run_id)
    assert run.state == run_pb2.RUN_STATE_ABORTED, run
    # The abort reaches the worker within a moment; nothing commits past it.
    _assert_nothing_lands_later(target_pg, aborted_at + timedelta(seconds=1))


def _late(statement: str) -> str:
    """A script that runs `statement` late in the run, so that a statement timeout counted from the
    statement's own start (what the agent sets on `postgresql` connections) would let it run on well
    past the deadline."""
    return (
        "import time\n"
        "from seedbed.sdk import Seedbed\n"
        "db = Seedbed().connection('conn_target')\n"
        "db.fetch('SELECT 1 AS warm')\n"
        "time.sleep(3)\n"
        f"db.fetch({statement!r})\n"
    )


@pytest.mark.parametrize("kind", ["postgresql", "sql"])
def test_a_long_postgresql_statement_is_cancelled_at_the_deadline(
    coordinator: tuple[Any, Client], target_pg: str, kind: str
) -> None:
    _, client = coordinator
    run = client.wait(_start(client, _late("SELECT pg_sleep(60) AS slept"), _pg(target_pg, kind)))
    assert run.first_error.reason == run_pb2.FAILURE_REASON_TIMEOUT, run.first_error
    # The statement is gone from the database at once, not after its minute.
    eventually(lambda: _no_statement_of(target_pg, "pg_sleep(60)"), timeout=3)
    # The worker serves the next run on the same target at once.
    quick = (
        "from seedbed.sdk import Seedbed\n"
        "print(Seedbed().connection('conn_target').fetch('SELECT 1 AS one'))\n"
    )
    client.put_scenario("quick", script=quick)
    assert client.wait(client.run("quick", {}).run_id).state == run_pb2.RUN_STATE_SUCCESS


def test_a_long_mysql_statement_is_killed_at_the_deadline(
    coordinator: tuple[Any, Client], mysql_database: str
) -> None:
    _, client = coordinator
    connection = connection_pb2.CreateConnectionRequest(
        connection_id="conn_target", kind=connection_pb2.CONNECTION_KIND_SQL, url=mysql_database
    )
    run = client.wait(_start(client, _late("SELECT SLEEP(60) AS slept"), connection))
    assert run.first_error.reason == run_pb2.FAILURE_REASON_TIMEOUT, run.first_error
    engine = sa.create_engine(mysql_database)

    def gone() -> bool:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT id, info FROM information_schema.processlist "
                    "WHERE info LIKE :needle AND id <> CONNECTION_ID()"
                ),
                {"needle": "%SLEEP(60)%"},
            ).all()
        assert rows == [], rows
        return True

    try:
        eventually(gone, timeout=3)
    finally:
        engine.dispose()


def test_a_long_sqlite_query_is_interrupted_at_the_deadline(
    coordinator: tuple[Any, Client], tmp_path: Path
) -> None:
    _, client = coordinator
    db = tmp_path / "target.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE hits (n INTEGER)")
    # Counting to 10^10 takes SQLite far longer than the run may last.
    script = (
        "from seedbed.sdk import Seedbed\n"
        "Seedbed().connection('conn_target').execute(\n"
        "    'INSERT INTO hits (n) WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c '\n"
        "    'WHERE n < 10000000000) SELECT max(n) FROM c'\n"
        ")\n"
    )
    connection = connection_pb2.CreateConnectionRequest(
        connection_id="conn_target", kind=connection_pb2.CONNECTION_KIND_SQL, url=f"sqlite:///{db}"
    )
    run = client.wait(_start(client, script, connection))
    assert run.first_error.reason == run_pb2.FAILURE_REASON_TIMEOUT, run.first_error

    # The query stops: the database file is free for a writer within moments (a running statement
    # would hold its write lock until it ended, minutes later).
    def writable() -> bool:
        with sqlite3.connect(db, timeout=0.1) as conn:
            conn.execute("INSERT INTO hits (n) VALUES (0)")
        return True

    eventually(lambda: _sqlite_ok(writable), timeout=3)
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM hits WHERE n > 0").fetchone() == (0,)


def _sqlite_ok(check: Any) -> bool:
    try:
        return bool(check())
    except sqlite3.OperationalError as exc:
        raise AssertionError(str(exc)) from None
