"""Reporters: validation of a scenario's Reporter messages, and what a report says.

Pure logic: imports no heavyweight library. Delivery (HTTP, SMTP, retries, the delivery rows) lives
in ``reporting``.

Templates are ``string.Template`` (``${field}``): no expressions, no attribute access, nothing a
scenario editor could use to reach into the coordinator. Only the fields in ``FIELDS`` exist; a
template naming another is refused when the scenario is saved, so a typo never surfaces as an empty
value in a report nobody reads. Rejected: Jinja (a sandboxed engine is still a large surface for a
message that only needs substitution) and ``str.format`` (attribute and index access).

Signing secrets: every webhook reporter holds a Standard Webhooks key (``whsec_`` + base64 of
24..64 random bytes) that ``reporting`` signs each delivery with. A save that leaves it empty keeps
the secret the reporter of the same id already had, or gets a new one for a reporter that had none;
a save that sets it rotates it. Keeping on empty is what lets a definition exported without its
secrets (``seedbed pull``) be applied back without breaking every receiver. Rejected: one secret per
scenario or per operator (a key leaked by one receiver would let anyone forge deliveries to all the
others, and rotating it would touch every receiver at once).

Hidden values: below EDITOR, a scenario is read with its webhook URLs' paths, header values and
signing secrets replaced by ``HIDDEN``. A save carrying the placeholder is refused, naming the field:
stored, it would silently wipe the real value when a viewer's copy is applied back by an editor.
Rejected: keeping the stored value when the placeholder comes back, as an empty secret does (the
host it shows may no longer be the stored one, a reporter renamed or new has nothing to keep, and
an editor applying a viewer's copy would believe the URL it shows was saved).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
import string
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parseaddr
from typing import Any
from urllib.parse import unquote, urlsplit

from google.protobuf.json_format import MessageToDict, ParseDict

from seedbed.api.v1 import run_pb2, scenario_pb2
from seedbed.coordinator.egress import PUBLIC_ONLY, EgressPolicy, literal_address
from seedbed.coordinator.errors import InvalidArgumentError
from seedbed.coordinator.model import RunState, new_id
from seedbed.coordinator.store import RunRecord

MAX_REPORTERS = 20
MAX_URL_CHARS = 2048
MAX_HEADERS = 50
MAX_HEADER_VALUE_CHARS = 8192
MAX_RECIPIENTS = 50
MAX_ADDRESS_CHARS = 320
MAX_TEMPLATE_BYTES = 64 * 1024
MAX_NAME_CHARS = 200
MAX_ID_CHARS = 80
SECRET_PREFIX = "whsec_"
MIN_SECRET_BYTES = 24
MAX_SECRET_BYTES = 64
GENERATED_SECRET_BYTES = 32

# What callers below EDITOR are shown instead of a webhook URL's path, a header value or a signing
# secret (``hide_reporter_secrets``). A save carrying it is refused: stored, it would silently
# replace the real value (a viewer's ``seedbed pull`` or REST GET, applied back by an editor).
HIDDEN = "(hidden: needs role EDITOR)"

STARTED = "RUN_STARTED"
FINISHED = "RUN_FINISHED"

# Every ${field} a template may name (the EmailTarget comment in scenario.proto lists the same).
FIELDS = (
    "scenario_id",
    "scenario_name",
    "run_id",
    "outcome",
    "state",
    "start_time",
    "end_time",
    "duration_seconds",
    "error_type",
    "error_message",
    "error_step",
    "project_key",
    "run_as",
    "triggered_by",
    "event",
    "trigger_id",
)

DEFAULT_SUBJECT = "[Seedbed] ${scenario_name}: ${event} ${state} (${run_id})"
DEFAULT_BODY = """\
Scenario: ${scenario_name} (${scenario_id}, project ${project_key})
Run: ${run_id}
Event: ${event}
State: ${state}
Started: ${start_time}
Ended: ${end_time}
Duration: ${duration_seconds} s
Error: ${error_type} ${error_message} ${error_step}
Triggered by: ${triggered_by} ${trigger_id}
Run as: ${run_as}
"""

# Set by the coordinator on every webhook request; a reporter may not replace them.
RESERVED_HEADERS = frozenset(
    {
        "content-type",
        "content-length",
        "host",
        "idempotency-key",
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
    }
)
_HEADER_NAME = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,256}$")
_ID = re.compile(r"^[A-Za-z0-9_.-]+$")
# Padding optional, as the standardwebhooks library reads it; the decoded size is checked apart.
_SECRET = re.compile(r"^whsec_([A-Za-z0-9+/]{1,88}={0,2})$")
_TERMINAL = {getattr(run_pb2, f"RUN_STATE_{s.value}"): s for s in RunState if s.is_terminal}
_EVENTS = {
    scenario_pb2.REPORTER_EVENT_RUN_STARTED: STARTED,
    scenario_pb2.REPORTER_EVENT_RUN_FINISHED: FINISHED,
}
_SAMPLE = {name: f'sample {name} "quoted" \\ ü' for name in FIELDS}


# -- validation ----------------------------------------------------------------------------------


def validate_reporters(
    reporters: Sequence[scenario_pb2.Reporter],
    egress: EgressPolicy = PUBLIC_ONLY,
    *,
    current: Sequence[ReporterSpec | Mapping[str, Any]] | None = None,
) -> tuple[dict[str, Any], ...]:
    """Check a scenario's reporters and give each an id; returns them as proto JSON. A webhook URL
    naming an internal address that ``egress`` does not allow is refused here already (a host name
    is checked when a report is sent, since what it resolves to may change).

    ``current``: the reporters the scenario has now (stored proto JSON or specs; none for a new
    scenario). A webhook whose ``signing_secret`` is empty keeps the secret of the current reporter
    with the same id, or gets a new one."""
    kept = _current_secrets(current or ())
    if len(reporters) > MAX_REPORTERS:
        raise InvalidArgumentError(
            "settings.reporters", f"{len(reporters)} reporters; at most {MAX_REPORTERS}"
        )
    seen: set[str] = set()
    out = []
    for index, reporter in enumerate(reporters):
        field = f"settings.reporters[{index}]"
        msg = scenario_pb2.Reporter()
        msg.CopyFrom(reporter)
        msg.id = msg.id or new_id("rep")
        if len(msg.id) > MAX_ID_CHARS or not _ID.match(msg.id):
            raise InvalidArgumentError(
                f"{field}.id", f"{msg.id[:100]!r} must be 1..{MAX_ID_CHARS} of A-Z a-z 0-9 _ . -"
            )
        if msg.id in seen:
            raise InvalidArgumentError(f"{field}.id", f"{msg.id!r} is used twice")
        seen.add(msg.id)
        if len(msg.name) > MAX_NAME_CHARS:
            raise InvalidArgumentError(f"{field}.name", f"longer than {MAX_NAME_CHARS} characters")
        if not msg.HasField("active"):
            msg.active = True
        _check_events(msg, field)
        for pos, state in enumerate(msg.outcomes):
            if state not in _TERMINAL:
                raise InvalidArgumentError(
                    f"{field}.outcomes[{pos}]",
                    f"{run_pb2.RunState.Name(state) if state in run_pb2.RunState.values() else state} "
                    "is not a terminal state; use RUN_STATE_SUCCESS, RUN_STATE_WARNING, "
                    "RUN_STATE_FAILED or RUN_STATE_ABORTED",
                )
        kind = msg.WhichOneof("target")
        if kind == "webhook":
            _check_webhook(msg.webhook, f"{field}.webhook", egress)
            _settle_secret(msg.webhook, f"{field}.webhook.signing_secret", kept.get(msg.id, ""))
        elif kind == "email":
            _check_email(msg.email, f"{field}.email")
        else:
            raise InvalidArgumentError(f"{field}.target", "is required: set webhook or email")
        out.append(MessageToDict(msg, preserving_proto_field_name=True))
    return tuple(out)


def _check_events(msg: scenario_pb2.Reporter, field: str) -> None:
    events: list[scenario_pb2.ReporterEvent] = []
    for pos, event in enumerate(msg.events):
        if event not in _EVENTS:
            raise InvalidArgumentError(
                f"{field}.events[{pos}]",
                f"{event} is not an event; use REPORTER_EVENT_RUN_STARTED or REPORTER_EVENT_RUN_FINISHED",
            )
        if event not in events:
            events.append(event)
    del msg.events[:]
    msg.events.extend(events or [scenario_pb2.REPORTER_EVENT_RUN_FINISHED])


def _refuse_placeholder(value: str, field: str, what: str) -> None:
    """Refuse ``value`` when it carries ``HIDDEN`` (percent-encoded too, as a URL may hold it)."""
    if HIDDEN in value or HIDDEN in unquote(value):
        raise InvalidArgumentError(
            field,
            f"holds the placeholder {HIDDEN!r}, which callers below role EDITOR are shown instead of "
            f"the {what}; saving it would replace the real one. Send the real {what}: read the "
            "scenario with role EDITOR in its project (what a caller below EDITOR read, e.g. with "
            "seedbed pull, cannot be saved back as it is)",
        )


def _check_webhook(hook: scenario_pb2.WebhookTarget, field: str, egress: EgressPolicy) -> None:
    _refuse_placeholder(hook.url, f"{field}.url", "URL")
    if len(hook.url) > MAX_URL_CHARS:
        raise InvalidArgumentError(f"{field}.url", f"{len(hook.url)} characters; at most {MAX_URL_CHARS}")
    try:
        parts = urlsplit(hook.url)
        scheme, host = parts.scheme, parts.hostname
    except ValueError:  # e.g. an unclosed [ of an IPv6 address
        scheme, host = "", None
    if scheme not in ("http", "https") or not host:
        # The value is not repeated: it may be a token put where a URL belongs (an apply's
        # ${env:…}, printed in a CI log).
        raise InvalidArgumentError(f"{field}.url", "must be an http:// or https:// URL with a host")
    address = literal_address(host)
    if address is not None:
        refusal = egress.refusal(host, address)
        if refusal is not None:
            raise InvalidArgumentError(f"{field}.url", refusal)
    if len(hook.headers) > MAX_HEADERS:
        raise InvalidArgumentError(f"{field}.headers", f"{len(hook.headers)} headers; at most {MAX_HEADERS}")
    for name, value in hook.headers.items():
        if not _HEADER_NAME.match(name):
            raise InvalidArgumentError(f"{field}.headers", f"{name[:100]!r} is not a valid header name")
        if name.lower() in RESERVED_HEADERS:
            raise InvalidArgumentError(
                f"{field}.headers", f"{name!r} is set by Seedbed on every request; remove it"
            )
        _refuse_placeholder(value, f"{field}.headers[{name!r}]", "header value")
        if len(value) > MAX_HEADER_VALUE_CHARS or any(c in value for c in "\r\n\0"):
            raise InvalidArgumentError(
                f"{field}.headers[{name!r}]",
                f"values hold at most {MAX_HEADER_VALUE_CHARS} characters and no line breaks",
            )
    if hook.body_template:
        check_template(hook.body_template, f"{field}.body_template")
        try:
            render_json(hook.body_template, _SAMPLE)
        except ValueError as exc:
            raise InvalidArgumentError(f"{field}.body_template", str(exc)) from None


def _current_secrets(current: Iterable[ReporterSpec | Mapping[str, Any]]) -> dict[str, str]:
    """Reporter id -> signing secret, of the current webhook reporters that have one."""
    found: dict[str, str] = {}
    for item in current:
        spec = item if isinstance(item, ReporterSpec) else ReporterSpec.from_json(item)
        if spec.kind == "webhook" and spec.message.webhook.signing_secret:
            found[spec.id] = spec.message.webhook.signing_secret
    return found


def _settle_secret(hook: scenario_pb2.WebhookTarget, field: str, kept: str) -> None:
    """Empty: the kept secret, else a new one. Set: checked, and it replaces the kept one."""
    if not hook.signing_secret:
        hook.signing_secret = kept or new_signing_secret()
    elif hook.signing_secret == HIDDEN:
        raise InvalidArgumentError(
            field,
            f"is the placeholder {HIDDEN!r} that callers below role EDITOR are shown: leave it empty "
            "to keep the current secret, or send a new one to rotate it",
        )
    else:
        check_signing_secret(hook.signing_secret, field)


def new_signing_secret() -> str:
    """A fresh Standard Webhooks key: ``whsec_`` + base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(GENERATED_SECRET_BYTES)).decode()


