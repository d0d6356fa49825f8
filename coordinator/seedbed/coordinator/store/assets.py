"""The run assets part of the store: the files a run kept (``run_assets``), their content in chunks
(``run_asset_chunks``), per attempt.

An asset arrives from the worker in pieces (``AssetReceiver``): ``start`` makes its row (not yet
``complete``), ``add_chunk`` keeps each piece, ``complete`` marks it whole once its size and digest
matched; an asset never completed is not listed. A run's assets are those of its current attempt
(``runs.attempt_count``): listing reads the current attempt only, and ``begin_attempt`` drops what
earlier attempts kept as soon as the next one is begun (before its dispatch, so also when it never
starts), which is when the listing stops showing them. A piece of a superseded attempt (``start``,
``add_chunk``, ``complete`` for an attempt that is no longer ``attempt_count``) raises ``LeaseLost``
and writes nothing, so a stale attempt can neither show nor leave behind what no later attempt would
clear: the check share-locks the run's row (PostgreSQL), so the next attempt's begin waits for a
piece being written under the old count, and its ``begin_attempt`` then removes that piece too.
Each call is one short transaction; content is read back one chunk per query, so neither side holds
a whole asset.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, and_, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from seedbed.coordinator.errors import DataLossError, LeaseLost, NotFoundError
from seedbed.coordinator.store import _schema as t
from seedbed.coordinator.store.records import as_utc

__all__ = ["AssetRecord", "AssetRepository"]

_a = t.run_assets.c
_k = t.run_asset_chunks.c


@dataclass(frozen=True)
class AssetRecord:
    run_id: str
    attempt: int
    name: str
    content_type: str
    size: int
    sha256: str
    created_at: datetime


def _record(row: object) -> AssetRecord:
    return AssetRecord(
        run_id=row.run_id,  # type: ignore[attr-defined]
        attempt=row.attempt,  # type: ignore[attr-defined]
        name=row.name,  # type: ignore[attr-defined]
        content_type=row.content_type,  # type: ignore[attr-defined]
        size=int(row.size),  # type: ignore[attr-defined]
        sha256=row.sha256,  # type: ignore[attr-defined]
        created_at=as_utc(row.created_at),  # type: ignore[attr-defined]
    )


def _current(run_id: str) -> ColumnElement[bool]:
    """The run's assets as listed: complete, of its current attempt."""
    attempt = select(t.runs.c.attempt_count).where(t.runs.c.id == run_id).scalar_subquery()
    return and_(_a.run_id == run_id, _a.complete, _a.attempt == attempt)


async def _fence(conn: AsyncConnection, run_id: str, attempt: int) -> None:
    """LeaseLost unless ``attempt`` is the run's current one (checked in the write's transaction)."""
    # FOR SHARE: a begin (UPDATE runs) waits until this piece is committed, or this read waits for
    # the begin and sees the new count; SQLite has one writer and renders no lock clause.
    query = select(t.runs.c.attempt_count).where(t.runs.c.id == run_id).with_for_update(read=True)
    current = (await conn.execute(query)).scalar_one_or_none()
    if current != attempt:
        raise LeaseLost(run_id, f"attempt {attempt} was superseded while sending its assets")


