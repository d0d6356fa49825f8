"""What the ledger knows about one batch, how a batch's content is hashed, and the errors a replay
raises when the content differs or the ledger's row was not written by Seedbed."""

from __future__ import annotations

import base64
import hashlib
import json
import marshal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

__all__ = [
    "LEDGER_TABLE",
    "AttemptStamp",
    "BatchReport",
    "ForgedLedgerEntryError",
    "LedgerEntry",
    "NondeterministicWriteError",
    "content_digest",
    "content_hash",
    "plain_json",
]

LEDGER_TABLE = "seedbed_ledger"


@dataclass(frozen=True)
class AttemptStamp:
    """Who writes: recorded with every ledger entry. `ledger_key` (from the coordinator, for this
    run only) signs the entries and checks those read back (see `LedgerSeal`)."""

    run_key: str
    run_id: str
    attempt: int
    fencing_token: int
    ledger_key: bytes = field(repr=False)


@dataclass(frozen=True)
class LedgerEntry:
    """One applied batch. `rows` is the count the call reported (what the script was told);
    `returned` the JSON text of its RETURNING rows, replayed to the script on a retry; `row_keys`
    the JSON text of the primary keys of the rows the batch created, `{"columns": [...], "values":
    [[...], ...]}`, or None when they cannot be known (see `LedgeredSql.insert`): what
    `purge_run` deletes. Entries a replay keeps leave it out (None) once their `mac` is checked:
    the HMAC of the entry as stored (None: a row without one)."""

    call: int
    batch: int
    content_hash: str
    operation: str
    target: str
    rows: int
    returned: str | None
    attempt: int
    row_keys: str | None = None
    mac: str | None = None


@dataclass(frozen=True)
class BatchReport:
    """A batch as the worker reports it to the coordinator (for `seedbed run show`)."""

    connection_id: str
    operation: str
    target: str
    call: int
    batch: int
    rows: int
    content_hash: str
    replayed: bool
    # A REST post through a connection with a declared undo: the id each response named.
    created_ids: tuple[str, ...] | None = None


class NondeterministicWriteError(Exception):
    """A replayed batch differs from the one an earlier attempt of the run wrote."""

    def __init__(
        self,
        *,
        connection_id: str,
        operation: str,
        target: str,
        call: int,
        batch: int,
        recorded: LedgerEntry,
        content_hash: str,
    ) -> None:
        self.connection_id = connection_id
        self.call = call
        self.batch = batch
        super().__init__(
            f"{_batch_label(connection_id, operation, target, call, batch)}: attempt "
            f"{recorded.attempt} wrote different content (ledger hash {recorded.content_hash[:12]}, "
            f"this attempt {content_hash[:12]}); nothing was written. The script does not produce the "
            "same data twice: generate through the SDK (seeded per run), and do not use the clock, "
            "os.urandom or the random module unseeded, or read tables the run itself changes, before "
            "writing"
        )


class ForgedLedgerEntryError(NondeterministicWriteError):
    """The ledger holds a row for a batch of this run that Seedbed did not write (its MAC does not
    verify): something else with write access to the target database (a script of another run,
    through the same connection) wrote or changed it, so it cannot say whether the batch was
    written. A kind of NondeterministicWriteError because what follows is the same: the replay
    cannot go on, the run fails whatever the script does, and another attempt meets the same row."""

    def __init__(
        self,
        *,
        connection_id: str,
        operation: str,
        target: str,
        call: int,
        batch: int,
        run_key: str,
        problem: str,
    ) -> None:
        self.connection_id = connection_id
        self.call = call
        self.batch = batch
        Exception.__init__(
            self,
            f"{_batch_label(connection_id, operation, target, call, batch)}: the row of table "
            f"{LEDGER_TABLE} for this batch (run key {run_key!r}) was not written by Seedbed: {problem}. "
            "Something else with write access to this database (a script of another run, through the "
            "same connection?) wrote or changed it, so it cannot tell whether the batch was written; "
            "nothing was written. Check the batch's rows, delete that ledger row, and run again",
        )


def _batch_label(connection_id: str, operation: str, target: str, call: int, batch: int) -> str:
    what = f"{operation} into {target}" if operation == "insert" else f"{operation} {target}"
    return f"call {call} ({what} on connection {connection_id!r}), batch {batch}"


def plain(value: Any) -> Any:
    """A JSON-able stand-in for a database value (dates as ISO text, decimals as numbers)."""
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode()
    return str(value)


def plain_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), default=plain)


def content_hash(header: Mapping[str, Any], rows: Sequence[Any]) -> str:
    """SHA-256 of what a batch writes: the operation's shape (`header`: table, options) and the rows
    in order. Key order inside rows counts: a deterministic script builds them the same way.

    Rows (JSON values, as they come from the sandbox) are serialised with marshal's format 2: C
    speed (3x faster than json.dumps, which cost as much as the COPY itself), and unlike later
    formats and pickle, free of back-references, so equal rows give equal bytes whether or not
    their strings are shared objects. Values marshal cannot take fall back to JSON.
    """
    return content_digest(header, rows)[0]


def content_digest(header: Mapping[str, Any], rows: Sequence[Any]) -> tuple[str, int]:
    """`content_hash`, and the size in bytes of the rows as hashed (what a batch's span shows as
    the bytes it writes: the rows' own size, whatever the driver sends for them)."""
    digest = hashlib.sha256(json.dumps(header, sort_keys=True, default=plain).encode())
    try:
        body = b"m" + marshal.dumps(list(rows), 2)
    except ValueError:
        body = b"j" + plain_json(rows).encode()
    digest.update(body)
    return digest.hexdigest(), len(body) - 1
