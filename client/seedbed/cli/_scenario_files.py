"""Scenarios as code: the folder ``seedbed apply`` reads and ``seedbed pull`` writes.

One YAML file per scenario, directly in the folder (``*.yaml`` or ``*.yml``; subfolders are not
searched, so template documents can live in ``templates/`` beside them)::

    id: scn_orders                 # required; "scn_" is prefixed when missing
    name: Orders                   # default: the id
    project: default               # default: --project, else "default"
    script: orders.py              # required; relative to this file; its text is the script
    settings:                      # the contract's ScenarioSettings as JSON, snake_case names
      overlap_policy: OVERLAP_POLICY_QUEUE_ONE
      triggers:
        - {id: nightly, cron: {expression: "0 2 * * *", timezone: Europe/Paris}}
      reporters:
        - id: chat
          webhook:
            url: https://hooks.example.com/seedbed
            headers: {Authorization: "${env:CHAT_TOKEN}"}
    templates: [templates/customer.yaml]   # template documents put with the scenario

Settings are read by ``google.protobuf.json_format.ParseDict``, so their names, enums and types are
the contract's. Triggers and reporters need an ``id``: without one the coordinator would generate a
new one on every apply, and no apply could ever find nothing to change. Webhook values that are
secrets stay out of the file: ``${env:NAME}`` (a header value, the URL or the signing secret) is
replaced by the environment variable NAME when the folder is read, and ``${stored}`` (a header value)
keeps the value the coordinator has, read when the apply is planned. ``pull`` writes every header
value as ``${stored}`` and never writes a signing secret (an empty one keeps the stored secret).

Every path a file names (``script:``, ``templates:``) must lead to a file inside the folder: no
absolute path, no ``..`` out of it, no symbolic link pointing outside (checked on the resolved
path). A review of the folder is then a review of everything apply reads and prints: a changed
``script: /home/ci/.netrc`` would otherwise be printed whole by ``apply --dry-run``'s diff in a CI log.

Every file is read and checked before anything is sent, and every problem is collected (file, key,
message), so one run of ``apply`` lists them all. Rejected: one file for the whole folder (every
change touches the same file, and a review cannot show a script's diff); scripts inline in the YAML
(no editor support, indentation traps); searching subfolders for scenario files (template documents
are YAML too, and a rule by location is one a reader can predict).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from google.protobuf.json_format import MessageToDict, ParseDict, ParseError

from seedbed.api.v1 import scenario_pb2

SCENARIO_KEYS = ("id", "name", "project", "script", "settings", "templates")
# A header value that keeps what the coordinator has (see the module docstring).
STORED = "${stored}"
# What the coordinator shows callers below EDITOR instead of a webhook URL's path, a header value
# or a signing secret (the coordinator's reporters.HIDDEN): a value carrying it is not the real one.
HIDDEN = "(hidden: needs role EDITOR)"
_ENV = re.compile(r"^\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}$")
# Ids keep their case (MYSCENARIO) as the coordinator does; two that differ only by case are one
# file on a case-insensitive file system, and the coordinator refuses the second.
_SCENARIO_ID = re.compile(r"^scn_[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")
_TEMPLATE_ID = re.compile(r"^tmpl_[a-z0-9_-]{1,64}$")
_MAX_NAME_CHARS = 200
# The coordinator's default SEEDBED_MAX_SCRIPT_BYTES; --max-script-bytes when the operator raised it.
DEFAULT_MAX_SCRIPT_BYTES = 1 * 2**20


@dataclass(frozen=True)
class Problem:
    """Something wrong with the folder: the file (relative to the folder), the key, what to do."""

    file: str
    key: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.key}: {self.message}" if self.key else f"{self.file}: {self.message}"


class InvalidFolderError(Exception):
    """The folder (or what the coordinator holds) rules out applying it: ``problems``, every one."""

    def __init__(self, problems: list[Problem]) -> None:
        # A message of several lines (a template's issues) stays indented under its problem.
        lines = "\n".join("  " + str(p).replace("\n", "\n    ") for p in problems)
        super().__init__(f"{len(problems)} problem(s):\n{lines}")
        self.problems = problems


@dataclass(frozen=True)
class StoredHeader:
    """A webhook header value the file leaves as the coordinator has it (``${stored}``)."""

    reporter_id: str
    header: str
    key: str


@dataclass
class TemplateFile:
    file: str
    id: str
    source: str
    project: str


@dataclass
class ScenarioFile:
    file: str
    id: str
    name: str
    project: str
    script_file: str
    script: str
    # ${env:…} replaced; ${stored} header values still the marker (see ``stored``).
    settings: scenario_pb2.ScenarioSettings
    templates: list[TemplateFile] = field(default_factory=list)
    stored: list[StoredHeader] = field(default_factory=list)


@dataclass
class Folder:
    root: Path
    scenarios: list[ScenarioFile]
    # Each once, in the order the scenarios list them.
    templates: list[TemplateFile]


def normalize_scenario_id(raw: str) -> str:
    return raw if raw.startswith("scn_") else f"scn_{raw}"


def load_folder(
    root: Path, *, default_project: str, max_script_bytes: int, environ: Mapping[str, str]
) -> Folder:
    """Read and check every scenario file of ``root``; InvalidFolderError listing every problem."""
    loader = _Loader(root, default_project, max_script_bytes, environ)
    if not root.is_dir():
        raise InvalidFolderError([Problem(str(root), "", "is not a folder")])
    paths = sorted(p for p in root.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
    inside = [p for p in paths if loader.inside(p, p.name, "")]
    scenarios = [s for s in (loader.scenario(p) for p in inside) if s is not None]
    if loader.problems:
        raise InvalidFolderError(loader.problems)
    return Folder(root, scenarios, list(loader.templates.values()))


class _Loader:
    def __init__(
        self, root: Path, default_project: str, max_script_bytes: int, env: Mapping[str, str]
    ) -> None:
        self._root = root
        self._default_project = default_project
        self._max_script_bytes = max_script_bytes
        self._env = env
        self.problems: list[Problem] = []
        self.templates: dict[Path, TemplateFile] = {}
        self._scenario_files: dict[str, str] = {}
        self._template_files: dict[str, str] = {}

    def _name(self, path: Path) -> str:
        try:
            return str(path.resolve().relative_to(self._root.resolve()))
        except ValueError:
            return str(path)

    def _problem(self, file: str, key: str, message: str) -> None:
        self.problems.append(Problem(file, key, message))

    def inside(self, path: Path, file: str, key: str, named: str = "") -> bool:
        """Whether ``path``, links followed, is inside the folder; a problem when it is not."""
        try:
            if path.resolve().is_relative_to(self._root.resolve()):
                return True
        except (OSError, RuntimeError):  # a loop of symbolic links
            pass
        shown = f"{named!r}" if named else "it"
        self._problem(
            file,
            key,
            f"{shown} leads outside the folder: files apply reads must be inside it (no absolute "
            "path, no '..' out of it, no symbolic link pointing outside)",
        )
        return False

    def _read(self, path: Path, file: str, key: str, what: str) -> str | None:
        """The file's text, exactly (no newline translation), or None after a problem."""
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            self._problem(file, key, f"{what} {self._name(path)} does not exist")
            return None
        except OSError as exc:
            self._problem(file, key, f"cannot read {what} {self._name(path)}: {exc.strerror}")
            return None
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            self._problem(file, key, f"{what} {self._name(path)} is not UTF-8 (byte {exc.start})")
            return None

    def _yaml(self, text: str, file: str) -> Any:
        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
            reason = getattr(exc, "problem", None) or str(exc)
            self._problem(file, "", f"is not valid YAML{where}: {reason}")
            return None

    def _string(self, doc: dict[str, Any], key: str, file: str, *, required: bool) -> str | None:
        value = doc.get(key)
        if value is None:
            if required:
                self._problem(file, key, "is required")
            return None
        if not isinstance(value, str):
            self._problem(file, key, f"must be a string, not {type(value).__name__} ({value!r})")
            return None
        return value

    def scenario(self, path: Path) -> ScenarioFile | None:
        file = self._name(path)
        before = len(self.problems)
        text = self._read(path, file, "", "file")
        doc = self._yaml(text, file) if text is not None else None
        if len(self.problems) > before:
            return None
        if not isinstance(doc, dict):
            self._problem(file, "", f"must be a mapping with the keys {', '.join(SCENARIO_KEYS)}")
            return None
        for key in doc:
            if key not in SCENARIO_KEYS:
                self._problem(file, str(key), f"unknown key; the keys are {', '.join(SCENARIO_KEYS)}")
        scenario_id = self._scenario_id(doc, file)
        name = self._scenario_name(doc, file, scenario_id)
        project = self._string(doc, "project", file, required=False)
        if project is not None and not project.strip():
            self._problem(file, "project", "must not be empty (leave it out for the default project)")
        project = project or self._default_project
        script_file, script = self._script(doc, path, file)
        settings, stored = self._settings(doc.get("settings"), file)
        templates = self._templates(doc.get("templates"), path, file, project)
        if len(self.problems) > before or scenario_id is None or script is None or settings is None:
            return None
        return ScenarioFile(
            file, scenario_id, name or scenario_id, project, script_file, script, settings, templates, stored
        )

    def _scenario_id(self, doc: dict[str, Any], file: str) -> str | None:
        raw = self._string(doc, "id", file, required=True)
        if raw is None:
            return None
        scenario_id = normalize_scenario_id(raw)
        if not _SCENARIO_ID.match(scenario_id):
            self._problem(file, "id", f"{raw!r} is not a scenario id: 1-63 letters, digits, '_' or '-'")
            return None
        other = self._scenario_files.setdefault(scenario_id.lower(), file)
        if other != file:
            self._problem(
                file,
                "id",
                f"{scenario_id} is also the id in {other} (ids must be unique, whatever their case)",
            )
        return scenario_id

    def _scenario_name(self, doc: dict[str, Any], file: str, scenario_id: str | None) -> str | None:
        name = self._string(doc, "name", file, required=False)
        if name is None:
            return scenario_id
        # The coordinator stores names stripped: compare what it will hold.
        name = name.strip()
        if not name or len(name) > _MAX_NAME_CHARS:
            self._problem(file, "name", f"must be 1..{_MAX_NAME_CHARS} characters (leave it out for the id)")
        return name

    def _script(self, doc: dict[str, Any], path: Path, file: str) -> tuple[str, str | None]:
        relative = self._string(doc, "script", file, required=True)
        if relative is None:
            return "", None
        script_path = path.parent / relative
        if not self.inside(script_path, file, "script", relative):
            return relative, None
        script = self._read(script_path, file, "script", "the script")
        if script is None:
            return relative, None
        size = len(script.encode())
        if not script.strip():
            self._problem(file, "script", f"{relative} is empty")
        elif size > self._max_script_bytes:
            self._problem(
                file,
                "script",
                f"{relative} is {size} bytes; the limit is {self._max_script_bytes} (the coordinator's "
                "SEEDBED_MAX_SCRIPT_BYTES, default 1 MiB; --max-script-bytes when the operator raised it): "
                "move data into workspace files or templates",
            )
        elif "\x00" in script:
            self._problem(file, "script", f"{relative} contains a NUL character")
        return self._name(script_path), script

    def _settings(
        self, raw: Any, file: str
    ) -> tuple[scenario_pb2.ScenarioSettings | None, list[StoredHeader]]:
        settings = scenario_pb2.ScenarioSettings()
        if raw is None:
            return settings, []
        if not isinstance(raw, dict):
            self._problem(file, "settings", f"must be a mapping, not {type(raw).__name__}")
            return None, []
        before = len(self.problems)
        # Key by key, and item by item in lists, so that every bad one is named (ParseDict stops at
        # the first).
        for key, value in raw.items():
            items = value if isinstance(value, list) else [value]
            for index, item in enumerate(items):
                where = f"settings.{key}[{index}]" if isinstance(value, list) else f"settings.{key}"
                part = scenario_pb2.ScenarioSettings()
                try:
                    ParseDict({key: [item] if isinstance(value, list) else item}, part)
                except (ParseError, TypeError, ValueError) as exc:
                    self._problem(file, where, " ".join(str(exc).split()))
                    continue
                settings.MergeFrom(part)
        # The keys that did parse are checked too: one run lists every problem.
        self._check_ids(settings.triggers, "triggers", file)
        self._check_ids(settings.reporters, "reporters", file)
        for index, trigger in enumerate(settings.triggers):
            self._check_cron(trigger, f"settings.triggers[{index}].cron", file)
        stored = self._webhook_values(settings, file)
        return (settings if len(self.problems) == before else None), stored

    def _check_ids(self, items: Any, kind: str, file: str) -> None:
        seen: set[str] = set()
        for index, item in enumerate(items):
            key = f"settings.{kind}[{index}].id"
            if not item.id:
                self._problem(
                    file,
                    key,
                    "is required: without it the coordinator makes up a new one on every apply, which "
                    "then never finds it unchanged",
                )
            elif item.id in seen:
                self._problem(file, key, f"{item.id!r} is used twice")
            seen.add(item.id)

    def _check_cron(self, trigger: scenario_pb2.Trigger, key: str, file: str) -> None:
        """What can be told without the coordinator (it checks the expression itself)."""
        if not trigger.HasField("cron"):
            self._problem(file, key, "is required (expression and timezone)")
            return
        fields = len(trigger.cron.expression.split())
        if fields not in (5, 6):
            self._problem(
                file, f"{key}.expression", f"{trigger.cron.expression!r} has {fields} fields; use 5 or 6"
            )
        try:
            ZoneInfo(trigger.cron.timezone or "UTC")
        except (ZoneInfoNotFoundError, ValueError):
            self._problem(file, f"{key}.timezone", f"{trigger.cron.timezone!r} is not a known IANA time zone")

    def _webhook_values(self, settings: scenario_pb2.ScenarioSettings, file: str) -> list[StoredHeader]:
        stored: list[StoredHeader] = []
        for index, reporter in enumerate(settings.reporters):
            if not reporter.HasField("webhook"):
                continue
            hook = reporter.webhook
            base = f"settings.reporters[{index}].webhook"
            hook.url = self._expand(hook.url, f"{base}.url", file)
            hook.signing_secret = self._expand(hook.signing_secret, f"{base}.signing_secret", file)
            for header in sorted(hook.headers):
                key = f"{base}.headers.{header}"
                if hook.headers[header] == STORED:
                    stored.append(StoredHeader(reporter.id, header, key))
                else:
                    hook.headers[header] = self._expand(hook.headers[header], key, file)
        return stored

    def _expand(self, value: str, key: str, file: str) -> str:
        if HIDDEN in value:
            self._problem(
                file,
                key,
                f"holds the placeholder {HIDDEN!r} (pulled by a caller below role EDITOR, who is not "
                "shown the real value): write the real value, or ${env:NAME}",
            )
            return value
        if value == STORED:
            self._problem(file, key, f"{STORED} keeps header values only; use ${{env:NAME}} here")
            return value
        found = _ENV.match(value)
        if found is None:
            return value
        name = found.group(1)
        if name not in self._env:
            self._problem(file, key, f"the environment variable {name} is not set")
            return ""
        return self._env[name]

    def _templates(self, raw: Any, path: Path, file: str, project: str) -> list[TemplateFile]:
        if raw is None:
            return []
        if not isinstance(raw, list) or not all(isinstance(item, str) for item in raw):
            self._problem(file, "templates", "must be a list of paths of template documents")
            return []
        out = []
        for index, relative in enumerate(raw):
            key = f"templates[{index}]"
            if not self.inside(path.parent / relative, file, key, relative):
                continue
            template = self._template(path.parent / relative, file, key, project)
            if template is not None:
                out.append(template)
        return out

    def _template(self, path: Path, file: str, key: str, project: str) -> TemplateFile | None:
        known = self.templates.get(path.resolve())
        if known is not None:
            if known.project != project:
                self._problem(
                    file,
                    key,
                    f"{known.file} is also listed by a scenario of project {known.project!r}: a template "
                    "belongs to one project",
                )
            return known
        source = self._read(path, file, key, "the template")
        if source is None:
            return None
        name = self._name(path)
        before = len(self.problems)
        doc = self._yaml(source, name)
        if len(self.problems) > before:
            return None
        template_id = doc.get("id") if isinstance(doc, dict) else None
        if not isinstance(template_id, str) or not _TEMPLATE_ID.match(template_id):
            self._problem(name, "id", "a template needs an id: 'tmpl_' followed by 1-64 of a-z 0-9 _ -")
            return None
        other = self._template_files.setdefault(template_id, name)
        if other != name:
            self._problem(name, "id", f"{template_id} is also the id in {other}: ids must be unique")
            return None
        template = TemplateFile(name, template_id, source, project)
        self.templates[path.resolve()] = template
        return template


