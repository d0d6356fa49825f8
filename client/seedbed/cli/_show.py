"""``seedbed run show RUN``: a run, its attempts and steps, its reporters' deliveries, what it wrote
to each target, and its first error (today's ``run show`` and the old ``run details`` in one).

With ``-o json|yaml`` it prints one object: the contract's ``Run`` message (attempts, steps, first
error and reports are fields of it) plus ``write_batches``, the contract's ``WriteBatch`` messages
of the run in order. The per-target totals the table shows are sums over those batches.

How a run's fields read for people, wherever a command shows them (``run list``, ``run submit``'s
summary, ``scenario fire --wait``, ``scenario show``): ``state_name``, ``seconds`` / ``took`` (one
precision, a tenth of a second) and ``error_text``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp
from rich.console import Group, RenderableType
from rich.text import Text

from seedbed.api.v1 import run_pb2
from seedbed.cli._output import Column, fields, printable, table, to_data, when


@dataclass
class TargetTotals:
    connection_id: str
    operation: str
    target: str
    applied: int = 0
    replayed: int = 0
    rows: int = 0  # rows of the applied batches: what the target received


def per_target(batches: Iterable[run_pb2.WriteBatch]) -> list[TargetTotals]:
    totals: dict[tuple[str, str, str], TargetTotals] = {}
    for b in batches:
        key = (b.connection_id, b.operation, b.target)
        entry = totals.setdefault(key, TargetTotals(*key))
        if b.status == run_pb2.WRITE_BATCH_STATUS_REPLAYED:
            entry.replayed += 1
        else:
            entry.applied += 1
            entry.rows += max(b.rows, 0)  # -1: the driver did not say (DDL)
    return list(totals.values())


def document(run: run_pb2.Run, batches: list[run_pb2.WriteBatch]) -> dict[str, Any]:
    """The JSON shape of ``run show``: the Run message's fields, and ``write_batches``."""
    data: dict[str, Any] = to_data(run)
    data["write_batches"] = to_data(batches)
    return data


def state_name(value: int) -> str:
    """A run state as people read it ("SUCCESS"); empty for none (a scenario that never ran)."""
    return run_pb2.RunState.Name(value).removeprefix("RUN_STATE_") if value else ""


def seconds(delta: timedelta | None) -> str:
    """A duration to a tenth of a second ("12.3s"); empty for none."""
    return "" if delta is None else f"{delta.total_seconds():.1f}s"


def took(start: Timestamp, end: Timestamp) -> str:
    """The time from ``start`` to ``end`` (``seconds``); empty unless both are set."""
    if not (start.seconds or start.nanos) or not (end.seconds or end.nanos):
        return ""
    return seconds(end.ToDatetime() - start.ToDatetime())


def error_text(error: run_pb2.ErrorDetails, *, reason: bool = True) -> str:
    """An error in one line: its failure reason (unless ``reason`` is false: a table's column,
    where the type matters more than the room), type and message ("TIMEOUT: TimeoutError: …");
    empty when there is none."""
    if not error.type:
        return ""
    name = run_pb2.FailureReason.Name(error.reason).removeprefix("FAILURE_REASON_")
    return (f"{name}: " if reason and error.reason else "") + f"{error.type}: {error.message}"


_ATTEMPTS = (
    Column("ATTEMPT", lambda a: a.number, justify="right"),
    Column("OUTCOME", lambda a: a.outcome or a.state),
    Column("NODE", lambda a: a.node, max_width=20),
    Column("PID", lambda a: str(a.worker_pid or ""), justify="right"),
    Column("STARTED", lambda a: when(a.start_time)),
    Column("TOOK", lambda a: took(a.start_time, a.end_time), justify="right"),
    # The attempt's outcome is its failure reason already.
    Column("ERROR", lambda a: f"{a.error.type}: {a.error.message}" if a.error.type else "", max_width=60),
)
_STEPS = (
    Column("STEP", lambda s: s.number, justify="right"),
    Column("NAME", lambda s: s.name, max_width=24),
    Column("OUTCOME", lambda s: s.outcome),
    Column("ROWS", lambda s: s.rows_written, justify="right"),
    Column("TASKS", lambda s: ", ".join(s.task_ids)),
    Column("BATCHES", lambda s: ", ".join(s.batch_ids)),
)
_REPORTS = (
    Column("REPORTER", lambda r: r.reporter_id, max_width=24),
    Column("EVENT", lambda r: r.event),
    Column("STATUS", lambda r: r.status),
    Column("TRIES", lambda r: r.tries, justify="right"),
    Column("ERROR", lambda r: r.error, overflow="ellipsis", max_width=60),
)
_TARGETS = (
    Column("CONNECTION", lambda t: t.connection_id, max_width=24),
    Column("OPERATION", lambda t: t.operation),
    Column("TARGET", lambda t: t.target),
    Column("APPLIED", lambda t: t.applied, justify="right"),
    Column("REPLAYED", lambda t: t.replayed, justify="right"),
    Column("ROWS", lambda t: t.rows, justify="right"),
)


def render(run: run_pb2.Run, batches: list[run_pb2.WriteBatch]) -> RenderableType:
    """The run for a person: its fields, then a table per part (attempts, steps, reports,
    targets), then the first error's traceback."""
    rows: list[tuple[str, object]] = [
        ("run", run.id),
        ("state", state_name(run.state)),
        ("scenario", f"{run.scenario_id} (revision {run.scenario_revision})"),
        ("project", run.project_key),
        ("fire", run.fire_id),
        ("run as", run.run_as or "-"),
        ("triggered by", run.triggered_by or "-"),
        ("created", when(run.create_time)),
        ("started", when(run.start_time)),
        ("ended", when(run.end_time)),
        ("duration", took(run.start_time, run.end_time)),
        ("attempts", run.attempt_count),
    ]
    if run.HasField("next_attempt_time"):
        rows.append(("next attempt", when(run.next_attempt_time)))
    if run.params:
        rows.append(("params", ", ".join(f"{k}={v}" for k, v in sorted(run.params.items()))))
    from seedbed.cli._replay import input_rows  # here: _replay follows runs, which needs this module

    rows.extend(input_rows(run))  # what it recorded for a replay
    if run.logs_truncated:
        rows.append(("logs truncated", f"{run.dropped_log_lines:,} lines dropped over the per-run cap"))
    parts: list[RenderableType] = [fields(rows)]
    if run.attempts:
        parts += [Text(), table(run.attempts, _ATTEMPTS)]
    if run.steps:
        parts += [Text(), table(run.steps, _STEPS)]
    if run.reports:
        parts += [Text(), table(run.reports, _REPORTS)]
    parts.append(Text())
    if run.dry_run:
        from seedbed.cli._dryrun import render_report

        parts.append(render_report(run.dry_run_report))
    elif batches:
        parts.append(table(per_target(batches), _TARGETS))
    else:
        parts.append(Text("no write batches reported"))
    error = run.first_error
    if run.HasField("first_error") and error.type:
        where = f" in step {error.step!r}" if error.step else ""
        line = f" (line {error.line})" if error.line else ""
        parts += [Text(), Text(printable(f"first error{where}: {error_text(error)}{line}"), style="bold red")]
        parts += [Text("  " + printable(t)) for t in error.traceback.rstrip().splitlines()]
    return Group(*parts)
