"""The checks of the rows one call would write into one SQL table, against the table's live schema
and what the run itself wrote before (see the package's docstring for what is checked and how)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from seedbed.api.v1 import dryrun_pb2 as pb
from seedbed.worker.dryrun._report import ReportBuilder
from seedbed.worker.dryrun._schema import Catalog, TableSchema
from seedbed.worker.dryrun._values import Check, Mismatch, compile_check, convert

__all__ = ["SqlChecks", "Upsert"]

_INVALID = object()  # a value that did not convert: it takes part in no key
# What one remembered key costs in memory besides its text, estimated (a tuple, its value, a set
# slot); text and bytes values count their length too, or long keys would pass the budget cheap.
KEY_BYTES = 160
# What one introspected table costs besides its names and constraints' text, estimated (the
# TableSchema, its ColumnInfo objects and SQLAlchemy types, the catalog's Table): per table, per column.
SCHEMA_BYTES = 2_000
COLUMN_BYTES = 600


@dataclass(frozen=True)
class Upsert:
    """How an insert with `on_conflict` meets existing keys, as the target database does.

    `key` is the conflict target (`ON CONFLICT (key)`); without it (`on_conflict="ignore"` only) a
    conflict on any unique key is skipped. MySQL and MariaDB (`ON DUPLICATE KEY UPDATE`) take any
    unique key's conflict as the upsert's, whatever `key` names. PostgreSQL and SQLite take only
    `key`'s: a row whose `key` is new is inserted, and a duplicate of another unique key fails the
    statement. `statement(i)` names the statement row `i` of the call goes in (PostgreSQL refuses
    `DO UPDATE` of one row twice in one statement); None: the call is one statement."""

    on_conflict: str
    key: tuple[str, ...] | None = None
    statement: Callable[[int], Any] | None = None


class SqlChecks:
    """Checks for one SQL connection of the run: its catalog, and the keys the run wrote so far."""

    def __init__(
        self,
        connection_id: str,
        catalog: Catalog,
        report: ReportBuilder,
        *,
        hold: Callable[[int, str], None] = lambda size, what: None,
    ) -> None:
        self.connection_id = connection_id
        # Counts the keys remembered against the attempt's memory (raises past its budget).
        self._hold = hold
        self._catalog = catalog
        self._report = report
        # Per table, per unique column set: the keys the run's earlier rows hold.
        self._written: dict[str, dict[tuple[str, ...], set[tuple[Any, ...]]]] = {}
        # Tables that got a row set of which only a sample was made (their keys are not all known).
        self._partial: set[str] = set()
        self._checks: dict[str, list[tuple[str, Check]]] = {}
        self._next_ids: dict[tuple[str, str], int] = {}
        self._schemas: dict[str, TableSchema | None] = {}  # each table introspected once

    def close(self) -> None:
        self._catalog.close()

    def _canonical(self, table: str) -> str:
        try:
            return self._catalog.canonical(table)
        except sa_exc.SQLAlchemyError:
            return table  # the schema read that follows reports the target's trouble

    def _schema(self, table: str, target: pb.DryRunTarget, call: int) -> TableSchema | None:
        try:
            if table not in self._schemas:
                self._schemas[table] = self._read_schema(table)
            schema = self._schemas[table]
        except sa_exc.SQLAlchemyError as exc:
            if not target.problem_count:
                self._report.problem(
                    target,
                    pb.DRY_RUN_PROBLEM_KIND_TARGET_ERROR,
                    row=-1,
                    message=f"could not read the schema of {table}: {_reason(exc)}; check that the "
                    "connection's user may read the table and its catalog",
                    call=call,
                )
            return None
        missing = pb.DRY_RUN_PROBLEM_KIND_MISSING_TABLE
        if schema is None and not any(p.kind == missing for p in target.problems):
            self._report.problem(
                target,
                missing,
                row=-1,
                message=f"table {table} does not exist in connection {self.connection_id}: create it "
                "first (`execute` statements are not run in a dry run, so a table the script creates "
                "is missing here too)",
                call=call,
            )
        return schema

    def _read_schema(self, table: str) -> TableSchema | None:
        """The table's schema, read once and held against the attempt's memory (a script naming
        many tables would otherwise make the dry run keep one schema each for free)."""
        schema = self._catalog.table(table)
        size = SCHEMA_BYTES + len(table)
        if schema is not None:
            size += sum(COLUMN_BYTES + len(name) for name in schema.columns)
            size += sum(len(check.sqltext) + len(check.name) for check in schema.checks)
        self._hold(size, f"the schema of table {table[:100]}")
        return schema

    def _compiled(self, schema: TableSchema, target: pb.DryRunTarget) -> list[tuple[str, Check]]:
        found = self._checks.get(schema.name)
        if found is None:
            found = []
            for check in schema.checks:
                compiled = compile_check(check.sqltext)
                if compiled is None:
                    self._report.unchecked(
                        target,
                        f"check constraint {check.name or check.sqltext[:80]} not evaluated: "
                        f"{check.sqltext[:200]}",
                    )
                else:
                    found.append((check.name or check.sqltext[:80], compiled))
            for why in schema.unreadable:
                self._report.unchecked(target, why)
            self._checks[schema.name] = found
        return found

    def check(
        self,
        call: int,
        table: str,
        rows: Sequence[Mapping[str, Any]],
        *,
        first_index: int = 0,
        upsert: Upsert | None = None,
        sample_of: int | None = None,
    ) -> None:
        """Check `rows` (the call's rows from `first_index`); `upsert`: the call's `on_conflict`
        (see `Upsert`); `sample_of`: the rows are the first of a row set of that many (the rest are
        not made)."""
        target = self._report.target(self.connection_id, "insert", table)
        table = self._canonical(table)  # as foreign keys name it
        target.rows += sample_of if sample_of is not None else len(rows)
        target.rows_checked += len(rows)
        if sample_of is not None and sample_of > len(rows):
            self._partial.add(table)
            self._report.unchecked(
                target,
                f"a row set of {sample_of:,} rows: its first {len(rows):,} were made and checked in full "
                "(the same templates make the rest); keys beyond them are not checked",
            )
        if not rows:
            return  # a real run does not touch the table for no rows: neither is it read here
        schema = self._schema(table, target, call)
        if schema is None:
            return
        fields = list(dict.fromkeys(name for row in rows for name in row))
        self._fields(schema, table, target, rows, fields, first_index, call)
        checks = self._compiled(schema, target)
        keys = schema.keys()
        written = self._written.setdefault(table, {})
        arbiter = self._arbiter(schema, table, target, upsert, call)
        # Rows whose conflict key is taken (they update or skip a row): no duplicate of theirs.
        updates: set[int] | None = None  # None: every row's every key (MySQL; ignore without key)
        if upsert is None:
            updates = set()
        elif arbiter is not None:
            updates = self._updates(schema, table, target, arbiter, rows, first_index, upsert, call)
        new_keys: dict[tuple[str, ...], dict[tuple[Any, ...], int]] = {cols: {} for cols in keys}
        # The keys of rows that are inserted, to look up in the table (an arbiter's were).
        inserted: dict[tuple[str, ...], dict[tuple[Any, ...], int]] = {cols: {} for cols in keys}
        remembered = 0  # bytes the new keys will hold
        references: list[dict[tuple[Any, ...], int]] = [{} for _ in schema.foreign_keys]
        for offset, row in enumerate(rows):
            index = first_index + offset
            values = self._row_values(schema, table, target, row, index, call, fields)
            for name, check in checks:
                ok, failed = check({k: v for k, v in values.items() if v is not _INVALID})
                if not ok:
                    self._report.problem(
                        target,
                        pb.DRY_RUN_PROBLEM_KIND_CHECK,
                        row=index,
                        field=failed,
                        value=row.get(failed),
                        message=f"violates check constraint {name}: change the value or the constraint",
                        call=call,
                    )
            checked = updates is not None and offset not in updates
            for cols in keys:
                key = _key(values, cols)
                if key is None:
                    continue
                if key in new_keys[cols] or key in written.get(cols, ()):
                    if checked and cols != arbiter:
                        self._duplicate(target, table, cols, key, index, call, "earlier in this run")
                    continue
                new_keys[cols][key] = index
                if checked and cols != arbiter:
                    inserted[cols][key] = index
                remembered += _key_bytes(key)
            for fk, pending in zip(schema.foreign_keys, references, strict=True):
                key = _key(values, fk.columns)
                if key is not None and key not in pending:
                    pending[key] = index
        self._existing_duplicates(target, table, inserted, call)
        count = sum(len(found) for found in new_keys.values())
        self._hold(remembered, f"keys of {count:,} rows the dry run checks later rows against")
        for cols, found in new_keys.items():
            written.setdefault(cols, set()).update(found)
        for fk, pending in zip(schema.foreign_keys, references, strict=True):
            self._dangling(target, table, fk, pending, call)

    def _fields(
        self,
        schema: TableSchema,
        table: str,
        target: pb.DryRunTarget,
        rows: Sequence[Mapping[str, Any]],
        fields: Sequence[str],
        first_index: int,
        call: int,
    ) -> None:
        """Fields without a column, and NOT NULL columns without a default the rows leave out."""
        for name in fields:
            if name not in schema.columns:
                first = next(i for i, row in enumerate(rows) if name in row)
                self._report.problem(
                    target,
                    pb.DRY_RUN_PROBLEM_KIND_MISSING_COLUMN,
                    row=first_index + first,
                    field=name,
                    value=rows[first][name],
                    message=f"table {table} has no column {name}: add the column, or drop or rename "
                    "the field",
                    call=call,
                )
        for column in schema.columns.values():
            if column.name not in fields and not column.nullable and not column.has_default:
                self._report.problem(
                    target,
                    pb.DRY_RUN_PROBLEM_KIND_NOT_NULL,
                    row=first_index,
                    field=column.name,
                    message=f"{table}.{column.name} is NOT NULL without a default and the rows give it "
                    "no value: give the field a value, or the column a default",
                    call=call,
                )

    def _arbiter(
        self, schema: TableSchema, table: str, target: pb.DryRunTarget, upsert: Upsert | None, call: int
    ) -> tuple[str, ...] | None:
        """The unique key an upsert's conflicts are decided on, as the table lists it; None when
        every unique key's conflict is the upsert's (no duplicate to report) or for a plain insert."""
        if upsert is None or not upsert.key or self._catalog.dialect in ("mysql", "mariadb"):
            return None
        wanted = set(upsert.key)
        unique = schema.keys()
        found = next((cols for cols in unique if set(cols) == wanted), None)
        if found is None:
            self._report.problem(
                target,
                pb.DRY_RUN_PROBLEM_KIND_DUPLICATE_KEY,
                row=-1,
                field=",".join(upsert.key),
                message=f"no primary key, unique constraint or unique index of {table} is exactly "
                f"({', '.join(upsert.key)}): the database refuses ON CONFLICT on it; name such a key "
                "in key=[...]",
                call=call,
            )
        return found

    def _updates(
        self,
        schema: TableSchema,
        table: str,
        target: pb.DryRunTarget,
        arbiter: tuple[str, ...],
        rows: Sequence[Mapping[str, Any]],
        first_index: int,
        upsert: Upsert,
        call: int,
    ) -> set[int]:
        """The rows (offsets) whose conflict key the table, the run or an earlier row of the call
        holds: the upsert updates or skips a row for them. A key twice in one statement of a
        `DO UPDATE` is reported: PostgreSQL refuses to update one row twice in a statement."""
        written = self._written.get(table, {}).get(arbiter, set())
        # The conflict keys as the database holds them (a value that does not convert is reported
        # with its row, and decides nothing here).
        all_keys = [_key(_quiet(schema, row, arbiter), arbiter) for row in rows]
        fresh: dict[tuple[Any, ...], int] = {}
        for offset, key in enumerate(all_keys):
            if key is not None and key not in written and key not in fresh:
                fresh[key] = offset
        try:
            in_table = self._catalog.existing(table, arbiter, fresh) if fresh else set()
        except sa_exc.SQLAlchemyError as exc:
            self._report.unchecked(
                target,
                f"existing keys ({', '.join(arbiter)}) not read: {_reason(exc)}; the upsert's "
                "other unique keys are not checked",
            )
            return set(range(len(rows)))
        refuses_twice = upsert.on_conflict == "update" and self._catalog.dialect == "postgresql"
        statement = upsert.statement or (lambda index: 0)
        updates: set[int] = set()
        last: dict[tuple[Any, ...], int] = {}
        for offset, key in enumerate(all_keys):
            if key is None:
                continue  # NULL never conflicts: an insert
            index = first_index + offset
            earlier = last.get(key)
            if earlier is not None:
                updates.add(offset)
                if refuses_twice and statement(first_index + earlier) == statement(index):
                    self._report.problem(
                        target,
                        pb.DRY_RUN_PROBLEM_KIND_DUPLICATE_KEY,
                        row=index,
                        field=",".join(arbiter),
                        value=key[0] if len(key) == 1 else list(key),
                        message=f"key ({', '.join(arbiter)}) of {table} also in row {first_index + earlier} "
                        "of the same upsert statement: PostgreSQL refuses it (ON CONFLICT DO UPDATE "
                        "command cannot affect row a second time); give each key once per call",
                        call=call,
                    )
            elif key in written or key in in_table:
                updates.add(offset)
            last[key] = offset
        return updates

    def _row_values(
        self,
        schema: TableSchema,
        table: str,
        target: pb.DryRunTarget,
        row: Mapping[str, Any],
        index: int,
        call: int,
        fields: Sequence[str],
    ) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name in fields:
            column = schema.columns.get(name)
            if column is None:
                continue
            value = row.get(name)
            if value is None:
                if not column.nullable:
                    self._report.problem(
                        target,
                        pb.DRY_RUN_PROBLEM_KIND_NOT_NULL,
                        row=index,
                        field=name,
                        message=f"NULL into {table}.{name}, which is NOT NULL",
                        call=call,
                    )
                values[name] = None
                continue
            try:
                values[name] = convert(column.type, value)
            except Mismatch as exc:
                self._report.problem(
                    target,
                    pb.DRY_RUN_PROBLEM_KIND_TYPE_MISMATCH,
                    row=index,
                    field=name,
                    value=value,
                    message=f"{exc} ({table}.{name} is {_type_name(column.type)})",
                    call=call,
                )
                values[name] = _INVALID
        return values

    def _duplicate(
        self,
        target: pb.DryRunTarget,
        table: str,
        cols: tuple[str, ...],
        key: tuple[Any, ...],
        index: int,
        call: int,
        where: str,
    ) -> None:
        self._report.problem(
            target,
            pb.DRY_RUN_PROBLEM_KIND_DUPLICATE_KEY,
            row=index,
            field=",".join(cols),
            value=key[0] if len(key) == 1 else list(key),
            message=f"duplicate key ({', '.join(cols)}) of {table}: already written {where}; make the "
            "key unique (a template's unique field), or upsert with on_conflict",
            call=call,
        )

    def _existing_duplicates(
        self,
        target: pb.DryRunTarget,
        table: str,
        new_keys: Mapping[tuple[str, ...], Mapping[tuple[Any, ...], int]],
        call: int,
    ) -> None:
        for cols, found in new_keys.items():
            if not found:
                continue
            try:
                existing = self._catalog.existing(table, cols, found)
            except sa_exc.SQLAlchemyError as exc:
                self._report.unchecked(target, f"existing keys ({', '.join(cols)}) not read: {_reason(exc)}")
                continue
            for key in sorted(existing, key=lambda k: found.get(k, 0)):
                if key in found:
                    self._duplicate(target, table, cols, key, found[key], call, "in the table")

    def _dangling(
        self, target: pb.DryRunTarget, table: str, fk: Any, pending: dict[tuple[Any, ...], int], call: int
    ) -> None:
        if not pending:
            return
        known = self._written.get(fk.referred_table, {}).get(fk.referred_columns, set())
        missing = {k: i for k, i in pending.items() if k not in known}
        if not missing:
            return
        what = f"({', '.join(fk.columns)}) → {fk.referred_table}({', '.join(fk.referred_columns)})"
        try:
            found = self._catalog.existing(fk.referred_table, fk.referred_columns, missing)
        except sa_exc.SQLAlchemyError as exc:
            self._report.unchecked(target, f"foreign key {what} not checked: {_reason(exc)}")
            return
        dangling = {k: i for k, i in missing.items() if k not in found}
        if dangling and fk.referred_table in self._partial:
            self._report.unchecked(
                target,
                f"foreign key {what}: {len(dangling):,} values not checked: {fk.referred_table} gets a "
                "row set of which only a sample was made",
            )
            return
        for key, index in sorted(dangling.items(), key=lambda item: item[1]):
            self._report.problem(
                target,
                pb.DRY_RUN_PROBLEM_KIND_FOREIGN_KEY,
                row=index,
                field=",".join(fk.columns),
                value=key[0] if len(key) == 1 else list(key),
                message=f"foreign key {what} would dangle: no such row in the table or earlier in this "
                f"run; insert the {fk.referred_table} row first, or pick the value from its rows",
                call=call,
            )

    def returning(
        self, table: str, rows: Sequence[Mapping[str, Any]], columns: Sequence[str]
    ) -> list[dict[str, Any]]:
        """What `returning` answers in a dry run: the rows' own values, and for an absent integer
        column the database fills (a serial key), made-up values from one past the table's largest,
        counted per table: deterministic for a given database, and known to later checks."""
        table = self._canonical(table)
        if table not in self._schemas:
            # `check` reported the target's trouble: no made-up ids then.
            with contextlib.suppress(sa_exc.SQLAlchemyError):
                self._schemas[table] = self._read_schema(table)
        schema = self._schemas.get(table)
        out = []
        for row in rows:
            returned = {}
            for name in columns:
                if name in row:
                    returned[name] = row[name]
                    continue
                column = schema.columns.get(name) if schema else None
                if column is not None and isinstance(column.type, sa.Integer) and column.has_default:
                    slot = (table, name)
                    if slot not in self._next_ids:
                        self._next_ids[slot] = self._catalog.next_value(table, name)
                    returned[name] = self._next_ids[slot]
                    self._next_ids[slot] += 1
                    self._written.setdefault(table, {}).setdefault((name,), set()).add((returned[name],))
                else:
                    returned[name] = None
            out.append(returned)
        return out


def _key(values: Mapping[str, Any], cols: Sequence[str]) -> tuple[Any, ...] | None:
    """The row's values of `cols`, or None when one is absent, NULL or did not convert (SQL: a key
    with a NULL is never a duplicate)."""
    out = []
    for col in cols:
        value = values.get(col)
        if value is None or value is _INVALID:
            return None
        out.append(value)
    return tuple(out)


def _quiet(schema: TableSchema, row: Mapping[str, Any], cols: Sequence[str]) -> dict[str, Any]:
    """The row's values of `cols` converted to their columns' types; `_INVALID` where one does not."""
    out: dict[str, Any] = {}
    for col in cols:
        column = schema.columns.get(col)
        try:
            out[col] = convert(column.type, row.get(col)) if column is not None else _INVALID
        except Mismatch:
            out[col] = _INVALID
    return out


def _key_bytes(key: tuple[Any, ...]) -> int:
    return KEY_BYTES + sum(len(v) for v in key if isinstance(v, str | bytes))


def _type_name(type_: Any) -> str:
    try:
        return str(type_).lower()
    except Exception:  # noqa: BLE001 - a type that cannot compile without a dialect
        return type(type_).__name__.lower()


def _reason(exc: Exception) -> str:
    orig = getattr(exc, "orig", None)
    return (str(orig) if orig is not None else str(exc)).splitlines()[0][:300]
