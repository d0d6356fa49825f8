"""The spans part of the store: each run's trace, kept as serialized ``seedbed.api.v1.Span``
messages under the run (or under its fire, for what was recorded before the fire had a run: the
RunScenario call and the fire itself).

A run keeps at most the operator's cap of the spans its attempts' calls, batches and shards make
(``add(..., cap=)``, marked ``capped``); those past it are counted on the run
(``runs.dropped_spans``) so a trace says what it lacks. The frame (the coordinator's fire, run and
attempt spans, the worker's sandbox, script and step spans: few, and bounded by the worker) is kept
whatever the cap. Rejected: dropping older spans to make room for newer ones (the start of a long
run is as much worth seeing as its end, and rewriting kept rows costs a write per span); when one
answer cannot hold a whole trace, GetRunTrace trims the oldest spans' attributes first instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import func, select, update

from seedbed.coordinator.store import _schema as t

if TYPE_CHECKING:
    from seedbed.coordinator.store.records import RunRecord
    from seedbed.coordinator.store.store import Store


@dataclass(frozen=True)
class SpanBatch:
    """Spans to keep under one owner (see ``SpanRepository.add``)."""

    owner: str
    trace_id: str
    attempt: int
    spans: Sequence[bytes]
    cap: int | None = None
    dropped: int = 0


class SpanRepository:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def add(self, batches: Sequence[SpanBatch]) -> int:
        """Keep every batch, in one transaction; how many spans were kept.

        A batch's ``spans`` (serialized) go under its ``owner`` (a run or fire id). With ``cap``:
        they count against it, and are kept only while the owner keeps fewer than ``cap`` such
        spans; the rest, and ``dropped`` (spans the sender did not record), are counted on the run.
        """
        c = t.spans.c
        batches = [b for b in batches if b.spans or b.dropped]
        if not batches:
            return 0
        total = 0
        async with self._store._write() as conn:
            for batch in batches:
                kept = list(batch.spans)
                if batch.cap is not None and kept:
                    capped = select(func.count()).select_from(t.spans).where(c.owner == batch.owner, c.capped)
                    held = (await conn.execute(capped)).scalar_one()
                    kept = kept[: max(0, batch.cap - int(held))]
                if kept:
                    row = {
                        "owner": batch.owner,
                        "trace_id": batch.trace_id,
                        "attempt": batch.attempt,
                        "capped": batch.cap is not None,
                    }
                    await conn.execute(t.spans.insert(), [{**row, "data": d} for d in kept])
                lost = batch.dropped + len(batch.spans) - len(kept)
                if lost:
                    await conn.execute(
                        update(t.runs)
                        .where(t.runs.c.id == batch.owner)
                        .values(dropped_spans=t.runs.c.dropped_spans + lost)
                    )
                total += len(kept)
        return total

    async def of_run(self, run: RunRecord) -> list[bytes]:
        """The run's spans (serialized), in the order they were kept: its own and its fire's, of its
        trace only (a retried RunScenario call of the same fire may have begun another trace)."""
        trace_id = run.trace_id
        if not trace_id:
            return []
        c = t.spans.c
        query = (
            select(c.data).where(c.owner.in_([run.id, run.fire_id]), c.trace_id == trace_id).order_by(c.id)
        )
        async with self._store._engine.connect() as conn:
            return [bytes(row.data) for row in (await conn.execute(query)).all()]
