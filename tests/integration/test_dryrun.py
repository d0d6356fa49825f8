"""Dry runs against real targets through the agent (no sandbox): every write intercepted and
checked against the live schema, nothing written — not the rows, not the ledger table — and the
real run afterwards writes what the dry run reported."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pymysql
import pytest
import sqlalchemy as sa

from seedbed.api.v1 import attempt_pb2, connection_pb2, dryrun_pb2
from seedbed.worker import templates
from seedbed.worker.agent import Agent, AgentError
from tests.conftest import ROOT, scratch_pg
from tests.faults.rest_target import RestTarget

pytestmark = pytest.mark.integration

SHOP = ROOT / "examples" / "shop"
PROBLEMS = """
CREATE TABLE parents (id INTEGER PRIMARY KEY, code VARCHAR(5) NOT NULL UNIQUE);
CREATE TABLE items (
    id INTEGER PRIMARY KEY,
    parent_id INTEGER NOT NULL REFERENCES parents (id),
    label VARCHAR(5) NOT NULL,
    price NUMERIC(4, 2) NOT NULL,
    qty INTEGER NOT NULL CHECK (qty > 0),
    state TEXT NOT NULL DEFAULT 'new' CHECK (state IN ('new', 'old')),
    made DATE,
    note TEXT CHECK (note ~ '^[a-z]*$')
);
INSERT INTO parents VALUES (1, 'p1'), (2, 'p2');
INSERT INTO items (id, parent_id, label, price, qty, made) VALUES (10, 1, 'old', 1.5, 1, '2024-01-01');
"""


def _snapshot(path: Path) -> attempt_pb2.TemplateSnapshot:
    doc = templates.parse_template(path.read_text()).to_json()
    return attempt_pb2.TemplateSnapshot(id=doc["id"], canonical_json=json.dumps(doc), revision=1)


def _agent(
    tmp_path: Path, *, dry_run: bool, run_key: str = "rk-dry", memory: int = 0, **connections: Any
) -> Agent:
    snapshots = []
    for name, target in connections.items():
        if isinstance(target, RestTarget):
            snapshots.append(
                attempt_pb2.ConnectionSnapshot(
                    id=name,
                    kind=connection_pb2.CONNECTION_KIND_REST,
                    rest=connection_pb2.RestOptions(base_url=target.url, idempotent=True, batch_size=2),
                )
            )
        else:
            kind = (
                connection_pb2.CONNECTION_KIND_POSTGRESQL
                if target.startswith("postgresql")
                else (connection_pb2.CONNECTION_KIND_SQL)
            )
            snapshots.append(attempt_pb2.ConnectionSnapshot(id=name, kind=kind, url=target))
    spec = attempt_pb2.AttemptSpec(
        run_id="run_dry",
        attempt=1,
        run_key=run_key,
        dry_run=dry_run,
        ledger_key=b"k" * 32,
        templates=[_snapshot(SHOP / "customer.yaml"), _snapshot(SHOP / "order.yaml")],
        connections=snapshots,
        data_limits=attempt_pb2.DataLimits(agent_memory_bytes=memory),
    )
    return Agent(spec, artifacts_dir=tmp_path / "artifacts")


def _report(agent: Agent) -> dryrun_pb2.DryRunReport:
    assert agent.dry_run is not None
    return agent.dry_run.to_proto()


def _tables(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()
    return {r[0] for r in rows}


def _count(url: str, table: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
    assert row is not None
    return int(row[0])


def _seed_shop(agent: Agent, customers: int, orders: int) -> None:
    """The shop seed's writes, as the SDK sends them: row sets that never enter the sandbox, orders
    picking real customer ids."""
    made = agent("generate", {"template_id": "tmpl_customer", "count": customers})
    agent("insert", {"connection_id": "conn_shop", "table": "customers", "rows": {"$rows": made["$rows"]}})
    picks = {"$pick": {"values": {"$column": {"rows": made["$rows"], "field": "id"}}}}
    order_set = agent(
        "generate", {"template_id": "tmpl_order", "count": orders, "overrides": {"customer_id": picks}}
    )
    agent("insert", {"connection_id": "conn_shop", "table": "orders", "rows": {"$rows": order_set["$rows"]}})


@pytest.fixture
def shop_pg() -> Iterator[str]:
    with scratch_pg((SHOP / "schema.sql").read_text(), "seedbed_dry") as url:
        yield url


def test_a_clean_shop_dry_run_reports_rows_per_target_and_writes_nothing(
    tmp_path: Path, shop_pg: str
) -> None:
    agent = _agent(tmp_path, dry_run=True, conn_shop=shop_pg)
    try:
        _seed_shop(agent, 100, 500)
        assert agent(
            "fetch", {"connection_id": "conn_shop", "query": "SELECT count(*) AS n FROM customers"}
        ) == [{"n": 0}]  # reads read the real target
        assert agent.drain_batches() == []  # no write batch to report
        report = _report(agent)
    finally:
        agent.close()
    assert [(t.connection_id, t.operation, t.target, t.rows, t.rows_checked) for t in report.targets] == [
        ("conn_shop", "insert", "customers", 100, 100),
        ("conn_shop", "insert", "orders", 500, 500),
    ]
    assert report.problem_count == 0, report
    assert _tables(shop_pg) == {"customers", "orders"}  # no seedbed_ledger
    assert _count(shop_pg, "customers") == _count(shop_pg, "orders") == 0

    # The real run afterwards (same run key) writes exactly what the dry run reported.
    real = _agent(tmp_path, dry_run=False, conn_shop=shop_pg)
    try:
        _seed_shop(real, 100, 500)
    finally:
        real.close()
    assert {t.target: t.rows for t in report.targets} == {
        "customers": _count(shop_pg, "customers"),
        "orders": _count(shop_pg, "orders"),
    }
    # Now the same dry run finds every key already there.
    again = _agent(tmp_path, dry_run=True, conn_shop=shop_pg)
    try:
        _seed_shop(again, 100, 500)
        second = _report(again)
    finally:
        again.close()
    kinds = {p.kind for t in second.targets for p in t.problems}
    assert kinds == {dryrun_pb2.DRY_RUN_PROBLEM_KIND_DUPLICATE_KEY}
    assert second.targets[0].problem_count == 200  # 100 ids and 100 e-mails
    assert second.targets[0].problems[0].row == 0


def test_a_dry_run_into_a_table_that_does_not_exist_reports_it_and_writes_nothing(tmp_path: Path) -> None:
    with scratch_pg("", "seedbed_dry") as url:
        agent = _agent(tmp_path, dry_run=True, conn_shop=url)
        try:
            made = agent("generate", {"template_id": "tmpl_customer", "count": 20})
            agent(
                "insert",
                {"connection_id": "conn_shop", "table": "customers", "rows": {"$rows": made["$rows"]}},
            )
            # A statement is not run: the table it would create stays missing.
            agent("execute", {"connection_id": "conn_shop", "sql": "CREATE TABLE made_here (id int)"})
            rows = [{"id": 1}, {"id": 2}]
            assert agent("insert", {"connection_id": "conn_shop", "table": "made_here", "rows": rows}) == {
                "count": 2
            }
            report = _report(agent)
        finally:
            agent.close()
        assert _tables(url) == set()  # no table, no ledger table
    by_target = {t.target: t for t in report.targets}
    missing = by_target["customers"]
    assert missing.rows == 20 and missing.problem_count == 1
    assert missing.problems[0].kind == dryrun_pb2.DRY_RUN_PROBLEM_KIND_MISSING_TABLE
    assert missing.problems[0].row == -1 and "customers does not exist" in missing.problems[0].message
    statement = by_target["CREATE TABLE made_here (id int)"]
    assert statement.operation == "execute" and "not run" in statement.unchecked[0]
    assert by_target["made_here"].problems[0].kind == dryrun_pb2.DRY_RUN_PROBLEM_KIND_MISSING_TABLE


def _problem_rows() -> list[dict[str, Any]]:
    ok = {
        "parent_id": 1,
        "label": "a",
        "price": "9.99",
        "qty": 2,
        "state": "new",
        "made": "2024-05-01",
        "note": "ok",
    }
    return [
        {"id": 1, **ok},
        {"id": 2, **ok, "label": "too long"},  # varchar(5)
        {"id": 3, **ok, "price": 123.45},  # numeric(4,2)
        {"id": 4, **ok, "made": "yesterday"},  # not a date
        {"id": 5, **ok, "qty": None},  # NOT NULL
        {"id": 6, **ok, "qty": 0},  # CHECK (qty > 0)
        {"id": 7, **ok, "state": "gone"},  # CHECK (state IN ...)
        {"id": 8, **ok, "parent_id": 99},  # FK dangles
        {"id": 1, **ok},  # duplicate within the run
        {"id": 10, **ok},  # duplicate of the existing row
        {"id": 11, **ok, "colour": "red"},  # no such column
    ]


EXPECTED = [
    ("MISSING_COLUMN", 10, "colour"),
    ("TYPE_MISMATCH", 1, "label"),
    ("TYPE_MISMATCH", 2, "price"),
    ("TYPE_MISMATCH", 3, "made"),
    ("NOT_NULL", 4, "qty"),
    ("CHECK", 5, "qty"),
    ("CHECK", 6, "state"),
    ("DUPLICATE_KEY", 8, "id"),
    ("DUPLICATE_KEY", 9, "id"),
    ("FOREIGN_KEY", 7, "parent_id"),
]


def _kinds(report: dryrun_pb2.DryRunReport) -> list[tuple[str, int, str]]:
    return [
        (dryrun_pb2.DryRunProblemKind.Name(p.kind).removeprefix("DRY_RUN_PROBLEM_KIND_"), p.row, p.field)
        for t in report.targets
        for p in t.problems
    ]


def test_each_problem_kind_against_postgresql(tmp_path: Path) -> None:
    with scratch_pg(PROBLEMS, "seedbed_dry") as url:
        agent = _agent(tmp_path, dry_run=True, conn_db=url)
        try:
            answer = agent("insert", {"connection_id": "conn_db", "table": "items", "rows": _problem_rows()})
            report = _report(agent)
            result = attempt_pb2.AttemptResult(outcome=attempt_pb2.ATTEMPT_OUTCOME_SUCCEEDED)
            assert agent.dry_run is not None
            agent.dry_run.finish(result)
        finally:
            agent.close()
        assert _count(url, "items") == 1 and "seedbed_ledger" not in _tables(url)
    assert answer == {"count": 11}
    assert _kinds(report) == EXPECTED
    target = report.targets[0]
    assert target.rows == 11 and target.problem_count == len(EXPECTED)
    # A regular expression check is not evaluated, and the report says so.
    assert any("note" in u and "not evaluated" in u for u in target.unchecked)
    assert next(p for p in target.problems if p.field == "price").value == "123.45"
    # A dry run that found problems ends FAILED, naming the first.
    assert result.outcome == attempt_pb2.ATTEMPT_OUTCOME_SCRIPT_ERROR
    assert result.error.type == "DryRunProblems" and "10 problem(s)" in result.error.message
    assert result.dry_run_report == report


def test_each_problem_kind_against_mariadb(tmp_path: Path, mysql_database: str) -> None:
    schema = PROBLEMS.replace("TEXT NOT NULL DEFAULT 'new'", "VARCHAR(10) NOT NULL DEFAULT 'new'")
    schema = schema.replace("CHECK (note ~ '^[a-z]*$')", "CHECK (note REGEXP '^[a-z]*$')")
    engine = sa.create_engine(mysql_database)
    with engine.begin() as conn:
        for statement in schema.split(";"):
            if statement.strip():
                conn.exec_driver_sql(statement)
    engine.dispose()
    agent = _agent(tmp_path, dry_run=True, conn_db=mysql_database)
    try:
        agent("insert", {"connection_id": "conn_db", "table": "items", "rows": _problem_rows()})
        report = _report(agent)
    finally:
        agent.close()
    url = sa.make_url(mysql_database)
    conn = pymysql.connect(
        host=url.host, port=url.port or 3306, user=url.username, password=url.password or ""
    )
    try:
        cursor = conn.cursor()
        cursor.execute(
            f"SELECT table_name FROM information_schema.tables WHERE table_schema = '{url.database}'"
        )
        assert {r[0] for r in cursor.fetchall()} == {"parents", "items"}  # no ledger table
        cursor.execute(f"SELECT count(*) FROM `{url.database}`.items")
        assert cursor.fetchone() == (1,)
    finally:
        conn.close()
    assert _kinds(report) == EXPECTED


def test_a_bulk_row_set_is_checked_by_a_sample_in_a_fraction_of_the_insert(
    tmp_path: Path, shop_pg: str
) -> None:
    agent = _agent(tmp_path, dry_run=True, conn_shop=shop_pg)
    try:
        started = time.monotonic()
        _seed_shop(agent, 50_000, 60_000)
        took = time.monotonic() - started
        report = _report(agent)
    finally:
        agent.close()
    assert [(t.target, t.rows, t.rows_checked) for t in report.targets] == [
        ("customers", 50_000, 10_000),
        ("orders", 60_000, 10_000),
    ]
    # Orders pick customers the sample did not make: said so, not reported as dangling.
    assert report.problem_count == 0
    assert any("only a sample" in u for u in report.targets[1].unchecked)
    assert any("first 10,000 were made" in u for u in report.targets[0].unchecked)
    assert _count(shop_pg, "customers") == 0 and "seedbed_ledger" not in _tables(shop_pg)
    assert took < 60


def test_rest_posts_and_file_writes_are_not_sent_and_answer_deterministic_ids(tmp_path: Path) -> None:
    with RestTarget() as api:
        agent = _agent(tmp_path, dry_run=True, conn_api=api)
        spec_file = attempt_pb2.ConnectionSnapshot(id="conn_files", kind=connection_pb2.CONNECTION_KIND_FILE)
        agent._connections["conn_files"] = spec_file
        try:
            single = agent(
                "post",
                {"connection_id": "conn_api", "path": "/customers", "rows": [{"name": "a"}, {"id": 7}]},
            )
            batch = agent(
                "post",
                {
                    "connection_id": "conn_api",
                    "path": "/customers",
                    "rows": [{"name": "b"}] * 3,
                    "mode": "batch",
                },
            )
            wrote = agent("write", {"connection_id": "conn_files", "name": "out.csv", "rows": [{"a": 1}]})
            report = _report(agent)
        finally:
            agent.close()
        assert api.requests("/customers") == []
    assert single == [{"name": "a", "id": 1, "dry_run": True}, {"id": 7, "dry_run": True}]
    assert batch == [
        [{"name": "b", "id": 3, "dry_run": True}, {"name": "b", "id": 4, "dry_run": True}],
        [{"name": "b", "id": 5, "dry_run": True}],
    ]
    assert wrote == {"count": 1, "size_bytes": 0}
    assert not (tmp_path / "artifacts").exists() or not any((tmp_path / "artifacts").rglob("out.csv"))
    assert [(t.operation, t.target, t.rows) for t in report.targets] == [
        ("post", "/customers", 5),
        ("write", "out.csv", 1),
    ]


def test_hostile_calls_are_refused_as_a_real_run_refuses_them(tmp_path: Path, shop_pg: str) -> None:
    agent = _agent(tmp_path, dry_run=True, memory=4 * 2**20, conn_shop=shop_pg)
    try:
        for table in ("customers; DROP TABLE orders", "a.b.c", ""):
            with pytest.raises(AgentError, match="table"):
                agent("insert", {"connection_id": "conn_shop", "table": table, "rows": [{"id": 1}]})
        with pytest.raises(AgentError, match="on_conflict"):
            agent(
                "insert",
                {"connection_id": "conn_shop", "table": "customers", "rows": [{"id": 1}], "on_conflict": "x"},
            )
        with pytest.raises(AgentError, match="not defined"):
            agent("insert", {"connection_id": "conn_nope", "table": "customers", "rows": [{"id": 1}]})
        # The keys a dry run remembers count against the attempt's memory: past it, LimitExceeded.
        rows = [{"id": i, "name": "n", "email": f"{i}@x"} for i in range(20_000)]
        with pytest.raises(AgentError) as over:
            agent("insert", {"connection_id": "conn_shop", "table": "customers", "rows": rows})
        assert type(over.value).__name__ == "LimitExceeded" and "SEEDBED_AGENT_MEMORY_BYTES" in str(
            over.value
        )
    finally:
        agent.close()
    assert _count(shop_pg, "customers") == 0 and "seedbed_ledger" not in _tables(shop_pg)


def test_returning_and_schema_qualified_names_feed_later_foreign_key_checks(
    tmp_path: Path, shop_pg: str
) -> None:
    agent = _agent(tmp_path, dry_run=True, conn_shop=shop_pg)
    try:
        customers = [{"id": 7, "name": "a", "email": "a@x"}]
        agent("step.start", {"name": "seed"})
        returned = agent(
            "insert",
            {
                "connection_id": "conn_shop",
                "table": "public.customers",
                "rows": customers,
                "returning": ["id"],
            },
        )
        orders = [{"customer_id": 7, "amount": 1, "status": "paid", "ordered_at": "2024-01-01T00:00:00"}]
        ids = agent(
            "insert", {"connection_id": "conn_shop", "table": "orders", "rows": orders, "returning": ["id"]}
        )
        agent("step.end", {"name": "seed"})
        report = _report(agent)
        steps = agent.step_records()
    finally:
        agent.close()
    assert returned == {"count": 1, "rows": [{"id": 7}]}
    assert ids == {
        "count": 1,
        "rows": [{"id": None}],
    }  # orders.id has no default: the real insert would say so too
    assert [(t.target, t.problem_count) for t in report.targets] == [("public.customers", 0), ("orders", 1)]
    assert report.targets[1].problems[0].kind == dryrun_pb2.DRY_RUN_PROBLEM_KIND_NOT_NULL
    assert report.targets[1].problems[0].field == "id"
    assert [(s.name, s.rows_written) for s in steps] == [("seed", 0)]  # nothing was written


def test_keys_of_enum_and_inet_columns_are_looked_up_and_a_failed_lookup_spoils_no_later_check() -> None:
    """Key lookups bind values as their columns' types (an enum is not compared with a varchar); a
    lookup PostgreSQL refuses is noted as not checked and rolled back, so the next check still reads."""
    from seedbed.worker.dryrun import ReportBuilder, SqlCatalog, SqlChecks

    schema = (
        "CREATE TYPE st AS ENUM ('a', 'b'); CREATE TABLE hosts (ip inet PRIMARY KEY, s st UNIQUE); "
        "INSERT INTO hosts VALUES ('10.0.0.1', 'a'); "
        "CREATE TABLE t (id int PRIMARY KEY, h inet REFERENCES hosts (ip))"
    )
    with scratch_pg(schema, "seedbed_dryrun_types") as url:
        report = ReportBuilder()
        checks = SqlChecks("conn_pg", SqlCatalog(url), report)
        try:
            checks.check(1, "hosts", [{"ip": "10.0.0.2", "s": "a"}, {"ip": "not-an-ip", "s": "b"}])
            checks.check(2, "t", [{"id": 1, "h": "10.0.0.1"}, {"id": 2, "h": "10.0.0.9"}])
        finally:
            checks.close()
    hosts, t = report.to_proto().targets
    assert [(p.row, p.field, p.kind) for p in hosts.problems] == [
        (0, "s", dryrun_pb2.DRY_RUN_PROBLEM_KIND_DUPLICATE_KEY)
    ]
    assert any("existing keys (ip) not read" in note for note in hosts.unchecked)
    assert [(p.row, p.field, p.kind) for p in t.problems] == [
        (1, "h", dryrun_pb2.DRY_RUN_PROBLEM_KIND_FOREIGN_KEY)
    ]


def _mysql_tables(url: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return set(sa.inspect(conn).get_table_names())
    finally:
        engine.dispose()


def test_ddl_through_fetch_in_a_dry_run_changes_nothing_on_mariadb_and_sqlite(
    tmp_path: Path, mysql_database: str
) -> None:
    """MariaDB commits DDL implicitly and Python's sqlite3 runs it outside a transaction: the sink's
    rollback after a fetch would keep the table. A dry run's fetch is read-only in the database."""
    sqlite_url = f"sqlite:///{tmp_path / 'target.db'}"
    sa.create_engine(sqlite_url).dispose()
    agent = _agent(tmp_path, dry_run=True, conn_my=mysql_database, conn_lite=sqlite_url)
    try:
        for connection_id in ("conn_my", "conn_lite"):
            with pytest.raises(AgentError, match="(?i)read.only|readonly"):
                agent("fetch", {"connection_id": connection_id, "query": "CREATE TABLE made (a INTEGER)"})
        # A script that sets its session back to READ WRITE is read-only again in its next fetch.
        # (It runs, then the fetch fails: it returns no rows.)
        with pytest.raises(AgentError, match="does not return rows"):
            agent("fetch", {"connection_id": "conn_my", "query": "SET SESSION TRANSACTION READ WRITE"})
        with pytest.raises(AgentError, match="(?i)read.only"):
            agent("fetch", {"connection_id": "conn_my", "query": "CREATE TABLE made2 (a INTEGER)"})
        with pytest.raises(AgentError, match="query_only"):
            agent("fetch", {"connection_id": "conn_lite", "query": "PRAGMA query_only = OFF"})
        # Reads still read.
        assert agent("fetch", {"connection_id": "conn_my", "query": "SELECT 1 AS one"}) == [{"one": 1}]
        assert agent("fetch", {"connection_id": "conn_lite", "query": "SELECT 1 AS one"}) == [{"one": 1}]
    finally:
        agent.close()
    assert _mysql_tables(mysql_database) == set()
    assert _mysql_tables(sqlite_url) == set()
    # A real run's fetch is as it was (the listener is on the dry run's sinks only).
    real = _agent(tmp_path, dry_run=False, conn_lite=sqlite_url)
    try:
        with pytest.raises(AgentError, match="does not return rows"):
            real("fetch", {"connection_id": "conn_lite", "query": "CREATE TABLE real_made (a INTEGER)"})
    finally:
        real.close()
    assert _mysql_tables(sqlite_url) == {"real_made"}


