"""``seedbed scenario …``: create, list, show, edit and delete scenarios; the group that gathers the
scenario commands of ``_scenario_settings`` (switch on and off, run-as, sender, triggers) and
``_scenario_runs`` (fire, runs).

``-o json|yaml`` prints the contract's ``Scenario`` (the shape REST answers); ``show`` adds the
scenario's status beside it. ``edit`` saves with the revision it read, so a change someone else made
meanwhile is refused (exit 8) instead of overwritten, and the edited text is kept in a file.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from typing import Any

import click
from google.protobuf import json_format
from rich.console import Group, RenderableType
from rich.text import Text

from seedbed.api.v1 import run_pb2, scenario_pb2
from seedbed.cli._catalog_options import tell
from seedbed.cli._context import CliError, SeedbedGroup, state
from seedbed.cli._exits import ExitCode, for_status
from seedbed.cli._input import check_confirmable, confirm, read_text
from seedbed.cli._output import Column, fields, printable, say, table, when
from seedbed.cli._scenario_options import DEFAULT_PROJECT, find_scenario, project_option
from seedbed.cli._scenario_runs import fire, runs
from seedbed.cli._scenario_settings import (
    add_trigger,
    disable,
    enable,
    remove_trigger,
    set_purge_after,
    set_run_as,
    set_sender,
)
from seedbed.cli._show import state_name
from seedbed.client import ClientError

_OVERLAP = ("SKIP", "ALLOW_CONCURRENT", "QUEUE_ONE", "QUEUE_ALL", "CANCEL_RUNNING")


@click.group(cls=SeedbedGroup, aliases={"status": "show", "settings": "show"})
def scenario() -> None:
    """Create, show, change and fire scenarios.

    \b
    Examples:
      seedbed scenario create nightly --script nightly.py --timeout 600
      seedbed scenario list -o json
      seedbed scenario fire nightly --wait
    """


def _active(s: scenario_pb2.Scenario) -> bool:
    return not s.settings.HasField("active") or s.settings.active


@scenario.command("list")
@project_option
def list_(project: str | None) -> None:
    """The scenarios of a project: active or not, who they run as, next run, last outcome.

    -o json|yaml: a list of the contract's Scenario objects (script and settings included).

    \b
    Examples:
      seedbed scenario list
      seedbed scenario list --project shop -o json
    """
    g = state()
    client = g.client()
    found = [s.raw for s in client.get_project(project or DEFAULT_PROJECT).list_scenarios(as_type="objects")]

    def render() -> RenderableType:
        statuses = {s.id: client.get_scenario_status(s.id) for s in found}
        columns = [
            Column("SCENARIO", lambda s: s.id),
            Column("ACTIVE", _active),
            Column("RUN AS", lambda s: s.effective_run_as),
            Column("NEXT RUN", lambda s: statuses[s.id].next_run_time),
            Column("LAST", lambda s: state_name(statuses[s.id].last_outcome)),
            Column("NAME", lambda s: s.name, overflow="ellipsis"),
        ]
        return table(found, columns)

    g.emit(found, render)


def _target(reporter: scenario_pb2.Reporter) -> str:
    if reporter.HasField("email"):
        sender = reporter.email.sender or "(default sender)"
        return f"e-mail from {sender} to {', '.join(reporter.email.recipients)}"
    return f"webhook {reporter.webhook.url}"


def _flag(message: Any) -> bool:
    return not message.HasField("active") or bool(message.active)


def _describe(s: scenario_pb2.Scenario, status: scenario_pb2.GetScenarioStatusResponse) -> RenderableType:
    settings = s.settings
    run_as = s.effective_run_as + ("" if settings.run_as else " (the script's last author)")
    overlap = scenario_pb2.OverlapPolicy.Name(settings.overlap_policy or scenario_pb2.OVERLAP_POLICY_SKIP)
    retry = _retry(settings.retry_policy) if settings.HasField("retry_policy") else "operator default"
    next_run = when(status.next_run_time)
    if next_run and status.next_run_trigger_id:
        next_run += f" (trigger {status.next_run_trigger_id})"
    last = f"{state_name(status.last_outcome)} (run {status.last_run_id}, ended {when(status.last_end_time)})"
    rows: list[tuple[str, object]] = [
        ("scenario", s.id),
        ("name", s.name),
        ("project", s.project_key),
        ("revision", f"{s.revision} (changed {when(s.update_time)} by {s.last_modified_by})"),
        ("active", _active(s)),
        ("refuse runs when inactive", settings.refuse_runs_when_inactive),
        ("purge after", f"{settings.purge_after_seconds:,} s" if settings.purge_after_seconds else "never"),
        ("run as", run_as),
        ("overlap policy", overlap.removeprefix("OVERLAP_POLICY_")),
        ("timeout", f"{settings.timeout_seconds} s" if settings.timeout_seconds else "operator default"),
        (
            "memory limit",
            f"{settings.memory_limit_bytes:,} bytes" if settings.memory_limit_bytes else "operator default",
        ),
        ("retry policy", retry),
        ("running", f"yes: {', '.join(status.current_run_ids)}" if status.running else "no"),
        ("queued fires", ", ".join(status.queued_fire_ids) or "none"),
        ("next run", next_run or "none"),
        ("last outcome", last if status.last_run_id else "none yet"),
    ]
    parts: list[RenderableType] = [fields(rows)]
    if settings.triggers:
        parts += [Text("\ntriggers", style="bold"), table(settings.triggers, _TRIGGER_COLUMNS)]
    else:
        parts.append(Text("\nno triggers (fired by hand or by the API only)"))
    if settings.reporters:
        parts += [Text("\nreporters", style="bold"), table(settings.reporters, _REPORTER_COLUMNS)]
    return Group(*parts)


def _retry(policy: scenario_pb2.RetryPolicy) -> str:
    if policy.disabled or policy.maximum_attempts == 1:
        return "no retries"
    reasons = ", ".join(
        run_pb2.FailureReason.Name(r).removeprefix("FAILURE_REASON_") for r in policy.retry_on
    )
    return (
        f"up to {policy.maximum_attempts or 'the default number of'} attempts, waiting "
        f"{policy.initial_backoff_seconds:g} s x {policy.backoff_coefficient:g} up to "
        f"{policy.maximum_backoff_seconds:g} s (jitter {policy.jitter:g}), "
        f"on {reasons or 'the default reasons'}"
    )


_TRIGGER_COLUMNS = [
    Column("TRIGGER", lambda t: t.id),
    Column("SCHEDULE", lambda t: f"{t.cron.expression} {t.cron.timezone or 'UTC'}"),
    Column("ACTIVE", _flag),
    Column("NAME", lambda t: t.name, overflow="ellipsis"),
    Column(
        "PARAMS", lambda t: " ".join(f"{k}={v}" for k, v in sorted(t.params.items())), overflow="ellipsis"
    ),
]
_REPORTER_COLUMNS = [
    Column("REPORTER", lambda r: r.id),
    Column("TARGET", _target),
    Column("ACTIVE", _flag),
    Column("NAME", lambda r: r.name, overflow="ellipsis"),
]


def _script_text(script: str) -> Text:
    """The script as plain text: each line printable (tabs as spaces), nothing steering the terminal."""
    return Text("\n".join(printable(line.expandtabs(4)) for line in script.splitlines()))


@scenario.command()
@click.argument("scenario_id", metavar="ID")
@project_option
@click.option("--script", "with_script", is_flag=True, help="print the script after the settings")
def show(scenario_id: str, project: str | None, with_script: bool) -> None:
    """A scenario ID: its settings, triggers, reporters and status (running, next run, last
    outcome); with --script, its script too.

    -o json|yaml: {"scenario": Scenario, "status": GetScenarioStatusResponse} in the contract's
    field names (the scenario carries its script whatever --script says).

    \b
    Examples:
      seedbed scenario show nightly
      seedbed scenario show nightly --script
      seedbed scenario show nightly -o json | jq .status.next_run_time
    """
    g = state()
    client = g.client()
    found = find_scenario(client, scenario_id, project).raw
    status = client.get_scenario_status(found.id)

    def render() -> RenderableType:
        described = _describe(found, status)
        if not with_script:
            return described
        return Group(
            described, Text(f"\nscript (revision {found.revision})", style="bold"), _script_text(found.script)
        )

    g.emit({"scenario": found, "status": status}, render)


class _Bytes(click.ParamType[int]):
    """A size in bytes: a whole number, or with K, M or G (powers of 1024; KiB, MiB, GiB too)."""

    name = "bytes"
    _UNITS = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30}

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        found = re.fullmatch(r"\s*(\d+)\s*(?:([kmg])(?:i?b)?)?\s*", str(value), re.IGNORECASE)
        if found is None:
            self.fail(f"{value!r} is not a size: give bytes, or e.g. 512M, 2G", param, ctx)
        return int(found.group(1)) * self._UNITS[(found.group(2) or "").lower()]


def _settings(
    settings_file: str | None,
    timeout: int | None,
    memory: int | None,
    overlap: str | None,
    run_as: str | None,
    inactive: bool,
    max_attempts: int | None,
) -> scenario_pb2.ScenarioSettings:
    """The settings of a new scenario: --settings FILE, then the options over it."""
    import yaml

    settings = scenario_pb2.ScenarioSettings()
    if settings_file:
        text = read_text(settings_file, "the settings file")
        try:
            json_format.ParseDict(yaml.safe_load(text) or {}, settings)
        except (yaml.YAMLError, json_format.ParseError, TypeError, AttributeError) as exc:
            raise CliError(
                f"{settings_file} is not a ScenarioSettings document (the contract's field names, as "
                f"`scenario show -o yaml` prints under scenario.settings): {exc}"
            ) from None
    if timeout is not None:
        settings.timeout_seconds = timeout
    if memory is not None:
        settings.memory_limit_bytes = memory
    if overlap is not None:
        settings.overlap_policy = scenario_pb2.OverlapPolicy.Value(f"OVERLAP_POLICY_{overlap.upper()}")  # type: ignore[assignment]
    if run_as is not None:
        settings.run_as = run_as
    if inactive:
        settings.active = False
    if max_attempts is not None:
        settings.retry_policy.maximum_attempts = max_attempts
    return settings


@scenario.command()
@click.argument("scenario_id", metavar="ID")
@click.option(
    "--script", "script_file", required=True, metavar="FILE", help="the scenario's script (- reads stdin)"
)
@click.option("--name", default="", help="a name for people (default: the id)")
@click.option(
    "--project", metavar="KEY", default="", help=f'the project to create it in (default: "{DEFAULT_PROJECT}")'
)
@click.option(
    "--settings",
    "settings_file",
    metavar="FILE",
    help="settings as YAML or JSON in the contract's field names (triggers, reporters…); the "
    "options below override it",
)
@click.option(
    "--timeout", type=click.IntRange(0, 2**32 - 1), metavar="SECONDS", help="deadline of one attempt"
)
@click.option("--memory-limit", "memory", type=_Bytes(), metavar="SIZE", help="sandbox memory, e.g. 512M")
@click.option(
    "--overlap-policy",
    "overlap",
    type=click.Choice(_OVERLAP, case_sensitive=False),
    help="what a fire does while a run is active (default SKIP)",
)
@click.option("--run-as", metavar="USER", help="the user the runs act as (default: you, the script's author)")
@click.option("--inactive", is_flag=True, help="create it switched off (no scheduled runs)")
@click.option(
    "--max-attempts",
    type=click.IntRange(1, 100),
    metavar="N",
    help="retry a failed attempt up to N attempts in all",
)
@click.option("--validate-only", is_flag=True, help="have the coordinator check everything and write nothing")
def create(
    scenario_id: str,
    script_file: str,
    name: str,
    project: str,
    settings_file: str | None,
    timeout: int | None,
    memory: int | None,
    overlap: str | None,
    run_as: str | None,
    inactive: bool,
    max_attempts: int | None,
    validate_only: bool,
) -> None:
    """Create the scenario ID from a script. An ID already taken is refused (exit 8): change a
    scenario with `scenario edit`, its settings with the other scenario commands, or a folder of
    them with `seedbed apply`.

    -o json|yaml: the contract's Scenario, as created (or, with --validate-only, as it would be).

    \b
    Examples:
      seedbed scenario create nightly --script nightly.py --name "Nightly customers"
      seedbed scenario create nightly --script nightly.py --project shop --timeout 600 --memory-limit 1G
      seedbed scenario create nightly --script nightly.py --settings settings.yaml --validate-only
    """
    script = read_text(script_file, "the script", stdin=True)
    settings = _settings(settings_file, timeout, memory, overlap, run_as, inactive, max_attempts)
    g = state()
    client = g.client()
    try:
        made = client.put_scenario(
            scenario_id,
            script=script,
            name=name,
            settings=settings,
            project_key=project,
            expected_revision=0,
            validate_only=validate_only,
        )
    except ClientError as exc:
        if exc.code.name != "ABORTED":
            raise
        raise CliError(
            f"scenario {scenario_id} already exists: change its script with `seedbed scenario edit "
            f"{scenario_id}`, or delete it first",
            ExitCode.REFUSED,
        ) from None
    verb = "would create" if validate_only else "created"
    tell(made, f"{verb} scenario {made.id} in project {made.project_key} (revision {made.revision})")


def _keep(scenario_id: str, text: str) -> str:
    """Write an edit that could not be saved to a file of its own; its path."""
    safe = re.sub(r"[^A-Za-z0-9_-]", "_", scenario_id)
    handle, path = tempfile.mkstemp(prefix=f"seedbed-{safe}-", suffix=".py", text=True)
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        out.write(text)
    return path


@scenario.command()
@click.argument("scenario_id", metavar="ID")
@project_option
@click.option(
    "--script",
    "script_file",
    metavar="FILE",
    help="save FILE's text instead of opening an editor (after merging a refused edit, or in "
    "scripts; - reads stdin)",
)
def edit(scenario_id: str, project: str | None, script_file: str | None) -> int:
    """Edit the script of scenario ID in $VISUAL or $EDITOR, and save it when the editor closes.

    The save carries the revision that was opened: if someone else changed the scenario
    meanwhile, nothing is written (exit 8), your text is kept in a file the message names, and
    the message says how to merge. Nothing changes when the file is left as it was.

    -o json|yaml: the contract's Scenario as saved.

    \b
    Examples:
      seedbed scenario edit nightly
      EDITOR="code --wait" seedbed scenario edit nightly
      seedbed scenario edit nightly --script merged.py
    """
    if (
        not script_file
        and not sys.stdin.isatty()
        and not (os.environ.get("VISUAL") or os.environ.get("EDITOR"))
    ):
        raise CliError(
            "scenario edit opens an editor on a terminal; without one, set EDITOR or give --script FILE"
        )
    g = state()
    client = g.client()
    found = find_scenario(client, scenario_id, project).raw
    if script_file:
        text: str | None = read_text(script_file, "the script", stdin=True)
    else:
        text = click.edit(found.script, extension=".py", require_save=True)
    if text is None or text == found.script:
        say(f"no change: scenario {found.id} stays at revision {found.revision}", err=True)
        return int(ExitCode.SUCCESS)
    try:
        saved = client.put_scenario(found.id, script=text, expected_revision=found.revision)
    except ClientError as exc:
        kept = script_file if script_file and script_file != "-" else _keep(found.id, text)
        if exc.code.name == "ABORTED":
            message = (
                f"scenario {found.id} was changed by someone else since you opened revision "
                f"{found.revision}: nothing was written\n"
                f"  your text is kept in {kept}\n"
                f"  to merge: `seedbed scenario show {found.id} --script` shows theirs; merge it into "
                f"{kept}, then `seedbed scenario edit {found.id} --script {kept}`"
            )
        else:
            message = (
                f"the coordinator refused the edit of {found.id}: {printable(str(exc))}\n"
                f"  your text is kept in {kept}; fix it, then `seedbed scenario edit {found.id} "
                f"--script {kept}`"
            )
        raise CliError(message, for_status(exc.code)) from None
    tell(saved, f"saved scenario {saved.id} (revision {saved.revision})")
    return int(ExitCode.SUCCESS)


@scenario.command()
@click.argument("scenario_ids", nargs=-1, required=True, metavar="ID...")
@project_option
@click.option("--yes", "-y", is_flag=True, help="do not ask (required off a terminal, e.g. in scripts)")
def delete(scenario_ids: tuple[str, ...], project: str | None, yes: bool) -> int:
    """Delete scenarios (ID...): their script, settings and triggers go; runs already made stay.

    On a terminal (stdin and stderr) it asks first; answering no deletes nothing, says so and exits
    0. Elsewhere (scripts, CI) it refuses without --yes (exit 2).

    -o json|yaml: {"deleted": [scenario ids]}.

    \b
    Examples:
      seedbed scenario delete nightly
      seedbed scenario delete old-a old-b --yes
    """
    why = "scenario delete deletes scenarios"
    check_confirmable(yes, why)
    g = state()
    client = g.client()
    found = [find_scenario(client, scenario_id, project) for scenario_id in scenario_ids]
    names = ", ".join(printable(s.id) for s in found)
    question = f"delete {len(found)} scenario(s): {names}?"
    if not confirm(question, yes=yes, why=why, declined="nothing deleted"):
        return int(ExitCode.SUCCESS)
    deleted = []
    for item in found:
        item.delete()
        deleted.append(item.id)
    tell({"deleted": deleted}, f"deleted {len(deleted)} scenario(s): {', '.join(deleted)}")
    return int(ExitCode.SUCCESS)


for _command in (
    fire,
    runs,
    enable,
    disable,
    set_run_as,
    set_sender,
    add_trigger,
    remove_trigger,
    set_purge_after,
):
    scenario.add_command(_command)

__all__ = ["scenario"]
