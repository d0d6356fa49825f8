"""Bulk seeding: inserting a generated row set into PostgreSQL in shards written in parallel.

    jobs = [ShardJob(...) for first, last in shard_ranges(count, shard_rows, single=False)]
    outcome = run_insert(jobs, writers, runner=default_runner(), stop=stop,
                         progress=say, report=note_batch, total=count, table="orders")

The rows of a row set never exist in one place: each shard (rows `[first, last)` of the set) is
generated where it is written — a Ray task with its own connection, `COPY` in batches of
`ledger.BATCH_ROWS` rows, a ledger row per batch in the batch's transaction — so exactly-once and
purge hold per batch, whichever shard or attempt writes it. A connection's `max_writers` bounds the
shard writers on its target across all runs (`_gate`), `writers` those of one insert.

Errors: a shard's failure comes back as data (`ShardFailure`), and `run_insert` raises
`BulkInsertError` naming the shard, its rows, the batch and the database's message (the constraint).

Modules: `_shard` (one shard, self-contained), `_runner` (Ray tasks or threads), `_insert` (shard
ranges, progress, the outcome), `_gate` (the writer slots).
"""

from seedbed.worker.bulk._insert import BulkInsertError, BulkOutcome, run_insert, shard_ranges
from seedbed.worker.bulk._runner import RayShardRunner, ShardRunner, ThreadShardRunner, default_runner
from seedbed.worker.bulk._shard import (
    BATCH_ROWS,
    FrozenRefs,
    GateSpec,
    ShardFailure,
    ShardJob,
    ShardResult,
    batch_digest,
    write_shard,
)

__all__ = [
    "BATCH_ROWS",
    "BulkInsertError",
    "BulkOutcome",
    "FrozenRefs",
    "GateSpec",
    "RayShardRunner",
    "ShardFailure",
    "ShardJob",
    "ShardResult",
    "ShardRunner",
    "ThreadShardRunner",
    "batch_digest",
    "default_runner",
    "run_insert",
    "shard_ranges",
    "write_shard",
]
