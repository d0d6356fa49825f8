"""The dry runs part of the store: the report a dry run's attempt brought back, kept on its run
(``runs.dry_run_report``, a serialized ``DryRunReport``; migration 0014).

The report is written by the attempt that made it, and only while that attempt is the run's current
one (``runs.attempt_count``): a superseded attempt's late report never replaces the current one's.
Whether a fire and its run are dry runs is decided when the fire is recorded (``store.fires``).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncConnection

from seedbed.coordinator.store import _schema as t

__all__ = ["DryRunRepository", "MAX_REPORT_BYTES"]

# A report is bounded by the worker (200 targets, 20 problems each, 500-character messages): far
# less than this; a larger one is a bug or an attack and is not kept.
MAX_REPORT_BYTES = 4 * 2**20


class DryRunRepository:
    def __init__(self, write: Callable[[], AbstractAsyncContextManager[AsyncConnection]]) -> None:
        self._write = write

    async def keep_report(self, run_id: str, attempt: int, report: bytes) -> bool:
        """Keep the report of attempt ``attempt``; False when it is not the run's current attempt,
        the run is not a dry run, or the report is over MAX_REPORT_BYTES."""
        if len(report) > MAX_REPORT_BYTES:
            return False
        query = (
            update(t.runs)
            .where(t.runs.c.id == run_id, t.runs.c.attempt_count == attempt, t.runs.c.dry_run.is_(True))
            .values(dry_run_report=report)
        )
        async with self._write() as conn:
            return bool((await conn.execute(query)).rowcount)
