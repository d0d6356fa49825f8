"""The catalog part of the store: connections and workspace files (templates and their versions:
``store.templates``).

Repositories share the ``Store``'s engine and write discipline (see ``store``). They store what
they are given: validation, secret encryption, size limits and authorisation happen before, in the
servicers.

Every object belongs to a project (``project_key``) and may be ``shared`` with every project. Ids
and paths stay unique across the installation, so a script's name for an object means one thing
wherever it runs; creating one whose id another project holds is ALREADY_EXISTS, and an update never
moves an object to another project (each write is conditional on the project it was read in).
Queries take a :class:`CatalogScope`: the projects whose objects they see, and whether shared ones
count. Rejected: ids unique per project (a shared object and a project's own could then carry the
same name, and a script's reference would depend on which one wins).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, Table, false, func, or_, select, true, update

from seedbed.coordinator.errors import AlreadyExistsError, NotFoundError
from seedbed.coordinator.store import _schema as t
from seedbed.coordinator.store.records import as_utc

if TYPE_CHECKING:
    from seedbed.coordinator.store.store import Store

# Workspace content is stored in chunks so that no single value is large for any database.
CHUNK_BYTES = 1 * 2**20


@dataclass(frozen=True)
class CatalogScope:
    """Which catalog objects a query sees: those owned by ``projects`` (None: every project) and,
    with ``shared``, those shared with every project."""

    projects: frozenset[str] | None
    shared: bool = True

    @classmethod
    def of_project(cls, project_key: str) -> CatalogScope:
        """What the runs of one project may use: its own objects and the shared ones."""
        return cls(frozenset({project_key}))

    def where(self, table: Table) -> ColumnElement[bool]:
        if self.projects is None:
            return true()
        owned = table.c.project_key.in_(sorted(self.projects)) if self.projects else false()
        return or_(owned, table.c.shared.is_(True)) if self.shared else owned


class OtherProjectError(AlreadyExistsError):
    """The id or path is taken by an object of another project (``project_key``: its project, for
    the servicer to name only to callers who may see it)."""

    def __init__(self, kind: str, ident: str, project_key: str) -> None:
        super().__init__(
            f"{kind} {ident!r} already exists in another project (ids are unique across the installation): "
            "choose another id"
        )
        self.project_key = project_key


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
    project_key: str = "default"
    shared: bool = False
    # postgresql: the bulk options given (writers, shard_rows, max_writers); absent ones: defaults.
    bulk: dict[str, int] = field(default_factory=dict)

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
    project_key: str = "default"
    shared: bool = False


class ConnectionRepository:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def put(
        self, record: ConnectionRecord, *, allow_update: bool, set_shared: bool
    ) -> ConnectionRecord:
        """Create the connection in its project or replace it there (``set_shared`` False: an
        update keeps its ``shared``). OtherProjectError when another project holds the id."""
        values = {
            "kind": record.kind,
            "description": record.description,
            "url": record.url,
            "rest": json.dumps(record.rest, sort_keys=True),
            "secret_kind": record.secret_kind,
            "secret_ref": record.secret_ref,
            "secret_cipher": record.secret_cipher,
            "allowed_users": json.dumps(list(record.allowed_users)),
            "bulk": json.dumps(record.bulk, sort_keys=True),
            "updated_at": record.updated_at,
        }
        by_id = t.connections.c.id == record.id
        async with self._store._write() as conn:
            inserted = await conn.execute(
                self._store._insert(t.connections)
                .values(
                    id=record.id,
                    created_at=record.created_at,
                    project_key=record.project_key,
                    shared=record.shared,
                    **values,
                )
                .on_conflict_do_nothing(index_elements=["id"])
                .returning(t.connections.c.id)
            )
            if inserted.scalar_one_or_none() is None:
                await _same_project(conn, t.connections, by_id, "connection", record.id, record.project_key)
                if not allow_update:
                    raise AlreadyExistsError(
                        f"connection {record.id!r} already exists: delete it first or allow the update"
                    )
                await conn.execute(
                    update(t.connections)
                    .where(by_id, t.connections.c.project_key == record.project_key)
                    .values(**values, **_shared(record.shared if set_shared else None))
                )
            row = (await conn.execute(select(t.connections).where(by_id))).first()
        if row is None:
            raise NotFoundError("connection", record.id)  # deleted meanwhile
        return _connection(row._mapping)

    async def a_sealed_secret(self) -> tuple[str, str] | None:
        """(connection id, Fernet token) of one stored secret, or None when no connection keeps one:
        what a start checks the secret key against."""
        query = (
            select(t.connections.c.id, t.connections.c.secret_cipher)
            .where(t.connections.c.secret_cipher.is_not(None))
            .order_by(t.connections.c.created_at)
            .limit(1)
        )
        async with self._store._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return (str(row.id), str(row.secret_cipher)) if row is not None else None

    async def get(self, connection_id: str) -> ConnectionRecord:
        async with self._store._engine.connect() as conn:
            row = (
                await conn.execute(select(t.connections).where(t.connections.c.id == connection_id))
            ).first()
        if row is None:
            raise NotFoundError("connection", connection_id)
        return _connection(row._mapping)

    async def page(self, limit: int, offset: int, scope: CatalogScope) -> list[ConnectionRecord]:
        query = (
            select(t.connections)
            .where(scope.where(t.connections))
            .order_by(t.connections.c.id)
            .limit(limit)
            .offset(offset)
        )
        async with self._store._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [_connection(r._mapping) for r in rows]

    async def all(self, scope: CatalogScope) -> list[ConnectionRecord]:
        return await self.page(100_000, 0, scope)

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
        self,
        path: str,
        chunks: list[bytes],
        *,
        project_key: str,
        shared: bool | None,
        overwrite: bool,
        at: datetime,
    ) -> WorkspaceFileRecord:
        """Store the file in ``project_key``, replacing one of the same project with ``overwrite``
        (``shared`` None: as before, false when new). OtherProjectError when another project holds
        the path."""
        digest = hashlib.sha256()
        size = 0
        for chunk in chunks:
            digest.update(chunk)
            size += len(chunk)
        # Re-chunk to the storage size whatever the client sent.
        data = b"".join(chunks)
        stored = [data[i : i + CHUNK_BYTES] for i in range(0, len(data), CHUNK_BYTES)] or [b""]
        files = t.workspace_files
        async with self._store._write() as conn:
            exists = (
                await conn.execute(select(files.c.project_key, files.c.shared).where(files.c.path == path))
            ).first()
            keep_shared = False
            if exists is not None:
                if exists.project_key != project_key:
                    raise OtherProjectError("workspace file", path, exists.project_key)
                if not overwrite:
                    raise AlreadyExistsError(f"workspace file {path!r} already exists: upload with overwrite")
                keep_shared = bool(exists.shared)
                await conn.execute(t.workspace_chunks.delete().where(t.workspace_chunks.c.path == path))
                await conn.execute(files.delete().where(files.c.path == path))
            is_shared = keep_shared if shared is None else shared
            await conn.execute(
                files.insert().values(
                    path=path,
                    size=size,
                    sha256=digest.hexdigest(),
                    created_at=at,
                    project_key=project_key,
                    shared=is_shared,
                )
            )
            await conn.execute(
                t.workspace_chunks.insert(),
                [{"path": path, "idx": i, "data": c} for i, c in enumerate(stored)],
            )
        return WorkspaceFileRecord(path, size, digest.hexdigest(), at, project_key, is_shared)

    async def get(self, path: str) -> WorkspaceFileRecord:
        async with self._store._engine.connect() as conn:
            row = (
                await conn.execute(select(t.workspace_files).where(t.workspace_files.c.path == path))
            ).first()
        if row is None:
            raise NotFoundError("workspace file", path)
        return _file(row)

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

    async def page(
        self, prefix: str, limit: int, offset: int, scope: CatalogScope
    ) -> list[WorkspaceFileRecord]:
        files = t.workspace_files
        query = select(files).where(scope.where(files)).order_by(files.c.path).limit(limit).offset(offset)
        if prefix:
            query = query.where(files.c.path.startswith(prefix, autoescape=True))
        async with self._store._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [_file(r) for r in rows]

    async def delete(self, path: str, project_key: str) -> None:
        """Delete the file if it (still) belongs to ``project_key``."""
        files = t.workspace_files
        async with self._store._write() as conn:
            owned = (files.c.path == path) & (files.c.project_key == project_key)
            if (await conn.execute(select(files.c.path).where(owned))).first() is None:
                raise NotFoundError("workspace file", path)
            await conn.execute(t.workspace_chunks.delete().where(t.workspace_chunks.c.path == path))
            await conn.execute(files.delete().where(owned))


async def _same_project(
    conn: Any, table: Table, by_id: ColumnElement[bool], kind: str, ident: str, project_key: str
) -> str | None:
    """Raise OtherProjectError when the existing row of ``ident`` belongs to another project; its
    project (None: there is no such row)."""
    owner: str | None = (await conn.execute(select(table.c.project_key).where(by_id))).scalar_one_or_none()
    if owner is not None and owner != project_key:
        raise OtherProjectError(kind, ident, owner)
    return owner


def _shared(shared: bool | None) -> dict[str, bool]:
    """The ``shared`` value an update sets: none when unchanged."""
    return {} if shared is None else {"shared": shared}


def _file(row: Any) -> WorkspaceFileRecord:
    return WorkspaceFileRecord(
        row.path, row.size, row.sha256, as_utc(row.created_at), row.project_key, bool(row.shared)
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
        project_key=row["project_key"],
        shared=bool(row["shared"]),
        bulk=json.loads(row["bulk"]),
    )
