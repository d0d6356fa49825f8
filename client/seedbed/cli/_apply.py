"""``seedbed apply DIR`` and ``seedbed pull DIR``: scenarios as code, kept in git.

The folder's format is in ``_scenario_files``, planning and applying in ``_apply_plan``; this module
prints plans (rich) or JSON and YAML (``-o json|yaml``: the changes with their field diffs, what
was applied, the problems or the conflict) and writes folders (``pull``).

``pull`` lists in a scenario's ``templates:`` the project's templates whose id occurs in its script,
and those whose ids occur in these templates' documents (``ref``s), and so on; every template of
the project is written under ``templates/`` all the same. It needs what the coordinator shows role
EDITOR: below it, webhook URLs and header values come as a placeholder, and a folder holding one
would wipe the real value when applied (the coordinator refuses it too). So pull reads everything
first and writes nothing when a scenario it would write carries the placeholder.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.text import Text

from seedbed.api.v1 import scenario_pb2, template_pb2
from seedbed.cli._apply_plan import (
    ApplyConflict,
    ApplyRefused,
    Change,
    Plan,
    PlanRefused,
    apply_plan,
    folder_projects,
    plan_folder,
    validate_plan,
)
from seedbed.cli._context import Globals, SeedbedCommand, state
from seedbed.cli._exits import ExitCode
from seedbed.cli._output import dump, printable
from seedbed.cli._scenario_files import (
    DEFAULT_MAX_SCRIPT_BYTES,
    HIDDEN,
    InvalidFolderError,
    load_folder,
    scenario_document,
    stem,
)
from seedbed.client import Client

_MARKS = {
    "create": ("+", "green"),
    "update": ("~", "yellow"),
    "delete": ("-", "red"),
    "unchanged": ("=", "dim"),
}
# By a unified diff line's first character ("@" starts a hunk header).
_DIFF_STYLES = {"+": "green", "-": "red", "@": "cyan"}


def _line(console: Console, text: str, style: str = "") -> None:
    """One line of the plan, never wrapped (a diff line stays whole in a CI log), as plain text."""
    console.print(Text(printable(text), style=style), soft_wrap=True)


def _err(text: str) -> None:
    """A message on stderr; each of its lines shown without control characters (it may quote the
    coordinator, or a file's content)."""
    click.echo("\n".join(printable(line) for line in text.splitlines()), err=True)


def print_plan(console: Console, plan: Plan) -> None:
    for change in plan.changes:
        mark, style = _MARKS[change.action]
        revision = f" (revision {change.revision})" if change.revision else ""
        source = f", from {change.file}" if change.file else ", no file (--prune)"
        _line(
            console,
            f"{mark} {change.kind} {change.id} [{change.project}]: {change.action}{revision}{source}",
            style,
        )
        if change.action == "unchanged":
            continue
        for item in change.fields:
            old = "" if item.old is None else f"{json.dumps(item.old, ensure_ascii=False)} → "
            _line(console, f"    {item.path}: {old}{json.dumps(item.new, ensure_ascii=False)}")
        for line in change.diff.splitlines():
            _line(console, f"    {line}", _DIFF_STYLES.get(line[:1], ""))
    for project, ids in plan.kept.items():
        _line(
            console,
            f"project {project}: {len(ids)} scenario(s) without a file kept ({', '.join(ids)}); "
            "--prune deletes them",
        )
    if plan.prune:
        _line(
            console, "--prune deletes scenarios only: templates without a file stay (seedbed template delete)"
        )


def _summary(changes: list[Change], *, done: bool = False) -> str:
    words = ("created", "updated", "deleted") if done else ("to create", "to update", "to delete")
    counts = [sum(1 for c in changes if c.action == a) for a in ("create", "update", "delete")]
    text = ", ".join(f"{n} {w}" for n, w in zip(counts, words, strict=True))
    return text if done else f"{text}, {sum(1 for c in changes if c.action == 'unchanged')} unchanged"


# -- apply ------------------------------------------------------------------------------------------


@click.command(cls=SeedbedCommand)
@click.argument("folder", metavar="DIR", type=click.Path(file_okay=False))
@click.option(
    "--dry-run", is_flag=True, help="show the plan and have the coordinator validate it; change nothing"
)
@click.option(
    "--prune",
    is_flag=True,
    help="delete the scenarios of the folder's projects (and --project) that have no file; "
    "templates are never deleted",
)
@click.option("--project", metavar="KEY", help="the project of files that name none (default: default)")
@click.option(
    "--max-script-bytes",
    type=click.IntRange(min=1),
    default=DEFAULT_MAX_SCRIPT_BYTES,
    show_default=True,
    metavar="BYTES",
    help="largest script accepted (the coordinator's SEEDBED_MAX_SCRIPT_BYTES)",
)
def apply(folder: str, dry_run: bool, prune: bool, project: str | None, max_script_bytes: int) -> int:
    """Make the coordinator's scenarios and templates match the folder DIR (one YAML file per
    scenario, its script beside it, templates under templates/), showing the plan first.

    Every file is read and checked, the plan compared with the coordinator, every creation and
    update validated by the coordinator (--dry-run too), and only then the difference applied,
    templates first, each write conditioned on the revision read.

    With -o json|yaml (-o table replaces the old -o text): an object {"dry_run", "result" (applied,
    no changes, dry run, invalid, conflict or refused), "changes": [{"kind", "id", "project",
    "action", "revision", "file", "fields": [{"path", "old", "new"}], "diff"}], "applied": [{"kind",
    "id", "action"}], "problems": [{"file", "key", "message"}], "error"}.

    Exit codes: 0 applied or nothing to do; 2 the folder has problems (every one listed, nothing
    sent); 8 the coordinator refuses changes when validating them (every one listed, nothing
    applied), or a write met a conflict or a refusal: it stops there, what came before stays
    applied ("applied" lists it).

    \b
    Examples:
      seedbed apply scenarios/ --dry-run
      seedbed apply scenarios/ --project shop --prune
      seedbed apply scenarios/ -o json > plan.json
    """
    g = state()
    report: dict[str, Any] = {"dry_run": dry_run, "changes": [], "applied": [], "problems": []}
    code = _apply(g, Path(folder), dry_run, prune, project, max_script_bytes, report)
    if g.output != "table":
        click.echo(dump(report, g.output), nl=False)
    return code


def _apply(
    g: Globals,
    root: Path,
    dry_run: bool,
    prune: bool,
    project: str | None,
    max_script_bytes: int,
    report: dict[str, Any],
) -> ExitCode:
    """The apply command; ``report`` filled in for -o json|yaml."""
    table = g.output == "table"
    try:
        folder = load_folder(
            root, default_project=project or "default", max_script_bytes=max_script_bytes, environ=os.environ
        )
        client = g.client()
        plan = plan_folder(client, folder, projects=folder_projects(folder, project), prune=prune)
        report["changes"] = [c.to_json() for c in plan.changes]
        if table:
            print_plan(g.out, plan)
        # What only the coordinator checks, for every object, before the first write.
        validate_plan(client, plan)
        if not plan.pending or dry_run:
            report["result"] = "dry run" if plan.pending else "no changes"
            if table:
                head = "dry run, nothing applied" if plan.pending else "no changes"
                _line(g.out, f"{head}: {_summary(plan.changes)}")
            return ExitCode.SUCCESS
        done = apply_plan(client, plan)
    except InvalidFolderError as exc:
        report["problems"] = [{"file": p.file, "key": p.key, "message": p.message} for p in exc.problems]
        report["result"] = "invalid"
        if table:
            _err(f"seedbed: nothing applied: {exc}")
        return ExitCode.REFUSED if isinstance(exc, PlanRefused) else ExitCode.USAGE
    except (ApplyConflict, ApplyRefused) as exc:
        report["result"] = "conflict" if isinstance(exc, ApplyConflict) else "refused"
        report["error"] = str(exc)
        report["applied"] = [{"kind": c.kind, "id": c.id, "action": c.action} for c in exc.applied]
        if table:
            applied = f" (applied before it: {_summary(exc.applied, done=True)})" if exc.applied else ""
            _err(f"seedbed: {exc}{applied}")
        return ExitCode.REFUSED
    report["applied"] = [{"kind": c.kind, "id": c.id, "action": c.action} for c in done]
    report["result"] = "applied"
    if table:
        _line(g.out, f"applied: {_summary(done, done=True)}")
    return ExitCode.SUCCESS


# -- pull -------------------------------------------------------------------------------------------


@click.command(cls=SeedbedCommand)
@click.argument("folder", metavar="DIR", type=click.Path())
@click.option(
    "--project", "projects", metavar="KEY", multiple=True, help="project key, repeatable (default: default)"
)
@click.option(
    "--force",
    is_flag=True,
    help="write into a folder that is not empty (its files of the same name are replaced)",
)
def pull(folder: str, projects: tuple[str, ...], force: bool) -> int:
    """Write the scenarios and templates of the project(s) into the folder DIR, for apply and git:
    one YAML file per scenario with its script beside it, the project's templates under templates/.

    Webhook header values are written as ${stored} and signing secrets are left out: secrets do not
    belong in git. Below role EDITOR the coordinator hides webhook URLs and header values, and a
    folder holding its placeholder would wipe the real values when applied: so pull reads
    everything first, and writes nothing when a scenario carries one (exit 6, naming them).
    Exit 2 when DIR is a file, or a folder that is not empty (without --force). With -o json|yaml:
    an object {"folder", "files": [paths relative to DIR]}.

    \b
    Examples:
      seedbed pull scenarios/
      seedbed pull scenarios/ --project shop --project billing --force
    """
    g = state()
    root = Path(folder)
    if root.exists() and not root.is_dir():
        _err(f"seedbed: {root} is not a folder")
        return ExitCode.USAGE
    if root.is_dir() and any(root.iterdir()) and not force:
        _err(f"seedbed: {root} is not empty: pull into an empty folder, or --force to overwrite")
        return ExitCode.USAGE
    files: dict[str, str] = {}
    hidden: list[str] = []
    client = g.client()
    for key in projects or ("default",):
        project_files, project_hidden = _project_files(client, key)
        files.update(project_files)
        hidden += project_hidden
    if hidden:
        _err(
            "seedbed: nothing pulled: the coordinator hides webhook URLs and header values from "
            "callers below role EDITOR, and a folder holding its placeholder would replace the real "
            "values when applied. pull needs role EDITOR in the project of:\n"
            + "\n".join(f"  {line}" for line in hidden)
        )
        return ExitCode.PERMISSION_DENIED
    for relative, text in files.items():
        _write(root / relative, text)
    g.emit(
        {"folder": str(root), "files": sorted(files)},
        lambda: Text(f"wrote {len(files)} file(s) to {printable(str(root))}"),
    )
    return ExitCode.SUCCESS


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
