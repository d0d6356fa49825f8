"""Row identities in a target table: its primary key, and deleting (or counting) rows by their keys.

The writer asks for a table's primary key once per table (to record the keys of the rows a batch
creates); a purge deletes by those keys. PostgreSQL goes through its catalog over psycopg, and
compares the keys as arrays cast to the key columns' own types (`col = ANY(%s::type[])`, `unnest`
for a composite key), so keys written as text (a uuid, a date) match without a cast in the script.
The other databases go through SQLAlchemy's inspector and `(cols) IN (…)` in chunks.

Rejected: comparing keys as text (`col::text = ANY(…)`), which works for every type but cannot use
the primary key's index; one statement per row.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import date, datetime
from datetime import time as time_of_day
from decimal import Decimal
from operator import itemgetter
from typing import Any, Protocol
from uuid import UUID

import numpy as np
import psycopg
import sqlalchemy as sa
from psycopg import sql
from sqlalchemy import exc as sa_exc

from seedbed.worker.sinks import PostgresSink, SqlAlchemySink, TargetError
from seedbed.worker.sinks._rows import split_table

__all__ = ["PostgresTableKeys", "SqlAlchemyTableKeys", "TableKeys", "decode_keys", "encode_keys"]

KeyValues = Sequence[Sequence[Any]]

_PRIMARY_KEY = (
    "SELECT a.attname FROM pg_index i"
    " JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)"
    " WHERE i.indrelid = to_regclass(%s) AND i.indisprimary"
    " ORDER BY array_position(i.indkey::int2[], a.attnum)"
)
# Types without their modifiers: a varchar(10) key is compared as varchar, never truncated.
_TYPES = (
    "SELECT a.attname, format_type(a.atttypid, NULL) FROM pg_attribute a"
    " WHERE a.attrelid = to_regclass(%s) AND a.attname = ANY(%s) AND a.attnum > 0 AND NOT a.attisdropped"
)
_PG_CHUNK = 10_000


class TableKeys(Protocol):
    def primary_key(self, table: str) -> list[str]:
        """The table's primary-key columns in key order; [] when it has none or does not exist."""
        ...

    def delete(self, conn: Any, table: str, columns: list[str], values: KeyValues) -> int:
        """Delete the rows with these keys, in the caller's transaction; how many there were."""
        ...

    def count(self, conn: Any, table: str, columns: list[str], values: KeyValues) -> int:
        """How many rows with these keys exist (what `delete` would delete)."""
        ...


def _missing_column(connection_id: str, table: str, column: str) -> TargetError:
    return TargetError(
        connection_id=connection_id,
        operation="purge",
        table=table,
        db_message=f"table {table} has no column {column!r} any more: its key changed since the run "
        "wrote it, so the rows cannot be found by the keys the ledger recorded",
    )


