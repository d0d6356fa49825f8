"""The coordinator's store: the truth about scenarios, fires, runs, attempts and log lines.

Attempts, their leases and the write batches they report live in ``attempts``
(``Store.attempts``); templates, connections and workspace files in ``catalog``.

SQLAlchemy 2 (async) over a SQLite file by default or PostgreSQL through psycopg 3. Every state
transition is one conditional ``UPDATE … WHERE state IN (…)``; a transition that finds the row in
another state reports it instead of overwriting it. Fires are "insert if absent" on their
idempotency key, then a read-back that compares request hashes.

SQLite allows one writer at a time and upgrades read locks lazily, which makes concurrent
read-then-write transactions fail with "database is locked" instead of waiting; writes are
therefore serialized in-process with a lock (one coordinator per SQLite file). PostgreSQL takes row
locks (``SELECT … FOR UPDATE`` on the scenario) so several coordinators could share it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
from collections.abc import AsyncIterator, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, and_, event, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from seedbed.coordinator.errors import (
    AlreadyExistsError,
    FailedPreconditionError,
    NotFoundError,
    StoreUnavailableError,
)
from seedbed.coordinator.model import (
    ACTIVE_STATES,
    TERMINAL_STATES,
    FireState,
    OverlapPolicy,
    RunState,
    new_id,
)
from seedbed.coordinator.store import _schema as t
from seedbed.coordinator.store.access import AccessRepository
from seedbed.coordinator.store.attempts import AttemptRepository
from seedbed.coordinator.store.catalog import ConnectionRepository, TemplateRepository, WorkspaceRepository
from seedbed.coordinator.store.records import (
    ErrorInfo,
    FireRecord,
    LogRecord,
    RunEnd,
    RunRecord,
    ScenarioRecord,
    ScenarioSettingsValue,
    as_utc,
    now,
)
from seedbed.coordinator.store.reports import ReportRepository

__all__ = ["ScenarioActivity", "Store", "normalize_url", "now", "request_hash"]

log = logging.getLogger(__name__)

_MIGRATIONS = Path(__file__).parent / "migrations"


def normalize_url(url: str) -> str:
    """Pick the async driver for a plain URL: ``postgresql://`` → psycopg, ``sqlite://`` → aiosqlite."""
    parsed = make_url(url)
    driver = parsed.drivername
    if driver in ("postgresql", "postgres", "postgresql+psycopg2"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    elif driver == "sqlite":
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    return parsed.render_as_string(hide_password=False)


def request_hash(scenario_id: str, params: dict[str, str]) -> str:
    body = json.dumps({"scenario_id": scenario_id, "params": params}, sort_keys=True)
    return hashlib.sha256(body.encode()).hexdigest()


class Store:
    """Async access to the store. Create with :meth:`open`; close with :meth:`aclose`."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._is_sqlite = engine.dialect.name == "sqlite"
        self._write_lock = asyncio.Lock()
        self.templates = TemplateRepository(self)
        self.connections = ConnectionRepository(self)
        self.workspace = WorkspaceRepository(self)
        self.attempts = AttemptRepository(self)
        self.reports = ReportRepository(self)
        self.access = AccessRepository(self)

    @classmethod
    async def open(cls, url: str) -> Store:
        url = normalize_url(url)
        parsed = make_url(url)
        if parsed.drivername.startswith("sqlite") and parsed.database not in (None, "", ":memory:"):
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        connect_args: dict[str, Any] = {}
        if parsed.drivername.startswith("sqlite"):
            connect_args["timeout"] = 30
        engine = create_async_engine(url, connect_args=connect_args, pool_pre_ping=True)
        if engine.dialect.name == "sqlite":
            event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        store = cls(engine)
        try:
            await store.migrate()
        except (DBAPIError, OSError) as exc:
            await engine.dispose()
            raise StoreUnavailableError(
                f"cannot open the store at {parsed.render_as_string(hide_password=True)}: {exc}"
            ) from exc
        return store

    async def migrate(self) -> None:
        def upgrade(sync_conn: Connection) -> None:
            cfg = Config()
            cfg.set_main_option("script_location", str(_MIGRATIONS))
            cfg.attributes["connection"] = sync_conn
            command.upgrade(cfg, "head")

        async with self._engine.begin() as conn:
            await conn.run_sync(upgrade)

    async def aclose(self) -> None:
        await self._engine.dispose()

    @property
    def dialect(self) -> str:
        return self._engine.dialect.name

    @contextlib.asynccontextmanager
    async def _write(self) -> AsyncIterator[AsyncConnection]:
        if self._is_sqlite:
            async with self._write_lock, self._engine.begin() as conn:
                yield conn
        else:
            async with self._engine.begin() as conn:
                yield conn

    def _insert(self, table: Any) -> Any:
        return (postgresql.insert if self.dialect == "postgresql" else sqlite.insert)(table)

    # -- scenarios ---------------------------------------------------------------------------------

    async def create_scenario(
        self,
        scenario_id: str,
        name: str,
        script: str,
        settings: ScenarioSettingsValue,
        *,
        project_key: str = "default",
        modified_by: str = "",
    ) -> ScenarioRecord:
        at = now()
        values = {
            "id": scenario_id,
            "name": name,
            "script": script,
            "settings": json.dumps(settings.to_json()),
            "revision": 1,
            "created_at": at,
            "updated_at": at,
            "project_key": project_key,
            "last_modified_by": modified_by,
        }
        async with self._write() as conn:
            # rowcount is unreliable for INSERT … ON CONFLICT through psycopg: ask for the row back.
            result = await conn.execute(
                self._insert(t.scenarios)
                .values(**values)
                .on_conflict_do_nothing(index_elements=["id"])
                .returning(t.scenarios.c.id)
            )
            if result.scalar_one_or_none() is None:
                raise AlreadyExistsError(f"scenario {scenario_id!r} already exists")
        return _scenario(values)

    async def update_scenario(
        self,
        scenario_id: str,
        *,
        name: str | None = None,
        script: str | None = None,
        settings: ScenarioSettingsValue | None = None,
        modified_by: str | None = None,
    ) -> ScenarioRecord:
        changes: dict[str, Any] = {"updated_at": now(), "revision": t.scenarios.c.revision + 1}
        if modified_by is not None:
            changes["last_modified_by"] = modified_by
        if name is not None:
            changes["name"] = name
        if script is not None:
            changes["script"] = script
        if settings is not None:
            changes["settings"] = json.dumps(settings.to_json())
        async with self._write() as conn:
            result = await conn.execute(
                update(t.scenarios).where(t.scenarios.c.id == scenario_id).values(**changes)
            )
            if result.rowcount == 0:
                raise NotFoundError("scenario", scenario_id)
            row = (await conn.execute(select(t.scenarios).where(t.scenarios.c.id == scenario_id))).one()
        return _scenario(row._mapping)

    async def get_scenario(self, scenario_id: str) -> ScenarioRecord:
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(t.scenarios).where(t.scenarios.c.id == scenario_id))).first()
        if row is None:
            raise NotFoundError("scenario", scenario_id)
        return _scenario(row._mapping)

    async def list_scenarios(
        self, limit: int, offset: int, *, project_key: str = "", projects: Collection[str] | None = None
    ) -> list[ScenarioRecord]:
        """Scenarios by id. ``projects`` None: every project, else only these (the caller's)."""
        query = select(t.scenarios).order_by(t.scenarios.c.id).limit(limit).offset(offset)
        if project_key:
            query = query.where(t.scenarios.c.project_key == project_key)
        if projects is not None:
            query = query.where(t.scenarios.c.project_key.in_(list(projects)))
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [_scenario(r._mapping) for r in rows]

    async def delete_scenario(self, scenario_id: str) -> None:
        async with self._write() as conn:
            await self._lock_scenario(conn, scenario_id)
            active = await self._active_run(conn, scenario_id)
            if active is not None:
                raise FailedPreconditionError(
                    f"scenario {scenario_id!r} has an active run {active!r}: abort it or wait for it to end"
                )
            await conn.execute(t.scenarios.delete().where(t.scenarios.c.id == scenario_id))

    async def _lock_scenario(self, conn: AsyncConnection, scenario_id: str) -> ScenarioRecord:
        query = select(t.scenarios).where(t.scenarios.c.id == scenario_id)
        if self.dialect == "postgresql":
            query = query.with_for_update()
        row = (await conn.execute(query)).first()
        if row is None:
            raise NotFoundError("scenario", scenario_id)
        return _scenario(row._mapping)

    async def _active_run(self, conn: AsyncConnection, scenario_id: str) -> str | None:
        query = (
            select(t.runs.c.id)
            .where(t.runs.c.scenario_id == scenario_id, t.runs.c.state.in_([s.value for s in ACTIVE_STATES]))
            .limit(1)
        )
        return (await conn.execute(query)).scalar_one_or_none()

    # -- fires and runs ----------------------------------------------------------------------------

    async def fire(
        self,
        scenario_id: str,
        params: dict[str, str],
        idempotency_key: str,
        *,
        triggered_by: str = "",
        trigger_id: str | None = None,
        scheduled_at: datetime | None = None,
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
        digest = request_hash(scenario_id, params)
        origin = _Origin(triggered_by, trigger_id, scheduled_at)
        try:
            return await self._fire(scenario_id, params, idempotency_key, digest, origin)
        except IntegrityError:
            # A concurrent call with the same key won the insert (PostgreSQL, several coordinators).
            pass
        return await self._replay_fire(idempotency_key, digest), None, False

    async def _replay_fire(self, idempotency_key: str, digest: str) -> FireRecord:
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(select(t.fires).where(t.fires.c.idempotency_key == idempotency_key))
            ).one()
        if row.request_hash != digest:
            raise AlreadyExistsError(
                f"idempotency key {idempotency_key!r} was already used by fire {row.id} with a different "
                "request (scenario or params differ): use a new key for a new request"
            )
        return _fire(row._mapping)

    async def _fire(
        self,
        scenario_id: str,
        params: dict[str, str],
        idempotency_key: str,
        digest: str,
        origin: _Origin,
    ) -> tuple[FireRecord, RunRecord | None, bool]:
        at = now()
        fire_id = new_id("fire")
        async with self._write() as conn:
            if idempotency_key:
                existing = (
                    await conn.execute(
                        select(t.fires.c.id).where(t.fires.c.idempotency_key == idempotency_key)
                    )
                ).first()
                if existing is not None:
                    return await self._replay_fire(idempotency_key, digest), None, False
            scenario = await self._lock_scenario(conn, scenario_id)
            if not scenario.settings.active:
                raise FailedPreconditionError(
                    f"scenario {scenario_id!r} is inactive: activate it (settings.active) before running it"
                )
            fire_values: dict[str, Any] = {
                "id": fire_id,
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
            }
            decision = await self._overlap(conn, scenario, fire_id)
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
            inserted = await conn.execute(
                self._insert(t.fires)
                .values(**fire_values)
                .on_conflict_do_nothing(index_elements=["idempotency_key"])
                .returning(t.fires.c.id)
            )
            if inserted.scalar_one_or_none() is None:
                # The key was taken between the read above and this insert: answer the winner's fire.
                return await self._replay_fire(idempotency_key, digest), None, False
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
                    .values(abort_reason=f"cancelled by {fire_id}: overlap policy CANCEL_RUNNING")
                )
        return _fire(fire_values), (_run(run_values) if run_values else None), True

    async def _overlap(self, conn: AsyncConnection, scenario: ScenarioRecord, fire_id: str) -> _Overlap:
        """What the scenario's overlap policy makes of a new fire, given its active runs and the
        fires already waiting (read under the scenario's lock)."""
        policy = scenario.settings.overlap_policy
        active = await self._active_runs(conn, scenario.id)
        pending = await self._pending_fire_ids(conn, scenario.id)
        behind = f"run {active[0]}" if active else "the fires before it"
        if policy is OverlapPolicy.ALLOW_CONCURRENT or (not active and not pending):
            return _Overlap()
        if policy is OverlapPolicy.CANCEL_RUNNING:
            return _Overlap(supersede=tuple(active))
        if policy is OverlapPolicy.QUEUE_ONE:
            if pending:
                return _Overlap(
                    cancel_reason=f"already queued: fire {pending[0]} waits behind {behind} "
                    "(overlap policy QUEUE_ONE)"
                )
            return _Overlap(queue_reason=f"queued behind {behind} (overlap policy QUEUE_ONE)")
        if policy is OverlapPolicy.QUEUE_ALL:
            ahead = f"; {len(pending)} fire(s) ahead" if pending else ""
            return _Overlap(queue_reason=f"queued behind {behind}{ahead} (overlap policy QUEUE_ALL)")
        if not active:
            return _Overlap()  # SKIP with fires left waiting by an earlier QUEUE policy: run now
        return _Overlap(
            cancel_reason=f"already running: run {active[0]} of scenario {scenario.id} is still active "
            "(overlap policy SKIP)"
        )

    async def _active_runs(self, conn: AsyncConnection, scenario_id: str) -> list[str]:
        query = (
            select(t.runs.c.id)
            .where(t.runs.c.scenario_id == scenario_id, t.runs.c.state.in_([s.value for s in ACTIVE_STATES]))
            .order_by(t.runs.c.created_at, t.runs.c.id)
        )
        return list((await conn.execute(query)).scalars())

    async def _pending_fire_ids(self, conn: AsyncConnection, scenario_id: str) -> list[str]:
        query = (
            select(t.fires.c.id)
            .where(t.fires.c.scenario_id == scenario_id, t.fires.c.state == FireState.PENDING.value)
            .order_by(t.fires.c.created_at, t.fires.c.id)
        )
        return list((await conn.execute(query)).scalars())

    async def release_pending(self, scenario_id: str) -> tuple[FireRecord, RunRecord | None] | None:
        """Resolve the oldest PENDING fire of a scenario that has no active run: give it its run
        (or cancel it when the scenario became inactive or was deleted). None when nothing waits or
        a run is still active.

        The scenario's row lock (PostgreSQL) or the write lock (SQLite) and the conditional update
        on the fire's state make sure two coordinators never resolve one fire twice.
        """
        at = now()
        async with self._write() as conn:
            pending = await self._pending_fire_ids(conn, scenario_id)
            if not pending:
                return None
            try:
                scenario: ScenarioRecord | None = await self._lock_scenario(conn, scenario_id)
            except NotFoundError:
                scenario = None
            if scenario is not None and await self._active_runs(conn, scenario_id):
                return None
            row = (await conn.execute(select(t.fires).where(t.fires.c.id == pending[0]))).one()
            fire = _fire(row._mapping)
            changes: dict[str, Any] = {"resolved_at": at, "queue_reason": None}
            run_values: dict[str, Any] | None = None
            if scenario is None or not scenario.settings.active:
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
        return _fire(row._mapping), (_run(run_values) if run_values else None)

    async def pending_scenarios(self) -> list[str]:
        """Scenarios with fires waiting their turn."""
        query = select(t.fires.c.scenario_id).where(t.fires.c.state == FireState.PENDING.value).distinct()
        async with self._engine.connect() as conn:
            return list((await conn.execute(query)).scalars())

    async def superseded_runs(self, fire_id: str) -> list[str]:
        """Active runs a CANCEL_RUNNING fire asked to abort (their abort reason names it)."""
        query = select(t.runs.c.id).where(
            t.runs.c.state.in_([s.value for s in ACTIVE_STATES]),
            t.runs.c.abort_reason.like(f"cancelled by {fire_id}:%"),
        )
        async with self._engine.connect() as conn:
            return list((await conn.execute(query)).scalars())

    # -- trigger states ----------------------------------------------------------------------------

    async def scheduled_scenarios(self) -> list[ScenarioRecord]:
        """Scenarios with at least one cron trigger (active or not)."""
        query = select(t.scenarios).where(t.scenarios.c.settings.like('%"cron"%')).order_by(t.scenarios.c.id)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [s for s in (_scenario(r._mapping) for r in rows) if s.settings.triggers]

    async def trigger_last_due(self, scenario_id: str, trigger_id: str) -> datetime | None:
        """The latest due time of a trigger fired or passed over; None before it was first seen."""
        query = select(t.trigger_states.c.last_due_at).where(
            t.trigger_states.c.scenario_id == scenario_id, t.trigger_states.c.trigger_id == trigger_id
        )
        async with self._engine.connect() as conn:
            return as_utc((await conn.execute(query)).scalar_one_or_none())

    async def claim_trigger_due(
        self, scenario_id: str, trigger_id: str, due: datetime, *, first: bool = False
    ) -> bool:
        """Move a trigger's last due time forward to ``due`` (never back); with ``first``, record it
        if the trigger has no state yet. False when another coordinator got there first."""
        at = now()
        async with self._write() as conn:
            if first:
                result = await conn.execute(
                    self._insert(t.trigger_states)
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

    # -- fires and runs, read ----------------------------------------------------------------------

    async def get_fires(self, fire_ids: Collection[str]) -> dict[str, FireRecord]:
        """The fires among these ids that exist, by id."""
        async with self._engine.connect() as conn:
            rows = (await conn.execute(select(t.fires).where(t.fires.c.id.in_(list(fire_ids))))).all()
        return {r.id: _fire(r._mapping) for r in rows}

    async def get_runs(self, run_ids: Collection[str]) -> dict[str, RunRecord]:
        """The runs among these ids that exist, by id."""
        async with self._engine.connect() as conn:
            rows = (await conn.execute(select(t.runs).where(t.runs.c.id.in_(list(run_ids))))).all()
        return {r.id: _run(r._mapping) for r in rows}

    async def scenario_activity(self, scenario_id: str) -> ScenarioActivity:
        """Active runs and waiting fires (oldest first) and the latest run that ended."""
        last = (
            select(t.runs)
            .where(
                t.runs.c.scenario_id == scenario_id,
                t.runs.c.state.in_([s.value for s in TERMINAL_STATES]),
            )
            .order_by(t.runs.c.ended_at.desc(), t.runs.c.id.desc())
            .limit(1)
        )
        async with self._engine.connect() as conn:
            active = await self._active_runs(conn, scenario_id)
            pending = await self._pending_fire_ids(conn, scenario_id)
            row = (await conn.execute(last)).first()
        return ScenarioActivity(tuple(active), tuple(pending), _run(row._mapping) if row else None)

    async def get_fire(self, fire_id: str) -> FireRecord:
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(t.fires).where(t.fires.c.id == fire_id))).first()
        if row is None:
            raise NotFoundError("trigger fire", fire_id)
        return _fire(row._mapping)

    async def get_run(self, run_id: str) -> RunRecord:
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(t.runs).where(t.runs.c.id == run_id))).first()
        if row is None:
            raise NotFoundError("run", run_id)
        return _run(row._mapping)

    async def list_runs(
        self,
        scenario_id: str,
        limit: int,
        offset: int,
        *,
        states: Collection[RunState] = (),
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        project_key: str = "",
        projects: Collection[str] | None = None,
    ) -> list[RunRecord]:
        """Runs, newest first. ``states`` empty: any; created in [created_after, created_before);
        ``projects`` None: every project, else only runs of these (the caller's) projects."""
        query = select(t.runs).order_by(t.runs.c.created_at.desc(), t.runs.c.id.desc())
        if scenario_id:
            query = query.where(t.runs.c.scenario_id == scenario_id)
        if states:
            query = query.where(t.runs.c.state.in_([s.value for s in states]))
        if created_after is not None:
            query = query.where(t.runs.c.created_at >= created_after)
        if created_before is not None:
            query = query.where(t.runs.c.created_at < created_before)
        if project_key:
            query = query.where(t.runs.c.project_key == project_key)
        if projects is not None:
            query = query.where(t.runs.c.project_key.in_(list(projects)))
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query.limit(limit).offset(offset))).all()
        return [_run(r._mapping) for r in rows]

    async def append_logs(
        self, run_id: str, lines: Sequence[LogRecord], *, attempt: int | None = None
    ) -> bool:
        """Append numbered lines. With ``attempt``: only while it is the run's latest attempt (False,
        nothing written, once another driver began a newer one)."""
        if not lines:
            return True
        async with self._write() as conn:
            # The run row first: on PostgreSQL its lock orders this against a takeover's begin.
            guard = update(t.runs).where(t.runs.c.id == run_id)
            if attempt is not None:
                guard = guard.where(t.runs.c.attempt_count == attempt)
            result = await conn.execute(guard.values(last_sequence=lines[-1].seq))
            if not result.rowcount:
                return False
            await conn.execute(
                t.log_lines.insert(),
                [
                    {
                        "run_id": run_id,
                        "seq": line.seq,
                        "attempt": line.attempt,
                        "stream": line.stream,
                        "level": line.level,
                        "text": line.text,
                        "at": line.at,
                    }
                    for line in lines
                ],
            )
        return True

    async def read_logs(self, run_id: str, after: int, limit: int) -> list[LogRecord]:
        query = (
            select(t.log_lines)
            .where(t.log_lines.c.run_id == run_id, t.log_lines.c.seq > after)
            .order_by(t.log_lines.c.seq)
            .limit(limit)
        )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [
            LogRecord(
                seq=r.seq,
                attempt=r.attempt,
                stream=r.stream,
                text=r.text,
                at=as_utc(r.at) or now(),
                level=r.level,
            )
            for r in rows
        ]

    async def finish_run(self, run_id: str, end: RunEnd, *, attempt: int | None = None) -> bool:
        """Active → terminal. False (and nothing written) when the run had already ended, or, with
        ``attempt``, when a newer attempt has begun (the caller was superseded)."""
        if not end.state.is_terminal:
            raise ValueError(f"{end.state} is not terminal")
        query = update(t.runs).where(
            t.runs.c.id == run_id, t.runs.c.state.in_([s.value for s in ACTIVE_STATES])
        )
        if attempt is not None:
            query = query.where(t.runs.c.attempt_count == attempt)
        async with self._write() as conn:
            result = await conn.execute(
                query.values(
                    state=end.state.value,
                    ended_at=now(),
                    error=json.dumps(end.error.to_json()) if end.error else None,
                    exit_code=end.exit_code,
                    logs_truncated=end.logs_truncated,
                    dropped_log_lines=end.dropped_log_lines,
                    warning_count=end.warning_count,
                    details=json.dumps(end.details) if end.details else None,
                    next_attempt_at=None,
                )
            )
        return bool(result.rowcount)

    async def request_abort(self, run_id: str, reason: str) -> RunRecord:
        async with self._write() as conn:
            await conn.execute(
                update(t.runs)
                .where(
                    and_(t.runs.c.id == run_id, t.runs.c.state.in_([s.value for s in ACTIVE_STATES])),
                    t.runs.c.abort_reason.is_(None),
                )
                .values(abort_reason=reason)
            )
        return await self.get_run(run_id)


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


