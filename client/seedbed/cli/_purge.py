"""``seedbed run purge RUN``: delete what a finished run inserted into its SQL targets.

With ``-o json|yaml`` it prints the contract's ``PurgeRunResponse`` (``targets``, ``skipped``,
``skipped_connections``, ``failures``, ``dry_run``), every field present, with ``run_id`` added.
"""

from __future__ import annotations

from typing import Any

from rich.console import Group, RenderableType
from rich.text import Text

from seedbed.api.v1 import run_pb2
from seedbed.cli._output import Column, printable, table, to_data

_TARGETS = (
    Column("CONNECTION", lambda t: t.connection_id, max_width=24),
    Column("TABLE", lambda t: t.table),
    Column("DELETED", lambda t: t.rows_deleted, justify="right"),
    Column("RECORDED", lambda t: t.rows_recorded, justify="right"),
    Column("BATCHES", lambda t: t.batches, justify="right"),
)
_SKIPPED = (
    Column("CONNECTION", lambda s: s[0], max_width=24),
    Column("OPERATION", lambda s: s[1]),
    Column("TARGET", lambda s: s[2]),
    Column("CALL", lambda s: s[3], justify="right"),
    Column("BATCHES", lambda s: s[5], justify="right"),
    Column("REASON", lambda s: s[4], overflow="ellipsis", max_width=60),
)


def document(run_id: str, response: run_pb2.PurgeRunResponse) -> dict[str, Any]:
    """The JSON shape of ``run purge``: ``run_id`` and the PurgeRunResponse's fields."""
    return {"run_id": run_id, **to_data(response)}


def _line(text: str, style: str = "") -> Text:
    """A sentence, control characters masked (``emit(sentences=True)`` keeps it on one line)."""
    return Text(printable(text), style=style)


def render(run_id: str, response: run_pb2.PurgeRunResponse) -> RenderableType:
    total = sum(t.rows_deleted for t in response.targets)
    if response.dry_run:
        head = f"run {run_id}: dry run, nothing deleted; a purge would delete {total:,} row(s)"
    else:
        head = f"run {run_id}: purged {total:,} row(s)"
    parts: list[RenderableType] = [_line(head)]
    if response.targets:
        columns = list(_TARGETS)
        if response.dry_run:
            columns[2] = Column("WOULD DELETE", lambda t: t.rows_deleted, justify="right")
        parts += [Text(), table(response.targets, columns)]
        gone = sum(t.rows_recorded - t.rows_deleted for t in response.targets)
        if gone > 0:
            parts.append(
                _line(f"{gone:,} recorded row(s) were not found: deleted since the run, not an error")
            )
    elif not response.failures:
        parts.append(_line("nothing to purge: no batch of the run is left in its targets' write ledgers"))
    if response.skipped:
        # The batches of one call share their reason: one line per call.
        calls: dict[tuple[str, str, str, int, str], list[int]] = {}
        for s in response.skipped:
            calls.setdefault((s.connection_id, s.operation, s.target, s.call, s.reason), []).append(s.batch)
        rows = [(*key, f"{min(b)}-{max(b)}" if len(b) > 1 else str(b[0])) for key, b in calls.items()]
        parts += [Text(), _line(f"skipped, not purgeable ({len(response.skipped)} batch(es)):")]
        parts.append(table(rows, _SKIPPED))
    if response.skipped_connections:
        parts += [Text(), Text("connections skipped:")]
        parts += [_line(f"  {c.connection_id}: {c.reason}") for c in response.skipped_connections]
    for f in response.failures:
        where = f", table {f.table}, call {f.call} batch {f.batch}" if f.table else ""
        parts += [Text(), _line(f"FAILED on {f.connection_id}{where}:", style="bold red")]
        parts.append(_line("  " + f.message))
    return Group(*parts)
