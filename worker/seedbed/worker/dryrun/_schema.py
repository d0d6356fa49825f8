"""What a dry run knows of a target table: its columns, keys and constraints, read from the live
database once per table, and the few reads a check needs (which keys already exist).

`SqlCatalog` reads through SQLAlchemy's inspector (PostgreSQL's catalog, MariaDB's and SQLite's
alike) on a connection of its own that is read-only in the database (PostgreSQL:
`default_transaction_read_only`; MariaDB, MySQL and SQLite: see `_readonly`), so no bug of a dry run
can write. PostgreSQL sessions use the time zone UTC (as `convert` assumes for timestamptz).
`Catalog` is the port the checks use; the unit tests give them a fake.

Rejected: PostgreSQL catalog queries by hand (the inspector reads the same catalogs, and the other
dialects come free); reusing the sink's connection (the PostgreSQL sink is psycopg without
SQLAlchemy, and a sink may hold a transaction of the script's).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.pool import NullPool

from seedbed.worker.dryrun._readonly import read_only

__all__ = ["Catalog", "ColumnInfo", "ForeignKeyInfo", "SqlCatalog", "TableSchema", "split_name"]

# Keys looked up per statement (a `IN (...)` list).
LOOKUP_CHUNK = 1000
# As the PostgreSQL sink's default: an unreachable target fails the check, not the attempt's time.
CONNECT_TIMEOUT_SECONDS = 10


@dataclass(frozen=True)
class ColumnInfo:
    name: str
    type: Any  # a SQLAlchemy type instance
    nullable: bool = True
    # A server default, a sequence, an identity or an autoincrement key: an absent field is filled.
    has_default: bool = False


@dataclass(frozen=True)
class ForeignKeyInfo:
    columns: tuple[str, ...]
    referred_table: str  # as `split_name` normalises it
    referred_columns: tuple[str, ...]
    name: str = ""


@dataclass(frozen=True)
class CheckInfo:
    name: str
    sqltext: str


@dataclass
class TableSchema:
    name: str
    columns: dict[str, ColumnInfo]
    primary_key: tuple[str, ...] = ()
    uniques: list[tuple[str, ...]] = field(default_factory=list)
    foreign_keys: list[ForeignKeyInfo] = field(default_factory=list)
    checks: list[CheckInfo] = field(default_factory=list)
    # Why some constraints could not be read (a dialect without check constraints).
    unreadable: list[str] = field(default_factory=list)

    def keys(self) -> list[tuple[str, ...]]:
        """Every set of columns the table holds unique: the primary key first."""
        out = [self.primary_key] if self.primary_key else []
        for unique in self.uniques:
            if unique and unique not in out:
                out.append(unique)
        return out


def split_name(table: str) -> tuple[str | None, str]:
    """`schema.table` → (schema, table); a bare name → (None, table). Quotes are not interpreted."""
    schema, dot, name = table.rpartition(".")
    return (schema or None, name) if dot else (None, table)


class Catalog(Protocol):
    """What the checks read from a database target."""

    # SQLAlchemy's name of the database's dialect ("postgresql", "mysql", "mariadb", "sqlite"):
    # how an upsert meets unique keys differs between them.
    dialect: str

    def table(self, name: str) -> TableSchema | None:
        """The table's schema, None when it does not exist (read once per table)."""

    def existing(
        self, table: str, columns: Sequence[str], keys: Iterable[tuple[Any, ...]]
    ) -> set[tuple[Any, ...]]:
        """Those of `keys` (values of `columns`) the table already holds."""

    def next_value(self, table: str, column: str) -> int:
        """One past the largest integer in the column (1 when empty): where made-up ids start."""

    def canonical(self, table: str) -> str:
        """The name foreign keys use for `table`: without the default schema (`public.t` → `t`)."""

    def close(self) -> None: ...


