"""One shard of a bulk insert: rows `[first, last)` of a row set, generated where they are written.

A shard is self-contained — the template, the seed, the overrides and the sources its `ref` and
`pick_from` fields draw from, the connection, the attempt's ledger stamp — so it can run in any
process on any node (a Ray task, or a thread of the agent's process when there is no Ray). It opens
its own connection and writes its rows batch by batch (`BATCH_ROWS` rows, numbered by their place
in the row set: batch `b` holds rows `[b·BATCH_ROWS, (b+1)·BATCH_ROWS)` whatever the shard size),
each batch in its own transaction with its ledger row, so a shard that is run again (its worker died,
the attempt was retried) skips what is already written and writes the rest. It only reads the
ledger entries of its own batches.

A batch's content hash is the hash of its description (the row set's identity and the batch's row
range), not of its rows: the rows are a pure function of that description, and hashing the text
of millions of rows would cost as much as generating them. A replay whose description differs
(the script asks for other rows under the same call) is caught as nondeterministic, as before.

Errors never cross the task boundary as exceptions (a third-party exception may not survive being
pickled back): the result carries a `ShardFailure` with what the agent needs to say which shard,
which batch and which constraint.

Traced (`ShardJob.trace`, the insert call's span), a shard is a span "shard N" with its batches'
spans under it, recorded where the shard runs and returned serialized in the result (see
`seedbed.worker.tracing.continued`); the agent adds them to the attempt's trace. The failure's
message and the spans are scrubbed of the connection's secrets as the shard resolved them (a
target may echo them): an `env` or `file` secret is read on the shard's node, which may not be the
attempt's.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from seedbed.api.v1 import attempt_pb2
from seedbed.worker import ledger, sinks, templates, tracing
from seedbed.worker.sinks._copytext import NulInValue, copy_text

if TYPE_CHECKING:
    from seedbed.worker.agent._scrub import Scrubber

__all__ = ["ShardFailure", "ShardJob", "ShardResult", "batch_digest", "write_shard"]

BATCH_ROWS = ledger.BATCH_ROWS


@dataclass(frozen=True)
class FrozenRefs:
    """The `ref` sources a row set saw when it was made: `(template, field)` → source."""

    sources: Mapping[tuple[str, str], Any]

    def source(self, template: str, field: str) -> Any:
        return self.sources.get((template, field))


@dataclass(frozen=True)
class GateSpec:
    """Bound the writers on one target across every run (see `_gate`)."""

    key: str
    limit: int


@dataclass(frozen=True)
class ShardJob:
    index: int  # from 0, in the row set's order
    shards: int
    first: int  # rows [first, last) of the row set
    last: int
    call: int
    table: str
    connection: bytes  # a serialized ConnectionSnapshot
    stamp: ledger.AttemptStamp
    template_json: str  # canonical JSON of the template
    seed: int
    set_start: int  # the row set's own start (rows(n, start=s))
    overrides: Mapping[str, Any]
    refs: FrozenRefs
    identity: str  # the row set's identity (see `batch_digest`)
    unique_rows: bool  # call-scoped `unique` fields: rows come from one sequential stream
    field_bytes: int
    row_bytes: int
    statement_timeout_seconds: int | None
    gate: GateSpec | None = None
    retry_budget_seconds: float = 60.0
    # The columns that identify a row (for a purge) when the table has no primary key yet.
    key_columns: tuple[str, ...] | None = None
    # The insert call's span, when the attempt is traced: the shard's spans go under it.
    trace: tracing.TraceHandoff | None = None


@dataclass(frozen=True)
class ShardFailure:
    kind: str  # target | template | nondeterministic | forged | configuration | limit | internal
    message: str
    batch: int | None = None
    rows: tuple[int, int] | None = None
    row: int | None = None
    sqlstate: str | None = None


@dataclass
class ShardResult:
    index: int
    rows: int = 0  # written and already written (replayed)
    written_rows: int = 0  # written by this run of the shard
    written_batches: int = 0
    replayed_batches: int = 0
    seconds: float = 0.0
    waited_seconds: float = 0.0
    node: str = ""
    pid: int = 0
    reports: list[ledger.BatchReport] = field(default_factory=list)
    failure: ShardFailure | None = None
    # The shard's spans (serialized run_pb2.Span) when recorded in another process, and those dropped.
    spans: list[bytes] = field(default_factory=list)
    dropped_spans: int = 0


def batch_digest(identity: str, table: str, batch: int, first: int, last: int) -> str:
    """The content hash of one batch: what it writes (which rows of which row set, into which table)."""
    text = json.dumps({"set": identity, "table": table, "batch": batch, "rows": [first, last]})
    return hashlib.sha256(text.encode()).hexdigest()


def _generator(job: ShardJob) -> Any:
    spec = templates.validate_template(json.loads(job.template_json))
    limits = templates.SizeLimits.of(job.field_bytes, job.row_bytes)
    return templates.Generator(
        spec, seed=job.seed, refs=job.refs, max_rows=max(BATCH_ROWS, job.last - job.first), limits=limits
    )


def _batches(job: ShardJob) -> list[tuple[int, int, int]]:
    """(batch, first, last) of the shard, rows numbered in the row set."""
    out = []
    first = job.first
    while first < job.last:
        batch = first // BATCH_ROWS
        last = min(job.last, (batch + 1) * BATCH_ROWS)
        out.append((batch, first, last))
        first = last
    return out


def _key_text(
    job: ShardJob, generator: Any, columns: list[str], data: Mapping[str, list[Any]], first: int
) -> str | None:
    """The batch's row keys for the ledger (what a purge deletes), or None when unknown. A key
    that is a pure function of the row index (a `uuid` or `sequence` id) is recorded as the few
    numbers it is derived from, not as its values: 10,000 UUIDs cost ~370 KB of ledger per batch,
    their derivation the template and three numbers (see `ledger.decode_keys`)."""
    if not columns or any(c not in data for c in columns):
        return None
    count = len(data[columns[0]])
    start = job.set_start + first
    if all(c not in job.overrides and generator.derived(c, start, count) is not None for c in columns):
        # Only the key fields (their values depend on the template's id, the field's name and
        # spec, and the seed), and the versions that decide how they are computed.
        doc = json.loads(job.template_json)
        doc["fields"] = {c: doc["fields"][c] for c in columns}
        derived = {
            "template": json.dumps(doc, separators=(",", ":")),
            "seed": job.seed,
            "start": start,
            "count": count,
            "generation": templates.GENERATION_VERSION,
            "faker": templates.FAKER_VERSION,
        }
        return json.dumps({"columns": columns, "derived": derived}, separators=(",", ":"))
    values = [data[c] for c in columns]
    if any(v is None for column in values for v in column):
        return None
    body = [list(row) for row in zip(*values, strict=True)]
    return json.dumps({"columns": columns, "values": body}, separators=(",", ":"))


def _failure(exc: BaseException) -> ShardFailure:
    if isinstance(exc, sinks.TargetError):
        return ShardFailure(
            "target",
            str(exc),
            batch=exc.batch,
            rows=exc.rows,
            row=exc.row,
            sqlstate=exc.sqlstate,
        )
    if isinstance(exc, ledger.ForgedLedgerEntryError):  # a NondeterministicWriteError too
        return ShardFailure("forged", str(exc))
    if isinstance(exc, ledger.NondeterministicWriteError):
        return ShardFailure("nondeterministic", str(exc))
    if isinstance(exc, templates.CountLimitError | templates.SizeLimitError):
        return ShardFailure("limit", str(exc))
    if isinstance(exc, templates.TemplateError):
        return ShardFailure("template", str(exc))
    if isinstance(exc, NulInValue):
        return ShardFailure("serialization", str(exc))
    if isinstance(exc, sinks.ConfigurationError):
        return ShardFailure("configuration", str(exc))
    if isinstance(exc, sinks.SinkError):
        return ShardFailure("target", str(exc))
    return ShardFailure("internal", f"{type(exc).__name__}: {exc}")


def _in_ray() -> bool:
    """Whether this process is part of a Ray cluster: the writer gate is a Ray actor; shards on
    threads of one process (no Ray) are bounded by the insert's `writers` alone."""
    import ray

    return bool(ray.is_initialized())


