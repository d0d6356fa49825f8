"""Writes to one SQL connection through the ledger, for one attempt.

Each batch is a CLIENT span (OpenTelemetry's database conventions: `db.system.name`,
`db.operation.name`, `db.collection.name`, `db.namespace`), child of the span current on the
thread (the SDK call, or a bulk insert's shard), with `seedbed.rows`, `seedbed.bytes`, the batch's
number and `seedbed.ledger`: "written", or "skipped" when the ledger already had it (a replay).
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import timedelta
from typing import Any, TypeVar

from seedbed.worker import tracing
from seedbed.worker.ledger._entries import (
    AttemptStamp,
    BatchReport,
    ForgedLedgerEntryError,
    LedgerEntry,
    NondeterministicWriteError,
    content_digest,
    content_hash,
    plain_json,
)
from seedbed.worker.ledger._keys import PostgresTableKeys, SqlAlchemyTableKeys, TableKeys, encode_keys
from seedbed.worker.ledger._seal import MIN_KEY_BYTES, LedgerSeal
from seedbed.worker.ledger._tables import LedgerTable, PostgresLedgerTable, SqlAlchemyLedgerTable
from seedbed.worker.ledger._upserts import PostgresUpserts, SqlAlchemyUpserts, UpsertUndo, row_hash, settle
from seedbed.worker.sinks import (
    ConfigurationError,
    InsertResult,
    OnConflict,
    PostgresSink,
    Row,
    SqlAlchemySink,
    SqlSink,
    TargetError,
)

__all__ = ["BATCH_ROWS", "AttemptStamp", "LedgeredSql"]

log = logging.getLogger(__name__)

# Rows per ledgered transaction: large enough that COPY stays fast, small enough that a retry after
# a crash redoes little.
BATCH_ROWS = 10_000
# Unique violations: PostgreSQL, MySQL, SQLite. One may come from a concurrent attempt that wrote
# the same batch first; the ledger tells.
_UNIQUE = ("23505", "1062", "SQLITE_CONSTRAINT_PRIMARYKEY", "SQLITE_CONSTRAINT_UNIQUE")


# The ledger's hook in a batch's transaction: the connection, what was written, its row keys.
_Hook = Callable[[Any, InsertResult, str | None], None]
_Keys = Callable[[Sequence[Row], InsertResult], str | None]
T = TypeVar("T")


class LedgeredSql:
    """`insert` and `execute` on a SQL sink, each batch applied exactly once per run.

    A batch already in the ledger with the same content hash is skipped (its count and RETURNING
    rows are replayed); with another hash, `NondeterministicWriteError`; when the ledger's row for
    it was not written by Seedbed for this run (its MAC does not verify), `ForgedLedgerEntryError`
    and nothing is written. Every row written carries its MAC. A transient failure
    (connection lost, server restarting) or an ambiguous COMMIT is followed by a read of the
    ledger: the batch is either there (done) or written again, with backoff, for up to
    `retry_budget`.
    """

    def __init__(
        self,
        sink: SqlSink[Any],
        stamp: AttemptStamp,
        *,
        report: Callable[[BatchReport], None],
        retry_budget: timedelta = timedelta(seconds=60),
        batch_rows: int = BATCH_ROWS,
        scope: tuple[int, range] | None = None,
    ) -> None:
        if len(stamp.ledger_key) < MIN_KEY_BYTES:
            raise ConfigurationError(
                "this attempt has no key to sign its write-ledger rows with: the coordinator that "
                "dispatched it is older than this worker; upgrade it",
                connection_id=sink.connection_id,
            )
        self.sink = sink
        self._stamp = stamp
        self._seal = LedgerSeal(stamp.run_key, stamp.run_id, stamp.ledger_key)
        # Entries read back whose MAC did not verify: why, by (call, batch).
        self._forged: dict[tuple[int, int], str] = {}
        self._report = report
        self._budget = retry_budget.total_seconds()
        self._batch_rows = batch_rows
        self._table: LedgerTable
        self._keys: TableKeys
        self._upserts: PostgresUpserts | SqlAlchemyUpserts
        if isinstance(sink, PostgresSink):
            self._table, self._keys = PostgresLedgerTable(sink), PostgresTableKeys(sink)
            self._upserts = PostgresUpserts(sink)
        elif isinstance(sink, SqlAlchemySink):
            self._table, self._keys = SqlAlchemyLedgerTable(sink), SqlAlchemyTableKeys(sink)
            self._upserts = SqlAlchemyUpserts(sink)
        else:
            raise TypeError(f"no ledger for {type(sink).__name__}")
        self._primary_keys: dict[str, list[str]] = {}
        self._entries: dict[tuple[int, int], LedgerEntry] | None = None
        # A shard of a bulk insert reads the entries of its own batches only (call, batches).
        self._scope = scope
        self._lock = threading.Lock()
        self._rng = random.Random()

    @property
    def connection_id(self) -> str:
        return self.sink.connection_id

    def insert(
        self,
        call: int,
        table: str,
        rows: Sequence[Row],
        *,
        on_conflict: OnConflict | None = None,
        key: Sequence[str] | None = None,
        returning: Sequence[str] | None = None,
    ) -> InsertResult:
        """Write `rows` in batches, each applied once per run. The ledger entry of a batch records
        the primary keys of the rows it created (for `purge_run`) when they can be known: a plain
        insert whose rows carry the whole key (the keys from the rows), or one with `returning`
        naming every key column (the keys the database answered). An upsert records each row's
        prior state and its hash as written (see `_upserts`: a purge restores or deletes it) when
        its rows carry their key. Rows whose key the database generated are unknown without
        `returning`: their batches record none and are never purged."""
        header = {
            "op": "insert",
            "table": table,
            "on_conflict": on_conflict,
            "key": list(key or []),
            "returning": list(returning) if returning is not None else None,
        }
        count = 0
        returned: list[dict[str, Any]] | None = [] if returning is not None else None
        statement = self.sink.write_operation(on_conflict=on_conflict, returning=returning)
        for batch, start in enumerate(range(0, len(rows), self._batch_rows)):
            chunk = rows[start : start + self._batch_rows]

            def write(hook: _Hook, chunk: Sequence[Row] = chunk) -> InsertResult:
                if on_conflict is not None:
                    return self._upsert(hook, table, chunk, on_conflict, key, returning)
                # Only for a batch actually written: a replay needs no key.
                keys = self._row_keys(table, chunk, on_conflict, returning)

                def record(conn: Any, result: InsertResult) -> None:
                    hook(conn, result, keys(chunk, result) if keys is not None else None)

                return self.sink.insert(
                    table, chunk, on_conflict=on_conflict, key=key, returning=returning, in_transaction=record
                )

            digest, size = content_digest(header, chunk)
            with self._span(statement, table, call, batch, size):
                done = self._apply(call, batch, digest, "insert", table, write)
            count += done.rows
            if returned is not None and done.returned is not None:
                returned.extend(json.loads(done.returned))
        return InsertResult(count, returned)

    def insert_batch(
        self,
        call: int,
        batch: int,
        table: str,
        rows: Sequence[Row],
    ) -> InsertResult:
        """One batch of a streamed insert (rows arriving in pieces under one call): batch
        `batch` of call `call`, applied once per run like every batch of `insert`."""
        header: dict[str, Any] = {
            "op": "insert",
            "table": table,
            "on_conflict": None,
            "key": [],
            "returning": None,
        }

        def write(hook: _Hook) -> InsertResult:
            keys = self._row_keys(table, rows, None, None)

            def record(conn: Any, result: InsertResult) -> None:
                hook(conn, result, keys(rows, result) if keys is not None else None)

            return self.sink.insert(table, rows, in_transaction=record)

        digest, size = content_digest(header, rows)
        with self._span(
            self.sink.write_operation(on_conflict=None, returning=None), table, call, batch, size
        ):
            done = self._apply(call, batch, digest, "insert", table, write)
        return InsertResult(done.rows, None)

    def copy_batch(
        self,
        call: int,
        batch: int,
        table: str,
        digest: str,
        make: Callable[[], tuple[list[str], bytes, int, int, str | None]],
    ) -> tuple[LedgerEntry, bool]:
        """One batch of a bulk insert into PostgreSQL, applied once per run: `digest` stands for
        its content (the description of the rows it holds, see `seedbed.worker.bulk`), `make`
        builds it only when it must be written: (columns, COPY text, rows, first row of the data
        set, row keys). Returns the entry and whether it was already in the ledger."""
        sink = self.sink
        if not isinstance(sink, PostgresSink):
            raise TypeError(f"bulk COPY needs a PostgreSQL sink, not {type(sink).__name__}")
        with self._span("COPY", table, call, batch):
            return self._copy_batch(sink, call, batch, table, digest, make)

    def _copy_batch(
        self,
        sink: PostgresSink,
        call: int,
        batch: int,
        table: str,
        digest: str,
        make: Callable[[], tuple[list[str], bytes, int, int, str | None]],
    ) -> tuple[LedgerEntry, bool]:
        known = self._known().get((call, batch))
        if known is not None:
            self._vouch(known, self._forged.get((call, batch)), "insert", table)
            return self._replayed(known, digest, "insert", table), True
        columns, payload, count, first_row, row_keys = make()
        tracing.current_span().set_attribute("seedbed.bytes", len(payload))

        def write(hook: _Hook) -> InsertResult:
            return sink.copy_encoded(
                table,
                columns,
                payload,
                count,
                batch=batch,
                first_row=first_row,
                in_transaction=lambda conn, result: hook(conn, result, row_keys),
            )

        entry = self._apply(call, batch, digest, "insert", table, write)
        return entry, entry.attempt != self._stamp.attempt

    def primary_key(self, table: str) -> list[str]:
        """The table's primary-key columns ([] when unknown: its batches are not purgeable)."""
        return self._primary_key(table)

    def execute(self, call: int, sql: str, params: Any = None) -> int:
        header = {"op": "execute", "sql": sql}

        def write(hook: _Hook) -> InsertResult:
            # What a statement changed is unknown: never purgeable.
            count = self.sink.execute(
                sql, params, in_transaction=lambda conn, n: hook(conn, InsertResult(n, None), None)
            )
            return InsertResult(count, None)

        target = " ".join(sql.split())[:80]
        statement = (target.split(" ", 1)[0][:30] or "EXECUTE").upper()
        with self._span(statement, None, call, 0):
            return self._apply(call, 0, content_hash(header, [params]), "execute", target, write).rows

    @contextmanager
    def _span(
        self, statement: str, table: str | None, call: int, batch: int, size: int | None = None
    ) -> Iterator[None]:
        """The batch's span (see the module's doc); `seedbed.ledger` and the rows are set once
        the ledger has decided (`_emit`)."""
        attributes: dict[str, Any] = {
            **self.sink.db_attributes(),
            "db.operation.name": statement,
            "seedbed.connection": self.connection_id,
            "seedbed.call": call,
            "seedbed.batch": batch,
        }
        if table is not None:
            attributes["db.collection.name"] = table
        if size is not None:
            attributes["seedbed.bytes"] = size
        name = f"{statement} {table}" if table is not None else statement
        with tracing.span(name, kind=tracing.SpanKind.CLIENT, attributes=attributes):
            yield

    # -- row keys ----------------------------------------------------------------------------------

    def _row_keys(
        self,
        table: str,
        rows: Sequence[Row],
        on_conflict: OnConflict | None,
        returning: Sequence[str] | None,
    ) -> _Keys | None:
        """How to name the rows a batch of this call creates, or None when they cannot be known."""
        if on_conflict is not None or not rows or not isinstance(rows[0], Mapping):
            return None
        columns = self._primary_key(table)
        if not columns:
            return None
        returned = returning is not None and all(c in returning for c in columns)
        if all(c in rows[0] for c in columns):

            def from_rows(chunk: Sequence[Row], result: InsertResult) -> str | None:
                # A NULL key is filled in by the database (SQLite's INTEGER PRIMARY KEY).
                found = encode_keys(columns, chunk)
                if found is None and returned and result.rows_returned is not None:
                    return encode_keys(columns, result.rows_returned)
                return found

            return from_rows
        if returned:
            return lambda chunk, result: encode_keys(columns, result.rows_returned or [])
        return None

    def _upsert(
        self,
        hook: _Hook,
        table: str,
        chunk: Sequence[Row],
        on_conflict: OnConflict,
        key: Sequence[str] | None,
        returning: Sequence[str] | None,
    ) -> InsertResult:
        """An upsert batch, recording each row's prior state and its hash after the write (see
        `_upserts`) when the rows carry their identity (the upsert's key, else the primary key), so
        that a purge can put them back."""
        columns = list(key or []) or self._primary_key(table)
        values: list[list[Any]] | None = None
        if columns and chunk and all(isinstance(r, Mapping) for r in chunk):
            values = [[r.get(c) for c in columns] for r in chunk]
            if any(v is None for vs in values for v in vs):
                values = None
        upserts = self._upserts
        prior: list[str | None] = []

        def before(conn: Any) -> None:
            if values is not None:
                prior.extend(upserts.rows(conn, table, columns, values))

        def record(conn: Any, result: InsertResult) -> None:
            keys = None
            if values is not None:
                inserted = upserts.inserted(conn, table, columns, values)  # before rows() locks them
                now = upserts.rows(conn, table, columns, values)
                after = [row_hash(r) if r is not None else None for r in now]
                known, unknown = settle(prior, now, inserted, ignore=on_conflict == "ignore")
                keys = UpsertUndo(columns, values, known, after, upserts.by, unknown).encode()
            hook(conn, result, keys)

        sink = self.sink
        assert isinstance(sink, PostgresSink | SqlAlchemySink)  # noqa: S101 - checked in __init__
        return sink.insert(
            table,
            chunk,
            on_conflict=on_conflict,
            key=key,
            returning=returning,
            in_transaction=record,
            before_write=before,
        )

    def _primary_key(self, table: str) -> list[str]:
        """The table's primary key, read once per table. A transient failure propagates (the
        write is retried, and this with it); any other leaves the table's batches unpurgeable."""
        found = self._primary_keys.get(table)
        if found is None:
            try:
                found = self._keys.primary_key(table)
            except TargetError as exc:
                if exc.transient:
                    raise
                log.warning(
                    "cannot read the primary key of %s on %s (%s): its batches will not be purgeable",
                    table,
                    self.connection_id,
                    exc,
                )
                found = []
            self._primary_keys[table] = found
        return found

    # -- one batch ---------------------------------------------------------------------------------

    def _known(self) -> dict[tuple[int, int], LedgerEntry]:
        with self._lock:
            if self._entries is None:
                entries = self._retrying(self._load, "read the ledger")
                self._entries = entries
            return self._entries

    def _load(self) -> dict[tuple[int, int], LedgerEntry]:
        self._table.ensure()
        if self._scope is not None:
            entries = self._table.load(self._stamp.run_key, self._scope[0], self._scope[1])
        else:
            entries = self._table.load(self._stamp.run_key)
        for key, entry in entries.items():
            problem = self._seal.problem(entry)
            if problem is not None:
                self._forged[key] = problem
            entries[key] = replace(entry, row_keys=None)  # checked: a replay needs no keys
        return entries

    def _apply(
        self,
        call: int,
        batch: int,
        digest: str,
        operation: str,
        target: str,
        write: Callable[[_Hook], InsertResult],
    ) -> LedgerEntry:
        known = self._known()
        entry = known.get((call, batch))
        if entry is not None:
            self._vouch(entry, self._forged.get((call, batch)), operation, target)
            return self._replayed(entry, digest, operation, target)
        stamp = self._stamp
        recorded: list[LedgerEntry] = []

        def hook(conn: Any, result: InsertResult, row_keys: str | None) -> None:
            returned = plain_json(result.rows_returned) if result.rows_returned is not None else None
            entry = LedgerEntry(
                call, batch, digest, operation, target, result.count, returned, stamp.attempt, row_keys
            )
            entry = replace(entry, mac=self._seal.mac(entry))
            self._table.record(conn, stamp, entry)
            recorded.append(entry)

        give_up = time.monotonic() + self._budget
        delay = 0.2
        while True:
            recorded.clear()
            try:
                write(hook)
            except TargetError as exc:
                if not (exc.transient or exc.sqlstate in _UNIQUE or exc.db_code in _UNIQUE):
                    raise
                # Did it land (an ambiguous COMMIT), or did another attempt write it first?
                found = self._retrying(
                    lambda: self._table.lookup(stamp.run_key, call, batch), "read the ledger", give_up
                )
                if found is not None:
                    self._vouch(found, self._seal.problem(found), operation, target)
                    found = replace(found, row_keys=None)
                    known[(call, batch)] = found
                    if found.attempt != stamp.attempt:
                        return self._replayed(found, digest, operation, target)
                    self._check(found, digest, operation, target)
                    self._emit(found, replayed=False)
                    return found
                if not exc.transient or time.monotonic() + delay > give_up:
                    raise
                log.warning(
                    "%s %s on %s, call %d batch %d: %s; writing it again in %.1fs",
                    operation,
                    target,
                    self.connection_id,
                    call,
                    batch,
                    exc.db_message,
                    delay,
                )
                delay = self._pause(delay)
                continue
            entry = recorded[-1]
            known[(call, batch)] = entry
            self._emit(entry, replayed=False)
            return entry

    def _vouch(self, entry: LedgerEntry, problem: str | None, operation: str, target: str) -> None:
        """Raise ForgedLedgerEntryError when `problem` says Seedbed did not write `entry`."""
        if problem is not None:
            raise ForgedLedgerEntryError(
                connection_id=self.connection_id,
                operation=operation,
                target=target,
                call=entry.call,
                batch=entry.batch,
                run_key=self._stamp.run_key,
                problem=problem,
            )

    def _replayed(self, entry: LedgerEntry, digest: str, operation: str, target: str) -> LedgerEntry:
        self._check(entry, digest, operation, target)
        self._emit(entry, replayed=True)
        return entry

    def _check(self, entry: LedgerEntry, digest: str, operation: str, target: str) -> None:
        if entry.content_hash != digest:
            raise NondeterministicWriteError(
                connection_id=self.connection_id,
                operation=operation,
                target=target,
                call=entry.call,
                batch=entry.batch,
                recorded=entry,
                content_hash=digest,
            )

    def _emit(self, entry: LedgerEntry, *, replayed: bool) -> None:
        attributes: dict[str, Any] = {"seedbed.ledger": "skipped" if replayed else "written"}
        if entry.rows >= 0:  # a statement without a row count (DDL) reports -1: no rows to say
            attributes["seedbed.rows"] = entry.rows
        tracing.current_span().set_attributes(attributes)
        self._report(
            BatchReport(
                connection_id=self.connection_id,
                operation=entry.operation,
                target=entry.target,
                call=entry.call,
                batch=entry.batch,
                rows=entry.rows,
                content_hash=entry.content_hash,
                replayed=replayed,
            )
        )

    def _retrying(self, read: Callable[[], T], what: str, give_up: float | None = None) -> T:
        """Reads of the ledger, retried while the target is unreachable."""
        give_up = give_up if give_up is not None else time.monotonic() + self._budget
        delay = 0.2
        while True:
            try:
                return read()
            except TargetError as exc:
                if not exc.transient or time.monotonic() + delay > give_up:
                    raise
                log.warning("could not %s on %s: %s; again in %.1fs", what, self.connection_id, exc, delay)
                delay = self._pause(delay)

    def _pause(self, delay: float) -> float:
        """Sleep about `delay` seconds (±20%); the next, doubled delay (at most 5 s)."""
        time.sleep(delay * (0.8 + 0.4 * self._rng.random()))
        return min(delay * 2, 5.0)
