"""The dry run's checks on a fake catalog: each problem kind with its row and field, the caps, and
what a check constraint evaluates."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa

from seedbed.api.v1 import dryrun_pb2 as pb
from seedbed.worker import dryrun
from seedbed.worker.dryrun import ColumnInfo, ForeignKeyInfo, ReportBuilder, SqlChecks, TableSchema
from seedbed.worker.dryrun._schema import CheckInfo


class FakeCatalog:
    def __init__(
        self,
        tables: dict[str, TableSchema],
        rows: dict[str, list[dict[str, Any]]] | None = None,
        dialect: str = "postgresql",
    ) -> None:
        self.dialect = dialect
        self.tables = tables
        self.rows = rows or {}
        self.introspected: list[str] = []

    def table(self, name: str) -> TableSchema | None:
        self.introspected.append(name)
        return self.tables.get(name)

    def existing(
        self, table: str, columns: Sequence[str], keys: Iterable[tuple[Any, ...]]
    ) -> set[tuple[Any, ...]]:
        held = {tuple(r[c] for c in columns) for r in self.rows.get(table, [])}
        return {k for k in keys if k in held}

    def canonical(self, table: str) -> str:
        return table.removeprefix("public.")

    def next_value(self, table: str, column: str) -> int:
        return max((r[column] for r in self.rows.get(table, [])), default=0) + 1

    def close(self) -> None:
        pass


def _shop() -> dict[str, TableSchema]:
    customers = TableSchema(
        "customers",
        {
            "id": ColumnInfo("id", sa.Integer(), nullable=False),
            "name": ColumnInfo("name", sa.String(10), nullable=False),
            "email": ColumnInfo("email", sa.Text(), nullable=False),
            "vip": ColumnInfo("vip", sa.Boolean()),
            "age": ColumnInfo("age", sa.SmallInteger()),
        },
        primary_key=("id",),
        uniques=[("email",)],
        checks=[CheckInfo("age_adult", "((age >= 18) AND (age < 150))")],
    )
    orders = TableSchema(
        "orders",
        {
            "id": ColumnInfo("id", sa.Integer(), nullable=False, has_default=True),
            "customer_id": ColumnInfo("customer_id", sa.Integer(), nullable=False),
            "amount": ColumnInfo("amount", sa.Numeric(6, 2), nullable=False),
            "status": ColumnInfo("status", sa.Text(), nullable=False),
            "ordered_at": ColumnInfo("ordered_at", sa.DateTime()),
        },
        primary_key=("id",),
        foreign_keys=[ForeignKeyInfo(("customer_id",), "customers", ("id",))],
        checks=[
            CheckInfo("status_known", "(status = ANY (ARRAY['new'::text, 'paid'::text]))"),
            CheckInfo("odd", "(amount % 2 = 0)"),
        ],
    )
    return {"customers": customers, "orders": orders}


def _checks(
    rows: dict[str, list[dict[str, Any]]] | None = None, dialect: str = "postgresql"
) -> tuple[SqlChecks, ReportBuilder, FakeCatalog]:
    report = ReportBuilder()
    catalog = FakeCatalog(_shop(), rows, dialect)
    return SqlChecks("conn_pg", catalog, report), report, catalog


def _problems(report: ReportBuilder) -> list[tuple[str, str, int, str]]:
    return [
        (t.target, pb.DryRunProblemKind.Name(p.kind).removeprefix("DRY_RUN_PROBLEM_KIND_"), p.row, p.field)
        for t in report.to_proto().targets
        for p in t.problems
    ]


def _customer(i: int, **extra: Any) -> dict[str, Any]:
    return {"id": i, "name": f"c{i}", "email": f"c{i}@example.com", "vip": False, "age": 30, **extra}


def test_clean_rows_report_counts_and_no_problem() -> None:
    checks, report, catalog = _checks()
    checks.check(1, "customers", [_customer(i) for i in range(1, 4)])
    checks.check(
        2,
        "orders",
        [{"customer_id": 2, "amount": "12.50", "status": "paid", "ordered_at": "2024-01-02T03:04:05"}],
    )
    checks.check(3, "customers", [_customer(9)])
    proto = report.to_proto()
    assert [(t.target, t.rows, t.rows_checked, t.problem_count) for t in proto.targets] == [
        ("customers", 4, 4, 0),
        ("orders", 1, 1, 0),
    ]
    assert proto.problem_count == 0
    assert catalog.introspected.count("customers") == 1  # introspected once per table
    # The check constraint with `%` is not evaluated, and the report says so.
    assert any("odd" in u for u in proto.targets[1].unchecked)


def test_each_problem_kind_names_its_row_and_field() -> None:
    checks, report, _ = _checks(rows={"customers": [_customer(100)]})
    checks.check(
        1,
        "customers",
        [
            _customer(1),
            _customer(2, name="a name far too long"),  # varchar(10)
            _customer(3, vip="maybe"),  # not a boolean
            _customer(4, age=70000),  # smallint overflow
            _customer(5, age=12),  # check constraint
            _customer(1, email="other@example.com"),  # duplicate id within the run
            _customer(100, email="x@example.com"),  # duplicate of an existing row
            _customer(7, name=None),  # NULL into NOT NULL
            _customer(8, nickname="bob"),  # no such column
        ],
    )
    checks.check(
        2,
        "orders",
        [
            {"customer_id": 1, "amount": 1, "status": "new"},
            {"customer_id": 555, "amount": 12345.5, "status": "lost"},
        ],
    )
    assert _problems(report) == [
        ("customers", "MISSING_COLUMN", 8, "nickname"),
        ("customers", "TYPE_MISMATCH", 1, "name"),
        ("customers", "TYPE_MISMATCH", 2, "vip"),
        ("customers", "TYPE_MISMATCH", 3, "age"),
        ("customers", "CHECK", 4, "age"),
        ("customers", "DUPLICATE_KEY", 5, "id"),
        ("customers", "NOT_NULL", 7, "name"),
        ("customers", "DUPLICATE_KEY", 6, "id"),
        ("orders", "TYPE_MISMATCH", 1, "amount"),
        ("orders", "CHECK", 1, "status"),
        ("orders", "FOREIGN_KEY", 1, "customer_id"),
    ]
    problems = {(p.row, p.field): p for t in report.to_proto().targets for p in t.problems}
    assert problems[(1, "name")].message.startswith("19 characters are too long for varchar(10)")
    assert problems[(1, "amount")].value == "12345.5" and "numeric(6,2)" in problems[(1, "amount")].message
    assert "would dangle" in problems[(1, "customer_id")].message


def test_foreign_keys_see_what_the_run_wrote_earlier_and_the_table_holds() -> None:
    checks, report, _ = _checks(rows={"customers": [_customer(50)]})
    # Order 1 references a customer the run writes later: dangling at the time it is written.
    checks.check(1, "orders", [{"customer_id": 7, "amount": 1, "status": "new"}])
    checks.check(2, "customers", [_customer(7)])
    checks.check(
        3,
        "orders",
        [
            {"customer_id": 7, "amount": 1, "status": "new"},
            {"customer_id": "50", "amount": 2, "status": "paid"},
        ],
    )
    assert _problems(report) == [("orders", "FOREIGN_KEY", 0, "customer_id")]
    assert report.to_proto().targets[0].problems[0].call == 1


def test_a_missing_table_is_one_problem_and_rows_are_still_counted() -> None:
    checks, report, _ = _checks()
    checks.check(1, "nowhere", [{"a": 1}] * 3)
    checks.check(2, "nowhere", [{"a": 1}])
    proto = report.to_proto()
    assert [(t.target, t.rows, t.problem_count) for t in proto.targets] == [("nowhere", 4, 1)]
    assert proto.targets[0].problems[0].kind == pb.DRY_RUN_PROBLEM_KIND_MISSING_TABLE
    assert proto.targets[0].problems[0].row == -1


def test_a_not_null_column_the_rows_leave_out_needs_a_default() -> None:
    checks, report, _ = _checks()
    checks.check(1, "orders", [{"customer_id": None, "amount": 1, "status": "new"}])  # id has a default
    checks.check(2, "customers", [{"id": 1, "name": "a"}])  # email: NOT NULL, no default
    assert _problems(report) == [
        ("orders", "NOT_NULL", 0, "customer_id"),
        ("customers", "NOT_NULL", 0, "email"),
    ]


def test_upserts_are_no_duplicates_and_problems_are_capped_but_counted() -> None:
    checks, report, _ = _checks(rows={"customers": [_customer(1)]})
    checks.check(1, "customers", [_customer(1)], upsert=dryrun.Upsert("update", ("id",)))
    assert report.to_proto().problem_count == 0
    checks.check(2, "customers", [_customer(i, vip="?") for i in range(10, 60)])
    target = report.to_proto().targets[0]
    assert target.problem_count == 50 and len(target.problems) == dryrun.MAX_PROBLEMS


def test_a_sampled_row_set_counts_the_whole_set_and_defers_keys_it_did_not_make() -> None:
    checks, report, _ = _checks()
    checks.check(1, "customers", [_customer(i) for i in range(1, 11)], sample_of=1_000)
    checks.check(2, "orders", [{"customer_id": 900, "amount": 1, "status": "new"}])
    proto = report.to_proto()
    assert [(t.rows, t.rows_checked) for t in proto.targets] == [(1000, 10), (1, 1)]
    assert proto.problem_count == 0
    assert any("only a sample" in u for u in proto.targets[1].unchecked)


def test_returning_made_up_ids_are_deterministic_and_known_to_later_checks() -> None:
    checks, report, _ = _checks(rows={"orders": [{"id": 41}]})
    rows = [{"customer_id": 1, "amount": 1, "status": "new"}] * 2
    assert checks.returning("orders", rows, ["id", "status"]) == [
        {"id": 42, "status": "new"},
        {"id": 43, "status": "new"},
    ]


def test_values_are_masked_and_truncated() -> None:
    report = ReportBuilder(lambda text: text.replace("s3cret", "***"))
    checks = SqlChecks("conn_pg", FakeCatalog(_shop()), report)
    checks.check(1, "customers", [_customer(1, vip="s3cret" + "x" * 500)])
    problem = report.to_proto().targets[0].problems[0]
    assert problem.value.startswith("***xxx") and len(problem.value) <= 200
    assert "s3cret" not in problem.message


@pytest.mark.parametrize(
    ("type_", "value", "expected"),
    [
        (sa.Integer(), "42", 42),
        (sa.BigInteger(), 2**40, 2**40),
        (sa.Numeric(10, 2), "1234.567", Decimal("1234.57")),
        (sa.Date(), "2024-02-29", __import__("datetime").date(2024, 2, 29)),
        (
            sa.Uuid(),
            "12345678-1234-5678-1234-567812345678",
            __import__("uuid").UUID("12345678-1234-5678-1234-567812345678"),
        ),
        (sa.String(3), 123, "123"),
        (sa.JSON(), {"a": [1]}, {"a": [1]}),
        (sa.Numeric(40, 2), "1" * 38, Decimal("1" * 38)),  # wider than Python's default context
        (sa.Numeric(4, 2), "-0.005", Decimal("-0.01")),  # half away from zero, as PostgreSQL
        (sa.Numeric(2, 2), "0", Decimal("0.00")),
    ],
)
def test_values_convert_as_the_database_would(type_: Any, value: Any, expected: Any) -> None:
    assert dryrun.convert(type_, value) == expected


@pytest.mark.parametrize(
    ("type_", "value"),
    [
        (sa.Integer(), 2**31),
        (sa.Integer(), True),
        (sa.Integer(), "4.5"),
        (sa.Date(), "2023-02-29"),
        (sa.Uuid(), "nope"),
        (sa.Float(), [1]),
        (sa.Numeric(4, 2), 100),
        (sa.Enum("a", "b"), "c"),
        (sa.Numeric(10, 2), "1e30"),  # not an InvalidOperation out of the 28-digit context
        (sa.Numeric(10, 2), 1e300),
        (sa.Numeric(4, 2), "99.995"),  # rounds up to 100.00
        (sa.Numeric(2, 2), "0.999"),
    ],
)
def test_values_that_do_not_fit_are_refused_with_a_reason(type_: Any, value: Any) -> None:
    with pytest.raises(dryrun.Mismatch):
        dryrun.convert(type_, value)


def test_check_constraints_that_are_evaluated() -> None:
    in_list = dryrun.compile_check("status IN ('a', 'it''s')")
    length = dryrun.compile_check("(char_length(code) <= 3)")
    flipped = dryrun.compile_check("(0 < price)")
    assert in_list is not None and length is not None and flipped is not None
    assert in_list({"status": "it's"})[0] and not in_list({"status": "b"})[0]
    assert in_list({"status": None})[0]  # NULL: a check that is unknown holds
    assert length({"code": "abc"})[0] and not length({"code": "abcd"})[0]
    assert flipped({"price": 1})[0] and not flipped({"price": 0})[0]
    assert dryrun.compile_check("(price > cost)") is None
    assert dryrun.compile_check("lower(email) = email") is None


def test_a_table_named_with_its_default_schema_is_the_one_foreign_keys_name() -> None:
    checks, report, _ = _checks()
    checks.check(1, "public.customers", [_customer(3)])
    checks.check(2, "orders", [{"customer_id": 3, "amount": 1, "status": "new"}])
    proto = report.to_proto()
    assert proto.problem_count == 0
    assert [t.target for t in proto.targets] == ["public.customers", "orders"]  # as the script named it


def test_a_secret_cut_by_the_value_cap_is_masked_whole() -> None:
    """Masked before the 200-character cut: a secret across it leaves no prefix behind, and a
    mismatch's message never repeats the value."""
    report = ReportBuilder(lambda text: text.replace("s3cretpass", "***"))
    checks = SqlChecks("conn_pg", FakeCatalog(_shop()), report)
    checks.check(1, "customers", [_customer(1, vip="x" * 195 + "s3cretpass", **{"s3cretpass" * 100: 1})])
    problems = report.to_proto().targets[0].problems
    value = next(p for p in problems if p.field == "vip").value
    assert "s3cr" not in value and value.startswith("x" * 195)
    assert all("s3cr" not in p.message and "s3cr" not in p.field for p in problems)
    assert all(len(p.field) <= 300 for p in problems)


