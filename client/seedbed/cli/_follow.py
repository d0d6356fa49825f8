"""Following runs from the command line: their log lines, a live line saying what the run is doing,
bulk inserts as progress bars, and what Ctrl-C does to a wait.

Used by ``seedbed run submit|replay|logs`` and ``seedbed scenario fire --wait``. The stable surface:

- ``follow_run(client, run_id, g, after=0, follow=True, step="")`` prints the run's log lines (a
  ``LogView``) and answers the run as it was when the stream ended;
- ``wait_for_fire(client, fire, g)`` waits for a queued fire's run (saying why it waits) and
  answers the run id, or raises ``CliError`` (REFUSED, 8) for a cancelled fire with its reason;
- ``follow_fire(g, client, fire, …)`` is what ``run submit`` and ``run replay`` do with their fire:
  wait for its run, then follow it to its end (or print the fire) and answer the exit code;
- ``on_interrupt_option`` adds ``--on-interrupt ask|abort|leave`` to a command, and
  ``ctrl_c(client, run_ids, choice, g, queued)`` is the context to wait in: Ctrl-C inside it asks
  (on a terminal) or decides (``choice``) whether to abort the runs, says how to follow them later
  when they are left running, says which fires are still queued (they will start runs: no call
  takes a fire back) and how to find them, and ends the command with exit code 130
  (``INTERRUPTED``), an abort that failed included;
- ``describe(run)`` is the one-paragraph summary of an ended run.

On a terminal (stderr), the view is a rich ``Live`` drawn on stderr: a spinner with the run's state
(queued for a slot and why, running attempt N, retrying in N s) under the scrolling log lines, and
one progress bar per table a bulk insert is writing (rows, rows/s, time left, as the worker's
progress lines say them). Elsewhere (a file, a pipe, CI's log) every line is printed as it came and
nothing is redrawn: no control codes. The state comes from the run itself (``GetRun``, asked again
when Seedbed writes one of its own lines, which is when the state changes), not from the wording of
the lines; only the wait before a retry is counted down from the run's ``next_attempt_time``.

Rejected: a second stream (``WatchRuns``) beside the log stream for the state (two streams to keep
in step for one spinner, and the log stream's own lines already mark every change); polling
``GetRun`` on a timer (load on the coordinator for nothing when a run is quiet).
"""

from __future__ import annotations

import contextlib
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Literal, TypeVar, cast

import click
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress import BarColumn, Progress, TaskID, TextColumn
from rich.spinner import Spinner
from rich.text import Text

from seedbed.api.v1 import run_pb2
from seedbed.cli._catalog_options import tell
from seedbed.cli._context import CliError, Globals
from seedbed.cli._exits import ExitCode, for_run_state
from seedbed.cli._output import printable
from seedbed.cli._show import error_text, state_name, took
from seedbed.client import Client, ClientError, LogEvent, RunEnded, TriggerFire

OnInterrupt = Literal["ask", "abort", "leave"]
ON_INTERRUPT: tuple[OnInterrupt, ...] = ("ask", "abort", "leave")

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")

# A bulk insert's progress as the worker words it (seedbed.worker.bulk._insert).
PROGRESS = re.compile(
    r"insert (?P<table>\S+): (?P<done>[\d,]+)/(?P<total>[\d,]+) rows \((?P<pct>\d+)%\), "
    r"(?P<rate>[\d,]+) rows/s, about (?P<left>\d+)s left"
)


def describe(run: run_pb2.Run) -> str:
    """An ended run in a few lines: its state and duration, its first error, dropped log lines."""
    text = f"run {run.id} {state_name(run.state)}"
    duration = took(run.start_time, run.end_time)
    text += f" in {duration}" if duration else ""
    if run.HasField("first_error") and run.first_error.type:
        err = run.first_error
        where = f" (line {err.line})" if err.line else ""
        text += f"\n  {error_text(err)}{where}"
        if err.traceback:
            text += "\n" + "\n".join("  " + t for t in err.traceback.rstrip().splitlines())
    if run.logs_truncated:
        text += f"\n  logs truncated: {run.dropped_log_lines} lines dropped over the per-run cap"
    return printable_lines(text)


