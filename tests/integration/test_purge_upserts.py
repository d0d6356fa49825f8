"""Purging upserts on a real PostgreSQL: rows the run created are deleted, rows it changed are put
back exactly (numeric, date, bytea, arrays, json), rows changed since by someone else are left alone
and listed, a row someone else inserts while an upsert is written is not taken for the run's, and a
dry run changes nothing. Through SQLAlchemy (SQLite, MySQL/MariaDB, PostgreSQL) upserts are undone
too, and only through the kind of connection that read them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest

from seedbed.worker.ledger import purge_run
from tests.integration.test_ledger import Attempt, target  # noqa: F401

pytestmark = pytest.mark.integration

TYPED = (
    "CREATE TABLE things (id integer PRIMARY KEY, name text NOT NULL, price numeric(12, 4),"
    " born date, blob bytea, tags text[], extra jsonb, twice integer GENERATED ALWAYS AS (id * 2) STORED)"
)


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def _snapshot(url: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(_libpq(url)) as conn:
        return conn.execute("SELECT * FROM things ORDER BY id").fetchall()


@pytest.fixture
def things(pg_database: str) -> str:
    with psycopg.connect(_libpq(pg_database)) as conn:
        conn.execute(TYPED)
        conn.execute(
            "INSERT INTO things (id, name, price, born, blob, tags, extra) VALUES"
            " (1, 'one', 1.2345, '2001-02-03', '\\x00ff', '{a,b}', '{\"k\": [1, 2.50]}'),"
            " (2, 'two', 99999999.9999, NULL, NULL, '{}', 'null'),"
            " (3, 'three', 3, '1999-12-31', '\\x01', NULL, '{}')"
        )
    return pg_database


def _rows(ids: range, tag: str) -> list[dict[str, Any]]:
    return [{"id": i, "name": f"{tag} {i}", "price": i / 8, "born": "2020-01-01", "tags": "{x}"} for i in ids]


def test_an_upsert_is_undone_rows_created_deleted_rows_changed_restored(things: str, tmp_path: Path) -> None:
    before = _snapshot(things)
    attempt = Attempt(("postgresql", "postgresql", things), tmp_path, 1)
    # Changes 1 and 2, creates 4..6; then ignore leaves 3 alone and creates 7.
    first = _rows(range(1, 3), "run") + _rows(range(4, 7), "run")
    attempt.ledger.insert(1, "things", first, on_conflict="update", key=["id"])
    second = _rows(range(3, 4), "ign") + _rows(range(7, 8), "ign")
    attempt.ledger.insert(2, "things", second, on_conflict="ignore", key=["id"])
    # A later upsert of the same run changes 4 again: newest first puts 4 back to call 1's, then deletes it.
    attempt.ledger.insert(3, "things", _rows(range(4, 5), "again"), on_conflict="update", key=["id"])
    assert len(_snapshot(things)) == 7

    dry = purge_run(attempt.sink, attempt.seal, dry_run=True)
    assert dry.failure is None and dry.changed == []
    # What it would do, each batch seeing what the newer ones would leave.
    assert [(t.rows_deleted, t.rows_restored, t.batches) for t in dry.tables] == [(4, 3, 3)]
    assert len(_snapshot(things)) == 7  # nothing changed by a dry run

    summary = purge_run(attempt.sink, attempt.seal, dry_run=False)
    assert summary.failure is None and summary.skipped == [] and summary.changed == []
    table = summary.tables[0]
    assert (table.rows_deleted, table.rows_restored, table.rows_changed, table.batches) == (4, 3, 0, 3)
    assert _snapshot(things) == before  # exactly, values and types
    assert purge_run(attempt.sink, attempt.seal, dry_run=False).tables == []  # nothing twice
    attempt.close()


def test_a_row_changed_since_by_someone_else_is_left_alone_and_listed(things: str, tmp_path: Path) -> None:
    attempt = Attempt(("postgresql", "postgresql", things), tmp_path, 1)
    attempt.ledger.insert(1, "things", _rows(range(1, 5), "run"), on_conflict="update", key=["id"])
    with psycopg.connect(_libpq(things)) as conn:
        conn.execute("UPDATE things SET name = 'edited by hand' WHERE id IN (2, 4)")
        conn.execute("DELETE FROM things WHERE id = 3")

    summary = purge_run(attempt.sink, attempt.seal, dry_run=False)
    assert summary.failure is None
    table = summary.tables[0]
    # 1: restored; 2 (changed), 3 (deleted), 4 (created by the run, then changed): left, listed.
    assert (table.rows_deleted, table.rows_restored, table.rows_changed) == (0, 1, 3)
    listed = {(c.key, c.reason.split(" ")[0]) for c in summary.changed}
    assert listed == {("[2]", "changed"), ("[3]", "deleted"), ("[4]", "changed")}
    assert all(c.call == 1 and c.batch == 0 and c.table == "things" for c in summary.changed)
    rows = {r[0]: r[1] for r in _snapshot(things)}
    assert rows == {1: "one", 2: "edited by hand", 4: "edited by hand"}
    attempt.close()


def test_an_upsert_whose_rows_lack_their_key_is_listed_not_purged(things: str, tmp_path: Path) -> None:
    attempt = Attempt(("postgresql", "postgresql", things), tmp_path, 1)
    # ON CONFLICT on a unique column; the key the ledger names rows by is generated by the database.
    with psycopg.connect(_libpq(things)) as conn:
        conn.execute("CREATE TABLE labels (id serial PRIMARY KEY, name text UNIQUE)")
    attempt.ledger.insert(1, "labels", [{"name": "one"}], on_conflict="ignore")
    summary = purge_run(attempt.sink, attempt.seal, dry_run=False)
    assert summary.tables == [] and [s.call for s in summary.skipped] == [1]
    assert "do not carry their key" in summary.skipped[0].reason
    attempt.close()


TYPED_SA = {
    "sqlite": "CREATE TABLE things (id integer PRIMARY KEY, name text NOT NULL, price numeric(12, 4),"
    " born date, payload blob)",
    "mysql": "CREATE TABLE things (id integer PRIMARY KEY, name varchar(100) NOT NULL, price decimal(12, 4),"
    " born date, payload varbinary(20), twice integer AS (id * 2) STORED)",
    "postgresql": "CREATE TABLE things (id integer PRIMARY KEY, name text NOT NULL, price numeric(12, 4),"
    " born date, payload bytea, twice integer GENERATED ALWAYS AS (id * 2) STORED)",
}


@pytest.mark.parametrize("target", ["sql-sqlite", "sql-mysql", "sql-postgresql"], indirect=True)
def test_an_upsert_through_sqlalchemy_is_undone_too(target: tuple[str, str, str], tmp_path: Path) -> None:  # noqa: F811
    attempt = Attempt(target, tmp_path, 1)
    dialect = target[1]
    attempt.ledger.execute(1, TYPED_SA[dialect])
    blob = "'\\x00ff'" if dialect == "postgresql" else "x'00ff'"
    attempt.sink.execute(
        "INSERT INTO things (id, name, price, born, payload) VALUES"
        f" (1, 'one', 1.2345, '2001-02-03', {blob}),"
        " (2, 'two', NULL, NULL, NULL)"
    )
    before = attempt.sink.fetch("SELECT * FROM things ORDER BY id")
    rows = [{"id": i, "name": f"run {i}", "price": i / 8, "born": "2020-01-01"} for i in (1, 2, 3)]
    attempt.ledger.insert(2, "things", rows, on_conflict="update", key=["id"])
    attempt.sink.execute("UPDATE things SET name = 'by hand' WHERE id = 2")

    dry = purge_run(attempt.sink, attempt.seal, dry_run=True)
    assert [(t.rows_deleted, t.rows_restored, t.rows_changed) for t in dry.tables] == [(1, 1, 1)]
    summary = purge_run(attempt.sink, attempt.seal, dry_run=False)
    assert summary.failure is None and [s.operation for s in summary.skipped] == ["execute"]
    assert [(t.rows_deleted, t.rows_restored, t.rows_changed) for t in summary.tables] == [(1, 1, 1)]
    assert [(c.key, c.reason.split(" ")[0]) for c in summary.changed] == [("[2]", "changed")]
    after = attempt.sink.fetch("SELECT * FROM things ORDER BY id")
    assert after[0] == before[0]  # exactly: decimal, date, bytes
    assert [r["id"] for r in after] == [1, 2] and after[1]["name"] == "by hand"
    attempt.close()


def test_an_upsert_is_purged_only_through_the_kind_of_connection_that_read_it(
    pg_database: str, tmp_path: Path
) -> None:
    written = Attempt(("postgresql", "postgresql", pg_database), tmp_path, 1)
    written.ledger.execute(1, "CREATE TABLE items (id integer PRIMARY KEY, name text)")
    written.ledger.insert(2, "items", [{"id": 1, "name": "a"}], on_conflict="update", key=["id"])
    written.close()
    other = Attempt(("sql", "postgresql", pg_database), tmp_path, 2)
    summary = purge_run(other.sink, other.seal, dry_run=False)
    assert [s.call for s in summary.skipped] == [2, 1]
    assert "read through a postgresql connection" in summary.skipped[0].reason
    assert other.count() == 1
    other.close()


@pytest.mark.parametrize("target", ["pg", "sql-postgresql"], indirect=True)
def test_a_row_inserted_by_someone_else_between_the_lock_and_the_upsert_is_not_deleted(
    target: tuple[str, str, str],  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    attempt = Attempt(target, tmp_path, 1)
    attempt.ledger.execute(1, "CREATE TABLE items (id integer PRIMARY KEY, name text)")
    upserts = attempt.ledger._upserts
    read = upserts.rows
    theirs: list[str] = []

    def rows(conn: Any, table: str, columns: list[str], values: Any) -> list[str | None]:
        found = read(conn, table, columns, values)
        if theirs:  # the read before the write: FOR UPDATE cannot lock a row that is not there
            with psycopg.connect(_libpq(target[2]), autocommit=True) as other:
                other.execute("INSERT INTO items (id, name) VALUES (%s, 'theirs')", [theirs.pop()])
        return found

    monkeypatch.setattr(upserts, "rows", rows)
    theirs.append("2")
    attempt.ledger.insert(
        2, "items", [{"id": i, "name": f"run {i}"} for i in (1, 2)], on_conflict="update", key=["id"]
    )
    theirs.append("4")
    attempt.ledger.insert(
        3, "items", [{"id": i, "name": f"ign {i}"} for i in (3, 4)], on_conflict="ignore", key=["id"]
    )
    monkeypatch.undo()
    assert dict(r for r in _items(target[2])) == {1: "run 1", 2: "run 2", 3: "ign 3", 4: "theirs"}

    summary = purge_run(attempt.sink, attempt.seal, dry_run=False)
    assert summary.failure is None
    (table,) = summary.tables
    # 1 and 3: the run's, deleted; 4: the ignore left it as it was; 2: updated from a state nobody read.
    assert (table.rows_deleted, table.rows_restored, table.rows_changed) == (2, 0, 1)
    assert [(c.key, c.reason.split(":")[0]) for c in summary.changed] == [("[2]", "prior unknown")]
    assert dict(r for r in _items(target[2])) == {2: "run 2", 4: "theirs"}
    attempt.close()


def _items(url: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(_libpq(url)) as conn:
        return conn.execute("SELECT id, name FROM items ORDER BY id").fetchall()
