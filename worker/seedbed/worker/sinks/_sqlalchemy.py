"""The SQL sink: any database SQLAlchemy has a dialect and a driver for, through SQLAlchemy Core.

Each table is reflected once per sink (its column names only) so that a misspelt table or column
fails with a clear error before any row is sent. Rows are then written through a lightweight
`table()`/`column()` construct *without* the reflected types: values reach the driver as the
script gave them (ISO date strings, JSON text), exactly as on the PostgreSQL sink, instead of being
refused by a type's bind processor (SQLite's DateTime accepts only `datetime` objects). Batches of
`batch_size` rows go through one executemany each (SQLAlchemy's "insertmanyvalues" where the
dialect has it).

Conflicts: SQLite and PostgreSQL use `ON CONFLICT (key) DO NOTHING / DO UPDATE SET col =
excluded.col`; MySQL and MariaDB use `ON DUPLICATE KEY UPDATE`, for "ignore" as a no-op update of
the first key column. Rejected for MySQL: `INSERT IGNORE`, which besides duplicates also downgrades
NOT NULL violations, out-of-range and truncated values to warnings and writes altered rows.
`returning` works where the dialect supports RETURNING with several rows (PostgreSQL, SQLite ≥ 3.35,
MariaDB ≥ 10.5); elsewhere it is refused with a clear error. `count` is the driver's row count:
SQLAlchemy's MySQL dialects ask for "found rows", so there a skipped duplicate counts 1 and an
updated row 1 or 2 (MySQL's convention).

SQLite connections are hardened as they are made (`_sqlite.py`): a script's SQL reaches the target
file only — no `ATTACH`, `VACUUM INTO`, `load_extension` or PRAGMAs that change settings.

When the attempt ends under a call (`interrupt`), no call starts any more and the statement in
flight is stopped in the database, the way each one allows: SQLite through a progress handler
installed on every connection, which aborts the statement once the sink is interrupted (no race:
it is asked every few thousand steps); PostgreSQL through its driver's cancel request; MySQL and
MariaDB with `KILL QUERY <thread id>` sent over a second connection (a user may kill its own
queries, no privilege needed). Cancel requests and kills are repeated while the call still holds
the connection, since one that lands between two statements of a call is lost. Rejected for MySQL:
a statement timeout (`MAX_EXECUTION_TIME` bounds only SELECTs on MySQL, `max_statement_time`
exists only on MariaDB, and either counts from the statement's start, not the attempt's end).
Other databases have no portable cancel: their statement runs to its end, and its COMMIT is refused.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Self, TypeVar

import psycopg
import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import mysql, postgresql, sqlite

from seedbed.worker.sinks._errors import ConfigurationError, InvalidRequestError, TargetError, redact
from seedbed.worker.sinks._rows import (
    PreparedRows,
    check_limit,
    check_names,
    collect_rows,
    is_table_name,
    prepare_rows,
    split_table,
)
from seedbed.worker.sinks._spec import ConnectionSpec, InsertResult, OnConflict, OptionReader, Row, SqlSink
from seedbed.worker.sinks._sqlite import abort_when, harden_sqlite_connection, take_refusal

__all__ = ["SqlAlchemySettings", "SqlAlchemySink"]

logger = logging.getLogger(__name__)

T = TypeVar("T")
# After an interrupt, how often and for how long the statement in flight is stopped again.
CANCEL_EVERY_SECONDS = 0.2
CANCEL_FOR_SECONDS = 30.0


@dataclass(frozen=True)
class SqlAlchemySettings:
    """A SQL connection's options (see `ConnectionSpec`)."""

    url: str
    password: str = ""  # when set, overrides the URL's (no percent-encoding needed)
    batch_size: int = 1_000
    fetch_max_rows: int = 10_000
    fetch_max_bytes: int = 16 * 2**20

    @classmethod
    def from_spec(cls, spec: ConnectionSpec) -> Self:
        read = OptionReader(spec)
        settings = cls(
            url=read.text("url", required=True),
            password=read.text("password"),
            batch_size=read.integer("batch_size", default=cls.batch_size, maximum=100_000),
            fetch_max_rows=read.integer("fetch_max_rows", default=cls.fetch_max_rows, maximum=10**7),
            fetch_max_bytes=read.integer("fetch_max_bytes", default=cls.fetch_max_bytes, maximum=2**31),
        )
        read.done()
        return settings

    def __repr__(self) -> str:
        return f"SqlAlchemySettings(batch_size={self.batch_size}, …)"