def test_the_report_fits_what_the_coordinator_keeps() -> None:
    report = ReportBuilder()
    tables = {f"t{i}": _shop()["customers"] for i in range(dryrun.MAX_TARGETS)}
    checks = SqlChecks("conn_pg", FakeCatalog(tables), report)
    row = {**_customer(1), **{f"{n}{'é' * 3000}": "é" * 3000 for n in range(30)}}
    for i in range(dryrun.MAX_TARGETS):
        checks.check(i, f"t{i}", [row])
    proto = report.to_proto()
    assert proto.ByteSize() <= 2**20 and proto.problem_count == 30 * dryrun.MAX_TARGETS  # counted whole
    assert len(proto.targets[0].problems) == dryrun.MAX_PROBLEMS and len(proto.targets[-1].problems) == 1
    assert sum(len(t.problems) for t in report.to_proto().targets) == len(
        [p for t in proto.targets for p in t.problems]
    )  # trimming is the same every time: the builder itself is left whole


def test_no_rows_read_no_table() -> None:
    """A real run does not touch the table of an empty insert: no MISSING_TABLE for one either."""
    checks, report, catalog = _checks()
    checks.check(1, "nowhere", [])
    assert report.to_proto().problem_count == 0 and catalog.introspected == []


def _messages(report: ReportBuilder) -> list[tuple[str, int, str]]:
    return [
        (pb.DryRunProblemKind.Name(p.kind).removeprefix("DRY_RUN_PROBLEM_KIND_"), p.row, p.message)
        for t in report.to_proto().targets
        for p in t.problems
    ]


