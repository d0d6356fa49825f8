"""The ledger table, kept in each SQL target next to the data it describes.

    seedbed_ledger (run_key, call_no, batch_no) PRIMARY KEY,
                   content_hash, operation, target, row_count, returned, row_keys,
                   run_id, attempt, fencing_token, applied_at

`row_keys` holds the primary keys of the rows a batch created (NULL when they cannot be known): what
a purge of the run deletes, newest batch first, each batch with its entry in one transaction.

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

from seedbed.worker.ledger._entries import AttemptStamp, LedgerEntry
from seedbed.worker.sinks import PostgresSink, SqlAlchemySink, TargetError

__all__ = [
    "LEDGER_TABLE",
    "POSTGRESQL_LEDGER_DDL",
    "LedgerTable",
    "PostgresLedgerTable",
    "RecordedBatch",
    "SqlAlchemyLedgerTable",
]

LEDGER_TABLE = "seedbed_ledger"
POSTGRESQL_LEDGER_DDL = (
    f"CREATE TABLE IF NOT EXISTS {LEDGER_TABLE} ("
    " run_key varchar(255) NOT NULL, call_no integer NOT NULL, batch_no integer NOT NULL,"
    " content_hash char(64) NOT NULL, operation varchar(16) NOT NULL,"
    " target varchar(300) NOT NULL, row_count bigint NOT NULL, returned text, row_keys text,"
    " run_id varchar(64) NOT NULL, attempt integer NOT NULL, fencing_token bigint NOT NULL,"
    " applied_at timestamptz NOT NULL DEFAULT now(),"
    " PRIMARY KEY (run_key, call_no, batch_no))"
)


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
    def load(self, run_key: str) -> dict[tuple[int, int], LedgerEntry]: ...
    def lookup(self, run_key: str, call: int, batch: int) -> LedgerEntry | None: ...
    def record(self, conn: Any, stamp: AttemptStamp, entry: LedgerEntry) -> None: ...
    def history(self, run_key: str) -> list[RecordedBatch]: ...
    def keys_of(self, conn: Any, run_key: str, call: int, batch: int) -> str | None: ...
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
    )


_COLUMNS = "call_no, batch_no, content_hash, operation, target, row_count, returned, attempt"
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

        try:
            self._sink.transact(create, operation="create ledger")
        except TargetError as exc:
            if exc.sqlstate == "42501":  # insufficient_privilege
                raise _cannot_create(exc, POSTGRESQL_LEDGER_DDL) from exc
            # Two attempts creating it at once: the loser hits the catalog's unique index.
            if exc.sqlstate not in ("23505", "42P07"):
                raise

    def load(self, run_key: str) -> dict[tuple[int, int], LedgerEntry]:
        def read(conn: psycopg.Connection[Any]) -> list[Any]:
            return conn.execute(
                f"SELECT {_COLUMNS} FROM {LEDGER_TABLE} WHERE run_key = %s", [run_key]
            ).fetchall()

        entries = [_entry(r) for r in self._sink.transact(read, operation="read ledger")]
        return {(e.call, e.batch): e for e in entries}

    def lookup(self, run_key: str, call: int, batch: int) -> LedgerEntry | None:
        def read(conn: psycopg.Connection[Any]) -> Any:
            return conn.execute(
                f"SELECT {_COLUMNS} FROM {LEDGER_TABLE}"
                " WHERE run_key = %s AND call_no = %s AND batch_no = %s",
                [run_key, call, batch],
            ).fetchone()

        row = self._sink.transact(read, operation="read ledger")
        return None if row is None else _entry(row)

    def record(self, conn: psycopg.Connection[Any], stamp: AttemptStamp, entry: LedgerEntry) -> None:
        conn.execute(
            f"INSERT INTO {LEDGER_TABLE} (run_key, {_COLUMNS}, row_keys, run_id, fencing_token)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
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

    def keys_of(self, conn: psycopg.Connection[Any], run_key: str, call: int, batch: int) -> str | None:
        row = conn.execute(
            f"SELECT row_keys FROM {LEDGER_TABLE} WHERE {_KEY}", [run_key, call, batch]
        ).fetchone()
        return None if row is None else row[0]

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
                    lambda conn: conn.execute(_select.limit(1)).all(), operation="read ledger"
                )
            except TargetError:
                ddl = self._sink.transact(
                    lambda c: " ".join(str(CreateTable(_ledger).compile(dialect=c.dialect)).split()),
                    operation="create ledger",
                )
                raise _cannot_create(exc, ddl) from exc

    def load(self, run_key: str) -> dict[tuple[int, int], LedgerEntry]:
        rows = self._sink.transact(
            lambda conn: conn.execute(_select.where(_ledger.c.run_key == run_key)).all(),
            operation="read ledger",
        )
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

    def keys_of(self, conn: sa.Connection, run_key: str, call: int, batch: int) -> str | None:
        found = conn.execute(sa.select(_ledger.c.row_keys).where(self._where(run_key, call, batch))).first()
        return None if found is None else found[0]

    def forget(self, conn: sa.Connection, run_key: str, call: int, batch: int) -> bool:
        return conn.execute(_ledger.delete().where(self._where(run_key, call, batch))).rowcount > 0
