"""``seedbed run submit|list|show|logs|abort|purge|export|trace|replay``: submit a scenario file and follow
its run, and read, stop and clean up runs.

Old spellings kept for one release, each saying its new name: ``seedbed run FILE`` (→ ``run submit
FILE``), ``run details`` (→ ``run show``), ``run log`` (→ ``run logs``), and at the root ``runs``,
``logs``, ``abort`` (``_app``). ``RUN_COLUMNS`` / ``runs_table`` are the runs table ``scenario runs``
shares. Following (log lines, the live status, Ctrl-C) is ``_follow``; ``run show`` is drawn by
``_show``, ``run purge`` by ``_purge``, ``run trace`` by ``_trace``; ``run assets`` and ``run download``
are ``_assets``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import click
import grpc
from rich.table import Table

from seedbed.api.v1 import run_pb2
from seedbed.cli import _assets
from seedbed.cli._catalog_options import tell
from seedbed.cli._context import CliError, Globals, SeedbedGroup, state
from seedbed.cli._exits import ExitCode, for_run_state
from seedbed.cli._follow import (
    LogView,
    OnInterrupt,
    ctrl_c,
    describe,
    follow_fire,
    follow_run,
    interruptible,
    on_interrupt_option,
)
from seedbed.cli._input import confirm, iso_time, read_text
from seedbed.cli._output import Column, dump, printable, table, when
from seedbed.cli._purge import purges as _purge_list
from seedbed.cli._replay import replay
from seedbed.cli._scenario_options import params_option
from seedbed.cli._show import error_text, state_name, took
from seedbed.client import Client, ClientError, LogEvent, ScenarioRun

ENV_IDEMPOTENCY_KEY = "SEEDBED_IDEMPOTENCY_KEY"
_STATES = ("QUEUED", "RUNNING", "SUCCESS", "WARNING", "FAILED", "ABORTED")


# The runs table, shared with `seedbed scenario runs`: one row per contract Run message. Which
# columns a terminal gets depends on its width (``runs_table``).
RUN_COLUMNS: tuple[Column, ...] = (
    Column("RUN", lambda r: r.id),
    Column("SCENARIO", lambda r: r.scenario_id, max_width=24),
    Column("STATE", lambda r: state_name(r.state)),
    Column("CREATED", lambda r: when(r.create_time)),
    Column("TOOK", lambda r: took(r.start_time, r.end_time), justify="right"),
    Column("ERROR", lambda r: error_text(r.first_error, reason=False), overflow="ellipsis"),
)
_NARROW = ("RUN", "STATE", "ERROR")  # below 60 columns
_MEDIUM = ("RUN", "SCENARIO", "STATE", "CREATED", "ERROR")  # below 100


def runs_table(runs: Sequence[run_pb2.Run], *, width: int = 80, scenario: bool = True) -> Table:
    """The runs as a table that fits ``width`` columns (the console's: ``g.out.width``): fewer
    columns on a narrow terminal, the error cut to what is left. ``scenario=False`` leaves out the
    scenario column (one scenario's runs)."""
    wanted = _NARROW if width < 60 else _MEDIUM if width < 100 else tuple(c.header for c in RUN_COLUMNS)
    columns = [c for c in RUN_COLUMNS if c.header in wanted and (scenario or c.header != "SCENARIO")]
    used = sum(
        max([len(c.header), *(len(printable(str(c.get(r)))) for r in runs)]) + 2
        for c in columns
        if c.header != "ERROR"
    )
    room = max(8, width - used)
    cut = Column("ERROR", lambda r: _cut(error_text(r.first_error, reason=False), room), overflow="ellipsis")
    columns = [cut if c.header == "ERROR" else c for c in columns]
    return table(runs, columns)


def _cut(text: str, room: int) -> str:
    return text if len(text) <= room else text[: room - 1] + "…"


@click.group(
    cls=SeedbedGroup,
    aliases={"details": "show", "log": "logs"},
    fallback="submit",
)
def run() -> None:
    """Submit a scenario file and follow its run; list, show, follow, abort, purge, export and
    trace runs.

    \b
    Examples:
      seedbed run submit examples/hello.py -p customers=4
      seedbed run list --scenario hello --state FAILED
      seedbed run logs RUN --follow --sequence
    """


# `run assets` and `run download` (the files a run kept) live in their own module.
run.add_command(_assets.assets)
run.add_command(_assets.download)


def _scenario_id_for(path: Path) -> str:
    """The scenario id of a file: its name, with what an id cannot hold as "-" (the case kept: the
    coordinator's ids keep theirs, so MYSCENARIO.py is scenario MYSCENARIO)."""
    slug = re.sub(r"[^A-Za-z0-9_-]+", "-", path.stem).strip("-_") or "scenario"
    return slug[:63]


@run.command()
@click.argument("file", metavar="FILE", type=click.Path(dir_okay=False, path_type=Path))
@params_option("a parameter of the run, KEY=VALUE (repeatable)")
@click.option("--scenario", metavar="ID", help="the scenario to save the file as (default: from its name)")
@click.option(
    "--timeout",
    type=click.IntRange(min=1),
    metavar="S",
    help="the scenario's deadline of a run, in seconds (saved with it; its other settings stay)",
)
@click.option(
    "--follow/--no-follow",
    default=True,
    help="follow the run's logs until it ends (default), or print its id once it exists and return",
)
@click.option(
    "--local", is_flag=True, help="start an embedded coordinator for this one run (needs seedbed[server])"
)
@click.option(
    "--idempotency-key",
    metavar="KEY",
    envvar=ENV_IDEMPOTENCY_KEY,
    help=f"the same key submits once: a retried command gets the first run ({ENV_IDEMPOTENCY_KEY}; "
    "default: a new key per command)",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="check every write against the targets' live schema and write nothing; prints what would be "
    "written per target and the problems found (exit 1 when there are problems)",
)
@on_interrupt_option
def submit(
    file: Path,
    params: dict[str, str],
    scenario: str | None,
    timeout: int | None,
    follow: bool,
    local: bool,
    idempotency_key: str | None,
    on_interrupt: OnInterrupt | None,
    dry_run: bool,
) -> int:
    """Save FILE as a scenario and run it, following its logs until it ends.

    FILE is the scenario's Python script. The scenario id is --scenario, else the file's name
    (its case kept, other characters than letters, digits, _ and - as -).
    The exit code is the run's outcome (0 SUCCESS, 1 FAILED, 3 ABORTED, 4 WARNING); a fire the
    coordinator cancelled (the scenario is inactive, or already running) exits 8 with its reason;
    a fire queued behind another run waits for its run. The script's stdout goes to stdout,
    everything else to stderr. With -o json|yaml, the logs go to stderr and stdout gets the
    contract's Run message once the run ended (with --no-follow: its TriggerFire).

    \b
    Examples:
      seedbed run submit examples/hello.py -p customers=4
      seedbed run submit seed.py --idempotency-key "ci-$CI_PIPELINE_ID" -o json
      seedbed run submit examples/hello.py --local
      seedbed run submit examples/shop/seed.py --dry-run

    With --dry-run the run writes nothing: inserts are checked against each table's columns, types,
    NOT NULL, keys, foreign keys and simple check constraints, statements are not run, REST posts
    are not sent, files are not written. A dry run with problems ends FAILED (exit 1).
    """
    g = state()
    script = read_text(str(file))
    scenario_id = scenario or _scenario_id_for(file)
    if local:
        from seedbed.cli._run_local import local_coordinator

        with local_coordinator(g):
            return _submit(
                g, scenario_id, script, params, timeout, follow, idempotency_key, on_interrupt, dry_run
            )
    return _submit(g, scenario_id, script, params, timeout, follow, idempotency_key, on_interrupt, dry_run)


def _submit(
    g: Globals,
    scenario_id: str,
    script: str,
    params: dict[str, str],
    timeout: int | None,
    follow: bool,
    idempotency_key: str | None,
    on_interrupt: OnInterrupt | None,
    dry_run: bool = False,
) -> int:
    client = g.client()
    if timeout:
        _save_with_timeout(client, scenario_id, script, timeout)
    else:
        client.put_scenario(scenario_id, script=script)  # a scenario that exists keeps its settings
    fire = client.run(scenario_id, params, idempotency_key=idempotency_key or "", dry_run=dry_run)
    return follow_fire(g, client, fire, follow=follow, on_interrupt=on_interrupt)


def _save_with_timeout(client: Client, scenario_id: str, script: str, timeout: int) -> None:
    """Save the script with --timeout: a new scenario gets it as its one setting; an existing one
    changes only its timeout (triggers, reporters, run-as, active stay), saved with the revision
    read so a change made meanwhile is refused (exit 8) rather than overwritten."""
    from seedbed.api.v1 import scenario_pb2

    try:
        found = client.get_scenario(scenario_id)
    except ClientError as exc:
        if exc.code != grpc.StatusCode.NOT_FOUND:
            raise
        settings = scenario_pb2.ScenarioSettings(timeout_seconds=timeout)
        client.put_scenario(scenario_id, script=script, settings=settings, expected_revision=0)
        return
    settings = scenario_pb2.ScenarioSettings()
    settings.CopyFrom(found.settings)
    settings.timeout_seconds = timeout
    client.put_scenario(scenario_id, script=script, settings=settings, expected_revision=found.revision)


@run.command(name="list")
@click.option("--scenario", metavar="ID", help="only the runs of this scenario")
@click.option("--project", metavar="KEY", help="only the runs of this project")
@click.option(
    "--state",
    "states",
    multiple=True,
    type=click.Choice(_STATES, case_sensitive=False),
    metavar="STATE",
    help=f"only runs in this state ({', '.join(_STATES)}); give it again for several",
)
@click.option(
    "--limit", type=click.IntRange(1, 1000), default=20, show_default=True, help="at most this many"
)
def list_(scenario: str | None, project: str | None, states: tuple[str, ...], limit: int) -> int:
    """The newest runs first. -o json|yaml: a list of the contract's Run messages.

    \b
    Examples:
      seedbed run list
      seedbed run list --scenario nightly --state FAILED --state ABORTED --limit 5
      seedbed run list --project shop -o json
    """
    g = state()
    wanted = [cast(run_pb2.RunState, run_pb2.RunState.Value(f"RUN_STATE_{name.upper()}")) for name in states]
    runs = g.client().list_runs(scenario or "", limit, project_key=project or "", states=wanted)
    g.emit(runs, lambda: runs_table(runs, width=g.out.width))
    return 0


@run.command()
@click.argument("run_id", metavar="RUN")
def show(run_id: str) -> int:
    """Show run RUN: its state, attempts, steps, reporters' deliveries, the batches it wrote per
    target, and its first error.

    RUN is a run id (`seedbed run list` shows them). -o json|yaml: the contract's Run message with
    one more field, write_batches (the contract's WriteBatch messages, in order).

    \b
    Examples:
      seedbed run show run_5f0c2a9e1b7d4c3a
      seedbed run show run_5f0c2a9e1b7d4c3a -o json | jq .first_error
    """
    from seedbed.cli import _show

    g = state()
    client = g.client()
    found = client.get_run(run_id)
    batches = client.write_batches(run_id)
    g.emit(_show.document(found, batches), lambda: _show.render(found, batches))
    return 0


_SPAN = re.compile(r"(?P<n>\d+(?:\.\d+)?)\s*(?P<unit>s|m|h|d)")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """``--since``: a duration back from now (``90s``, ``10m``, ``2h``, ``1d``) or an ISO 8601 time
    (UTC when it has no offset)."""
    found = _SPAN.fullmatch(text.strip())
    if found is not None:
        delta = timedelta(**{_UNITS[found["unit"]]: float(found["n"])})
        return (now or datetime.now(UTC)) - delta
    try:
        return iso_time(text)
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is neither a duration (30s, 10m, 2h, 1d) nor an ISO 8601 time "
            "(2026-11-01T08:00, 2026-11-01T08:00+01:00)"
        ) from None


@run.command()
@click.argument("run_id", metavar="RUN")
@click.option("-f", "--follow", is_flag=True, help="keep following until the run ends; exit with its outcome")
@click.option(
    "--after",
    type=click.IntRange(min=0),
    default=0,
    metavar="N",
    help="only lines after sequence number N (see --sequence)",
)
@click.option("--since", metavar="DURATION|TIME", help="only lines written since: 10m, 2h, 1d or an ISO time")
@click.option("--step", metavar="STEP", help="only the lines of this step (its number or name)")
@click.option("--sequence", is_flag=True, help="start each line with its sequence number (for --after)")
@on_interrupt_option
def logs(
    run_id: str,
    follow: bool,
    after: int,
    since: str | None,
    step: str | None,
    sequence: bool,
    on_interrupt: OnInterrupt | None,
) -> int:
    """Print the log of run RUN: the script's stdout on stdout, its stderr and Seedbed's own lines
    (`[seedbed LEVEL] …`) on stderr.

    RUN is a run id. With --follow, the exit code is the run's outcome once it ended (0 SUCCESS,
    1 FAILED, 3 ABORTED, 4 WARNING); Ctrl-C asks whether to abort it (--on-interrupt). With -o
    json, every line is one JSON object on stdout: sequence, attempt, stream, level, time, text,
    fields (the log call's, as JSON values), trace_id, span_id (-o yaml: one YAML document each).

    \b
    Examples:
      seedbed run logs RUN --follow
      seedbed run logs RUN --sequence --since 10m
      seedbed run logs RUN --after 1200 -o json | jq -r .text
    """
    g = state()
    since_time = parse_since(since) if since else None
    client = g.client()
    view = LogView(g)

    def line(event: LogEvent) -> None:
        if since_time is not None and (event.time is None or event.time < since_time):
            return
        if g.output != "table":
            document = event.to_dict()
            text = (
                json.dumps(document, ensure_ascii=False)
                if g.output == "json"
                else "---\n" + dump(document, "yaml").rstrip("\n")
            )
            click.echo(text)
        elif sequence:
            prefixed = run_pb2.LogLine()
            prefixed.CopyFrom(event.line)
            prefixed.text = f"{event.sequence:>6} {event.text}"
            view.line(LogEvent(prefixed))
        else:
            view.line(event)

    with ctrl_c(client, lambda: [run_id] if follow else [], on_interrupt, g), view:
        ended = interruptible(
            lambda: follow_run(client, run_id, view, after=after, follow=follow, step=step or "", lines=line)
        )
    if ended.state in (run_pb2.RUN_STATE_QUEUED, run_pb2.RUN_STATE_RUNNING):
        return 0
    view.say(f"[seedbed] {describe(ended)}")
    return int(for_run_state(ended.state)) if follow else 0


@run.command()
@click.argument("run_id", metavar="RUN")
@click.option(
    "--reason", default="aborted from the command line", show_default=True, help="why, kept with the run"
)
def abort(run_id: str, reason: str) -> int:
    """Abort run RUN: its attempt is stopped (gracefully, then killed) and it ends ABORTED.

    RUN is a run id. A run that already ended is left as it is (exit 0, said). -o json|yaml: the
    contract's AbortRunResponse (run, already_finished).

    \b
    Examples:
      seedbed run abort run_5f0c2a9e1b7d4c3a --reason "wrong parameters"
    """
    g = state()
    response = g.client().abort(run_id, reason)
    if response.already_finished:
        text = f"run {run_id} had already ended ({state_name(response.run.state)}): nothing to abort"
    else:
        text = f"run {run_id} {state_name(response.run.state)}: abort requested"
    tell(response, text)
    return 0


@run.command()
@click.argument("run_id", metavar="RUN")
@click.option("--dry-run", is_flag=True, help="count what would be deleted, delete nothing")
@click.option("--yes", is_flag=True, help="do not ask for confirmation (required off a terminal)")
def purge(run_id: str, dry_run: bool, yes: bool) -> int:
    """Undo what run RUN wrote, newest first: rows deleted, upserted rows put back, REST resources
    deleted, files and assets removed.

    RUN is a run id of a run that ended. What cannot be undone (statements, keys the database
    generated, a REST connection without --rest-undo, rows changed since the run) is listed with
    why. On a terminal (stdin and stderr) it asks first
    (--yes does not); answering no purges nothing, says so and exits 0. Elsewhere --yes is
    required (exit 2 without it). The exit code is 1 when the purge stopped at a failure (run it
    again to resume). -o json|yaml: the contract's PurgeRunResponse with run_id added.

    \b
    Examples:
      seedbed run purge run_5f0c2a9e1b7d4c3a --dry-run
      seedbed run purge run_5f0c2a9e1b7d4c3a --yes -o json
    """
    from seedbed.cli import _purge

    g = state()
    question = f"undo what run {run_id} wrote?"
    why = "run purge deletes rows (--dry-run counts them)"
    if not confirm(question, yes=yes or dry_run, why=why, declined="nothing purged"):
        return int(ExitCode.SUCCESS)
    response = g.client().purge_run(run_id, dry_run=dry_run)
    g.emit(_purge.document(run_id, response), lambda: _purge.render(run_id, response), sentences=True)
    return int(ExitCode.FAILED) if response.failures else 0


@run.command()
@click.argument("run_id", metavar="RUN", required=False)
@click.option("--last", is_flag=True, help="the last finished run of every scenario of the project instead")
@click.option(
    "--project", metavar="KEY", default="default", show_default=True, help="with --last: the project"
)
def export(run_id: str | None, last: bool, project: str) -> int:
    """Print run RUN (or with --last, the last finished run of every scenario) as a document for
    other tools: JSON, or YAML with -o yaml.

    RUN is a run id. The document is the client's run export (ScenarioRun.to_dict): id,
    scenario_id, project_key, fire_id, state, outcome, times (ISO 8601), duration_seconds, params,
    run_as, triggered_by, trigger_id, attempt_count, warning_count, first_error, steps. With
    --last: a list of {scenario_id, scenario_name, last_run} (last_run null when none ended).

    \b
    Examples:
      seedbed run export run_5f0c2a9e1b7d4c3a > run.json
      seedbed run export --last --project shop -o yaml
    """
    g = state()
    if bool(run_id) == last:
        raise CliError("run export takes a run id, or --last (the last run of every scenario of --project)")
    client = g.client()
    document: Any
    if run_id:
        document = ScenarioRun(client, client.get_run(run_id)).to_dict()
    else:
        document = _last_runs(client, project)
    click.echo(dump(document, "yaml" if g.output == "yaml" else "json"), nl=False)
    return 0


def _last_runs(client: Client, project: str) -> list[dict[str, Any]]:
    out = []
    for found in client.get_project(project).list_scenarios(as_type="objects"):
        last = found.get_last_finished_run(no_fail=True)
        out.append(
            {
                "scenario_id": found.id,
                "scenario_name": found.name,
                "last_run": last.to_dict() if last is not None else None,
            }
        )
    return out


@run.command()
@click.argument("run_id", metavar="RUN")
@click.option(
    "--depth", type=click.IntRange(min=1), metavar="N", help="show N levels of the tree (1: the roots)"
)
@click.option(
    "--min-ms",
    type=click.FloatRange(min=0),
    default=0.0,
    metavar="MS",
    help="hide spans shorter than MS milliseconds (not those that ended in error)",
)
def trace(run_id: str, depth: int | None, min_ms: float) -> int:
    """Draw run RUN's trace as a waterfall: one row per span, from the RunScenario call through each
    attempt, step and SDK call to every batch written, with its service, duration, a bar on the
    run's time axis and its key attributes; errors are marked.

    RUN is a run id. -o json|yaml: the trace as OTLP JSON (resourceSpans…), for Jaeger, Tempo or
    an OpenTelemetry collector's file receiver; not a contract message.

    \b
    Examples:
      seedbed run trace run_5f0c2a9e1b7d4c3a --depth 3 --min-ms 5
      seedbed run trace run_5f0c2a9e1b7d4c3a -o json > trace.json
    """
    from seedbed.cli._trace import Waterfall, no_spans

    g = state()
    found = g.client().get_run_trace(run_id)
    min_duration = timedelta(milliseconds=min_ms) if min_ms else None
    g.emit(
        found.to_otlp_json(),
        lambda: (
            Waterfall(found, max_depth=depth, min_duration=min_duration) if found.spans else no_spans(found)
        ),
    )
    return 0


run.add_command(replay)  # `seedbed run replay` (_replay)
run.add_command(_purge_list)  # `seedbed run purges` (_purge)

__all__ = ["ENV_IDEMPOTENCY_KEY", "RUN_COLUMNS", "parse_since", "run", "runs_table"]
