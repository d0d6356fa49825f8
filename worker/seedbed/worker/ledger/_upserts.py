"""Undoing an upsert: what each row was before the batch, and what the batch made it.

An upsert (`on_conflict="update"` or `"ignore"`) may change rows that existed before the run, so
deleting its rows by key would delete data the run did not create. In the batch's own transaction,
before the rows are written, the ledger locks and reads the rows the batch names by its identity
columns (the upsert's `key`, else the table's primary key), each whole, or NULL when there is none;
after the write it reads them again and keeps a SHA-256 of each. Both go into the entry's
`row_keys` (so the ledger's MAC covers them):

    {"columns": [...], "values": [[...], ...],
     "upsert": {"by": "postgresql", "prior": [row JSON or null, ...], "after": [sha256 hex or null, ...],
                "unknown": [index, ...]}}

The lock before the write cannot hold a row that is not there yet: a row someone else inserts
between the read and the upsert was read as "none", and the upsert then updates it. Deleting it on
a purge would delete their row. So after the write, before anything else locks them, the ledger
asks PostgreSQL which rows this transaction inserted (`inserted`: the row version's `xmin` is the
transaction's own id and its `xmax` is 0; an ON CONFLICT DO UPDATE leaves the transaction's id in
`xmax`, as `RETURNING (xmax = 0)` shows, PostgreSQL 13 to 17). A row read as "none" that the batch
did not insert is, for `ignore`, a row the batch left as it was (its prior is what it is now), and
for `update` a row whose prior state is unknown: its index goes into `unknown`, and a purge leaves
it, listed with why. Through SQLAlchemy the same check is made on PostgreSQL; SQLite's write
transaction holds the whole file, and MySQL/MariaDB's FOR UPDATE read takes next-key (gap) locks
under their default REPEATABLE READ, so no row can arrive in between; under READ COMMITTED, which
takes no gap locks, the race stays open there (`inserted` answers None: nothing is known).

PostgreSQL (`PostgresUpserts`) reads a row as its own JSON (`row_to_json`) and puts it back with
`json_populate_record`, every value converted by PostgreSQL itself, so numerics, dates, bytea and
arrays come back exactly. Through SQLAlchemy (`SqlAlchemyUpserts`: SQLite, MySQL/MariaDB) a row is
read by its key as Python values, kept as JSON with a type tag where JSON has none (decimals, dates,
bytes…), and put back by an UPDATE of those values.

A purge then, per row and in the batch's transaction: a row that is no longer exactly as the batch
left it (its hash differs, or it is gone while a prior row existed) was changed since by someone
else and is left alone, listed with why; a row the batch created is deleted; a row it changed is
put back as it was (an UPDATE of its columns that are not generated); a row an `ignore` left as it
was needs nothing. A dry run changes nothing and carries what each row would become from newer
batches to older ones.

Rejected: on PostgreSQL, prior rows as Python values (arrays, ranges and the like do not all
survive a round trip through psycopg's Python types and back); DELETE then INSERT of the prior
row (an ON DELETE CASCADE would take the rows that reference it); a side table of prior rows (a
second thing to seal and to keep in step with the ledger, when the ledger row already commits
with the batch).
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from datetime import time as time_of_day
from decimal import Decimal
from typing import Any
from uuid import UUID

import psycopg
import sqlalchemy as sa
from psycopg import sql

from seedbed.worker.ledger._keys import _TYPES, _bare, _cast, _key_value
from seedbed.worker.sinks import PostgresSink, SqlAlchemySink, TargetError
from seedbed.worker.sinks._rows import split_table

__all__ = ["PostgresUpserts", "SqlAlchemyUpserts", "UpsertUndo", "UpsertUndone", "row_hash", "settle"]

# Rows a purge lists by key when they were changed since (the rest are counted).
LISTED_ROWS = 20
_GENERATED = (
    "SELECT a.attname FROM pg_attribute a WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0"
    " AND NOT a.attisdropped AND a.attgenerated = '' AND a.attidentity <> 'a'"
)


def row_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class UpsertUndo:
    """What an upsert batch recorded: identity columns, each row's key, prior JSON, hash after."""

    columns: list[str]
    values: list[list[Any]]
    prior: list[str | None]
    after: list[str | None]
    # Who read the rows: "postgresql" (row_to_json) or "sqlalchemy" (typed JSON of Python values).
    by: str = "postgresql"
    # Rows the batch updated whose prior state is unknown (inserted by someone else meanwhile).
    unknown: list[int] = field(default_factory=list)

    def encode(self) -> str:
        upsert: dict[str, Any] = {"by": self.by, "prior": self.prior, "after": self.after}
        if self.unknown:
            upsert["unknown"] = self.unknown
        return json.dumps(
            {
                "columns": self.columns,
                "values": self.values,
                "upsert": upsert,
            },
            separators=(",", ":"),
            default=_key_value,
        )

    @classmethod
    def decode(cls, recorded: Mapping[str, Any]) -> UpsertUndo:
        """From the parsed `row_keys`; ValueError when its shape is not an upsert's."""
        upsert = recorded.get("upsert")
        columns, values = recorded.get("columns"), recorded.get("values")
        if not isinstance(upsert, Mapping) or not isinstance(columns, list) or not isinstance(values, list):
            raise ValueError("not an upsert's record")
        prior, after = upsert.get("prior"), upsert.get("after")
        if not isinstance(prior, list) or not isinstance(after, list):
            raise ValueError("an upsert's record without its prior and after lists")
        if not len(prior) == len(after) == len(values):
            raise ValueError("an upsert's record whose lists do not match")
        unknown = upsert.get("unknown", [])
        if not isinstance(unknown, list) or not all(
            isinstance(i, int) and not isinstance(i, bool) and 0 <= i < len(values) for i in unknown
        ):
            raise ValueError("an upsert's record whose unknown rows are not indexes of its rows")
        return cls(columns, values, prior, after, str(upsert.get("by", "postgresql")), unknown)


