"""The periodic purge pass: runs older than their scenario's time to live are purged.

A scenario may set `purge_after_seconds`: every `purge_interval_seconds` the pass lists, per such
scenario (its settings as they are now: lowering the time to live applies to the runs already
there), the runs that ended longer ago than that and are neither purged nor being purged, claims
each (`store.purges.claim`: insert-if-absent, or a conditional UPDATE of a claim whose lease has
passed), and purges it through `RunPurger.held` as `PurgeRun` would, recording DONE or FAILED with
what it did (`seedbed run purges`, `RunService.ListPurges`). A failed purge is tried again once
its retry time comes; a DONE one never again.

A coordinator that stops mid-purge leaves the claim RUNNING; once its lease passes (it is renewed
every third of `purge_lease_seconds` while the purge runs) the next pass of any coordinator, this
one restarted included, claims it again and resumes: what was purged is gone from the ledger (each
batch's entry is deleted with its rows), REST deletes of what is gone answer 404, so nothing is
purged twice. Several coordinators: each claim is one conditional statement, so one of them
purges a run.

One run's failure, whatever it is, is recorded FAILED and the pass goes on to the next run.
Counted in `seedbed_purges{trigger, outcome}` (Prometheus).

Rejected: a purge per run scheduled at its end (lost with the coordinator, and not changed when
the time to live is); purging every due run at once (one at a time bounds what the pass holds,
and the next pass goes on).
"""

from __future__ import annotations

import logging
from datetime import timedelta

from seedbed.coordinator.errors import CoordinatorError, NotFoundError
from seedbed.coordinator.periodic import PeriodicTask
from seedbed.coordinator.purge import RunPurger
from seedbed.coordinator.store import Store, now
from seedbed.coordinator.store.purges import TimeToLive

__all__ = ["PurgePass"]

log = logging.getLogger(__name__)

# Runs claimed per pass: the next pass goes on.
PER_PASS = 20
_PAGE = 500


class PurgePass:
    """Owns the periodic task (`start()`/`aclose()`); `sweep()` is one pass."""

    def __init__(
        self,
        store: Store,
        purger: RunPurger,
        *,
        interval_seconds: float,
    ) -> None:
        self._store = store
        self._purger = purger
        self._task = PeriodicTask("purge-pass", self.sweep, interval_seconds, first_wait=False)

    def start(self) -> None:
        self._task.start()

    async def aclose(self) -> None:
        await self._task.aclose()

    async def sweep(self) -> list[str]:
        """One pass: the runs it purged (DONE or FAILED)."""
        ttls = []
        offset = 0
        while True:
            page = await self._store.list_scenarios(_PAGE, offset)
            for scenario in page:
                seconds = scenario.settings.purge_after_seconds
                if seconds > 0:
                    after = timedelta(seconds=seconds)
                    ttls.append(TimeToLive(scenario.id, scenario.project_key, scenario.created_at, after))
            if len(page) < _PAGE:
                break
            offset += _PAGE
        if not ttls:
            return []
        purged = []
        for run_id in await self._store.purges.due(ttls, now(), PER_PASS):
            if await self._purge(run_id):
                purged.append(run_id)
        return purged

    async def _purge(self, run_id: str) -> bool:
        try:
            run = await self._store.get_run(run_id)
        except NotFoundError:
            return False  # deleted meanwhile
        holder = self._purger.claimant("ttl")
        claimed = await self._store.purges.claim(
            run.id,
            scenario_id=run.scenario_id,
            project_key=run.project_key,
            trigger="ttl",
            holder=holder,
            at=now(),
            lease=self._purger.lease,
        )
        if not claimed:
            return False  # another coordinator has it, or it was purged meanwhile
        log.info("run %s: past its scenario's purge_after_seconds, purging", run.id)
        try:
            await self._purger.held(run, holder, trigger="ttl")
        except CoordinatorError as exc:  # recorded FAILED: the pass goes on
            log.warning("run %s: the periodic purge failed: %s", run.id, exc)
        except Exception:  # recorded FAILED too (`held`); one run's bug or outage stops no other
            log.exception("run %s: the periodic purge failed", run.id)
        return True
