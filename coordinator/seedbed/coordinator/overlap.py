"""What happens around a fire once the store has resolved it by the scenario's overlap policy.

``Store.fires.fire`` resolves a fire inside one transaction (run now, wait, cancel, or run and
supersede the active runs), as ``runs.decide_overlap`` decides. ``FireLauncher`` carries the
decision out in this process: it starts the new run's drive, aborts the runs a CANCEL_RUNNING fire
superseded (through ``RunSupervisor.abort``, so they end ABORTED with the reason naming the fire),
and, as a supervisor listener, gives the oldest waiting fire of a scenario its run as soon as the
scenario's active run ends. ``release_all`` does the same for every scenario with waiting fires;
the trigger scheduler calls it on each pass, so a fire left waiting by a coordinator that stopped
between a run's end and the release still gets its run.

Rejected: releasing queued fires inside ``Store.finish_run`` (the store would have to launch runs),
and aborting superseded runs inside the RPC (RunScenario answers at once; an abort may wait for a
sandbox to stop).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from seedbed.coordinator.logs import LogHub
from seedbed.coordinator.observability.tracing import RunTracing
from seedbed.coordinator.runs import superseded_reason
from seedbed.coordinator.store import FireRecord, RunRecord, Store
from seedbed.coordinator.supervisor import RunSupervisor

log = logging.getLogger(__name__)


class FireLauncher:
    """Starts fires' runs and releases waiting fires. Register it with
    ``RunSupervisor.add_listener``; ``aclose()`` waits for the aborts it started."""

    def __init__(self, store: Store, supervisor: RunSupervisor, hub: LogHub, tracing: RunTracing) -> None:
        self._store = store
        self._supervisor = supervisor
        self._hub = hub
        self._tracing = tracing
        self._aborts: set[asyncio.Task[None]] = set()

    async def fire(
        self,
        scenario_id: str,
        params: dict[str, str],
        idempotency_key: str,
        *,
        triggered_by: str = "",
        trigger_id: str | None = None,
        scheduled_at: datetime | None = None,
        dry_run: bool = False,
    ) -> tuple[FireRecord, RunRecord | None, bool]:
        """``Store.fires.fire`` (in the fire's span, when tracing), then :meth:`launch`."""
        tracing = self._tracing
        with tracing.fire_span(scenario_id, trigger_id) as span:
            fire, run, created = await self._store.fires.fire(
                scenario_id,
                params,
                idempotency_key,
                triggered_by=triggered_by,
                trigger_id=trigger_id,
                scheduled_at=scheduled_at,
                traceparent=tracing.traceparent(span),
                dry_run=dry_run,
            )
            if created:  # a retried call answered with the fire it made: its spans are not kept
                tracing.name_fire(span, fire.id, fire.run_id)
        if created:
            tracing.name_call(fire.id, fire.run_id)
        if created:
            await self.launch(fire, run)
        return fire, run, created

    async def launch(self, fire: FireRecord, run: RunRecord | None) -> None:
        """Start the run a new fire created, and abort the runs it superseded (CANCEL_RUNNING)."""
        self._hub.notify(fire.id)
        if run is None:
            return
        self._supervisor.launch(run.id)
        for run_id in await self._store.fires.superseded_runs(fire.id):
            task = asyncio.create_task(self._abort(run_id, fire.id), name=f"supersede-{run_id}")
            self._aborts.add(task)
            task.add_done_callback(self._aborts.discard)

    async def _abort(self, run_id: str, fire_id: str) -> None:
        try:
            run = await self._store.get_run(run_id)
            reason = run.abort_reason or superseded_reason(fire_id)
            await self._supervisor.abort(run_id, reason)
            log.info("run %s: aborted by %s (overlap policy CANCEL_RUNNING)", run_id, fire_id)
        except Exception:
            log.exception("run %s: could not abort it for %s", run_id, fire_id)

    async def release(self, scenario_id: str) -> None:
        """Give the scenario's oldest waiting fire its run, if no run of it is active."""
        released = await self._store.fires.release_pending(scenario_id)
        if released is None:
            return
        fire, run = released
        if run is None:
            log.info("fire %s: cancelled while it waited: %s", fire.id, fire.cancel_reason)
            self._hub.notify(fire.id)
            # The next waiting fire is cancelled the same way.
            await self.release(scenario_id)
            return
        log.info("fire %s: its turn came; run %s created", fire.id, run.id)
        await self.launch(fire, run)

    async def release_all(self) -> None:
        """:meth:`release` for every scenario with waiting fires."""
        for scenario_id in await self._store.fires.pending_scenarios():
            try:
                await self.release(scenario_id)
            except Exception:
                log.exception("scenario %s: could not release its waiting fires", scenario_id)

    async def run_started(self, run: RunRecord) -> None:
        return None

    async def run_finished(self, run: RunRecord) -> None:
        await self.release(run.scenario_id)

    async def aclose(self) -> None:
        if self._aborts:
            await asyncio.gather(*self._aborts, return_exceptions=True)