@dataclass(frozen=True)
class _Overlap:
    """The overlap policy's decision on a new fire: cancel it, queue it, or give it a run (and abort
    the runs in ``supersede``)."""

    cancel_reason: str | None = None
    queue_reason: str | None = None
    supersede: tuple[str, ...] = ()


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
    }


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _scenario(row: Any) -> ScenarioRecord:
    return ScenarioRecord(
        id=row["id"],
        name=row["name"],
        script=row["script"],
        settings=ScenarioSettingsValue.from_json(json.loads(row["settings"])),
        revision=row["revision"],
        created_at=as_utc(row["created_at"]) or now(),
        updated_at=as_utc(row["updated_at"]) or now(),
        project_key=row.get("project_key") or "default",
        last_modified_by=row.get("last_modified_by") or "",
    )


def _fire(row: Any) -> FireRecord:
    return FireRecord(
        id=row["id"],
        scenario_id=row["scenario_id"],
        state=FireState(row["state"]),
        run_id=row["run_id"],
        cancel_reason=row["cancel_reason"],
        params=json.loads(row["params"]),
        idempotency_key=row["idempotency_key"],
        created_at=as_utc(row["created_at"]) or now(),
        trigger_id=row.get("trigger_id"),
        triggered_by=row.get("triggered_by") or "",
        scheduled_at=as_utc(row.get("scheduled_at")),
        queue_reason=row.get("queue_reason"),
        resolved_at=as_utc(row.get("resolved_at")),
    )