class SqlAlchemySink(SqlSink[sa.Connection]):
    """Writes to and reads from one database through a SQLAlchemy engine. Calls are serialised."""

    kind = "sql"

    def __init__(self, spec: ConnectionSpec) -> None:
        super().__init__(spec)
        self.settings = SqlAlchemySettings.from_spec(spec)
        try:
            url = sa.make_url(self.settings.url)
        except sa_exc.ArgumentError:
            # The message would quote the URL, password included.
            raise ConfigurationError(
                "option 'url' is not a SQLAlchemy URL (dialect+driver://user:password@host/database)",
                connection_id=spec.id,
            ) from None
        if self.settings.password:
            url = url.set(password=self.settings.password)
        self._secrets = (url.password,) if isinstance(url.password, str) else ()
        try:
            self._engine = sa.create_engine(url, pool_pre_ping=True)
        except (sa_exc.NoSuchModuleError, ImportError) as exc:
            raise ConfigurationError(
                f"no SQLAlchemy dialect or driver for {url.drivername!r}: {redact(str(exc), self._secrets)}",
                connection_id=spec.id,
            ) from exc
        if self._engine.dialect.name == "sqlite":
            if self._engine.dialect.driver != "pysqlite":
                raise ConfigurationError(
                    f"SQLite targets use Python's sqlite3 driver (sqlite:///path), not {url.drivername!r}",
                    connection_id=spec.id,
                )
            # Every connection of the pool: a script reaches this database file and nothing else,
            # and no statement outlives the attempt.
            sa.event.listen(self._engine, "connect", harden_sqlite_connection)
            sa.event.listen(
                self._engine, "connect", lambda dbapi, _record: abort_when(dbapi, self._is_interrupted)
            )
        self._lock = threading.Lock()
        self._interrupted = False
        # The driver's connection of the call in flight (for a cancel from another thread).
        self._in_flight: Any = None
        self._columns: dict[tuple[str | None, str], list[str]] = {}
        self._db = _db_attributes(url, self._engine.dialect.name)

    # -- public API ---------------------------------------------------------------------------

    def insert(
        self,
        table: str,
        rows: Sequence[Row],
        *,
        on_conflict: OnConflict | None = None,
        key: Sequence[str] | None = None,
        returning: Sequence[str] | None = None,
        in_transaction: Callable[[sa.Connection, InsertResult], None] | None = None,
        before_write: Callable[[sa.Connection], None] | None = None,
    ) -> InsertResult:
        """`before_write` runs in the transaction before the rows (the ledger reads what an
        upsert is about to change); `in_transaction` after them, before COMMIT."""
        cid = self.connection_id
        schema, name = split_table(table, cid)
        if on_conflict not in (None, "ignore", "update"):
            raise InvalidRequestError(
                f"on_conflict must be None, 'ignore' or 'update', got {on_conflict!r}", connection_id=cid
            )
        keys = check_names(key, "key", cid) or []
        returns = check_names(returning, "returning", cid)
        if on_conflict == "update" and not keys:
            raise InvalidRequestError(
                "on_conflict='update' needs key=[...] (the unique columns)", connection_id=cid
            )
        if keys and on_conflict is None:
            raise InvalidRequestError("key is only meaningful with on_conflict", connection_id=cid)
        dialect = self._engine.dialect.name
        prepared = prepare_rows(rows, connection_id=cid, forbid_nul=dialect == "postgresql")
        if not prepared.values and in_transaction is None:
            return InsertResult(0, [] if returns is not None else None)
        count = 0
        returned: list[dict[str, Any]] | None = [] if returns is not None else None
        with self._lock, self._connect() as conn:
            transaction = conn.begin()
            try:
                if before_write is not None:
                    before_write(conn)
                if prepared.values:
                    count, returned = self._write(
                        conn, table, schema, name, prepared, on_conflict, keys, returns
                    )
                if in_transaction is not None:
                    in_transaction(conn, InsertResult(count, returned))
            except sa_exc.SQLAlchemyError as exc:
                transaction.rollback()
                raise self._target_error(exc, "insert", table=table) from exc
            except BaseException:
                transaction.rollback()
                raise
            self._commit(transaction, "insert", table)
        return InsertResult(count, returned)

    def _write(
        self,
        conn: sa.Connection,
        table: str,
        schema: str | None,
        name: str,
        prepared: PreparedRows,
        on_conflict: OnConflict | None,
        keys: list[str],
        returns: list[str] | None,
    ) -> tuple[int, list[dict[str, Any]] | None]:
        known = self._reflect(conn, schema, name, table)
        wanted = list(dict.fromkeys([*prepared.columns, *keys, *(returns or [])]))
        unknown = [c for c in wanted if c not in known]
        if unknown:
            raise TargetError(
                connection_id=self.connection_id,
                operation="insert",
                table=table,
                db_message=f"table {table} has no column {unknown[0]!r} (its columns: {', '.join(known)})",
            )
        lite = sa.table(name, *(sa.column(c) for c in wanted), schema=schema)
        statement = self._statement(lite, prepared.columns, on_conflict, keys, returns)
        # Some drivers report no row count for an executemany (psycopg through SQLAlchemy: -1); with
        # on_conflict the count is then read from a RETURNING of a constant, where the dialect has it.
        counting = (
            returns is None and on_conflict is not None and self._engine.dialect.insert_executemany_returning
        )
        if counting:
            statement = statement.returning(sa.literal_column("1"))
        count = 0
        returned: list[dict[str, Any]] | None = [] if returns is not None else None
        size = self.settings.batch_size
        for batch, start in enumerate(range(0, len(prepared.values), size)):
            chunk = prepared.values[start : start + size]
            params = [dict(zip(prepared.columns, values, strict=True)) for values in chunk]
            try:
                result = conn.execute(statement, params)
                if returned is not None:
                    got = [dict(r._mapping) for r in result]
                    returned.extend(got)
                    count += len(got)
                elif counting:
                    count += len(result.all())
                else:
                    # Without on_conflict every row is written or the call fails.
                    count += result.rowcount if result.rowcount >= 0 else len(chunk)
            except sa_exc.SQLAlchemyError as exc:
                span = (start, start + len(chunk))
                raise self._target_error(exc, "insert", table=table, batch=batch, rows=span) from exc
        return count, returned

    def fetch(
        self, sql_or_table: str, params: Any = None, *, limit: int | None = None
    ) -> list[dict[str, Any]]:
        cid = self.connection_id
        # An explicit limit on a bare table name is SQL's LIMIT (the first rows); otherwise the
        # limit is a cap, and a result past it is an error rather than silently cut.
        explicit = limit is not None
        limit = check_limit(limit, self.settings.fetch_max_rows, cid)
        if not isinstance(sql_or_table, str) or not sql_or_table.strip():
            raise InvalidRequestError("fetch needs a query or a table name", connection_id=cid)
        table: str | None = None
        statement: sa.Executable
        if is_table_name(sql_or_table):
            table = sql_or_table
            schema, name = split_table(table, cid)
            if params is not None:
                raise InvalidRequestError("params make no sense with a bare table name", connection_id=cid)
            statement = (
                sa.select(sa.text("*"))
                .select_from(sa.table(name, schema=schema))
                .limit(limit if explicit else limit + 1)
            )
        else:
            statement = sa.text(sql_or_table)
        bound = _named_params(params, cid)
        with self._lock, self._connect() as conn:
            # Never committed: a read has no effects to keep.
            transaction = conn.begin()
            try:
                result = conn.execution_options(stream_results=True).execute(statement, bound)
                try:
                    return collect_rows(
                        (dict(r._mapping) for r in result),
                        limit=limit,
                        max_bytes=self.settings.fetch_max_bytes,
                        connection_id=cid,
                        what=f"table {table}" if table else "the query",
                    )
                finally:
                    result.close()
            except sa_exc.SQLAlchemyError as exc:
                raise self._target_error(exc, "fetch", table=table) from exc
            finally:
                transaction.rollback()

    def execute(
        self,
        sql: str,
        params: Any = None,
        *,
        in_transaction: Callable[[sa.Connection, int], None] | None = None,
    ) -> int:
        if not isinstance(sql, str) or not sql.strip():
            raise InvalidRequestError("execute needs a SQL statement", connection_id=self.connection_id)
        bound = _named_params(params, self.connection_id)
        with self._lock, self._connect() as conn:
            self._columns.clear()  # the statement may change a table: reflect again on next insert
            transaction = conn.begin()
            try:
                count = conn.execute(sa.text(sql), bound).rowcount
                if in_transaction is not None:
                    in_transaction(conn, count)
            except sa_exc.SQLAlchemyError as exc:
                transaction.rollback()
                raise self._target_error(exc, "execute") from exc
            except BaseException:
                transaction.rollback()
                raise
            self._commit(transaction, "execute", None)
        return count

    def db_attributes(self) -> Mapping[str, str | int]:
        return self._db

    def transact(self, body: Callable[[sa.Connection], T], *, operation: str) -> T:
        with self._lock, self._connect() as conn:
            transaction = conn.begin()
            try:
                result = body(conn)
            except sa_exc.SQLAlchemyError as exc:
                transaction.rollback()
                raise self._target_error(exc, operation) from exc
            except BaseException:
                transaction.rollback()
                raise
            self._commit(transaction, operation, None)
        return result

    def close(self) -> None:
        self._engine.dispose()

    # -- statements ----------------------------------------------------------------------------

    def _statement(
        self,
        lite: sa.TableClause,
        columns: list[str],
        on_conflict: OnConflict | None,
        keys: list[str],
        returns: list[str] | None,
    ) -> Any:
        dialect = self._engine.dialect
        updated = [c for c in columns if c not in keys] or keys
        statement: Any
        if on_conflict is None:
            statement = sa.insert(lite)
        elif dialect.name in ("sqlite", "postgresql"):
            insert = sqlite.insert if dialect.name == "sqlite" else postgresql.insert
            statement = insert(lite)
            if on_conflict == "ignore":
                statement = statement.on_conflict_do_nothing(index_elements=keys or None)
            else:
                statement = statement.on_conflict_do_update(
                    index_elements=keys, set_={c: statement.excluded[c] for c in updated}
                )
        elif dialect.name in ("mysql", "mariadb"):
            statement = mysql.insert(lite)
            if on_conflict == "ignore":
                # A no-op update: only duplicate keys are skipped, every other error still fails.
                first = keys[0] if keys else columns[0]
                statement = statement.on_duplicate_key_update({first: lite.c[first]})
            else:
                statement = statement.on_duplicate_key_update({c: statement.inserted[c] for c in updated})
        else:
            raise InvalidRequestError(
                "on_conflict is supported on PostgreSQL, SQLite and MySQL/MariaDB targets, "
                f"not {dialect.name}",
                connection_id=self.connection_id,
            )
        if returns is not None:
            if not dialect.insert_executemany_returning:
                raise InvalidRequestError(
                    f"this {dialect.name} database does not support INSERT … RETURNING for several rows; "
                    "insert without returning and fetch the rows afterwards",
                    connection_id=self.connection_id,
                )
            statement = statement.returning(*(lite.c[r] for r in returns))
        return statement

    # -- connection, reflection, errors ---------------------------------------------------------

    def _connect(self) -> sa.Connection:
        if self._interrupted:
            raise self._ended("connect", None)
        try:
            conn = self._engine.connect()
        except sa_exc.SQLAlchemyError as exc:
            raise self._target_error(exc, "connect") from exc
        self._in_flight = conn.connection.dbapi_connection
        return conn

    def _reflect(self, conn: sa.Connection, schema: str | None, name: str, table: str) -> list[str]:
        cached = self._columns.get((schema, name))
        if cached is not None:
            return cached
        try:
            columns = [str(c["name"]) for c in sa.inspect(conn).get_columns(name, schema=schema)]
        except sa_exc.NoSuchTableError:
            columns = []
        except sa_exc.SQLAlchemyError as exc:
            raise self._target_error(exc, "insert", table=table) from exc
        if not columns:
            raise TargetError(
                connection_id=self.connection_id,
                operation="insert",
                table=table,
                db_message=f"table {table} does not exist",
            )
        self._columns[(schema, name)] = columns
        return columns

    def interrupt(self) -> None:
        # Without the lock: the call in flight holds it. No call starts from now on (`_connect`
        # refuses), nothing commits (`_commit` refuses), and the statement running is stopped
        # (see the module's doc) from a thread of its own, so the caller does not wait.
        self._interrupted = True
        if self._lock.locked() and self._engine.dialect.name != "sqlite":
            threading.Thread(
                target=self._cancel_in_flight, name=f"seedbed-cancel-{self.connection_id}", daemon=True
            ).start()

    def _is_interrupted(self) -> bool:
        return self._interrupted

    def _cancel_in_flight(self) -> None:
        until = time.monotonic() + CANCEL_FOR_SECONDS
        while self._lock.locked() and time.monotonic() < until:
            try:
                self._cancel(self._in_flight)
            except Exception as exc:  # best effort: the COMMIT is refused anyway
                logger.info("cancel on %s: %s", self.connection_id, redact(str(exc), self._secrets))
            time.sleep(CANCEL_EVERY_SECONDS)

    def _cancel(self, dbapi_connection: Any) -> None:
        """Stop the statement running on `dbapi_connection`, from another thread."""
        if dbapi_connection is None:
            return
        name = self._engine.dialect.name
        if name == "postgresql":
            cancel = getattr(dbapi_connection, "cancel_safe", None) or getattr(
                dbapi_connection, "cancel", None
            )
            if cancel is not None:
                cancel()
        elif name in ("mysql", "mariadb"):
            thread_id = getattr(dbapi_connection, "thread_id", None)
            if not callable(thread_id):
                return
            # A second connection of the pool (the first is busy with the statement to stop).
            killer = self._engine.raw_connection()
            try:
                cursor = killer.cursor()
                cursor.execute(f"KILL QUERY {int(thread_id())}")
            finally:
                killer.close()

    def _ended(self, operation: str, table: str | None) -> TargetError:
        return TargetError(
            connection_id=self.connection_id,
            operation=operation,
            table=table,
            db_message="the attempt ended (aborted, or past its deadline) before this call "
            "committed; it was rolled back",
        )

    def _commit(self, transaction: sa.RootTransaction, operation: str, table: str | None) -> None:
        if self._interrupted:
            transaction.rollback()
            raise self._ended(operation, table)
        try:
            transaction.commit()
        except sa_exc.SQLAlchemyError as exc:
            ambiguous = isinstance(exc, sa_exc.DBAPIError) and (
                exc.connection_invalidated or isinstance(exc, sa_exc.OperationalError)
            )
            raise self._target_error(exc, "commit", table=table, ambiguous=ambiguous) from exc

    def _target_error(
        self,
        exc: sa_exc.SQLAlchemyError,
        operation: str,
        *,
        table: str | None = None,
        batch: int | None = None,
        rows: tuple[int, int] | None = None,
        ambiguous: bool = False,
    ) -> TargetError:
        orig = getattr(exc, "orig", None)
        sqlstate = None
        db_code = None
        detail = None
        if orig is None:
            # SQLAlchemy's own message: its first line (the rest repeats the SQL and parameters).
            message = str(exc.args[0] if exc.args else exc).splitlines()[0]
        elif isinstance(orig, psycopg.Error):
            message = orig.diag.message_primary or str(orig)
            sqlstate = orig.sqlstate
            detail = orig.diag.message_detail
        elif isinstance(getattr(orig, "sqlite_errorname", None), str):  # sqlite3
            message = str(orig)
            refusal = take_refusal()
            # "not authorized", "authorization denied", "not authorized to use function: …"
            if refusal is not None and "authoriz" in message:
                message = refusal
            # Python's table of names lags SQLite's codes: fall back to the number.
            db_code = (
                orig.sqlite_errorname if orig.sqlite_errorname != "unknown" else str(orig.sqlite_errorcode)
            )
        elif len(orig.args) == 2 and isinstance(orig.args[0], int):  # MySQL drivers: (errno, text)
            db_code = str(orig.args[0])
            message = str(orig.args[1])
            found = getattr(orig, "sqlstate", None)  # PyMySQL ≥ 1.2
            sqlstate = found if isinstance(found, str) else None
        else:
            message = str(orig)
        transient = (
            operation == "connect"
            or (isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated)
            or (sqlstate or "").startswith("08")
            or sqlstate in ("57P01", "57P02", "57P03", "40001", "40P01")
            # MySQL: server gone away, lost connection, deadlock, lock wait timeout.
            or db_code in ("2006", "2013", "1213", "1205")
            or db_code in ("SQLITE_BUSY", "SQLITE_LOCKED")
        )
        return TargetError(
            connection_id=self.connection_id,
            operation=operation,
            db_message=redact(message.strip() or type(exc).__name__, self._secrets),
            table=table,
            batch=batch,
            rows=rows,
            sqlstate=sqlstate,
            db_code=db_code,
            detail=redact(detail, self._secrets) if detail else None,
            ambiguous=ambiguous,
            transient=transient,
        )


# OpenTelemetry's names (db.system.name) for SQLAlchemy's dialects, where they differ or exist.
_DB_SYSTEMS = {
    "postgresql": "postgresql",
    "mysql": "mysql",
    "mariadb": "mariadb",
    "sqlite": "sqlite",
    "mssql": "microsoft.sql_server",
    "oracle": "oracle.db",
}


def _db_attributes(url: sa.URL, dialect: str) -> dict[str, str | int]:
    """The database as a span names it: its system, its name (a SQLite file's name, not its path),
    its server; never the user or the password."""
    out: dict[str, str | int] = {"db.system.name": _DB_SYSTEMS.get(dialect, "other_sql")}
    if url.database:
        out["db.namespace"] = url.database.rsplit("/", 1)[-1] if dialect == "sqlite" else url.database
    if url.host:
        out["server.address"] = url.host
    if url.port:
        out["server.port"] = url.port
    return out


def _named_params(params: Any, connection_id: str) -> dict[str, Any]:
    if params is None:
        return {}
    if not isinstance(params, Mapping):
        raise InvalidRequestError(
            "SQL connections take named parameters: a mapping for the :name placeholders in the query",
            connection_id=connection_id,
        )
    return dict(params)
