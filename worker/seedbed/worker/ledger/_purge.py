"""Purging a run from one SQL target: deleting the rows it inserted, by the keys its ledger recorded.

    summary = purge_run(sink, LedgerSeal(run_key, run_id, ledger_key), dry_run=False)

Newest batch first (call, then batch, descending): rows that reference rows the run wrote earlier
(orders, then the customers they name) go first, so the run's own foreign keys never block. Each
batch is one transaction: its ledger entry is deleted (a concurrent purge then finds it gone and
leaves the batch alone), then its rows, in chunks. Rows already gone (deleted by hand) are counted
as recorded but not deleted, not as an error. An upsert batch on PostgreSQL recorded each row's
prior state (see `_upserts`): its new rows are deleted, the rows it changed put back, and rows
changed since by someone else left alone and listed (`ChangedRow`). A batch without keys (an upsert
whose rows do not carry their key, a statement, keys the database generated that the insert did
not ask back) is skipped and listed with why; its entry stays.
So is an entry whose MAC does not verify (see `LedgerSeal`): Seedbed did not write it for this run,
and nothing is deleted on its word; it is left in place for someone to look at.

A replay signs its ledger entries for the run it replays: the original and its replays share one
ledger identity, and the ledger cannot tell whose an entry is. The coordinator can (which run
APPLIED which batch): with `only`, the purge acts on those (call, batch) pairs alone, and lists the
other entries once per table as another run's (the original or a replay), not as failures.

A failure (a foreign key from rows the purge does not delete) stops the purge: the batches purged
before it stay committed, and purging again resumes where it stopped.

Rejected: one transaction for the whole run (a large run would hold its locks, and a failure
would undo everything done); deleting by the rows' content (a row updated since, or a duplicate
written by someone else, would be deleted or missed).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

import psycopg
from sqlalchemy import exc as sa_exc

from seedbed.worker import templates
from seedbed.worker.ledger._entries import LEDGER_TABLE, LedgerEntry
from seedbed.worker.ledger._keys import PostgresTableKeys, SqlAlchemyTableKeys, TableKeys, decode_keys
from seedbed.worker.ledger._seal import LedgerSeal
from seedbed.worker.ledger._tables import (
    LedgerTable,
    PostgresLedgerTable,
    RecordedBatch,
    SqlAlchemyLedgerTable,
)
from seedbed.worker.ledger._upserts import PostgresUpserts, SqlAlchemyUpserts, UpsertUndo, UpsertUndone
from seedbed.worker.sinks import PostgresSink, SqlAlchemySink, SqlSink, TargetError

__all__ = ["ChangedRow", "PurgeFailure", "PurgeSummary", "PurgedTable", "SkippedBatch", "purge_run"]

# Foreign-key violations on delete: PostgreSQL's SQLSTATE, MySQL's error numbers, SQLite's name.
_FOREIGN_KEY_CODES = ("1451", "1217", "SQLITE_CONSTRAINT_FOREIGNKEY")


@dataclass
class PurgedTable:
    """Per table: rows deleted (or, in a dry run, found), rows the ledger recorded, batches; rows an
    upsert changed that were put back as they were (`rows_restored`), and rows left alone because
    they were changed since the run wrote them (`rows_changed`)."""

    table: str
    rows_deleted: int = 0
    rows_recorded: int = 0
    batches: int = 0
    rows_restored: int = 0
    rows_changed: int = 0


@dataclass(frozen=True)
class ChangedRow:
    """A row an upsert wrote that a purge left alone: its key (JSON) and why."""

    table: str
    call: int
    batch: int
    key: str
    reason: str


@dataclass(frozen=True)
class SkippedBatch:
    operation: str
    target: str
    call: int
    batch: int
    reason: str


@dataclass(frozen=True)
class PurgeFailure:
    """Why the purge stopped; `table` empty when the failure is not about one."""

    table: str
    call: int
    batch: int
    message: str


@dataclass
class PurgeSummary:
    dry_run: bool
    tables: list[PurgedTable] = field(default_factory=list)
    skipped: list[SkippedBatch] = field(default_factory=list)
    failure: PurgeFailure | None = None
    changed: list[ChangedRow] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "tables": [vars(t) for t in self.tables],
            "skipped": [vars(s) for s in self.skipped],
            "errors": [vars(self.failure)] if self.failure is not None else [],
            "changed": [vars(c) for c in self.changed],
        }


@dataclass(frozen=True)
class _Unpurgeable:
    """A batch left alone: its entry has no keys, Seedbed did not write it (`forged`), or its keys
    cannot be computed again (`undecodable`: derived keys from a template this release reads
    differently)."""

    operation: str
    target: str
    forged: str | None = None
    undecodable: str | None = None


def purge_run(
    sink: SqlSink[Any], seal: LedgerSeal, *, dry_run: bool, only: Collection[tuple[int, int]] | None = None
) -> PurgeSummary:
    """Delete (or with `dry_run` count) what run `seal.run_key` inserted into this target, by the
    ledger entries whose MAC `seal` verifies; with `only`, of those the (call, batch) pairs it
    names (the batches the run being purged applied), the others listed once per table."""
    run_key = seal.run_key
    ledger: LedgerTable
    keys: TableKeys
    if isinstance(sink, PostgresSink):
        ledger, keys = PostgresLedgerTable(sink), PostgresTableKeys(sink)
    elif isinstance(sink, SqlAlchemySink):
        ledger, keys = SqlAlchemyLedgerTable(sink), SqlAlchemyTableKeys(sink)
    else:
        raise TypeError(f"no ledger for {type(sink).__name__}")
    summary = PurgeSummary(dry_run)
    try:
        history = ledger.history(run_key)
    except TargetError as exc:
        summary.failure = PurgeFailure("", 0, 0, f"cannot read the write ledger: {exc}")
        return summary
    totals: dict[str, PurgedTable] = {}
    reasons = _Reasons(keys)
    upserts = PostgresUpserts(sink) if isinstance(sink, PostgresSink) else SqlAlchemyUpserts(sink)
    simulated: dict[tuple[str, str], str | None] = {}  # a dry run's upserted rows, as it would leave them
    allowed = None if only is None else set(only)
    others: dict[str, list[RecordedBatch]] = {}  # per table, entries another run of the identity wrote
    for entry in history:
        if allowed is not None and (entry.call, entry.batch) not in allowed:
            # Another run's only when Seedbed wrote it: a forged or edited entry is listed as such.
            try:
                forged = sink.transact(
                    functools.partial(_seal_problem, ledger=ledger, seal=seal, entry=entry), operation="purge"
                )
            except TargetError as exc:
                summary.failure = PurgeFailure(entry.target, entry.call, entry.batch, str(exc))
                break
            if forged is not None:
                reason = _forged(forged)
                summary.skipped.append(
                    SkippedBatch(entry.operation, entry.target, entry.call, entry.batch, reason)
                )
            else:
                others.setdefault(entry.target, []).append(entry)
            continue
        body = functools.partial(
            _purge_batch,
            ledger=ledger,
            keys=keys,
            upserts=upserts,
            seal=seal,
            entry=entry,
            dry_run=dry_run,
            simulated=simulated,
        )
        try:
            done = sink.transact(body, operation="purge")
        except TargetError as exc:
            message = _explain(exc, entry, sum(t.batches for t in totals.values()))
            summary.failure = PurgeFailure(entry.target, entry.call, entry.batch, message)
            break
        if done is None:
            continue  # purged meanwhile by another purge of the same run
        if isinstance(done, _Unpurgeable):
            listed = RecordedBatch(entry.call, entry.batch, done.operation, done.target, entry.rows, False)
            if done.forged is not None:
                reason = _forged(done.forged)
            elif done.undecodable is not None:
                reason = f"the keys its ledger entry derives cannot be computed again: {done.undecodable}"
            else:
                reason = reasons.of(listed)
            summary.skipped.append(SkippedBatch(done.operation, done.target, entry.call, entry.batch, reason))
            continue
        total = totals.get(done.table)
        if total is None:
            total = totals[done.table] = PurgedTable(done.table)
            summary.tables.append(total)
        total.rows_deleted += done.deleted
        total.rows_recorded += done.recorded
        total.batches += 1
        if done.upsert is not None:
            total.rows_restored += done.upsert.restored
            total.rows_changed += done.upsert.changed
            summary.changed.extend(
                ChangedRow(done.table, entry.call, entry.batch, key, reason)
                for key, reason in done.upsert.listed
            )
    for target, entries in others.items():
        first = entries[0]
        count = len(entries)
        summary.skipped.append(
            SkippedBatch(
                first.operation,
                target,
                first.call,
                first.batch,
                f"{count} batch{'es' if count != 1 else ''} written by another run of the same data set "
                "(the original or a replay): purge that run",
            )
        )
    return summary


@dataclass(frozen=True)
class _Purged:
    table: str
    deleted: int
    recorded: int
    upsert: UpsertUndone | None = None


def _seal_problem(conn: Any, *, ledger: LedgerTable, seal: LedgerSeal, entry: RecordedBatch) -> str | None:
    """What is wrong with `entry`'s ledger row (see `LedgerSeal.problem`); None when Seedbed wrote it
    for this run, or it is gone."""
    found = ledger.entry_of(conn, seal.run_key, entry.call, entry.batch)
    return None if found is None else seal.problem(found)


def _purge_batch(
    conn: Any,
    *,
    ledger: LedgerTable,
    keys: TableKeys,
    upserts: PostgresUpserts | SqlAlchemyUpserts,
    seal: LedgerSeal,
    entry: RecordedBatch,
    dry_run: bool,
    simulated: dict[tuple[str, str], str | None],
) -> _Purged | _Unpurgeable | None:
    """(rows deleted or found, rows recorded, table) for one batch, in the caller's transaction; None when
    its entry is gone; _Unpurgeable when its entry names no keys or was not written by Seedbed. The
    entry is read again, whole, here: what the listing said is not what is acted on."""
    run_key = seal.run_key
    found = ledger.entry_of(conn, run_key, entry.call, entry.batch)
    if found is None:
        return None
    problem = seal.problem(found)
    if problem is not None:
        return _Unpurgeable(entry.operation, entry.target, forged=problem)
    if found.row_keys is None:
        return _Unpurgeable(found.operation, found.target)
    if '"upsert":' in found.row_keys:
        return _undo_upsert(conn, ledger, upserts, seal, found, dry_run=dry_run, simulated=simulated)
    try:
        columns, values = decode_keys(found.row_keys)
    except (ValueError, KeyError, TypeError, templates.TemplateError) as exc:
        return _Unpurgeable(found.operation, found.target, undecodable=str(exc))
    if dry_run:
        return _Purged(found.target, keys.count(conn, found.target, columns, values), len(values))
    # The entry first: a concurrent purge blocks on it, then finds it gone.
    if not ledger.forget(conn, run_key, entry.call, entry.batch):
        return None
    return _Purged(found.target, keys.delete(conn, found.target, columns, values), len(values))


def _undo_upsert(
    conn: Any,
    ledger: LedgerTable,
    upserts: PostgresUpserts | SqlAlchemyUpserts,
    seal: LedgerSeal,
    found: LedgerEntry,
    *,
    dry_run: bool,
    simulated: dict[tuple[str, str], str | None],
) -> _Purged | _Unpurgeable | None:
    """An upsert batch: its new rows deleted, the rows it changed put back, those changed since
    left alone (see `_upserts`)."""
    try:
        undo = UpsertUndo.decode(json.loads(found.row_keys or ""))
    except (ValueError, TypeError) as exc:
        return _Unpurgeable(found.operation, found.target, undecodable=str(exc))
    if undo.by != upserts.by:
        return _Unpurgeable(
            found.operation,
            found.target,
            undecodable=f"its rows were read through a {undo.by} connection: purge the run through one "
            "of that kind to the same database",
        )
    if not dry_run and not ledger.forget(conn, seal.run_key, found.call, found.batch):
        return None
    done = upserts.undo(conn, found.target, undo, dry_run=dry_run, simulated=simulated)
    return _Purged(found.target, done.deleted, len(undo.values), done)


def _forged(problem: str) -> str:
    return (
        f"its row in table {LEDGER_TABLE} was not written by Seedbed: {problem}. Something else with "
        "write access to this database (a script of another run, through the same connection?) wrote "
        "or changed it: nothing is deleted on its word, and the row is left for a look"
    )


class _Reasons:
    """Why a batch is not purgeable, in words (the table's primary key read once per table)."""

    def __init__(self, keys: TableKeys) -> None:
        self._keys = keys
        self._has_key: dict[str, bool] = {}

    def of(self, entry: RecordedBatch) -> str:
        if entry.operation != "insert":
            return "a statement (execute): what it changed is unknown; undo it by hand if needed"
        if entry.target not in self._has_key:
            try:
                self._has_key[entry.target] = bool(self._keys.primary_key(entry.target))
            except TargetError:
                self._has_key[entry.target] = True  # unknown: the general reason below
        if not self._has_key[entry.target]:
            return f"table {entry.target} has no primary key: its rows cannot be told apart"
        return (
            "the ledger holds no keys for its rows: an upsert (on_conflict) whose rows do not carry "
            "their key may have changed rows that existed before the run; or the database generated "
            "the keys and the insert did not ask for them back with returning=[the key columns]"
        )


def _constraint(exc: TargetError) -> tuple[str | None, str | None]:
    """(constraint, referencing table) as PostgreSQL names them, through psycopg or SQLAlchemy."""
    cause: BaseException | None = exc.__cause__
    if isinstance(cause, sa_exc.DBAPIError):
        cause = cause.orig
    if isinstance(cause, psycopg.Error):
        return cause.diag.constraint_name, cause.diag.table_name
    return None, None


def _explain(exc: TargetError, entry: RecordedBatch, purged: int) -> str:
    where = f"call {entry.call} (batch {entry.batch})"
    after = (
        f"; the {purged} batch{'es' if purged != 1 else ''} purged before it on this connection "
        f"{'are' if purged != 1 else 'is'} committed and stay{'' if purged != 1 else 's'} purged"
        if purged
        else "; nothing was deleted on this connection"
    )
    if exc.sqlstate != "23503" and exc.db_code not in _FOREIGN_KEY_CODES:
        return f"purging the rows {where} inserted into {entry.target} failed: {exc}{after}"
    constraint, referencing = _constraint(exc)
    via = ""
    if constraint:
        via = f" through foreign key {constraint}" + (f" of table {referencing}" if referencing else "")
    detail = f" ({exc.detail})" if exc.detail else ""
    return (
        f"cannot delete the rows {where} inserted into {entry.target}: other rows still reference "
        f"them{via}{detail} [{exc.db_message}]. Those rows were not written by the run, or by a batch "
        f"the purge skips: delete or change them, then purge again{after}"
    )
