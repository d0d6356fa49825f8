"""One bulk insert: the row set cut into shards, the shards run, progress told while they run.

Shards are `shard_rows` rows each (a multiple of the ledger's batch, so a batch never straddles two
shards and its number is the same whatever the shard size: a retry with another shard size still
finds what was written). A row set whose template has call-scoped `unique` fields is one shard: its
values are unique within one sequential stream only.

Progress: a line at most every `PROGRESS_SECONDS` while shards end (rows written of the total,
percent, rows/s, time left), then one summary with the shards' spread over nodes.

Spans a shard recorded in another process come back with its result and join the attempt's trace
(`tracing.adopt`, within the attempt's cap) as the shard ends.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from seedbed.worker import tracing
from seedbed.worker.bulk._runner import ShardRunner
from seedbed.worker.bulk._shard import BATCH_ROWS, ShardJob, ShardResult
from seedbed.worker.ledger import BatchReport

__all__ = ["BulkInsertError", "BulkOutcome", "run_insert", "shard_ranges"]

PROGRESS_SECONDS = 2.0


def shard_ranges(count: int, shard_rows: int, *, single: bool) -> list[tuple[int, int]]:
    """[first, last) of each shard of a row set of `count` rows."""
    if single or count <= shard_rows:
        return [(0, count)]
    size = max(BATCH_ROWS, math.ceil(shard_rows / BATCH_ROWS) * BATCH_ROWS)
    return [(first, min(count, first + size)) for first in range(0, count, size)]


class BulkInsertError(Exception):
    """A shard failed: which one, and why (`result.failure`)."""

    def __init__(self, result: ShardResult, job: ShardJob, committed: int) -> None:
        self.result = result
        self.job = job
        self.committed = committed
        failure = result.failure
        assert failure is not None
        where = f"shard {job.index + 1} of {job.shards} (rows {job.first:,}-{job.last - 1:,} of the row set)"
        tail = (
            f"; {committed:,} rows of other shards were written before it stopped (they are in the "
            "ledger: a retry skips them, `seedbed run purge` removes them)"
            if committed
            else ""
        )
        super().__init__(f"{where}: {failure.message}{tail}")


@dataclass
class BulkOutcome:
    rows: int = 0
    seconds: float = 0.0
    results: list[ShardResult] = field(default_factory=list)

    def summary(self, table: str, writers: int) -> str:
        nodes = sorted({r.node for r in self.results if r.node})
        rate = self.rows / self.seconds if self.seconds > 0 else 0.0
        replayed = sum(r.replayed_batches for r in self.results)
        parts = [
            f"insert {table}: {self.rows:,} rows in {self.seconds:.1f}s ({rate:,.0f} rows/s)",
            f"{len(self.results)} shard{'s' if len(self.results) != 1 else ''}, up to {writers} at once",
            f"on {', '.join(nodes)}" if nodes else "",
        ]
        if replayed:
            parts.append(f"{replayed} batch{'es' if replayed != 1 else ''} already written (skipped)")
        waited = max((r.waited_seconds for r in self.results), default=0.0)
        if waited >= 1:
            parts.append(f"longest wait for a writer slot {waited:.1f}s")
        return "; ".join(p for p in parts if p)


def run_insert(
    jobs: Sequence[ShardJob],
    parallel: int,
    *,
    runner: ShardRunner,
    stop: threading.Event,
    progress: Callable[[str], None],
    report: Callable[[BatchReport], None],
    total: int,
    table: str,
) -> BulkOutcome:
    """Run the shards; raise `BulkInsertError` for the first that failed (after the others in
    flight ended). Batches reach `report` as shards end."""
    outcome = BulkOutcome()
    started = time.monotonic()
    last_told = started
    failures: list[tuple[ShardResult, ShardJob]] = []
    by_index = {job.index: job for job in jobs}

    def on_result(result: ShardResult) -> None:
        nonlocal last_told
        outcome.results.append(result)
        tracing.adopt(result.spans, result.dropped_spans, into=by_index[result.index].trace)
        for batch in result.reports:
            report(batch)
        outcome.rows += result.rows
        if result.failure is not None:
            failures.append((result, by_index[result.index]))
            return
        now = time.monotonic()
        if now - last_told >= PROGRESS_SECONDS and outcome.rows < total:
            last_told = now
            elapsed = now - started
            rate = outcome.rows / elapsed if elapsed > 0 else 0.0
            left = (total - outcome.rows) / rate if rate > 0 else 0.0
            progress(
                f"insert {table}: {outcome.rows:,}/{total:,} rows ({100 * outcome.rows / total:.0f}%), "
                f"{rate:,.0f} rows/s, about {left:.0f}s left"
            )

    runner.run(jobs, parallel, on_result=on_result, stop=stop)
    outcome.seconds = time.monotonic() - started
    if failures:
        first = min(failures, key=lambda f: f[1].index)
        committed = sum(r.written_rows for r in outcome.results if r.index != first[1].index)
        raise BulkInsertError(first[0], first[1], committed=committed)
    return outcome
