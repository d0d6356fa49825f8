"""The write ledger against real targets: PostgreSQL (psycopg sink), and SQLite, MariaDB and
PostgreSQL through SQLAlchemy. Each test plays one or more attempts of a run against a fresh
database and checks every row lands exactly once."""

from __future__ import annotations

import secrets
import sqlite3
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa

from seedbed.worker.ledger import (
    LEDGER_TABLE,
    POSTGRESQL_LEDGER_DDL,
    AttemptStamp,
    BatchReport,
    LedgeredSql,
    LedgerSeal,
    NondeterministicWriteError,
)
from seedbed.worker.sinks import ConnectionSpec, SqlSink, TargetError, open_sink

pytestmark = pytest.mark.integration

ITEMS = "CREATE TABLE items (id integer PRIMARY KEY, name varchar(100) NOT NULL, n integer)"
SERIAL = {
    "postgresql": "CREATE TABLE events (id serial PRIMARY KEY, label text)",
    "sqlite": "CREATE TABLE events (id integer PRIMARY KEY AUTOINCREMENT, label text)",
    "mysql": "CREATE TABLE events (id integer PRIMARY KEY AUTO_INCREMENT, label varchar(100))",
}


# The key the coordinator would derive for the run (see `seedbed.coordinator.attempt.ledger_key`).
LEDGER_KEY = b"ledger key of the test runs 0001"


def items(n: int, start: int = 0, tag: str = "") -> list[dict[str, Any]]:
    return [{"id": i, "name": f"item {i}{tag}", "n": i * 7 % 13} for i in range(start, start + n)]


@pytest.fixture(params=["pg", "sql-sqlite", "sql-mysql", "sql-postgresql"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str, str]]:
    """(sink kind, dialect, url) of a fresh, empty database."""
    kind, _, dialect = request.param.partition("-")
    if kind == "pg":
        url = request.getfixturevalue("pg_database")
        yield "postgresql", "postgresql", url
        return
    if dialect == "sqlite":
        yield "sql", "sqlite", f"sqlite:///{tmp_path / 'target.db'}"
        return
    if dialect == "postgresql":
        yield "sql", "postgresql", request.getfixturevalue("pg_database")
        return
    yield "sql", "mysql", request.getfixturevalue("mysql_database")


class Attempt:
    """One attempt of run `run_key`: its own sink (connection) and ledger view."""

    def __init__(
        self, target: tuple[str, str, str], tmp_path: Path, number: int, run_key: str = "rk"
    ) -> None:
        kind, self.dialect, url = target
        self.run_key = run_key
        self.sink: SqlSink[Any] = open_sink(  # type: ignore[assignment]
            ConnectionSpec("conn_t", kind, {"url": url}), artifacts_dir=tmp_path
        )
        self.reports: list[BatchReport] = []
        self.ledger = LedgeredSql(
            self.sink,
            AttemptStamp(
                run_key=run_key, run_id="run_1", attempt=number, fencing_token=number, ledger_key=LEDGER_KEY
            ),
            report=self.reports.append,
            retry_budget=timedelta(seconds=20),
            batch_rows=1000,
        )

    @property
    def seal(self) -> LedgerSeal:
        """What checks the run's ledger rows (as a purge of it does)."""
        return LedgerSeal(self.run_key, "run_1", LEDGER_KEY)

    def statuses(self) -> list[tuple[int, int, bool]]:
        return [(r.call, r.batch, r.replayed) for r in self.reports]

    def count(self, table: str = "items") -> int:
        return int(self.sink.fetch(f"SELECT count(*) AS n FROM {table}")[0]["n"])

    def ledger_rows(self) -> list[dict[str, Any]]:
        return self.sink.fetch(
            f"SELECT run_key, call_no, batch_no, row_count, attempt FROM {LEDGER_TABLE} "
            "ORDER BY call_no, batch_no"
        )

    def close(self) -> None:
        self.sink.close()