def printable_lines(text: str) -> str:
    """``text`` made printable line by line (its own newlines kept)."""
    return "\n".join(printable(line) for line in text.split("\n"))


# -- what the run is doing ----------------------------------------------------------------------


def run_status(run: run_pb2.Run, waiting: str = "", now: float | None = None) -> str:
    """The spinner's words for a run: "queued for a slot: …", "running attempt 2", "retrying in 4 s
    (attempt 2 of …)". ``waiting``: the coordinator's last "waiting for a worker" reason."""
    now = time.time() if now is None else now
    if run.state == run_pb2.RUN_STATE_QUEUED:
        return f"{run.id} queued for a slot" + (f": {waiting}" if waiting else "")
    if run.state != run_pb2.RUN_STATE_RUNNING:
        return f"{run.id} {state_name(run.state)}"
    if run.HasField("next_attempt_time"):
        left = max(0, round(run.next_attempt_time.ToMicroseconds() / 1e6 - now))
        return f"{run.id} retrying in {left} s (attempt {run.attempt_count + 1} next)"
    if waiting:
        return f"{run.id} attempt {run.attempt_count} waiting for a slot: {waiting}"
    return f"{run.id} running attempt {max(run.attempt_count, 1)}"


class _Status:
    """The spinner's text, worked out each time it is drawn (the retry countdown moves)."""

    def __init__(self) -> None:
        self.run: run_pb2.Run | None = None
        self.waiting = ""
        self.text = "connecting"

    def __rich__(self) -> Text:
        words = run_status(self.run, self.waiting) if self.run is not None else self.text
        return Text(printable(words), no_wrap=True, overflow="ellipsis")


class LogView:
    """Prints a run's log lines for a person: live on a terminal, plain lines elsewhere.

    Script stdout goes to stdout (``to_stdout=False``: to stderr, so -o json leaves stdout to the
    answer); stderr lines and Seedbed's own (``[seedbed LEVEL] …``) to stderr."""

    def __init__(self, g: Globals, *, to_stdout: bool = True, console: Console | None = None) -> None:
        self.err = console or g.err
        self.to_stdout = to_stdout
        self.interactive = self.err.is_terminal
        self.status = _Status()
        self._live: Live | None = None
        self._progress: Progress | None = None
        self._tasks: dict[str, TaskID] = {}

    def __enter__(self) -> LogView:
        if self.interactive:
            self._progress = _progress_bars(self.err.width)
            body: RenderableType = Group(self._progress, Spinner("dots", text=self.status, style="cyan"))
            self._live = Live(
                body, console=self.err, transient=True, refresh_per_second=8, redirect_stdout=False
            )
            self._live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None

    def set_run(self, run: run_pb2.Run) -> None:
        self.status.run = run

    def say(self, text: str) -> None:
        """A line of the command's own (not the run's), on stderr."""
        self._print(Text(printable_lines(text)), err=True)

    def line(self, event: LogEvent) -> None:
        line = event.line
        if line.stream == run_pb2.LOG_STREAM_SYSTEM:
            found = PROGRESS.fullmatch(line.text)
            if found is not None and self._progress is not None:
                self._bar(found)
                return
            self._end_bar(line.text)
            # Said while an attempt waits for a sandbox slot; any other line means it moved on.
            self.status.waiting = line.text.removeprefix("waiting for a worker: ")
            if self.status.waiting == line.text:
                self.status.waiting = ""
            level = f" {line.level.upper()}" if line.level else ""
            self._print(Text(f"[seedbed{level}] {printable(line.text)}"), err=True)
        else:
            self.status.waiting = ""
            err = line.stream == run_pb2.LOG_STREAM_STDERR or not self.to_stdout
            self._print(Text(printable(line.text)), err=err)

    def _print(self, text: Text, *, err: bool) -> None:
        if not self.interactive:
            click.echo(text.plain, err=err)
        elif err or sys.stdout.isatty():
            # Through the live console, which draws the spinner again under the line.
            self.err.print(text, soft_wrap=True, highlight=False, markup=False)
        else:
            click.echo(text.plain)  # stdout is a file or a pipe: the line as it came

    def _bar(self, found: re.Match[str]) -> None:
        assert self._progress is not None
        table = found["table"]
        rate, left = found["rate"], f"{found['left']}s"
        done, total = int(found["done"].replace(",", "")), int(found["total"].replace(",", ""))
        if table not in self._tasks:
            name = printable(table)
            self._tasks[table] = self._progress.add_task(
                name, total=total, completed=done, rate=rate, left=left
            )
        else:
            self._progress.update(self._tasks[table], total=total, completed=done, rate=rate, left=left)
        if self._live is not None:
            self._live.refresh()  # drawn now: the next line may not come for seconds

    def _end_bar(self, text: str) -> None:
        """A line about a table's insert that is not its progress: the insert ended."""
        if self._progress is None:
            return
        for table, task in list(self._tasks.items()):
            if text.startswith(f"insert {table}:"):
                self._progress.remove_task(task)
                del self._tasks[table]