def check_signing_secret(value: str, field: str) -> str:
    """Refuse a key that is not ``whsec_`` + base64 of 24..64 bytes. The message never repeats the
    value: even a malformed secret may be most of a real one."""
    match = _SECRET.match(value)
    size: int | None = None
    if match is not None:
        encoded = match.group(1).rstrip("=")
        try:
            size = len(base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True))
        except binascii.Error:
            size = None
    if size is None or not MIN_SECRET_BYTES <= size <= MAX_SECRET_BYTES:
        found = "" if size is None else f" (this one decodes to {size} bytes)"
        raise InvalidArgumentError(
            field,
            f"must be {SECRET_PREFIX!r} followed by the base64 of {MIN_SECRET_BYTES}..{MAX_SECRET_BYTES} "
            f"random bytes{found}, e.g. {SECRET_PREFIX} + the output of `openssl rand -base64 32`; "
            "leave it empty to keep the current secret, or to have one generated",
        )
    return value


def _check_email(mail: scenario_pb2.EmailTarget, field: str) -> None:
    if mail.sender:
        check_address(mail.sender, f"{field}.sender")
    if not mail.recipients:
        raise InvalidArgumentError(f"{field}.recipients", "at least one recipient is required")
    if len(mail.recipients) > MAX_RECIPIENTS:
        raise InvalidArgumentError(
            f"{field}.recipients", f"{len(mail.recipients)} recipients; at most {MAX_RECIPIENTS}"
        )
    for pos, recipient in enumerate(mail.recipients):
        check_address(recipient, f"{field}.recipients[{pos}]")
    if mail.subject_template:
        check_template(mail.subject_template, f"{field}.subject_template")
        if any(c in mail.subject_template for c in "\r\n"):
            raise InvalidArgumentError(f"{field}.subject_template", "must be one line")
    if mail.body_template:
        check_template(mail.body_template, f"{field}.body_template")


