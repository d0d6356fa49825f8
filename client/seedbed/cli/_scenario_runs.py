"""``seedbed scenario fire|runs``: fires, waits and run history (the run verbs are in ``_runs``).

``scenario fire ID… --wait`` follows every run on one stream and shows a table of the runs and their
states: redrawn in place on a terminal, one line per change otherwise (logs, CI). Its exit code is
the worst outcome (the CLI's codes: 0 SUCCESS, 4 WARNING, 3 ABORTED, 1 FAILED); a cancelled fire
counts as a failure.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TextIO

from seedbed.cli._scenarios import connect, dump, usage, when
from seedbed.client import Client, ScenarioRun, TriggerFire

# From the least to the most severe; a cancelled fire ranks with FAILED.
_SEVERITY = ("SUCCESS", "WARNING", "ABORTED", "FAILED")


def exit_code(outcomes: Sequence[str | None]) -> int:
    """The CLI exit code of the worst outcome; None (a cancelled fire) counts as FAILED."""
    from seedbed.cli._main import EXIT_CODES, _state

    codes = {_state(state): code for state, code in EXIT_CODES.items()}
    worst = max((_SEVERITY.index(o) if o in _SEVERITY else len(_SEVERITY) - 1 for o in outcomes), default=0)
    return codes[_SEVERITY[worst]]


class LiveTable:
    """The fires and runs of a ``fire --wait``: one row each, redrawn in place on a terminal."""

    def __init__(self, fires: Sequence[TriggerFire], out: TextIO, redraw: bool) -> None:
        self._rows = [[f.scenario_id, f.id, f.run_id or "-", f.state, ""] for f in fires]
        self._out = out
        self._redraw = redraw
        self._drawn = 0

    def _format(self, row: list[str]) -> str:
        return f"{row[0]:<28} {row[1]:<26} {row[2]:<26} {row[3]:<12} {row[4]}".rstrip()

    def draw(self) -> None:
        if not self._redraw:
            for row in self._rows:
                self._out.write(self._format(row) + "\n")
            self._out.flush()
            return
        if self._drawn:
            self._out.write(f"\x1b[{self._drawn}A")  # back to the table's first line
        lines = [self._format(["SCENARIO", "FIRE", "RUN", "STATE", "DETAIL"])]
        lines += [self._format(row) for row in self._rows]
        for line in lines:
            self._out.write("\x1b[2K" + line + "\n")
        self._drawn = len(lines)
        self._out.flush()

    def update(self, index: int, item: TriggerFire | ScenarioRun) -> None:
        row = self._rows[index]
        if isinstance(item, TriggerFire):
            row[2] = item.run_id or row[2]
            if item.cancelled:
                row[3], row[4] = "CANCELLED", item.cancel_reason
            elif item.queue_reason:
                row[3], row[4] = "QUEUED", item.queue_reason
        else:
            row[2], row[3] = item.id, item.state
            error = item.first_error
            duration = item.duration
            row[4] = f"{error.type}: {error.message}"[:60] if error else ""
            if not item.running and duration is not None:
                row[4] = f"{duration.total_seconds():.1f}s {row[4]}".rstrip()
        if self._redraw:
            self.draw()
        else:
            self._out.write(self._format(row) + "\n")
            self._out.flush()


def cmd_fire(args: argparse.Namespace) -> int:
    from seedbed.cli._main import _parse_params

    params = _parse_params(args.param)
    with connect(args) as client:
        project = client.get_project(args.project)
        fires = [project.get_scenario(i).run(params) for i in args.scenario_ids]
        if not args.wait:
            return _report_fires(fires, args.json)
        table = None
        if not args.json:
            table = LiveTable(fires, sys.stdout, redraw=sys.stdout.isatty())
            table.draw()
        runs = client.wait_for_runs(fires, no_fail=True, on_update=table.update if table else None)
    outcomes = [run.outcome if run is not None else None for run in runs]
    if args.json:
        dump(
            [
                {
                    "scenario_id": fire.scenario_id,
                    "fire_id": fire.id,
                    "fire_state": fire.state,
                    "cancel_reason": fire.cancel_reason,
                    "run": run.to_dict() if run is not None else None,
                }
                for fire, run in zip(fires, runs, strict=True)
            ]
        )
    return exit_code(outcomes)


def _report_fires(fires: Sequence[TriggerFire], as_json: bool) -> int:
    if as_json:
        dump(
            [
                {"scenario_id": f.scenario_id, "fire_id": f.id, "state": f.state, "run_id": f.run_id}
                | {"cancel_reason": f.cancel_reason, "queue_reason": f.queue_reason}
                for f in fires
            ]
        )
    else:
        for f in fires:
            detail = f.run_id or f.cancel_reason or f.queue_reason
            print(f"{f.scenario_id:<28} {f.id:<26} {f.state:<12} {detail}")
    return 1 if any(f.cancelled for f in fires) else 0


def _parse_when(text: str, name: str) -> datetime:
    """ISO 8601 date or date-time; without an offset it is read as UTC."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"{name} takes an ISO 8601 date or time, e.g. 2026-11-01 or 2026-11-01T08:00+01:00"
        ) from None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _runs_of(client: Client, args: argparse.Namespace) -> list[ScenarioRun]:
    scenario = client.get_project(args.project).get_scenario(args.scenario_id)
    if args.from_date or args.to_date:
        if not args.from_date:
            raise ValueError("--to goes with --from")
        to_date = _parse_when(args.to_date, "--to") if args.to_date else None
        runs = scenario.get_runs_by_date(_parse_when(args.from_date, "--from"), to_date)
        if args.successful:
            runs = [r for r in runs if r.outcome == "SUCCESS"]
        elif args.finished:
            runs = [r for r in runs if not r.running]
        return runs[: args.limit]
    if args.successful:
        return scenario.get_last_runs(args.limit, outcomes=["SUCCESS"])
    return scenario.get_last_runs(args.limit, only_finished_runs=args.finished)