def _progress_bars(width: int) -> Progress:
    """Bulk inserts' bars: table, bar, percentage, rows/s, time left; narrower terminals drop the
    row counts so a line still fits 40 columns."""
    columns: list[Any] = [
        TextColumn("{task.description}", table_column=None),
        BarColumn(bar_width=max(6, min(30, width - 34))),
        TextColumn("{task.percentage:>3.0f}%"),
    ]
    if width >= 72:
        columns.append(TextColumn("{task.completed:,.0f}/{task.total:,.0f} rows"))
    columns += [TextColumn("{task.fields[rate]} rows/s"), TextColumn("~{task.fields[left]}")]
    return Progress(*columns, auto_refresh=False, expand=False)


# -- following ---------------------------------------------------------------------------------


def follow_run(
    client: Client,
    run_id: str,
    view: LogView,
    *,
    after: int = 0,
    follow: bool = True,
    step: str = "",
    lines: Callable[[LogEvent], None] | None = None,
) -> run_pb2.Run:
    """Print the run's log lines after ``after`` (``lines`` instead, e.g. JSON), keeping the view's
    status current; the run as it is when the stream ends (its end, when ``follow``)."""
    if view.interactive:
        view.set_run(client.get_run(run_id))
    for event in client.stream_logs(run_id, after=after, follow=follow, step=step):
        if isinstance(event, RunEnded):
            view.set_run(event.run)
            return event.run
        (lines or view.line)(event)
        system = event.line.stream == run_pb2.LOG_STREAM_SYSTEM
        if view.interactive and system and PROGRESS.fullmatch(event.line.text) is None:
            view.set_run(client.get_run(run_id))
    raise AssertionError("unreachable: stream_logs ends with RunEnded")


def wait_for_fire(client: Client, fire: run_pb2.TriggerFire, view: LogView) -> str:
    """The run id of ``fire``, once it has one (a queued fire waits, saying why); CliError
    (REFUSED) for a fire that was cancelled, with its reason."""
    if fire.state == run_pb2.TRIGGER_FIRE_STATE_PENDING:
        reason = f": {fire.queue_reason}" if fire.queue_reason else ""
        view.status.text = f"fire {fire.id} queued{reason}"
        if not view.interactive:
            view.say(f"[seedbed] fire {fire.id} queued{reason}; waiting for its run")
        waiting = TriggerFire(client, fire)
        waiting.wait_for_scenario_run(no_fail=True)
        fire = waiting.raw
    if fire.state == run_pb2.TRIGGER_FIRE_STATE_CANCELLED:
        raise CliError(
            f"fire {fire.id} of {fire.scenario_id} was cancelled, no run started: "
            f"{printable(fire.cancel_reason) or 'no reason given'}",
            ExitCode.REFUSED,
        )
    return fire.run_id


