"""The catalog part of the store: templates, connections and workspace files.

Repositories share the ``Store``'s engine and write discipline (see ``store``). They store what
they are given: validation, secret encryption and size limits happen before, in the servicers.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, update

from seedbed.coordinator.errors import AlreadyExistsError, NotFoundError
from seedbed.coordinator.store import _schema as t
from seedbed.coordinator.store.records import as_utc

if TYPE_CHECKING:
    from seedbed.coordinator.store.store import Store

# Workspace content is stored in chunks so that no single value is large for any database.
CHUNK_BYTES = 1 * 2**20


@dataclass(frozen=True)
class TemplateRecord:
    id: str
    source: str
    format: str
    canonical: dict[str, Any]
    digest: str
    description: str
    field_names: list[str]
    revision: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class ConnectionRecord:
    id: str
    kind: str
    description: str
    url: str
    rest: dict[str, Any]
    secret_kind: str  # none | stored | env | file
    secret_ref: str
    secret_cipher: str | None
    created_at: datetime
    updated_at: datetime
    # Users whose runs (by run_as) may use it; empty: every user.
    allowed_users: tuple[str, ...] = ()

    @property
    def secret_summary(self) -> str:
        if self.secret_kind in ("env", "file"):
            return f"{self.secret_kind}:{self.secret_ref}"
        return self.secret_kind


@dataclass(frozen=True)
class WorkspaceFileRecord:
    path: str
    size: int
    sha256: str
    created_at: datetime


class TemplateRepository:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def put(
        self,
        template_id: str,
        *,
        source: str,
        fmt: str,
        canonical: dict[str, Any],
        description: str,
        field_names: list[str],
        allow_update: bool,
        at: datetime,
    ) -> tuple[TemplateRecord, bool]:
        # Field order is part of a template (it is the rows' column order): keep it.
        body = json.dumps(canonical, separators=(",", ":"))
        values = {
            "source": source,
            "format": fmt,
            "canonical": body,
            "digest": hashlib.sha256(body.encode()).hexdigest(),
            "description": description,
            "field_names": json.dumps(field_names),
            "updated_at": at,
        }
        async with self._store._write() as conn:
            inserted = await conn.execute(
                self._store._insert(t.templates)
                .values(id=template_id, revision=1, created_at=at, **values)
                .on_conflict_do_nothing(index_elements=["id"])
                .returning(t.templates.c.id)
            )
            created = inserted.scalar_one_or_none() is not None
            if not created:
                if not allow_update:
                    raise AlreadyExistsError(
                        f"template {template_id!r} already exists: push it with update allowed to replace it"
                    )
                await conn.execute(
                    update(t.templates)
                    .where(t.templates.c.id == template_id)
                    .values(revision=t.templates.c.revision + 1, **values)
                )
            row = (await conn.execute(select(t.templates).where(t.templates.c.id == template_id))).one()
        return _template(row._mapping), created

    async def get(self, template_id: str) -> TemplateRecord:
        async with self._store._engine.connect() as conn:
            row = (await conn.execute(select(t.templates).where(t.templates.c.id == template_id))).first()
        if row is None:
            raise NotFoundError("template", template_id)
        return _template(row._mapping)

    async def page(self, limit: int, offset: int) -> list[TemplateRecord]:
        query = select(t.templates).order_by(t.templates.c.id).limit(limit).offset(offset)
        async with self._store._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [_template(r._mapping) for r in rows]

    async def all(self) -> list[TemplateRecord]:
        async with self._store._engine.connect() as conn:
            rows = (await conn.execute(select(t.templates).order_by(t.templates.c.id))).all()
        return [_template(r._mapping) for r in rows]

    async def delete(self, template_id: str) -> None:
        async with self._store._write() as conn:
            result = await conn.execute(t.templates.delete().where(t.templates.c.id == template_id))
            if result.rowcount == 0:
                raise NotFoundError("template", template_id)


class ConnectionRepository:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def put(self, record: ConnectionRecord, *, allow_update: bool) -> ConnectionRecord:
        values = {
            "kind": record.kind,
            "description": record.description,
            "url": record.url,
            "rest": json.dumps(record.rest, sort_keys=True),
            "secret_kind": record.secret_kind,
            "secret_ref": record.secret_ref,
            "secret_cipher": record.secret_cipher,
            "allowed_users": json.dumps(list(record.allowed_users)),
            "updated_at": record.updated_at,
        }
        async with self._store._write() as conn:
            inserted = await conn.execute(
                self._store._insert(t.connections)
                .values(id=record.id, created_at=record.created_at, **values)
                .on_conflict_do_nothing(index_elements=["id"])
                .returning(t.connections.c.id)
            )
            if inserted.scalar_one_or_none() is None:
                if not allow_update:
                    raise AlreadyExistsError(
                        f"connection {record.id!r} already exists: delete it first or allow the update"
                    )
                await conn.execute(
                    update(t.connections).where(t.connections.c.id == record.id).values(**values)
                )
            row = (await conn.execute(select(t.connections).where(t.connections.c.id == record.id))).one()
        return _connection(row._mapping)

    async def get(self, connection_id: str) -> ConnectionRecord:
        async with self._store._engine.connect() as conn:
            row = (
                await conn.execute(select(t.connections).where(t.connections.c.id == connection_id))
            ).first()
        if row is None:
            raise NotFoundError("connection", connection_id)
        return _connection(row._mapping)

    async def page(self, limit: int, offset: int) -> list[ConnectionRecord]:
        query = select(t.connections).order_by(t.connections.c.id).limit(limit).offset(offset)
        async with self._store._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [_connection(r._mapping) for r in rows]

    async def all(self) -> list[ConnectionRecord]:
        return await self.page(100_000, 0)

    async def delete(self, connection_id: str) -> None:
        async with self._store._write() as conn:
            result = await conn.execute(t.connections.delete().where(t.connections.c.id == connection_id))
            if result.rowcount == 0:
                raise NotFoundError("connection", connection_id)


class WorkspaceRepository:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def total_bytes(self) -> int:
        async with self._store._engine.connect() as conn:
            total = (
                await conn.execute(select(func.coalesce(func.sum(t.workspace_files.c.size), 0)))
            ).scalar_one()
        return int(total)

    async def put(
        self, path: str, chunks: list[bytes], *, overwrite: bool, at: datetime
    ) -> WorkspaceFileRecord:
        digest = hashlib.sha256()
        size = 0
        for chunk in chunks:
            digest.update(chunk)
            size += len(chunk)
        # Re-chunk to the storage size whatever the client sent.
        data = b"".join(chunks)
        stored = [data[i : i + CHUNK_BYTES] for i in range(0, len(data), CHUNK_BYTES)] or [b""]
        async with self._store._write() as conn:
            exists = (
                await conn.execute(select(t.workspace_files.c.path).where(t.workspace_files.c.path == path))
            ).first()
            if exists is not None:
                if not overwrite:
                    raise AlreadyExistsError(f"workspace file {path!r} already exists: upload with overwrite")
                await conn.execute(t.workspace_chunks.delete().where(t.workspace_chunks.c.path == path))
                await conn.execute(t.workspace_files.delete().where(t.workspace_files.c.path == path))
            await conn.execute(
                t.workspace_files.insert().values(
                    path=path, size=size, sha256=digest.hexdigest(), created_at=at
                )
            )
            await conn.execute(
                t.workspace_chunks.insert(),
                [{"path": path, "idx": i, "data": c} for i, c in enumerate(stored)],
            )
        return WorkspaceFileRecord(path, size, digest.hexdigest(), at)

    async def get(self, path: str) -> WorkspaceFileRecord:
        async with self._store._engine.connect() as conn:
            row = (
                await conn.execute(select(t.workspace_files).where(t.workspace_files.c.path == path))
            ).first()
        if row is None:
            raise NotFoundError("workspace file", path)
        return WorkspaceFileRecord(row.path, row.size, row.sha256, as_utc(row.created_at))

    async def chunks(self, path: str) -> AsyncIterator[bytes]:
        idx = 0
        while True:
            async with self._store._engine.connect() as conn:
                row = (
                    await conn.execute(
                        select(t.workspace_chunks.c.data).where(
                            t.workspace_chunks.c.path == path, t.workspace_chunks.c.idx == idx
                        )
                    )
                ).first()
            if row is None:
                return
            yield bytes(row.data)
            idx += 1

    async def page(self, prefix: str, limit: int, offset: int) -> list[WorkspaceFileRecord]:
        query = select(t.workspace_files).order_by(t.workspace_files.c.path).limit(limit).offset(offset)
        if prefix:
            query = query.where(t.workspace_files.c.path.startswith(prefix, autoescape=True))
        async with self._store._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [WorkspaceFileRecord(r.path, r.size, r.sha256, as_utc(r.created_at)) for r in rows]

    async def delete(self, path: str) -> None:
        async with self._store._write() as conn:
            await conn.execute(t.workspace_chunks.delete().where(t.workspace_chunks.c.path == path))
            result = await conn.execute(t.workspace_files.delete().where(t.workspace_files.c.path == path))
            if result.rowcount == 0:
                raise NotFoundError("workspace file", path)


def _template(row: Any) -> TemplateRecord:
    return TemplateRecord(
        id=row["id"],
        source=row["source"],
        format=row["format"],
        canonical=json.loads(row["canonical"]),
        digest=row["digest"],
        description=row["description"],
        field_names=json.loads(row["field_names"]),
        revision=row["revision"],
        created_at=as_utc(row["created_at"]),
        updated_at=as_utc(row["updated_at"]),
    )


def _connection(row: Any) -> ConnectionRecord:
    return ConnectionRecord(
        id=row["id"],
        kind=row["kind"],
        description=row["description"],
        url=row["url"],
        rest=json.loads(row["rest"]),
        secret_kind=row["secret_kind"],
        secret_ref=row["secret_ref"],
        secret_cipher=row["secret_cipher"],
        created_at=as_utc(row["created_at"]),
        updated_at=as_utc(row["updated_at"]),
        allowed_users=tuple(json.loads(row.get("allowed_users") or "[]")),
    )