def check_address(value: str, field: str) -> str:
    """An e-mail address, optionally with a display name ("Ops <ops@example.com>")."""
    _, address = parseaddr(value)
    local, at, domain = address.rpartition("@")
    if (
        len(value) > MAX_ADDRESS_CHARS
        or any(c in value for c in "\r\n\0")
        or not at
        or not local
        or not domain
        or " " in address
    ):
        raise InvalidArgumentError(
            field, f"{value[:100]!r} is not an e-mail address (e.g. ops@example.com or Ops <ops@example.com>)"
        )
    return value


def check_template(template: str, field: str) -> None:
    """Refuse a template over the size limit, with a stray ``$``, or naming an unknown field."""
    size = len(template.encode())
    if size > MAX_TEMPLATE_BYTES:
        raise InvalidArgumentError(field, f"{size} bytes; at most {MAX_TEMPLATE_BYTES}")
    known = ", ".join(f"${{{name}}}" for name in FIELDS)
    for match in string.Template.pattern.finditer(template):
        name = match.group("named") or match.group("braced")
        if match.group("invalid") is not None:
            raise InvalidArgumentError(
                field,
                f"a '$' at position {match.start()} starts no placeholder (write $$ for a literal $); "
                f"known placeholders: {known}",
            )
        if name is not None and name not in FIELDS:
            raise InvalidArgumentError(field, f"unknown placeholder ${{{name}}}; known placeholders: {known}")