def write_shard(job: ShardJob, *, stop: threading.Event | None = None) -> ShardResult:
    """Write the shard; never raises for a failure of the data or the target (see `failure`)."""
    from seedbed.worker.agent._scrub import Scrubber

    result = ShardResult(job.index, node=socket.gethostname(), pid=os.getpid())
    started = time.monotonic()
    # The connection's secrets in every form, once `_write` has resolved them (here, where the
    # shard runs): a target may echo them into an error, which the failure and the spans carry.
    scrubber = Scrubber()
    with tracing.continued(job.trace, scrub=scrubber.text) as recorded:
        with tracing.span(
            f"shard {job.index + 1}", parent=recorded.context, attributes=_attributes(job)
        ) as span:
            try:
                if job.gate is not None and _in_ray():
                    from seedbed.worker.bulk._gate import writer_slot

                    waited_from = time.monotonic()
                    with writer_slot(
                        job.gate.key,
                        job.gate.limit,
                        holder=f"{job.stamp.run_id}/{job.call}/{job.index}/{os.getpid()}",
                        cancelled=(stop.is_set if stop is not None else lambda: False),
                    ):
                        result.waited_seconds = time.monotonic() - waited_from
                        _write(job, result, stop, scrubber)
                else:
                    _write(job, result, stop, scrubber)
            except Exception as exc:  # reported, not raised: see the module's docstring
                failure = _failure(exc)
                result.failure = replace(failure, message=scrubber.text(failure.message))
                tracing.fail(span, error_type=result.failure.kind, message=result.failure.message)
            span.set_attributes(
                {
                    "seedbed.rows": result.rows,
                    "seedbed.batches.written": result.written_batches,
                    "seedbed.batches.skipped": result.replayed_batches,
                    "seedbed.writer.wait_seconds": result.waited_seconds,
                }
            )
        result.spans, result.dropped_spans = recorded.take()
    result.seconds = time.monotonic() - started
    return result