def test_an_upsert_inserting_a_row_checks_its_other_unique_keys_on_postgresql() -> None:
    checks, report, _ = _checks(rows={"customers": [_customer(1)]})
    upsert = dryrun.Upsert("update", ("id",))
    # id 1 exists: an update (its email is not checked); id 2 is new: an insert whose email is taken.
    checks.check(1, "customers", [_customer(1), _customer(2, email="c1@example.com")], upsert=upsert)
    assert _problems(report) == [("customers", "DUPLICATE_KEY", 1, "email")]
    checks, report, _ = _checks(rows={"customers": [_customer(1)]})
    checks.check(1, "customers", [_customer(2, email="c1@example.com")], upsert=upsert)
    assert _problems(report) == [("customers", "DUPLICATE_KEY", 0, "email")]
    assert "in the table" in _messages(report)[0][2]


def test_an_upsert_on_mariadb_takes_every_unique_key_as_its_conflict() -> None:
    checks, report, _ = _checks(rows={"customers": [_customer(1)]}, dialect="mariadb")
    upsert = dryrun.Upsert("update", ("id",))
    checks.check(1, "customers", [_customer(1), _customer(2, email="c1@example.com")], upsert=upsert)
    assert _problems(report) == []


def test_an_ignore_without_key_skips_every_conflict() -> None:
    checks, report, _ = _checks(rows={"customers": [_customer(1)]})
    checks.check(1, "customers", [_customer(2, email="c1@example.com")], upsert=dryrun.Upsert("ignore"))
    assert _problems(report) == []


