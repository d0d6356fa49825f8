"""The fires part of the store: trigger fires, their resolution by the scenario's overlap policy,
the fires queued behind an active run, and the cron triggers' last due times.

A fire is "insert if absent" on its idempotency key, then a read-back that compares request hashes.
It is resolved under the scenario's lock (``SELECT … FOR UPDATE`` on PostgreSQL, the write lock on
SQLite): given its run, queued PENDING, or cancelled; a PENDING fire gets its run from
:meth:`FireRepository.release_pending` once the scenario has no active run. What the policy makes of
a fire is decided by ``runs.decide_overlap`` (pure); this repository reads its inputs (the active
runs, the waiting fires) and writes its decision in the same transaction.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from seedbed.coordinator.errors import AlreadyExistsError, FailedPreconditionError, NotFoundError
from seedbed.coordinator.model import (
    ACTIVE_STATES,
    TERMINAL_STATES,
    FireState,
    RunState,
    new_id,
)
from seedbed.coordinator.runs import OverlapDecision, decide_overlap, superseded_reason
from seedbed.coordinator.store import _rows
from seedbed.coordinator.store import _schema as t
from seedbed.coordinator.store.records import FireRecord, RunRecord, ScenarioRecord, as_utc, now

if TYPE_CHECKING:
    from seedbed.coordinator.store.store import Store

__all__ = ["FireRepository", "ScenarioActivity", "request_hash"]


def _inactive_refusal(scenario_id: str, trigger_id: str | None) -> str:
    if trigger_id is not None:
        return f"scenario {scenario_id!r} is inactive: its trigger {trigger_id!r} fires nothing"
    return (
        f"scenario {scenario_id!r} is inactive and set to refuse runs while inactive "
        "(settings.refuse_runs_when_inactive): activate it, or clear that setting, before running it"
    )


def request_hash(scenario_id: str, params: dict[str, str], *, dry_run: bool = False) -> str:
    request: dict[str, Any] = {"scenario_id": scenario_id, "params": params}
    if dry_run:  # only when set: the hashes of fires recorded before dry runs existed still match
        request["dry_run"] = True
    body = json.dumps(request, sort_keys=True)
    return hashlib.sha256(body.encode()).hexdigest()


class FireRepository:
    def __init__(self, store: Store) -> None:
        self._store = store

    # -- fires -------------------------------------------------------------------------------------

    async def fire(
        self,
        scenario_id: str,
        params: dict[str, str],
        idempotency_key: str,
        *,
        triggered_by: str = "",
        trigger_id: str | None = None,
        scheduled_at: datetime | None = None,
        traceparent: str = "",
        dry_run: bool = False,
    ) -> tuple[FireRecord, RunRecord | None, bool]:
        """Record a fire and resolve it by the scenario's overlap policy. Returns (fire, run or None,
        created).

        The fire may end up PENDING (QUEUE_ONE, QUEUE_ALL: :meth:`release_pending` gives it its run
        once the active one ends) or CANCELLED (SKIP, QUEUE_ONE with a fire already waiting). With
        CANCEL_RUNNING the active runs get an abort reason naming the fire in the same transaction;
        the caller stops them (``overlap.FireLauncher``). With an idempotency key already used: the
        same request answers the stored fire (created=False); a different request raises
        AlreadyExistsError.
        """
        digest = request_hash(scenario_id, params, dry_run=dry_run)
        origin = _Origin(triggered_by, trigger_id, scheduled_at, traceparent, dry_run)
        try:
            return await self._fire(scenario_id, params, idempotency_key, digest, origin)
        except IntegrityError:
            # A concurrent call with the same key won the insert (PostgreSQL, several coordinators).
            pass
        return await self._stored(idempotency_key, digest), None, False

    async def key_used(self, idempotency_key: str) -> bool:
        """Whether a fire with this idempotency key exists (a retry of it starts nothing)."""
        async with self._store._engine.connect() as conn:
            return await _key_taken(conn, idempotency_key)

    async def _stored(self, idempotency_key: str, digest: str) -> FireRecord:
        return await _stored_fire(self._store, idempotency_key, digest, differs="scenario or params differ")

    async def _fire(
        self,
        scenario_id: str,
        params: dict[str, str],
        idempotency_key: str,
        digest: str,
        origin: _Origin,
    ) -> tuple[FireRecord, RunRecord | None, bool]:
        at = now()
        async with self._store._write() as conn:
            if idempotency_key and await _key_taken(conn, idempotency_key):
                return await self._stored(idempotency_key, digest), None, False
            scenario = await self._store._lock_scenario(conn, scenario_id)
            if scenario.settings.refuses_fire(from_trigger=origin.trigger_id is not None):
                raise FailedPreconditionError(_inactive_refusal(scenario_id, origin.trigger_id))
            fire_values = _new_fire(scenario_id, params, idempotency_key, digest, origin, at)
            # The policy decides on what the scenario is doing, read under its lock.
            decision = decide_overlap(
                scenario.settings.overlap_policy,
                scenario.id,
                await _active_runs(conn, scenario.id),
                await _pending_fire_ids(conn, scenario.id),
            )
            run_values: dict[str, Any] | None = None
            if decision.cancel_reason is not None:
                fire_values["state"] = FireState.CANCELLED.value
                fire_values["cancel_reason"] = decision.cancel_reason
            elif decision.queue_reason is not None:
                fire_values["state"] = FireState.PENDING.value
                fire_values["queue_reason"] = decision.queue_reason
                fire_values["resolved_at"] = None
            else:
                run_values = _new_run(scenario, fire_values, idempotency_key or new_id("rk"), at)
                fire_values["state"] = FireState.RUN_CREATED.value
                fire_values["run_id"] = run_values["id"]
            if not await _insert_fire(self._store, conn, fire_values, run_values, decision):
                # The key was taken between the read above and this insert: answer the winner's fire.
                return await self._stored(idempotency_key, digest), None, False
        return _rows.to_fire(fire_values), (_rows.to_run(run_values) if run_values else None), True

    # -- the queue: fires waiting behind an active run ---------------------------------------------

    async def release_pending(self, scenario_id: str) -> tuple[FireRecord, RunRecord | None] | None:
        """Resolve the oldest PENDING fire of a scenario that has no active run: give it its run
        (or cancel it when the scenario became inactive or was deleted). None when nothing waits or
        a run is still active.

        The scenario's row lock (PostgreSQL) or the write lock (SQLite) and the conditional update
        on the fire's state make sure two coordinators never resolve one fire twice.
        """
        at = now()
        async with self._store._write() as conn:
            pending = await _pending_fire_ids(conn, scenario_id)
            if not pending:
                return None
            try:
                scenario: ScenarioRecord | None = await self._store._lock_scenario(conn, scenario_id)
            except NotFoundError:
                scenario = None
            if scenario is not None and await _active_runs(conn, scenario_id):
                return None
            row = (await conn.execute(select(t.fires).where(t.fires.c.id == pending[0]))).one()
            fire = _rows.to_fire(row._mapping)
            changes: dict[str, Any] = {"resolved_at": at, "queue_reason": None}
            run_values: dict[str, Any] | None = None
            if scenario is None or scenario.settings.refuses_fire(from_trigger=fire.trigger_id is not None):
                changes["state"] = FireState.CANCELLED.value
                changes["cancel_reason"] = (
                    f"scenario {scenario_id} was deleted while the fire waited"
                    if scenario is None
                    else f"scenario {scenario_id} became inactive while the fire waited"
                )
            else:
                values = {
                    "id": fire.id,
                    "params": json.dumps(fire.params),
                    "trigger_id": fire.trigger_id,
                    "triggered_by": fire.triggered_by,
                    "traceparent": fire.traceparent or None,
                    "dry_run": fire.dry_run,
                }
                run_values = _new_run(scenario, values, fire.idempotency_key or new_id("rk"), at)
                changes["state"] = FireState.RUN_CREATED.value
                changes["run_id"] = run_values["id"]
            result = await conn.execute(
                update(t.fires)
                .where(t.fires.c.id == fire.id, t.fires.c.state == FireState.PENDING.value)
                .values(**changes)
            )
            if not result.rowcount:
                return None
            if run_values is not None:
                await conn.execute(t.runs.insert().values(**run_values))
            row = (await conn.execute(select(t.fires).where(t.fires.c.id == fire.id))).one()
        return _rows.to_fire(row._mapping), (_rows.to_run(run_values) if run_values else None)

    async def pending_scenarios(self) -> list[str]:
        """Scenarios with fires waiting their turn."""
        query = select(t.fires.c.scenario_id).where(t.fires.c.state == FireState.PENDING.value).distinct()
        async with self._store._engine.connect() as conn:
            return list((await conn.execute(query)).scalars())

    async def superseded_runs(self, fire_id: str) -> list[str]:
        """Active runs a CANCEL_RUNNING fire asked to abort (their abort reason names it)."""
        query = select(t.runs.c.id).where(
            t.runs.c.state.in_([s.value for s in ACTIVE_STATES]),
            t.runs.c.abort_reason.like(f"cancelled by {fire_id}:%"),
        )
        async with self._store._engine.connect() as conn:
            return list((await conn.execute(query)).scalars())

    # -- trigger states ----------------------------------------------------------------------------

    async def scheduled_scenarios(self) -> list[ScenarioRecord]:
        """Scenarios with at least one cron trigger (active or not)."""
        query = select(t.scenarios).where(t.scenarios.c.settings.like('%"cron"%')).order_by(t.scenarios.c.id)
        async with self._store._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [s for s in (_rows.to_scenario(r._mapping) for r in rows) if s.settings.triggers]

    async def trigger_states(self) -> dict[tuple[str, str], datetime]:
        """Every trigger's latest due time fired or passed over, by (scenario id, trigger id): one
        read for a whole scheduler pass."""
        query = select(
            t.trigger_states.c.scenario_id, t.trigger_states.c.trigger_id, t.trigger_states.c.last_due_at
        )
        async with self._store._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return {(r.scenario_id, r.trigger_id): as_utc(r.last_due_at) for r in rows}

    async def trigger_last_due(self, scenario_id: str, trigger_id: str) -> datetime | None:
        """The latest due time of a trigger fired or passed over; None before it was first seen."""
        query = select(t.trigger_states.c.last_due_at).where(
            t.trigger_states.c.scenario_id == scenario_id, t.trigger_states.c.trigger_id == trigger_id
        )
        async with self._store._engine.connect() as conn:
            return as_utc((await conn.execute(query)).scalar_one_or_none())

    async def claim_trigger_due(
        self, scenario_id: str, trigger_id: str, due: datetime, *, first: bool = False
    ) -> bool:
        """Move a trigger's last due time forward to ``due`` (never back); with ``first``, record it
        if the trigger has no state yet. False when another coordinator got there first."""
        at = now()
        async with self._store._write() as conn:
            if first:
                result = await conn.execute(
                    self._store._insert(t.trigger_states)
                    .values(scenario_id=scenario_id, trigger_id=trigger_id, last_due_at=due, updated_at=at)
                    .on_conflict_do_nothing(index_elements=["scenario_id", "trigger_id"])
                    .returning(t.trigger_states.c.trigger_id)
                )
                return result.scalar_one_or_none() is not None
            result = await conn.execute(
                update(t.trigger_states)
                .where(
                    t.trigger_states.c.scenario_id == scenario_id,
                    t.trigger_states.c.trigger_id == trigger_id,
                    t.trigger_states.c.last_due_at < due,
                )
                .values(last_due_at=due, updated_at=at)
            )
        return bool(result.rowcount)

    # -- fires, read -------------------------------------------------------------------------------

    async def get_fire(self, fire_id: str) -> FireRecord:
        async with self._store._engine.connect() as conn:
            row = (await conn.execute(select(t.fires).where(t.fires.c.id == fire_id))).first()
        if row is None:
            raise NotFoundError("trigger fire", fire_id)
        return _rows.to_fire(row._mapping)

    async def get_fires(self, fire_ids: Collection[str]) -> dict[str, FireRecord]:
        """The fires among these ids that exist, by id."""
        async with self._store._engine.connect() as conn:
            rows = (await conn.execute(select(t.fires).where(t.fires.c.id.in_(list(fire_ids))))).all()
        return {r.id: _rows.to_fire(r._mapping) for r in rows}

    async def scenario_activity(self, scenario_id: str) -> ScenarioActivity:
        """Active runs and waiting fires (oldest first) and the latest run that ended."""
        last = (
            select(t.runs)
            .where(
                t.runs.c.scenario_id == scenario_id,
                t.runs.c.state.in_([s.value for s in TERMINAL_STATES]),
                # A dry run is never the scenario's last outcome: it wrote nothing.
                t.runs.c.dry_run.is_(False),
            )
            .order_by(t.runs.c.ended_at.desc(), t.runs.c.id.desc())
            .limit(1)
        )
        async with self._store._engine.connect() as conn:
            active = await _active_runs(conn, scenario_id)
            pending = await _pending_fire_ids(conn, scenario_id)
            row = (await conn.execute(last)).first()
        return ScenarioActivity(tuple(active), tuple(pending), _rows.to_run(row._mapping) if row else None)


@dataclass(frozen=True)
class ScenarioActivity:
    """What a scenario is doing: active runs and waiting fires, oldest first; the latest ended run."""

    active_run_ids: tuple[str, ...]
    pending_fire_ids: tuple[str, ...]
    last_ended: RunRecord | None


@dataclass(frozen=True)
class _Origin:
    """Who or what made a fire."""

    triggered_by: str = ""
    trigger_id: str | None = None
    scheduled_at: datetime | None = None
    traceparent: str = ""
    dry_run: bool = False


# -- what a scenario run and a replay record alike (``store.replays`` uses these) --------------------


async def _key_taken(conn: AsyncConnection, idempotency_key: str) -> bool:
    """Whether a fire with this idempotency key exists."""
    query = select(t.fires.c.id).where(t.fires.c.idempotency_key == idempotency_key)
    return (await conn.execute(query)).first() is not None


async def _stored_fire(store: Store, idempotency_key: str, digest: str, *, differs: str) -> FireRecord:
    """The fire recorded with this idempotency key, when its request hash is ``digest``; else
    AlreadyExistsError, saying in ``differs`` what another request with the key may have changed."""
    async with store._engine.connect() as conn:
        row = (await conn.execute(select(t.fires).where(t.fires.c.idempotency_key == idempotency_key))).one()
    if row.request_hash != digest:
        raise AlreadyExistsError(
            # Keys are unique across projects: the other fire is not named, it may be hidden.
            f"idempotency key {idempotency_key!r} was already used with a different request "
            f"({differs}): use a new key for a new request"
        )
    return _rows.to_fire(row._mapping)


async def _active_runs(conn: AsyncConnection, scenario_id: str) -> list[str]:
    query = (
        select(t.runs.c.id)
        .where(t.runs.c.scenario_id == scenario_id, t.runs.c.state.in_([s.value for s in ACTIVE_STATES]))
        .order_by(t.runs.c.created_at, t.runs.c.id)
    )
    return list((await conn.execute(query)).scalars())


async def _pending_fire_ids(conn: AsyncConnection, scenario_id: str) -> list[str]:
    query = (
        select(t.fires.c.id)
        .where(t.fires.c.scenario_id == scenario_id, t.fires.c.state == FireState.PENDING.value)
        .order_by(t.fires.c.created_at, t.fires.c.id)
    )
    return list((await conn.execute(query)).scalars())


async def _insert_fire(
    store: Store,
    conn: AsyncConnection,
    fire_values: dict[str, Any],
    run_values: dict[str, Any] | None,
    decision: OverlapDecision,
) -> bool:
    """Insert the fire unless its idempotency key is taken (False: answer the stored fire), then
    its run, and mark the runs ``decision`` supersedes with an abort reason naming the fire."""
    inserted = await conn.execute(
        store._insert(t.fires)
        .values(**fire_values)
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
        .returning(t.fires.c.id)
    )
    if inserted.scalar_one_or_none() is None:
        return False
    if run_values is not None:
        await conn.execute(t.runs.insert().values(**run_values))
    if decision.supersede:
        await conn.execute(
            update(t.runs)
            .where(
                t.runs.c.id.in_(decision.supersede),
                t.runs.c.state.in_([s.value for s in ACTIVE_STATES]),
                t.runs.c.abort_reason.is_(None),
            )
            .values(abort_reason=superseded_reason(fire_values["id"]))
        )
    return True


def _new_fire(
    scenario_id: str, params: dict[str, str], idempotency_key: str, digest: str, origin: _Origin, at: datetime
) -> dict[str, Any]:
    """The row of a fire, resolved at ``at`` (the caller sets its state and what it led to)."""
    return {
        "id": new_id("fire"),
        "scenario_id": scenario_id,
        "params": json.dumps(params),
        "idempotency_key": idempotency_key or None,
        "request_hash": digest,
        "created_at": at,
        "run_id": None,
        "cancel_reason": None,
        "trigger_id": origin.trigger_id,
        "triggered_by": origin.triggered_by,
        "scheduled_at": origin.scheduled_at,
        "queue_reason": None,
        "resolved_at": at,
        "traceparent": origin.traceparent or None,
        "dry_run": origin.dry_run,
    }


def _new_run(scenario: ScenarioRecord, fire: dict[str, Any], run_key: str, at: datetime) -> dict[str, Any]:
    """The row of a fire's run: a snapshot of the scenario as it is now."""
    return {
        "id": new_id("run"),
        "scenario_id": scenario.id,
        "fire_id": fire["id"],
        "run_key": run_key,
        "state": RunState.QUEUED.value,
        "params": fire["params"],
        "script": scenario.script,
        "settings": json.dumps(scenario.settings.to_json()),
        "scenario_revision": scenario.revision,
        "created_at": at,
        "started_at": None,
        "ended_at": None,
        "error": None,
        "attempt_count": 0,
        "logs_truncated": False,
        "dropped_log_lines": 0,
        "warning_count": 0,
        "exit_code": None,
        "last_sequence": 0,
        "abort_reason": None,
        "details": None,
        "project_key": scenario.project_key,
        "run_as": scenario.effective_run_as,
        "triggered_by": fire["triggered_by"],
        "trigger_id": fire["trigger_id"],
        "traceparent": fire["traceparent"],
        "dry_run": fire["dry_run"],
    }