def settle(
    prior: Sequence[str | None], now: Sequence[str | None], inserted: Sequence[bool] | None, *, ignore: bool
) -> tuple[list[str | None], list[int]]:
    """The prior rows to record and the indexes of those unknown, from the rows read before the
    write (`prior`), after it (`now`), and which of them the batch inserted (None: not known). A
    row read as none that the batch did not insert was inserted by someone else meanwhile (see the
    module's note): an `ignore` left it as it is, an `update` changed it from a state nobody read."""
    settled: list[str | None] = list(prior)
    unknown: list[int] = []
    if inserted is None:
        return settled, unknown
    for index, (was, row, fresh) in enumerate(zip(prior, now, inserted, strict=True)):
        if was is None and row is not None and not fresh:
            if ignore:
                settled[index] = row
            else:
                unknown.append(index)
    return settled, unknown


@dataclass
class UpsertUndone:
    """One upsert batch purged (or, in a dry run, looked at): rows deleted, restored, left as the
    batch found them, already gone, and those changed since (`changed`, the first few listed)."""

    deleted: int = 0
    restored: int = 0
    untouched: int = 0
    gone: int = 0
    changed: int = 0
    listed: list[tuple[str, str]] = field(default_factory=list)  # (key as JSON, reason)


class PostgresUpserts:
    """The reads before and after an upsert batch, and its undo, on one PostgreSQL sink."""

    by = "postgresql"

    def __init__(self, sink: PostgresSink) -> None:
        self._sink = sink

    def _regclass(self, conn: psycopg.Connection[Any], table: str) -> str:
        schema, name = split_table(table, self._sink.connection_id)
        return (sql.Identifier(schema, name) if schema else sql.Identifier(name)).as_string(conn)

    def inserted(
        self, conn: psycopg.Connection[Any], table: str, columns: list[str], values: Sequence[Sequence[Any]]
    ) -> list[bool] | None:
        """Whether this transaction inserted each keyed row (not updated it, nor left someone
        else's), in the order of `values`. Read right after the write, before anything locks the
        rows again (a lock of this transaction would set `xmax`)."""
        if not values:
            return []
        regclass, arrays, names, params = self._keyed(conn, table, columns, values)
        joined = sql.SQL(" AND ").join(sql.SQL("t.{0} = u.{0}").format(sql.Identifier(c)) for c in columns)
        statement = sql.SQL(
            "SELECT COALESCE(t.xmin = pg_current_xact_id()::xid AND t.xmax = '0'::xid, false)"
            " FROM unnest({arrays}) WITH ORDINALITY AS u({names}, seedbed_ord)"
            " LEFT JOIN {target} t ON {joined} ORDER BY u.seedbed_ord"
        ).format(arrays=arrays, names=names, target=sql.SQL(regclass), joined=joined)
        return [bool(r[0]) for r in conn.execute(statement, params).fetchall()]

    def _keyed(
        self, conn: psycopg.Connection[Any], table: str, columns: list[str], values: Sequence[Sequence[Any]]
    ) -> tuple[str, sql.Composable, sql.Composable, list[list[Any]]]:
        """(the table's regclass, the keys as typed arrays, their column names, the arrays' values)."""
        regclass = self._regclass(conn, table)
        types = dict(conn.execute(_TYPES, [regclass, columns]).fetchall())
        missing = [c for c in columns if c not in types]
        if missing:
            raise TargetError(
                connection_id=self._sink.connection_id,
                operation="upsert",
                table=table,
                db_message=f"table {table} has no column {missing[0]!r} (a key of the upsert)",
            )
        arrays = sql.SQL(", ").join(sql.SQL("%s::{}[]").format(sql.SQL(types[c])) for c in columns)
        names = sql.SQL(", ").join(map(sql.Identifier, columns))
        return regclass, arrays, names, [list(column) for column in zip(*values, strict=True)]

    def rows(
        self, conn: psycopg.Connection[Any], table: str, columns: list[str], values: Sequence[Sequence[Any]]
    ) -> list[str | None]:
        """Each keyed row as JSON (None: there is none), in the order of `values`, locked for the
        rest of the transaction."""
        if not values:
            return []
        regclass, arrays, names, params = self._keyed(conn, table, columns, values)
        target = sql.SQL(regclass)
        conn.execute(
            sql.SQL("SELECT 1 FROM {} WHERE ({}) IN (SELECT * FROM unnest({})) FOR UPDATE").format(
                target, names, arrays
            ),
            params,
        )
        joined = sql.SQL(" AND ").join(sql.SQL("t.{0} = u.{0}").format(sql.Identifier(c)) for c in columns)
        statement = sql.SQL(
            "SELECT CASE WHEN t.{first} IS NULL THEN NULL ELSE row_to_json(t)::text END"
            " FROM unnest({arrays}) WITH ORDINALITY AS u({names}, seedbed_ord)"
            " LEFT JOIN {target} t ON {joined} ORDER BY u.seedbed_ord"
        ).format(first=sql.Identifier(columns[0]), arrays=arrays, names=names, target=target, joined=joined)
        return [r[0] for r in conn.execute(statement, params).fetchall()]

    def undo(
        self,
        conn: psycopg.Connection[Any],
        table: str,
        undo: UpsertUndo,
        *,
        dry_run: bool,
        simulated: dict[tuple[str, str], str | None] | None = None,
    ) -> UpsertUndone:
        """Put the batch's rows back as they were, newest row first, in the caller's transaction.
        A dry run changes nothing and keeps in `simulated` what each row would be after the
        batches it looked at, so that older batches of the run see what a purge would leave."""
        done = UpsertUndone()
        found = conn.execute("SELECT to_regclass(%s)", [self._regclass(conn, table)]).fetchone()
        if found is None or found[0] is None:
            done.gone = len(undo.values)  # the table is gone, its rows with it
            return done
        now = self.rows(conn, table, undo.columns, undo.values)
        unknown = set(undo.unknown)
        regclass = self._regclass(conn, table)
        settable = {str(r[0]) for r in conn.execute(_GENERATED, [regclass]).fetchall()}
        where = sql.SQL(" AND ").join(sql.SQL("{} = %s").format(sql.Identifier(c)) for c in undo.columns)
        for index in reversed(range(len(undo.values))):
            key, prior = undo.values[index], undo.prior[index]
            current = _simulated(simulated, table, key, now[index])
            action = _decide(done, key, prior, undo.after[index], current, index in unknown)
            if action is None:
                continue
            if dry_run:
                _count(done, prior, simulated, table, key)
                continue
            if action == "delete":
                conn.execute(sql.SQL("DELETE FROM {} WHERE {}").format(sql.SQL(regclass), where), key)
                done.deleted += 1
                continue
            columns = [c for c in json.loads(prior or "{}") if c in settable]
            names = sql.SQL(", ").join(map(sql.Identifier, columns))
            conn.execute(
                sql.SQL(
                    "UPDATE {target} SET ({names}) = (SELECT {names} FROM"
                    " json_populate_record(NULL::{target}, %s::json)) WHERE {where}"
                ).format(target=sql.SQL(regclass), names=names, where=where),
                [prior, *key],
            )
            done.restored += 1
        return done


