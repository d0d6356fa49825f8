"""The SQL sink (SQLAlchemy Core) against real databases: a SQLite file, PostgreSQL through
SQLAlchemy's psycopg dialect (SEEDBED_TEST_PG_URL), and MySQL/MariaDB from SEEDBED_TEST_MYSQL_URL (an
account that may create databases, e.g. `mysql+pymysql://seedbed_test:seedbed_test@127.0.0.1:3306/`);
each test gets a fresh database."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from seedbed.worker.sinks import (
    ConfigurationError,
    ConnectionSpec,
    InvalidRequestError,
    ResultTooLargeError,
    SerializationError,
    SqlAlchemySink,
    TargetError,
    open_sink,
)

pytestmark = pytest.mark.integration

DDL = {
    "sqlite": """CREATE TABLE customers (
        id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT UNIQUE, age INTEGER, score REAL,
        active INTEGER, created TEXT, meta TEXT) STRICT""",
    "postgresql": """CREATE TABLE customers (
        id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT UNIQUE, age INTEGER, score DOUBLE PRECISION,
        active BOOLEAN, created DATE, meta TEXT)""",
    "mysql": """CREATE TABLE customers (
        id INTEGER PRIMARY KEY, name VARCHAR(200) NOT NULL, email VARCHAR(200) UNIQUE, age INTEGER,
        score DOUBLE, active BOOLEAN, created DATE, meta JSON)""",
}


def customers(n: int, start: int = 0) -> list[dict[str, Any]]:
    return [
        {
            "id": i,
            "name": f"Customer {i} 'quoted' \"double\" \\",
            "email": f"c{i}@example.com",
            "age": 20 + i % 50,
            "score": i / 4,
            "active": i % 2 == 0,
            "created": f"2024-01-{1 + i % 28:02d}",
            "meta": {"tier": "gold", "n": i} if i % 3 else None,
        }
        for i in range(start, start + n)
    ]


@pytest.fixture(params=["sqlite", "mysql", "postgresql"])
def dialect_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    if request.param == "sqlite":
        yield "sqlite", f"sqlite:///{tmp_path / 'target.db'}"
        return
    if request.param == "postgresql":
        yield "postgresql", request.getfixturevalue("pg_database")
        return
    yield "mysql", request.getfixturevalue("mysql_database")


@pytest.fixture
def sink(dialect_url: tuple[str, str], tmp_path: Path) -> Iterator[SqlAlchemySink]:
    dialect, url = dialect_url
    spec = ConnectionSpec("conn_sql", "sql", {"url": url, "batch_size": 5})
    with open_sink(spec, artifacts_dir=tmp_path) as opened:
        assert isinstance(opened, SqlAlchemySink)
        opened.execute(DDL[dialect])
        yield opened


def dialect_of(sink: SqlAlchemySink) -> str:
    return sink.settings.url.partition(":")[0].partition("+")[0]


def all_rows(sink: SqlAlchemySink, table: str = "customers") -> list[dict[str, Any]]:
    return sink.fetch(f"SELECT * FROM {table} ORDER BY id")


def test_plain_and_returning_inserts_write_the_same_rows(sink: SqlAlchemySink) -> None:
    sink.execute(DDL[dialect_of(sink)].replace("customers", "customers_b", 1))
    rows = customers(23)  # 5 batches of 5

    plain = sink.insert("customers", rows)
    returned = sink.insert("customers_b", rows, returning=["id", "email"])

    assert plain.count == 23 and plain.rows_returned is None
    assert returned.count == 23
    assert returned.rows_returned == [{"id": r["id"], "email": r["email"]} for r in rows]
    assert all_rows(sink) == all_rows(sink, "customers_b")
    first = all_rows(sink)[1]
    assert first["name"] == rows[1]["name"]
    assert json.loads(first["meta"]) == rows[1]["meta"]


def test_on_conflict_ignore_and_update(sink: SqlAlchemySink) -> None:
    sink.insert("customers", customers(3))
    again = [{**r, "name": "changed"} for r in customers(4, start=1)]  # ids 1..4: 1 and 2 exist

    ignored = sink.insert("customers", again, on_conflict="ignore", key=["id"])
    names = {r["id"]: r["name"] for r in all_rows(sink)}
    assert names[1] != "changed" and names[3] == "changed" and len(names) == 5
    # MySQL counts "found" rows: a skipped duplicate counts 1 there.
    assert ignored.count == (4 if dialect_of(sink) == "mysql" else 2)

    again = [{**r, "name": "again"} for r in customers(4, start=2)]  # ids 2..5: 2, 3, 4 exist
    updated = sink.insert("customers", again, on_conflict="update", key=["id"], returning=["id", "name"])
    assert updated.rows_returned is not None
    assert sorted(r["id"] for r in updated.rows_returned) == [2, 3, 4, 5]
    assert [r["name"] for r in all_rows(sink)][2:] == ["again"] * 4


def test_ignore_skips_duplicates_only(sink: SqlAlchemySink) -> None:
    # MySQL's INSERT IGNORE would write '' for a NULL name; the sink's no-op update lets the error through.
    sink.insert("customers", customers(1))
    row = {**customers(1, start=1)[0], "name": None}
    with pytest.raises(TargetError) as caught:
        sink.insert("customers", [row], on_conflict="ignore", key=["id"])
    assert "name" in caught.value.db_message and "null" in caught.value.db_message.lower()


def test_missing_table_and_wrong_column(sink: SqlAlchemySink) -> None:
    with pytest.raises(TargetError) as caught:
        sink.insert("custmers", customers(2))
    assert caught.value.db_message == "table custmers does not exist"
    assert (caught.value.connection_id, caught.value.table, caught.value.operation) == (
        "conn_sql",
        "custmers",
        "insert",
    )
    rows = [{"id": 1, "nme": "x"}]
    with pytest.raises(TargetError) as caught:
        sink.insert("customers", rows)
    assert caught.value.db_message.startswith("table customers has no column 'nme' (its columns: id, name,")
    with pytest.raises(TargetError, match="has no column 'idx'"):
        sink.insert("customers", customers(1), returning=["idx"])


def test_type_error_carries_the_databases_message_and_the_batch(sink: SqlAlchemySink) -> None:
    rows = customers(12)
    rows[7]["age"] = "abc"
    with pytest.raises(TargetError) as caught:
        sink.insert("customers", rows)
    error = caught.value
    assert (error.table, error.batch, error.rows) == ("customers", 1, (5, 10))
    if dialect_of(sink) == "sqlite":
        assert error.db_message == "cannot store TEXT value in INTEGER column customers.age"
        assert error.db_code in ("SQLITE_CONSTRAINT_DATATYPE", "3091")  # name or number
    elif dialect_of(sink) == "postgresql":
        assert error.db_message == 'invalid input syntax for type integer: "abc"'
        assert error.sqlstate == "22P02"
    else:
        assert error.db_message.startswith("Incorrect integer value: 'abc' for column")
        assert (error.db_code, error.sqlstate) == ("1366", "22007")
    assert all_rows(sink) == []  # the first batch rolled back with the call


def test_hostile_identifiers_are_refused(sink: SqlAlchemySink) -> None:
    for table, extra in [
        ("customers; DROP TABLE customers", {}),
        ('customers"', {}),
        ("customers`; DROP TABLE customers; --", {}),
        ("customers", {"returning": ["id; DROP TABLE customers"]}),
        ("customers", {"on_conflict": "ignore", "key": ["id) DO NOTHING; --"]}),
    ]:
        with pytest.raises(InvalidRequestError):
            sink.insert(table, customers(1), **extra)
    with pytest.raises(InvalidRequestError):
        sink.insert("customers", [{"id": 1, "name`) VALUES (1); DROP TABLE customers; --": "x"}])
    assert all_rows(sink) == []


def test_a_value_that_cannot_be_serialised_names_row_and_field(sink: SqlAlchemySink) -> None:
    rows = customers(4)
    rows[2]["created"] = datetime(2024, 1, 1)
    with pytest.raises(SerializationError) as caught:
        sink.insert("customers", rows)
    assert (caught.value.row, caught.value.field, caught.value.type_name) == (2, "created", "datetime")


def test_fetch_limits_and_params(dialect_url: tuple[str, str], tmp_path: Path) -> None:
    dialect, url = dialect_url
    spec = ConnectionSpec("conn_sql", "sql", {"url": url, "fetch_max_rows": 20, "fetch_max_bytes": 3000})
    with SqlAlchemySink(spec) as sink:
        sink.execute(DDL[dialect])
        sink.insert("customers", customers(30))
        assert sink.fetch("SELECT id FROM customers WHERE id < :n ORDER BY id", {"n": 3}) == [
            {"id": 0},
            {"id": 1},
            {"id": 2},
        ]
        # An explicit limit on a table means its first rows; without one, past the cap is an error.
        assert len(sink.fetch("customers", limit=5)) == 5
        with pytest.raises(ResultTooLargeError) as caught:
            sink.fetch("customers")  # whichever cap it passes first: 20 rows or 3000 bytes
        assert (caught.value.limit_kind, caught.value.limit) in (("rows", 20), ("bytes", 3000))
        with pytest.raises(ResultTooLargeError):
            sink.fetch("SELECT id FROM customers")
        with pytest.raises(ResultTooLargeError) as caught:
            sink.fetch("SELECT * FROM customers WHERE id < 20")
        assert caught.value.limit_kind == "bytes"
        with pytest.raises(InvalidRequestError, match="named parameters"):
            sink.fetch("SELECT id FROM customers WHERE id < ?", [3])
        with pytest.raises(TargetError) as error:
            sink.fetch("SELECT * FROM nothere")
        assert error.value.operation == "fetch" and "nothere" in error.value.db_message
        assert sink.fetch("SELECT count(*) AS n FROM customers") == [{"n": 30}]


def test_execute_counts_and_commits(sink: SqlAlchemySink) -> None:
    sink.insert("customers", customers(3))
    assert sink.execute("UPDATE customers SET name = :n WHERE id < :i", {"n": "x", "i": 2}) == 2
    assert sink.fetch("SELECT count(*) AS n FROM customers WHERE name = 'x'") == [{"n": 2}]
    with pytest.raises(TargetError) as caught:
        sink.execute("UPDATE customers SET nme = 1")
    assert caught.value.operation == "execute"


def test_in_transaction_hook_commits_and_rolls_back_with_the_rows(sink: SqlAlchemySink) -> None:
    sink.execute("CREATE TABLE ledger (k VARCHAR(50) PRIMARY KEY)")

    def ledger(key: str) -> Any:
        def hook(conn: sa.Connection, _result: Any) -> None:
            conn.execute(sa.text("INSERT INTO ledger (k) VALUES (:k)"), {"k": key})

        return hook

    sink.insert("customers", customers(2), in_transaction=ledger("ok"))
    bad = customers(2, start=10)
    bad[1]["age"] = "abc"
    with pytest.raises(TargetError):
        sink.insert("customers", bad, in_transaction=ledger("bad-batch"))
    with pytest.raises(TargetError) as caught:
        sink.insert("customers", customers(2, start=20), in_transaction=ledger("ok"))  # duplicate key
    assert caught.value.table == "customers" and caught.value.batch is None

    def boom(conn: sa.Connection, _result: Any) -> None:
        conn.execute(sa.text("INSERT INTO ledger (k) VALUES ('boom')"))
        raise KeyError("caller's own")

    with pytest.raises(KeyError):
        sink.insert("customers", customers(2, start=40), in_transaction=boom)
    assert [r["id"] for r in all_rows(sink)] == [0, 1]
    assert sink.fetch("SELECT k FROM ledger") == [{"k": "ok"}]


def test_configuration_errors_never_show_the_password(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as caught:
        open_sink(ConnectionSpec("conn_sql", "sql", {"url": "not a url s3cret"}), artifacts_dir=tmp_path)
    assert "s3cret" not in str(caught.value)
    with pytest.raises(ConfigurationError, match="no SQLAlchemy dialect or driver") as caught:
        open_sink(
            ConnectionSpec("conn_sql", "sql", {"url": "nosuchdb+driver://u:s3cret@h/db"}),
            artifacts_dir=tmp_path,
        )
    assert "s3cret" not in str(caught.value)
    sink = open_sink(
        ConnectionSpec("conn_sql", "sql", {"url": "mysql+pymysql://u:s3cret@127.0.0.1:1/db"}),
        artifacts_dir=tmp_path,
    )
    with pytest.raises(TargetError) as error:
        sink.fetch("SELECT 1")
    assert error.value.operation == "connect" and "s3cret" not in str(error.value)
    assert "s3cret" not in repr(sink) + repr(sink.settings)
    sink.close()


def test_on_conflict_on_sqlite_without_key_ignores_any_conflict(tmp_path: Path) -> None:
    spec = ConnectionSpec("conn_sql", "sql", {"url": f"sqlite:///{tmp_path / 'x.db'}"})
    with SqlAlchemySink(spec) as sink:
        sink.execute(DDL["sqlite"])
        sink.insert("customers", customers(2))
        assert sink.insert("customers", customers(3), on_conflict="ignore").count == 1