class AssetRepository:
    """Over the store's engine (reads) and its write transaction (``write``: SQLite's writes are
    serialized in-process, see ``Store``)."""

    def __init__(
        self, engine: AsyncEngine, write: Callable[[], AbstractAsyncContextManager[AsyncConnection]]
    ) -> None:
        self._engine = engine
        self._write = write

    async def begin_attempt(self, run_id: str, attempt: int) -> None:
        """Attempt ``attempt`` was begun (``runs.attempt_count`` is it): drop what earlier attempts
        kept, no longer listed (it writes them again if it runs)."""
        async with self._write() as conn:
            await conn.execute(t.run_asset_chunks.delete().where(_k.run_id == run_id, _k.attempt < attempt))
            await conn.execute(t.run_assets.delete().where(_a.run_id == run_id, _a.attempt < attempt))

    async def start(self, run_id: str, attempt: int, name: str, content_type: str, at: datetime) -> None:
        """An asset's first piece came: (re)make its row, incomplete, with no content."""
        async with self._write() as conn:
            await _fence(conn, run_id, attempt)
            where = (_k.run_id == run_id, _k.attempt == attempt, _k.name == name)
            await conn.execute(t.run_asset_chunks.delete().where(*where))
            await conn.execute(
                t.run_assets.delete().where(_a.run_id == run_id, _a.attempt == attempt, _a.name == name)
            )
            await conn.execute(
                t.run_assets.insert().values(
                    run_id=run_id,
                    attempt=attempt,
                    name=name,
                    content_type=content_type,
                    size=0,
                    sha256="",
                    complete=False,
                    created_at=at,
                )
            )

    async def add_chunk(self, run_id: str, attempt: int, name: str, idx: int, data: bytes) -> None:
        async with self._write() as conn:
            await _fence(conn, run_id, attempt)
            await conn.execute(
                t.run_asset_chunks.insert().values(
                    run_id=run_id, attempt=attempt, name=name, idx=idx, data=data
                )
            )

    async def complete(self, run_id: str, attempt: int, name: str, size: int, sha256: str) -> None:
        async with self._write() as conn:
            await _fence(conn, run_id, attempt)
            await conn.execute(
                update(t.run_assets)
                .where(_a.run_id == run_id, _a.attempt == attempt, _a.name == name)
                .values(size=size, sha256=sha256, complete=True)
            )

    async def discard(self, run_id: str, attempt: int, name: str) -> None:
        """Forget an asset that arrived broken."""
        async with self._write() as conn:
            await conn.execute(
                t.run_asset_chunks.delete().where(_k.run_id == run_id, _k.attempt == attempt, _k.name == name)
            )
            await conn.execute(
                t.run_assets.delete().where(_a.run_id == run_id, _a.attempt == attempt, _a.name == name)
            )

    async def of_run(self, run_id: str) -> list[AssetRecord]:
        """The run's assets, by name."""
        async with self._engine.connect() as conn:
            rows = (await conn.execute(select(t.run_assets).where(_current(run_id)).order_by(_a.name))).all()
        return [_record(row) for row in rows]

    async def get(self, run_id: str, name: str) -> AssetRecord:
        """One of the run's assets; NotFoundError when the run keeps none by that name."""
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(t.run_assets).where(_current(run_id), _a.name == name))).first()
        if row is None:
            raise NotFoundError("run asset", f"{run_id}/{name[:200]}")
        return _record(row)

    async def chunks(self, asset: AssetRecord) -> AsyncIterator[bytes]:
        """The asset's content, one chunk per query. DataLossError when the chunks end short of
        (or would pass) the asset's size: it was removed while it was read (a purge, or the run's
        next attempt began), and what was yielded so far is not the asset."""
        idx = 0
        read = 0
        while True:
            async with self._engine.connect() as conn:
                data = (
                    await conn.execute(
                        select(_k.data).where(
                            _k.run_id == asset.run_id,
                            _k.attempt == asset.attempt,
                            _k.name == asset.name,
                            _k.idx == idx,
                        )
                    )
                ).scalar_one_or_none()
            if data is None and read == asset.size:
                return
            if data is None or read + len(data) > asset.size:
                raise DataLossError(
                    f"run asset {asset.run_id}/{asset.name[:200]!r}: only {read} of its {asset.size} "
                    "bytes could be read; it was removed while it was downloaded (the run was purged, "
                    "or its next attempt began): list the run's assets again"
                )
            read += len(data)
            yield bytes(data)
            idx += 1

    async def summary(self, run_id: str) -> tuple[int, int]:
        """(count, bytes) of the run's assets."""
        query = select(func.count(), func.coalesce(func.sum(_a.size), 0)).where(_current(run_id))
        async with self._engine.connect() as conn:
            count, size = (await conn.execute(query)).one()
        return int(count), int(size)

    async def delete_run(self, run_id: str) -> tuple[int, int]:
        """Remove every asset of the run, of every attempt (a purge, a deleted run): (count, bytes)
        of those removed."""
        async with self._write() as conn:
            count, size = (
                await conn.execute(
                    select(func.count(), func.coalesce(func.sum(_a.size), 0)).where(_a.run_id == run_id)
                )
            ).one()
            await conn.execute(t.run_asset_chunks.delete().where(_k.run_id == run_id))
            await conn.execute(t.run_assets.delete().where(_a.run_id == run_id))
        return int(count), int(size)
