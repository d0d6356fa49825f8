"""Triggers and reporters as the dicts of Dataiku's ``raw_triggers`` and ``raw_reporters``.

Dataiku hands out a scenario's triggers and reporters as lists of JSON dicts, changed in place and
written back by ``settings.save()``; code written for it (change the "from" address of every e-mail
reporter…) indexes them by Dataiku's keys. Seedbed keeps them as contract messages; this module
maps one to the other, in Dataiku's shape as far as it maps to Seedbed's, and refuses what does not
map with a ValueError naming the place (``raw_reporters[0].messaging.type``) and what is accepted.

A trigger (Seedbed triggers are cron schedules; ``params`` holds the type's parameters, as in
Dataiku)::

    {"id": "nightly", "name": "", "type": "cron", "active": True,
     "params": {"expression": "30 2 * * *", "timezone": "Europe/Paris"},
     "runParams": {"rows": "1000"}, "catchUpSeconds": 0}

A reporter (``phase`` as in Dataiku: "START", "END", or "START_AND_END" for both; ``outcomes``
takes the place of Dataiku's ``runCondition`` expression: the outcomes a finished run must have,
empty for any)::

    {"id": "mail", "name": "", "active": True, "phase": "END", "outcomes": ["FAILED"],
     "messaging": {"type": "mail-scenario",
                   "configuration": {"sender": "seedbed@example.com", "recipient": "a@x.org, b@x.org",
                                     "subject": "", "message": ""}}}

    "messaging": {"type": "webhook-scenario",
                  "configuration": {"url": "https://…", "headers": {}, "bodyTemplate": "",
                                    "signingSecret": "whsec_…"}}

Every field of the contract's Trigger and Reporter has a key, so a message read into a dict and
back is the same message (a unit test walks the descriptors to keep it so).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from seedbed.api.v1 import run_pb2, scenario_pb2

__all__ = ["reporter_from_dict", "reporter_to_dict", "trigger_from_dict", "trigger_to_dict"]

MAIL = "mail-scenario"
WEBHOOK = "webhook-scenario"
_OUTCOMES = ("SUCCESS", "WARNING", "FAILED", "ABORTED")
_PHASES = {
    "START": (scenario_pb2.REPORTER_EVENT_RUN_STARTED,),
    "END": (scenario_pb2.REPORTER_EVENT_RUN_FINISHED,),
    "START_AND_END": (scenario_pb2.REPORTER_EVENT_RUN_STARTED, scenario_pb2.REPORTER_EVENT_RUN_FINISHED),
}
_TRIGGER_OPTIONAL = ("id", "name", "type", "active", "runParams", "catchUpSeconds")
# Dataiku keys with no Seedbed counterpart, and what to use instead.
_HINTS = {
    "runCondition": "Seedbed reporters filter on 'outcomes' (a list of SUCCESS, WARNING, FAILED, ABORTED)",
    "runConditionEnabled": "Seedbed reporters filter on 'outcomes' (empty: every outcome)",
    "channelId": "e-mail goes through the operator's SMTP server (SEEDBED_SMTP_URL); there are no channels",
    "delay": "a cron trigger fires at its due time",
    "graceDelaySettings": "a cron trigger fires at its due time",
}


def trigger_to_dict(trigger: scenario_pb2.Trigger) -> dict[str, Any]:
    return {
        "id": trigger.id,
        "name": trigger.name,
        "type": "cron",
        "active": not trigger.HasField("active") or trigger.active,
        "params": {"expression": trigger.cron.expression, "timezone": trigger.cron.timezone},
        "runParams": dict(trigger.params),
        "catchUpSeconds": trigger.catch_up_seconds,
    }


def trigger_from_dict(data: object, where: str) -> scenario_pb2.Trigger:
    fields = _mapping(data, where, required=("params",), optional=_TRIGGER_OPTIONAL)
    kind = fields.get("type", "cron")
    if kind != "cron":
        raise ValueError(
            f"{where}.type: {kind!r} is not a trigger Seedbed has: its triggers are cron schedules "
            "(type 'cron', params.expression and params.timezone), which add_daily_trigger(), "
            "add_hourly_trigger(), add_monthly_trigger() and add_periodic_trigger() write for you"
        )
    params = _mapping(fields["params"], f"{where}.params", required=("expression",), optional=("timezone",))
    return scenario_pb2.Trigger(
        id=_text(fields, "id", where),
        name=_text(fields, "name", where),
        active=_flag(fields, "active", where),
        cron=scenario_pb2.CronSchedule(
            expression=_text(params, "expression", f"{where}.params"),
            timezone=_text(params, "timezone", f"{where}.params"),
        ),
        params=_texts(fields.get("runParams", {}), f"{where}.runParams"),
        catch_up_seconds=_count(fields, "catchUpSeconds", where),
    )


def reporter_to_dict(reporter: scenario_pb2.Reporter) -> dict[str, Any]:
    events = tuple(sorted(set(reporter.events))) or _PHASES["END"]
    phase = next((name for name, value in _PHASES.items() if value == events), "END")
    if reporter.HasField("email"):
        mail = reporter.email
        messaging: dict[str, Any] = {
            "type": MAIL,
            "configuration": {
                "sender": mail.sender,
                "recipient": ", ".join(mail.recipients),
                "subject": mail.subject_template,
                "message": mail.body_template,
            },
        }
    else:
        hook = reporter.webhook
        messaging = {
            "type": WEBHOOK,
            "configuration": {
                "url": hook.url,
                "headers": dict(hook.headers),
                "bodyTemplate": hook.body_template,
                "signingSecret": hook.signing_secret,
            },
        }
    return {
        "id": reporter.id,
        "name": reporter.name,
        "active": not reporter.HasField("active") or reporter.active,
        "phase": phase,
        "outcomes": [run_pb2.RunState.Name(o).removeprefix("RUN_STATE_") for o in reporter.outcomes],
        "messaging": messaging,
    }


def reporter_from_dict(data: object, where: str) -> scenario_pb2.Reporter:
    optional = ("id", "name", "active", "phase", "outcomes")
    fields = _mapping(data, where, required=("messaging",), optional=optional)
    phase = fields.get("phase", "END")
    if phase not in _PHASES:
        raise ValueError(f"{where}.phase: {phase!r} is not a phase: use 'START', 'END' or 'START_AND_END'")
    reporter = scenario_pb2.Reporter(
        id=_text(fields, "id", where),
        name=_text(fields, "name", where),
        active=_flag(fields, "active", where),
        events=_PHASES[phase],
        outcomes=_outcomes(fields.get("outcomes", []), f"{where}.outcomes"),
    )
    where = f"{where}.messaging"
    messaging = _mapping(fields["messaging"], where, required=("type", "configuration"), optional=())
    kind, config = messaging["type"], messaging["configuration"]
    where = f"{where}.configuration"
    if kind == MAIL:
        mail = _mapping(config, where, required=(), optional=("sender", "recipient", "subject", "message"))
        reporter.email.CopyFrom(
            scenario_pb2.EmailTarget(
                sender=_text(mail, "sender", where),
                recipients=_recipients(mail.get("recipient", ""), f"{where}.recipient"),
                subject_template=_text(mail, "subject", where),
                body_template=_text(mail, "message", where),
            )
        )
    elif kind == WEBHOOK:
        hook = _mapping(
            config, where, required=("url",), optional=("headers", "bodyTemplate", "signingSecret")
        )
        reporter.webhook.CopyFrom(
            scenario_pb2.WebhookTarget(
                url=_text(hook, "url", where),
                headers=_texts(hook.get("headers", {}), f"{where}.headers"),
                body_template=_text(hook, "bodyTemplate", where),
                signing_secret=_text(hook, "signingSecret", where),
            )
        )
    else:
        raise ValueError(
            f"{where.removesuffix('.configuration')}.type: {kind!r} is not a reporter Seedbed has: "
            f"use {MAIL!r} (e-mail) or {WEBHOOK!r} (an HTTP POST)"
        )
    return reporter


# -- checks ---------------------------------------------------------------------------------------


def _mapping(
    data: object, where: str, *, required: tuple[str, ...], optional: tuple[str, ...]
) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise ValueError(f"{where}: expected a dict, got {type(data).__name__}")
    accepted = (*required, *optional)
    for key in data:
        if key not in accepted:
            hint = _HINTS.get(key, "")
            raise ValueError(
                f"{where}: unknown key {key!r}"
                + (f" ({hint})" if hint else "")
                + f"; accepted: {', '.join(accepted)}"
            )
    missing = [key for key in required if key not in data]
    if missing:
        raise ValueError(f"{where}: missing {', '.join(missing)}")
    return data


def _text(fields: Mapping[str, Any], key: str, where: str) -> str:
    value = fields.get(key, "")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValueError(f"{where}.{key}: expected a string, got {value!r}")
    return value


def _flag(fields: Mapping[str, Any], key: str, where: str) -> bool:
    value = fields.get(key, True)
    if not isinstance(value, bool):
        raise ValueError(f"{where}.{key}: expected True or False, got {value!r}")
    return value


def _count(fields: Mapping[str, Any], key: str, where: str) -> int:
    value = fields.get(key, 0)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**32:
        raise ValueError(f"{where}.{key}: expected a whole number of seconds (0: the default), got {value!r}")
    return value


def _texts(value: object, where: str) -> dict[str, str]:
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ValueError(f"{where}: expected a dict of strings to strings, got {value!r}")
    return dict(value)


def _outcomes(value: object, where: str) -> list[run_pb2.RunState]:
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise ValueError(f"{where}: expected a list of outcomes, got {value!r}")
    unknown = [o for o in value if o not in _OUTCOMES]
    if unknown:
        raise ValueError(f"{where}: unknown outcome(s) {unknown}: use SUCCESS, WARNING, FAILED or ABORTED")
    return [getattr(run_pb2, f"RUN_STATE_{o}") for o in value]


def _recipients(value: object, where: str) -> list[str]:
    """Dataiku's comma-separated string, or a list of addresses."""
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not all(isinstance(item, str) for item in items):
        raise ValueError(f"{where}: expected addresses separated by commas, got {value!r}")
    return [item.strip() for item in items if item.strip()]