def test_a_replayed_run_skips_every_applied_batch(target: tuple[str, str, str], tmp_path: Path) -> None:
    first = Attempt(target, tmp_path, 1)
    assert first.ledger.execute(1, ITEMS) in (0, -1)
    assert first.ledger.insert(2, "items", items(2500)).count == 2500
    assert first.statuses() == [(1, 0, False), (2, 0, False), (2, 1, False), (2, 2, False)]
    first.close()

    second = Attempt(target, tmp_path, 2)
    # The CREATE TABLE is not run again (it would fail), the rows are not written again.
    second.ledger.execute(1, ITEMS)
    assert second.ledger.insert(2, "items", items(2500)).count == 2500
    assert second.statuses() == [(1, 0, True), (2, 0, True), (2, 1, True), (2, 2, True)]
    assert second.count() == 2500
    ledger = [(r["call_no"], r["batch_no"], r["row_count"], r["attempt"]) for r in second.ledger_rows()]
    assert ledger[1:] == [(2, 0, 1000, 1), (2, 1, 1000, 1), (2, 2, 500, 1)]
    assert ledger[0][:2] == (1, 0) and ledger[0][3] == 1  # a CREATE TABLE's count depends on the driver
    second.close()


def test_a_run_cut_short_is_completed_by_the_next_attempt(
    target: tuple[str, str, str], tmp_path: Path
) -> None:
    setup = Attempt(target, tmp_path, 0, run_key="setup")
    setup.ledger.execute(1, ITEMS)
    setup.close()
    rows = items(3500)
    first = Attempt(target, tmp_path, 1)
    # The first attempt got as far as its first two batches (a worker killed after a COMMIT).
    first.ledger.insert(1, "items", rows[:2000])
    first.close()

    second = Attempt(target, tmp_path, 2)
    assert second.ledger.insert(1, "items", rows).count == 3500
    assert second.statuses() == [(1, 0, True), (1, 1, True), (1, 2, False), (1, 3, False)]
    assert second.count() == 3500
    ids = [r["id"] for r in second.sink.fetch("SELECT id FROM items ORDER BY id")]
    assert ids == list(range(3500))
    second.close()


# MariaDB has no INSERT … RETURNING for several rows in SQLAlchemy (the sink refuses it clearly).
@pytest.mark.parametrize("target", ["pg", "sql-sqlite", "sql-postgresql"], indirect=True)
def test_returning_rows_are_replayed_as_the_first_attempt_saw_them(
    target: tuple[str, str, str], tmp_path: Path
) -> None:
    first = Attempt(target, tmp_path, 1)
    first.ledger.execute(1, SERIAL[target[1]])
    labels = [{"label": f"e{i}"} for i in range(1500)]
    got = first.ledger.insert(2, "events", labels, returning=["id", "label"]).rows_returned
    assert got is not None and len(got) == 1500
    first.close()

    second = Attempt(target, tmp_path, 2)
    second.ledger.execute(1, SERIAL[target[1]])
    again = second.ledger.insert(2, "events", labels, returning=["id", "label"]).rows_returned
    assert again == got
    assert second.count("events") == 1500
    second.close()


def test_different_content_on_replay_fails_and_writes_nothing(
    target: tuple[str, str, str], tmp_path: Path
) -> None:
    first = Attempt(target, tmp_path, 1)
    first.ledger.execute(1, ITEMS)
    first.ledger.insert(2, "items", items(10))
    first.close()

    second = Attempt(target, tmp_path, 2)
    second.ledger.execute(1, ITEMS)
    with pytest.raises(NondeterministicWriteError) as caught:
        second.ledger.insert(2, "items", items(10, tag=" (changed)"))
    message = str(caught.value)
    assert "call 2 (insert into items on connection 'conn_t'), batch 0" in message
    assert "attempt 1 wrote different content" in message
    assert second.count() == 10
    assert [r["name"] for r in second.sink.fetch("SELECT name FROM items ORDER BY id")][:1] == ["item 0"]
    second.close()


def test_a_real_duplicate_key_is_still_an_error(target: tuple[str, str, str], tmp_path: Path) -> None:
    attempt = Attempt(target, tmp_path, 1)
    attempt.ledger.execute(1, ITEMS)
    attempt.ledger.insert(2, "items", items(5))
    with pytest.raises(TargetError):
        attempt.ledger.insert(3, "items", items(5))  # the same ids again, in another call
    assert attempt.count() == 5
    assert len(attempt.ledger_rows()) == 2
    attempt.close()


