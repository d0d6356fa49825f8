"""The purges part of the store: one row per purged run (``run_purges``), and the ids a run's REST
posts created (``rest_created``).

A purge is claimed before it starts: by inserting the run's row (insert-if-absent), or, when the
row exists, by one conditional UPDATE that succeeds only if it is not DONE and its lease has passed
(the coordinator that held it died mid-purge, or it FAILED and its retry time came). So of several
coordinators one purges a run at a time, an interrupted purge is resumed once its lease passes, and
a DONE run is never purged again. The purge itself resumes where it stopped (each batch's ledger
entry goes with its rows), so resuming purges nothing twice.

Rejected: a ``purged_at`` column on ``runs`` (a run row is the supervisor's; a lease and a result
need a row of their own), and a table of purge passes (what a user asks is "was this run purged,
when, what was left": per run).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from seedbed.coordinator.model import TERMINAL_STATES
from seedbed.coordinator.store import _schema as t
from seedbed.coordinator.store.records import as_utc

__all__ = ["CreatedIds", "PurgeRecord", "PurgeRepository", "TimeToLive"]

_p = t.run_purges.c
_c = t.rest_created.c
_r = t.runs.c

RUNNING, DONE, FAILED = "RUNNING", "DONE", "FAILED"


@dataclass(frozen=True)
class PurgeRecord:
    run_id: str
    scenario_id: str
    project_key: str
    trigger: str  # ttl | request
    state: str  # RUNNING | DONE | FAILED
    attempts: int
    holder: str
    lease_expires_at: datetime
    started_at: datetime
    ended_at: datetime | None
    message: str
    result: str | None  # JSON PurgeRunResponse


@dataclass(frozen=True)
class TimeToLive:
    """A scenario's time to live, with what names the runs made from it: its id, its project and
    when it was created (a run older than the scenario was made from an earlier one of that id)."""

    scenario_id: str
    project_key: str
    created_at: datetime
    after: timedelta


@dataclass(frozen=True)
class CreatedIds:
    """What one REST post (one write batch) created, in the order posted: one entry per row
    posted, its id ("" where the response named none), except that a request whose response
    named what it cannot have created has one entry for all its rows, which
    ``RestSink.unrecorded`` reads back as (rows, why): a "cannot undo" the purge lists."""

    call: int
    batch: int
    path: str
    ids: list[str]


def _record(row: Any) -> PurgeRecord:
    return PurgeRecord(
        run_id=row.run_id,
        scenario_id=row.scenario_id,
        project_key=row.project_key,
        trigger=row.trigger,
        state=row.state,
        attempts=int(row.attempts),
        holder=row.holder,
        lease_expires_at=as_utc(row.lease_expires_at),
        started_at=as_utc(row.started_at),
        ended_at=as_utc(row.ended_at) if row.ended_at is not None else None,
        message=row.message,
        result=row.result,
    )


class PurgeRepository:
    """Over the store's engine (reads), its write transaction (``write``) and its dialect's
    insert (``insert``, for insert-if-absent)."""

    def __init__(
        self,
        engine: AsyncEngine,
        write: Callable[[], AbstractAsyncContextManager[AsyncConnection]],
        insert: Callable[[Any], Any],
    ) -> None:
        self._engine = engine
        self._write = write
        self._insert = insert

    # -- REST ids ------------------------------------------------------------------------------

    async def add_created(
        self,
        run_id: str,
        attempt: int,
        connection_id: str,
        call: int,
        batch: int,
        path: str,
        ids: Sequence[str],
    ) -> None:
        values = {
            "run_id": run_id,
            "attempt": attempt,
            "connection_id": connection_id,
            "call": call,
            "batch": batch,
            "path": path,
            "ids": json.dumps(list(ids)),
        }
        async with self._write() as conn:
            await conn.execute(self._insert(t.rest_created).values(values).on_conflict_do_nothing())

    async def created(self, run_id: str, connection_id: str) -> list[CreatedIds]:
        """What the run's REST batches through the connection created, newest first; a batch
        posted again by a later attempt (same Idempotency-Key) counted once, as it last answered."""
        query = (
            select(_c.call, _c.batch, _c.path, _c.ids)
            .where(_c.run_id == run_id, _c.connection_id == connection_id)
            .order_by(_c.call.desc(), _c.batch.desc(), _c.attempt.desc())
        )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        out: list[CreatedIds] = []
        seen: set[tuple[int, int]] = set()
        for row in rows:
            if (row.call, row.batch) in seen:
                continue
            seen.add((row.call, row.batch))
            ids = json.loads(row.ids)
            out.append(CreatedIds(int(row.call), int(row.batch), str(row.path), [str(i) for i in ids]))
        return out

    # -- what a run wrote -----------------------------------------------------------------------

    async def connections(self, run_id: str) -> list[str]:
        """Every connection the run wrote through, in the order of its first write to each."""
        c = t.write_batches.c
        query = (
            select(c.connection_id)
            .where(c.run_id == run_id)
            .group_by(c.connection_id)
            .order_by(func.min(c.call), func.min(c.at), c.connection_id)
        )
        async with self._engine.connect() as conn:
            return [str(row.connection_id) for row in (await conn.execute(query)).all()]

    async def wrote_through(self, run_id: str, connection_id: str) -> bool:
        """Whether the run applied any batch through the connection (not only found them in the
        ledger already, as a replay into the targets of the run it replays does)."""
        c = t.write_batches.c
        query = (
            select(c.run_id)
            .where(c.run_id == run_id, c.connection_id == connection_id, c.status == "APPLIED")
            .limit(1)
        )
        async with self._engine.connect() as conn:
            return (await conn.execute(query)).first() is not None

    async def files(self, run_id: str, connection_id: str) -> list[str]:
        """The names of the files the run wrote through a file connection, in the order written."""
        c = t.write_batches.c
        query = (
            select(c.target)
            .where(c.run_id == run_id, c.connection_id == connection_id, c.operation == "write")
            .group_by(c.target)
            .order_by(func.min(c.call), c.target)
        )
        async with self._engine.connect() as conn:
            return [str(row.target) for row in (await conn.execute(query)).all()]

    # -- purges of runs ------------------------------------------------------------------------

    async def due(self, ttls: Iterable[TimeToLive], at: datetime, limit: int) -> list[str]:
        """Ended runs of these scenarios older than their time to live, not purged yet and not
        being purged now (a claim whose lease has passed counts as not being purged), oldest first.

        Only the runs made from the scenario itself: of its project, created at or after it. A
        scenario id given again after a delete (maybe in another project) is another scenario; its
        time to live is not that of the runs the deleted one left (as ``check_scenario_of``)."""
        found: list[str] = []
        for ttl in ttls:
            if len(found) >= limit:
                break
            claimed = exists().where(_p.run_id == _r.id, or_(_p.state == DONE, _p.lease_expires_at > at))
            query = (
                select(_r.id)
                .where(
                    _r.scenario_id == ttl.scenario_id,
                    _r.project_key == ttl.project_key,
                    _r.created_at >= ttl.created_at,
                    _r.state.in_([s.value for s in TERMINAL_STATES]),
                    _r.ended_at < at - ttl.after,
                    ~claimed,
                )
                .order_by(_r.ended_at)
                .limit(limit - len(found))
            )
            async with self._engine.connect() as conn:
                found.extend(str(r.id) for r in (await conn.execute(query)).all())
        return found

    async def claim(
        self,
        run_id: str,
        *,
        scenario_id: str,
        project_key: str,
        trigger: str,
        holder: str,
        at: datetime,
        lease: timedelta,
        again: bool = False,
    ) -> bool:
        """Take the purge of the run: True when this holder now has it (a new row, or one that is
        not DONE and whose lease or retry time has passed; with ``again``, a purge asked for, a
        FAILED one without waiting for its retry time); False when it is DONE (with ``again`` too:
        what a DONE purge removed may be another run's since, a replay's into the same targets) or
        another holds it."""
        values = {
            "run_id": run_id,
            "scenario_id": scenario_id,
            "project_key": project_key,
            "trigger": trigger,
            "state": RUNNING,
            "attempts": 1,
            "holder": holder,
            "lease_expires_at": at + lease,
            "started_at": at,
            "ended_at": None,
            "message": "",
            "result": None,
        }
        async with self._write() as conn:
            # RETURNING, not rowcount: psycopg's rowcount of an INSERT … ON CONFLICT is not to be relied on.
            inserted = await conn.execute(
                self._insert(t.run_purges).values(values).on_conflict_do_nothing().returning(_p.run_id)
            )
            if inserted.scalar_one_or_none() is not None:
                return True
            if again:  # not DONE, and not a purge under way (its lease not passed)
                conditions = [
                    _p.run_id == run_id,
                    _p.state != DONE,
                    or_(_p.state != RUNNING, _p.lease_expires_at <= at),
                ]
            else:  # not DONE, and a FAILED one once its retry time came
                conditions = [_p.run_id == run_id, _p.state != DONE, _p.lease_expires_at <= at]
            taken = await conn.execute(
                update(t.run_purges)
                .where(*conditions)
                .values(
                    state=RUNNING,
                    trigger=trigger,
                    holder=holder,
                    attempts=_p.attempts + 1,
                    lease_expires_at=at + lease,
                    started_at=at,
                    ended_at=None,
                )
            )
            return bool(taken.rowcount == 1)

    async def renew(self, run_id: str, holder: str, until: datetime) -> bool:
        async with self._write() as conn:
            done = await conn.execute(
                update(t.run_purges)
                .where(_p.run_id == run_id, _p.holder == holder, _p.state == RUNNING)
                .values(lease_expires_at=until)
            )
        return bool(done.rowcount == 1)

    async def finish(
        self,
        run_id: str,
        holder: str,
        *,
        failed: bool,
        message: str,
        result: str,
        at: datetime,
        retry_after: timedelta,
    ) -> bool:
        """End the holder's purge: DONE, or FAILED (claimable again after ``retry_after``)."""
        async with self._write() as conn:
            done = await conn.execute(
                update(t.run_purges)
                .where(_p.run_id == run_id, _p.holder == holder, _p.state == RUNNING)
                .values(
                    state=FAILED if failed else DONE,
                    message=message,
                    result=result,
                    ended_at=at,
                    lease_expires_at=at + retry_after if failed else at,
                )
            )
        return bool(done.rowcount == 1)

    async def get(self, run_id: str) -> PurgeRecord | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(t.run_purges).where(_p.run_id == run_id))).first()
        return _record(row) if row is not None else None

    async def list(
        self, *, run_id: str, project_keys: Collection[str] | None, limit: int
    ) -> list[PurgeRecord]:
        """Newest first; ``project_keys`` None: every project's."""
        conditions = []
        if run_id:
            conditions.append(_p.run_id == run_id)
        if project_keys is not None:
            conditions.append(_p.project_key.in_(list(project_keys)))
        query = (
            select(t.run_purges).where(and_(True, *conditions)).order_by(_p.started_at.desc()).limit(limit)
        )
        async with self._engine.connect() as conn:
            return [_record(r) for r in (await conn.execute(query)).all()]
