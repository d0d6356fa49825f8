"""Time-based triggers: validation of a scenario's Trigger messages and their due times.

A cron trigger is due at each time its expression matches in its time zone; ``cronsim`` evaluates
the expression (five fields, or six with a leading seconds field) and handles daylight saving time
the way Debian cron does: a time that does not exist on the day the clocks go forward runs at the
first moment after the gap, a fixed time that happens twice on the day they go back runs once
(an expression that repeats within the hour, such as */30, runs in both passes).

Catch-up (see the Trigger message): each due time is fired once by one coordinator. When several due
times passed since the last one fired (no coordinator ran), only the latest is fired, and only if it
is less than ``catch_up_seconds`` old; the others are skipped and logged. ``due_now`` decides that.

Pure logic: imports no heavyweight library.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError
from google.protobuf.json_format import MessageToDict

from seedbed.api.v1 import scenario_pb2
from seedbed.coordinator.errors import InvalidArgumentError
from seedbed.coordinator.model import new_id, validate_params

MAX_TRIGGERS = 20
MAX_EXPRESSION_CHARS = 200
DEFAULT_CATCH_UP = timedelta(seconds=3600)
# Due times looked at in one catch-up window (a per-second schedule in an hour's window: 3,600).
_MAX_STEPS = 100_000


@dataclass(frozen=True)
class CronTrigger:
    """A validated cron trigger of a scenario."""

    id: str
    expression: str
    timezone: str = ""
    name: str = ""
    active: bool = True
    params: Mapping[str, str] = field(default_factory=dict)
    catch_up: timedelta = DEFAULT_CATCH_UP

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone or "UTC")

    def next_due(self, after: datetime) -> datetime:
        """The first due time strictly after ``after`` (aware), in UTC."""
        # cronsim drops the microseconds and steps one second before it looks: strictly after.
        return next(CronSim(self.expression, after.astimezone(self.zone))).astimezone(UTC)

    def latest_due(self, at_or_before: datetime) -> datetime:
        """The last due time at or before the given moment, in UTC."""
        start = at_or_before.astimezone(self.zone)
        if start.microsecond == 0:
            # In reverse, cronsim steps back one second first unless microseconds are there to
            # drop: with them, the start itself is a candidate.
            start += timedelta(microseconds=1)
        return next(CronSim(self.expression, start, reverse=True)).astimezone(UTC)


@dataclass(frozen=True)
class DueDecision:
    """What to do with a trigger now: fire ``fire_at`` (None: nothing to fire); in any case move
    its last due time to ``advance_to`` (None: leave it). ``skipped_from`` is the first missed time
    that is too old to catch up (logged)."""

    fire_at: datetime | None
    advance_to: datetime | None
    skipped_from: datetime | None = None


def due_now(trigger: CronTrigger, last_due: datetime, now: datetime) -> DueDecision:
    """Apply the catch-up rule to one trigger whose latest fired (or passed over) due time is
    ``last_due``."""
    first = trigger.next_due(last_due)
    if first > now:
        return DueDecision(None, None)
    # The latest due time younger than the catch-up window, found by stepping forward the way the
    # schedule runs: stepping back from now can disagree with stepping forward where the wall clock
    # repeats (daylight saving time ends), which would report the same hour missed on every pass.
    window = now - trigger.catch_up
    due = first if first > window else trigger.next_due(window)
    latest: datetime | None = None
    for _ in range(_MAX_STEPS):
        if due > now:
            break
        latest, due = due, trigger.next_due(due)
    if latest is None:
        # Every missed time is too old: skipped, and passed over.
        return DueDecision(None, max(first, trigger.latest_due(now)), skipped_from=first)
    return DueDecision(latest, latest, skipped_from=first if first < latest else None)


def parse_trigger(data: Mapping[str, Any]) -> CronTrigger | None:
    """A stored trigger (proto JSON) as a CronTrigger; None for a kind this server cannot run."""
    cron = data.get("cron")
    if not isinstance(cron, Mapping):
        return None
    seconds = int(data.get("catch_up_seconds") or 0)
    return CronTrigger(
        id=str(data["id"]),
        expression=str(cron.get("expression", "")),
        timezone=str(cron.get("timezone", "")),
        name=str(data.get("name", "")),
        active=bool(data.get("active", True)),
        params=dict(data.get("params") or {}),
        catch_up=timedelta(seconds=seconds) if seconds else DEFAULT_CATCH_UP,
    )


def validate_triggers(triggers: Sequence[scenario_pb2.Trigger]) -> tuple[dict[str, Any], ...]:
    """Check a scenario's triggers and give each an id; returns them as proto JSON."""
    if len(triggers) > MAX_TRIGGERS:
        raise InvalidArgumentError("settings.triggers", f"{len(triggers)} triggers; at most {MAX_TRIGGERS}")
    seen: set[str] = set()
    out = []
    for index, trigger in enumerate(triggers):
        where = f"settings.triggers[{index}]"
        msg = scenario_pb2.Trigger()
        msg.CopyFrom(trigger)
        msg.id = msg.id or new_id("trg")
        if len(msg.id) > 80:
            raise InvalidArgumentError(f"{where}.id", f"is {len(msg.id)} characters; at most 80")
        if msg.id in seen:
            raise InvalidArgumentError(f"{where}.id", f"{msg.id!r} is used twice")
        seen.add(msg.id)
        if not msg.HasField("active"):
            msg.active = True
        if msg.WhichOneof("kind") != "cron":
            raise InvalidArgumentError(where, "has no kind: set cron (expression and timezone)")
        _check_cron(msg.cron, f"{where}.cron")
        try:
            validate_params(msg.params)
        except InvalidArgumentError as exc:
            raise InvalidArgumentError(f"{where}.{exc.field}", str(exc).partition(": ")[2]) from None
        out.append(MessageToDict(msg, preserving_proto_field_name=True))
    return tuple(out)


def _check_cron(cron: scenario_pb2.CronSchedule, where: str) -> None:
    expression = cron.expression.strip()
    if not expression:
        raise InvalidArgumentError(f"{where}.expression", 'is empty: e.g. "30 2 * * 1-5"')
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise InvalidArgumentError(f"{where}.expression", f"is longer than {MAX_EXPRESSION_CHARS} characters")
    fields = len(expression.split())
    if fields not in (5, 6):
        raise InvalidArgumentError(
            f"{where}.expression",
            f"{expression!r} has {fields} fields: use five (minute hour day-of-month month "
            "day-of-week) or six with a leading seconds field",
        )
    try:
        zone = ZoneInfo(cron.timezone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidArgumentError(
            f"{where}.timezone", f"{cron.timezone!r} is not a known IANA time zone, e.g. Europe/Paris"
        ) from None
    try:
        next(CronSim(expression, datetime.now(zone)))
    except CronSimError as exc:
        raise InvalidArgumentError(f"{where}.expression", f"{expression!r} is not valid: {exc}") from None
    except StopIteration:
        raise InvalidArgumentError(f"{where}.expression", f"{expression!r} never matches a date") from None
