"""Use cases of the catalog's connections (create, read, list, delete, test), and what the catalog's
use cases share (templates: :mod:`.templates`).

Like :mod:`.runs`: plain values and the contract's messages in, the contract's messages out,
:class:`~seedbed.coordinator.errors.CoordinatorError` for every refusal, the caller being the current
principal. Connection tests run on a worker (``runs.ports.CatalogWorker``): the data plane owns the
target drivers.

Each object belongs to a project and may be shared with every project; who may read and change
what is decided in ``authz`` (``catalog_object``, ``catalog_scope``, ``check_sharing``), as for
scenarios: an object of a project the caller has no role in is NOT_FOUND unless it is shared.
Secrets never leave: a connection answers how its secret is provided ("stored", "env:NAME"), and its
URL without the password.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Sequence
from pathlib import Path
from typing import TypeVar

from seedbed.api.v1 import connection_pb2
from seedbed.coordinator import authz
from seedbed.coordinator._convert import ts
from seedbed.coordinator.access import (
    Role,
    WorkerClaims,
    current_principal,
    validate_user_id,
    worker_attempt_refusal,
)
from seedbed.coordinator.connections import (
    KINDS,
    UrlSecrets,
    choose_secret,
    normalize_connection_id,
    refusal,
    snapshot,
    split_sql_url,
    validate_bulk,
    validate_rest,
)
from seedbed.coordinator.errors import (
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
)
from seedbed.coordinator.model import page_of, validate_page
from seedbed.coordinator.runs.ports import CatalogWorker
from seedbed.coordinator.secrets import SecretBox
from seedbed.coordinator.store import Store, now
from seedbed.coordinator.store.catalog import ConnectionRecord, OtherProjectError

log = logging.getLogger(__name__)

MAX_ALLOWED_USERS = 1000
MAX_DESCRIPTION_CHARS = 1000

_KINDS = {getattr(connection_pb2, f"CONNECTION_KIND_{k.upper()}"): k for k in KINDS}
_KINDS_BACK = {v: k for k, v in _KINDS.items()}
_R = TypeVar("_R")


class ConnectionUseCases:
    def __init__(
        self,
        store: Store,
        worker: CatalogWorker,
        secrets: SecretBox,
        data_dir: Path,
        *,
        secret_file_dir: Path | None = None,
    ) -> None:
        self._store = store
        self._worker = worker
        self._secrets = secrets
        self._data_dir = data_dir
        self._secret_file_dir = secret_file_dir  # file secrets must lie in it; None: refused

    async def create_connection(
        self, definition: connection_pb2.CreateConnectionRequest
    ) -> connection_pb2.Connection:
        """Create (or with ``allow_update``, replace) the connection ``definition`` describes (the
        contract's request: a dozen fields, some whose presence matters). Superusers only: it
        carries credentials and decides ``allowed_users``. A password in the URL moves into the
        encrypted secret."""
        current_principal().require_superuser("creating a connection")
        connection_id = normalize_connection_id(definition.connection_id)
        project = await authz.project_for_new(self._store, definition.project_key, Role.ADMIN)
        existing = await or_none(self._store.connections.get(connection_id))
        if existing is not None and existing.project_key != project:
            raise authz.clash("connection", connection_id, existing.project_key)
        allowed = await self._allowed_users(definition.allowed_users)
        kind = _KINDS.get(definition.kind)
        if kind is None:
            raise InvalidArgumentError("kind", f"choose one of {', '.join(KINDS)}")
        if len(definition.description) > MAX_DESCRIPTION_CHARS:
            raise InvalidArgumentError("description", f"is longer than {MAX_DESCRIPTION_CHARS} characters")
        url, from_url, rest = "", UrlSecrets(), {}
        if kind in ("postgresql", "sql"):
            url, from_url = split_sql_url(kind, definition.url, self._data_dir)
        elif definition.url:
            raise InvalidArgumentError("url", f"a {kind} connection takes no URL")
        if kind == "rest":
            rest = validate_rest(
                {
                    "base_url": definition.rest.base_url,
                    "headers": dict(definition.rest.headers),
                    "auth_header": definition.rest.auth_header,
                    "batch_size": definition.rest.batch_size,
                    "timeout_seconds": definition.rest.timeout_seconds,
                    "idempotent": definition.rest.idempotent,
                    "undo": definition.rest.undo,
                    "undo_id_field": definition.rest.undo_id_field,
                }
            )
        bulk = validate_bulk(kind, definition.bulk)
        source = definition.secret.WhichOneof("source") or ""
        secret = choose_secret(
            source,
            getattr(definition.secret, source) if source else "",
            from_url,
            secret_file_dir=self._secret_file_dir,
        )
        if kind == "file" and secret.kind != "none":
            raise InvalidArgumentError("secret", "a file connection has no secret")
        at = now()
        record = ConnectionRecord(
            id=connection_id,
            kind=kind,
            description=definition.description,
            url=url,
            rest=rest,
            secret_kind=secret.kind,
            secret_ref=secret.ref,
            secret_cipher=self._secrets.seal(secret.value) if secret.value is not None else None,
            created_at=at,
            updated_at=at,
            allowed_users=allowed,
            project_key=project,
            shared=definition.shared,
            bulk=bulk,
        )
        try:
            saved = await self._store.connections.put(
                record, allow_update=definition.allow_update, set_shared=definition.HasField("shared")
            )
        except OtherProjectError as exc:  # created in another project meanwhile
            raise authz.clash("connection", connection_id, exc.project_key) from None
        return _connection_to_proto(saved)

    async def get_connection(self, connection_id: str) -> connection_pb2.Connection:
        return _connection_to_proto(await self._connection(connection_id, Role.VIEWER))

    async def list_connections(
        self, project_key: str = "", page_size: int = 0, page_token: str = ""
    ) -> tuple[list[connection_pb2.Connection], str]:
        """A page of the connections the caller may read (with ``project_key``: those that
        project's runs may use), and the next page's token ('' on the last)."""
        may_read("listing connections")
        scope = authz.catalog_scope(project_key)
        limit, offset = validate_page(page_size, page_token)
        recs = await self._store.connections.page(limit + 1, offset, scope)
        page, token = page_of(recs, limit, offset)
        return [_connection_to_proto(r) for r in page], token

    async def delete_connection(self, connection_id: str) -> None:
        current_principal().require_superuser("deleting a connection")
        await self._store.connections.delete(_known_connection_id(connection_id))

    async def test_connection(self, connection_id: str) -> connection_pb2.TestConnectionResponse:
        """Open the connection from a worker and try it. A target that cannot be reached is an
        answer (``ok`` false, the target's own message), not an error."""
        rec = await self._connection(connection_id, Role.EDITOR)
        # A test uses the secret as a run would: the same users may do it.
        reason = refusal(rec, current_principal().user_id)
        if reason:
            raise PermissionDeniedError(reason)
        ok, message, latency = await self._worker.test_connection(snapshot(rec, self._secrets))
        return connection_pb2.TestConnectionResponse(ok=ok, message=message, latency_seconds=latency)

    async def _connection(self, raw_id: str, role: Role) -> ConnectionRecord:
        rec = await self._store.connections.get(_known_connection_id(raw_id))
        if rec.shared and role == Role.EDITOR:
            # Any project's runs may use a shared connection: any project's editors may test it.
            current_principal().require_any_role(Role.EDITOR, "testing a shared connection")
        else:
            authz.catalog_object("connection", rec.id, rec.project_key, rec.shared, role)
        return rec

    async def _allowed_users(self, raw: Sequence[str]) -> tuple[str, ...]:
        """Distinct, valid user ids of existing users (INVALID_ARGUMENT naming the one that is not)."""
        if len(raw) > MAX_ALLOWED_USERS:
            raise InvalidArgumentError("allowed_users", f"{len(raw)} users; at most {MAX_ALLOWED_USERS}")
        users: list[str] = []
        for user_id in raw:
            validate_user_id(user_id, "allowed_users")
            try:
                await self._store.access.get_user(user_id)
            except NotFoundError:
                raise InvalidArgumentError(
                    "allowed_users",
                    f"user {user_id!r} does not exist: create it first (`seedbed user create`)",
                ) from None
            if user_id not in users:
                users.append(user_id)
        return tuple(users)


def _connection_to_proto(rec: ConnectionRecord) -> connection_pb2.Connection:
    """The connection without its secret: ``secret`` says how it is provided, ``url`` has no
    password."""
    msg = connection_pb2.Connection(
        id=rec.id,
        kind=_KINDS_BACK[rec.kind],
        description=rec.description,
        url=rec.url,
        secret=rec.secret_summary,
        create_time=ts(rec.created_at),
        update_time=ts(rec.updated_at),
        allowed_users=rec.allowed_users,
        project_key=rec.project_key,
        shared=rec.shared,
    )
    if rec.kind == "rest":
        msg.rest.CopyFrom(connection_pb2.RestOptions(**rec.rest))
    if rec.bulk:
        msg.bulk.CopyFrom(connection_pb2.BulkOptions(**rec.bulk))
    return msg


async def worker_run_project(store: Store, claims: WorkerClaims) -> str:
    """The project of the run whose attempt holds a worker token (what its reads may see);
    PermissionDeniedError when the attempt may read no more (see ``worker_attempt_refusal``)."""
    current = await store.attempts.current([claims.run_id])
    run_state, count = current.get(claims.run_id, (None, 0))
    attempt = next(
        (a for a in await store.attempts.for_run(claims.run_id) if a.number == claims.attempt), None
    )
    reason = worker_attempt_refusal(
        claims,
        run_state=str(run_state) if run_state is not None else None,
        current_attempt=count,
        attempt_state=attempt.state if attempt is not None else None,
        started_at=attempt.started_at if attempt is not None else None,
    )
    if reason:
        log.warning("a worker's read refused: %s", reason)
        raise PermissionDeniedError(reason)
    return (await store.get_run(claims.run_id)).project_key


def may_read(action: str) -> None:
    """Lists: a role in some project (each object is then checked against its own)."""
    current_principal().require_any_role(Role.VIEWER, action)


async def or_none(lookup: Awaitable[_R]) -> _R | None:
    """The object, or None when it does not exist (a clash check before a create or an upload)."""
    try:
        return await lookup
    except NotFoundError:
        return None


def _known_connection_id(raw: str) -> str:
    if not raw:
        raise InvalidArgumentError("connection_id", "is required")
    try:
        return normalize_connection_id(raw)
    except InvalidArgumentError:
        raise NotFoundError("connection", raw[:100]) from None
