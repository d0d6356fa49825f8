"""What ``seedbed apply DIR`` does, without the printing: plan a folder against the coordinator, then
apply the plan.

The folder's format and its checks are in ``_scenario_files``. An apply goes in four steps, each
done before the next starts:

1. read and check every file; a folder with problems is refused whole, every problem listed, and
   the coordinator is not even asked;
2. plan: read each scenario and template from the coordinator, keep the revision read, compare:
   create, update (the fields that change, a unified diff of the script), unchanged, and with
   ``--prune`` delete (scenarios of the folder's projects that have no file; never templates);
3. validate (``--dry-run`` too): every creation and update is sent with ``validate_only``, so what
   only the coordinator checks (webhook egress rules, cron expressions, ``run_as``, roles, a
   template's document) is found before anything is written; every refusal is listed, as the
   problems of step 1 are, and nothing is applied. Each object is validated against what the
   coordinator holds, not against the other objects of the same apply: nothing it checks today
   depends on them (a template's ``ref``s are resolved when a run uses them); a check that came to
   depend on a template the same apply creates would be refused here;
4. unless ``--dry-run``: templates, then scenarios (a script never runs before its templates), then
   deletions, each write conditioned on the revision read in step 2 (``expected_revision``; 0 for
   what did not exist). Someone else's change in between makes the coordinator refuse the write
   (ABORTED); the apply stops there with a conflict naming the object, the revision read and the
   one found, and that change survives.

Comparing what the coordinator would store: fields it fills in on save (settings.active, the overlap
policy and retry policy when unset, a retry policy's zero fields, a trigger's or reporter's active
flag, a reporter's events, a kept signing secret) are filled in the same way before comparing, so
a folder just applied or pulled plans no change and ``apply`` writes nothing (no revision moves).

Rejected: applying without showing a plan (nothing to review in CI); one transaction over every
object (the contract has none; each write is atomic and conditional, so a rerun converges, and
step 3 refuses up front what the coordinator would refuse); validating only what the client can
check (a webhook to an internal host stopped the apply halfway, after earlier writes);
deleting templates with ``--prune`` (other projects' scenarios and scripts outside the folder may
use them: deleting one is a separate, explicit ``seedbed template rm``). DeleteScenario takes no
revision: a deletion re-reads the scenario just before and refuses when its revision moved, which
leaves a short window (said in the README).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

import grpc
from google.protobuf.json_format import MessageToDict

from seedbed.api.v1 import run_pb2, scenario_pb2
from seedbed.cli._scenario_files import (
    Folder,
    InvalidFolderError,
    Problem,
    ScenarioFile,
    TemplateFile,
)
from seedbed.client import Client, ClientError

# The contract's defaults for a retry policy's zero fields (scenario.proto, RetryPolicy).
_RETRY_DEFAULTS = {
    "maximum_attempts": 3,
    "initial_backoff_seconds": 1.0,
    "maximum_backoff_seconds": 60.0,
    "backoff_coefficient": 2.0,
    "jitter": 0.2,
}
_RETRY_ON_DEFAULT = (run_pb2.FAILURE_REASON_KILLED, run_pb2.FAILURE_REASON_INFRASTRUCTURE)
_T = TypeVar("_T")


@dataclass(frozen=True)
class FieldChange:
    path: str
    old: Any
    new: Any


@dataclass
class Change:
    """One object of the plan. ``revision``: the one read while planning (0: it did not exist)."""

    kind: Literal["scenario", "template"]
    id: str
    project: str
    action: Literal["create", "update", "unchanged", "delete"]
    revision: int
    file: str = ""
    fields: list[FieldChange] = field(default_factory=list)
    diff: str = ""
    scenario: ScenarioFile | None = None
    template: TemplateFile | None = None
    # What an update or a creation sends (${stored} header values filled in).
    settings: scenario_pb2.ScenarioSettings | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "id": self.id,
            "project": self.project,
            "action": self.action,
            "revision": self.revision,
            "file": self.file,
            "fields": [{"path": f.path, "old": f.old, "new": f.new} for f in self.fields],
            "diff": self.diff,
        }


@dataclass
class Plan:
    changes: list[Change]
    projects: list[str]
    prune: bool
    # Without --prune: per project, the scenarios that have no file (kept).
    kept: dict[str, list[str]] = field(default_factory=dict)

    @property
    def pending(self) -> list[Change]:
        return [c for c in self.changes if c.action != "unchanged"]


# Refusals that are about the connection or the caller, not about one object: not a problem of the
# folder to list, but the error of the whole command (a rate limit included: validating many
# templates spends the caller's template pushes; the message says when to try again).
_SESSION_CODES = (
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.UNAUTHENTICATED,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
)


class PlanRefused(InvalidFolderError):
    """The coordinator refuses creations or updates of the plan when asked to validate them
    (``validate_only``): ``problems``, one per object refused. Nothing was written."""


class ApplyConflict(Exception):
    """Someone else changed ``change``'s object after it was read: ``found`` is its revision now
    (None: it is gone). Nothing was written for it; ``applied``: the changes written before."""

    applied: list[Change]

    def __init__(self, change: Change, found: int | None) -> None:
        self.applied = []
        if found is None:
            now = "it no longer exists"
        elif change.revision == 0:
            now = f"it has been created meanwhile (revision {found})"
        else:
            now = f"it is now at revision {found}"
        read = "absent" if change.revision == 0 else f"revision {change.revision}"
        super().__init__(
            f"conflict: {change.kind} {change.id} was changed by someone else after this apply read it: "
            f"read {read}, but {now}. Nothing was written for it; run apply again to see the new diff"
        )
        self.change = change
        self.found = found


class ApplyRefused(Exception):
    """The coordinator refused ``change`` for another reason than a conflict (``error``);
    ``applied``: the changes written before."""

    applied: list[Change]

    def __init__(self, change: Change, error: ClientError) -> None:
        self.applied = []
        super().__init__(f"the coordinator refused {change.kind} {change.id}: {error}")
        self.change = change
        self.error = error


def _found(call: Callable[[str], _T], ident: str) -> _T | None:
    """The object, or None when the coordinator does not know it."""
    try:
        return call(ident)
    except ClientError as exc:
        if exc.code == grpc.StatusCode.NOT_FOUND:
            return None
        raise


# -- planning ---------------------------------------------------------------------------------------


def folder_projects(folder: Folder, project: str | None) -> dict[str, str]:
    """The projects an apply covers (the files' and ``--project``), each with where it is named."""
    named = {s.project: s.file for s in reversed(folder.scenarios)}
    if project:
        named.setdefault(project, "--project")
    return dict(sorted(named.items()))


def plan_folder(client: Client, folder: Folder, *, projects: dict[str, str], prune: bool) -> Plan:
    """Compare the folder with the coordinator (``projects``: see ``folder_projects``).
    InvalidFolderError for what only the coordinator can tell: a project that does not exist, an id
    another project holds, a ``${stored}`` header with nothing stored."""
    problems: list[Problem] = []
    for key, where in projects.items():
        if _found(client.get_project, key) is None:
            problems.append(
                Problem(where, "project", f"{key!r}: no such project (or you have no role in it)")
            )
    changes = [_template_change(client, t, problems) for t in folder.templates]
    changes += [_scenario_change(client, s, problems) for s in folder.scenarios]
    plan = Plan([c for c in changes if c is not None], list(projects), prune)
    if problems:
        raise InvalidFolderError(problems)
    in_files = {s.id for s in folder.scenarios}
    for key in projects:
        others = [s for s in client.list_scenarios(key) if s.project_key == key and s.id not in in_files]
        if prune:
            plan.changes += [Change("scenario", s.id, key, "delete", s.revision) for s in others]
        elif others:
            plan.kept[key] = [s.id for s in others]
    return plan


def _template_change(client: Client, template: TemplateFile, problems: list[Problem]) -> Change | None:
    current = _found(client.get_template, template.id)
    change = Change("template", template.id, template.project, "create", 0, template.file, template=template)
    if current is None:
        return change
    if current.project_key != template.project:
        problems.append(
            Problem(
                template.file,
                "id",
                f"{template.id} belongs to project {current.project_key!r}, not {template.project!r}: "
                "leave it out of the scenario's templates (its runs can use it when it is shared) or "
                "choose another id",
            )
        )
        return None
    change.revision = current.revision
    if current.source == template.source:
        change.action = "unchanged"
        return change
    change.action = "update"
    change.diff = _unified(
        current.source, template.source, f"{template.id} revision {current.revision}", template.file
    )
    return change


def _scenario_change(client: Client, scenario: ScenarioFile, problems: list[Problem]) -> Change | None:
    current = _found(client.get_scenario, scenario.id)
    change = Change("scenario", scenario.id, scenario.project, "create", 0, scenario.file, scenario=scenario)
    if current is not None and current.project_key != scenario.project:
        problems.append(
            Problem(
                scenario.file,
                "id",
                f"{scenario.id} is a scenario of project {current.project_key!r}, not "
                f"{scenario.project!r}: ids are unique across projects; choose another id",
            )
        )
        return None
    settings = _with_stored_headers(scenario, current, problems)
    change.settings = settings
    if current is None:
        change.fields = [FieldChange("name", None, scenario.name)]
        change.fields += [
            FieldChange(p, *_shown(p, None, v))
            for p, v in _flat(_settings_json(settings), "settings").items()
        ]
        change.fields.append(
            FieldChange("script", None, f"{scenario.script_file}, {_lines(scenario.script)}")
        )
        return change
    change.revision = current.revision
    wanted = _flat(_settings_json(_as_stored(settings, current.settings)), "settings")
    held = _flat(_settings_json(current.settings), "settings")
    if scenario.name != current.name:
        change.fields.append(FieldChange("name", current.name, scenario.name))
    for path in [*wanted, *(p for p in held if p not in wanted)]:
        if wanted.get(path) != held.get(path):
            change.fields.append(FieldChange(path, *_shown(path, held.get(path), wanted.get(path))))
    if scenario.script != current.script:
        change.fields.append(
            FieldChange(
                "script", _lines(current.script), f"{scenario.script_file}, {_lines(scenario.script)}"
            )
        )
        change.diff = _unified(
            current.script,
            scenario.script,
            f"{scenario.id} revision {current.revision}",
            scenario.script_file,
        )
    change.action = "update" if change.fields else "unchanged"
    return change


def _with_stored_headers(
    scenario: ScenarioFile, current: scenario_pb2.Scenario | None, problems: list[Problem]
) -> scenario_pb2.ScenarioSettings:
    """The file's settings with each ``${stored}`` header value replaced by the coordinator's."""
    settings = scenario_pb2.ScenarioSettings()
    settings.CopyFrom(scenario.settings)
    held = {r.id: r for r in current.settings.reporters} if current is not None else {}
    for stored in scenario.stored:
        reporter = held.get(stored.reporter_id)
        value = reporter.webhook.headers.get(stored.header) if reporter is not None else None
        if value is None:
            problems.append(
                Problem(
                    scenario.file,
                    stored.key,
                    "is ${stored}, but the coordinator holds no such header (a new scenario, reporter or "
                    "header): give the value as ${env:NAME}",
                )
            )
            continue
        for reporter_msg in settings.reporters:
            if reporter_msg.id == stored.reporter_id:
                reporter_msg.webhook.headers[stored.header] = value
    return settings


def _as_stored(
    wanted: scenario_pb2.ScenarioSettings, held: scenario_pb2.ScenarioSettings
) -> scenario_pb2.ScenarioSettings:
    """``wanted`` as the coordinator would store it over ``held``: what it fills in on save, filled."""
    out = scenario_pb2.ScenarioSettings()
    out.CopyFrom(wanted)
    if not out.HasField("active"):
        out.active = held.active
    if out.overlap_policy == scenario_pb2.OVERLAP_POLICY_UNSPECIFIED:
        out.overlap_policy = held.overlap_policy
    if not out.HasField("retry_policy"):
        out.retry_policy.CopyFrom(held.retry_policy)
    else:
        policy = out.retry_policy
        for name, default in _RETRY_DEFAULTS.items():
            if not getattr(policy, name):
                setattr(policy, name, default)
        reasons = sorted(set(policy.retry_on) or _RETRY_ON_DEFAULT)
        del policy.retry_on[:]
        policy.retry_on.extend(reasons)
    for trigger in out.triggers:
        if not trigger.HasField("active"):
            trigger.active = True
    secrets = {r.id: r.webhook.signing_secret for r in held.reporters if r.HasField("webhook")}
    for reporter in out.reporters:
        if not reporter.HasField("active"):
            reporter.active = True
        events = list(dict.fromkeys(reporter.events)) or [scenario_pb2.REPORTER_EVENT_RUN_FINISHED]
        del reporter.events[:]
        reporter.events.extend(events)
        if reporter.HasField("webhook") and not reporter.webhook.signing_secret:
            # An empty secret keeps the stored one (a new reporter gets a new one): not a change.
            reporter.webhook.signing_secret = secrets.get(reporter.id, "")
    return out


def _settings_json(settings: scenario_pb2.ScenarioSettings) -> dict[str, Any]:
    return MessageToDict(settings, preserving_proto_field_name=True)


def _flat(value: Any, prefix: str) -> dict[str, Any]:
    """Leaf values by path; list items that have an id are named by it (``triggers[nightly]``)."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_flat(item, f"{prefix}.{key}"))
        return out
    if isinstance(value, list) and value and all(isinstance(i, dict) and "id" in i for i in value):
        out = {}
        for item in value:
            out.update(_flat({k: v for k, v in item.items() if k != "id"}, f"{prefix}[{item['id']}]"))
            out[f"{prefix}[{item['id']}].id"] = item["id"]
        return out
    return {prefix: value}


_SECRET_PATH = re.compile(r"\.headers\.[^.]+$|\.signing_secret$")
_HIDDEN = "(hidden)"


def _shown(path: str, old: Any, new: Any) -> tuple[Any, Any]:
    """What a diff may print of a field going from ``old`` to ``new`` (None: absent): never a header
    value or a signing secret; of a webhook URL, only its scheme, host and port (its path often
    carries a token). Two different values never look the same: the new one then says what changed."""
    if _SECRET_PATH.search(path):
        shown_old = None if old is None else _HIDDEN
        shown_new = None if new is None else _HIDDEN
        if shown_old == shown_new and old != new:
            shown_new = "(hidden, changed)"
        return shown_old, shown_new
    if path.endswith(".webhook.url") and isinstance(old, str | None) and isinstance(new, str | None):
        shown_old = None if old is None else _url_shown(old)
        shown_new = None if new is None else _url_shown(new)
        if old is not None and new is not None and shown_old == shown_new and old != new:
            shown_new = f"{shown_new} ({_url_difference(old, new)} changed)"
        return shown_old, shown_new
    return old, new


def _url_shown(url: str) -> str:
    """``scheme://host[:port]``, and ``/…`` for what follows (path, query, fragment) or precedes
    (user info) it: the parts that may carry a credential are never printed."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:  # e.g. a port that is not a number
        return "(not a valid URL)"
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    base = f"{parts.scheme}://{host}" + ("" if port is None else f":{port}")
    rest = parts.path not in ("", "/") or parts.query or parts.fragment or "@" in parts.netloc
    return f"{base}/…" if rest else f"{base}{parts.path}"


def _url_difference(old: str, new: str) -> str:
    """Which hidden parts of two URLs that print alike differ ("path", "path and query", …)."""
    try:
        a, b = urlsplit(old), urlsplit(new)
    except ValueError:
        return "URL"
    names = [
        name
        for name, left, right in (
            ("user info", a.netloc.rpartition("@")[0], b.netloc.rpartition("@")[0]),
            ("path", a.path, b.path),
            ("query", a.query, b.query),
            ("fragment", a.fragment, b.fragment),
        )
        if left != right
    ]
    # Nothing hidden differs: the difference is in what printing normalizes (the host's case).
    return " and ".join(names) if names else "spelling"


def _lines(text: str) -> str:
    return f"{len(text.splitlines())} lines"


def _unified(old: str, new: str, old_name: str, new_name: str) -> str:
    lines = difflib.unified_diff(
        old.splitlines(keepends=True), new.splitlines(keepends=True), old_name, new_name
    )
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


# -- applying ---------------------------------------------------------------------------------------


def validate_plan(client: Client, plan: Plan) -> None:
    """Send every creation and update of the plan with ``validate_only`` (templates first, as they
    are applied), writing nothing. PlanRefused (an InvalidFolderError) listing every object the
    coordinator refuses (file, object, its message); ApplyConflict for one changed since the plan
    read it; the ClientError itself when the connection or the caller's key fails."""
    problems: list[Problem] = []
    for kind in ("template", "scenario"):
        for change in plan.changes:
            if change.kind != kind or change.action not in ("create", "update"):
                continue
            try:
                _apply_one(client, change, validate_only=True)
            except ApplyRefused as exc:
                if exc.error.code in _SESSION_CODES:
                    raise exc.error from None
                problems.append(
                    Problem(
                        change.file,
                        f"{change.kind} {change.id}",
                        f"the coordinator refuses it: {exc.error}",
                    )
                )
    if problems:
        raise PlanRefused(problems)


def apply_plan(client: Client, plan: Plan) -> list[Change]:
    """Write what the plan says, in order, each conditioned on the revision read; the changes
    applied. ApplyConflict or ApplyRefused stop it (what came before stays applied)."""
    done: list[Change] = []
    steps = (
        ("template", ("create", "update")),
        ("scenario", ("create", "update")),
        ("scenario", ("delete",)),
    )
    for kind, actions in steps:
        for change in plan.changes:
            if change.kind == kind and change.action in actions:
                try:
                    _apply_one(client, change)
                except (ApplyConflict, ApplyRefused) as exc:
                    exc.applied = done
                    raise
                done.append(change)
    return done


def _apply_one(client: Client, change: Change, *, validate_only: bool = False) -> None:
    try:
        if change.template is not None:
            client.put_template(
                change.template.source,
                project_key=change.project,
                expected_revision=change.revision,
                validate_only=validate_only,
            )
        elif change.action == "delete":
            _delete(client, change)
        elif change.scenario is not None:
            client.put_scenario(
                change.id,
                script=change.scenario.script,
                name=change.scenario.name,
                settings=change.settings,
                project_key=change.project,
                expected_revision=change.revision,
                validate_only=validate_only,
            )
    except ClientError as exc:
        if exc.code == grpc.StatusCode.ABORTED:
            getter: Callable[[str], Any] = (
                client.get_template if change.kind == "template" else client.get_scenario
            )
            now = _found(getter, change.id)
            raise ApplyConflict(change, now.revision if now is not None else None) from None
        raise ApplyRefused(change, exc) from None


def _delete(client: Client, change: Change) -> None:
    # DeleteScenario takes no revision: read just before, refuse when it moved (see the docstring).
    now = _found(client.get_scenario, change.id)
    if now is None:
        return  # already gone: what the plan wanted
    if now.revision != change.revision:
        raise ApplyConflict(change, now.revision)
    client.delete_scenario(change.id)
