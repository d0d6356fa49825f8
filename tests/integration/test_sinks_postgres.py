"""The PostgreSQL sink against a real server: a fresh database per test (SEEDBED_TEST_PG_URL)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from seedbed.worker.sinks import (
    ConfigurationError,
    ConnectionSpec,
    InvalidRequestError,
    PostgresSink,
    ResultTooLargeError,
    SerializationError,
    SqlAlchemySink,
    TargetError,
    open_sink,
)

pytestmark = pytest.mark.integration

CUSTOMERS = """
CREATE TABLE {name} (
    id integer PRIMARY KEY,
    name text NOT NULL,
    email text UNIQUE,
    age integer,
    score double precision,
    active boolean,
    created date,
    meta jsonb,
    tags jsonb
)"""


def customers(n: int, start: int = 0) -> list[dict[str, Any]]:
    return [
        {
            "id": i,
            "name": f"Customer {i} 'quoted' \"double\" \\ tab\t",
            "email": f"c{i}@example.com",
            "age": 20 + i % 50,
            "score": i / 3,
            "active": i % 2 == 0,
            "created": f"2024-01-{1 + i % 28:02d}",
            "meta": {"tier": "gold" if i % 3 else "silver", "n": i, "nested": {"ok": True}},
            "tags": ["a", i] if i % 4 else None,
        }
        for i in range(start, start + n)
    ]


@pytest.fixture
def pg_url(pg_database: str) -> str:
    return pg_database.replace("postgresql+psycopg://", "postgresql://", 1)


@pytest.fixture
def sink(pg_database: str, tmp_path: Path) -> Iterator[PostgresSink]:
    # The fixture's SQLAlchemy-style URL (postgresql+psycopg://) is accepted as is.
    spec = ConnectionSpec(
        "conn_pg", "postgresql", {"url": pg_database, "batch_size": 5, "copy_batch_size": 7}
    )
    with open_sink(spec, artifacts_dir=tmp_path) as opened:
        assert isinstance(opened, PostgresSink)
        opened.execute(CUSTOMERS.format(name="customers"))
        yield opened


def all_rows(sink: PostgresSink, table: str = "customers") -> list[dict[str, Any]]:
    return sink.fetch(f"SELECT * FROM {table} ORDER BY id")


def test_copy_and_returning_paths_write_the_same_rows(sink: PostgresSink) -> None:
    sink.execute(CUSTOMERS.format(name="customers_b"))
    rows = customers(23)  # 4 COPY batches of 7, 5 INSERT batches of 5

    copied = sink.insert("customers", rows)
    inserted = sink.insert("customers_b", rows, returning=["id", "email"])

    assert copied.count == 23 and copied.rows_returned is None
    assert inserted.count == 23
    assert inserted.rows_returned == [{"id": r["id"], "email": r["email"]} for r in rows]
    assert all_rows(sink) == all_rows(sink, "customers_b")
    first = all_rows(sink)[1]
    assert first["name"] == rows[1]["name"]
    assert first["meta"] == rows[1]["meta"] and first["tags"] == rows[1]["tags"]
    assert first["active"] is False and first["created"].isoformat() == "2024-01-02"


def test_on_conflict_ignore_skips_existing_rows(sink: PostgresSink) -> None:
    sink.insert("customers", customers(3))
    again = [{**r, "name": "changed"} for r in customers(4, start=1)]  # ids 1..4: 1 and 2 exist

    result = sink.insert("customers", again, on_conflict="ignore", key=["id"], returning=["id"])

    assert result.count == 2
    assert result.rows_returned == [{"id": 3}, {"id": 4}]
    names = {r["id"]: r["name"] for r in all_rows(sink)}
    assert names[1] != "changed" and names[3] == "changed"
    # Without a conflict target any unique violation (here: email) is skipped too.
    dup_email = [{**customers(1, start=9)[0], "email": "c1@example.com"}]
    assert sink.insert("customers", dup_email, on_conflict="ignore").count == 0


def test_on_conflict_update_overwrites_non_key_columns(sink: PostgresSink) -> None:
    sink.insert("customers", customers(3))
    again = [{**r, "name": "changed"} for r in customers(4, start=1)]

    result = sink.insert("customers", again, on_conflict="update", key=["id"], returning=["id", "name"])

    assert result.count == 4
    assert result.rows_returned == [{"id": i, "name": "changed"} for i in range(1, 5)]
    assert [r["name"] for r in all_rows(sink)] == [customers(1)[0]["name"], *["changed"] * 4]
    # Only key columns: nothing to update, the rows still count and come back.
    sink.execute("CREATE TABLE tags (tag text PRIMARY KEY)")
    keys_only = sink.insert(
        "tags", [{"tag": "a"}, {"tag": "a2"}], on_conflict="update", key=["tag"], returning=["tag"]
    )
    assert keys_only.count == 2
    assert (
        sink.insert("tags", [{"tag": "a"}], on_conflict="update", key=["tag"], returning=["tag"]).count == 1
    )


@pytest.mark.parametrize("returning", [None, ["id"]], ids=["copy", "insert"])
def test_missing_table_names_the_table_and_the_batch(sink: PostgresSink, returning: list[str] | None) -> None:
    with pytest.raises(TargetError) as caught:
        sink.insert("custmers", customers(3), returning=returning)
    error = caught.value
    assert error.db_message == 'relation "custmers" does not exist'
    assert error.sqlstate == "42P01"
    assert (error.connection_id, error.table, error.batch, error.operation) == (
        "conn_pg",
        "custmers",
        0,
        "insert",
    )
    assert "custmers" in str(error) and "batch 0" in str(error)


@pytest.mark.parametrize("returning", [None, ["id"]], ids=["copy", "insert"])
def test_wrong_column_names_the_column(sink: PostgresSink, returning: list[str] | None) -> None:
    rows = [{"id": 1, "nme": "x"}]
    with pytest.raises(TargetError) as caught:
        sink.insert("customers", rows, returning=returning)
    assert caught.value.db_message == 'column "nme" of relation "customers" does not exist'
    assert caught.value.sqlstate == "42703"


def test_type_error_names_the_batch_and_on_copy_the_row(sink: PostgresSink) -> None:
    rows = customers(24)
    rows[17]["age"] = "abc"

    with pytest.raises(TargetError) as copy_error:
        sink.insert("customers", rows)
    with pytest.raises(TargetError) as insert_error:
        sink.insert("customers", rows, returning=["id"])

    error = copy_error.value
    assert error.db_message == 'invalid input syntax for type integer: "abc"'
    assert error.sqlstate == "22P02"
    assert (error.batch, error.rows, error.row) == (2, (14, 21), 17)
    assert "batch 2 (rows 14-20), at row 17" in str(error)
    error = insert_error.value
    assert error.db_message == 'invalid input syntax for type integer: "abc"'
    assert (error.batch, error.rows) == (3, (15, 20))
    # One call, one transaction: the batches before the failing one are gone too.
    assert all_rows(sink) == []


def test_hostile_identifiers_are_refused_before_reaching_the_database(sink: PostgresSink) -> None:
    sink.execute("CREATE TABLE x (id int)")
    row = [{"id": 1, "name": "a"}]
    attempts: list[dict[str, Any]] = [
        {"table": "customers; DROP TABLE x"},
        {"table": 'customers" ; DROP TABLE x; --'},
        {"table": "a.b.c"},
        {"table": ""},
        {"table": "customers", "rows": [{"id": 1, 'name"); DROP TABLE x; --': "a"}]},
        {"table": "customers", "returning": ["id; DROP TABLE x"]},
        {"table": "customers", "on_conflict": "ignore", "key": ['id") DO NOTHING; DROP TABLE x; --']},
        {"table": "customers", "on_conflict": "update; DROP TABLE x", "key": ["id"]},
    ]
    for attempt in attempts:
        kwargs = {k: v for k, v in attempt.items() if k not in ("table", "rows")}
        with pytest.raises(InvalidRequestError):
            sink.insert(attempt["table"], attempt.get("rows", row), **kwargs)
    assert sink.fetch("SELECT count(*) AS n FROM x") == [{"n": 0}]


def test_identifiers_are_quoted_case_and_schema_preserved(sink: PostgresSink) -> None:
    sink.execute('CREATE SCHEMA "Sales"')
    sink.execute('CREATE TABLE "Sales"."Customers" ("Id" int PRIMARY KEY, "select" text)')

    result = sink.insert("Sales.Customers", [{"Id": 1, "select": "reserved word"}], returning=["Id"])
    sink.insert("Sales.Customers", [{"Id": 2, "select": "copy path"}])

    assert result.rows_returned == [{"Id": 1}]
    assert sink.fetch("Sales.Customers") == [
        {"Id": 1, "select": "reserved word"},
        {"Id": 2, "select": "copy path"},
    ]
    with pytest.raises(TargetError) as caught:
        sink.insert("sales.customers", [{"Id": 3, "select": "x"}])
    assert caught.value.db_message == 'schema "sales" does not exist'  # quoted: no case folding


def test_a_value_that_cannot_be_serialised_names_row_and_field(sink: PostgresSink) -> None:
    rows = customers(5)
    rows[3]["created"] = datetime(2024, 1, 1)
    with pytest.raises(SerializationError) as caught:
        sink.insert("customers", rows)
    assert (caught.value.row, caught.value.field, caught.value.type_name) == (3, "created", "datetime")
    assert "row 3, field 'created'" in str(caught.value)

    rows = customers(5)
    rows[2]["meta"] = {"when": datetime(2024, 1, 1)}
    with pytest.raises(SerializationError) as caught:
        sink.insert("customers", rows)
    assert (caught.value.row, caught.value.field) == (2, "meta")

    rows = customers(5)
    rows[4]["name"] = "nul\x00byte"
    with pytest.raises(SerializationError) as caught:
        sink.insert("customers", rows)
    assert (caught.value.row, caught.value.field) == (4, "name")
    assert "NUL" in str(caught.value)
    assert all_rows(sink) == []


def test_rows_must_share_one_shape(sink: PostgresSink) -> None:
    rows = customers(4)
    del rows[2]["email"]
    rows[2]["mail"] = "x"
    with pytest.raises(InvalidRequestError, match=r"row 2 has different fields.*missing \['email'\].*'mail'"):
        sink.insert("customers", rows)


def test_fetch_is_capped_by_rows_and_bytes(pg_url: str, tmp_path: Path) -> None:
    spec = ConnectionSpec(
        "conn_pg", "postgresql", {"url": pg_url, "fetch_max_rows": 20, "fetch_max_bytes": 3000}
    )
    with PostgresSink(spec) as sink:
        sink.execute(CUSTOMERS.format(name="customers"))
        sink.insert("customers", customers(30))

        assert len(sink.fetch("SELECT id FROM customers ORDER BY id LIMIT 20")) == 20
        assert sink.fetch("SELECT id FROM customers WHERE id < %s ORDER BY id", [3]) == [
            {"id": 0},
            {"id": 1},
            {"id": 2},
        ]
        assert len(sink.fetch("SELECT id FROM customers WHERE id < %(n)s", {"n": 20})) == 20
        # An explicit limit on a table means its first rows; without one, past the cap is an error.
        assert len(sink.fetch("customers", limit=5)) == 5
        with pytest.raises(ResultTooLargeError) as caught:
            sink.fetch("customers")  # whichever cap it passes first: 20 rows or 3000 bytes
        assert (caught.value.limit_kind, caught.value.limit) in (("rows", 20), ("bytes", 3000))
        assert "table customers returned more than" in str(caught.value)
        with pytest.raises(ResultTooLargeError):
            sink.fetch("SELECT id FROM customers")  # 30 > fetch_max_rows
        with pytest.raises(ResultTooLargeError) as caught:
            sink.fetch("SELECT * FROM customers WHERE id < 15")  # ~280 bytes a row: > 3000
        assert caught.value.limit_kind == "bytes"
        with pytest.raises(InvalidRequestError, match="above this connection's fetch_max_rows"):
            sink.fetch("customers", limit=21)
        # The connection stays usable after a capped read.
        assert sink.fetch("SELECT count(*) AS n FROM customers") == [{"n": 30}]


def test_fetch_is_read_only_and_execute_commits(sink: PostgresSink) -> None:
    sink.insert("customers", customers(3))
    with pytest.raises(TargetError) as caught:
        sink.fetch("DELETE FROM customers RETURNING id")
    assert caught.value.sqlstate == "25006"  # read_only_sql_transaction
    assert caught.value.operation == "fetch"

    assert sink.execute("UPDATE customers SET name = %s WHERE id < %s", ["x", 2]) == 2
    assert sink.fetch("SELECT count(*) AS n FROM customers WHERE name = 'x'") == [{"n": 2}]
    with pytest.raises(TargetError) as caught:
        sink.execute("UPDATE customers SET nme = 1")
    assert caught.value.sqlstate == "42703" and caught.value.operation == "execute"
    assert sink.execute("DELETE FROM customers") == 3


def test_in_transaction_hook_commits_and_rolls_back_with_the_rows(sink: PostgresSink) -> None:
    sink.execute("CREATE TABLE ledger (key text PRIMARY KEY)")
    sink.execute("ALTER TABLE customers ADD CONSTRAINT one_name UNIQUE (name) DEFERRABLE INITIALLY DEFERRED")

    def ledger(key: str) -> Any:
        def hook(conn: psycopg.Connection[Any], _result: Any) -> None:
            conn.execute("INSERT INTO ledger (key) VALUES (%s)", [key])

        return hook

    sink.insert("customers", customers(2), in_transaction=ledger("ok"))

    # A failing batch: the hook does not run, nothing is written.
    bad = customers(2, start=10)
    bad[1]["age"] = "abc"
    with pytest.raises(TargetError):
        sink.insert("customers", bad, in_transaction=ledger("bad-batch"))

    # The hook fails after the rows were written: they go too.
    with pytest.raises(TargetError) as caught:
        sink.insert("customers", customers(2, start=20), in_transaction=ledger("ok"))  # duplicate key
    assert caught.value.sqlstate == "23505"

    # The COMMIT itself is refused (a deferred constraint): rows and ledger row both roll back, and the
    # outcome is not ambiguous.
    clash = [{**customers(1, start=30)[0], "name": customers(1)[0]["name"]}]
    with pytest.raises(TargetError) as caught:
        sink.insert("customers", clash, returning=["id"], in_transaction=ledger("deferred"))
    assert caught.value.operation == "commit" and not caught.value.ambiguous

    # An exception of the caller's own passes through unchanged, after the rollback.
    def boom(conn: psycopg.Connection[Any], _result: Any) -> None:
        conn.execute("INSERT INTO ledger (key) VALUES ('boom')")
        raise KeyError("caller's own")

    with pytest.raises(KeyError):
        sink.insert("customers", customers(2, start=40), in_transaction=boom)

    assert [r["id"] for r in all_rows(sink)] == [0, 1]
    assert sink.fetch("SELECT key FROM ledger") == [{"key": "ok"}]


def test_empty_rows_write_nothing_but_still_run_the_hook(sink: PostgresSink) -> None:
    assert sink.insert("customers", []).count == 0
    assert sink.insert("customers", [], returning=["id"]).rows_returned == []
    seen: list[bool] = []
    sink.insert("customers", [], in_transaction=lambda conn, _result: seen.append(not conn.closed))
    assert seen == [True]


def test_a_broken_connection_fails_one_call_then_reconnects(sink: PostgresSink, pg_url: str) -> None:
    sink.insert("customers", customers(1))
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = 'seedbed' AND datname = current_database()"
        )
    with pytest.raises(TargetError) as caught:
        sink.insert("customers", customers(1, start=1))
    assert not caught.value.ambiguous
    sink.insert("customers", customers(1, start=2))
    assert [r["id"] for r in all_rows(sink)] == [0, 2]


def test_a_connection_lost_at_commit_is_reported_as_ambiguous(sink: PostgresSink, pg_url: str) -> None:
    def lose_the_connection(conn: psycopg.Connection[Any], _result: Any) -> None:
        with psycopg.connect(pg_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s, 5000)", [conn.info.backend_pid])

    with pytest.raises(TargetError) as caught:
        sink.insert("customers", customers(2), in_transaction=lose_the_connection)
    assert caught.value.operation == "commit" and caught.value.ambiguous
    assert "check the target before writing again" in str(caught.value)
    assert all_rows(sink) == []  # reconnected; here the server had rolled back


def test_execute_hook_rolls_back_the_statement(sink: PostgresSink) -> None:
    sink.insert("customers", customers(3))

    def refuse(conn: psycopg.Connection[Any], _count: int) -> None:
        raise RuntimeError("ledger says no")

    with pytest.raises(RuntimeError):
        sink.execute("DELETE FROM customers", in_transaction=refuse)
    assert len(all_rows(sink)) == 3


def test_a_password_option_needs_no_url_escaping(pg_url: str, tmp_path: Path) -> None:
    role, password = f"seedbed_t_{secrets.token_hex(4)}", "p@ss:w/rd%?#"
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(role), password))
    try:
        host_and_db = pg_url.partition("@")[2]
        for kind, url in [
            ("postgresql", f"postgresql://{role}@{host_and_db}"),
            ("sql", f"postgresql+psycopg://{role}@{host_and_db}"),
        ]:
            spec = ConnectionSpec("conn_pg", kind, {"url": url, "password": password})  # type: ignore[arg-type]
            with open_sink(spec, artifacts_dir=tmp_path) as sink:
                assert isinstance(sink, PostgresSink | SqlAlchemySink)
                assert sink.fetch("SELECT current_user AS me") == [{"me": role}]
            wrong = ConnectionSpec("conn_pg", kind, {"url": url, "password": password + "x"})  # type: ignore[arg-type]
            with open_sink(wrong, artifacts_dir=tmp_path) as sink, pytest.raises(TargetError) as caught:
                assert isinstance(sink, PostgresSink | SqlAlchemySink)
                sink.fetch("SELECT 1")
            assert "password authentication failed" in caught.value.db_message
            assert "p@ss" not in str(caught.value)
    finally:
        with psycopg.connect(pg_url, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def test_errors_and_reprs_never_show_the_password(pg_url: str, tmp_path: Path) -> None:
    user, _, host_and_db = pg_url.removeprefix("postgresql://").partition("@")
    wrong = f"postgresql://{user.partition(':')[0]}:s3cret-Passw0rd@{host_and_db}"
    spec = ConnectionSpec("conn_pg", "postgresql", {"url": wrong})
    sink = open_sink(spec, artifacts_dir=tmp_path)
    with pytest.raises(TargetError) as caught:
        sink.fetch("SELECT 1")
    assert caught.value.operation == "connect"
    assert "password authentication failed" in caught.value.db_message
    for text in (str(caught.value), repr(caught.value), repr(spec), repr(sink), repr(sink.settings)):
        assert "s3cret" not in text
    sink.close()

    with pytest.raises(ConfigurationError) as bad:
        open_sink(
            ConnectionSpec("conn_pg", "postgresql", {"url": "postgresql://u:s3cret@[::1/db"}),
            artifacts_dir=tmp_path,
        )
    assert "s3cret" not in str(bad.value)
    with pytest.raises(ConfigurationError, match="postgresql:// URL"):
        open_sink(
            ConnectionSpec("conn_pg", "postgresql", {"url": "mysql://u:p@h/db"}), artifacts_dir=tmp_path
        )
    with pytest.raises(ConfigurationError, match="unknown option 'batchsize'"):
        open_sink(
            ConnectionSpec("conn_pg", "postgresql", {"url": pg_url, "batchsize": 10}), artifacts_dir=tmp_path
        )