# -- what a report says --------------------------------------------------------------------------


@dataclass(frozen=True)
class ReporterSpec:
    """A stored reporter, parsed back into its message, with the questions asked of it."""

    message: scenario_pb2.Reporter

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ReporterSpec:
        return cls(ParseDict(dict(data), scenario_pb2.Reporter(), ignore_unknown_fields=True))

    @property
    def id(self) -> str:
        return self.message.id

    @property
    def kind(self) -> str:
        return self.message.WhichOneof("target") or ""

    def wants(self, event: str, state: RunState) -> bool:
        """Whether this reporter reports ``event`` for a run now in ``state``."""
        msg = self.message
        if msg.HasField("active") and not msg.active:
            return False
        events = {_EVENTS[e] for e in msg.events if e in _EVENTS} or {FINISHED}
        if event not in events:
            return False
        if event == FINISHED and msg.outcomes:
            return state in {_TERMINAL[o] for o in msg.outcomes if o in _TERMINAL}
        return True


def _iso(value: datetime | None) -> str:
    return value.isoformat() if value is not None else ""


def run_fields(run: RunRecord, scenario_name: str, event: str) -> dict[str, str]:
    """The values of every template field for this run and event."""
    duration = ""
    if run.started_at is not None:
        end = run.ended_at
        if end is not None:
            duration = f"{(end - run.started_at).total_seconds():.3f}"
    error = run.error
    state, started = run.state, run.started_at
    if event == STARTED and state is RunState.QUEUED:
        # Told as the first attempt begins, before its sandbox reports RUNNING: the run is under way.
        state, started = RunState.RUNNING, started or datetime.now(UTC)
    return {
        "scenario_id": run.scenario_id,
        "scenario_name": scenario_name or run.scenario_id,
        "run_id": run.id,
        "outcome": run.state.value if run.state.is_terminal else "",
        "state": state.value,
        "start_time": _iso(started),
        "end_time": _iso(run.ended_at),
        "duration_seconds": duration,
        "error_type": error.type if error else "",
        "error_message": error.message if error else "",
        "error_step": error.step if error else "",
        "project_key": run.project_key,
        "run_as": run.run_as,
        "triggered_by": run.triggered_by,
        "event": event,
        "trigger_id": run.trigger_id or "",
    }


