"""The counts the coordinator's metrics read from the store: runs by state, and fires waiting
behind an active run.

They are read here, not counted in memory from the transitions a coordinator sees: several
coordinators may share one PostgreSQL store, and a coordinator that restarts would begin again from
zero; the store is the truth about how many runs are queued or running. One read is two grouped
counts in one connection (``ix_runs_state`` serves the first; the second filters the fires on their
state), made every few seconds by ``observability.metrics``, never per request.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import func, select

from seedbed.coordinator.model import FireState, RunState
from seedbed.coordinator.store import _schema as t

if TYPE_CHECKING:
    from seedbed.coordinator.store.store import Store

__all__ = ["MetricsRepository", "RunCounts"]


@dataclass(frozen=True)
class RunCounts:
    """Runs by state (every state present, 0 when none) and fires queued behind an active run."""

    by_state: Mapping[RunState, int]
    pending_fires: int

    @property
    def active(self) -> int:
        """Runs whose attempt is under way (RUNNING)."""
        return self.by_state[RunState.RUNNING]

    @property
    def queued(self) -> int:
        """Work waiting to run: QUEUED runs and the fires queued behind an active run (PENDING)."""
        return self.by_state[RunState.QUEUED] + self.pending_fires


class MetricsRepository:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def counts(self) -> RunCounts:
        runs = select(t.runs.c.state, func.count()).group_by(t.runs.c.state)
        fires = select(func.count()).select_from(t.fires).where(t.fires.c.state == FireState.PENDING.value)
        async with self._store._engine.connect() as conn:
            rows = (await conn.execute(runs)).all()
            pending = (await conn.execute(fires)).scalar_one()
        by_state = dict.fromkeys(RunState, 0)
        for state, count in rows:
            if state in RunState.__members__:
                by_state[RunState(state)] = int(count)
        return RunCounts(by_state=by_state, pending_fires=int(pending))