# SQLite serialises writers: the collision this test needs cannot happen there.
@pytest.mark.parametrize("target", ["pg", "sql-mysql", "sql-postgresql"], indirect=True)
def test_two_attempts_writing_at_once_write_each_batch_once(
    target: tuple[str, str, str], tmp_path: Path
) -> None:
    setup = Attempt(target, tmp_path, 0, run_key="setup")
    setup.ledger.execute(
        1, "CREATE TABLE log_lines (k varchar(40), v integer)"
    )  # no key: duplicates possible
    setup.close()
    rows = [{"k": f"row {i}", "v": i} for i in range(5000)]
    attempts = [Attempt(target, tmp_path, n) for n in (1, 2)]
    errors: list[BaseException] = []

    def run(attempt: Attempt) -> None:
        try:
            attempt.ledger.insert(1, "log_lines", rows)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(a,)) for a in attempts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    assert attempts[0].count("log_lines") == 5000
    applied = [(r.call, r.batch) for a in attempts for r in a.reports if not r.replayed]
    assert sorted(applied) == [(1, b) for b in range(5)]
    for attempt in attempts:
        attempt.close()


def test_a_terminated_connection_is_retried_and_written_once(pg_database: str, tmp_path: Path) -> None:
    attempt = Attempt(("postgresql", "postgresql", pg_database), tmp_path, 1)
    attempt.ledger.execute(1, ITEMS)
    attempt.ledger.insert(2, "items", items(100))
    url = pg_database.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = 'seedbed' AND datname = current_database()"
        )
    assert attempt.ledger.insert(3, "items", items(100, start=100)).count == 100
    assert attempt.count() == 200
    assert len(attempt.ledger_rows()) == 3
    attempt.close()


def test_a_user_who_may_not_create_the_ledger_is_told_how_to_fix_it(pg_database: str, tmp_path: Path) -> None:
    url = pg_database.replace("postgresql+psycopg://", "postgresql://", 1)
    role = f"writer_{secrets.token_hex(4)}"
    with psycopg.connect(url, autocommit=True) as owner:
        owner.execute(ITEMS)
        owner.execute(f"CREATE ROLE {role} LOGIN PASSWORD 'pw'")
        owner.execute(f"GRANT ALL ON items TO {role}")
        owner.execute(f"REVOKE CREATE ON SCHEMA public FROM {role}, PUBLIC")
    limited = sa.make_url(pg_database).set(username=role, password="pw")
    as_role = ("postgresql", "postgresql", limited.render_as_string(hide_password=False))
    try:
        attempt = Attempt(as_role, tmp_path, 1)
        with pytest.raises(TargetError) as caught:
            attempt.ledger.insert(1, "items", items(3))
        message = str(caught.value)
        assert "the write ledger needs a table seedbed_ledger" in message
        assert "grant SELECT, INSERT (and DELETE, for `seedbed run purge`) on it to this user: " in message
        assert "CREATE TABLE IF NOT EXISTS seedbed_ledger" in message
        assert attempt.count() == 0
        attempt.close()

        # Once the owner created it, the same user writes through it.
        with psycopg.connect(url, autocommit=True) as owner:
            owner.execute(POSTGRESQL_LEDGER_DDL)
            owner.execute(f"GRANT SELECT, INSERT ON {LEDGER_TABLE} TO {role}")
        attempt = Attempt(as_role, tmp_path, 1)
        assert attempt.ledger.insert(1, "items", items(3)).count == 3
        attempt.close()
    finally:
        with psycopg.connect(url, autocommit=True) as owner:
            owner.execute(f"DROP OWNED BY {role}")
            owner.execute(f"DROP ROLE {role}")


def test_a_sql_target_that_refuses_the_ledger_table_gets_its_ddl(tmp_path: Path) -> None:
    db = tmp_path / "readonly.db"
    with sqlite3.connect(db) as conn:
        conn.execute(ITEMS)
    url = f"sqlite:///file:{db}?mode=ro&uri=true"
    attempt = Attempt(("sql", "sqlite", url), tmp_path, 1)
    with pytest.raises(TargetError) as caught:
        attempt.ledger.insert(1, "items", items(3))
    message = str(caught.value)
    assert "the write ledger needs a table seedbed_ledger" in message
    assert "CREATE TABLE seedbed_ledger ( run_key VARCHAR(255) NOT NULL" in message
    attempt.close()
