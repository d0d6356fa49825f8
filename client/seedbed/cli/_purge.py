"""``seedbed run purge RUN``: undo what a finished run wrote; ``seedbed run purges``: the purges
made (the periodic pass's of runs past their scenario's purge_after_seconds, and those asked for).

With ``-o json|yaml`` ``run purge`` prints the contract's ``PurgeRunResponse`` (``targets``,
``skipped``, ``skipped_connections``, ``failures``, ``rows_left``, ``assets_deleted``, ``dry_run``),
every field present, with ``run_id`` added; ``run purges`` prints ``{"purges": [PurgeRecord]}``.
"""

from __future__ import annotations

from typing import Any

import click
from rich.console import Group, RenderableType
from rich.text import Text

from seedbed.api.v1 import run_pb2
from seedbed.cli._context import SeedbedCommand, state
from seedbed.cli._output import Column, printable, table, to_data, when

_TARGETS = (
    Column("CONNECTION", lambda t: t.connection_id, max_width=24),
    Column("TABLE", lambda t: t.table),
    Column("DELETED", lambda t: t.rows_deleted, justify="right"),
    Column("RESTORED", lambda t: t.rows_restored, justify="right"),
    Column("LEFT", lambda t: t.rows_changed, justify="right"),
    Column("RECORDED", lambda t: t.rows_recorded, justify="right"),
    Column("BATCHES", lambda t: t.batches, justify="right"),
)
_LEFT = (
    Column("CONNECTION", lambda r: r.connection_id, max_width=24),
    Column("TABLE", lambda r: r.table),
    Column("CALL", lambda r: r.call, justify="right"),
    Column("KEY", lambda r: r.key, max_width=30),
    Column("REASON", lambda r: r.reason, overflow="ellipsis", max_width=60),
)
_PURGES = (
    Column("RUN", lambda p: p.run_id),
    Column("SCENARIO", lambda p: p.scenario_id, max_width=24),
    Column("TRIGGER", lambda p: p.trigger),
    Column("STATE", lambda p: run_pb2.PurgeState.Name(p.state).removeprefix("PURGE_STATE_")),
    Column("ATTEMPTS", lambda p: p.attempts, justify="right"),
    Column("STARTED", lambda p: when(p.start_time)),
    Column("SUMMARY", lambda p: p.message, overflow="ellipsis", max_width=70),
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
    restored = sum(t.rows_restored for t in response.targets)
    if response.dry_run:
        head = f"run {run_id}: dry run, nothing deleted; a purge would delete {total:,} row(s)"
        if restored:
            head += f" and put back {restored:,} an upsert changed"
    else:
        head = f"run {run_id}: purged {total:,} row(s)"
        if restored:
            head += f", put back {restored:,} an upsert changed"
    if response.assets_deleted:
        head += f"; {response.assets_deleted} asset(s), {response.asset_bytes_deleted:,} bytes"
    parts: list[RenderableType] = [_line(head)]
    if response.targets:
        columns = list(_TARGETS)
        if response.dry_run:
            columns[2] = Column("WOULD DELETE", lambda t: t.rows_deleted, justify="right")
        # Upserts' columns only when some row was put back or left.
        if not any(t.rows_restored or t.rows_changed for t in response.targets):
            columns = [c for c in columns if c.header not in ("RESTORED", "LEFT")]
        parts += [Text(), table(response.targets, columns)]
        gone = sum(
            t.rows_recorded - t.rows_deleted - t.rows_restored - t.rows_changed for t in response.targets
        )
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
    changed = sum(t.rows_changed for t in response.targets)
    if changed:
        parts += [Text(), _line(f"left as they are, not undone ({changed:,} row(s); the first listed):")]
        parts.append(table(response.rows_left, _LEFT))
    if response.skipped_connections:
        parts += [Text(), Text("connections skipped:")]
        parts += [_line(f"  {c.connection_id}: {c.reason}") for c in response.skipped_connections]
    for f in response.failures:
        where = f", table {f.table}, call {f.call} batch {f.batch}" if f.table else ""
        parts += [Text(), _line(f"FAILED on {f.connection_id}{where}:", style="bold red")]
        parts.append(_line("  " + f.message))
    return Group(*parts)


def render_purges(purges: list[run_pb2.PurgeRecord]) -> RenderableType:
    if not purges:
        return _line(
            "no purge recorded: set a scenario's purge_after_seconds, or run `seedbed run purge RUN`"
        )
    return table(purges, _PURGES)


@click.command("purges", cls=SeedbedCommand)
@click.argument("run_id", metavar="[RUN]", required=False, default="")
@click.option("--limit", type=click.IntRange(1, 500), default=50, show_default=True, help="at most this many")
def purges(run_id: str, limit: int) -> None:
    """List the purges of runs, newest first: those of the periodic pass (runs past their
    scenario's purge_after_seconds, trigger ttl) and those asked for (trigger request). ATTEMPTS
    over 1: resumed after an interruption or a failure. With RUN, only that run's.

    -o json|yaml: {"purges": [PurgeRecord]} (each with its PurgeRunResponse in `result`).

    \b
    Examples:
      seedbed run purges
      seedbed run purges run_5f0c2a9e1b7d4c3a -o json
    """
    g = state()
    found = g.client().list_purges(run_id, limit=limit)
    g.emit({"purges": [to_data(p) for p in found]}, lambda: render_purges(found))