def render(template: str, fields: Mapping[str, str]) -> str:
    return string.Template(template).safe_substitute(fields)


def render_json(template: str, fields: Mapping[str, str]) -> Any:
    """Render a JSON body template, each value escaped as the inside of a JSON string (so
    ``"${error_message}"`` stays one valid string whatever the message holds); the parsed document.
    Raises ValueError when the result is not JSON."""
    escaped = {name: json.dumps(value, ensure_ascii=False)[1:-1] for name, value in fields.items()}
    text = render(template, escaped)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"the rendered body is not JSON ({exc.msg} at line {exc.lineno} column {exc.colno}); "
            'put placeholders inside JSON strings, e.g. {"text": "run ${run_id} ${state}"}'
        ) from None


def default_document(run: RunRecord, fields: Mapping[str, str]) -> dict[str, Any]:
    """The webhook body when the reporter has no template."""
    error = None
    if run.error is not None:
        error = {
            "reason": run.error.reason.value if run.error.reason else None,
            "type": run.error.type,
            "message": run.error.message,
            "step": run.error.step,
            "line": run.error.line,
        }
    return {
        "event": fields["event"],
        "run_id": run.id,
        "scenario_id": run.scenario_id,
        "scenario_name": fields["scenario_name"],
        "project_key": run.project_key,
        "state": fields["state"],
        "outcome": fields["outcome"] or None,
        "create_time": _iso(run.created_at),
        "start_time": fields["start_time"] or None,
        "end_time": fields["end_time"] or None,
        "duration_seconds": float(fields["duration_seconds"]) if fields["duration_seconds"] else None,
        "attempt_count": run.attempt_count,
        "first_error": error,
        "trigger_id": run.trigger_id,
        "triggered_by": run.triggered_by,
        "run_as": run.run_as,
    }


def hide_reporter_secrets(reporters: Iterable[scenario_pb2.Reporter]) -> None:
    """Replace, in place, what may carry a credential: a webhook URL's path and query (kept: scheme
    and host), every header value and the signing secret."""
    for reporter in reporters:
        if not reporter.HasField("webhook"):
            continue
        hook = reporter.webhook
        parts = urlsplit(hook.url)
        hook.url = f"{parts.scheme}://{parts.hostname or ''}/{HIDDEN}"
        for name in list(hook.headers):
            hook.headers[name] = HIDDEN
        if hook.signing_secret:
            hook.signing_secret = HIDDEN
