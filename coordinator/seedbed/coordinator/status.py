"""GetScenarioStatus: what a scenario is doing now and what it will do next."""

from __future__ import annotations

from datetime import datetime

from seedbed.api.v1 import scenario_pb2
from seedbed.coordinator import _convert as cv
from seedbed.coordinator.store import ScenarioRecord, Store, now
from seedbed.coordinator.triggers import CronTrigger, parse_trigger


def next_trigger(scenario: ScenarioRecord, after: datetime) -> tuple[datetime, CronTrigger] | None:
    """The earliest due time after ``after`` among the scenario's active triggers; None when the
    scenario is inactive or has no active trigger."""
    if not scenario.settings.active:
        return None
    best: tuple[datetime, CronTrigger] | None = None
    for data in scenario.settings.triggers:
        trigger = parse_trigger(data)
        if trigger is None or not trigger.active:
            continue
        due = trigger.next_due(after)
        if best is None or due < best[0]:
            best = (due, trigger)
    return best


async def scenario_status(store: Store, scenario_id: str) -> scenario_pb2.GetScenarioStatusResponse:
    scenario = await store.get_scenario(scenario_id)
    activity = await store.fires.scenario_activity(scenario_id)
    msg = scenario_pb2.GetScenarioStatusResponse(
        running=bool(activity.active_run_ids),
        current_run_ids=activity.active_run_ids,
        queued_fire_ids=activity.pending_fire_ids,
    )
    upcoming = next_trigger(scenario, now())
    if upcoming is not None:
        msg.next_run_time.FromDatetime(upcoming[0])
        msg.next_run_trigger_id = upcoming[1].id
    last = activity.last_ended
    if last is not None:
        msg.last_run_id = last.id
        msg.last_outcome = cv.run_to_proto(last).state
        if last.ended_at is not None:
            msg.last_end_time.FromDatetime(last.ended_at)
    return msg