# -- writing (pull) ---------------------------------------------------------------------------------


def stem(ident: str, prefix: str) -> str:
    """The file name of an object: its id without the prefix every id has."""
    return ident.removeprefix(prefix) or ident


def settings_document(settings: scenario_pb2.ScenarioSettings) -> dict[str, Any]:
    """The settings as a file holds them: no signing secret, every header value ``${stored}``."""
    copy = scenario_pb2.ScenarioSettings()
    copy.CopyFrom(settings)
    for reporter in copy.reporters:
        if reporter.HasField("webhook"):
            reporter.webhook.signing_secret = ""
            for header in list(reporter.webhook.headers):
                reporter.webhook.headers[header] = STORED
    return MessageToDict(copy, preserving_proto_field_name=True)


def scenario_document(scenario: scenario_pb2.Scenario, script: str, templates: list[str]) -> str:
    document: dict[str, Any] = {
        "id": scenario.id,
        "name": scenario.name,
        "project": scenario.project_key,
        "script": script,
    }
    settings = settings_document(scenario.settings)
    if settings:
        document["settings"] = settings
    if templates:
        document["templates"] = templates
    # No revision or time in the file: pulling again what did not change changes no line.
    header = "# A scenario as code: `seedbed apply DIR` makes the coordinator match this folder.\n"
    return header + yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=100)
