"""The checks of the rows one call would write into one SQL table, against the table's live schema
and what the run itself wrote before (see the package's docstring for what is checked and how)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from seedbed.api.v1 import dryrun_pb2 as pb
from seedbed.worker.dryrun._report import ReportBuilder
from seedbed.worker.dryrun._schema import Catalog, TableSchema
from seedbed.worker.dryrun._values import Check, Mismatch, compile_check, convert

__all__ = ["SqlChecks"]

_INVALID = object()  # a value that did not convert: it takes part in no key
# What one remembered key costs in memory besides its text, estimated (a tuple, its value, a set
# slot); text and bytes values count their length too, or long keys would pass the budget cheap.
KEY_BYTES = 160


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
                self._schemas[table] = self._catalog.table(table)
            schema = self._schemas[table]
        except sa_exc.SQLAlchemyError as exc:
            if not target.problem_count:
                self._report.problem(
                    target,
                    pb.DRY_RUN_PROBLEM_KIND_TARGET_ERROR,
                    row=-1,
                    message=f"could not read the schema of {table}: {_reason(exc)}",
                    call=call,
                )
            return None
        missing = pb.DRY_RUN_PROBLEM_KIND_MISSING_TABLE
        if schema is None and not any(p.kind == missing for p in target.problems):
            self._report.problem(
                target,
                missing,
                row=-1,
                message=f"table {table} does not exist in connection {self.connection_id}",
                call=call,
            )
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
        upsert: bool = False,
        sample_of: int | None = None,
    ) -> None:
        """Check `rows` (the call's rows from `first_index`); `upsert`: existing keys are what the
        call updates or skips, not duplicates; `sample_of`: the rows are the first of a row set of
        that many (the rest are not made)."""
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
        for name in fields:
            if name not in schema.columns:
                first = next(i for i, row in enumerate(rows) if name in row)
                self._report.problem(
                    target,
                    pb.DRY_RUN_PROBLEM_KIND_MISSING_COLUMN,
                    row=first_index + first,
                    field=name,
                    value=rows[first][name],
                    message=f"table {table} has no column {name}",
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
                    "no value",
                    call=call,
                )
        checks = self._compiled(schema, target)
        keys = schema.keys()
        written = self._written.setdefault(table, {})
        new_keys: dict[tuple[str, ...], dict[tuple[Any, ...], int]] = {cols: {} for cols in keys}
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
                        message=f"violates check constraint {name}",
                        call=call,
                    )
            for cols in keys:
                key = _key(values, cols)
                if key is None:
                    continue
                if key in new_keys[cols] or key in written.get(cols, ()):
                    if not upsert:
                        self._duplicate(target, table, cols, key, index, call, "earlier in this run")
                    continue
                new_keys[cols][key] = index
                remembered += _key_bytes(key)
            for fk, pending in zip(schema.foreign_keys, references, strict=True):
                key = _key(values, fk.columns)
                if key is not None and key not in pending:
                    pending[key] = index
        self._existing_duplicates(target, table, new_keys, upsert, call)
        count = sum(len(found) for found in new_keys.values())
        self._hold(remembered, f"keys of {count:,} rows the dry run checks later rows against")
        for cols, found in new_keys.items():
            written.setdefault(cols, set()).update(found)
        for fk, pending in zip(schema.foreign_keys, references, strict=True):
            self._dangling(target, table, fk, pending, call)

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
            message=f"duplicate key ({', '.join(cols)}) of {table}: already written {where}",
            call=call,
        )

    def _existing_duplicates(
        self,
        target: pb.DryRunTarget,
        table: str,
        new_keys: Mapping[tuple[str, ...], Mapping[tuple[Any, ...], int]],
        upsert: bool,
        call: int,
    ) -> None:
        if upsert:
            return
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
                message=f"foreign key {what} would dangle: no such row in the table or earlier in this run",
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
                self._schemas[table] = self._catalog.table(table)
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
