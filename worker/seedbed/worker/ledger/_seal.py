"""The MAC on every ledger row, which tells the rows Seedbed wrote from rows written by anything else
with access to the target database.

The ledger lives in the target database, where a script with a SQL connection may run any
statement: it can insert, change or copy rows of `seedbed_ledger`, including another run's. A
replay trusts the ledger to skip batches already written, and a purge trusts it to say which rows
to delete, so a row Seedbed did not write must be recognised. Each row therefore carries an
HMAC-SHA256 over everything a replay or a purge acts on:

    run key, run id, call, batch, content hash, operation, target, row count, RETURNING rows,
    row keys, attempt

with a key the coordinator derives from its secret key for that run alone and hands to the worker
in the attempt spec (never to the sandbox). Another run's worker holds another key: a row copied
from run X under run Y's key does not verify for Y, and neither does anything a script makes up.
What a MAC cannot stop: a script deleting ledger rows (a replay then writes the batch again, a
purge leaves its rows), or putting back a row a purge had removed (Seedbed wrote it, for this run).

The run id is part of the MAC and the key is per run id, not per run key: run keys come from
callers' idempotency keys, and an unrelated run may be given another run's key.

Rows without a MAC (written before rows were signed) are refused like forged ones: anything may
write a row without a MAC.

Rejected: a ledger only the worker's database user may write (the script uses that same user,
through the same connection); a checksum without a key (a script computes it as well).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field

from seedbed.worker.ledger._entries import LedgerEntry

__all__ = ["MIN_KEY_BYTES", "LedgerSeal"]

MIN_KEY_BYTES = 16
_VERSION = b"seedbed ledger row v1"
# Stored at most this long (the table's column); the MAC covers what is stored.
TARGET_CHARS = 300


def _feed(mac: hmac.HMAC, value: str | int | None) -> None:
    """Each value typed and length-prefixed: no two sequences of values give the same bytes."""
    if value is None:
        mac.update(b"n")
        return
    tag, data = (b"i", str(value).encode()) if isinstance(value, int) else (b"s", value.encode())
    mac.update(tag + len(data).to_bytes(8, "big"))
    mac.update(data)


@dataclass(frozen=True)
class LedgerSeal:
    """Signs and checks the ledger rows of one run."""

    run_key: str
    run_id: str
    key: bytes = field(repr=False)

    def mac(self, entry: LedgerEntry) -> str:
        mac = hmac.new(self.key, _VERSION, hashlib.sha256)
        for value in (
            self.run_key,
            self.run_id,
            entry.call,
            entry.batch,
            entry.content_hash,
            entry.operation,
            entry.target[:TARGET_CHARS],
            entry.rows,
            entry.returned,
            entry.row_keys,
            entry.attempt,
        ):
            _feed(mac, value)
        return mac.hexdigest()

    def problem(self, entry: LedgerEntry) -> str | None:
        """None when Seedbed wrote `entry` for this run (as read back, row keys included); else
        what is wrong with it, in words."""
        if entry.mac is None or not entry.mac.strip():
            return (
                "it carries no MAC (written by someone else, or by a Seedbed from before ledger rows "
                "were signed)"
            )
        if not hmac.compare_digest(entry.mac.strip(), self.mac(entry)):
            return "its MAC does not verify with this run's key (written or changed by someone else)"
        return None
