"""The PostgreSQL sink: psycopg 3 directly, `COPY` for plain inserts, multi-row `INSERT … VALUES`
for upserts and `RETURNING`.

One call is one transaction. Plain inserts stream through `COPY table (cols) FROM STDIN` in chunks of
`copy_batch_size` rows (one COPY statement per chunk, so an error names its batch; PostgreSQL's error
context names the line, hence the exact row). With `on_conflict` or `returning`, rows go as
`INSERT INTO t (cols) VALUES ($1, …), (…) … ON CONFLICT … RETURNING …`, `batch_size` rows per
statement (fewer when the 65,535-parameter limit demands), through a `RawCursor`: the statement text
is the same for every full batch, so psycopg prepares it after a few uses. Nested dicts/lists
travel as JSON text, which PostgreSQL casts to the column's type (json, jsonb, or text), on both
paths alike.

Measured with tests/bench/bench_insert.py (100k customer rows of 8 columns, 2 cores): COPY ~170k
rows/s, INSERT … RETURNING ~65k, SQLAlchemy Core executemany ~27k. Rejected: `executemany(returning=
True)` (pipeline mode, one statement per row: ~34k); `%s` placeholders on a normal cursor (psycopg
re-parses a statement over 4 KiB on every call: ~16k); binary COPY with `set_types` (needs the
column types first, a catalog query per call, for a modest gain over text COPY).
"""

from __future__ import annotations

import itertools
import logging
import re
import threading
import time
from collections.abc import Callable, Generator, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Self, TypeVar, cast

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import dict_row

from seedbed.worker.sinks._errors import (
    ConfigurationError,
    InvalidRequestError,
    SinkError,
    TargetError,
    redact,
)
from seedbed.worker.sinks._rows import (
    PreparedRows,
    check_limit,
    check_names,
    collect_rows,
    find_nul,
    is_table_name,
    nul_error,
    prepare_rows,
    split_table,
)
from seedbed.worker.sinks._spec import ConnectionSpec, InsertResult, OnConflict, OptionReader, Row, SqlSink

__all__ = ["PostgresSettings", "PostgresSink"]

logger = logging.getLogger(__name__)

PgConnection = psycopg.Connection[Any]
_Rows = Generator[dict[str, Any], None, None]
_MAX_PARAMS = 65_535
_COPY_LINE = re.compile(r"\bCOPY \S+, line (\d+)")
T = TypeVar("T")
# Failures that say nothing about the request: admin_shutdown (pg_terminate_backend), crash_shutdown,
# cannot_connect_now (starting up), serialization_failure, deadlock_detected; class 08 is added below.
_TRANSIENT = frozenset({"57P01", "57P02", "57P03", "40001", "40P01"})
# After an interrupt, how often and for how long the statement in flight is cancelled again.
CANCEL_EVERY_SECONDS = 0.2
CANCEL_FOR_SECONDS = 30.0


@dataclass(frozen=True)
class PostgresSettings:
    """A PostgreSQL connection's options (see `ConnectionSpec`)."""

    url: str
    password: str = ""  # when set, overrides the URL's (no percent-encoding needed)
    batch_size: int = 500
    copy_batch_size: int = 10_000
    fetch_max_rows: int = 10_000
    fetch_max_bytes: int = 16 * 2**20
    connect_timeout: timedelta = timedelta(seconds=10)
    statement_timeout: timedelta = timedelta(0)  # 0: the server's default
    # Inserts of generated row sets (see seedbed.worker.bulk): shards written at once, rows per
    # shard, and writers on this target at once across all runs (0: no bound but `writers`).
    writers: int = 2
    shard_rows: int = 100_000
    max_writers: int = 0

    @classmethod
    def from_spec(cls, spec: ConnectionSpec) -> Self:
        read = OptionReader(spec)
        url = read.text("url", required=True)
        scheme, sep, rest = url.partition("://")
        if not sep or scheme not in ("postgresql", "postgres", "postgresql+psycopg"):
            raise ConfigurationError(
                "option 'url' must be a postgresql:// URL (postgresql+psycopg:// is accepted too)",
                connection_id=spec.id,
            )
        settings = cls(
            url=f"postgresql://{rest}",
            password=read.text("password"),
            batch_size=read.integer("batch_size", default=cls.batch_size, maximum=_MAX_PARAMS),
            copy_batch_size=read.integer("copy_batch_size", default=cls.copy_batch_size, maximum=10**7),
            fetch_max_rows=read.integer("fetch_max_rows", default=cls.fetch_max_rows, maximum=10**7),
            fetch_max_bytes=read.integer("fetch_max_bytes", default=cls.fetch_max_bytes, maximum=2**31),
            connect_timeout=read.duration(
                "connect_timeout_seconds", default=cls.connect_timeout, minimum=timedelta(seconds=1)
            ),
            statement_timeout=read.duration("statement_timeout_seconds", default=cls.statement_timeout),
            writers=read.integer("writers", default=cls.writers, maximum=64),
            shard_rows=read.integer("shard_rows", default=cls.shard_rows, minimum=10_000, maximum=10**7),
            max_writers=read.integer("max_writers", default=cls.max_writers, maximum=1024),
        )
        read.done()
        try:
            conninfo_to_dict(settings.url)
        except psycopg.ProgrammingError:
            # The message would quote the URL, password included.
            raise ConfigurationError(
                "option 'url' is not a valid PostgreSQL URL", connection_id=spec.id
            ) from None
        return settings

    def __repr__(self) -> str:
        return f"PostgresSettings(batch_size={self.batch_size}, copy_batch_size={self.copy_batch_size}, …)"