class SqlCatalog:
    """A `Catalog` over one SQLAlchemy URL, read-only, one connection for the attempt."""

    def __init__(self, url: str, *, statement_timeout_seconds: int | None = None) -> None:
        parsed = sa.make_url(url)
        connect_args: dict[str, Any] = {}
        if parsed.get_backend_name() == "postgresql":
            # psycopg 3, as the sinks: the URL may name no driver.
            parsed = parsed.set(drivername="postgresql+psycopg")
            # UTC: timestamptz keys read back compare with the values asked (see `convert`).
            options = "-c default_transaction_read_only=on -c TimeZone=UTC"
            connect_args["connect_timeout"] = CONNECT_TIMEOUT_SECONDS
            if statement_timeout_seconds:
                # No lookup of the dry run outlives the attempt.
                options += f" -c statement_timeout={int(statement_timeout_seconds) * 1000}"
            connect_args["options"] = options
        self._engine = sa.create_engine(parsed, poolclass=NullPool, connect_args=connect_args)
        read_only(self._engine)  # MariaDB, MySQL, SQLite (PostgreSQL: the option above)
        self.dialect = self._engine.dialect.name
        self._conn: sa.Connection | None = None
        self._meta = sa.MetaData()
        self._default_schema: str | None = None
        # The tables read so far: key lookups bind their values as the columns' types (a PostgreSQL
        # enum or inet column is not compared with a varchar).
        self._read: dict[str, TableSchema] = {}

    def canonical(self, table: str) -> str:
        schema, name = split_name(table)
        if schema is None:
            return table
        if self._default_schema is None:
            self._default_schema = sa.inspect(self.conn).default_schema_name or ""
        return name if schema == self._default_schema else table

    @property
    def conn(self) -> sa.Connection:
        if self._conn is None:
            self._conn = self._engine.connect()
        return self._conn

    @contextmanager
    def _reading(self) -> Iterator[sa.Connection]:
        """The connection for one read; a failed read rolls its transaction back, or PostgreSQL
        would refuse every later read of the dry run (`current transaction is aborted`)."""
        try:
            yield self.conn
        except sa_exc.DBAPIError:
            if self._conn is not None:
                try:
                    self._conn.rollback()
                except sa_exc.DBAPIError:
                    self._conn.invalidate()
                    self._conn = None
            raise

    def table(self, name: str) -> TableSchema | None:
        with self._reading():
            found = self._read_table(name)
        if found is not None:
            self._read[name] = found
        return found

    def _read_table(self, name: str) -> TableSchema | None:
        schema, table = split_name(name)
        inspector = sa.inspect(self.conn)
        if not inspector.has_table(table, schema=schema):
            views = inspector.get_view_names(schema=schema)
            if table not in views:
                return None
        columns: dict[str, ColumnInfo] = {}
        for col in inspector.get_columns(table, schema=schema):
            has_default = bool(
                col.get("default") is not None
                or col.get("identity")
                or col.get("computed")
                or col.get("autoincrement") is True
            )
            columns[col["name"]] = ColumnInfo(col["name"], col["type"], bool(col["nullable"]), has_default)
        pk = tuple(inspector.get_pk_constraint(table, schema=schema).get("constrained_columns") or ())
        if len(pk) == 1 and pk[0] in columns:
            column = columns[pk[0]]
            # SQLite's INTEGER PRIMARY KEY and MariaDB's AUTO_INCREMENT key fill themselves.
            if isinstance(column.type, sa.Integer) and inspector.dialect.name in (
                "sqlite",
                "mysql",
                "mariadb",
            ):
                columns[pk[0]] = ColumnInfo(column.name, column.type, column.nullable, True)
        out = TableSchema(name, columns, pk)
        for unique in inspector.get_unique_constraints(table, schema=schema):
            out.uniques.append(tuple(unique["column_names"]))
        for index in inspector.get_indexes(table, schema=schema):
            names = index.get("column_names") or []
            if index.get("unique") and names and all(names):
                out.uniques.append(tuple(str(n) for n in names))
        for fk in inspector.get_foreign_keys(table, schema=schema):
            referred = fk["referred_table"]
            if fk.get("referred_schema"):
                referred = f"{fk['referred_schema']}.{referred}"
            elif schema:
                referred = f"{schema}.{referred}"
            out.foreign_keys.append(
                ForeignKeyInfo(
                    tuple(fk["constrained_columns"]),
                    referred,
                    tuple(fk["referred_columns"]),
                    fk.get("name") or "",
                )
            )
        checks = self._checks(inspector, table, schema)
        out.checks.extend(checks or ())
        if checks is None:
            out.unreadable.append(f"check constraints are not readable on {inspector.dialect.name}")
        return out

    def _checks(self, inspector: Any, table: str, schema: str | None) -> list[CheckInfo] | None:
        if inspector.dialect.name in ("mysql", "mariadb"):
            # MariaDB shows a column's CHECK inline, where the inspector does not look; its
            # information_schema lists both kinds (MySQL's has no TABLE_NAME there: the inspector).
            query = sa.text(
                "SELECT CONSTRAINT_NAME, CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS "
                "WHERE CONSTRAINT_SCHEMA = COALESCE(:schema, DATABASE()) AND TABLE_NAME = :table"
            )
            try:
                rows = self.conn.execute(query, {"schema": schema, "table": table}).all()
                return [CheckInfo(str(name), str(text)) for name, text in rows]
            except sa_exc.DBAPIError:
                self.conn.rollback()
        try:
            return [
                CheckInfo(check.get("name") or "", str(check["sqltext"]))
                for check in inspector.get_check_constraints(table, schema=schema)
            ]
        except NotImplementedError:
            return None

    def _table(self, name: str) -> sa.Table:
        schema, table = split_name(name)
        key = f"{schema}.{table}" if schema else table
        found = self._meta.tables.get(key)
        if found is None:
            found = sa.Table(table, self._meta, schema=schema)
        return found

    def existing(
        self, table: str, columns: Sequence[str], keys: Iterable[tuple[Any, ...]]
    ) -> set[tuple[Any, ...]]:
        wanted = list(dict.fromkeys(keys))
        found: set[tuple[Any, ...]] = set()
        t = self._table(table)
        known = self._read.get(table)
        types = {c: known.columns[c].type for c in columns if known and c in known.columns}
        cols: list[sa.ColumnClause[Any]] = [sa.column(c, types.get(c)) for c in columns]
        for first in range(0, len(wanted), LOOKUP_CHUNK):
            chunk = wanted[first : first + LOOKUP_CHUNK]
            where = cols[0].in_([k[0] for k in chunk]) if len(cols) == 1 else sa.tuple_(*cols).in_(chunk)
            query: sa.Select[Any] = sa.select(*cols).select_from(t).where(where)
            # A value read back may be another Python type than the one asked with (an inet column
            # answers an IPv4Address for '10.0.0.1'): answered as the key asked, matched by text.
            asked = {tuple(str(v) for v in k): k for k in chunk}
            with self._reading() as conn:
                for row in conn.execute(query):
                    key = tuple(row)
                    found.add(asked.get(tuple(str(v) for v in key), key))
        return found

    def next_value(self, table: str, column: str) -> int:
        query: sa.Select[Any] = sa.select(sa.func.max(sa.column(column))).select_from(self._table(table))
        try:
            value = self.conn.execute(query).scalar()
        except sa_exc.DBAPIError:
            self.conn.rollback()
            return 1
        return int(value) + 1 if isinstance(value, int) else 1

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None
        self._engine.dispose()
