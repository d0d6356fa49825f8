"""How a dry run's report reads for people (``run submit --dry-run``, ``run show``): one row per
target (rows that would be written, rows checked in full, problems), then the problems listed (the
first 20 per target: row, field, kind, value, message), then what was not checked. With ``-o
json|yaml`` the report is the Run message's ``dry_run_report`` field."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.text import Text

from seedbed.api.v1 import dryrun_pb2
from seedbed.cli._output import Column, printable, table

__all__ = ["kind_name", "render_report"]


def kind_name(value: int) -> str:
    return dryrun_pb2.DryRunProblemKind.Name(value).removeprefix("DRY_RUN_PROBLEM_KIND_")


_TARGETS = [
    Column("connection", lambda t: t.connection_id),
    Column("operation", lambda t: t.operation),
    Column("target", lambda t: t.target, overflow="ellipsis"),
    Column("rows", lambda t: f"{t.rows:,}", justify="right"),
    Column("checked", lambda t: f"{t.rows_checked:,}" if t.operation == "insert" else "-", justify="right"),
    Column("problems", lambda t: f"{t.problem_count:,}", justify="right"),
]
_PROBLEMS = [
    Column("target", lambda p: p[0]),
    Column("row", lambda p: str(p[1].row) if p[1].row >= 0 else "-", justify="right"),
    Column("field", lambda p: p[1].field or "-"),
    Column("problem", lambda p: kind_name(p[1].kind)),
    Column("value", lambda p: p[1].value, max_width=30),
    Column("message", lambda p: p[1].message, overflow="ellipsis"),
]


def render_report(report: dryrun_pb2.DryRunReport) -> RenderableType:
    if not report.targets:
        return Text("dry run: the script wrote to no target")
    parts: list[RenderableType] = [table(report.targets, _TARGETS, title="dry run: nothing was written")]
    problems = [(f"{t.connection_id} {t.target}", p) for t in report.targets for p in t.problems]
    if problems:
        parts += [Text(), table(problems, _PROBLEMS)]
        listed = len(problems)
        if report.problem_count > listed:
            parts.append(
                Text(f"… and {report.problem_count - listed:,} more problems (20 listed per target)")
            )
    notes = [(t, note) for t in report.targets for note in t.unchecked]
    if notes:
        parts.append(Text())
        parts += [
            Text(printable(f"not checked: {t.connection_id} {t.target[:60]}: {note}")) for t, note in notes
        ]
    verdict = f"{report.problem_count:,} problem(s) found" if report.problem_count else "no problem found"
    parts += [Text(), Text(verdict, style="bold red" if report.problem_count else "bold green")]
    return Group(*parts)
