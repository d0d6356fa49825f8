"""``seedbed apply DIR`` and ``seedbed pull DIR``: scenarios as code, kept in git.

The folder's format is in ``_scenario_files``, planning and applying in ``_apply_plan``; this module
prints plans (rich) or JSON (``-o json``: the changes with their field diffs, what was applied, the
problems or the conflict) and writes folders (``pull``).

``pull`` lists in a scenario's ``templates:`` the project's templates whose id occurs in its script,
and those whose ids occur in these templates' documents (``ref``s), and so on; every template of
the project is written under ``templates/`` all the same. It needs what the coordinator shows role
EDITOR: below it, webhook URLs and header values come as a placeholder, and a folder holding one
would wipe the real value when applied (the coordinator refuses it too). So pull reads everything
first and writes nothing when a scenario it would write carries the placeholder.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.text import Text

from seedbed.api.v1 import scenario_pb2, template_pb2
from seedbed.cli._apply_plan import (
    ApplyConflict,
    ApplyRefused,
    Change,
    Plan,
    apply_plan,
    folder_projects,
    plan_folder,
    validate_plan,
)
from seedbed.cli._scenario_files import (
    DEFAULT_MAX_SCRIPT_BYTES,
    HIDDEN,
    InvalidFolderError,
    load_folder,
    scenario_document,
    stem,
)
from seedbed.cli._scenarios import connect
from seedbed.client import Client

EXIT_OK = 0
EXIT_FAILED = 1  # a conflict, or the coordinator refused a write: what came before it stays applied
# The folder or the command line is wrong, or the coordinator refuses a change it validates (or,
# for pull, hides values from the caller): nothing was applied (written).
EXIT_INVALID = 2


# -- commands ---------------------------------------------------------------------------------------


def _console() -> Console:
    return Console(file=sys.stdout, highlight=False, soft_wrap=True)


_MARKS = {
    "create": ("+", "green"),
    "update": ("~", "yellow"),
    "delete": ("-", "red"),
    "unchanged": ("=", "dim"),
}
# By a unified diff line's first character ("@" starts a hunk header).
_DIFF_STYLES = {"+": "green", "-": "red", "@": "cyan"}


def print_plan(console: Console, plan: Plan) -> None:
    for change in plan.changes:
        mark, style = _MARKS[change.action]
        revision = f" (revision {change.revision})" if change.revision else ""
        source = f", from {change.file}" if change.file else ", no file (--prune)"
        console.print(
            Text(
                f"{mark} {change.kind} {change.id} [{change.project}]: {change.action}{revision}{source}",
                style=style,
            )
        )
        if change.action == "unchanged":
            continue
        for item in change.fields:
            old = "" if item.old is None else f"{json.dumps(item.old, ensure_ascii=False)} → "
            console.print(Text(f"    {item.path}: {old}{json.dumps(item.new, ensure_ascii=False)}"))
        for line in change.diff.splitlines():
            console.print(Text(f"    {line}", style=_DIFF_STYLES.get(line[:1], "")))
    for project, ids in plan.kept.items():
        console.print(
            Text(
                f"project {project}: {len(ids)} scenario(s) without a file kept ({', '.join(ids)}); "
                "--prune deletes them"
            )
        )
    if plan.prune:
        console.print(
            Text("--prune deletes scenarios only: templates without a file stay (seedbed template rm)")
        )


def _summary(changes: list[Change], *, done: bool = False) -> str:
    words = ("created", "updated", "deleted") if done else ("to create", "to update", "to delete")
    counts = [sum(1 for c in changes if c.action == a) for a in ("create", "update", "delete")]
    text = ", ".join(f"{n} {w}" for n, w in zip(counts, words, strict=True))
    return text if done else f"{text}, {sum(1 for c in changes if c.action == 'unchanged')} unchanged"


def cmd_apply(args: argparse.Namespace) -> int:
    as_json = args.output == "json"
    console = _console()
    report: dict[str, Any] = {"dry_run": args.dry_run, "changes": [], "applied": [], "problems": []}
    code = _apply(args, console, report, as_json)
    if as_json:
        print(json.dumps(report, indent=2, ensure_ascii=False))
    return code


def _apply(args: argparse.Namespace, console: Console, report: dict[str, Any], as_json: bool) -> int:
    """The apply command; ``report`` filled in for ``-o json``."""
    try:
        folder = load_folder(
            Path(args.dir),
            default_project=args.project or "default",
            max_script_bytes=args.max_script_bytes,
            environ=os.environ,
        )
        with connect(args) as client:
            plan = plan_folder(
                client, folder, projects=folder_projects(folder, args.project), prune=args.prune
            )
            report["changes"] = [c.to_json() for c in plan.changes]
            if not as_json:
                print_plan(console, plan)
            # What only the coordinator checks, for every object, before the first write.
            validate_plan(client, plan)
            if not plan.pending or args.dry_run:
                report["result"] = "dry run" if plan.pending else "no changes"
                if not as_json:
                    head = "dry run, nothing applied" if plan.pending else "no changes"
                    console.print(f"{head}: {_summary(plan.changes)}")
                return EXIT_OK
            done = apply_plan(client, plan)
    except InvalidFolderError as exc:
        report["problems"] = [{"file": p.file, "key": p.key, "message": p.message} for p in exc.problems]
        report["result"] = "invalid"
        if not as_json:
            print(f"seedbed: nothing applied: {exc}", file=sys.stderr)
        return EXIT_INVALID
    except (ApplyConflict, ApplyRefused) as exc:
        report["result"] = "conflict" if isinstance(exc, ApplyConflict) else "refused"
        report["error"] = str(exc)
        report["applied"] = [{"kind": c.kind, "id": c.id, "action": c.action} for c in exc.applied]
        if not as_json:
            applied = f" (applied before it: {_summary(exc.applied, done=True)})" if exc.applied else ""
            print(f"seedbed: {exc}{applied}", file=sys.stderr)
        return EXIT_FAILED
    report["applied"] = [{"kind": c.kind, "id": c.id, "action": c.action} for c in done]
    report["result"] = "applied"
    if not as_json:
        console.print(f"applied: {_summary(done, done=True)}")
    return EXIT_OK


# -- pull -------------------------------------------------------------------------------------------


def cmd_pull(args: argparse.Namespace) -> int:
    root = Path(args.dir)
    if root.exists() and not root.is_dir():
        print(f"seedbed: {root} is not a folder", file=sys.stderr)
        return EXIT_INVALID
    if root.is_dir() and any(root.iterdir()) and not args.force:
        print(
            f"seedbed: {root} is not empty: pull into an empty folder, or --force to overwrite",
            file=sys.stderr,
        )
        return EXIT_INVALID
    projects = args.project or ["default"]
    files: dict[str, str] = {}
    hidden: list[str] = []
    with connect(args) as client:
        for key in projects:
            project_files, project_hidden = _project_files(client, key)
            files.update(project_files)
            hidden += project_hidden
    if hidden:
        print(
            "seedbed: nothing pulled: the coordinator hides webhook URLs and header values from "
            "callers below role EDITOR, and a folder holding its placeholder would replace the real "
            "values when applied. pull needs role EDITOR in the project of:\n"
            + "\n".join(f"  {line}" for line in hidden),
            file=sys.stderr,
        )
        return EXIT_INVALID
    for relative, text in files.items():
        _write(root / relative, text)
    print(f"wrote {len(files)} file(s) to {root}")
    return EXIT_OK


def _project_files(client: Client, key: str) -> tuple[dict[str, str], list[str]]:
    """The files of a project's templates and scenarios by path, and the scenarios that carry the
    coordinator's placeholder for a hidden value (which must not be written)."""
    templates = [t for t in client.list_templates(key) if t.project_key == key]
    scenarios = [s for s in client.list_scenarios(key) if s.project_key == key]
    files: dict[str, str] = {}
    names: dict[str, str] = {}
    for template in templates:
        suffix = ".json" if template.format == template_pb2.TEMPLATE_FORMAT_JSON else ".yaml"
        names[template.id] = f"templates/{stem(template.id, 'tmpl_')}{suffix}"
        files[names[template.id]] = template.source
    sources = {t.id: t.source for t in templates}
    hidden = []
    for scenario in scenarios:
        if _carries_placeholder(scenario):
            hidden.append(f"scenario {scenario.id} (project {key})")
            continue
        name = stem(scenario.id, "scn_")
        used = _used_templates(scenario.script, sources)
        files[f"{name}.py"] = scenario.script
        files[f"{name}.yaml"] = scenario_document(scenario, f"{name}.py", [names[t] for t in used])
    return files, hidden