def _changed(done: UpsertUndone, key: list[Any], reason: str) -> None:
    done.changed += 1
    if len(done.listed) < LISTED_ROWS:
        done.listed.append((json.dumps(key, default=_key_value), reason))


class SqlAlchemyUpserts:
    """The same through SQLAlchemy (SQLite, MySQL/MariaDB, PostgreSQL by a "sql" connection): each
    row read by its key (locked with FOR UPDATE where the database has it; SQLite's write
    transaction holds the whole file), as JSON of its Python values, each typed where JSON has no
    type of its own (`_tagged`: decimals, dates and times, bytes, uuids, JSON documents), and put
    back from them by an UPDATE of the columns that are not generated. One statement per row: a
    purge or an upsert batch of 10,000 rows costs 10,000 small queries more, where the batch's own
    rows are matched exactly whatever the types."""

    by = "sqlalchemy"

    def __init__(self, sink: SqlAlchemySink) -> None:
        self._sink = sink

    def _shape(
        self, conn: sa.Connection, table: str
    ) -> tuple[sa.TableClause, list[str], set[str], dict[str, Any]] | None:
        """(table, its columns, those an UPDATE may set, column types); None when it is gone."""
        schema, name = split_table(table, self._sink.connection_id)
        inspector = sa.inspect(conn)
        if not inspector.has_table(name, schema=schema):
            return None
        described = inspector.get_columns(name, schema=schema)
        names = [str(c["name"]) for c in described]
        settable = {str(c["name"]) for c in described if not c.get("computed")}
        types = {str(c["name"]): c["type"] for c in described}
        return sa.table(name, *(sa.column(c) for c in names), schema=schema), names, settable, types

    def _where(
        self,
        conn: sa.Connection,
        lite: sa.TableClause,
        types: dict[str, Any],
        columns: list[str],
        key: Sequence[Any],
    ) -> Any:
        # As `SqlAlchemyTableKeys`: PostgreSQL binds text as varchar, so cast to the column's type.
        pg = conn.dialect.name == "postgresql"
        return sa.and_(
            *(
                lite.c[c] == (_cast(v, types[c]) if pg else _bare(v))
                for c, v in zip(columns, key, strict=True)
            )
        )

    def rows(
        self, conn: sa.Connection, table: str, columns: list[str], values: Sequence[Sequence[Any]]
    ) -> list[str | None]:
        shape = self._shape(conn, table)
        if shape is None:
            if not values:
                return []
            raise TargetError(
                connection_id=self._sink.connection_id,
                operation="upsert",
                table=table,
                db_message=f"no table {table}",
            )
        lite, names, _, types = shape
        missing = [c for c in columns if c not in types]
        if missing:
            raise TargetError(
                connection_id=self._sink.connection_id,
                operation="upsert",
                table=table,
                db_message=f"table {table} has no column {missing[0]!r} (a key of the upsert)",
            )
        lock = conn.dialect.name != "sqlite"
        out: list[str | None] = []
        for key in values:
            query = sa.select(lite).where(self._where(conn, lite, types, columns, key))
            found = conn.execute(query.with_for_update() if lock else query).mappings().first()
            out.append(None if found is None else _row_json(names, found))
        return out

    def inserted(
        self, conn: sa.Connection, table: str, columns: list[str], values: Sequence[Sequence[Any]]
    ) -> list[bool] | None:
        """As `PostgresUpserts.inserted` on PostgreSQL; None elsewhere (SQLite and MySQL/MariaDB
        need it not: see the module's note)."""
        if conn.dialect.name != "postgresql" or not values:
            return None
        shape = self._shape(conn, table)
        if shape is None:
            return None
        lite, _, _, types = shape
        mine: sa.ColumnClause[Any] = sa.literal_column("xmin = pg_current_xact_id()::xid AND xmax = '0'::xid")
        out: list[bool] = []
        for key in values:
            found = conn.execute(
                sa.select(mine).select_from(lite).where(self._where(conn, lite, types, columns, key))
            )
            out.append(bool(found.scalar()))
        return out

    def undo(
        self,
        conn: sa.Connection,
        table: str,
        undo: UpsertUndo,
        *,
        dry_run: bool,
        simulated: dict[tuple[str, str], str | None] | None = None,
    ) -> UpsertUndone:
        """As `PostgresUpserts.undo`."""
        done = UpsertUndone()
        shape = self._shape(conn, table)
        if shape is None:
            done.gone = len(undo.values)
            return done
        lite, _, settable, types = shape
        now = self.rows(conn, table, undo.columns, undo.values)
        unknown = set(undo.unknown)
        for index in reversed(range(len(undo.values))):
            key, prior = undo.values[index], undo.prior[index]
            current = _simulated(simulated, table, key, now[index])
            action = _decide(done, key, prior, undo.after[index], current, index in unknown)
            if action is None:
                continue
            if dry_run:
                _count(done, prior, simulated, table, key)
                continue
            where = self._where(conn, lite, types, undo.columns, key)
            if action == "delete":
                conn.execute(sa.delete(lite).where(where))
                done.deleted += 1
                continue
            values = {c: _untagged(v) for c, v in json.loads(prior or "{}").items() if c in settable}
            values = {c: v for c, v in values.items() if c not in undo.columns}
            if values:
                conn.execute(sa.update(lite).where(where).values(values))
            done.restored += 1
        return done


