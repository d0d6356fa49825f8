"""The attempts part of the store: attempts with their leases and fencing tokens, and the write
batches attempts report.

One coordinator drives a run at a time. It holds a lease on the run's latest attempt
(``lease_expires_at``) and renews it; each write about an attempt is conditional on the attempt's
fencing token and on the attempt being the run's latest, so a driver that was taken over writes
nothing more. Taking a run over is one conditional ``UPDATE runs … WHERE attempt_count = <the count
the taker saw>``: of two coordinators that saw the same expired lease, exactly one begins the next
attempt (PostgreSQL re-checks the condition after the row lock; SQLite has one writer) and the other
gets ``LeaseLost``. Fencing tokens increase strictly per run.

Rejected: a lease table apart from the attempts (the token would have to be joined to every
attempt write anyway), and ``SELECT … FOR UPDATE`` then ``UPDATE`` (read-then-write; the single
conditional update says the same in one statement and works on SQLite too).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, func, select, update

from seedbed.coordinator.errors import LeaseLost
from seedbed.coordinator.model import ACTIVE_STATES, FailureReason, RunState
from seedbed.coordinator.store import _schema as t
from seedbed.coordinator.store.records import (
    AttemptRecord,
    ErrorInfo,
    StaleRun,
    WriteBatchRecord,
    as_utc,
    now,
)

if TYPE_CHECKING:
    from seedbed.coordinator.store.store import Store

_ACTIVE = [s.value for s in ACTIVE_STATES]
ENDED = "ENDED"


class AttemptRepository:
    def __init__(self, store: Store) -> None:
        self._store = store

    # -- lifecycle ---------------------------------------------------------------------------------

    async def begin(
        self, run_id: str, *, seen_attempts: int, holder: str, lease: timedelta
    ) -> tuple[int, int]:
        """Begin attempt ``seen_attempts + 1`` of an active run and take its lease. Returns
        (attempt number, fencing token). An earlier attempt still open is ended as superseded.

        Raises LeaseLost when the run has ended or another driver began that attempt first.
        """
        at = now()
        async with self._store._write() as conn:
            result = await conn.execute(
                update(t.runs)
                .where(
                    t.runs.c.id == run_id,
                    t.runs.c.state.in_(_ACTIVE),
                    t.runs.c.attempt_count == seen_attempts,
                )
                .values(attempt_count=t.runs.c.attempt_count + 1, next_attempt_at=None)
                .returning(t.runs.c.attempt_count)
            )
            number = result.scalar_one_or_none()
            if number is None:
                raise LeaseLost(
                    run_id, f"attempt {seen_attempts + 1} was begun by another driver, or the run ended"
                )
            previous = (
                await conn.execute(
                    select(func.max(t.attempts.c.fencing_token)).where(t.attempts.c.run_id == run_id)
                )
            ).scalar_one_or_none()
            token = max(int(at.timestamp() * 1_000_000), (previous or 0) + 1)
            superseded = ErrorInfo(
                FailureReason.INFRASTRUCTURE,
                "Superseded",
                f"its driver stopped renewing the lease; attempt {number} took the run over",
            )
            await conn.execute(
                update(t.attempts)
                .where(
                    t.attempts.c.run_id == run_id, t.attempts.c.number < number, t.attempts.c.state != ENDED
                )
                .values(
                    state=ENDED,
                    outcome=FailureReason.INFRASTRUCTURE.value,
                    ended_at=at,
                    error=json.dumps(superseded.to_json()),
                )
            )
            await conn.execute(
                t.attempts.insert().values(
                    run_id=run_id,
                    number=number,
                    fencing_token=token,
                    state="DISPATCHED",
                    created_at=at,
                    lease_expires_at=at + lease,
                    holder=holder,
                )
            )
        return number, token

    def _current(self, run_id: str, attempt: int, token: int) -> Any:
        """The attempt is this token's and still the latest of an active run."""
        latest = (
            select(t.runs.c.attempt_count)
            .where(t.runs.c.id == run_id, t.runs.c.state.in_(_ACTIVE))
            .scalar_subquery()
        )
        return and_(
            t.attempts.c.run_id == run_id,
            t.attempts.c.number == attempt,
            t.attempts.c.fencing_token == token,
            t.attempts.c.number == latest,
        )

    async def renew(self, run_id: str, attempt: int, token: int, lease: timedelta) -> bool:
        """Extend the lease. False when the attempt was superseded or the run ended: stop driving."""
        async with self._store._write() as conn:
            result = await conn.execute(
                update(t.attempts)
                .where(self._current(run_id, attempt, token))
                .values(lease_expires_at=now() + lease)
            )
        return bool(result.rowcount)

    async def release(self, run_id: str, attempt: int, token: int) -> None:
        """Let the lease lapse now (a coordinator shutting down): another may take over at once."""
        async with self._store._write() as conn:
            await conn.execute(
                update(t.attempts).where(self._current(run_id, attempt, token)).values(lease_expires_at=now())
            )

    async def mark_running(
        self,
        run_id: str,
        attempt: int,
        token: int,
        *,
        container_id: str,
        node: str,
        worker_pid: int | None,
        at: datetime,
        task_id: str | None = None,
    ) -> bool:
        """The sandbox started: the attempt RUNNING, the run RUNNING. False when superseded."""
        async with self._store._write() as conn:
            result = await conn.execute(
                update(t.attempts)
                .where(self._current(run_id, attempt, token), t.attempts.c.state != ENDED)
                .values(
                    state="RUNNING",
                    container_id=container_id,
                    node=node,
                    worker_pid=worker_pid,
                    started_at=at,
                    task_id=task_id,
                )
            )
            if not result.rowcount:
                return False
            await conn.execute(
                update(t.runs)
                .where(t.runs.c.id == run_id, t.runs.c.state.in_(_ACTIVE))
                .values(state=RunState.RUNNING.value, started_at=func.coalesce(t.runs.c.started_at, at))
            )
        return True

    async def end(self, run_id: str, attempt: int, token: int, outcome: str, error: ErrorInfo | None) -> bool:
        """Record how the attempt ended (once). False when it had ended or was superseded."""
        async with self._store._write() as conn:
            result = await conn.execute(
                update(t.attempts)
                .where(
                    t.attempts.c.run_id == run_id,
                    t.attempts.c.number == attempt,
                    t.attempts.c.fencing_token == token,
                    t.attempts.c.state != ENDED,
                )
                .values(
                    state=ENDED,
                    outcome=outcome,
                    ended_at=now(),
                    error=json.dumps(error.to_json()) if error else None,
                )
            )
        return bool(result.rowcount)

    async def schedule_next(self, run_id: str, attempt: int, at: datetime) -> bool:
        """Record when the attempt after ``attempt`` starts. False when the run moved on or ended."""
        async with self._store._write() as conn:
            result = await conn.execute(
                update(t.runs)
                .where(t.runs.c.id == run_id, t.runs.c.state.in_(_ACTIVE), t.runs.c.attempt_count == attempt)
                .values(next_attempt_at=at)
            )
        return bool(result.rowcount)

    # -- reading -----------------------------------------------------------------------------------

    async def for_runs(self, run_ids: Sequence[str]) -> dict[str, list[AttemptRecord]]:
        """Every attempt of each run, oldest first."""
        if not run_ids:
            return {}
        query = (
            select(t.attempts)
            .where(t.attempts.c.run_id.in_(list(run_ids)))
            .order_by(t.attempts.c.run_id, t.attempts.c.number)
        )
        async with self._store._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        out: dict[str, list[AttemptRecord]] = defaultdict(list)
        for row in rows:
            out[row.run_id].append(_attempt(row._mapping))
        return dict(out)

    async def for_run(self, run_id: str) -> list[AttemptRecord]:
        return (await self.for_runs([run_id])).get(run_id, [])

    async def stale(self, at: datetime, lease: timedelta, *, holder: str | None = None) -> list[StaleRun]:
        """Active runs that nobody seems to drive: the lease of the latest attempt expired before
        ``at`` (or was never set), or no attempt was begun within ``lease`` of the run's creation.
        With ``holder``: also every run whose latest attempt that coordinator began, and every run
        without an attempt (a coordinator starting up: its previous process left them)."""
        query = (
            select(
                t.runs.c.id,
                t.runs.c.attempt_count,
                t.runs.c.created_at,
                t.attempts.c.lease_expires_at,
                t.attempts.c.holder,
            )
            .select_from(
                t.runs.outerjoin(
                    t.attempts,
                    and_(t.attempts.c.run_id == t.runs.c.id, t.attempts.c.number == t.runs.c.attempt_count),
                )
            )
            .where(t.runs.c.state.in_(_ACTIVE))
            .order_by(t.runs.c.created_at)
        )
        async with self._store._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        stale = []
        for row in rows:
            expires = as_utc(row.lease_expires_at)
            if row.attempt_count == 0:
                created = as_utc(row.created_at) or at
                due = holder is not None or created + lease < at
            else:
                due = (holder is not None and row.holder == holder) or expires is None or expires < at
            if due:
                stale.append(StaleRun(row.id, row.attempt_count, expires))
        return stale

    async def current(self, run_ids: Iterable[str]) -> dict[str, tuple[RunState, int]]:
        """State and attempt count of the runs the store knows, by id (for the janitor)."""
        ids = list(set(run_ids))
        if not ids:
            return {}
        query = select(t.runs.c.id, t.runs.c.state, t.runs.c.attempt_count).where(t.runs.c.id.in_(ids))
        async with self._store._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return {row.id: (RunState(row.state), row.attempt_count) for row in rows}

    # -- write batches -----------------------------------------------------------------------------

    async def add_batches(self, run_id: str, batches: Sequence[WriteBatchRecord]) -> None:
        """Record reported batches; a batch reported twice (a re-sent event) is kept once."""
        if not batches:
            return
        values = [
            {
                "run_id": run_id,
                "attempt": b.attempt,
                "connection_id": b.connection_id,
                "call": b.call,
                "batch": b.batch,
                "operation": b.operation,
                "target": b.target,
                "rows": b.rows,
                "content_hash": b.content_hash,
                "status": b.status,
                "at": b.at,
            }
            for b in batches
        ]
        async with self._store._write() as conn:
            await conn.execute(self._store._insert(t.write_batches).values(values).on_conflict_do_nothing())

    async def sql_connections(self, run_id: str) -> list[str]:
        """The connections the run inserted or executed through (its SQL targets), in the order of
        its first write to each: the SDK call numbers follow the script, whatever the attempt."""
        c = t.write_batches.c
        query = (
            select(c.connection_id)
            .where(c.run_id == run_id, c.operation.in_(("insert", "execute")))
            .group_by(c.connection_id)
            .order_by(func.min(c.call), func.min(c.at), c.connection_id)
        )
        async with self._store._engine.connect() as conn:
            return [str(row.connection_id) for row in (await conn.execute(query)).all()]

    async def list_batches(self, run_id: str, limit: int, offset: int) -> list[WriteBatchRecord]:
        """In the order they were written: by attempt, then the SDK call, then the batch in it."""
        c = t.write_batches.c
        query = (
            select(t.write_batches)
            .where(c.run_id == run_id)
            .order_by(c.attempt, c.call, c.batch, c.connection_id)
            .limit(limit)
            .offset(offset)
        )
        async with self._store._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [
            WriteBatchRecord(
                attempt=r.attempt,
                connection_id=r.connection_id,
                operation=r.operation,
                target=r.target,
                call=r.call,
                batch=r.batch,
                rows=r.rows,
                content_hash=r.content_hash,
                status=r.status,
                at=as_utc(r.at) or now(),
            )
            for r in rows
        ]


def _attempt(row: Any) -> AttemptRecord:
    return AttemptRecord(
        run_id=row["run_id"],
        number=row["number"],
        fencing_token=row["fencing_token"],
        state=row["state"],
        outcome=row["outcome"],
        error=ErrorInfo.from_json(json.loads(row["error"])) if row["error"] else None,
        created_at=as_utc(row["created_at"]) or now(),
        started_at=as_utc(row["started_at"]),
        ended_at=as_utc(row["ended_at"]),
        node=row["node"],
        container_id=row["container_id"],
        worker_pid=row["worker_pid"],
        lease_expires_at=as_utc(row["lease_expires_at"]),
        holder=row["holder"],
        task_id=row.get("task_id"),
    )