def test_an_upsert_key_twice_in_one_postgresql_statement_is_a_problem() -> None:
    checks, report, _ = _checks()
    rows = [_customer(1), _customer(1), _customer(3), _customer(3)]
    # Rows 0-1 go in one statement, rows 2-3 in two (a statement of two rows).
    statements = {0: 0, 1: 0, 2: 1, 3: 2}
    checks.check(1, "customers", rows, upsert=dryrun.Upsert("update", ("id",), statements.__getitem__))
    assert _problems(report) == [("customers", "DUPLICATE_KEY", 1, "id")]
    assert "cannot affect row a second time" in _messages(report)[0][2]
    # DO NOTHING skips the second row; SQLite updates twice: neither fails.
    for dialect, how in (("postgresql", "ignore"), ("sqlite", "update")):
        checks, report, _ = _checks(dialect=dialect)
        checks.check(1, "customers", rows, upsert=dryrun.Upsert(how, ("id",)))
        assert _problems(report) == []


def test_an_upsert_key_that_is_no_unique_key_of_the_table_is_a_problem() -> None:
    checks, report, _ = _checks()
    checks.check(1, "customers", [_customer(1)], upsert=dryrun.Upsert("update", ("name",)))
    assert _problems(report) == [("customers", "DUPLICATE_KEY", -1, "name")]
    assert "exactly (name)" in _messages(report)[0][2]
    # The columns of a unique key in another order are that key.
    checks, report, _ = _checks()
    checks.check(1, "customers", [_customer(1)], upsert=dryrun.Upsert("update", ("email",)))
    assert _problems(report) == []