class PostgresTableKeys:
    def __init__(self, sink: PostgresSink) -> None:
        self._sink = sink

    def _regclass(self, conn: psycopg.Connection[Any], table: str) -> str:
        schema, name = split_table(table, self._sink.connection_id)
        return (sql.Identifier(schema, name) if schema else sql.Identifier(name)).as_string(conn)

    def primary_key(self, table: str) -> list[str]:
        def read(conn: psycopg.Connection[Any]) -> list[Any]:
            return conn.execute(_PRIMARY_KEY, [self._regclass(conn, table)]).fetchall()

        return [str(r[0]) for r in self._sink.transact(read, operation="read primary key")]

    def _each(
        self, conn: psycopg.Connection[Any], head: str, table: str, columns: list[str], values: KeyValues
    ) -> Iterator[psycopg.Cursor[Any]]:
        """`head table WHERE <the keys match>` run once per chunk of keys; nothing when the table is
        gone (its rows with it)."""
        regclass = self._regclass(conn, table)
        types = dict(conn.execute(_TYPES, [regclass, columns]).fetchall())
        if not types and conn.execute("SELECT to_regclass(%s)", [regclass]).fetchone() == (None,):
            return
        for column in columns:
            if column not in types:
                raise _missing_column(self._sink.connection_id, table, column)
        arrays = [sql.SQL("%s::{}[]").format(sql.SQL(types[c])) for c in columns]
        if len(columns) == 1:
            predicate = sql.SQL("{} = ANY({})").format(sql.Identifier(columns[0]), arrays[0])
        else:
            predicate = sql.SQL("({}) IN (SELECT * FROM unnest({}))").format(
                sql.SQL(", ").join(map(sql.Identifier, columns)), sql.SQL(", ").join(arrays)
            )
        statement = sql.SQL(head + " {} WHERE {}").format(sql.SQL(regclass), predicate)
        for start in range(0, len(values), _PG_CHUNK):
            chunk = values[start : start + _PG_CHUNK]
            yield conn.execute(statement, [list(column) for column in zip(*chunk, strict=True)])

    def delete(self, conn: psycopg.Connection[Any], table: str, columns: list[str], values: KeyValues) -> int:
        return sum(cursor.rowcount for cursor in self._each(conn, "DELETE FROM", table, columns, values))

    def count(self, conn: psycopg.Connection[Any], table: str, columns: list[str], values: KeyValues) -> int:
        cursors = self._each(conn, "SELECT count(*) FROM", table, columns, values)
        return sum(int((cursor.fetchone() or (0,))[0]) for cursor in cursors)


def _cast(value: Any, type_: Any) -> Any:
    return sa.cast(sa.literal(value), type_)


def _bare(value: Any) -> Any:
    return sa.literal(value)