class PostgresSink(SqlSink[PgConnection]):
    """Writes to and reads from one PostgreSQL database over one connection (opened on first use,
    reopened after it breaks). Calls are serialised by a lock."""

    kind = "postgresql"

    def __init__(self, spec: ConnectionSpec) -> None:
        super().__init__(spec)
        self.settings = PostgresSettings.from_spec(spec)
        info = conninfo_to_dict(self.settings.url)
        self._secrets = tuple(str(p) for p in (info.get("password"), self.settings.password) if p)
        self._db: dict[str, str | int] = {"db.system.name": "postgresql"}
        for name, key in (("dbname", "db.namespace"), ("host", "server.address"), ("port", "server.port")):
            value = str(info.get(name) or "").split(",")[0]  # the first of several hosts
            if value:
                self._db[key] = int(value) if key == "server.port" and value.isdigit() else value
        self._conn: PgConnection | None = None
        self._lock = threading.Lock()
        self._interrupted = False
        self._statements: dict[tuple[Any, ...], bytes] = {}

    # -- public API ---------------------------------------------------------------------------

    def insert(
        self,
        table: str,
        rows: Sequence[Row],
        *,
        on_conflict: OnConflict | None = None,
        key: Sequence[str] | None = None,
        returning: Sequence[str] | None = None,
        in_transaction: Callable[[PgConnection, InsertResult], None] | None = None,
        before_write: Callable[[PgConnection], None] | None = None,
    ) -> InsertResult:
        """`before_write` runs in the transaction before the rows (the ledger reads what an
        upsert is about to change); `in_transaction` after them, before COMMIT."""
        cid = self.connection_id
        schema, name = split_table(table, cid)
        if on_conflict not in (None, "ignore", "update"):
            raise InvalidRequestError(
                f"on_conflict must be None, 'ignore' or 'update', got {on_conflict!r}", connection_id=cid
            )
        keys = check_names(key, "key", cid)
        returns = check_names(returning, "returning", cid)
        if on_conflict == "update" and not keys:
            raise InvalidRequestError(
                "on_conflict='update' needs key=[...] (the unique columns)", connection_id=cid
            )
        if keys and on_conflict is None:
            raise InvalidRequestError("key is only meaningful with on_conflict", connection_id=cid)
        prepared = prepare_rows(rows, connection_id=cid, forbid_nul=False)  # psycopg refuses NULs
        if not prepared.values and in_transaction is None:
            return InsertResult(0, [] if returns is not None else None)
        target = sql.Identifier(schema, name) if schema else sql.Identifier(name)
        returned: list[dict[str, Any]] | None
        with self._lock:
            conn = self._connection()
            try:
                if before_write is not None:
                    before_write(conn)
                if not prepared.values:
                    count, returned = 0, ([] if returns is not None else None)
                elif on_conflict is None and returns is None:
                    count, returned = self._copy(conn, target, table, prepared), None
                else:
                    count, returned = self._insert_values(
                        conn, target, table, prepared, on_conflict, keys or [], returns
                    )
                if in_transaction is not None:
                    in_transaction(conn, InsertResult(count, returned))
            except psycopg.Error as exc:
                self._rollback()
                raise self._target_error(exc, "insert", table=table) from exc
            except BaseException:
                self._rollback()
                raise
            self._commit(conn, "insert", table)
        return InsertResult(count, returned)

    def copy_encoded(
        self,
        table: str,
        columns: Sequence[str],
        payload: bytes,
        count: int,
        *,
        batch: int,
        first_row: int,
        in_transaction: Callable[[PgConnection, InsertResult], None] | None = None,
    ) -> InsertResult:
        """One transaction: `payload` (COPY text of `count` rows, see `copy_text`) into `table`,
        then `in_transaction` (the ledger's row). An error names `batch` and the rows
        `first_row`… of the data set (the exact row when PostgreSQL's context gives the line)."""
        cid = self.connection_id
        schema, name = split_table(table, cid)
        names = check_names(list(columns), "column", cid) or []
        target = sql.Identifier(schema, name) if schema else sql.Identifier(name)
        statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
            target, sql.SQL(", ").join(map(sql.Identifier, names))
        )
        with self._lock:
            conn = self._connection()
            try:
                with conn.cursor() as cur:
                    with cur.copy(statement) as copy:
                        copy.write(payload)
                    written = cur.rowcount if cur.rowcount >= 0 else count
                if in_transaction is not None:
                    in_transaction(conn, InsertResult(written, None))
            except psycopg.Error as exc:
                self._rollback()
                raise self._target_error(
                    exc, "insert", table=table, batch=batch, rows=(first_row, first_row + count)
                ) from exc
            except BaseException:
                self._rollback()
                raise
            self._commit(conn, "insert", table)
        return InsertResult(written, None)

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
        query: sql.Composable | bytes
        if is_table_name(sql_or_table):
            table = sql_or_table
            schema, name = split_table(table, cid)
            if params is not None:
                raise InvalidRequestError("params make no sense with a bare table name", connection_id=cid)
            ident = sql.Identifier(schema, name) if schema else sql.Identifier(name)
            query = sql.SQL("SELECT * FROM {} LIMIT {}").format(
                ident, sql.Literal(limit if explicit else limit + 1)
            )
        else:
            query = sql_or_table.encode()
        what = f"table {table}" if table else "the query"
        with self._lock:
            conn = self._connection()
            try:
                conn.execute(b"SET TRANSACTION READ ONLY")
                with (
                    conn.cursor(row_factory=dict_row) as cur,
                    closing(cast(_Rows, cur.stream(query, params, size=min(limit + 1, 1_000)))) as stream,
                ):
                    out = collect_rows(
                        stream,
                        limit=limit,
                        max_bytes=self.settings.fetch_max_bytes,
                        connection_id=cid,
                        what=what,
                    )
            except psycopg.Error as exc:
                self._rollback()
                raise self._target_error(exc, "fetch", table=table) from exc
            finally:
                self._rollback()  # read-only: nothing to keep
        return out

    def execute(
        self,
        sql: str,
        params: Any = None,
        *,
        in_transaction: Callable[[PgConnection, int], None] | None = None,
    ) -> int:
        if not isinstance(sql, str) or not sql.strip():
            raise InvalidRequestError("execute needs a SQL statement", connection_id=self.connection_id)
        with self._lock:
            conn = self._connection()
            try:
                count = conn.execute(sql.encode(), params).rowcount
                if in_transaction is not None:
                    in_transaction(conn, count)
            except psycopg.Error as exc:
                self._rollback()
                raise self._target_error(exc, "execute") from exc
            except BaseException:
                self._rollback()
                raise
            self._commit(conn, "execute", None)
        return count

    def transact(self, body: Callable[[PgConnection], T], *, operation: str) -> T:
        with self._lock:
            conn = self._connection()
            try:
                result = body(conn)
            except psycopg.Error as exc:
                self._rollback()
                raise self._target_error(exc, operation) from exc
            except BaseException:
                self._rollback()
                raise
            self._commit(conn, operation, None)
        return result

    def db_attributes(self) -> Mapping[str, str | int]:
        return self._db

    def write_operation(self, *, on_conflict: OnConflict | None, returning: Sequence[str] | None) -> str:
        return "COPY" if on_conflict is None and returning is None else "INSERT"

    def interrupt(self) -> None:
        # Without the lock: the call in flight holds it. No call starts from now on (`_connection`
        # refuses), and the server cancels the running statement (a COPY waiting for a lock, a long
        # INSERT); the call then rolls back. The cancel requests go out from a thread of their own:
        # the caller (the attempt's end) does not wait for the server.
        self._interrupted = True
        if self._lock.locked():
            threading.Thread(
                target=self._cancel_in_flight, name=f"seedbed-cancel-{self.connection_id}", daemon=True
            ).start()

    def _cancel_in_flight(self) -> None:
        """Cancel the running statement, again and again until the call in flight lets go of the
        connection: a cancel that arrives between two statements of one call (the ledger's read,
        then the batch) finds nothing running and is lost."""
        until = time.monotonic() + CANCEL_FOR_SECONDS
        while self._lock.locked() and time.monotonic() < until:
            conn = self._conn
            if conn is not None and not conn.closed:
                try:
                    conn.cancel_safe(timeout=3)
                except Exception as exc:  # best effort: the COMMIT is refused anyway
                    logger.info("cancel on %s: %s", self.connection_id, exc)
            time.sleep(CANCEL_EVERY_SECONDS)

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    # -- the two write paths ------------------------------------------------------------------

    def _copy(self, conn: PgConnection, target: sql.Identifier, table: str, prepared: PreparedRows) -> int:
        statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
            target, sql.SQL(", ").join(map(sql.Identifier, prepared.columns))
        )
        size = self.settings.copy_batch_size
        count = 0
        with conn.cursor() as cur:
            for batch, start in enumerate(range(0, len(prepared.values), size)):
                chunk = prepared.values[start : start + size]
                try:
                    with cur.copy(statement) as copy:
                        for values in chunk:
                            copy.write_row(values)
                except psycopg.Error as exc:
                    raise self._batch_error(exc, table, batch, start, chunk, prepared.columns) from exc
                count += cur.rowcount if cur.rowcount >= 0 else len(chunk)
        return count

    def _insert_values(
        self,
        conn: PgConnection,
        target: sql.Identifier,
        table: str,
        prepared: PreparedRows,
        on_conflict: OnConflict | None,
        keys: list[str],
        returns: list[str] | None,
    ) -> tuple[int, list[dict[str, Any]] | None]:
        width = len(prepared.columns)
        size = max(1, min(self.settings.batch_size, _MAX_PARAMS // width))
        count = 0
        returned: list[dict[str, Any]] | None = [] if returns is not None else None
        with psycopg.RawCursor(conn, row_factory=dict_row) as cur:
            for batch, start in enumerate(range(0, len(prepared.values), size)):
                chunk = prepared.values[start : start + size]
                query = self._values_statement(
                    conn, target, prepared.columns, len(chunk), on_conflict, keys, returns
                )
                try:
                    cur.execute(query, list(itertools.chain.from_iterable(chunk)))
                    if returned is not None:
                        returned.extend(cur.fetchall())
                except psycopg.Error as exc:
                    raise self._batch_error(exc, table, batch, start, chunk, prepared.columns) from exc
                count += cur.rowcount
        return count, returned

    def _values_statement(
        self,
        conn: PgConnection,
        target: sql.Identifier,
        columns: list[str],
        n_rows: int,
        on_conflict: OnConflict | None,
        keys: list[str],
        returns: list[str] | None,
    ) -> bytes:
        cache_key = (
            target.as_string(conn),
            tuple(columns),
            n_rows,
            on_conflict,
            tuple(keys),
            tuple(returns or ()),
        )
        cached = self._statements.get(cache_key)
        if cached is not None:
            return cached
        idents = sql.SQL(", ").join(map(sql.Identifier, columns))
        parts: list[sql.Composable] = [sql.SQL("INSERT INTO {} ({}) VALUES ").format(target, idents)]
        # PostgreSQL's own $n placeholders, sent through a RawCursor: psycopg's %s conversion parses
        # the whole statement on every call (not cached past 4 KiB) and cost 80% of the time.
        width = len(columns)
        values = ", ".join(
            "(" + ", ".join(f"${row * width + column + 1}" for column in range(width)) + ")"
            for row in range(n_rows)
        )
        tail: list[sql.Composable] = []
        if on_conflict is not None:
            conflict: sql.Composable = sql.SQL(" ON CONFLICT")
            if keys:
                conflict = sql.SQL(" ON CONFLICT ({})").format(sql.SQL(", ").join(map(sql.Identifier, keys)))
            tail.append(conflict)
            if on_conflict == "ignore":
                tail.append(sql.SQL(" DO NOTHING"))
            else:
                # With only key columns there is nothing to update: set the key to itself so that
                # the row still counts and is returned.
                updated = [c for c in columns if c not in keys] or keys
                tail.append(
                    sql.SQL(" DO UPDATE SET {}").format(
                        sql.SQL(", ").join(
                            sql.SQL("{} = EXCLUDED.{}").format(sql.Identifier(c), sql.Identifier(c))
                            for c in updated
                        )
                    )
                )
        if returns is not None:
            tail.append(sql.SQL(" RETURNING {}").format(sql.SQL(", ").join(map(sql.Identifier, returns))))
        text = sql.Composed(parts).as_string(conn) + values + sql.Composed(tail).as_string(conn)
        if len(self._statements) >= 64:
            self._statements.clear()
        self._statements[cache_key] = text.encode()
        return self._statements[cache_key]

    # -- connection, transactions, errors ---------------------------------------------------------

    def _batch_error(
        self,
        exc: psycopg.Error,
        table: str,
        batch: int,
        start: int,
        chunk: Sequence[tuple[Any, ...]],
        columns: list[str],
    ) -> SinkError:
        if exc.sqlstate is None and isinstance(exc, psycopg.DataError):
            # Refused by psycopg before sending: a NUL character, which text types cannot hold.
            found = find_nul(chunk, columns, offset=start)
            if found is not None:
                return nul_error(found, self.connection_id)
        return self._target_error(exc, "insert", table=table, batch=batch, rows=(start, start + len(chunk)))

    def _connection(self) -> PgConnection:
        if self._interrupted:
            raise self._ended("connect")
        conn = self._conn
        if conn is not None and not conn.closed and not conn.broken:
            if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                conn.rollback()
            return conn
        self._conn = None
        kwargs: dict[str, Any] = {
            "autocommit": False,
            "connect_timeout": max(1, round(self.settings.connect_timeout.total_seconds())),
            "application_name": "seedbed",
        }
        if self.settings.password:
            kwargs["password"] = self.settings.password
        if self.settings.statement_timeout > timedelta(0):
            milliseconds = round(self.settings.statement_timeout.total_seconds() * 1000)
            kwargs["options"] = f"-c statement_timeout={milliseconds}"
        try:
            self._conn = psycopg.connect(self.settings.url, **kwargs)
        except psycopg.Error as exc:
            raise self._target_error(exc, "connect") from exc
        return self._conn

    def _rollback(self) -> None:
        conn = self._conn
        if conn is None or conn.closed:
            return
        try:
            conn.rollback()
        except Exception:
            # A connection left mid-COPY or broken cannot be trusted again: drop it.
            conn.close()
            self._conn = None

    def _ended(self, operation: str, table: str | None = None) -> TargetError:
        return TargetError(
            connection_id=self.connection_id,
            operation=operation,
            table=table,
            db_message="the attempt ended (aborted, or past its deadline) before this call committed; "
            "it was rolled back",
        )

    def _commit(self, conn: PgConnection, operation: str, table: str | None) -> None:
        if self._interrupted:
            self._rollback()
            raise self._ended(operation, table)
        try:
            conn.commit()
        except psycopg.Error as exc:
            # A refused COMMIT (a deferred constraint) is a clean failure; a broken connection during
            # COMMIT leaves its outcome unknown.
            ambiguous = conn.broken or isinstance(exc, psycopg.OperationalError)
            self._rollback()
            raise self._target_error(exc, "commit", table=table, ambiguous=ambiguous) from exc

    def _target_error(
        self,
        exc: psycopg.Error,
        operation: str,
        *,
        table: str | None = None,
        batch: int | None = None,
        rows: tuple[int, int] | None = None,
        ambiguous: bool = False,
    ) -> TargetError:
        diag = exc.diag
        message = diag.message_primary or str(exc).strip() or type(exc).__name__
        conn = self._conn
        transient = (
            operation == "connect"
            or (exc.sqlstate or "").startswith("08")
            or exc.sqlstate in _TRANSIENT
            or (exc.sqlstate is None and isinstance(exc, psycopg.OperationalError))
            or (conn is not None and conn.broken)
        )
        row = None
        if rows is not None and diag.context:
            found = _COPY_LINE.search(diag.context)
            if found:
                row = rows[0] + int(found.group(1)) - 1
        return TargetError(
            connection_id=self.connection_id,
            operation=operation,
            db_message=redact(message, self._secrets),
            table=table,
            batch=batch,
            rows=rows,
            row=row,
            sqlstate=exc.sqlstate,
            detail=redact(diag.message_detail, self._secrets) if diag.message_detail else None,
            hint=diag.message_hint,
            ambiguous=ambiguous,
            transient=transient,
        )
