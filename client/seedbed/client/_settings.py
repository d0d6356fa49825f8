"""A scenario's settings, to read and change, then ``save()``.

Triggers and reporters come in two forms over the same settings:

- ``raw_triggers`` and ``raw_reporters``: lists of dicts in Dataiku's shape (see ``_raw``), changed in
  place, so that code written for Dataiku's scenario API runs as it is;
- ``triggers`` and ``reporters``: the contract's own repeated message fields (``scenario_pb2.Trigger``,
  ``scenario_pb2.Reporter``), where a misspelt field fails where it is written. The ``add_*``
  helpers build the common ones and return the message.

Each access to either form (and each helper, and ``save()``) reconciles the two: dicts changed since
the last access are parsed into the messages (ValueError naming the place of a bad value), messages
changed are copied into the dicts in place (the same list and dict objects, so references held stay
current). Changing both forms between two
accesses is refused with a ValueError rather than one silently winning. Rejected: dicts as the only
form (the helpers, the CLI and typed code want messages) and dict views backed by the messages (a
view per nested dict, for little gain over the reconciliation).

The schedule helpers write a cron expression with a time zone: the coordinator evaluates it
(daylight saving time included) and computes the scenario's next run from it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from google.protobuf.internal.containers import RepeatedCompositeFieldContainer

from seedbed.api.v1 import run_pb2, scenario_pb2
from seedbed.client._raw import reporter_from_dict, reporter_to_dict, trigger_from_dict, trigger_to_dict

if TYPE_CHECKING:
    from seedbed.client._client import Client

OVERLAP_POLICIES = ("SKIP", "ALLOW_CONCURRENT", "QUEUE_ONE", "QUEUE_ALL", "CANCEL_RUNNING")
_DIVISORS_OF_60 = tuple(n for n in range(1, 61) if 60 % n == 0)
_HOURS_DIVIDING_24 = tuple(h for h in range(1, 25) if 24 % h == 0)


def periodic_cron(every_minutes: int) -> str:
    """The cron expression that fires every ``every_minutes`` minutes, evenly, all day long.

    Cron counts minutes within the hour and hours within the day, so only a divisor of 60 minutes
    or a whole number of hours dividing 24 repeats evenly; anything else (e.g. 45: :00, :45, then
    :00 again 15 minutes later) is refused rather than silently uneven.
    """
    if isinstance(every_minutes, bool) or not isinstance(every_minutes, int):
        raise ValueError(f"every_minutes must be a whole number of minutes, got {every_minutes!r}")
    if every_minutes in _DIVISORS_OF_60:
        return "* * * * *" if every_minutes == 1 else f"*/{every_minutes} * * * *"
    hours, rest = divmod(every_minutes, 60)
    if rest == 0 and hours in _HOURS_DIVIDING_24:
        return "0 * * * *" if hours == 1 else "0 0 * * *" if hours == 24 else f"0 */{hours} * * *"
    allowed = ", ".join(map(str, _DIVISORS_OF_60 + tuple(h * 60 for h in _HOURS_DIVIDING_24[1:])))
    raise ValueError(
        f"every_minutes={every_minutes} cannot be expressed evenly by cron (it counts minutes within "
        f"the hour and hours within the day): use one of {allowed}, or add_cron_trigger() with an "
        "expression of your own"
    )


def _check_range(name: str, value: int, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name} must be a whole number in {low}..{high}, got {value!r}")
    return value


def check_timezone(timezone: str) -> str:
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"timezone {timezone!r} is not a known IANA time zone name (e.g. 'UTC', 'Europe/Paris')"
        ) from None
    return timezone


def _events(names: Iterable[str]) -> list[int]:
    out = []
    for name in names:
        try:
            out.append(scenario_pb2.ReporterEvent.Value("REPORTER_EVENT_" + name.upper()))
        except ValueError:
            raise ValueError(f"unknown reporter event {name!r}: use RUN_STARTED or RUN_FINISHED") from None
    return out


def _outcomes(names: Iterable[str]) -> list[int]:
    out = []
    for name in names:
        if name.upper() not in ("SUCCESS", "WARNING", "FAILED", "ABORTED"):
            raise ValueError(f"unknown outcome {name!r}: use SUCCESS, WARNING, FAILED or ABORTED")
        out.append(run_pb2.RunState.Value("RUN_STATE_" + name.upper()))
    return out


_KINDS: dict[str, tuple[Callable[[Any], dict[str, Any]], Callable[[object, str], Any]]] = {
    "triggers": (trigger_to_dict, trigger_from_dict),
    "reporters": (reporter_to_dict, reporter_from_dict),
}


@dataclass
class _DictView:
    """The dicts handed out for one repeated field, and what they and the messages were when the
    two were last reconciled."""

    items: list[dict[str, Any]]
    items_then: list[dict[str, Any]] = field(default_factory=list)
    messages_then: tuple[bytes, ...] = ()


def _state(messages: Iterable[Any]) -> tuple[bytes, ...]:
    return tuple(m.SerializeToString(deterministic=True) for m in messages)


# A scenario created in Dataiku's form without a script gets this one (it runs, doing nothing).
PLACEHOLDER_SCRIPT = "# A new scenario: set its Python script with scenario.set_payload(...)\n"
_DEFINITION_KEYS = ("script", "active", "runAsUser", "triggers", "reporters", "params", "name", "type")


def settings_from_definition(definition: Mapping[str, Any]) -> tuple[str, scenario_pb2.ScenarioSettings]:
    """The script and settings of a Dataiku-style scenario definition (``create_scenario``'s)."""
    unknown = [key for key in definition if key not in _DEFINITION_KEYS]
    if unknown:
        raise ValueError(
            f"definition: unknown key(s) {', '.join(map(repr, unknown))}; "
            f"accepted: {', '.join(_DEFINITION_KEYS)}"
        )
    if definition.get("params"):
        raise ValueError(
            "definition.params: Seedbed scenarios take no type parameters (the script is "
            "definition['script']; run parameters go with each run or trigger)"
        )
    script = definition.get("script") or PLACEHOLDER_SCRIPT
    run_as = definition.get("runAsUser") or ""
    active = definition.get("active", True)
    if not isinstance(script, str) or not isinstance(run_as, str) or not isinstance(active, bool):
        raise ValueError("definition: script and runAsUser must be strings, active True or False")
    settings = scenario_pb2.ScenarioSettings(active=active, run_as=run_as)
    for kind, (_, from_dict) in _KINDS.items():
        items = definition.get(kind) or []
        if not isinstance(items, list):
            raise ValueError(f"definition.{kind}: expected a list of dicts")
        getattr(settings, kind).extend(
            from_dict(item, f"definition.{kind}[{i}]") for i, item in enumerate(items)
        )
    return script, settings


class ScenarioSettings:
    """The settings of one scenario, read when ``Scenario.get_settings()`` was called."""

    def __init__(self, client: Client, scenario: scenario_pb2.Scenario) -> None:
        self._client = client
        self._scenario = scenario
        self.raw = scenario_pb2.ScenarioSettings()
        self.raw.CopyFrom(scenario.settings)
        self._views: dict[str, _DictView] = {}

    def __repr__(self) -> str:
        return f"ScenarioSettings({self.scenario_id!r}, active={self.active}, run_as={self.run_as!r})"

    @property
    def scenario_id(self) -> str:
        return self._scenario.id

    # -- plain fields ------------------------------------------------------------------------------

    @property
    def active(self) -> bool:
        """Whether the triggers fire. Inactive, as in Dataiku, stops the automatic runs only:
        explicit ones (``run()``, the CLI, REST, MCP) still run unless ``refuse_runs_when_inactive``."""
        return not self.raw.HasField("active") or self.raw.active

    @active.setter
    def active(self, value: bool) -> None:
        self.raw.active = bool(value)

    @property
    def purge_after(self) -> timedelta | None:
        """How long after a run ends the coordinator purges it (its periodic purge pass), or None:
        never (the default)."""
        seconds = self.raw.purge_after_seconds
        return timedelta(seconds=seconds) if seconds else None

    @purge_after.setter
    def purge_after(self, value: timedelta | None) -> None:
        seconds = 0 if value is None else int(value.total_seconds())
        if value is not None and seconds < 1:
            raise ValueError("purge_after must be at least one second, or None (never)")
        self.raw.purge_after_seconds = seconds

    @property
    def refuse_runs_when_inactive(self) -> bool:
        """While inactive, refuse explicit runs too (FAILED_PRECONDITION) and cancel the fires
        waiting their turn: inactive then means nothing runs. False by default."""
        return self.raw.refuse_runs_when_inactive

    @refuse_runs_when_inactive.setter
    def refuse_runs_when_inactive(self, value: bool) -> None:
        self.raw.refuse_runs_when_inactive = bool(value)

    @property
    def run_as(self) -> str:
        """The user the runs act as; "" means the last user who modified the scenario. Setting
        another user than yourself needs the admin role in the project."""
        return self.raw.run_as

    @run_as.setter
    def run_as(self, user_id: str | None) -> None:
        self.raw.run_as = user_id or ""

    @property
    def effective_run_as(self) -> str:
        """``run_as``, else the script's last author: who the runs act as (as of the last read or
        save)."""
        return self._scenario.effective_run_as

    @property
    def last_modified_by(self) -> str:
        """Who last changed the scenario in any way (lends the runs no identity)."""
        return self._scenario.last_modified_by

    @property
    def script_modified_by(self) -> str:
        """Who created the scenario or last changed its script: the runs act as them when
        ``run_as`` is empty."""
        return self._scenario.script_modified_by

    @property
    def overlap_policy(self) -> str:
        """What a fire does while a run is active: SKIP (the default), ALLOW_CONCURRENT,
        QUEUE_ONE, QUEUE_ALL or CANCEL_RUNNING."""
        value = int(self.raw.overlap_policy) or scenario_pb2.OVERLAP_POLICY_SKIP
        return scenario_pb2.OverlapPolicy.Name(value).removeprefix("OVERLAP_POLICY_")

    @overlap_policy.setter
    def overlap_policy(self, name: str) -> None:
        if name.upper() not in OVERLAP_POLICIES:
            raise ValueError(f"unknown overlap policy {name!r}: use one of {', '.join(OVERLAP_POLICIES)}")
        value = scenario_pb2.OverlapPolicy.Value("OVERLAP_POLICY_" + name.upper())
        self.raw.overlap_policy = value  # type: ignore[assignment]

    @property
    def retry_policy(self) -> scenario_pb2.RetryPolicy | None:
        """The retry policy message (change it in place), or None for the default policy."""
        return self.raw.retry_policy if self.raw.HasField("retry_policy") else None

    @retry_policy.setter
    def retry_policy(self, policy: scenario_pb2.RetryPolicy | None) -> None:
        if policy is None:
            self.raw.ClearField("retry_policy")
        else:
            self.raw.retry_policy.CopyFrom(policy)

    @property
    def timeout_seconds(self) -> int:
        """Deadline of one attempt; 0 means the operator's default."""
        return self.raw.timeout_seconds

    @timeout_seconds.setter
    def timeout_seconds(self, value: int) -> None:
        self.raw.timeout_seconds = _check_range("timeout_seconds", value, 0, 2**32 - 1)

    @property
    def memory_limit_bytes(self) -> int:
        """Memory of the sandbox; 0 means the operator's default."""
        return self.raw.memory_limit_bytes

    @memory_limit_bytes.setter
    def memory_limit_bytes(self, value: int) -> None:
        self.raw.memory_limit_bytes = _check_range("memory_limit_bytes", value, 0, 2**64 - 1)

    # -- triggers and reporters, as dicts (Dataiku's form) and as messages ------------------------

    @property
    def raw_triggers(self) -> list[dict[str, Any]]:
        """The triggers as Dataiku-shaped dicts, to change in place (``save()`` writes them back):
        ``{"id", "name", "type": "cron", "active", "params": {"expression", "timezone"},
        "runParams", "catchUpSeconds"}``."""
        return self._dicts("triggers")

    @property
    def raw_reporters(self) -> list[dict[str, Any]]:
        """The reporters as Dataiku-shaped dicts, to change in place (``save()`` writes them back):
        ``{"id", "name", "active", "phase", "outcomes", "messaging": {"type": "mail-scenario" or
        "webhook-scenario", "configuration": {…}}}`` (see ``seedbed.client._raw``)."""
        return self._dicts("reporters")

    @property
    def triggers(self) -> RepeatedCompositeFieldContainer[scenario_pb2.Trigger]:
        """The triggers as the contract's messages, to change in place."""
        self._reconcile("triggers")
        return self.raw.triggers

    @property
    def reporters(self) -> RepeatedCompositeFieldContainer[scenario_pb2.Reporter]:
        """The reporters as the contract's messages, to change in place."""
        self._reconcile("reporters")
        return self.raw.reporters

    def _dicts(self, kind: str) -> list[dict[str, Any]]:
        view = self._views.get(kind)
        if view is None:
            to_dict = _KINDS[kind][0]
            view = self._views[kind] = _DictView([to_dict(m) for m in getattr(self.raw, kind)])
            self._remember(kind, view)
        else:
            self._reconcile(kind)
        return view.items

    def _reconcile(self, kind: str) -> None:
        """Bring the dicts and the messages of ``kind`` in step (see the module docstring)."""
        view = self._views.get(kind)
        if view is None:
            return
        to_dict, from_dict = _KINDS[kind]
        messages = getattr(self.raw, kind)
        dicts_changed = view.items != view.items_then
        if dicts_changed and _state(messages) != view.messages_then:
            raise ValueError(
                f"raw_{kind} and {kind} were both changed since they were last read: change one form "
                f"or the other (read raw_{kind} again after changing the messages)"
            )
        if dicts_changed:
            if not isinstance(view.items, list):
                raise ValueError(f"raw_{kind}: expected a list of dicts")
            parsed = [from_dict(item, f"raw_{kind}[{i}]") for i, item in enumerate(view.items)]
            del messages[:]
            messages.extend(parsed)
        elif _state(messages) != view.messages_then:
            fresh = [to_dict(m) for m in messages]
            for item, new in zip(view.items, fresh, strict=False):
                item.clear()
                item.update(new)
            view.items.extend(fresh[len(view.items) :])
            del view.items[len(fresh) :]
        self._remember(kind, view)

    def _remember(self, kind: str, view: _DictView) -> None:
        view.items_then = copy.deepcopy(view.items)
        view.messages_then = _state(getattr(self.raw, kind))

    # -- triggers ----------------------------------------------------------------------------------

    def add_cron_trigger(
        self,
        expression: str,
        *,
        timezone: str = "UTC",
        name: str = "",
        params: Mapping[str, str] | None = None,
        trigger_id: str = "",
        active: bool = True,
    ) -> scenario_pb2.Trigger:
        """Add a trigger firing on a five-field cron ``expression`` in ``timezone``. The
        coordinator checks the expression on ``save()``; the trigger's id is generated then when
        ``trigger_id`` is empty."""
        trigger = self.triggers.add(
            id=trigger_id,
            name=name,
            active=active,
            cron=scenario_pb2.CronSchedule(expression=expression, timezone=check_timezone(timezone)),
            params=dict(params or {}),
        )
        return trigger

    def add_periodic_trigger(self, every_minutes: int, **kwargs: Any) -> scenario_pb2.Trigger:
        """Every ``every_minutes`` minutes, from midnight (a divisor of 60, or whole hours dividing
        24; anything else raises ValueError saying which values work)."""
        return self.add_cron_trigger(periodic_cron(every_minutes), **kwargs)

    def add_hourly_trigger(self, minute: int = 0, **kwargs: Any) -> scenario_pb2.Trigger:
        """Every hour at ``minute``."""
        return self.add_cron_trigger(f"{_check_range('minute', minute, 0, 59)} * * * *", **kwargs)

    def add_daily_trigger(self, hour: int = 0, minute: int = 0, **kwargs: Any) -> scenario_pb2.Trigger:
        """Every day at ``hour:minute`` in the trigger's time zone."""
        hour = _check_range("hour", hour, 0, 23)
        return self.add_cron_trigger(f"{_check_range('minute', minute, 0, 59)} {hour} * * *", **kwargs)

    def add_monthly_trigger(
        self, day: int = 1, hour: int = 0, minute: int = 0, **kwargs: Any
    ) -> scenario_pb2.Trigger:
        """On ``day`` of every month at ``hour:minute``. Months without that day (31 in April)
        have no run: use 28 or less to run every month."""
        day = _check_range("day", day, 1, 31)
        hour = _check_range("hour", hour, 0, 23)
        minute = _check_range("minute", minute, 0, 59)
        return self.add_cron_trigger(f"{minute} {hour} {day} * *", **kwargs)

    def remove_trigger(self, trigger_id: str) -> scenario_pb2.Trigger:
        """Remove the trigger with this id (or, failing that, this name); KeyError when none."""
        return self._remove(self.triggers, trigger_id, "trigger")  # type: ignore[no-any-return]

    # -- reporters ---------------------------------------------------------------------------------

    def add_webhook_reporter(
        self,
        url: str,
        *,
        events: Sequence[str] = ("RUN_FINISHED",),
        outcomes: Sequence[str] = (),
        headers: Mapping[str, str] | None = None,
        body_template: str = "",
        name: str = "",
        reporter_id: str = "",
    ) -> scenario_pb2.Reporter:
        """POST a JSON document on each event (``outcomes``: only runs ending in one of these)."""
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"webhook url must start with http:// or https://, got {url!r}")
        reporter = self.reporters.add(
            id=reporter_id,
            name=name,
            active=True,
            events=_events(events),
            outcomes=_outcomes(outcomes),
            webhook=scenario_pb2.WebhookTarget(
                url=url, headers=dict(headers or {}), body_template=body_template
            ),
        )
        return reporter

    def add_email_reporter(
        self,
        recipients: Sequence[str],
        *,
        sender: str = "",
        subject_template: str = "",
        body_template: str = "",
        events: Sequence[str] = ("RUN_FINISHED",),
        outcomes: Sequence[str] = (),
        name: str = "",
        reporter_id: str = "",
    ) -> scenario_pb2.Reporter:
        """E-mail ``recipients`` on each event; templates take ``${field}`` placeholders (see
        the contract's EmailTarget); an empty ``sender`` is the operator's default."""
        if isinstance(recipients, str) or not recipients:
            raise ValueError("recipients must be a non-empty list of addresses")
        reporter = self.reporters.add(
            id=reporter_id,
            name=name,
            active=True,
            events=_events(events),
            outcomes=_outcomes(outcomes),
            email=scenario_pb2.EmailTarget(
                sender=sender,
                recipients=list(recipients),
                subject_template=subject_template,
                body_template=body_template,
            ),
        )
        return reporter

    def set_email_sender(self, sender: str) -> int:
        """Set the From address of every e-mail reporter; how many there were."""
        count = 0
        for reporter in self.reporters:
            if reporter.HasField("email"):
                reporter.email.sender = sender
                count += 1
        return count

    def remove_reporter(self, reporter_id: str) -> scenario_pb2.Reporter:
        """Remove the reporter with this id (or, failing that, this name); KeyError when none."""
        return self._remove(self.reporters, reporter_id, "reporter")  # type: ignore[no-any-return]

    def _remove(self, items: Any, key: str, what: str) -> Any:
        for attr in ("id", "name"):
            for index, item in enumerate(items):
                if getattr(item, attr) == key:
                    removed = type(item)()
                    removed.CopyFrom(item)
                    del items[index]
                    return removed
        known = ", ".join(item.id for item in items) or "none"
        raise KeyError(f"no {what} {key!r} in scenario {self.scenario_id!r}; its {what}s: {known}")

    # -- saving ------------------------------------------------------------------------------------

    def save(self) -> ScenarioSettings:
        """Send the settings (whole) to the coordinator; they are read back from its answer, with
        the ids it gave new triggers and reporters (the dicts of ``raw_triggers`` and
        ``raw_reporters`` too, in place)."""
        for kind in _KINDS:
            self._reconcile(kind)
        self._scenario = self._client.update_scenario_settings(self.scenario_id, self.raw)
        self.raw.CopyFrom(self._scenario.settings)
        for kind in _KINDS:
            self._reconcile(kind)
        return self
