"""The access part of the store: projects, users, memberships and API keys (``Store.access``).

An API key row holds the SHA-256 of the secret, never the secret. ``last_used_at`` is written at
most once a minute per key, so authenticating every call does not turn every read into a write.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from seedbed.coordinator.access import (
    HOW_TO_GET_A_KEY,
    Principal,
    Role,
    hash_secret,
    key_id_of,
    new_api_key,
    secret_matches,
)
from seedbed.coordinator.errors import AlreadyExistsError, NotFoundError, UnauthenticatedError
from seedbed.coordinator.store import _schema as t
from seedbed.coordinator.store.records import as_utc, now

if TYPE_CHECKING:
    from seedbed.coordinator.store.store import Store

log = logging.getLogger(__name__)

ADMIN_USER = "admin"
TOUCH_EVERY = timedelta(minutes=1)
# How long an authenticated key is trusted without asking the store again: every call would otherwise
# cost two reads (about 4 ms on SQLite, 9× a bare round trip). Changes made through this coordinator
# (a revocation, a role) apply at once; made through another coordinator of the same store, within
# this time.
AUTH_CACHE_SECONDS = 5.0
_MAX_TRUSTED = 10_000


@dataclass(frozen=True)
class ProjectRecord:
    key: str
    name: str
    description: str
    created_at: datetime


@dataclass(frozen=True)
class UserRecord:
    id: str
    display_name: str
    email: str
    superuser: bool
    created_at: datetime
    memberships: dict[str, Role] = field(default_factory=dict)


@dataclass(frozen=True)
class ApiKeyRecord:
    id: str
    user_id: str
    description: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


class AccessRepository:
    def __init__(self, store: Store) -> None:
        self._store = store
        # key id → (monotonic expiry, the key's stored SHA-256, the principal)
        self._trusted: dict[str, tuple[float, str, Principal]] = {}

    # -- projects ----------------------------------------------------------------------------------

    async def create_project(self, key: str, name: str, description: str) -> ProjectRecord:
        values = {"key": key, "name": name, "description": description, "created_at": now()}
        async with self._store._write() as conn:
            result = await conn.execute(
                self._store._insert(t.projects)
                .values(**values)
                .on_conflict_do_nothing(index_elements=["key"])
                .returning(t.projects.c.key)
            )
            if result.scalar_one_or_none() is None:
                raise AlreadyExistsError(f"project {key!r} already exists")
        return _project(values)

    async def get_project(self, key: str) -> ProjectRecord:
        async with self._store._engine.connect() as conn:
            row = (await conn.execute(select(t.projects).where(t.projects.c.key == key))).first()
        if row is None:
            raise NotFoundError("project", key)
        return _project(row._mapping)

    async def list_projects(self, keys: Collection[str] | None = None) -> list[ProjectRecord]:
        """Every project, or only those in ``keys``."""
        query = select(t.projects).order_by(t.projects.c.key)
        if keys is not None:
            query = query.where(t.projects.c.key.in_(list(keys)))
        async with self._store._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [_project(r._mapping) for r in rows]

    # -- users -------------------------------------------------------------------------------------

    async def create_user(
        self, user_id: str, *, display_name: str = "", email: str = "", superuser: bool = False
    ) -> UserRecord:
        values = {
            "id": user_id,
            "display_name": display_name,
            "email": email,
            "superuser": superuser,
            "created_at": now(),
        }
        async with self._store._write() as conn:
            result = await conn.execute(
                self._store._insert(t.users)
                .values(**values)
                .on_conflict_do_nothing(index_elements=["id"])
                .returning(t.users.c.id)
            )
            if result.scalar_one_or_none() is None:
                raise AlreadyExistsError(f"user {user_id!r} already exists")
        return _user(values, {})

    async def get_user(self, user_id: str) -> UserRecord:
        async with self._store._engine.connect() as conn:
            return await self._user(conn, user_id)

    async def _user(self, conn: AsyncConnection, user_id: str) -> UserRecord:
        row = (await conn.execute(select(t.users).where(t.users.c.id == user_id))).first()
        if row is None:
            raise NotFoundError("user", user_id)
        rows = (await conn.execute(select(t.memberships).where(t.memberships.c.user_id == user_id))).all()
        return _user(row._mapping, {r.project_key: Role[r.role] for r in rows})

    async def list_users(self) -> list[UserRecord]:
        async with self._store._engine.connect() as conn:
            users = (await conn.execute(select(t.users).order_by(t.users.c.id))).all()
            members = (await conn.execute(select(t.memberships))).all()
        roles: dict[str, dict[str, Role]] = {}
        for m in members:
            roles.setdefault(m.user_id, {})[m.project_key] = Role[m.role]
        return [_user(u._mapping, roles.get(u.id, {})) for u in users]

    async def user_count(self) -> int:
        async with self._store._engine.connect() as conn:
            return int((await conn.execute(select(func.count()).select_from(t.users))).scalar_one())

    async def set_membership(self, user_id: str, project_key: str, role: Role | None) -> UserRecord:
        """Give ``user_id`` ``role`` in the project; None removes the user from it."""
        self._trusted.clear()
        async with self._store._write() as conn:
            await self._user(conn, user_id)
            if (
                await conn.execute(select(t.projects.c.key).where(t.projects.c.key == project_key))
            ).first() is None:
                raise NotFoundError("project", project_key)
            where = (t.memberships.c.user_id == user_id) & (t.memberships.c.project_key == project_key)
            await conn.execute(t.memberships.delete().where(where))
            if role is not None:
                await conn.execute(
                    t.memberships.insert().values(user_id=user_id, project_key=project_key, role=role.name)
                )
            return await self._user(conn, user_id)

    # -- API keys ----------------------------------------------------------------------------------

    async def create_api_key(
        self, user_id: str, description: str, *, secret: str | None = None
    ) -> tuple[ApiKeyRecord, str]:
        """A new key for the user: (its record, the secret). ``secret``: a key chosen by the operator."""
        if secret is None:
            key_id, secret = new_api_key()
        else:
            key_id = key_id_of(secret)
        values = {
            "id": key_id,
            "user_id": user_id,
            "description": description,
            "secret_sha256": hash_secret(secret),
            "created_at": now(),
            "last_used_at": None,
            "revoked_at": None,
        }
        async with self._store._write() as conn:
            await self._user(conn, user_id)
            await conn.execute(t.api_keys.insert().values(**values))
        return _key(values), secret

    async def get_api_key(self, key_id: str) -> ApiKeyRecord:
        async with self._store._engine.connect() as conn:
            row = (await conn.execute(select(t.api_keys).where(t.api_keys.c.id == key_id))).first()
        if row is None:
            raise NotFoundError("API key", key_id)
        return _key(row._mapping)

    async def list_api_keys(self, user_id: str) -> list[ApiKeyRecord]:
        query = select(t.api_keys).where(t.api_keys.c.user_id == user_id).order_by(t.api_keys.c.created_at)
        async with self._store._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [_key(r._mapping) for r in rows]

    async def revoke_api_key(self, key_id: str) -> ApiKeyRecord:
        """Revoke (idempotent: a revoked key keeps its first revocation time)."""
        self._trusted.clear()
        async with self._store._write() as conn:
            result = await conn.execute(
                update(t.api_keys)
                .where(t.api_keys.c.id == key_id, t.api_keys.c.revoked_at.is_(None))
                .values(revoked_at=now())
            )
            if not result.rowcount:
                exists = (
                    await conn.execute(select(t.api_keys.c.id).where(t.api_keys.c.id == key_id))
                ).first()
                if exists is None:
                    raise NotFoundError("API key", key_id)
        return await self.get_api_key(key_id)

    async def authenticate(self, secret: str) -> Principal:
        """The principal a secret stands for. UnauthenticatedError for an unknown or revoked key."""
        key_id = key_id_of(secret)
        trusted = self._trusted.get(key_id)
        if trusted is not None and trusted[0] > time.monotonic() and secret_matches(secret, trusted[1]):
            return trusted[2]
        async with self._store._engine.connect() as conn:
            row = (await conn.execute(select(t.api_keys).where(t.api_keys.c.id == key_id))).first()
            if row is None or not secret_matches(secret, row.secret_sha256):
                raise UnauthenticatedError(f"the API key is not valid: {HOW_TO_GET_A_KEY}")
            if row.revoked_at is not None:
                raise UnauthenticatedError(
                    f"API key {key_id} was revoked: use another one ({HOW_TO_GET_A_KEY})"
                )
            user = await self._user(conn, row.user_id)
        last = as_utc(row.last_used_at)
        at = now()
        if last is None or at - last >= TOUCH_EVERY:
            await self._touch(key_id, at)
        principal = Principal(
            user_id=user.id, superuser=user.superuser, roles=dict(user.memberships), api_key_id=key_id
        )
        if len(self._trusted) >= _MAX_TRUSTED:
            self._trusted.clear()
        self._trusted[key_id] = (time.monotonic() + AUTH_CACHE_SECONDS, row.secret_sha256, principal)
        return principal

    async def _touch(self, key_id: str, at: datetime) -> None:
        cutoff = at - TOUCH_EVERY
        async with self._store._write() as conn:
            await conn.execute(
                update(t.api_keys)
                .where(
                    t.api_keys.c.id == key_id,
                    (t.api_keys.c.last_used_at.is_(None)) | (t.api_keys.c.last_used_at < cutoff),
                )
                .values(last_used_at=at)
            )

    # -- bootstrap ---------------------------------------------------------------------------------

    async def bootstrap_admin(self, configured_key: str) -> str | None:
        """Make sure someone can log in. Returns a generated secret to hand to the operator, or None.

        With ``configured_key``: the superuser ``admin`` exists and that key is valid for it (created
        or re-enabled: restarting with the same setting keeps working). Without: when the store has
        no user at all, ``admin`` is created with a generated key.
        """
        if configured_key:
            try:
                await self.create_user(ADMIN_USER, display_name="Administrator", superuser=True)
                log.warning("created the superuser %r", ADMIN_USER)
            except AlreadyExistsError:
                pass
            await self._ensure_key(ADMIN_USER, configured_key)
            return None
        if await self.user_count():
            return None
        try:
            await self.create_user(ADMIN_USER, display_name="Administrator", superuser=True)
        except AlreadyExistsError:
            return None  # another coordinator sharing the store bootstrapped it just now
        _record, secret = await self.create_api_key(ADMIN_USER, "generated at first start")
        return secret

    async def _ensure_key(self, user_id: str, secret: str) -> None:
        self._trusted.clear()
        key_id = key_id_of(secret)
        async with self._store._engine.connect() as conn:
            row = (await conn.execute(select(t.api_keys).where(t.api_keys.c.id == key_id))).first()
        if row is None:
            try:
                await self.create_api_key(user_id, "SEEDBED_ADMIN_API_KEY", secret=secret)
                return
            except IntegrityError:  # another coordinator sharing the store inserted it just now
                return await self._ensure_key(user_id, secret)
        if row.user_id != user_id or not secret_matches(secret, row.secret_sha256):
            raise UnauthenticatedError(
                f"SEEDBED_ADMIN_API_KEY collides with API key {key_id} of another secret or user: "
                "choose another key"
            )
        if row.revoked_at is not None:
            log.warning("API key %s (SEEDBED_ADMIN_API_KEY) was revoked; the setting re-enables it", key_id)
            async with self._store._write() as conn:
                await conn.execute(
                    update(t.api_keys).where(t.api_keys.c.id == key_id).values(revoked_at=None)
                )


def _project(row: Any) -> ProjectRecord:
    return ProjectRecord(
        key=row["key"],
        name=row["name"],
        description=row["description"],
        created_at=as_utc(row["created_at"]) or now(),
    )


def _user(row: Any, roles: dict[str, Role]) -> UserRecord:
    return UserRecord(
        id=row["id"],
        display_name=row["display_name"],
        email=row["email"],
        superuser=bool(row["superuser"]),
        created_at=as_utc(row["created_at"]) or now(),
        memberships=roles,
    )


def _key(row: Any) -> ApiKeyRecord:
    return ApiKeyRecord(
        id=row["id"],
        user_id=row["user_id"],
        description=row["description"],
        created_at=as_utc(row["created_at"]) or now(),
        last_used_at=as_utc(row["last_used_at"]),
        revoked_at=as_utc(row["revoked_at"]),
    )