class SqlAlchemyTableKeys:
    def __init__(self, sink: SqlAlchemySink) -> None:
        self._sink = sink

    def primary_key(self, table: str) -> list[str]:
        schema, name = split_table(table, self._sink.connection_id)

        def read(conn: sa.Connection) -> list[str]:
            try:
                found = sa.inspect(conn).get_pk_constraint(name, schema=schema)
            except sa_exc.NoSuchTableError:
                return []
            return [str(c) for c in found.get("constrained_columns") or []]

        return self._sink.transact(read, operation="read primary key")

    def _batches(
        self, conn: sa.Connection, table: str, columns: list[str], values: KeyValues
    ) -> list[tuple[sa.TableClause, Any]] | None:
        """(table, WHERE clause) per chunk of keys; None when the table is gone."""
        schema, name = split_table(table, self._sink.connection_id)
        inspector = sa.inspect(conn)
        if not inspector.has_table(name, schema=schema):
            return None
        types = {str(c["name"]): c["type"] for c in inspector.get_columns(name, schema=schema)}
        for column in columns:
            if column not in types:
                raise _missing_column(self._sink.connection_id, table, column)
        # The values reach the driver as recorded (ISO dates as text), as on insert. PostgreSQL
        # through SQLAlchemy binds text as varchar, which compares with no uuid: there each value is
        # cast to its column's type (elsewhere a CAST would change it: SQLite reads '2024-01-01' AS
        # DATE as 2024).
        casts: list[Callable[[Any], Any]]
        if conn.dialect.name == "postgresql":
            casts = [functools.partial(_cast, type_=types[c]) for c in columns]
        else:
            casts = [_bare for _ in columns]
        lite = sa.table(name, *(sa.column(c) for c in columns), schema=schema)
        size = max(1, 1_000 // len(columns))
        out: list[tuple[sa.TableClause, Any]] = []
        for start in range(0, len(values), size):
            chunk = values[start : start + size]
            if len(columns) == 1:
                out.append((lite, lite.c[columns[0]].in_([casts[0](v[0]) for v in chunk])))
            else:
                keys = [sa.tuple_(*(cast(x) for cast, x in zip(casts, v, strict=True))) for v in chunk]
                out.append((lite, sa.tuple_(*(lite.c[c] for c in columns)).in_(keys)))
        return out

    def delete(self, conn: sa.Connection, table: str, columns: list[str], values: KeyValues) -> int:
        batches = self._batches(conn, table, columns, values)
        return sum(conn.execute(sa.delete(lite).where(where)).rowcount for lite, where in batches or [])

    def count(self, conn: sa.Connection, table: str, columns: list[str], values: KeyValues) -> int:
        batches = self._batches(conn, table, columns, values)
        query = [sa.select(sa.func.count()).select_from(lite).where(where) for lite, where in batches or []]
        return sum(int(conn.execute(q).scalar_one()) for q in query)


def _key_value(value: Any) -> Any:
    """A key the database answered, as JSON that casts back to the same key: exact decimals, ISO
    dates. Anything else (bytes) cannot be matched reliably: the batch is not purgeable."""
    if isinstance(value, datetime | date | time_of_day):
        return value.isoformat()
    if isinstance(value, Decimal | UUID):
        return str(value)
    raise TypeError(f"a key of type {type(value).__name__}")


def encode_keys(columns: list[str], rows: Sequence[Mapping[str, Any]]) -> str | None:
    """`{"columns": [...], "values": [[...], ...]}` for `rows`, or None when a key is NULL or of a
    type that cannot be matched again.

    This runs in every batch's transaction, so the common case (one integer column) takes a short
    cut: json.dumps of the flat list with "],[" between the items, ~1 ms for 10,000 rows where
    nested lists took 2 (and the COPY of the rows ~30).
    """
    if len(columns) == 1:
        values = list(map(itemgetter(columns[0]), rows))
        if set(map(type, values)) == {int}:
            head = json.dumps({"columns": columns}, separators=(",", ":"))[:-1]
            flat = json.dumps(values, separators=("],[", ":"))  # "[1],[2],[3]" from [1, 2, 3]
            return f'{head},"values":[{flat}]}}'
        if None in values:
            return None
        body: list[Any] = [[v] for v in values]
    else:
        get = itemgetter(*columns)
        body = [list(get(row)) for row in rows]
        if any(None in v for v in body):
            return None
    try:
        return json.dumps({"columns": columns, "values": body}, separators=(",", ":"), default=_key_value)
    except (TypeError, ValueError):
        return None


def decode_keys(text: str) -> tuple[list[str], list[list[Any]]]:
    """The key columns and values a ledger entry recorded: listed (`encode_keys`), or derived — a
    bulk batch whose keys are a pure function of the row index records the key fields' template,
    the seed, its row range and the versions that computed them (`{"columns": [...], "derived":
    {"template", "seed", "start", "count", "generation", "faker"}}`), and the
    keys are computed again here, by the same generation version and Faker release only. Raises
    ValueError when they cannot be."""
    recorded = json.loads(text)
    columns: list[str] = recorded["columns"]
    derived = recorded.get("derived")
    if derived is None:
        values: list[list[Any]] = recorded["values"]
        return columns, values
    from seedbed.worker import templates

    made_by = (derived.get("generation"), derived.get("faker"))
    if made_by != (templates.GENERATION_VERSION, templates.FAKER_VERSION):
        raise ValueError(
            f"they were derived by generation {made_by[0]} with Faker {made_by[1]}, and this worker "
            f"has generation {templates.GENERATION_VERSION} with Faker {templates.FAKER_VERSION}: "
            "purge the run with a worker of that release"
        )
    spec = templates.validate_template(json.loads(derived["template"]))
    start, count = int(derived["start"]), int(derived["count"])
    generator = templates.Generator(spec, seed=int(derived["seed"]), max_rows=max(1, count))
    indices = np.arange(count, dtype=np.int64)
    keyed = []
    for column in columns:
        source = generator.derived(column, start, count)
        if source is None:
            raise ValueError(f"key column {column!r} is no longer derived from the row index")
        keyed.append(source.take(indices))
    return columns, [list(row) for row in zip(*keyed, strict=True)]
