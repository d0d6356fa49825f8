"""The ledger table, kept in each SQL target next to the data it describes.

    seedbed_ledger (run_key, call_no, batch_no) PRIMARY KEY,
                   content_hash, operation, target, row_count, returned, row_keys,
                   run_id, attempt, fencing_token, applied_at, mac

`row_keys` holds the primary keys of the rows a batch created (NULL when they cannot be known): what
a purge of the run deletes, newest batch first, each batch with its entry in one transaction. `mac`
is the row's HMAC (see `LedgerSeal`); a table made before it existed gets the column added (or, when
the connection may not alter the table, an error with the statement for its owner).

Its row is inserted in the batch's own transaction, after the batch's rows: both commit or neither
does. Two attempts writing the same batch at once (a superseded attempt still running) collide on
the primary key; the loser rolls back whole and finds the winner's entry.

Two implementations: raw SQL over psycopg for "postgresql" connections, SQLAlchemy Core for the
others (SQLite, MySQL/MariaDB, anything with a dialect).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import psycopg
import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.schema import CreateTable

from seedbed.worker.ledger._entries import LEDGER_TABLE, AttemptStamp, LedgerEntry
from seedbed.worker.sinks import PostgresSink, SqlAlchemySink, TargetError

__all__ = [
    "LEDGER_TABLE",
    "POSTGRESQL_LEDGER_DDL",
    "POSTGRESQL_LEDGER_MAC_DDL",
    "LedgerTable",
    "PostgresLedgerTable",
    "RecordedBatch",
    "SqlAlchemyLedgerTable",
]

POSTGRESQL_LEDGER_DDL = (
    f"CREATE TABLE IF NOT EXISTS {LEDGER_TABLE} ("
    " run_key varchar(255) NOT NULL, call_no integer NOT NULL, batch_no integer NOT NULL,"
    " content_hash char(64) NOT NULL, operation varchar(16) NOT NULL,"
    " target varchar(300) NOT NULL, row_count bigint NOT NULL, returned text, row_keys text,"
    " run_id varchar(64) NOT NULL, attempt integer NOT NULL, fencing_token bigint NOT NULL,"
    " applied_at timestamptz NOT NULL DEFAULT now(), mac varchar(64),"
    " PRIMARY KEY (run_key, call_no, batch_no))"
)
# For a table created before rows were signed.
POSTGRESQL_LEDGER_MAC_DDL = f"ALTER TABLE {LEDGER_TABLE} ADD COLUMN mac varchar(64)"


def _cannot_create(exc: TargetError, ddl: str) -> TargetError:
    return TargetError(
        connection_id=exc.connection_id,
        operation="create ledger",
        db_message=(
            f"the write ledger needs a table {LEDGER_TABLE} in this database and this connection may "
            f"not create it ({exc.db_message})"
        ),
        sqlstate=exc.sqlstate,
        db_code=exc.db_code,
        hint=(
            "create it once as its owner and grant SELECT, INSERT (and DELETE, for `seedbed run purge`) "
            f"on it to this user: {ddl}"
        ),
    )


def _cannot_add_mac(exc: TargetError, ddl: str) -> TargetError:
    return TargetError(
        connection_id=exc.connection_id,
        operation="upgrade ledger",
        db_message=(
            f"the write ledger's table {LEDGER_TABLE} lacks the column mac (it predates signed ledger "
            f"rows) and this connection may not add it ({exc.db_message})"
        ),
        sqlstate=exc.sqlstate,
        db_code=exc.db_code,
        hint=f"add it once as the table's owner: {ddl}",
    )


@dataclass(frozen=True)
class RecordedBatch:
    """A ledger entry as a purge lists it: without its row keys (read one batch at a time)."""

    call: int
    batch: int
    operation: str
    target: str
    rows: int
    has_keys: bool


class LedgerTable(Protocol):
    def ensure(self) -> None: ...
    def load(
        self, run_key: str, call: int | None = None, batches: range | None = None
    ) -> dict[tuple[int, int], LedgerEntry]:
        """The run's entries; with `call` (and `batches`), only that call's (in that range)."""
        ...

    def lookup(self, run_key: str, call: int, batch: int) -> LedgerEntry | None: ...
    def record(self, conn: Any, stamp: AttemptStamp, entry: LedgerEntry) -> None: ...
    def history(self, run_key: str) -> list[RecordedBatch]: ...
    def entry_of(self, conn: Any, run_key: str, call: int, batch: int) -> LedgerEntry | None: ...
    def forget(self, conn: Any, run_key: str, call: int, batch: int) -> bool: ...


def _recorded(row: Any) -> RecordedBatch:
    return RecordedBatch(int(row[0]), int(row[1]), str(row[2]), str(row[3]), int(row[4]), bool(row[5]))


def _entry(row: Any) -> LedgerEntry:
    return LedgerEntry(
        call=int(row[0]),
        batch=int(row[1]),
        content_hash=str(row[2]),
        operation=str(row[3]),
        target=str(row[4]),
        rows=int(row[5]),
        returned=row[6],
        attempt=int(row[7]),
        row_keys=row[8],
        mac=row[9],
    )


_COLUMNS = "call_no, batch_no, content_hash, operation, target, row_count, returned, attempt"
_READ = f"{_COLUMNS}, row_keys, mac"
_KEY = "run_key = %s AND call_no = %s AND batch_no = %s"


class PostgresLedgerTable:
    def __init__(self, sink: PostgresSink) -> None:
        self._sink = sink

    def ensure(self) -> None:
        def create(conn: psycopg.Connection[Any]) -> None:
            # Look first: creating needs CREATE on the schema even when the table exists.
            found = conn.execute("SELECT to_regclass(%s)", [LEDGER_TABLE]).fetchone()
            if found is None or found[0] is None:
                conn.execute(POSTGRESQL_LEDGER_DDL)

        def add_mac(conn: psycopg.Connection[Any]) -> None:
            found = conn.execute(
                "SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass(%s) AND attname = 'mac'"
                " AND NOT attisdropped",
                [LEDGER_TABLE],
            ).fetchone()
            if found is None:
                conn.execute(POSTGRESQL_LEDGER_MAC_DDL)

        try:
            self._sink.transact(create, operation="create ledger")
        except TargetError as exc:
            if exc.sqlstate == "42501":  # insufficient_privilege
                raise _cannot_create(exc, POSTGRESQL_LEDGER_DDL) from exc
            # Two attempts (or two shards) creating it at once: the loser hits the catalog's unique
            # index, or finds the table's row type already made (duplicate_object).
            if exc.sqlstate not in ("23505", "42P07", "42710"):
                raise
        try:
            self._sink.transact(add_mac, operation="upgrade ledger")
        except TargetError as exc:
            if exc.sqlstate == "42501":  # not the table's owner
                raise _cannot_add_mac(exc, POSTGRESQL_LEDGER_MAC_DDL) from exc
            if exc.sqlstate not in ("23505", "42701"):  # added by a concurrent attempt
                raise

    def load(
        self, run_key: str, call: int | None = None, batches: range | None = None
    ) -> dict[tuple[int, int], LedgerEntry]:
        where = "run_key = %s"
        params: list[Any] = [run_key]
        if call is not None:
            where, params = f"{where} AND call_no = %s", [*params, call]
        if batches is not None:
            where, params = (
                f"{where} AND batch_no >= %s AND batch_no < %s",
                [*params, batches.start, batches.stop],
            )

        def read(conn: psycopg.Connection[Any]) -> list[Any]:
            return conn.execute(f"SELECT {_READ} FROM {LEDGER_TABLE} WHERE {where}", params).fetchall()

        entries = [_entry(r) for r in self._sink.transact(read, operation="read ledger")]
        return {(e.call, e.batch): e for e in entries}

    def lookup(self, run_key: str, call: int, batch: int) -> LedgerEntry | None:
        def read(conn: psycopg.Connection[Any]) -> Any:
            return conn.execute(
                f"SELECT {_READ} FROM {LEDGER_TABLE} WHERE {_KEY}", [run_key, call, batch]
            ).fetchone()

        row = self._sink.transact(read, operation="read ledger")
        return None if row is None else _entry(row)

    def record(self, conn: psycopg.Connection[Any], stamp: AttemptStamp, entry: LedgerEntry) -> None:
        conn.execute(
            f"INSERT INTO {LEDGER_TABLE} (run_key, {_READ}, run_id, fencing_token)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            [
                stamp.run_key,
                entry.call,
                entry.batch,
                entry.content_hash,
                entry.operation,
                entry.target[:300],
                entry.rows,
                entry.returned,
                entry.attempt,
                entry.row_keys,
                entry.mac,
                stamp.run_id,
                stamp.fencing_token,
            ],
        )

    def history(self, run_key: str) -> list[RecordedBatch]:
        def read(conn: psycopg.Connection[Any]) -> list[Any]:
            found = conn.execute("SELECT to_regclass(%s)", [LEDGER_TABLE]).fetchone()
            if found is None or found[0] is None:
                return []
            return conn.execute(
                "SELECT call_no, batch_no, operation, target, row_count, row_keys IS NOT NULL"
                f" FROM {LEDGER_TABLE} WHERE run_key = %s ORDER BY call_no DESC, batch_no DESC",
                [run_key],
            ).fetchall()

        return [_recorded(r) for r in self._sink.transact(read, operation="read ledger")]

    def entry_of(
        self, conn: psycopg.Connection[Any], run_key: str, call: int, batch: int
    ) -> LedgerEntry | None:
        row = conn.execute(
            f"SELECT {_READ} FROM {LEDGER_TABLE} WHERE {_KEY}", [run_key, call, batch]
        ).fetchone()
        return None if row is None else _entry(row)

    def forget(self, conn: psycopg.Connection[Any], run_key: str, call: int, batch: int) -> bool:
        return conn.execute(f"DELETE FROM {LEDGER_TABLE} WHERE {_KEY}", [run_key, call, batch]).rowcount > 0


_metadata = sa.MetaData()
_ledger = sa.Table(
    LEDGER_TABLE,
    _metadata,
    sa.Column("run_key", sa.String(255), primary_key=True),
    sa.Column("call_no", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("batch_no", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("content_hash", sa.String(64), nullable=False),
    sa.Column("operation", sa.String(16), nullable=False),
    sa.Column("target", sa.String(300), nullable=False),
    sa.Column("row_count", sa.BigInteger, nullable=False),
    # MySQL's TEXT stops at 64 KiB; RETURNING rows (and keys) of a 10,000-row batch need more.
    sa.Column("returned", sa.Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")),
    sa.Column("row_keys", sa.Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")),
    sa.Column("run_id", sa.String(64), nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("fencing_token", sa.BigInteger, nullable=False),
    sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("mac", sa.String(64)),
)
_select = sa.select(
    _ledger.c.call_no,
    _ledger.c.batch_no,
    _ledger.c.content_hash,
    _ledger.c.operation,
    _ledger.c.target,
    _ledger.c.row_count,
    _ledger.c.returned,
    _ledger.c.attempt,
    _ledger.c.row_keys,
    _ledger.c.mac,
)


class SqlAlchemyLedgerTable:
    def __init__(self, sink: SqlAlchemySink) -> None:
        self._sink = sink

    def ensure(self) -> None:
        try:
            self._sink.transact(lambda conn: _ledger.create(conn, checkfirst=True), operation="create ledger")
        except TargetError as exc:
            # Created by a concurrent attempt between the check and the CREATE: fine if it is there.
            try:
                self._sink.transact(
                    lambda conn: conn.execute(sa.select(_ledger.c.run_key).limit(1)).all(),
                    operation="read ledger",
                )
            except TargetError:
                ddl = self._sink.transact(
                    lambda c: " ".join(str(CreateTable(_ledger).compile(dialect=c.dialect)).split()),
                    operation="create ledger",
                )
                raise _cannot_create(exc, ddl) from exc
        self._add_mac()

    def _add_mac(self) -> None:
        """Add the column `mac` to a table made before ledger rows were signed."""

        def missing(conn: sa.Connection) -> str | None:
            columns = {str(c["name"]).lower() for c in sa.inspect(conn).get_columns(LEDGER_TABLE)}
            if "mac" in columns:
                return None
            return f"ALTER TABLE {LEDGER_TABLE} ADD COLUMN mac {sa.String(64).compile(dialect=conn.dialect)}"

        ddl = self._sink.transact(missing, operation="read ledger")
        if ddl is None:
            return
        try:
            self._sink.transact(lambda conn: conn.exec_driver_sql(ddl), operation="upgrade ledger")
        except TargetError as exc:
            if self._sink.transact(missing, operation="read ledger") is not None:
                raise _cannot_add_mac(exc, ddl) from exc  # else: added by a concurrent attempt

    def load(
        self, run_key: str, call: int | None = None, batches: range | None = None
    ) -> dict[tuple[int, int], LedgerEntry]:
        query = _select.where(_ledger.c.run_key == run_key)
        if call is not None:
            query = query.where(_ledger.c.call_no == call)
        if batches is not None:
            query = query.where(_ledger.c.batch_no >= batches.start, _ledger.c.batch_no < batches.stop)
        rows = self._sink.transact(lambda conn: conn.execute(query).all(), operation="read ledger")
        entries = [_entry(r) for r in rows]
        return {(e.call, e.batch): e for e in entries}

    def lookup(self, run_key: str, call: int, batch: int) -> LedgerEntry | None:
        query = _select.where(
            _ledger.c.run_key == run_key, _ledger.c.call_no == call, _ledger.c.batch_no == batch
        )
        row = self._sink.transact(lambda conn: conn.execute(query).first(), operation="read ledger")
        return None if row is None else _entry(row)

    def record(self, conn: sa.Connection, stamp: AttemptStamp, entry: LedgerEntry) -> None:
        conn.execute(
            _ledger.insert().values(
                run_key=stamp.run_key,
                call_no=entry.call,
                batch_no=entry.batch,
                content_hash=entry.content_hash,
                operation=entry.operation,
                target=entry.target[:300],
                row_count=entry.rows,
                returned=entry.returned,
                row_keys=entry.row_keys,
                mac=entry.mac,
                run_id=stamp.run_id,
                attempt=entry.attempt,
                fencing_token=stamp.fencing_token,
                applied_at=datetime.now(UTC),
            )
        )

    def history(self, run_key: str) -> list[RecordedBatch]:
        c = _ledger.c
        query = (
            sa.select(c.call_no, c.batch_no, c.operation, c.target, c.row_count, c.row_keys.is_not(None))
            .where(c.run_key == run_key)
            .order_by(c.call_no.desc(), c.batch_no.desc())
        )

        def read(conn: sa.Connection) -> list[Any]:
            if not sa.inspect(conn).has_table(LEDGER_TABLE):
                return []
            return list(conn.execute(query).all())

        return [_recorded(r) for r in self._sink.transact(read, operation="read ledger")]

    def _where(self, run_key: str, call: int, batch: int) -> Any:
        c = _ledger.c
        return sa.and_(c.run_key == run_key, c.call_no == call, c.batch_no == batch)

    def entry_of(self, conn: sa.Connection, run_key: str, call: int, batch: int) -> LedgerEntry | None:
        found = conn.execute(_select.where(self._where(run_key, call, batch))).first()
        return None if found is None else _entry(found)

    def forget(self, conn: sa.Connection, run_key: str, call: int, batch: int) -> bool:
        return conn.execute(_ledger.delete().where(self._where(run_key, call, batch))).rowcount > 0
