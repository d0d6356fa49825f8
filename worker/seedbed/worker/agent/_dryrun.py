"""The agent's write calls in a dry run (`AttemptSpec.dry_run`): every write is intercepted, checked
against the target's live schema and counted, and nothing is written — not the rows, not the write
ledger (its table is never created), not a file, not a request.

The agent swaps its write ops for these when the attempt is a dry run; reads (`get`, `generate`,
the workspace) stay as they are, so a script sees the target as it is, and `fetch` runs on a
connection made read-only in the database (`seedbed.worker.dryrun.read_only`: MariaDB's DDL would
commit however the sink rolls back). Call numbers advance exactly as in a real run, so the rows are
those of the dry run's run key: a replay of the dry run (same script, params, run key) makes them
again; a new run has a run key of its own and other values. Steps count no row as written (none
was): the report holds what would have been.

What each write does here:

- `insert` (rows, a row set, an upsert, `returning`) and the pieces of `insert.open/write/close`:
  checked by `seedbed.worker.dryrun.SqlChecks`; an upsert as its target meets it (`dryrun.Upsert`:
  the conflict key, the other unique keys, a key twice in one PostgreSQL statement). A row set
  larger than `SAMPLE_ROWS` (the bulk path) is not made whole: its first `SAMPLE_ROWS` rows are made
  and checked in full, the count is the set's (a dry run of a 5M-row insert costs a sample, not the
  insert). `returning` answers the rows' own values, and made-up ids (one past the table's largest)
  for a serial key the rows lack.
- `execute`: not run; reported under the connection as a statement whose effect is unchecked, and
  answers 0 rows. A scenario that creates its tables therefore reports them missing in a dry run
  against an empty database: dry runs check against the schema as it is.
- `post` (REST): not sent; counted per path. The script gets, per row (single mode), the row echoed
  with `"dry_run": true` and an `id` (the row's own, else its 1-based position among the rows the run
  posts to that path); in batch mode one such list per batch.
- `write` (file connections): not written; counted per file name.

Rejected: running `execute` statements in a transaction rolled back at the end (a dry run would take
the locks a TRUNCATE or ALTER takes, and statements outside transactions — CREATE INDEX
CONCURRENTLY, MariaDB's DDL — would commit); checking every row of a bulk row set (as slow as
generating it, the insert's larger cost).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from seedbed.api.v1 import attempt_pb2, dryrun_pb2, run_pb2
from seedbed.worker import dryrun
from seedbed.worker.agent._args import handle as _handle
from seedbed.worker.agent._args import names as _names
from seedbed.worker.agent._args import text as _text
from seedbed.worker.agent._errors import InvalidArgument, LimitExceeded, TargetError
from seedbed.worker.ledger import BATCH_ROWS
from seedbed.worker.sinks._rows import split_table  # the sinks' own rule for table names

__all__ = ["SAMPLE_ROWS", "AgentSide", "DryRunWrites"]

log = logging.getLogger(__name__)

SAMPLE_ROWS = 10_000
MAX_OPEN_INSERTS = 16
# What one path counted for `post` costs besides its text (a tuple, a dict slot, a counter).
PATH_BYTES = 200
# Bind parameters one statement may carry: PostgreSQL's protocol, and SQLAlchemy's insertmanyvalues
# for PostgreSQL (whose pages hold at most 1,000 rows).
PG_MAX_PARAMS = 65_535
SA_PG_MAX_PARAMS = 32_767
SA_PAGE_ROWS = 1_000


@dataclass(frozen=True)
class AgentSide:
    """What the dry run borrows from the agent."""

    sink: Callable[[Mapping[str, Any], tuple[str, ...], str], Any]
    rows: Callable[[Mapping[str, Any]], list[dict[str, Any]]]
    # (the row set's first rows, up to n; the set's size) for a `{"$rows": handle}` argument
    sample: Callable[[Any, int], tuple[list[dict[str, Any]], int]]
    next_call: Callable[[], int]
    reply: Callable[[list[Any], dict[str, Any]], Any]
    scrub: Callable[[str], str]
    # The attempt's memory budget: the keys a dry run remembers are held against it.
    hold: Callable[[int, str], None] = lambda size, what: None
    # How long one of the dry run's own statements may take (None: no limit).
    statement_timeout_seconds: int | None = None
    # The agent's own `fetch` op: run after the dry run made the connection read-only.
    fetch: Callable[[Mapping[str, Any]], Any] | None = None


@dataclass
class _Open:
    connection_id: str
    table: str
    call: int
    count: int = 0


def _table(args: Mapping[str, Any], connection_id: str) -> str:
    """The table argument, refused as the sinks refuse it (not `table` or `schema.table` of plain
    identifiers): a dry run answers a bad name as the real run would."""
    table = _text(args, "table", limit=300)
    split_table(table, connection_id)
    return table


class DryRunWrites:
    def __init__(self, side: AgentSide) -> None:
        self._side = side
        self.report = dryrun.ReportBuilder(side.scrub)
        self._sql: dict[str, dryrun.SqlChecks] = {}
        self._posted: dict[tuple[str, str], int] = {}
        self._inserts: dict[str, _Open] = {}

    def ops(self) -> dict[str, Callable[[Mapping[str, Any]], Any]]:
        ops: dict[str, Callable[[Mapping[str, Any]], Any]] = {
            "insert": self._insert,
            "insert.open": self._insert_open,
            "insert.write": self._insert_write,
            "insert.close": self._insert_close,
            "execute": self._execute,
            "post": self._post,
            "write": self._write,
        }
        if self._side.fetch is not None:
            ops["fetch"] = self._fetch
        return ops

    def to_proto(self) -> dryrun_pb2.DryRunReport:
        return self.report.to_proto()

    def close(self) -> None:
        for checks in self._sql.values():
            try:
                checks.close()
            except Exception:  # noqa: BLE001 - closing must not hide the attempt's outcome
                log.exception("closing the dry run's reader of %s failed", checks.connection_id)
        self._sql = {}

    def _checks(self, args: Mapping[str, Any], op: str) -> dryrun.SqlChecks:
        sink = self._side.sink(args, ("postgresql", "sql"), op)
        found = self._sql.get(sink.connection_id)
        if found is None:
            try:
                catalog = dryrun.SqlCatalog(
                    sink.spec.options["url"], statement_timeout_seconds=self._side.statement_timeout_seconds
                )
            except (sa_exc.ArgumentError, sa_exc.NoSuchModuleError, ImportError) as exc:
                raise TargetError(f"connection {sink.connection_id}: cannot read its schema: {exc}") from None
            found = self._sql[sink.connection_id] = dryrun.SqlChecks(
                sink.connection_id, catalog, self.report, hold=self._side.hold
            )
        return found

    def _check(self, checks: dryrun.SqlChecks, call: int, table: str, rows: Any, **how: Any) -> None:
        try:
            checks.check(call, table, rows, **how)
        except sa_exc.SQLAlchemyError as exc:
            # The target went away under the dry run: say so in the report, not as the script's error.
            target = self.report.target(checks.connection_id, "insert", table)
            self.report.problem(
                target,
                dryrun_pb2.DRY_RUN_PROBLEM_KIND_TARGET_ERROR,
                row=-1,
                message=f"could not check {table}: {str(getattr(exc, 'orig', exc)).splitlines()[0][:300]}",
                call=call,
            )

    def _insert(self, args: Mapping[str, Any]) -> Any:
        checks = self._checks(args, "insert")
        table = _table(args, checks.connection_id)
        on_conflict = args.get("on_conflict")
        if on_conflict not in (None, "ignore", "update"):
            raise InvalidArgument(f"on_conflict must be None, 'ignore' or 'update', not {on_conflict!r}")
        returning = _names(args, "returning")
        key = _names(args, "key")
        # As the sinks refuse them (a dry run answers a bad call as the real run would).
        if on_conflict == "update" and not key:
            raise InvalidArgument("on_conflict='update' needs key=[...] (the unique columns)")
        if key and on_conflict is None:
            raise InvalidArgument("key is only meaningful with on_conflict")
        raw = args.get("rows")
        if isinstance(raw, dict) and "$rows" in raw and on_conflict is None and returning is None:
            rows, total = self._side.sample(raw["$rows"], SAMPLE_ROWS)
            call = self._side.next_call()
            self._check(checks, call, table, rows, sample_of=total)
            return {"count": total}
        rows = self._side.rows(args)
        call = self._side.next_call()
        upsert = None
        if on_conflict is not None:
            sink = self._side.sink(args, ("postgresql", "sql"), "insert")
            width = len(dict.fromkeys(name for row in rows for name in row))
            upsert = dryrun.Upsert(on_conflict, tuple(key) if key else None, _statements(sink, width))
        self._check(checks, call, table, rows, upsert=upsert)
        if returning is None:
            return {"count": len(rows)}
        return self._side.reply(checks.returning(table, rows, returning), {"count": len(rows)})

    def _fetch(self, args: Mapping[str, Any]) -> Any:
        """The agent's `fetch`, on a connection the database keeps read-only (see the module)."""
        sink = self._side.sink(args, ("postgresql", "sql"), "fetch")
        # The SQL sink's engine: the sinks serve real runs and know nothing of dry runs, so the
        # dry run sets its own listener on the engine (PostgreSQL's sink reads read-only itself).
        engine = getattr(sink, "_engine", None)
        if isinstance(engine, sa.Engine):
            dryrun.read_only(engine)
        assert self._side.fetch is not None  # noqa: S101 - ops() offers fetch only then
        return self._side.fetch(args)

    def _insert_open(self, args: Mapping[str, Any]) -> Any:
        checks = self._checks(args, "insert")
        table = _table(args, checks.connection_id)
        if len(self._inserts) >= MAX_OPEN_INSERTS:
            raise LimitExceeded(f"more than {MAX_OPEN_INSERTS} open inserts: close one first")
        call = self._side.next_call()
        handle = f"insert_{call}"
        self._inserts[handle] = _Open(checks.connection_id, table, call)
        return {"handle": handle}

    def _insert_write(self, args: Mapping[str, Any]) -> Any:
        _, entry = _handle(args, self._inserts, "insert")
        rows = self._side.rows(args)
        self._check(self._sql[entry.connection_id], entry.call, entry.table, rows, first_index=entry.count)
        entry.count += len(rows)
        return {"count": entry.count}

    def _insert_close(self, args: Mapping[str, Any]) -> Any:
        handle, entry = _handle(args, self._inserts, "insert")
        del self._inserts[handle]
        return {"count": entry.count}

    def _execute(self, args: Mapping[str, Any]) -> Any:
        sink = self._side.sink(args, ("postgresql", "sql"), "execute")
        sql = _text(args, "sql", limit=100_000)
        self._side.next_call()
        # A statement may name a password (CREATE USER …): its text is masked like every message.
        statement = self._side.scrub(" ".join(sql.split()))
        target = self.report.target(sink.connection_id, "execute", statement[:200])
        self.report.unchecked(
            target,
            "not run in a dry run: what it would change is not reflected in the checks (a table it "
            "creates is reported missing: create it before the dry run to check rows against it)",
        )
        return 0

    def _post(self, args: Mapping[str, Any]) -> Any:
        sink = self._side.sink(args, ("rest",), "post")
        path = _text(args, "path", limit=2000)
        mode = args.get("mode", "single")
        if mode not in ("single", "batch"):
            raise InvalidArgument(f"mode must be 'single' or 'batch', not {mode!r}")
        rows = self._side.rows(args)
        self._side.next_call()
        target = self.report.target(sink.connection_id, "post", path)
        target.rows += len(rows)
        self.report.unchecked(target, "a REST target has no schema to check against: nothing was sent")
        slot = (sink.connection_id, path)
        if slot not in self._posted:
            # One counter per distinct path, kept to the attempt's end: held against its memory.
            self._side.hold(PATH_BYTES + len(path), f"the count of posts to path {path[:100]}")
        first = self._posted.get(slot, 0)
        self._posted[slot] = first + len(rows)
        echoed = [{**row, "id": row.get("id", first + i + 1), "dry_run": True} for i, row in enumerate(rows)]
        if mode == "single":
            return self._side.reply(echoed, {})
        size = max(1, int(sink.spec.options.get("batch_size") or 100))
        return self._side.reply([echoed[i : i + size] for i in range(0, len(echoed), size)], {})

    def _write(self, args: Mapping[str, Any]) -> Any:
        sink = self._side.sink(args, ("file",), "write")
        fmt = args.get("format", "csv")
        if fmt not in ("csv", "jsonl"):
            raise InvalidArgument(f"format must be 'csv' or 'jsonl', not {fmt!r}")
        name = _text(args, "name", limit=200)
        rows = self._side.rows(args)
        self._side.next_call()
        target = self.report.target(sink.connection_id, "write", name)
        target.rows += len(rows)
        self.report.unchecked(target, "file not written in a dry run")
        return {"count": len(rows), "size_bytes": 0}

    def finish(self, result: Any) -> None:
        """Put the report on the attempt's result (an `AttemptResult`). A script that ran to its
        end with problems found ends FAILED (`DryRunProblems`): a dry run that a CI job waits for
        fails the job; with none it keeps its outcome (SUCCESS, or WARNING for logged warnings)."""
        report = self.to_proto()
        result.dry_run_report.CopyFrom(report)
        if result.outcome != attempt_pb2.ATTEMPT_OUTCOME_SUCCEEDED or not report.problem_count:
            return
        worst = next(t for t in report.targets if t.problem_count)
        first = worst.problems[0] if worst.problems else None
        where = f"{worst.connection_id} {worst.target}"
        detail = f": row {first.row} {first.field}: {first.message}" if first is not None else ""
        result.outcome = attempt_pb2.ATTEMPT_OUTCOME_SCRIPT_ERROR
        result.error.CopyFrom(
            run_pb2.ErrorDetails(
                reason=run_pb2.FAILURE_REASON_SCRIPT_ERROR,
                type="DryRunProblems",
                message=(
                    f"the dry run found {report.problem_count} problem(s) in "
                    f"{sum(1 for t in report.targets if t.problem_count)} target(s); first in {where}{detail}"
                )[:2000],
            )
        )


def _statements(sink: Any, width: int) -> Callable[[int], Any]:
    """Which statement of a real upsert call row `i` goes in: the ledger's batches of BATCH_ROWS,
    each split into multi-row INSERTs (the PostgreSQL sink: `batch_size` rows, fewer when its
    parameters would pass PostgreSQL's limit; the SQL sink: `batch_size`, then SQLAlchemy's pages)."""
    width = max(1, width)
    batch = int(getattr(getattr(sink, "settings", None), "batch_size", 0) or 1)
    if sink.spec.kind == "postgresql":
        size = min(batch, PG_MAX_PARAMS // width)
    else:
        size = min(batch, SA_PAGE_ROWS, SA_PG_MAX_PARAMS // width)
    size = max(1, size)
    return lambda i: (i // BATCH_ROWS, (i % BATCH_ROWS) // size)
