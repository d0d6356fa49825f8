"""Writing a row set that never entered the sandbox: sharded COPY into PostgreSQL, ledger batches
one after the other into other SQL targets.

The agent hands a `RowSetWriter` what an attempt fixes once (its ledger stamp, the connections'
snapshots, the templates, the size limits, the event set when the attempt ends) and the callbacks
it keeps the run's record with (a log line, a write batch, rows written in the open step). See
`seedbed.worker.bulk` for the shards themselves.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from threading import Event
from typing import Any

from seedbed.api.v1 import attempt_pb2
from seedbed.worker import bulk, ledger, sinks, templates, tracing
from seedbed.worker.agent._errors import (
    AgentError,
    AttemptEnded,
    InvalidArgument,
    LimitExceeded,
    NondeterministicWrite,
    SerializationError,
    TargetError,
    TemplateError,
    UnknownConnection,
)
from seedbed.worker.agent._rowsets import RowSet, generation_error, preload

__all__ = ["RowSetWriter", "shard_options"]


def shard_options(args: Mapping[str, Any]) -> tuple[int | None, int | None]:
    """`writers` and `shard_rows` given with an insert (None: the connection's)."""
    out: list[int | None] = []
    for name, low, high in (("writers", 1, 64), ("shard_rows", 10_000, 10_000_000)):
        value = args.get(name)
        if value is None:
            out.append(None)
            continue
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidArgument(f"{name} must be an integer, got {type(value).__name__}")
        if not low <= value <= high:
            raise InvalidArgument(f"{name} must be from {low:,} to {high:,}, got {value}")
        out.append(value)
    return out[0], out[1]


@dataclass
class RowSetWriter:
    stamp: ledger.AttemptStamp
    connections: Mapping[str, attempt_pb2.ConnectionSnapshot]
    template_docs: Mapping[str, str]
    sizes: templates.SizeLimits
    timeout_seconds: int | None
    stop: Event
    say: Callable[[str], None]  # a line for the run's log
    report: Callable[[ledger.BatchReport], None]  # a batch written or replayed
    written: Callable[[int], None]  # rows written, for the open step
    scrub: Callable[[str], str]
    # A shard found a batch in the ledger that differs, or that Seedbed did not write: the run
    # cannot go on (see `Agent.nondeterministic`).
    nondeterministic: Callable[[str], None]
    runner: bulk.ShardRunner | None = field(default=None)
    # Clear while an insert runs (its shards may be writing).
    idle: Event = field(default_factory=Event)

    def __post_init__(self) -> None:
        self.idle.set()

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no insert runs (after a stop its shards are cancelled and gone)."""
        return self.idle.wait(timeout)

    def insert(
        self,
        call: int,
        target: ledger.LedgeredSql,
        table: str,
        rowset: RowSet,
        shards: tuple[int | None, int | None],
        *,
        key: list[str] | None = None,
    ) -> int:
        """Write the row set; `key` names the columns that identify a row (what a purge deletes
        by) when the table has no primary key yet (keys added after a bulk load)."""
        self.idle.clear()
        try:
            if isinstance(target.sink, sinks.PostgresSink):
                return self._sharded(call, target.sink, table, rowset, shards, key)
            if key is not None:
                raise InvalidArgument(
                    "key without on_conflict names a row set's identity columns for PostgreSQL "
                    f"connections only ({target.connection_id} is {target.sink.kind})"
                )
            return self._streamed(call, target, table, rowset)
        finally:
            self.idle.set()

    def _sharded(
        self,
        call: int,
        sink: sinks.PostgresSink,
        table: str,
        rowset: RowSet,
        shards: tuple[int | None, int | None],
        key: list[str] | None,
    ) -> int:
        """Shards written in parallel where they are generated."""
        if key is not None and (missing := [c for c in key if c not in rowset.columns]):
            raise InvalidArgument(f"key names columns the row set does not have: {', '.join(missing)}")
        settings = sink.settings
        # A script may lower the connection's parallelism, never raise it.
        writers = min(shards[0] or settings.writers, settings.writers)
        snapshot = self.connections[sink.connection_id]
        gate = None
        if settings.max_writers:
            writers = min(writers, settings.max_writers)
            digest = hashlib.sha256(snapshot.url.encode()).hexdigest()[:16]
            gate = bulk.GateSpec(f"{sink.connection_id}:{digest}", settings.max_writers)
        ranges = bulk.shard_ranges(rowset.count, shards[1] or settings.shard_rows, single=rowset.unique_rows)
        base = bulk.ShardJob(
            index=0,
            shards=len(ranges),
            first=0,
            last=0,
            call=call,
            table=table,
            connection=snapshot.SerializeToString(),
            stamp=self.stamp,
            template_json=self.template_docs[rowset.template_id],
            seed=rowset.seed,
            set_start=rowset.start,
            overrides=rowset.overrides,
            refs=rowset.refs,
            identity=rowset.identity,
            unique_rows=rowset.unique_rows,
            key_columns=tuple(key) if key else None,
            field_bytes=self.sizes.field_bytes,
            row_bytes=self.sizes.row_bytes,
            statement_timeout_seconds=self.timeout_seconds,
            gate=gate,
            # The insert call's span (current on this thread): the shards' spans go under it.
            trace=tracing.handoff(),
        )
        jobs = [replace(base, index=i, first=first, last=last) for i, (first, last) in enumerate(ranges)]
        # Columns `ref`s and `pick_from`s draw from that are not derived from the row index are made
        # here, once, within the attempt's budget: the shards get them through the object store.
        try:
            preload(rowset)
        except templates.GenerationError as exc:
            raise generation_error(exc) from None
        if self.runner is None:
            self.runner = bulk.default_runner()
        try:
            outcome = bulk.run_insert(
                jobs,
                writers,
                runner=self.runner,
                stop=self.stop,
                progress=self.say,
                report=self.report,
                total=rowset.count,
                table=table,
            )
        except bulk.BulkInsertError as exc:
            self.written(exc.committed)
            if self.stop.is_set():
                raise AttemptEnded(f"the attempt ended while inserting into {table}") from None
            raise self._error(exc) from None
        if self.stop.is_set():
            raise AttemptEnded(f"the attempt ended while inserting into {table}: its shards were stopped")
        self.written(outcome.rows)
        self.say(outcome.summary(table, writers))
        return outcome.rows

    def _error(self, exc: bulk.BulkInsertError) -> AgentError:
        failure = exc.result.failure
        assert failure is not None
        message = self.scrub(str(exc))
        if failure.kind in ("nondeterministic", "forged"):
            self.nondeterministic(message)
            return NondeterministicWrite(message)
        kinds: dict[str, type[AgentError]] = {
            "template": TemplateError,
            "limit": LimitExceeded,
            "configuration": UnknownConnection,
            "serialization": SerializationError,
        }
        return kinds.get(failure.kind, TargetError)(message)

    def _streamed(self, call: int, target: ledger.LedgeredSql, table: str, rowset: RowSet) -> int:
        """Ledger batches made and written one at a time (a SQL target without a bulk path)."""
        count = 0
        try:
            batches = rowset.generator.stream(
                rowset.count,
                batch_size=min(ledger.BATCH_ROWS, rowset.count),
                overrides=rowset.overrides,
                start=rowset.start,
            )
            for batch, rows in enumerate(batches):
                if self.stop.is_set():
                    raise AttemptEnded(f"the attempt ended while inserting into {table}")
                written = target.insert_batch(call, batch, table, rows).count
                count += written
                self.written(written)
        except templates.GenerationError as exc:
            raise generation_error(exc) from None
        return count