def follow_fire(
    g: Globals,
    client: Client,
    fire: run_pb2.TriggerFire,
    *,
    follow: bool,
    on_interrupt: OnInterrupt | None,
    what: str = "",
) -> int:
    """Wait for ``fire``'s run (Ctrl-C as ``on_interrupt`` says), then follow it until it ends and
    answer the run's exit code (with -o json|yaml, stdout gets the ended Run; a dry run's report is
    printed); with ``follow`` False print the fire once it has its run and answer 0. ``what`` opens
    the line that names the run ("replay of run_…: ")."""
    run_ids: list[str] = []
    view = LogView(g, to_stdout=g.output == "table")

    def queued() -> list[run_pb2.TriggerFire]:
        # Until the fire has its run, Ctrl-C leaves a fire that will start one: said, not hidden.
        return [] if run_ids else [fire]

    with ctrl_c(client, lambda: run_ids, on_interrupt, g, queued), view:
        run_ids.append(interruptible(lambda: wait_for_fire(client, fire, view)))
        view.say(f"[seedbed] {what}fire {fire.id} → run {run_ids[0]}")
        if not follow:
            view.close()
            tell(client.get_fire(fire.id), run_ids[0])
            return 0
        ended = interruptible(lambda: follow_run(client, run_ids[0], view))
    view.say(f"[seedbed] {describe(ended)}")
    if ended.dry_run and g.output == "table":
        from seedbed.cli._dryrun import render_report

        g.err.print(render_report(ended.dry_run_report))
    if g.output != "table":
        g.emit(ended, lambda: "")
    return int(for_run_state(ended.state))


# -- Ctrl-C ------------------------------------------------------------------------------------


def interruptible(body: Callable[[], T]) -> T:
    """``body()`` (a wait on the coordinator's streams) run on a daemon thread while this one waits
    for it, so that Ctrl-C lands here, in plain Python, and never inside gRPC: a KeyboardInterrupt
    raised in the middle of a call can leave one of the channel's locks held, and closing the
    channel at the command's end then waits for ever. The abandoned wait ends when the command
    closes its client (its calls are cancelled)."""
    box: dict[str, Any] = {}

    def wait() -> None:
        try:
            box["value"] = body()
        except BaseException as exc:  # handed to the waiting thread, which raises it
            box["error"] = exc

    thread = threading.Thread(target=wait, name="seedbed-wait", daemon=True)
    thread.start()
    while thread.is_alive():
        thread.join(0.1)
    if "error" in box:
        raise box["error"]
    return cast(T, box["value"])


def on_interrupt_option(f: F) -> F:
    """``--on-interrupt ask|abort|leave``: what Ctrl-C during the wait does."""
    option = click.option(
        "--on-interrupt",
        type=click.Choice(ON_INTERRUPT),
        default=None,
        metavar="ask|abort|leave",
        help="what Ctrl-C during the wait does: ask whether to abort the run (default on a "
        "terminal), abort it, or leave it running (default elsewhere); the exit code is 130 either way",
    )
    return option(f)


def resolve_choice(choice: OnInterrupt | None, g: Globals) -> OnInterrupt:
    """``choice``, else "ask" when a person can answer (stdin and stderr are terminals), else "leave"."""
    if choice is not None:
        return choice
    return "ask" if sys.stdin.isatty() and g.err.is_terminal else "leave"