def _attributes(job: ShardJob) -> dict[str, Any]:
    """What a shard's span says of it: which rows, which table, where it runs."""
    return {
        "seedbed.shard": job.index + 1,
        "seedbed.shards": job.shards,
        "seedbed.rows.first": job.first,
        "seedbed.rows.last": job.last,
        "db.collection.name": job.table,
        "seedbed.writer": _writer(),
        "host.name": socket.gethostname(),
        "process.pid": os.getpid(),
        **_ray_node(),
    }


def _ray_node() -> dict[str, str]:
    """The Ray node the shard runs on (a cluster's shards spread over its worker nodes)."""
    if _in_ray():
        import ray

        return {"seedbed.ray.node_id": ray.get_runtime_context().get_node_id()}
    return {}


def _writer() -> str:
    """Who writes the shard: its Ray task, or the thread of the agent's process."""
    if _in_ray():
        import ray

        task = ray.get_runtime_context().get_task_id()
        if task:
            return f"ray task {task}"
    return f"thread {threading.current_thread().name}"


def _write(job: ShardJob, result: ShardResult, stop: threading.Event | None, scrubber: Scrubber) -> None:
    """Write the batches; `scrubber` learns the connection's secrets as soon as they are resolved."""
    from seedbed.worker.agent._connections import to_spec

    snapshot = attempt_pb2.ConnectionSnapshot.FromString(job.connection)
    spec, its_secrets = to_spec(snapshot, statement_timeout_seconds=job.statement_timeout_seconds)
    scrubber.extend(its_secrets)
    if spec.kind != "postgresql":
        raise sinks.ConfigurationError(
            f"bulk COPY needs a postgresql connection, not {spec.kind}", connection_id=spec.id
        )
    sink = sinks.PostgresSink(spec)
    batches = _batches(job)
    scope = (job.call, range(batches[0][0], batches[-1][0] + 1)) if batches else None
    writer = ledger.LedgeredSql(
        sink,
        job.stamp,
        report=result.reports.append,
        retry_budget=timedelta(seconds=job.retry_budget_seconds),
        scope=scope,
    )
    try:
        generator = _generator(job)
        keys = list(job.key_columns) if job.key_columns else writer.primary_key(job.table)
        rows_of = _row_source(job, generator)
        for batch, first, last in batches:
            if stop is not None and stop.is_set():
                raise sinks.TargetError(
                    connection_id=spec.id,
                    operation="insert",
                    table=job.table,
                    db_message="the attempt ended (aborted, or past its deadline): the shard stopped",
                )
            digest = batch_digest(job.identity, job.table, batch, first, last)

            def make(first: int = first, last: int = last) -> tuple[list[str], bytes, int, int, str | None]:
                data = rows_of(first, last)
                payload, count = copy_text(data, first_row=first)
                return list(data), payload, count, first, _key_text(job, generator, keys, data, first)

            entry, replayed = writer.copy_batch(job.call, batch, job.table, digest, make)
            result.rows += entry.rows
            if replayed:
                result.replayed_batches += 1
            else:
                result.written_batches += 1
                result.written_rows += entry.rows
    finally:
        sink.close()


def _row_source(job: ShardJob, generator: Any) -> Callable[[int, int], dict[str, list[Any]]]:
    """Columns of rows [first, last) of the row set, batch after batch."""
    if not job.unique_rows:
        return lambda first, last: generator.columns(
            last - first, overrides=dict(job.overrides), start=job.set_start + first
        )
    # Unique values are unique within one generate call: one stream over the whole set, read in
    # order (a shard of such a set is the whole set).
    if job.first != 0:
        raise ValueError("a row set with call-scoped unique fields is written as one shard from row 0")
    stream = generator.stream(
        job.last, batch_size=min(BATCH_ROWS, job.last), overrides=dict(job.overrides), start=job.set_start
    )
    position = job.first

    def take(first: int, last: int) -> dict[str, list[Any]]:
        nonlocal position
        rows: list[dict[str, Any]] = []
        while position < first:  # batches already written (replayed) are generated and dropped
            position += len(next(stream))
        while position < last:
            chunk = next(stream)
            position += len(chunk)
            rows.extend(chunk)
        names = list(rows[0]) if rows else []
        return {name: [row[name] for row in rows] for name in names}

    return take