def _run(row: Any) -> RunRecord:
    return RunRecord(
        id=row["id"],
        scenario_id=row["scenario_id"],
        fire_id=row["fire_id"],
        run_key=row["run_key"],
        state=RunState(row["state"]),
        params=json.loads(row["params"]),
        script=row["script"],
        settings=ScenarioSettingsValue.from_json(json.loads(row["settings"])),
        scenario_revision=row["scenario_revision"],
        created_at=as_utc(row["created_at"]) or now(),
        started_at=as_utc(row["started_at"]),
        ended_at=as_utc(row["ended_at"]),
        error=ErrorInfo.from_json(json.loads(row["error"])) if row["error"] else None,
        attempt_count=row["attempt_count"],
        logs_truncated=bool(row["logs_truncated"]),
        dropped_log_lines=row["dropped_log_lines"],
        warning_count=row["warning_count"],
        exit_code=row["exit_code"],
        last_sequence=row["last_sequence"],
        abort_reason=row["abort_reason"],
        details=json.loads(row["details"]) if row.get("details") else None,
        next_attempt_at=as_utc(row.get("next_attempt_at")),
        project_key=row.get("project_key") or "default",
        run_as=row.get("run_as") or "",
        triggered_by=row.get("triggered_by") or "",
        trigger_id=row.get("trigger_id"),
    )