def _carries_placeholder(scenario: scenario_pb2.Scenario) -> bool:
    for reporter in scenario.settings.reporters:
        if not reporter.HasField("webhook"):
            continue
        hook = reporter.webhook
        if any(HIDDEN in value for value in (hook.url, hook.signing_secret, *hook.headers.values())):
            return True
    return False


def _used_templates(script: str, sources: dict[str, str]) -> list[str]:
    """Templates whose id occurs in the script, and those their documents name, and so on."""
    found: list[str] = []
    texts = [script]
    while texts:
        text = texts.pop()
        for template_id in sorted(sources):
            if template_id not in found and re.search(
                rf"(?<![a-z0-9_-]){re.escape(template_id)}(?![a-z0-9_-])", text
            ):
                found.append(template_id)
                texts.append(sources[template_id])
    return sorted(found)


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode())


# -- parser -----------------------------------------------------------------------------------------


def register(sub: Any) -> None:
    p = sub.add_parser(
        "apply",
        help="make the coordinator's scenarios match a folder of scenario files (shows the diff first)",
        description="Read every scenario file of DIR (*.yaml, one per scenario), check them all, compare "
        "them with the coordinator, have it validate every change, and apply the difference. Exit "
        "codes: 0 applied or nothing to do, 1 a conflict or a refused write, 2 invalid files or "
        "changes the coordinator refuses (nothing applied).",
    )
    p.add_argument("dir", metavar="DIR")
    p.add_argument("--dry-run", action="store_true", help="show the plan, change nothing")
    p.add_argument(
        "--prune",
        action="store_true",
        help="delete the scenarios of the folder's projects (and --project) that have no file; "
        "templates are never deleted",
    )
    p.add_argument("--project", help="the project of files that name none (default: default)")
    p.add_argument(
        "-o", "--output", choices=("text", "json"), default="text", help="json: the plan and result"
    )
    p.add_argument(
        "--max-script-bytes",
        type=int,
        default=DEFAULT_MAX_SCRIPT_BYTES,
        help="largest script accepted (the coordinator's SEEDBED_MAX_SCRIPT_BYTES; default %(default)s)",
    )
    p.set_defaults(func=cmd_apply)

    p = sub.add_parser(
        "pull",
        help="write the scenarios and templates of a project into a folder, for apply and git",
        description="Write one YAML file per scenario of the project(s) with its script beside it, and "
        "the project's templates under templates/. Webhook header values are written as ${stored} "
        "and signing secrets are left out: secrets do not belong in git. Needs role EDITOR in a "
        "project whose scenarios have webhook reporters (below it their URLs are hidden): nothing "
        "is written otherwise (exit code 2).",
    )
    p.add_argument("dir", metavar="DIR")
    p.add_argument("--project", action="append", help="project key, repeatable (default: default)")
    p.add_argument("--force", action="store_true", help="write into a folder that is not empty")
    p.set_defaults(func=cmd_pull)