UPSERTS = """
CREATE TABLE accounts (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE, name TEXT);
INSERT INTO accounts VALUES (1, 'a@x', 'a');
"""


def test_upserts_report_what_postgresql_refuses(tmp_path: Path) -> None:
    """Checked against the real sink: each call the dry run reports fails the real run."""
    calls = {
        # id 2 is new, so the row is inserted, and its email is account 1's: a unique violation.
        "other_key": [{"id": 2, "email": "a@x", "name": "b"}],
        # id 3 twice in one INSERT … ON CONFLICT DO UPDATE statement.
        "twice": [{"id": 3, "email": "c@x", "name": "c"}, {"id": 3, "email": "c@x", "name": "c2"}],
    }
    with scratch_pg(UPSERTS, "seedbed_dry") as url:
        dry = _agent(tmp_path, dry_run=True, conn_db=url)
        try:
            for rows in calls.values():
                args = {"connection_id": "conn_db", "table": "accounts", "rows": rows}
                dry("insert", {**args, "on_conflict": "update", "key": ["id"]})
            # An existing id updates its row (its email is no duplicate); a key that is no unique key.
            ok = [{"id": 1, "email": "a@x", "name": "a2"}]
            dry(
                "insert",
                {
                    "connection_id": "conn_db",
                    "table": "accounts",
                    "rows": ok,
                    "on_conflict": "update",
                    "key": ["id"],
                },
            )
            dry(
                "insert",
                {
                    "connection_id": "conn_db",
                    "table": "accounts",
                    "rows": ok,
                    "on_conflict": "update",
                    "key": ["name"],
                },
            )
            with pytest.raises(AgentError, match="needs key"):
                dry(
                    "insert",
                    {"connection_id": "conn_db", "table": "accounts", "rows": ok, "on_conflict": "update"},
                )
            with pytest.raises(AgentError, match="only meaningful with on_conflict"):
                dry("insert", {"connection_id": "conn_db", "table": "accounts", "rows": ok, "key": ["id"]})
            report = _report(dry)
        finally:
            dry.close()
        assert [(kind, row, field) for kind, row, field in _kinds(report)] == [
            ("DUPLICATE_KEY", 0, "email"),
            ("DUPLICATE_KEY", 1, "id"),
            ("DUPLICATE_KEY", -1, "name"),
        ]
        messages = [p.message for t in report.targets for p in t.problems]
        assert "in the table" in messages[0] and "cannot affect row a second time" in messages[1]
        real = _agent(tmp_path, dry_run=False, run_key="rk-real", conn_db=url)
        try:
            for name, rows in [*calls.items(), ("name", [{"id": 1, "email": "a@x", "name": "a"}])]:
                key = ["name"] if name == "name" else ["id"]
                args = {"connection_id": "conn_db", "table": "accounts", "rows": rows}
                with pytest.raises(AgentError) as refused:
                    real("insert", {**args, "on_conflict": "update", "key": key})
                expected = {
                    "other_key": "duplicate key value violates unique constraint",
                    "twice": "cannot affect row a second time",
                    "name": "no unique or exclusion constraint matching",
                }[name]
                assert expected in str(refused.value)
        finally:
            real.close()


def test_paths_posted_to_count_against_the_attempt_memory(tmp_path: Path) -> None:
    with RestTarget() as api:
        agent = _agent(tmp_path, dry_run=True, memory=256 * 2**10, conn_api=api)
        try:
            with pytest.raises(AgentError) as over:
                for i in range(1_000):  # 1,000 distinct paths of 1,900 characters: ~2 MB held
                    agent("post", {"connection_id": "conn_api", "path": f"/{i:04}" + "p" * 1_895, "rows": []})
        finally:
            agent.close()
    assert type(over.value).__name__ == "LimitExceeded" and "posts to path" in str(over.value)