def _simulated(
    simulated: dict[tuple[str, str], str | None] | None, table: str, key: list[Any], current: str | None
) -> str | None:
    name = (table, json.dumps(key, default=_key_value))
    if simulated is not None and name in simulated:
        return simulated[name]
    return current


def _count(
    done: UpsertUndone,
    prior: str | None,
    simulated: dict[tuple[str, str], str | None] | None,
    table: str,
    key: list[Any],
) -> None:
    """A dry run's row: counted, and what it would be after the purge kept for older batches."""
    done.deleted += prior is None
    done.restored += prior is not None
    if simulated is not None:
        simulated[(table, json.dumps(key, default=_key_value))] = prior


def _decide(
    done: UpsertUndone,
    key: list[Any],
    prior: str | None,
    after: str | None,
    current: str | None,
    unknown: bool = False,
) -> str | None:
    """What to do with a row: "delete", "restore", or None when it is left as it is (counted as
    gone, untouched or changed)."""
    if unknown:
        _changed(
            done,
            key,
            "prior unknown: someone else inserted it while the run's upsert was written, and the "
            "upsert updated it; left as it is (not deleted, not put back)",
        )
        return None
    if current is None:
        if prior is None:
            done.gone += 1
        else:
            _changed(done, key, "deleted since the run wrote it: not put back")
        return None
    if after is None or row_hash(current) != after:
        _changed(
            done,
            key,
            "changed since the run wrote it (by someone else, or the table's columns changed): "
            "left as it is, not overwritten",
        )
        return None
    if prior is not None and row_hash(prior) == after:
        done.untouched += 1  # the batch left it as it was (on_conflict="ignore")
        return None
    return "delete" if prior is None else "restore"


