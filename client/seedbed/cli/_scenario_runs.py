"""``seedbed scenario fire|runs``: fire scenarios (and wait for their runs), and a scenario's run
history. The run verbs (``run show|logs|abort…``) are the ``run`` group's.

``scenario fire ID… --wait`` follows every fire and run on one stream (``Client.wait_for_runs``):
on a terminal, a live table on stderr redrawn as they change, sized to the terminal (below 80
columns each fire's fields are stacked instead of folded into slivers, the detail cut to the width);
elsewhere one plain line per change on stderr. The final table (or -o json) goes to
stdout. A queued fire is waited for until it gets its run; a cancelled fire says why.

Exit code of a fire: 0, or 8 (refused) when a fire was cancelled. With --wait, the worst outcome:
FAILED (1) over a cancelled fire (8) over ABORTED (3) over WARNING (4) over SUCCESS (0) — a
cancelled fire is refused work, ranked below a failure (which did run and broke) and above an abort.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

import click
from rich.console import Console, ConsoleOptions, RenderResult
from rich.live import Live
from rich.text import Text

from seedbed.api.v1 import run_pb2
from seedbed.cli._context import CliError, Globals, SeedbedCommand, state
from seedbed.cli._exits import ExitCode, for_run_state, worst
from seedbed.cli._follow import OnInterrupt, ctrl_c, interruptible, on_interrupt_option
from seedbed.cli._input import iso_time
from seedbed.cli._output import Column, printable, say, table
from seedbed.cli._runs import ENV_IDEMPOTENCY_KEY, runs_table
from seedbed.cli._scenario_options import find_scenario, params_option, project_option
from seedbed.cli._show import error_text, seconds
from seedbed.client import ScenarioRun, TriggerFire

# From this many columns the fires are a table; below, each fire's fields are stacked.
WIDE = 80


@dataclass
class _Row:
    """One fire of a ``fire --wait`` and, once it has one, its run."""

    fire: TriggerFire
    run: ScenarioRun | None = None

    @property
    def scenario(self) -> str:
        return self.fire.scenario_id

    @property
    def ident(self) -> str:
        return self.run.id if self.run is not None else self.fire.run_id or self.fire.id

    @property
    def state(self) -> str:
        if self.run is not None:
            return self.run.state
        if self.fire.cancelled:
            return "CANCELLED"
        return "QUEUED" if not self.fire.run_id else "STARTING"

    @property
    def time(self) -> str:
        return seconds(self.run.duration) if self.run is not None else ""

    @property
    def detail(self) -> str:
        if self.run is not None:
            if self.run.running and self.run.raw.HasField("next_attempt_time"):
                return f"retrying (attempt {self.run.raw.attempt_count + 1} next)"
            return error_text(self.run.raw.first_error, reason=False)
        return self.fire.cancel_reason if self.fire.cancelled else self.fire.queue_reason

    @property
    def running(self) -> bool:
        return self.run is not None and self.run.running

    def line(self) -> str:
        # No running time: a line is written when something changes, not as the clock moves.
        parts = [self.scenario, self.ident, self.state, "" if self.running else self.time, self.detail]
        return printable(" ".join(p for p in parts if p))


_COLUMNS = [
    Column("SCENARIO", lambda r: r.scenario),
    Column("RUN", lambda r: r.ident),
    Column("STATE", lambda r: r.state),
    Column("TIME", lambda r: r.time, justify="right"),
    Column("DETAIL", lambda r: r.detail, overflow="ellipsis"),
]


class _Board:
    """The fires being waited for: the live table (a terminal) or one line per change (elsewhere)."""

    def __init__(self, fires: Sequence[TriggerFire], g: Globals) -> None:
        self.rows = [_Row(f) for f in fires]
        self._g = g
        self._live = g.err.is_terminal
        self._said: dict[int, str] = {}

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        # Drawn again on each refresh (running times move), at the width there is then.
        if options.max_width >= WIDE:
            yield table(self.rows, _COLUMNS)
            return
        # Narrow: a row's fields one under the other rather than five columns folded to slivers.
        for row in self.rows:
            yield Text(
                printable(" ".join(p for p in (row.scenario, row.state, row.time) if p)), overflow="fold"
            )
            yield Text(f"  {printable(row.ident)}", overflow="fold")
            if row.detail:
                yield Text(f"  {printable(row.detail)}", no_wrap=True, overflow="ellipsis")

    def running_ids(self) -> list[str]:
        """The runs Ctrl-C may abort: the ones not ended yet (a fire's run not seen yet included)."""
        starting = [r.fire.run_id for r in self.rows if r.run is None and r.fire.run_id]
        return [r.run.id for r in self.rows if r.run is not None and r.running] + starting

    def queued_fires(self) -> list[run_pb2.TriggerFire]:
        """The fires still waiting for their run: Ctrl-C says they will start one."""
        return [r.fire.raw for r in self.rows if r.run is None and not r.fire.run_id and not r.fire.cancelled]

    def update(self, index: int, item: TriggerFire | ScenarioRun) -> None:
        row = self.rows[index]
        if isinstance(item, TriggerFire):
            row.fire = item
        else:
            row.run = item
        if not self._live:
            self._echo(index)

    def _echo(self, index: int) -> None:
        """A row's line, when it says something new (the stream repeats states it already sent)."""
        line = self.rows[index].line()
        if self._said.get(index) != line:
            self._said[index] = line
            click.echo(line, err=True)

    @contextmanager
    def shown(self) -> Iterator[None]:
        if not self._live:
            for index in range(len(self.rows)):
                self._echo(index)
            yield
            return
        with Live(self, console=self._g.err, transient=True, refresh_per_second=4, redirect_stdout=False):
            yield


def exit_code(rows: Sequence[_Row]) -> ExitCode:
    """The worst outcome of the fires (see the module's note on the order)."""
    code = worst([for_run_state(r.run.raw.state) for r in rows if r.run is not None])
    if code != ExitCode.FAILED and any(r.fire.cancelled for r in rows):
        return ExitCode.REFUSED
    return code


def _keys(key: str | None, count: int) -> list[str]:
    """One idempotency key per fire: KEY itself for one fire, KEY/1, KEY/2… for several (the
    coordinator keeps one fire per key)."""
    if not key:
        return [""] * count
    return [key] if count == 1 else [f"{key}/{n}" for n in range(1, count + 1)]


_FIRE_COLUMNS = [
    Column("SCENARIO", lambda f: f.scenario_id),
    Column("FIRE", lambda f: f.id),
    Column("STATE", lambda f: "QUEUED" if f.state == "PENDING" else f.state),
    Column("RUN", lambda f: f.run_id or ""),
    Column("DETAIL", lambda f: f.cancel_reason or f.queue_reason, overflow="ellipsis"),
]


@click.command(cls=SeedbedCommand)
@click.argument("scenario_ids", nargs=-1, required=True, metavar="ID...")
@params_option("a parameter of the runs, KEY=VALUE (repeatable)")
@click.option("--wait", is_flag=True, help="wait for every run to end; the exit code is the worst outcome")
@click.option(
    "--idempotency-key",
    envvar=ENV_IDEMPOTENCY_KEY,
    metavar="KEY",
    help=f"the same KEY answers the same fire instead of starting another (a CI retry); with several "
    f"IDs the Nth fire uses KEY/N ({ENV_IDEMPOTENCY_KEY})",
)
@on_interrupt_option
@project_option
def fire(
    scenario_ids: tuple[str, ...],
    params: dict[str, str],
    wait: bool,
    idempotency_key: str | None,
    on_interrupt: OnInterrupt | None,
    project: str | None,
) -> int:
    """Fire scenarios (ID...): each fire starts a run, waits its turn (queued, by the overlap
    policy), or is cancelled (the reason is said).

    With --wait, follow every run until it ends: a live table on a terminal, one line per change
    elsewhere, then the final table. Exit code: 0 when every run ended SUCCESS; otherwise the worst
    of FAILED (1), a cancelled fire (8), ABORTED (3), WARNING (4). Without --wait: 8 when a fire was
    cancelled, else 0.

    -o json|yaml: a list of the contract's TriggerFire; with --wait, a list of {"fire": TriggerFire,
    "run": Run or null (a cancelled fire)}.

    \b
    Examples:
      seedbed scenario fire nightly -p rows=1000
      seedbed scenario fire customers orders invoices --wait
      SEEDBED_IDEMPOTENCY_KEY=$CI_PIPELINE_ID seedbed scenario fire nightly --wait -o json
    """
    g = state()
    client = g.client()
    scenarios = [find_scenario(client, scenario_id, project) for scenario_id in scenario_ids]
    fires = [
        s.run(params, idempotency_key=k)
        for s, k in zip(scenarios, _keys(idempotency_key, len(scenarios)), strict=True)
    ]
    for item in fires:
        if item.cancelled:
            reason = item.cancel_reason or "no reason given"
            say(f"fire {item.id} of {item.scenario_id} was cancelled, no run started: {reason}", err=True)
    if not wait:
        g.emit([f.raw for f in fires], lambda: table(fires, _FIRE_COLUMNS))
        return int(ExitCode.REFUSED if any(f.cancelled for f in fires) else ExitCode.SUCCESS)
    board = _Board(fires, g)
    with ctrl_c(client, board.running_ids, on_interrupt, g, board.queued_fires), board.shown():
        runs = interruptible(lambda: client.wait_for_runs(fires, no_fail=True, on_update=board.update))
    for row, run in zip(board.rows, runs, strict=True):
        row.run = run
    answer = [
        {"fire": row.fire.raw, "run": row.run.raw if row.run is not None else None} for row in board.rows
    ]
    g.emit(answer, lambda: board)
    return int(exit_code(board.rows))


def _when(ctx: click.Context, param: click.Parameter, value: str | None) -> datetime | None:
    """ISO 8601 date or date-time; without an offset it is read as UTC."""
    if value is None:
        return None
    try:
        return iso_time(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not an ISO 8601 date or time, e.g. 2026-11-01 or 2026-11-01T08:00+01:00",
            ctx,
            param,
        ) from None


@click.command(cls=SeedbedCommand)
@click.argument("scenario_id", metavar="ID")
@click.option(
    "--limit", type=click.IntRange(1, 1000), default=10, show_default=True, help="at most this many runs"
)
@click.option("--finished", is_flag=True, help="only runs that ended")
@click.option("--successful", is_flag=True, help="only runs that ended SUCCESS")
@click.option(
    "--from",
    "from_date",
    metavar="DATE",
    callback=_when,
    help="created at or after DATE (ISO 8601; UTC without an offset)",
)
@click.option(
    "--to", "to_date", metavar="DATE", callback=_when, help="created before DATE (default: now; needs --from)"
)
@project_option
def runs(
    scenario_id: str,
    limit: int,
    finished: bool,
    successful: bool,
    from_date: datetime | None,
    to_date: datetime | None,
    project: str | None,
) -> None:
    """The runs of scenario ID, newest first (the table of `seedbed run list`, less the scenario).

    -o json|yaml: a list of the contract's Run (as `seedbed run show -o json` prints one).

    \b
    Examples:
      seedbed scenario runs nightly
      seedbed scenario runs nightly --successful --limit 5
      seedbed scenario runs nightly --from 2026-11-01 --to 2026-11-08 -o json
    """
    if to_date is not None and from_date is None:
        raise CliError("--to goes with --from")
    g = state()
    item = find_scenario(g.client(), scenario_id, project)
    if from_date is not None:
        found = item.get_runs_by_date(from_date, to_date)
        if successful:
            found = [r for r in found if r.outcome == "SUCCESS"]
        elif finished:
            found = [r for r in found if not r.running]
        found = found[:limit]
    elif successful:
        found = item.get_last_runs(limit, outcomes=["SUCCESS"])
    else:
        found = item.get_last_runs(limit, only_finished_runs=finished)
    messages = [r.raw for r in found]
    g.emit(messages, lambda: runs_table(messages, width=g.out.width, scenario=False))


__all__ = ["exit_code", "fire", "runs"]
