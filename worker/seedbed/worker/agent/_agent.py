"""The agent: trusted code in the worker that serves a sandboxed script's SDK calls.

One ``Agent`` per attempt. It is the sandbox driver's call handler: every call arrives as
``(op, args)`` from untrusted code, so each argument is checked for type and size before use.
It generates rows from the run's templates (seeded from the run key and the call's number, so a
retried attempt regenerates the same rows), opens connections lazily with their secrets, and
writes through the sinks. Nothing it holds ever crosses back into the sandbox but rows, counts
and error messages scrubbed of secrets.

Two rules keep a hostile script from using the worker beyond its attempt. What the agent holds for
the script (buffers, replies waiting to be paged in, generated rows kept for `ref` fields, and the
call frames the channel queues for it) counts against one memory budget per attempt
(`MemoryBudget`, `SEEDBED_AGENT_MEMORY_BYTES`). And once the attempt ends (deadline, abort, the
sandbox exited) the channel calls :meth:`Agent.end`: no call starts from then on, and a statement in
flight is cancelled in its database (see each sink's `interrupt`).

When the attempt is traced, each call and step is a span (see `_spans`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import posixpath
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from seedbed.api.v1 import attempt_pb2, run_pb2
from seedbed.worker import ledger, sinks, templates
from seedbed.worker.agent._args import handle as _handle
from seedbed.worker.agent._args import integer as _int
from seedbed.worker.agent._args import names as _names
from seedbed.worker.agent._args import text as _text
from seedbed.worker.agent._assets import AssetCollector
from seedbed.worker.agent._budget import DEFAULT_BYTES, MemoryBudget, resident_estimate
from seedbed.worker.agent._buffers import Buffers
from seedbed.worker.agent._bulkwrite import RowSetWriter, shard_options
from seedbed.worker.agent._connections import aliased_connections, to_spec
from seedbed.worker.agent._dryrun import AgentSide, DryRunWrites
from seedbed.worker.agent._errors import (
    AgentError,
    AttemptEnded,
    InvalidArgument,
    LimitExceeded,
    NondeterministicWrite,
    RestError,
    SerializationError,
    TargetError,
    TemplateError,
    UnknownConnection,
    WorkspaceError,
)
from seedbed.worker.agent._rowcalls import DEFAULT_MAX_ROWSET_ROWS, RowSetCalls
from seedbed.worker.agent._scrub import Scrubber
from seedbed.worker.agent._spans import CallSpans
from seedbed.worker.agent._templates import TemplateVersions
from seedbed.worker.agent._workspace import WorkspaceReader, text_encoding

log = logging.getLogger(__name__)

MAX_STREAMS = 16
DEFAULT_FILE_SINK_BYTES = 1 * 2**30
MAX_STEPS = 1000


def _ts(value: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp


class _Step:
    def __init__(self, name: str, number: int) -> None:
        self.name = name
        self.number = number  # position in the run, from 1
        self.start = datetime.now(UTC)
        self.end: datetime | None = None
        self.outcome = "RUNNING"
        self.generated = 0
        self.written = 0
        # The write batches done while the step was open, as ListWriteBatches names them.
        self.batch_ids: list[str] = []

    def to_proto(self) -> run_pb2.RunStep:
        msg = run_pb2.RunStep(
            name=self.name,
            number=self.number,
            start_time=_ts(self.start),
            outcome=self.outcome,
            rows_generated=self.generated,
            rows_written=self.written,
            batch_ids=self.batch_ids,
        )
        if self.end is not None:
            msg.end_time.CopyFrom(_ts(self.end))
        return msg


@dataclass
class _OpenInsert:
    """An insert whose rows arrive in pieces: one call, its batches numbered in order."""

    target: ledger.LedgeredSql
    table: str
    call: int
    next_batch: int = 0
    count: int = 0


class Agent:
    """Serves one attempt's SDK calls. Call :meth:`close` when the attempt ends."""

    def __init__(self, spec: attempt_pb2.AttemptSpec, *, artifacts_dir: Path) -> None:
        limits = spec.data_limits
        self._run_key = spec.run_key or spec.run_id
        self._max_rows = limits.max_generate_rows or 1_000_000
        self._sizes = templates.SizeLimits.of(limits.max_template_field_bytes, limits.max_template_row_bytes)
        self._max_fetch = limits.max_fetch_rows or 100_000
        self._timeout_seconds = spec.limits.timeout_seconds or None
        # The run's version of each template, and those a script pins (read when first used).
        self._template_docs: dict[str, str] = {}
        self._versions = TemplateVersions(
            spec, self._template_docs, hold=lambda size, what: self.memory.hold(size, what)
        )
        self._parsed: dict[str, Any] = {}
        # A replay's script names map to the connections it writes to (see aliased_connections).
        self._connections = aliased_connections(spec.connections, spec.replay.connection_aliases)
        self._sinks: dict[str, Any] = {}
        # Every form of every secret opened so far: nothing reaches the script unscrubbed.
        self._scrubber = Scrubber()
        # File connections write into one quota per attempt.
        self._file_quota = sinks.FileQuota(
            limits.max_file_sink_bytes or DEFAULT_FILE_SINK_BYTES, setting="SEEDBED_MAX_FILE_SINK_BYTES"
        )
        self._first_call: float | None = None  # monotonic; the sandbox is running from then on
        self._artifacts_dir = artifacts_dir
        # Everything held on the script's behalf, queued call frames included (see hold_call).
        self.memory = MemoryBudget(limits.agent_memory_bytes or DEFAULT_BYTES)
        self._buffers = Buffers(max_items=max(self._max_rows, 1_000_000), budget=self.memory)
        # Run assets (dm.assets and the file connections' files), shipped by the attempt (drain).
        self.assets = AssetCollector(
            memory=self.memory, max_asset_bytes=spec.max_asset_bytes, max_run_bytes=spec.max_run_asset_bytes
        )
        self._ended = False
        self._sinks_lock = threading.Lock()
        self._workspace = WorkspaceReader(
            spec.coordinator_address,
            limits.max_workspace_read_bytes or 64 * 2**20,
            spec.coordinator_token,
            tls=spec.coordinator_tls if spec.HasField("coordinator_tls") else None,
        )
        self._calls = 0
        self._stamp = ledger.AttemptStamp(
            run_key=self._run_key,
            # A replay signs its ledger rows for the run it replays (spec.ledger_key is derived for it).
            run_id=spec.replay.ledger_run_id or spec.run_id,
            attempt=spec.attempt,
            fencing_token=spec.fencing_token,
            ledger_key=spec.ledger_key,
        )
        self._ledgers: dict[str, ledger.LedgeredSql] = {}
        # Idempotency-Key headers take visible ASCII: a run key with anything else (or a long one)
        # is replaced by its digest, the same on every attempt.
        key = self._run_key
        if len(key) > 120 or not all("!" <= c <= "~" for c in key):
            key = "rk-" + hashlib.sha256(key.encode()).hexdigest()[:40]
        self._key_for_http = key
        # Batches written or replayed, until the attempt hands them to the coordinator.
        self._batches: deque[ledger.BatchReport] = deque()
        # Set once a replayed write differed: the run fails NONDETERMINISTIC whatever the script does.
        self.nondeterministic: str | None = None
        # Only columns some `ref` draws from are kept (and held against the budget): a million
        # customers cost their ids, not every column of every row.
        self._rows_calls = RowSetCalls(
            template=self._template,
            template_docs=self._template_docs,
            buffers=self._buffers,
            memory=self.memory,
            run_key=self._run_key,
            max_rows=self._max_rows,
            max_set_rows=limits.max_rowset_rows or DEFAULT_MAX_ROWSET_ROWS,
            sizes=self._sizes,
            count_call=self._count_call,
            generated=self._generated,
        )
        # Inserts of iterables, arriving in pieces.
        self._inserts: dict[str, _OpenInsert] = {}
        # Set when the attempt ends: bulk inserts stop their shards.
        self._stop = threading.Event()
        # Lines for the run's log (bulk progress), taken by the sandbox session (`notes`).
        self._notes: queue.SimpleQueue[tuple[str, str]] = queue.SimpleQueue()
        self._rowset_writer = RowSetWriter(
            stamp=self._stamp,
            connections=self._connections,
            template_docs=self._template_docs,
            sizes=self._sizes,
            timeout_seconds=self._timeout_seconds,
            stop=self._stop,
            say=self._note,
            report=self._note_batch,
            written=self._written,
            scrub=self.scrub,
            nondeterministic=self._mark_nondeterministic,
        )
        self.steps: list[_Step] = []
        self._spans = CallSpans()
        # A dry run swaps the write ops for checks against the live schema (see _dryrun).
        self.dry_run: DryRunWrites | None = None
        self._ops: dict[str, Callable[[Mapping[str, Any]], Any]] = {
            "buffer.put": lambda a: self._buffers.put(a.get("handle"), a.get("items")),
            "buffer.take": lambda a: self._buffers.take(a.get("handle")),
            "generate": self._rows_calls.generate,
            "rows.read": self._rows_calls.read,
            "stream.open": self._rows_calls.stream_open,
            "stream.next": self._rows_calls.stream_next,
            "stream.close": self._rows_calls.stream_close,
            "insert": self._insert,
            "insert.open": self._insert_open,
            "insert.write": self._insert_write,
            "insert.close": self._insert_close,
            "fetch": self._fetch,
            "execute": self._execute,
            "post": self._post,
            "get": self._get,
            "write": self._write,
            "workspace.read": self._workspace_read,
            "step.start": self._step_start,
            "step.end": self._step_end,
            **self.assets.ops,
        }
        if spec.dry_run:
            self.dry_run = DryRunWrites(
                AgentSide(
                    sink=self._sink,
                    rows=self._rows,
                    sample=self._rows_calls.sample,
                    next_call=self._next_call,
                    reply=lambda items, meta: self._buffers.reply(items, meta=meta or None),
                    scrub=self.scrub,
                    hold=self.memory.hold,
                    statement_timeout_seconds=self._timeout_seconds,
                    fetch=self._fetch,
                )
            )
            self._ops.update(self.dry_run.ops())

    @property
    def versions(self) -> dict[str, str]:
        return {"faker": templates.FAKER_VERSION, "generation": str(templates.GENERATION_VERSION)}

    def __call__(self, op: str, args: Mapping[str, Any]) -> Any:
        if self._ended:
            raise AttemptEnded(f"the attempt has ended: {op} was not run")
        self._first_call = self._first_call or time.monotonic()
        return self._spans.serve(op, args, self._serve)

    def _serve(self, op: str, args: Mapping[str, Any]) -> Any:
        handler = self._ops.get(op)
        if handler is None:
            raise InvalidArgument(f"unknown SDK call {op!r}: is the SDK newer than this worker?")
        try:
            return handler(args)
        except ledger.NondeterministicWriteError as exc:
            self.nondeterministic = self.nondeterministic or str(exc)
            raise NondeterministicWrite(self.scrub(str(exc))) from None
        except AgentError as exc:
            raise type(exc)(self.scrub(str(exc))) from None
        except sinks.SinkError as exc:
            raise self._translate(exc) from None
        except templates.TemplateError as exc:
            raise TemplateError(self.scrub(str(exc))) from None

    # -- templates ---------------------------------------------------------------------------------

    def _template(self, template_id: str) -> Any:
        """The template a script names (``tmpl_x``: the run's version; ``tmpl_x@N``: version N),
        recorded as used. UnknownTemplate names what exists."""
        key = self._versions.resolve(template_id)
        spec = self._parse(key)
        self._versions.record_use(key)
        return spec

    def templates_used(self) -> list[Any]:
        """Every (template, version) generated from, in the order first used (TemplateVersionRef)."""
        return self._versions.used_refs()

    def _parse(self, key: str) -> Any:
        spec = self._parsed.get(key)
        if spec is not None:
            return spec
        try:
            spec = templates.validate_template(json.loads(self._template_docs[key]))
        except (templates.TemplateValidationError, ValueError) as exc:
            raise TemplateError(f"template {key!r} is invalid: {exc}") from None
        self._parsed[key] = spec
        return spec

    # -- connections -------------------------------------------------------------------------------

    def _sink(self, args: Mapping[str, Any], kinds: tuple[str, ...], op: str) -> Any:
        connection_id = _text(args, "connection_id", limit=100)
        sink = self._sinks.get(connection_id)
        if sink is None:
            snapshot = self._connections.get(connection_id)
            if snapshot is None:
                known = ", ".join(sorted(self._connections)) or "none"
                raise UnknownConnection(
                    f"connection {connection_id!r} is not defined (known: {known}); create it with "
                    "`seedbed connection create`"
                )
            spec, scrubber = to_spec(
                snapshot, fetch_max_rows=self._max_fetch, statement_timeout_seconds=self._timeout_seconds
            )
            self._scrubber.extend(scrubber)
            sink = sinks.open_sink(spec, artifacts_dir=self._artifacts_dir, file_quota=self._file_quota)
            with self._sinks_lock:
                if self._ended:
                    # The attempt ended while this call was on its way: open nothing more.
                    raise AttemptEnded(f"the attempt has ended: connection {connection_id!r} was not opened")
                self._sinks[connection_id] = sink
        if sink.spec.kind not in kinds:
            raise InvalidArgument(
                f"{op} does not apply to connection {connection_id!r} of kind {sink.spec.kind}"
            )
        return sink

    def _ledger(self, args: Mapping[str, Any], op: str) -> ledger.LedgeredSql:
        sink = self._sink(args, ("postgresql", "sql"), op)
        found = self._ledgers.get(sink.connection_id)
        if found is None:
            budget = timedelta(seconds=min(60, self._timeout_seconds or 60))
            found = ledger.LedgeredSql(sink, self._stamp, report=self._note_batch, retry_budget=budget)
            self._ledgers[sink.connection_id] = found
        return found

    def _note_batch(self, report: ledger.BatchReport) -> None:
        """Keep a batch for the coordinator, and its id in every step open while it was written."""
        self._batches.append(report)
        self._spans.batch(report.replayed)
        batch_id = f"{report.connection_id}/{report.call}/{report.batch}"
        for step in self.steps:
            if step.end is None:
                step.batch_ids.append(batch_id)

    def _count_call(self) -> int:
        """The next SDK call's number (seeds and ledger keys follow it)."""
        self._calls += 1
        return self._calls

    def _generated(self, count: int) -> None:
        if self.steps and self.steps[-1].end is None:
            self.steps[-1].generated += count

    def _mark_nondeterministic(self, message: str) -> None:
        self.nondeterministic = self.nondeterministic or message

    def _next_call(self) -> int:
        if self.nondeterministic is not None:
            # Later writes would build on data this run no longer writes the same way.
            raise NondeterministicWrite(
                f"no more writes after a nondeterministic one: {self.nondeterministic}"
            )
        return self._count_call()

    def drain_batches(self) -> list[run_pb2.WriteBatch]:
        """The batches reported since the last call, for the coordinator."""
        out = []
        applied, replayed = run_pb2.WRITE_BATCH_STATUS_APPLIED, run_pb2.WRITE_BATCH_STATUS_REPLAYED
        while self._batches:
            b = self._batches.popleft()
            out.append(
                run_pb2.WriteBatch(
                    connection_id=b.connection_id,
                    operation=b.operation,
                    target=b.target,
                    call=b.call,
                    batch=b.batch,
                    rows=b.rows,
                    content_hash=b.content_hash,
                    attempt=self._stamp.attempt,
                    status=replayed if b.replayed else applied,
                    time=_ts(datetime.now(UTC)),
                    created_ids=b.created_ids or (),
                )
            )
        return out

    def _rows(self, args: Mapping[str, Any], name: str = "rows") -> list[dict[str, Any]]:
        raw = args.get(name)
        if isinstance(raw, dict) and "$rows" in raw:
            return self._rows_calls.materialise(self._rows_calls.rowset(raw["$rows"]))[0]
        rows = self._buffers.resolve(raw)
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise InvalidArgument(f"{name} must be a list of mappings (one per row)")
        return rows

    def _written(self, count: int) -> None:
        if self.steps and self.steps[-1].end is None:
            self.steps[-1].written += count

    def _insert(self, args: Mapping[str, Any]) -> Any:
        target = self._ledger(args, "insert")
        table = _text(args, "table", limit=300)
        on_conflict = args.get("on_conflict")
        if on_conflict not in (None, "ignore", "update"):
            raise InvalidArgument(f"on_conflict must be None, 'ignore' or 'update', not {on_conflict!r}")
        key, returning = _names(args, "key"), _names(args, "returning")
        raw = args.get("rows")
        if isinstance(raw, dict) and "$rows" in raw and on_conflict is None and returning is None:
            rowset = self._rows_calls.rowset(raw["$rows"])
            shards = shard_options(args)
            call = self._next_call()
            return {"count": self._rowset_writer.insert(call, target, table, rowset, shards, key=key)}
        rows = self._rows(args)
        call = self._next_call()
        if not rows:
            return {"count": 0} if returning is None else self._buffers.reply([], meta={"count": 0})
        started = time.monotonic()
        result = target.insert(call, table, rows, on_conflict=on_conflict, key=key, returning=returning)
        self._written(result.count)
        log.info(
            "insert %s.%s: %d rows in %.3fs",
            target.connection_id,
            table,
            result.count,
            time.monotonic() - started,
        )
        if result.rows_returned is not None:
            return self._buffers.reply(result.rows_returned, meta={"count": result.count})
        return {"count": result.count}

    def _insert_open(self, args: Mapping[str, Any]) -> Any:
        """An insert of rows that arrive in pieces (a generator in the script): one call, its
        batches numbered in order, so a replay skips the pieces already written."""
        target = self._ledger(args, "insert")
        table = _text(args, "table", limit=300)
        if len(self._inserts) >= MAX_STREAMS:
            raise LimitExceeded(f"more than {MAX_STREAMS} open inserts: close one first")
        call = self._next_call()
        handle = f"insert_{call}"
        self._inserts[handle] = _OpenInsert(target, table, call)
        return {"handle": handle}

    def _insert_write(self, args: Mapping[str, Any]) -> Any:
        _, entry = _handle(args, self._inserts, "insert")
        if self.nondeterministic is not None:
            raise NondeterministicWrite(
                f"no more writes after a nondeterministic one: {self.nondeterministic}"
            )
        rows = self._rows(args)
        for first in range(0, len(rows), ledger.BATCH_ROWS):
            piece = rows[first : first + ledger.BATCH_ROWS]
            result = entry.target.insert_batch(entry.call, entry.next_batch, entry.table, piece)
            entry.next_batch += 1
            entry.count += result.count
            self._written(result.count)
        return {"count": entry.count}

    def _insert_close(self, args: Mapping[str, Any]) -> Any:
        handle, entry = _handle(args, self._inserts, "insert")
        del self._inserts[handle]
        return {"count": entry.count}

    def _note(self, text: str, level: str = "info") -> None:
        self._notes.put((text, level))

    def notes(self) -> list[tuple[str, str]]:
        """Lines for the run's log since the last look (bulk progress), for the sandbox session."""
        out = []
        while True:
            try:
                out.append(self._notes.get_nowait())
            except queue.Empty:
                return out

    def _fetch(self, args: Mapping[str, Any]) -> Any:
        sink = self._sink(args, ("postgresql", "sql"), "fetch")
        query = _text(args, "query", limit=100_000)
        limit = _int(args, "limit", required=False)
        if limit is not None and not 1 <= limit <= self._max_fetch:
            raise LimitExceeded(f"limit {limit} is outside 1..{self._max_fetch} (SEEDBED_MAX_FETCH_ROWS)")
        rows = sink.fetch(query, args.get("params"), limit=limit)
        # Databases hand back dates, decimals, UUIDs, bytes: the channel carries JSON.
        return self._buffers.reply(json.loads(ledger.plain_json(rows)))

    def _execute(self, args: Mapping[str, Any]) -> Any:
        target = self._ledger(args, "execute")
        sql = _text(args, "sql", limit=100_000)
        return target.execute(self._next_call(), sql, args.get("params"))

    def _post(self, args: Mapping[str, Any]) -> Any:
        sink = self._sink(args, ("rest",), "post")
        path = _text(args, "path", limit=2000)
        mode = args.get("mode", "single")
        if mode not in ("single", "batch"):
            raise InvalidArgument(f"mode must be 'single' or 'batch', not {mode!r}")
        rows = self._rows(args)
        call = self._next_call()
        # The same on every retry of this attempt and of a replayed attempt: the target can dedupe.
        prefix = f"{self._key_for_http}:{call}"
        try:
            result = sink.post(
                path, rows, mode=mode, idempotency_key_prefix=prefix, deadline=self._deadline()
            )
        except sinks.RestError as exc:
            # The requests before the failing one created their rows: reported, a purge undoes them.
            if exc.partial is not None and exc.partial.count:
                self._posted(sink, path, call, rows, mode, exc.partial)
            raise
        self._posted(sink, path, call, rows, mode, result)
        # A target may echo the credentials it got: the script sees them masked.
        return self._buffers.reply(self._scrubber.value(list(result.responses)))

    def _posted(
        self, sink: Any, path: str, call: int, rows: list[dict[str, Any]], mode: str, result: sinks.PostResult
    ) -> None:
        """Count and report the rows a post created (the first `result.count` of `rows`), with the
        ids a purge deletes."""
        self._written(result.count)
        created = sink.created_ids(result.responses, rows=result.count, mode=mode)
        self._report(sink, "post", path, call, rows[: result.count], result.count, created)

    def _get(self, args: Mapping[str, Any]) -> Any:
        sink = self._sink(args, ("rest",), "get")
        answer = sink.get(_text(args, "path", limit=2000), args.get("params"), deadline=self._deadline())
        return self._scrubber.value(answer)

    def _deadline(self) -> float | None:
        """When the attempt's time is up (monotonic), counted from its first call, or None."""
        if self._timeout_seconds is None or self._first_call is None:
            return None
        return self._first_call + self._timeout_seconds

    def _write(self, args: Mapping[str, Any]) -> Any:
        sink = self._sink(args, ("file",), "write")
        fmt = args.get("format", "csv")
        if fmt not in ("csv", "jsonl"):
            raise InvalidArgument(f"format must be 'csv' or 'jsonl', not {fmt!r}")
        name = _text(args, "name", limit=200)
        rows = self._rows(args)
        call = self._next_call()
        # A whole file under a temporary name, fsynced, then renamed: a replay writes it again whole.
        result = sink.write(name, rows, fmt=fmt)
        self._written(result.count)
        unkept = self.assets.file_written(sink.connection_id, name, result.path, result.size_bytes)
        if unkept is not None:
            self._note(unkept, "warning")
        self._report(sink, "write", name, call, rows, result.count)
        return {"count": result.count, "size_bytes": result.size_bytes}

    def _report(
        self,
        sink: Any,
        operation: str,
        target: str,
        call: int,
        rows: Any,
        count: int,
        created_ids: list[str] | None = None,
    ) -> None:
        digest = ledger.content_hash({"op": operation, "target": target}, rows)
        created = tuple(created_ids) if created_ids is not None else None
        self._note_batch(
            ledger.BatchReport(
                sink.connection_id,
                operation,
                target,
                call,
                0,
                count,
                digest,
                replayed=False,
                created_ids=created,
            )
        )

    # -- workspace and steps -------------------------------------------------------------------------

    def _workspace_read(self, args: Mapping[str, Any]) -> Any:
        path = _text(args, "path", limit=512)
        if (
            path.startswith("/")
            or "\\" in path
            or ".." in path.split("/")
            or posixpath.normpath(path) != path
        ):
            raise InvalidArgument(
                f"workspace path {path!r} must be relative, '/'-separated, without '..' "
                "(e.g. 'data/cities.csv')"
            )
        encoding = text_encoding(args.get("encoding") or "utf-8")
        data = self._workspace.read(path)
        try:
            text = data.decode(encoding)
        except (LookupError, UnicodeDecodeError) as exc:
            raise WorkspaceError(f"workspace file {path!r} is not {encoding} text: {exc}") from None
        # Large files cross in pieces: the SDK joins them.
        piece = 1 * 2**20
        return self._buffers.reply([text[i : i + piece] for i in range(0, len(text), piece)] or [""])

    def _step_start(self, args: Mapping[str, Any]) -> Any:
        if len(self.steps) >= MAX_STEPS:
            raise LimitExceeded(f"more than {MAX_STEPS} steps in one run")
        step = _Step(_text(args, "name", limit=200), len(self.steps) + 1)
        self.steps.append(step)
        self._spans.step_started(step.name, step.number)
        return None

    def _step_end(self, args: Mapping[str, Any]) -> Any:
        name = _text(args, "name", limit=200)
        for step in reversed(self.steps):
            if step.name == name and step.end is None:
                step.end = datetime.now(UTC)
                step.outcome = "FAILED" if args.get("outcome") == "FAILED" else "SUCCESS"
                self._spans.step_ended(
                    step.number,
                    failed=step.outcome == "FAILED",
                    generated=step.generated,
                    written=step.written,
                )
                return None
        raise InvalidArgument(f"no open step named {name!r}")

    # -- errors and the end ----------------------------------------------------------------------------

    def scrub(self, text: str) -> str:
        """`text` with every form of every secret of the connections opened so far masked (also
        what the attempt's spans say: see `seedbed.worker.tracing`)."""
        return self._scrubber.text(text)

    def _translate(self, exc: Exception) -> AgentError:
        message = self.scrub(str(exc))
        if isinstance(exc, sinks.SerializationError):
            return SerializationError(message)
        if isinstance(exc, sinks.RestError):
            return RestError(message)
        if isinstance(exc, sinks.TargetError):
            return TargetError(message)
        if isinstance(exc, sinks.ResultTooLargeError | sinks.QuotaExceededError):
            return LimitExceeded(message)
        if isinstance(exc, sinks.ConfigurationError):
            return UnknownConnection(message)
        return InvalidArgument(message)

    def step_records(self) -> list[run_pb2.RunStep]:
        return [s.to_proto() for s in self.steps]

    def failing_step(self) -> str:
        """The step open when the script failed: the innermost one still open (the script was
        stopped inside it), else the first that ended FAILED (an exception leaves the innermost
        step first); empty outside any step."""
        opened = [s for s in self.steps if s.end is None]
        if opened:
            return opened[-1].name
        failed = [s for s in self.steps if s.outcome == "FAILED" and s.end is not None]
        return min(failed, key=lambda s: s.end or s.start).name if failed else ""

    # -- the channel's hooks (see seedbed.worker._sandbox_session.AttemptHooks) ----------------------

    def hold_call(self, frame: bytes) -> int:
        """A call frame waits for its turn: hold what it will cost once parsed, or refuse it."""
        size = resident_estimate(frame)
        self.memory.hold(size, "queued call")
        return size

    def release_call(self, size: int) -> None:
        self.memory.release(size)

    def end(self) -> None:
        """The attempt ended: refuse every call from now on and stop the one in flight. Called on
        the channel's thread, so it only signals: each sink cancels its statement in the background
        (a PostgreSQL cancel request, a MySQL KILL QUERY, SQLite's progress handler)."""
        with self._sinks_lock:
            if self._ended:
                return
            self._ended = True
            self._stop.set()  # bulk inserts cancel their shards
            sinks_ = list(self._sinks.values())
        for sink in sinks_:
            # A call may still be in flight on the SDK thread: nothing of it may commit now.
            sink.interrupt()

    def settle(self, timeout: float = 30.0) -> None:
        """End the attempt and wait (at most `timeout`) until no bulk insert is writing: its shards
        are stopped and gone, so nothing lands once the attempt has reported its end."""
        self.end()
        if not self._rowset_writer.wait_idle(timeout):
            log.warning("a bulk insert was still stopping its shards %.0fs after the attempt ended", timeout)
        self._spans.end_steps()

    def open_span_ids(self) -> tuple[str, str]:
        """The innermost open step's span (see seedbed.worker._sandbox_session.SpanHooks)."""
        return self._spans.open_ids()

    def close(self, timeout: float = 5.0) -> None:
        """End the attempt (if the channel has not) and close the connections. A call still
        running (the attempt ended under it: deadline, abort) may hold one; closing happens on a
        thread of its own so the attempt need not wait for it longer than ``timeout``."""
        self.end()
        with self._sinks_lock:
            sinks_, self._sinks = list(self._sinks.values()), {}

        def close_all() -> None:
            for sink in sinks_:
                try:
                    sink.close()
                except Exception:  # closing must not hide the attempt's own outcome
                    log.exception("closing connection %s failed", sink.connection_id)
            self._workspace.close()
            self._versions.close()
            if self.dry_run is not None:
                self.dry_run.close()

        closer = threading.Thread(target=close_all, name="seedbed-agent-close", daemon=True)
        closer.start()
        closer.join(timeout)
        if closer.is_alive():
            log.warning("a connection is still busy with a call the attempt outlived; leaving it to close")
