"""The reports part of the store: one row per (run, reporter, event) saying what the delivery did.

A delivery begins by claiming its row, "insert if absent" with status SENDING; only the claimant
sends. So a report is sent at most once per run, reporter and event, however many coordinators see
the run end (or one sees it twice after a restart). A coordinator that dies while sending leaves the
row SENDING: the report is then not sent again (the receiver would rather miss one than get it
twice; the ``Idempotency-Key`` header covers the retries within one delivery). Rejected: retrying
stale SENDING rows from the recovery loop (a second sender could not tell whether the first one's
POST landed).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import select, update

from seedbed.coordinator.store import _schema as t
from seedbed.coordinator.store.records import as_utc, now

if TYPE_CHECKING:
    from seedbed.coordinator.store.store import Store

SENDING = "SENDING"
DELIVERED = "DELIVERED"
FAILED = "FAILED"


@dataclass(frozen=True)
class DeliveryRecord:
    run_id: str
    reporter_id: str
    event: str  # RUN_STARTED | RUN_FINISHED
    status: str  # SENDING | DELIVERED | FAILED
    tries: int
    error: str
    at: datetime


class ReportRepository:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def claim(self, run_id: str, reporter_id: str, event: str) -> bool:
        """Take the delivery of this report; False when it was taken before (by anyone)."""
        c = t.reporter_deliveries.c
        async with self._store._write() as conn:
            inserted = await conn.execute(
                self._store._insert(t.reporter_deliveries)
                .values(
                    run_id=run_id,
                    reporter_id=reporter_id,
                    event=event,
                    status=SENDING,
                    tries=0,
                    error="",
                    at=now(),
                )
                .on_conflict_do_nothing()
                .returning(c.run_id)
            )
            return inserted.scalar_one_or_none() is not None

    async def record(
        self, run_id: str, reporter_id: str, event: str, *, status: str, tries: int, error: str
    ) -> None:
        """How the claimed delivery ended (or how far it got)."""
        c = t.reporter_deliveries.c
        async with self._store._write() as conn:
            await conn.execute(
                update(t.reporter_deliveries)
                .where(c.run_id == run_id, c.reporter_id == reporter_id, c.event == event)
                .values(status=status, tries=tries, error=error[:4000], at=now())
            )

    async def for_runs(self, run_ids: Sequence[str]) -> dict[str, list[DeliveryRecord]]:
        """Every delivery of each run, in the order they were claimed or last changed."""
        if not run_ids:
            return {}
        c = t.reporter_deliveries.c
        query = select(t.reporter_deliveries).where(c.run_id.in_(list(run_ids))).order_by(c.run_id, c.at)
        async with self._store._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        out: dict[str, list[DeliveryRecord]] = defaultdict(list)
        for r in rows:
            out[r.run_id].append(
                DeliveryRecord(
                    run_id=r.run_id,
                    reporter_id=r.reporter_id,
                    event=r.event,
                    status=r.status,
                    tries=r.tries,
                    error=r.error,
                    at=as_utc(r.at) or now(),
                )
            )
        return dict(out)

    async def for_run(self, run_id: str) -> list[DeliveryRecord]:
        return (await self.for_runs([run_id])).get(run_id, [])
