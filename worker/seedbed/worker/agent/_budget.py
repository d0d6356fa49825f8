"""One attempt's memory budget: what the trusted worker holds on behalf of an untrusted script.

A script can make the worker hold memory with small calls: lists it uploads into buffers and never
uses, replies too large for one page that it never pages in, generated rows kept for later `ref`
fields, and call frames queued while a slow call runs. Each of these is cheap for the script and
adds up in the worker, so they share one budget per attempt (`SEEDBED_AGENT_MEMORY_BYTES`): a call
that would take the total past it fails with `LimitExceeded`, and what it would have held is never
kept.

Sizes are estimates, taken where they are cheap: from JSON text the worker has at hand anyway (a
frame as it arrived, a reply as it will be sent), as its length plus a per-value allowance for the
Python objects the text becomes once parsed (`resident_estimate`). Rejected: measuring objects with
`sys.getsizeof` walks (a Python-level walk of every row costs more than generating it) and sampling
(a script can hide one large item among many small ones).
"""

from __future__ import annotations

import threading

from seedbed.worker.agent._errors import LimitExceeded

__all__ = ["MemoryBudget", "resident_estimate"]

SETTING = "SEEDBED_AGENT_MEMORY_BYTES"
DEFAULT_BYTES = 512 * 2**20
# What one JSON value costs once parsed, besides its text: an object header and a slot in its
# container (a dict of one field is ~180 bytes for ~10 bytes of text; a short string ~50).
_PER_VALUE_BYTES = 64


def resident_estimate(text: str | bytes) -> int:
    """Bytes the parsed form of this JSON text may hold: its length plus an allowance per value
    (values are counted by their separators, at C speed; separators inside strings count too,
    which errs on the safe side)."""
    if isinstance(text, bytes):
        values = text.count(b",") + text.count(b"{") + text.count(b"[") + 1
    else:
        values = text.count(",") + text.count("{") + text.count("[") + 1
    return len(text) + _PER_VALUE_BYTES * values


def _mib(size: int) -> str:
    return f"{size / 2**20:,.0f} MiB" if size >= 2**20 else f"{size:,} bytes"


class MemoryBudget:
    """Bytes held for one attempt, against its limit. Thread-safe: the channel's reader holds
    queued frames while the call thread holds buffers and rows."""

    def __init__(self, limit: int = DEFAULT_BYTES) -> None:
        self.limit = limit
        self._held = 0
        self._lock = threading.Lock()

    @property
    def held(self) -> int:
        return self._held

    def hold(self, size: int, what: str) -> None:
        """Count `size` more bytes, or raise LimitExceeded (counting nothing) past the limit."""
        size = max(0, size)
        with self._lock:
            total = self._held + size
            if total > self.limit:
                raise LimitExceeded(
                    f"the attempt holds {_mib(total)} in buffers, queued calls and generated rows "
                    f"kept for refs (this call's {what}: {_mib(size)}); the limit is "
                    f"{_mib(self.limit)} ({SETTING}). Page results in as they come (buffers not "
                    "taken stay held), make fewer calls at once, or generate fewer rows per run"
                )
            self._held = total

    def release(self, size: int) -> None:
        with self._lock:
            self._held = max(0, self._held - max(0, size))