def cmd_runs(args: argparse.Namespace) -> int:
    with connect(args) as client:
        try:
            runs = _runs_of(client, args)
        except ValueError as exc:
            return usage(str(exc))
    if args.json:
        dump([run.to_dict() for run in runs])
        return 0
    print(f"{'RUN':<26} {'STATE':<8} {'STARTED':<24} {'DURATION':>9}  ERROR")
    for run in runs:
        duration = run.duration
        seconds = f"{duration.total_seconds():.1f}s" if duration is not None else "-"
        error = run.first_error
        text = f"{error.type}: {error.message}"[:60] if error else ""
        print(f"{run.id:<26} {run.state:<8} {when(run.start_time):<24} {seconds:>9}  {text}")
    return 0


def register_scenario_runs(ssub: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    c = ssub.add_parser("fire", help="fire scenarios; --wait follows their runs in a live table")
    c.add_argument("scenario_ids", nargs="+", metavar="ID")
    c.add_argument("--param", "-p", action="append", default=[], metavar="KEY=VALUE")
    c.add_argument("--wait", action="store_true", help="wait for every run; exit code: the worst outcome")
    common(c)
    c.set_defaults(func=cmd_fire)

    c = ssub.add_parser("runs", help="a scenario's runs, newest first")
    c.add_argument("scenario_id")
    c.add_argument("--limit", type=int, default=10)
    c.add_argument("--finished", action="store_true", help="only runs that ended")
    c.add_argument("--successful", action="store_true", help="only runs that ended SUCCESS")
    c.add_argument(
        "--from", dest="from_date", metavar="DATE", help="created at or after (ISO 8601; UTC if no offset)"
    )
    c.add_argument("--to", dest="to_date", metavar="DATE", help="created before (default: now)")
    common(c)
    c.set_defaults(func=cmd_runs)
