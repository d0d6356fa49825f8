"""The write ledger: every batch a run writes to a SQL target is applied exactly once, however
often the run is retried.

A retried attempt re-executes the script from the top. Each write is keyed by (run key, the SDK
call's number, the batch's number in the call) and hashed by content. The ledger lives in the
target database, table `seedbed_ledger`, and its row commits in the same transaction as the batch:

    stamp = AttemptStamp(run_key, run_id, attempt, fencing_token, ledger_key)   # key: from the spec
    ledger = LedgeredSql(sink, stamp, report=emit)
    ledger.insert(call, "customers", rows, returning=["id"])   # applied, or skipped on replay
    ledger.execute(call, "CREATE TABLE …")                     # same for statements

On replay a batch found with the same hash is skipped and its result (count, RETURNING rows) handed
back as the first attempt saw it; with another hash the write fails as
`NondeterministicWriteError`, naming the call, and nothing is written. After an ambiguous COMMIT or a
lost connection the ledger is read before anything is written again.

Every insert entry also records the primary keys of the rows its batch created, when they can be
known (a plain insert whose rows carry the key, or `returning` naming it), so that a finished run
can be undone: `purge_run(sink, LedgerSeal(run_key, run_id, ledger_key), dry_run=False)` deletes
them, newest batch first. An upsert records each row's prior state and its hash as
written (`_upserts`): the purge deletes the rows it created, puts back those it changed, and
leaves alone (listed) those changed since by someone else.

The ledger sits where scripts may write (any script with a SQL connection to that database), so
every row carries an HMAC under a key the coordinator derives for the run (`LedgerSeal`): a row
that does not verify fails the replay as `ForgedLedgerEntryError` and is skipped by a purge.

Bulk inserts (see `seedbed.worker.bulk`) write through `LedgeredSql.copy_batch`: one COPY per
10,000-row batch of a row set, numbered by its place in the set, its content hash the hash of the
batch's description; a shard reads only its own batches' entries (`scope`). Their row keys may be
recorded as a derivation (key fields, seed, row range, generation and Faker versions) that
`decode_keys` computes again for a purge. `insert_batch` writes one piece of an insert whose rows
arrive in pieces.

A run's REST posts and file writes are undone by `purge_rest` (through a connection's declared
undo, the ids the responses named) and `purge_files` (the files it wrote in its artifacts folder).

REST targets get the same guarantee from the target (an `Idempotency-Key` identical on every retry,
see `seedbed.worker.sinks.RestSink`), files from an atomic rename of a complete file.

Rejected: a ledger in the coordinator's store (a second system in the commit path: the batch and
its record could not commit together); one transaction per call (a crash late in a large call would
redo all of it).
"""

from seedbed.worker.ledger._entries import (
    LEDGER_TABLE,
    BatchReport,
    ForgedLedgerEntryError,
    LedgerEntry,
    NondeterministicWriteError,
    content_hash,
    plain_json,
)
from seedbed.worker.ledger._keys import decode_keys
from seedbed.worker.ledger._purge import (
    ChangedRow,
    PurgedTable,
    PurgeFailure,
    PurgeSummary,
    SkippedBatch,
    purge_run,
)
from seedbed.worker.ledger._seal import LedgerSeal
from seedbed.worker.ledger._tables import POSTGRESQL_LEDGER_DDL, POSTGRESQL_LEDGER_MAC_DDL
from seedbed.worker.ledger._undo import purge_files, purge_rest
from seedbed.worker.ledger._writer import BATCH_ROWS, AttemptStamp, LedgeredSql

__all__ = [
    "BATCH_ROWS",
    "LEDGER_TABLE",
    "POSTGRESQL_LEDGER_DDL",
    "POSTGRESQL_LEDGER_MAC_DDL",
    "AttemptStamp",
    "BatchReport",
    "ChangedRow",
    "ForgedLedgerEntryError",
    "LedgerEntry",
    "LedgerSeal",
    "LedgeredSql",
    "NondeterministicWriteError",
    "PurgeFailure",
    "PurgeSummary",
    "PurgedTable",
    "SkippedBatch",
    "content_hash",
    "decode_keys",
    "plain_json",
    "purge_files",
    "purge_rest",
    "purge_run",
]