def test_messages_say_what_to_do() -> None:
    checks, report, _ = _checks(rows={"customers": [_customer(1)]})
    checks.check(1, "nowhere", [{"a": 1}])
    checks.check(2, "customers", [_customer(1, extra=1)])
    checks.check(3, "orders", [{"customer_id": 9, "amount": 1, "status": "new"}])
    messages = {kind: message for kind, _, message in _messages(report)}
    assert "create it first" in messages["MISSING_TABLE"]
    assert "`execute` statements are not run in a dry run" in messages["MISSING_TABLE"]
    assert "add the column" in messages["MISSING_COLUMN"]
    assert "make the key unique" in messages["DUPLICATE_KEY"]
    assert "insert the customers row first" in messages["FOREIGN_KEY"]


def test_timestamptz_keys_compare_as_instants() -> None:
    at = ColumnInfo("at", sa.DateTime(timezone=True), nullable=False)
    events = TableSchema("events", {"at": at}, primary_key=("at",))
    report = ReportBuilder()
    checks = SqlChecks("conn_pg", FakeCatalog({"events": events}), report)
    # A naive value is read in UTC (the session's time zone the dry run assumes).
    checks.check(1, "events", [{"at": "2024-01-01T00:00:00"}, {"at": "2024-01-01T01:00:00+01:00"}])
    checks.check(2, "events", [{"at": dt.datetime(2024, 1, 1, 0, 0, tzinfo=dt.UTC)}])
    assert [(p[1], p[2]) for p in _problems(report)] == [("DUPLICATE_KEY", 1), ("DUPLICATE_KEY", 0)]
    assert dryrun.convert(sa.DateTime(timezone=True), "2024-01-01T02:00:00+02:00") == dt.datetime(
        2024, 1, 1, tzinfo=dt.UTC
    )
    # Without a time zone the value is kept as given.
    assert dryrun.convert(sa.DateTime(), "2024-01-01T00:00:00").tzinfo is None


def test_schemas_read_are_held_against_the_memory_budget() -> None:
    held: list[tuple[int, str]] = []
    checks = SqlChecks(
        "conn_pg", FakeCatalog(_shop()), ReportBuilder(), hold=lambda n, w: held.append((n, w))
    )
    checks.check(1, "customers", [_customer(1)])
    checks.check(2, "customers", [_customer(2)])
    checks.check(3, "missing_1", [{"a": 1}])
    schemas = [(n, w) for n, w in held if "schema" in w]
    assert [w for _, w in schemas] == ["the schema of table customers", "the schema of table missing_1"]
    assert schemas[0][0] > schemas[1][0] > 0  # five columns and a check cost more than a name
