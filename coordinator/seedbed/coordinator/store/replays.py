"""The replay part of the store: the image each run's script ran in, and the creation of a replay's
fire and run.

Columns of ``runs`` (migration 0015, read into ``RunRecord``): ``image`` (set by every attempt that
started: the latest is the one whose writes the run kept), ``replayed_from`` and ``replay`` (JSON of
``records.ReplayPin``: what a replay's attempts must reproduce), written here.

A replay is a fire like RunScenario's, resolved in one transaction under the scenario's lock by the
same overlap policy (``runs.decide_overlap``), with the same "insert if absent, then compare the
request hash" idempotency on its key. Its run copies the original's script, scenario revision,
params and run key instead of the scenario's current ones; it acts as the scenario's run-as now,
which must still be the one the caller was allowed to replay as (``run_as``: the use case refuses a
run-as other than the run's own to anyone but that user or a project ADMIN, since the old script
was never approved to act as it). A policy that would queue the fire
cancels it instead: a queued fire is later given a run from the scenario as it is then
(``FireRepository.release_pending``), which is not what a replay asks for.

Rejected: extra columns on ``fires`` carrying the replay's overrides through the queue (every
reader of fires would have to know them); creating the run without a fire (waits, watches and
idempotency all go through fires).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from seedbed.coordinator.errors import FailedPreconditionError, NotFoundError
from seedbed.coordinator.model import ACTIVE_STATES, FireState
from seedbed.coordinator.runs import decide_overlap
from seedbed.coordinator.store import _rows
from seedbed.coordinator.store import _schema as t
from seedbed.coordinator.store.fires import (
    _active_runs,
    _insert_fire,
    _key_taken,
    _new_fire,
    _new_run,
    _Origin,
    _stored_fire,
)
from seedbed.coordinator.store.records import FireRecord, ReplayPin, RunRecord, ScenarioRecord, now

if TYPE_CHECKING:
    from seedbed.coordinator.store.store import Store

__all__ = ["ReplayPin", "ReplayRepository", "check_scenario_of", "replay_request_hash"]


def check_scenario_of(run: RunRecord, scenario: ScenarioRecord | None) -> ScenarioRecord:
    """``scenario`` (the one now holding ``run``'s scenario id, None: none does), if it is the one
    the run was made from; else FailedPreconditionError. A scenario given the id after a delete
    (created after the run, maybe in another project) is not: its run-as and settings were never
    the run's, and its project may not be."""
    if scenario is None or scenario.project_key != run.project_key or scenario.created_at > run.created_at:
        raise FailedPreconditionError(
            f"run {run.id}'s scenario {run.scenario_id!r} was deleted; a replay needs its scenario "
            "(for its project, run-as and settings)"
        )
    return scenario


def replay_request_hash(run_id: str, connections: Mapping[str, str]) -> str:
    """The request hash of a replay's fire: the same key with another request is refused."""
    body = json.dumps({"replay_of": run_id, "connections": dict(connections)}, sort_keys=True)
    return hashlib.sha256(body.encode()).hexdigest()


class ReplayRepository:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def record_image(self, run_id: str, image: str) -> None:
        """The image an attempt of the run started in (the latest attempt's wins: its writes are
        the ones the run kept). Only while the run is active: a late event changes nothing."""
        if not image:
            return
        async with self._store._write() as conn:
            await conn.execute(
                update(t.runs)
                .where(t.runs.c.id == run_id, t.runs.c.state.in_([s.value for s in ACTIVE_STATES]))
                .values(image=image[:255])
            )

    async def replay(
        self,
        original: RunRecord,
        pin: ReplayPin,
        idempotency_key: str,
        *,
        run_as: str,
        triggered_by: str,
        traceparent: str = "",
    ) -> tuple[FireRecord, RunRecord | None, bool]:
        """Record the replay's fire and resolve it: (fire, run or None, created). The same key with
        the same request answers the stored fire (created=False); with another, AlreadyExistsError.

        ``run_as``: the identity the caller was allowed to replay as (``app.replay.replay_identity``)
        and the mapping was checked for; once the scenario acts as another, FailedPreconditionError."""
        digest = replay_request_hash(original.id, pin.connection_aliases)
        try:
            return await self._replay(
                original, pin, idempotency_key, digest, run_as, triggered_by, traceparent
            )
        except IntegrityError:
            pass  # a concurrent call with the same key won the insert
        return await self._stored(idempotency_key, digest), None, False

    async def _stored(self, idempotency_key: str, digest: str) -> FireRecord:
        return await _stored_fire(
            self._store,
            idempotency_key,
            digest,
            differs="another run or connection mapping, or a scenario run",
        )

    async def _replay(
        self,
        original: RunRecord,
        pin: ReplayPin,
        idempotency_key: str,
        digest: str,
        run_as: str,
        triggered_by: str,
        traceparent: str,
    ) -> tuple[FireRecord, RunRecord | None, bool]:
        at = now()
        async with self._store._write() as conn:
            if idempotency_key and await _key_taken(conn, idempotency_key):
                return await self._stored(idempotency_key, digest), None, False
            try:
                found = await self._store._lock_scenario(conn, original.scenario_id)
            except NotFoundError:
                found = None  # deleted since the caller's check
            scenario = check_scenario_of(original, found)
            if scenario.effective_run_as != run_as:  # its run_as or script changed since the check
                raise FailedPreconditionError(
                    f"scenario {scenario.id!r} now acts as {scenario.effective_run_as!r}, not {run_as!r} "
                    f"as when this replay of run {original.id} was checked: replay again"
                )
            if scenario.settings.refuses_fire(from_trigger=False):
                raise FailedPreconditionError(
                    f"scenario {scenario.id!r} is inactive and set to refuse runs while inactive "
                    "(settings.refuse_runs_when_inactive): activate it before replaying its runs"
                )
            # A replay of a dry run is a dry run: the same inputs, checked against the mapped
            # targets, writing nothing (a dry run's replay turning into writes would be a surprise;
            # run the scenario itself to write).
            origin = _Origin(triggered_by=triggered_by, traceparent=traceparent, dry_run=original.dry_run)
            fire_values = _new_fire(scenario.id, original.params, idempotency_key, digest, origin, at)
            active = await _active_runs(conn, scenario.id)
            decision = decide_overlap(scenario.settings.overlap_policy, scenario.id, active, [])
            run_values: dict[str, Any] | None = None
            if decision.cancel_reason is not None or decision.queue_reason is not None:
                fire_values["state"] = FireState.CANCELLED.value
                fire_values["cancel_reason"] = decision.cancel_reason or (
                    f"{decision.queue_reason}; a replay does not wait its turn: replay again once it ends"
                )
            else:
                run_values = _new_run(scenario, fire_values, original.run_key, at)
                run_values.update(
                    script=original.script,
                    scenario_revision=original.scenario_revision,
                    replayed_from=original.id,
                    replay=pin.to_json(),
                )
                if pin.template_versions:
                    run_values["template_pins"] = json.dumps(pin.template_versions, sort_keys=True)
                fire_values["state"] = FireState.RUN_CREATED.value
                fire_values["run_id"] = run_values["id"]
            if not await _insert_fire(self._store, conn, fire_values, run_values, decision):
                return await self._stored(idempotency_key, digest), None, False
        return _rows.to_fire(fire_values), (_rows.to_run(run_values) if run_values else None), True