def _tagged(value: Any) -> Any:
    """A database value as JSON that gives the same Python value back (`_untagged`)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else {"$float": repr(value)}
    if isinstance(value, Decimal):
        return {"$decimal": str(value)}
    if isinstance(value, datetime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, date):
        return {"$date": value.isoformat()}
    if isinstance(value, time_of_day):
        return {"$time": value.isoformat()}
    if isinstance(value, timedelta):
        return {"$timedelta": [value.days, value.seconds, value.microseconds]}
    if isinstance(value, bytes | bytearray | memoryview):
        return {"$bytes": base64.b64encode(bytes(value)).decode()}
    if isinstance(value, UUID):
        return {"$uuid": str(value)}
    if isinstance(value, dict | list):
        return {"$json": value}
    return {"$text": str(value)}


_UNTAG: dict[str, Callable[[Any], Any]] = {
    "$float": float,
    "$decimal": Decimal,
    "$datetime": datetime.fromisoformat,
    "$date": date.fromisoformat,
    "$time": time_of_day.fromisoformat,
    "$timedelta": lambda v: timedelta(days=v[0], seconds=v[1], microseconds=v[2]),
    "$bytes": base64.b64decode,
    "$uuid": UUID,
    "$json": lambda v: v,
    "$text": str,
}


def _untagged(value: Any) -> Any:
    if isinstance(value, dict) and len(value) == 1:
        tag, inner = next(iter(value.items()))
        convert = _UNTAG.get(tag)
        if convert is not None:
            return convert(inner)
    return value


def _row_json(names: list[str], row: Any) -> str:
    return json.dumps({name: _tagged(row[name]) for name in names}, separators=(",", ":"))
