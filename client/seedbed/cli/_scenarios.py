"""``seedbed scenario …``: list, show and change scenarios through the client's scenario API.

Switching scenarios off for a while and back on: ``scenario disable --all --save-state F`` writes
which scenarios were active to F (JSON: project and ids); ``scenario enable --from-state F`` turns on
exactly those, leaving alone the ones that were already off before.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any

from google.protobuf.json_format import MessageToDict

from seedbed.client import Client, Project, Scenario, ScenarioListItem, ScenarioSettings, ScenarioStatus

EXIT_USAGE = 2


def connect(args: argparse.Namespace) -> Client:
    """A client for the command's coordinator, with its API key when the command line gave one
    (else the client reads SEEDBED_API_KEY)."""
    api_key = getattr(args, "api_key", None)
    return Client(args.address, api_key=api_key or None)


def dump(document: Any) -> None:
    print(json.dumps(document, indent=2, default=_json_default))


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S %Z") if value is not None else "-"


def usage(message: str) -> int:
    print(f"seedbed: {message}", file=sys.stderr)
    return EXIT_USAGE


def _targets(project: Project, ids: list[str], all_: bool) -> list[Scenario] | None:
    """The scenarios named, or every scenario of the project with --all; None when neither."""
    if all_ and ids:
        return None
    if all_:
        return project.list_scenarios(as_type="objects")
    if not ids:
        return None
    return [project.get_scenario(scenario_id) for scenario_id in ids]


def status_dict(status: ScenarioStatus) -> dict[str, Any]:
    return asdict(status)


# -- reading ------------------------------------------------------------------------------------------


def cmd_list(args: argparse.Namespace) -> int:
    with connect(args) as client:
        project = client.get_project(args.project)
        rows = [(s, s.get_status()) for s in project.list_scenarios(as_type="objects")]
    items = [(ScenarioListItem.of(s.raw), status) for s, status in rows]
    if args.json:
        dump([{**asdict(item), "status": status_dict(status)} for item, status in items])
        return 0
    print(f"{'SCENARIO':<28} {'ACTIVE':<6} {'RUN AS':<16} {'NEXT RUN':<24} {'LAST':<8} NAME")
    for item, status in items:
        print(
            f"{item.id:<28} {'yes' if item.active else 'no':<6} {item.effective_run_as[:16]:<16} "
            f"{when(status.next_run):<24} {status.last_outcome or '-':<8} {item.name}"
        )
    return 0


def _settings_document(settings: ScenarioSettings) -> dict[str, Any]:
    document = MessageToDict(settings.raw, preserving_proto_field_name=True)
    document["active"] = settings.active
    document["overlap_policy"] = settings.overlap_policy
    document["effective_run_as"] = settings.effective_run_as
    return document


def _settings_lines(settings: ScenarioSettings) -> list[str]:
    lines = [
        f"  active            {'yes' if settings.active else 'no'}",
        f"  run as            {settings.effective_run_as}"
        + ("" if settings.run_as else " (the script's last author; run_as unset)"),
        f"  overlap policy    {settings.overlap_policy}",
        f"  timeout           {settings.timeout_seconds or 'operator default'}"
        + (" s" if settings.timeout_seconds else ""),
        f"  memory limit      {settings.memory_limit_bytes or 'operator default'}"
        + (" bytes" if settings.memory_limit_bytes else ""),
    ]
    if settings.retry_policy is not None:
        lines.append(f"  retry policy      {MessageToDict(settings.retry_policy)}")
    lines.append(f"  triggers          {len(settings.raw_triggers) or 'none'}")
    for t in settings.raw_triggers:
        state = "" if not t.HasField("active") or t.active else " (inactive)"
        params = f" params {dict(t.params)}" if t.params else ""
        tz = t.cron.timezone or "UTC"
        lines.append(f"    {t.id:<20} cron {t.cron.expression!r} {tz} {t.name}{state}{params}")
    lines.append(f"  reporters         {len(settings.raw_reporters) or 'none'}")
    for r in settings.raw_reporters:
        if r.HasField("email"):
            target = f"email from {r.email.sender or '(default sender)'} to {', '.join(r.email.recipients)}"
        else:
            target = f"webhook {r.webhook.url}"
        state = "" if not r.HasField("active") or r.active else " (inactive)"
        lines.append(f"    {r.id:<20} {target} {r.name}{state}")
    return lines


def _status_lines(status: ScenarioStatus) -> list[str]:
    running = f"yes: {', '.join(status.current_run_ids)}" if status.running else "no"
    lines = [f"  running           {running}"]
    if status.queued_fire_ids:
        lines.append(f"  queued fires      {', '.join(status.queued_fire_ids)}")
    next_run = when(status.next_run)
    if status.next_run is not None:
        next_run += f" (trigger {status.next_run_trigger_id})"
    lines.append(f"  next run          {next_run}")
    last = f"{status.last_outcome} ({status.last_run_id}, ended {when(status.last_end_time)})"
    lines.append(f"  last outcome      {last if status.last_run_id else '-'}")
    return lines


def cmd_show(args: argparse.Namespace) -> int:
    with connect(args) as client:
        scenario = client.get_project(args.project).get_scenario(args.scenario_id)
        settings = scenario.get_settings()
        status = scenario.get_status()
    raw = scenario.raw
    if args.json:
        dump(
            {"scenario": MessageToDict(raw, preserving_proto_field_name=True), "status": status_dict(status)}
        )
        return 0
    print(f"scenario {raw.id}  {raw.name}")
    print(f"  project {raw.project_key}, revision {raw.revision}, last modified by {raw.last_modified_by}")
    print("\n".join(_settings_lines(settings) + _status_lines(status)))
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    with connect(args) as client:
        status = client.get_project(args.project).get_scenario(args.scenario_id).get_status()
    if args.json:
        dump(status_dict(status))
    else:
        print(f"scenario {status.scenario_id}")
        print("\n".join(_status_lines(status)))
    return 0


def cmd_settings(args: argparse.Namespace) -> int:
    with connect(args) as client:
        settings = client.get_project(args.project).get_scenario(args.scenario_id).get_settings()
    if args.json:
        dump(_settings_document(settings))
    else:
        print(f"scenario {settings.scenario_id}")
        print("\n".join(_settings_lines(settings)))
    return 0


# -- changing -----------------------------------------------------------------------------------------


def _set_active(scenarios: Iterable[Scenario], active: bool) -> tuple[list[str], list[str]]:
    """Switch each scenario on or off; (changed, were_active) ids."""
    changed, were_active = [], []
    for scenario in scenarios:
        settings = scenario.get_settings()
        if settings.active:
            were_active.append(scenario.id)
        if settings.active != active:
            settings.active = active
            settings.save()
            changed.append(scenario.id)
    return changed, were_active


def cmd_disable(args: argparse.Namespace) -> int:
    with connect(args) as client:
        project = client.get_project(args.project)
        scenarios = _targets(project, args.scenario_ids, args.all)
        if scenarios is None:
            return usage("scenario disable takes scenario ids, or --all (not both)")
        if args.save_state:
            # Written before anything changes: a failure partway still leaves the record of what to
            # re-enable.
            active_now = [s.id for s in scenarios if s.get_settings().active]
            state = {"project": project.key, "active": active_now}
            Path(args.save_state).write_text(json.dumps(state, indent=2) + "\n")
        changed, were_active = _set_active(scenarios, False)
    if args.json:
        dump({"project": project.key, "disabled": changed, "were_active": were_active})
    else:
        print(f"disabled {len(changed)} scenario(s): {', '.join(changed) or 'none'}")
        if args.save_state:
            print(
                f"the ones that were active are listed in {args.save_state}: enable --from-state to restore"
            )
    return 0


def cmd_enable(args: argparse.Namespace) -> int:
    ids = list(args.scenario_ids)
    project_key = args.project
    if args.from_state:
        try:
            state = json.loads(Path(args.from_state).read_text())
            ids += list(state["active"])
            project_key = state.get("project", project_key)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            return usage(f"cannot read the state file {args.from_state}: {exc}")
    with connect(args) as client:
        project = client.get_project(project_key)
        scenarios = _targets(project, ids, args.all)
        if scenarios is None and not args.from_state:
            return usage("scenario enable takes scenario ids, --all, or --from-state FILE")
        changed, _ = _set_active(scenarios or [], True)
    if args.json:
        dump({"project": project.key, "enabled": changed})
    else:
        print(f"enabled {len(changed)} scenario(s): {', '.join(changed) or 'none'}")
    return 0


def cmd_set_run_as(args: argparse.Namespace) -> int:
    """``IDS --user U`` sets run_as of the scenarios named; ``--from-user U1 --to-user U2``
    moves every scenario whose effective run-as is U1 (of the ones named, or of the project)."""
    if bool(args.user) == bool(args.from_user or args.to_user):
        return usage("scenario set-run-as takes IDS --user U, or --from-user U1 --to-user U2")
    if bool(args.from_user) != bool(args.to_user):
        return usage("--from-user and --to-user go together")
    if args.user and not args.scenario_ids:
        return usage("--user needs the ids of the scenarios to change")
    user = args.user or args.to_user
    with connect(args) as client:
        project = client.get_project(args.project)
        scenarios = _targets(project, args.scenario_ids, not args.scenario_ids)
        changed = []
        for scenario in scenarios or []:
            settings = scenario.get_settings()
            if args.from_user and settings.effective_run_as != args.from_user:
                continue
            settings.run_as = user
            settings.save()
            changed.append(scenario.id)
    if args.json:
        dump({"project": project.key, "run_as": user, "changed": changed})
    else:
        print(f"{len(changed)} scenario(s) now run as {user}: {', '.join(changed) or 'none'}")
    return 0


def _hh_mm(text: str) -> tuple[int, int]:
    hour, sep, minute = text.partition(":")
    if not sep or not hour.isdigit() or not minute.isdigit():
        raise ValueError(f"expected HH:MM, got {text!r}")
    return int(hour), int(minute)


def cmd_add_trigger(args: argparse.Namespace) -> int:
    from seedbed.cli._main import _parse_params

    options = {"timezone": args.timezone, "name": args.name, "params": _parse_params(args.param)}
    if args.id:
        options["trigger_id"] = args.id
    with connect(args) as client:
        scenario = client.get_project(args.project).get_scenario(args.scenario_id)
        settings = scenario.get_settings()
        try:
            if args.cron:
                trigger = settings.add_cron_trigger(args.cron, **options)
            elif args.daily:
                hour, minute = _hh_mm(args.daily)
                trigger = settings.add_daily_trigger(hour, minute, **options)
            elif args.hourly is not None:
                trigger = settings.add_hourly_trigger(args.hourly, **options)
            elif args.monthly:
                hour, minute = _hh_mm(args.monthly[1])
                trigger = settings.add_monthly_trigger(int(args.monthly[0]), hour, minute, **options)
            else:
                trigger = settings.add_periodic_trigger(args.every_minutes, **options)
        except ValueError as exc:
            return usage(str(exc))
        settings.save()
        added = settings.raw_triggers[-1]
        status = scenario.get_status()
    if args.json:
        document = MessageToDict(added, preserving_proto_field_name=True)
        dump({"trigger": document, "next_run": status.next_run})
    else:
        print(f"added trigger {added.id} (cron {trigger.cron.expression!r} {trigger.cron.timezone})")
        print(f"next run: {when(status.next_run)}")
    return 0


def cmd_remove_trigger(args: argparse.Namespace) -> int:
    with connect(args) as client:
        settings = client.get_project(args.project).get_scenario(args.scenario_id).get_settings()
        try:
            removed = settings.remove_trigger(args.trigger_id)
        except KeyError as exc:
            return usage(str(exc.args[0]))
        settings.save()
    if args.json:
        dump({"removed": MessageToDict(removed, preserving_proto_field_name=True)})
    else:
        print(f"removed trigger {removed.id} from {settings.scenario_id}")
    return 0


def cmd_set_sender(args: argparse.Namespace) -> int:
    with connect(args) as client:
        project = client.get_project(args.project)
        scenarios = _targets(project, args.scenario_ids, args.all)
        if scenarios is None:
            return usage("scenario set-sender takes scenario ids, or --all (not both)")
        changed: dict[str, int] = {}
        for scenario in scenarios:
            settings = scenario.get_settings()
            count = settings.set_email_sender(args.sender)
            if count:
                settings.save()
                changed[scenario.id] = count
    if args.json:
        dump({"sender": args.sender, "changed": changed})
    else:
        total = sum(changed.values())
        print(f"{total} e-mail reporter(s) in {len(changed)} scenario(s) now send from {args.sender}")
    return 0


# -- parser -------------------------------------------------------------------------------------------


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--project", default="default", help="project key (default: %(default)s)")
    p.add_argument("--json", action="store_true", help="print JSON for scripts")


def register(sub: Any) -> None:
    from seedbed.cli._scenario_runs import register_scenario_runs

    p = sub.add_parser("scenario", help="list, show, change and fire scenarios (the scenario API)")
    ssub = p.add_subparsers(dest="scenario_command", required=True)

    c = ssub.add_parser("list", help="scenarios with their active flag, effective run-as and next run")
    _common(c)
    c.set_defaults(func=cmd_list)
    for name, func, text in (
        ("show", cmd_show, "a scenario: settings and status"),
        ("status", cmd_status, "running or not, next run, last outcome"),
        ("settings", cmd_settings, "a scenario's settings (triggers, reporters, run-as, limits)"),
    ):
        c = ssub.add_parser(name, help=text)
        c.add_argument("scenario_id")
        _common(c)
        c.set_defaults(func=func)

    c = ssub.add_parser("disable", help="switch scenarios off (they refuse fires)")
    c.add_argument("scenario_ids", nargs="*", metavar="ID")
    c.add_argument("--all", action="store_true", help="every scenario of the project")
    c.add_argument("--save-state", metavar="FILE", help="write which scenarios were active to FILE")
    _common(c)
    c.set_defaults(func=cmd_disable)

    c = ssub.add_parser("enable", help="switch scenarios on")
    c.add_argument("scenario_ids", nargs="*", metavar="ID")
    c.add_argument("--all", action="store_true", help="every scenario of the project")
    c.add_argument("--from-state", metavar="FILE", help="the ones `disable --save-state FILE` recorded")
    _common(c)
    c.set_defaults(func=cmd_enable)

    c = ssub.add_parser(
        "set-run-as",
        help="the user scenarios run as: IDS --user U, or --from-user U1 --to-user U2 (needs admin)",
    )
    c.add_argument("scenario_ids", nargs="*", metavar="ID")
    c.add_argument("--user", help="run the scenarios named as this user")
    c.add_argument("--from-user", help="every scenario whose effective run-as is this user…")
    c.add_argument("--to-user", help="…runs as this user instead")
    _common(c)
    c.set_defaults(func=cmd_set_run_as)

    c = ssub.add_parser("add-trigger", help="add a schedule (cron in a time zone)")
    c.add_argument("scenario_id")
    kind = c.add_mutually_exclusive_group(required=True)
    kind.add_argument("--cron", metavar="EXPR", help='five fields, e.g. "30 2 * * 1-5"')
    kind.add_argument("--daily", metavar="HH:MM")
    kind.add_argument("--hourly", metavar="MM", type=int)
    kind.add_argument("--monthly", nargs=2, metavar=("DAY", "HH:MM"))
    kind.add_argument("--every-minutes", metavar="N", type=int, help="a divisor of 60, or whole hours")
    c.add_argument("--timezone", default="UTC", help="IANA name (default: %(default)s)")
    c.add_argument("--name", default="")
    c.add_argument("--id", default="", help="the trigger's id (generated when empty)")
    c.add_argument("--param", "-p", action="append", default=[], metavar="KEY=VALUE")
    _common(c)
    c.set_defaults(func=cmd_add_trigger)

    c = ssub.add_parser("remove-trigger", help="remove a trigger (by id or name)")
    c.add_argument("scenario_id")
    c.add_argument("trigger_id", metavar="TRIGGER")
    _common(c)
    c.set_defaults(func=cmd_remove_trigger)

    c = ssub.add_parser("set-sender", help="the From address of e-mail reporters")
    c.add_argument("scenario_ids", nargs="*", metavar="ID")
    c.add_argument("--sender", required=True, help='e.g. "Seedbed <seedbed@example.com>"')
    c.add_argument("--all", action="store_true", help="every scenario of the project")
    _common(c)
    c.set_defaults(func=cmd_set_sender)

    register_scenario_runs(ssub, _common)
