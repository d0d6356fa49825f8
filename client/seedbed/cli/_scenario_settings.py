"""``seedbed scenario enable|disable|set-run-as|set-sender|add-trigger|remove-trigger``: change
scenarios' settings through the client's settings objects.

Switching scenarios off for a while and back on: ``scenario disable --all --save-state FILE`` writes
which scenarios were active to FILE (JSON: ``{"project": KEY, "active": [ids]}``) before changing
anything; ``scenario enable --from-state FILE`` turns on exactly those, leaving alone the ones that
were already off before.

These commands answer what they changed rather than a contract message; each one's help gives the
JSON shape.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path
from typing import Any

import click

from seedbed.cli._catalog_options import tell
from seedbed.cli._context import CliError, SeedbedCommand, state
from seedbed.cli._exits import ExitCode
from seedbed.cli._input import read_text
from seedbed.cli._output import printable, when
from seedbed.cli._scenario_options import (
    DEFAULT_PROJECT,
    check_targets,
    find_scenario,
    params_option,
    project_option,
    targets,
)
from seedbed.client import Scenario


def _set_active(scenarios: Iterable[Scenario], active: bool) -> tuple[list[str], list[str]]:
    """Switch each scenario on or off; (changed, were_active) ids."""
    changed, were_active = [], []
    for item in scenarios:
        settings = item.get_settings()
        if settings.active:
            were_active.append(item.id)
        if settings.active != active:
            settings.active = active
            settings.save()
            changed.append(item.id)
    return changed, were_active


_ALL = "every scenario of the project (--project, default: default)"


@click.command(cls=SeedbedCommand)
@click.argument("scenario_ids", nargs=-1, metavar="ID...")
@click.option("--all", "all_", is_flag=True, help=_ALL)
@click.option(
    "--save-state",
    metavar="FILE",
    help="first write which scenarios are active to FILE, for `scenario enable --from-state FILE`",
)
@project_option
def disable(scenario_ids: tuple[str, ...], all_: bool, save_state: str | None, project: str | None) -> None:
    """Switch scenarios off (ID... or --all): their triggers stop firing; explicit runs still
    run unless the scenario sets refuse_runs_when_inactive.

    -o json|yaml: {"project": KEY, "disabled": [ids changed], "were_active": [ids]}.

    \b
    Examples:
      seedbed scenario disable nightly
      seedbed scenario disable --all --save-state active.json   # before maintenance
    """
    check_targets(scenario_ids, all_, "scenario disable")
    g = state()
    scenarios = targets(g.client(), scenario_ids, all_, project)
    key = project or DEFAULT_PROJECT
    if save_state:
        # Written before anything changes: a failure partway still leaves the record of what to
        # switch back on.
        active_now = [s.id for s in scenarios if s.get_settings().active]
        document = {"project": key, "active": active_now}
        try:
            Path(save_state).write_text(json.dumps(document, indent=2) + "\n")
        except OSError as exc:
            raise CliError(f"cannot write the state file {save_state}: {exc}") from None
    changed, were_active = _set_active(scenarios, False)
    text = f"disabled {len(changed)} scenario(s): {', '.join(changed) or 'none'}"
    if save_state:
        text += (
            f"\nthe ones that were active are listed in {save_state}: "
            f"`scenario enable --from-state {save_state}` restores them"
        )
    tell({"project": key, "disabled": changed, "were_active": were_active}, text)


@click.command(cls=SeedbedCommand)
@click.argument("scenario_ids", nargs=-1, metavar="ID...")
@click.option("--all", "all_", is_flag=True, help=_ALL)
@click.option(
    "--from-state", metavar="FILE", help="the scenarios `scenario disable --save-state FILE` recorded"
)
@project_option
def enable(scenario_ids: tuple[str, ...], all_: bool, from_state: str | None, project: str | None) -> None:
    """Switch scenarios on (ID..., --all, or the ones --from-state FILE recorded).

    -o json|yaml: {"project": KEY, "enabled": [ids changed]}.

    \b
    Examples:
      seedbed scenario enable nightly
      seedbed scenario enable --from-state active.json   # after maintenance
    """
    ids = list(scenario_ids)
    if from_state:
        try:
            recorded = json.loads(read_text(from_state, "the state file"))
            ids += [str(i) for i in recorded["active"]]
            project = recorded.get("project", project)
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise CliError(f"cannot read the state file {from_state}: {exc!r}") from None
    elif all_ == bool(ids):
        raise CliError("scenario enable takes scenario ids, --all, or --from-state FILE")
    if all_ and ids:
        raise CliError("scenario enable takes scenario ids or a state file, or --all (not both)")
    g = state()
    # A state file listing nothing (everything was already off) enables nothing.
    scenarios = targets(g.client(), tuple(ids), all_, project) if ids or all_ else []
    changed, _ = _set_active(scenarios, True)
    key = project or DEFAULT_PROJECT
    tell(
        {"project": key, "enabled": changed},
        f"enabled {len(changed)} scenario(s): {', '.join(changed) or 'none'}",
    )


@click.command("set-run-as", cls=SeedbedCommand)
@click.argument("scenario_ids", nargs=-1, metavar="ID...")
@click.option("--user", metavar="USER", help="run the scenarios ID... as this user")
@click.option("--from-user", metavar="USER", help="every scenario whose effective run-as is this user…")
@click.option("--to-user", metavar="USER", help="…runs as this user instead")
@project_option
def set_run_as(
    scenario_ids: tuple[str, ...],
    user: str | None,
    from_user: str | None,
    to_user: str | None,
    project: str | None,
) -> None:
    """Set the user scenarios run as: ID... with --user, or --from-user U1 --to-user U2.

    --from-user U1 --to-user U2 moves every scenario running as U1 (of the ids given, else of the
    project) to U2. Another user than
    yourself needs the admin role in the project.

    -o json|yaml: {"project": KEY, "run_as": USER, "changed": [ids]}.

    \b
    Examples:
      seedbed scenario set-run-as nightly weekly --user svc-seeding
      seedbed scenario set-run-as --from-user alice --to-user bob   # alice is leaving
    """
    if bool(user) == bool(from_user or to_user):
        raise CliError("scenario set-run-as takes ID... --user USER, or --from-user U1 --to-user U2")
    if bool(from_user) != bool(to_user):
        raise CliError("--from-user and --to-user go together")
    if user and not scenario_ids:
        raise CliError("--user needs the ids of the scenarios to change")
    new_user = user or to_user or ""
    g = state()
    changed = []
    for item in targets(g.client(), scenario_ids, not scenario_ids, project):
        settings = item.get_settings()
        if from_user and settings.effective_run_as != from_user:
            continue
        settings.run_as = new_user
        settings.save()
        changed.append(item.id)
    tell(
        {"project": project or DEFAULT_PROJECT, "run_as": new_user, "changed": changed},
        f"{len(changed)} scenario(s) now run as {new_user}: {', '.join(changed) or 'none'}",
    )


@click.command("set-sender", cls=SeedbedCommand)
@click.argument("scenario_ids", nargs=-1, metavar="ID...")
@click.option(
    "--sender",
    required=True,
    metavar="ADDRESS",
    help='the From address, e.g. "Seedbed <seedbed@example.com>"',
)
@click.option("--all", "all_", is_flag=True, help=_ALL)
@project_option
def set_sender(scenario_ids: tuple[str, ...], sender: str, all_: bool, project: str | None) -> None:
    """Set the From address of the e-mail reporters of scenarios (ID... or --all).

    -o json|yaml: {"sender": ADDRESS, "changed": {scenario id: reporters changed}}.

    \b
    Examples:
      seedbed scenario set-sender --sender "Seedbed <seedbed@example.com>" --all
      seedbed scenario set-sender nightly --sender qa@example.com
    """
    check_targets(scenario_ids, all_, "scenario set-sender")
    g = state()
    changed: dict[str, int] = {}
    for item in targets(g.client(), scenario_ids, all_, project):
        settings = item.get_settings()
        count = settings.set_email_sender(sender)
        if count:
            settings.save()
            changed[item.id] = count
    total = sum(changed.values())
    tell(
        {"sender": sender, "changed": changed},
        f"{total} e-mail reporter(s) in {len(changed)} scenario(s) now send from {sender}",
    )


def _time_of_day(text: str, ctx: click.Context, param: click.Parameter) -> tuple[int, int]:
    hour, sep, minute = text.partition(":")
    if not sep or not hour.isdigit() or not minute.isdigit():
        raise click.BadParameter(f"expected HH:MM, got {text!r}", ctx, param)
    return int(hour), int(minute)


def _hh_mm(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[int, int] | None:
    return None if value is None else _time_of_day(value, ctx, param)


def _day_hh_mm(
    ctx: click.Context, param: click.Parameter, value: tuple[str, str] | None
) -> tuple[int, int, int] | None:
    if not value:
        return None
    day, at = value
    if not day.isdigit():
        raise click.BadParameter(f"expected DAY HH:MM, got day {day!r}", ctx, param)
    return (int(day), *_time_of_day(at, ctx, param))


@click.command("add-trigger", cls=SeedbedCommand)
@click.argument("scenario_id", metavar="ID")
@click.option("--cron", metavar="EXPR", help='five cron fields, e.g. "30 2 * * 1-5"')
@click.option("--daily", metavar="HH:MM", callback=_hh_mm, help="every day at this time")
@click.option("--hourly", metavar="MM", type=int, help="every hour at this minute")
@click.option(
    "--monthly",
    nargs=2,
    metavar="DAY HH:MM",
    callback=_day_hh_mm,
    help="on this day of every month, at this time",
)
@click.option(
    "--every-minutes", metavar="N", type=int, help="every N minutes (a divisor of 60, or whole hours)"
)
@click.option("--timezone", default="UTC", show_default=True, help="IANA time zone of the schedule")
@click.option("--name", default="", help="a name for people")
@click.option("--id", "trigger_id", default="", help="the trigger's id (default: generated)")
@params_option("a parameter of the runs this trigger starts (repeatable)")
@project_option
def add_trigger(
    scenario_id: str,
    cron: str | None,
    daily: tuple[int, int] | None,
    hourly: int | None,
    monthly: tuple[int, int, int] | None,
    every_minutes: int | None,
    timezone: str,
    name: str,
    trigger_id: str,
    params: dict[str, str],
    project: str | None,
) -> None:
    """Add a schedule to scenario ID: one of --cron, --daily, --hourly, --monthly, --every-minutes,
    in --timezone (daylight saving time included).

    -o json|yaml: {"trigger": Trigger (the contract's), "next_run_time": RFC 3339 time or null}.

    \b
    Examples:
      seedbed scenario add-trigger nightly --daily 02:30 --timezone Europe/Paris
      seedbed scenario add-trigger nightly --cron "0 6 * * 1-5" -p rows=1000
      seedbed scenario add-trigger nightly --monthly 1 04:00
    """
    given = [x for x in (cron, daily, hourly, monthly, every_minutes) if x is not None]
    if len(given) != 1:
        raise CliError(
            "scenario add-trigger takes one of --cron, --daily, --hourly, --monthly, --every-minutes"
        )
    g = state()
    client = g.client()
    item = find_scenario(client, scenario_id, project)
    settings = item.get_settings()
    options: dict[str, Any] = {"timezone": timezone, "name": name, "params": params, "trigger_id": trigger_id}
    try:
        if cron is not None:
            settings.add_cron_trigger(cron, **options)
        elif daily is not None:
            settings.add_daily_trigger(daily[0], daily[1], **options)
        elif hourly is not None:
            settings.add_hourly_trigger(hourly, **options)
        elif monthly is not None:
            settings.add_monthly_trigger(*monthly, **options)
        elif every_minutes is not None:
            settings.add_periodic_trigger(every_minutes, **options)
    except ValueError as exc:  # checked by the client before anything is sent
        raise CliError(str(exc)) from None
    settings.save()
    added = settings.raw.triggers[-1]  # the message, with the id the coordinator gave it
    status = client.get_scenario_status(item.id)
    next_run = status.next_run_time.ToJsonString() if status.HasField("next_run_time") else None
    tell(
        {"trigger": added, "next_run_time": next_run},
        f"added trigger {added.id} (cron {added.cron.expression} {added.cron.timezone}) to {item.id}\n"
        f"next run: {when(status.next_run_time) or 'none (the scenario is off, or no active trigger)'}",
    )


@click.command("remove-trigger", cls=SeedbedCommand)
@click.argument("scenario_id", metavar="ID")
@click.argument("trigger", metavar="TRIGGER")
@project_option
def remove_trigger(scenario_id: str, trigger: str, project: str | None) -> int:
    """Remove the trigger TRIGGER (its id, or its name) from scenario ID; an unknown one is not
    found (exit 5), and the message lists the scenario's triggers.

    -o json|yaml: {"removed": Trigger (the contract's)}.

    \b
    Examples:
      seedbed scenario remove-trigger nightly trg_01HXYZ
      seedbed scenario remove-trigger nightly "before standup"
    """
    g = state()
    settings = find_scenario(g.client(), scenario_id, project).get_settings()
    try:
        removed = settings.remove_trigger(trigger)
    except KeyError as exc:
        raise CliError(printable(str(exc.args[0])), ExitCode.NOT_FOUND) from None
    settings.save()
    tell({"removed": removed}, f"removed trigger {removed.id} from {settings.scenario_id}")
    return int(ExitCode.SUCCESS)


_DURATION = re.compile(r"(?P<n>\d+)\s*(?P<unit>s|m|h|d)")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86_400}


def _purge_after(text: str) -> timedelta | None:
    """``7d``, ``12h``, ``30m``, ``90s``, or ``never``."""
    if text.strip().lower() == "never":
        return None
    found = _DURATION.fullmatch(text.strip())
    if found is None or int(found["n"]) == 0:
        raise click.BadParameter(f"{text!r} is not a duration such as 7d, 12h, 30m or 90s, nor 'never'")
    return timedelta(seconds=int(found["n"]) * _SECONDS[found["unit"]])


@click.command("set-purge-after", cls=SeedbedCommand)
@click.argument("scenario_ids", nargs=-1, metavar="ID...")
@click.option(
    "--after",
    "after",
    required=True,
    metavar="DURATION",
    help="7d, 12h, 30m, 90s: purge each run this long after it ended; never: keep runs",
)
@project_option
def set_purge_after(scenario_ids: tuple[str, ...], after: str, project: str | None) -> None:
    """Set how long after a run ends the coordinator purges it, for each scenario ID... (its
    periodic purge pass: rows deleted or put back, REST resources and files removed, as `seedbed run
    purge` does; listed by `seedbed run purges`). Applies to the runs already there too.

    -o json|yaml: {"project": KEY, "purge_after_seconds": N (0: never), "changed": [ids]}.

    \b
    Examples:
      seedbed scenario set-purge-after nightly --after 7d
      seedbed scenario set-purge-after nightly --after never
    """
    if not scenario_ids:
        raise CliError("scenario set-purge-after needs the ids of the scenarios to change")
    value = _purge_after(after)
    g = state()
    changed = []
    for item in targets(g.client(), scenario_ids, False, project):
        settings = item.get_settings()
        if settings.purge_after != value:
            settings.purge_after = value
            settings.save()
            changed.append(item.id)
    seconds = int(value.total_seconds()) if value is not None else 0
    text = f"purge after {after}: {len(changed)} scenario(s) changed: {', '.join(changed) or 'none'}"
    tell({"project": project or DEFAULT_PROJECT, "purge_after_seconds": seconds, "changed": changed}, text)


__all__ = [
    "add_trigger",
    "disable",
    "enable",
    "remove_trigger",
    "set_purge_after",
    "set_run_as",
    "set_sender",
]