@contextlib.contextmanager
def ctrl_c(
    client: Client,
    run_ids: Callable[[], Sequence[str]],
    choice: OnInterrupt | None,
    g: Globals,
    queued: Callable[[], Sequence[run_pb2.TriggerFire]] = tuple,
) -> Iterator[None]:
    """Wait inside this: Ctrl-C aborts ``run_ids()`` or leaves them running as ``choice`` (or the
    person asked) decides, says what becomes of the fires ``queued()`` (fires seen waiting for
    their run), then ends the command with exit code 130 (CliError INTERRUPTED)."""
    try:
        yield
    except KeyboardInterrupt:
        ids = [r for r in run_ids() if r]
        raise settle(client, ids, resolve_choice(choice, g), queued()) from None


def settle(
    client: Client,
    run_ids: Sequence[str],
    choice: OnInterrupt,
    fires: Sequence[run_pb2.TriggerFire] = (),
) -> CliError:
    """Act on Ctrl-C for ``run_ids`` and the queued ``fires``; the CliError (exit 130) that says
    what was done. A fire that got its run meanwhile is one more run; one still queued cannot be
    taken back (no call cancels a fire), so it is said, with how to find and stop its run. An
    abort that fails (the coordinator unreachable, a second Ctrl-C) is said with why, and the
    exit code stays 130."""
    ids = list(run_ids)
    notes: list[str] = []
    for fire in fires:
        try:
            fire = client.get_fire(fire.id)  # it may have got its run since it was last seen
        except (ClientError, KeyboardInterrupt) as exc:
            notes.append(_still_queued(fire, f"as last seen (reading it again failed: {_why(exc)})"))
            continue
        if fire.run_id:
            ids.append(fire.run_id)
        elif fire.state == run_pb2.TRIGGER_FIRE_STATE_PENDING:
            notes.append(_still_queued(fire))
    if not ids:
        text = "\n".join(notes) or "interrupted before a run started"
        return CliError(printable_lines(text), ExitCode.INTERRUPTED)
    names = ", ".join(ids)
    abort = choice == "abort"
    if choice == "ask":
        click.echo("", err=True)
        try:
            abort = click.confirm(f"abort run {names}?", default=False, err=True)
        except click.exceptions.Abort:  # a second Ctrl-C, or no answer: leave the runs alone
            abort = False
    if abort:
        aborted, failed = [], []
        for run_id in ids:
            try:
                client.abort(run_id, "aborted with Ctrl-C from the command line")
                aborted.append(run_id)
            except (ClientError, KeyboardInterrupt) as exc:
                failed.append(
                    f"the abort of run {run_id} failed ({_why(exc)}): it may still be running; "
                    f"abort it with `seedbed run abort {run_id}`"
                )
        lines = [f"interrupted: run {', '.join(aborted)} aborted"] if aborted else ["interrupted"]
    else:
        how = "; ".join(f"follow: seedbed run logs {r} -f, abort: seedbed run abort {r}" for r in ids)
        lines, failed = [f"interrupted: run {names} left running ({how})"], []
    return CliError(printable_lines("\n".join(lines + failed + notes)), ExitCode.INTERRUPTED)


def _still_queued(fire: run_pb2.TriggerFire, seen: str = "") -> str:
    scenario = fire.scenario_id
    return (
        f"fire {fire.id} of {scenario} is still queued{' ' + seen if seen else ''} and will start a "
        f"run when the run ahead of it ends; `seedbed scenario show {scenario}` lists it among the "
        f"queued fires, `seedbed run list --scenario {scenario}` shows its run once it started "
        "(`seedbed run abort RUN` stops it); no command takes back a queued fire"
    )


def _why(exc: BaseException) -> str:
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted again"
    return str(exc).partition("\n")[0]


__all__ = [
    "ON_INTERRUPT",
    "PROGRESS",
    "LogView",
    "OnInterrupt",
    "ctrl_c",
    "describe",
    "follow_fire",
    "follow_run",
    "on_interrupt_option",
    "resolve_choice",
    "run_status",
    "settle",
    "wait_for_fire",
]
