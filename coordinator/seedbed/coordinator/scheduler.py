"""The trigger scheduler: fires scenarios' cron triggers when they are due.

Every ``trigger_interval_seconds`` one pass looks at each active trigger of each active scenario.
``trigger_states`` keeps, per trigger, the latest due time fired or passed over (``last_due_at``).
A trigger seen for the first time starts counting from that moment (times before it existed are not
caught up). When due times passed since ``last_due_at``, ``triggers.due_now`` applies the catch-up
rule: the latest is fired if it is younger than the trigger's ``catch_up_seconds``, the older ones
are skipped and logged.

Several coordinators may share the store. A due time is fired with the idempotency key
``trigger:<scenario>:<trigger>:<due time>``, so two coordinators firing it at once make one fire;
then ``last_due_at`` is moved forward with a conditional UPDATE (only forward), which tells the
others the time is done. Firing before claiming means a coordinator that stops between the two
loses nothing: the next pass fires the same key again and gets the same fire back.

Inactive triggers and triggers of inactive scenarios are moved forward without firing, so
reactivating one does not catch up the times it was off.

Each pass also releases fires left waiting (``FireLauncher.release_all``).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from seedbed.coordinator.errors import CoordinatorError
from seedbed.coordinator.overlap import FireLauncher
from seedbed.coordinator.periodic import PeriodicTask
from seedbed.coordinator.store import ScenarioRecord, Store, now
from seedbed.coordinator.triggers import CronTrigger, due_now, parse_trigger

log = logging.getLogger(__name__)


def trigger_key(scenario_id: str, trigger_id: str, due: datetime) -> str:
    """The idempotency key of a trigger's fire for one due time."""
    return f"trigger:{scenario_id}:{trigger_id}:{due.isoformat()}"


class TriggerScheduler:
    """Owns the trigger loop: ``start()`` then ``aclose()``; :meth:`run_once` is one pass."""

    def __init__(self, store: Store, fires: FireLauncher, interval_seconds: float) -> None:
        self._store = store
        self._fires = fires
        self._interval = interval_seconds
        self._passes = PeriodicTask("trigger-scheduler", self.run_once, interval_seconds)

    def start(self) -> None:
        self._passes.start()

    async def aclose(self) -> None:
        await self._passes.aclose()

    async def run_once(self, at: datetime | None = None) -> int:
        """One pass at ``at`` (default: now). Returns how many fires it made."""
        at = at or now()
        made = 0
        states = await self._store.fires.trigger_states()
        for scenario in await self._store.fires.scheduled_scenarios():
            for data in scenario.settings.triggers:
                trigger = parse_trigger(data)
                if trigger is None:
                    continue
                try:
                    made += await self._consider(scenario, trigger, states.get((scenario.id, trigger.id)), at)
                except Exception:
                    log.exception("trigger %s of scenario %s: pass failed", trigger.id, scenario.id)
        await self._fires.release_all()
        return made

    async def _consider(
        self, scenario: ScenarioRecord, trigger: CronTrigger, last: datetime | None, at: datetime
    ) -> int:
        """``last``: the trigger's latest due time fired or passed over, None before it was first seen
        (a stale read is harmless: claiming a due time is conditional)."""
        if last is None:
            await self._store.fires.claim_trigger_due(scenario.id, trigger.id, at, first=True)
            log.info(
                "trigger %s of scenario %s: first seen; next due %s",
                trigger.id,
                scenario.id,
                trigger.next_due(at).isoformat(),
            )
            return 0
        decision = due_now(trigger, last, at)
        if decision.advance_to is None:
            return 0
        # Inactive: move on without firing, so reactivating it catches nothing up.
        fire_at = decision.fire_at if trigger.active and scenario.settings.active else None
        if decision.skipped_from is not None and trigger.active and scenario.settings.active:
            missed = decision.skipped_from.isoformat()
            if decision.skipped_from != decision.advance_to:
                missed += f" to {decision.advance_to.isoformat()}"
            # A pass that came a little late (a per-second trigger) is not worth a warning.
            late = at - decision.skipped_from > timedelta(seconds=2 * self._interval + 1)
            log.log(
                logging.WARNING if late else logging.DEBUG,
                "trigger %s of scenario %s: due time(s) %s missed (no coordinator ran, or passes came "
                "late); %s",
                trigger.id,
                scenario.id,
                missed,
                "firing the latest once"
                if fire_at
                else f"older than catch_up_seconds ({trigger.catch_up.total_seconds():.0f}): skipped",
            )
        made = await self._fire(scenario, trigger, fire_at) if fire_at is not None else 0
        await self._store.fires.claim_trigger_due(scenario.id, trigger.id, decision.advance_to)
        return made

    async def _fire(self, scenario: ScenarioRecord, trigger: CronTrigger, due: datetime) -> int:
        try:
            fire, run, created = await self._fires.fire(
                scenario.id,
                dict(trigger.params),
                trigger_key(scenario.id, trigger.id, due),
                triggered_by=scenario.effective_run_as,
                trigger_id=trigger.id,
                scheduled_at=due,
            )
        except CoordinatorError as exc:
            # Made inactive or deleted since it was read: nothing to fire.
            log.info("trigger %s of scenario %s: not fired for %s: %s", trigger.id, scenario.id, due, exc)
            return 0
        if created:
            log.info(
                "trigger %s of scenario %s fired for %s: fire %s %s%s",
                trigger.id,
                scenario.id,
                due.isoformat(),
                fire.id,
                fire.state,
                f" (run {run.id})" if run else f": {fire.cancel_reason or fire.queue_reason or ''}",
            )
        return int(created)
