"""Use cases of the catalog: templates (push, read, list, delete, preview) and connections (create,
read, list, delete, test).

Like :mod:`.runs`: plain values and the contract's messages in, the contract's messages out,
:class:`~seedbed.coordinator.errors.CoordinatorError` for every refusal, the caller being the current
principal. Template validation, previews and connection tests run on a worker
(``runs.ports.CatalogWorker``): the data plane owns template semantics and target drivers; the
coordinator stores what they accept.

Each object belongs to a project and may be shared with every project; who may read and change
what is decided in ``authz`` (``catalog_object``, ``catalog_scope``, ``check_sharing``), as for
scenarios: an object of a project the caller has no role in is NOT_FOUND unless it is shared.
Secrets never leave: a connection answers how its secret is provided ("stored", "env:NAME"), and its
URL without the password.

``validate_only`` (a template push) is the scenarios' (see :mod:`.scenarios`): every check, then the
template as it would be stored, built from the request and the current record instead of written.
Unlike a scenario's, it takes the pushes rate limit, since a worker validates the document.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from seedbed.api.v1 import attempt_pb2, connection_pb2, template_pb2
from seedbed.coordinator import authz
from seedbed.coordinator._convert import ts
from seedbed.coordinator.access import Role, current_principal, validate_user_id
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
    AlreadyExistsError,
    ConflictError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
)
from seedbed.coordinator.model import MAX_INT64, page_of, validate_page
from seedbed.coordinator.ratelimits import Limit, RateLimiter
from seedbed.coordinator.runs.ports import CatalogWorker
from seedbed.coordinator.secrets import SecretBox
from seedbed.coordinator.settings import CoordinatorSettings
from seedbed.coordinator.store import Store, now
from seedbed.coordinator.store.catalog import (
    CatalogScope,
    ConnectionRecord,
    OtherProjectError,
    TemplateRecord,
    template_digest,
)

MAX_PREVIEW_ROWS = 100
DEFAULT_PREVIEW_ROWS = 5
MAX_ALLOWED_USERS = 1000
MAX_DESCRIPTION_CHARS = 1000

_FORMATS = {template_pb2.TEMPLATE_FORMAT_YAML: "yaml", template_pb2.TEMPLATE_FORMAT_JSON: "json"}
_FORMATS_BACK = {v: k for k, v in _FORMATS.items()}
_TEMPLATE_ID = re.compile(r"^tmpl_[a-z0-9][a-z0-9_-]{0,62}$")
_KINDS = {getattr(connection_pb2, f"CONNECTION_KIND_{k.upper()}"): k for k in KINDS}
_KINDS_BACK = {v: k for k, v in _KINDS.items()}
_R = TypeVar("_R")


class TemplateUseCases:
    def __init__(
        self, store: Store, worker: CatalogWorker, settings: CoordinatorSettings, limits: RateLimiter
    ) -> None:
        self._store = store
        self._worker = worker
        self._settings = settings
        self._rates = limits

    async def put_template(
        self,
        source: str,
        fmt: template_pb2.TemplateFormat = template_pb2.TEMPLATE_FORMAT_UNSPECIFIED,
        *,
        project_key: str = "",
        allow_update: bool = False,
        shared: bool | None = None,
        expected_revision: int | None = None,
        validate_only: bool = False,
    ) -> tuple[template_pb2.Template, bool]:
        """Store the document (its id is the one it names); (the template, whether it was created).
        ``shared`` None keeps the current value; ``expected_revision`` makes the put conditional (0:
        only if it does not exist yet). ``validate_only``: check, answer it as it would be stored,
        write nothing (see the module docstring)."""
        project = await authz.project_for_new(self._store, project_key, Role.EDITOR)
        self._rates.take(Limit.TEMPLATE_PUSHES, current_principal().user_id)
        result = await self._validate(source, fmt)
        template_id = result["id"]
        existing = await or_none(self._store.templates.get(template_id))
        if existing is not None and existing.project_key != project:
            raise authz.clash("template", template_id, existing.project_key)
        shared = authz.check_sharing(
            "template", template_id, project, shared, existing.shared if existing else False
        )
        if validate_only:
            rec, created = _would_put(
                existing, source, project, shared, result, allow_update, expected_revision
            )
            return _template_to_proto(rec), created
        try:
            rec, created = await self._store.templates.put(
                template_id,
                project_key=project,
                shared=shared,
                source=source,
                fmt=result["format"],
                canonical=result["canonical"],
                description=result["description"],
                field_names=result["field_names"],
                allow_update=allow_update,
                at=now(),
                expected_revision=expected_revision,
            )
        except OtherProjectError as exc:  # created in another project meanwhile
            raise authz.clash("template", template_id, exc.project_key) from None
        return _template_to_proto(rec), created

    async def get_template(self, template_id: str) -> template_pb2.Template:
        return _template_to_proto(await self._template(template_id, Role.VIEWER))

    async def list_templates(
        self, project_key: str = "", page_size: int = 0, page_token: str = ""
    ) -> tuple[list[template_pb2.Template], str]:
        """A page of the templates the caller may read (with ``project_key``: those that project's
        runs may use), and the next page's token ('' on the last)."""
        may_read("listing templates")
        scope = authz.catalog_scope(project_key)
        limit, offset = validate_page(page_size, page_token)
        recs = await self._store.templates.page(limit + 1, offset, scope)
        page, token = page_of(recs, limit, offset)
        return [_template_to_proto(r) for r in page], token

    async def delete_template(self, template_id: str) -> None:
        rec = await self._template(template_id, Role.EDITOR)
        await self._store.templates.delete(rec.id, rec.project_key)

    async def preview_template(
        self, template_id: str, *, count: int = DEFAULT_PREVIEW_ROWS, seed: int | None = None
    ) -> template_pb2.PreviewTemplateResponse:
        """``count`` rows of a stored template, generated as a run of its project would (the same
        ``seed`` gives the same rows)."""
        stored = await self._template(template_id, Role.VIEWER)
        _check_preview(count, seed)
        return await self._preview(stored.id, stored.canonical, stored.project_key, count, seed)

    async def preview_draft(
        self,
        source: str,
        fmt: template_pb2.TemplateFormat = template_pb2.TEMPLATE_FORMAT_UNSPECIFIED,
        *,
        project_key: str = "",
        count: int = DEFAULT_PREVIEW_ROWS,
        seed: int | None = None,
    ) -> template_pb2.PreviewTemplateResponse:
        """``count`` rows of an unsaved document, in the project whose templates it may refer to.
        That is template authoring: it needs what a push needs (EDITOR there, the pushes rate
        limit, the validating worker), and stores nothing."""
        project = await authz.project_for_new(self._store, project_key, Role.EDITOR)
        _check_preview(count, seed)
        self._rates.take(Limit.TEMPLATE_PUSHES, current_principal().user_id)
        result = await self._validate(source, fmt)
        return await self._preview(result["id"], result["canonical"], project, count, seed)

    async def _preview(
        self, template_id: str, canonical: Any, project: str, count: int, seed: int | None
    ) -> template_pb2.PreviewTemplateResponse:
        # What a run of that project would see, the previewed document over a stored one of its id.
        stored = await self._store.templates.all(CatalogScope.of_project(project))
        templates = {r.id: r.canonical for r in stored}
        templates[template_id] = canonical
        result = await self._worker.preview_template(template_id, templates, count, seed, self._limits())
        if not result["ok"]:
            raise FailedPreconditionError(f"template {template_id!r} cannot produce rows: {result['error']}")
        return template_pb2.PreviewTemplateResponse(
            rows_json=[json.dumps(row) for row in result["rows"]], faker_version=result["faker_version"]
        )

    async def _template(self, raw_id: str, role: Role) -> TemplateRecord:
        template_id = _known_template_id(raw_id)
        rec = await self._store.templates.get(template_id)
        authz.catalog_object("template", template_id, rec.project_key, rec.shared, role)
        return rec

    async def _validate(self, source: str, fmt: template_pb2.TemplateFormat) -> dict[str, Any]:
        """The worker's reading of the document; INVALID_ARGUMENT on ``source`` listing every
        problem with the path of the field it concerns."""
        size = len(source.encode())
        if not source.strip():
            raise InvalidArgumentError("source", "must not be empty")
        if size > self._settings.max_template_bytes:
            raise InvalidArgumentError(
                "source",
                f"is {size} bytes; the limit is {self._settings.max_template_bytes} bytes "
                "(SEEDBED_MAX_TEMPLATE_BYTES)",
            )
        result = await self._worker.validate_template(source, _FORMATS.get(fmt, "auto"), self._limits())
        if not result["ok"]:
            issues = result["issues"]
            lines = "\n".join(f"  {i['path'] or '(document)'}: {i['message']}" for i in issues)
            raise InvalidArgumentError(
                "source", f"the template is invalid ({len(issues)} problem(s)):\n{lines}"
            )
        return result

    def _limits(self) -> attempt_pb2.DataLimits:
        """The caps a template's estimated and rendered sizes must respect."""
        return attempt_pb2.DataLimits(
            max_template_field_bytes=self._settings.max_template_field_bytes,
            max_template_row_bytes=self._settings.max_template_row_bytes,
        )


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


def _template_to_proto(rec: TemplateRecord) -> template_pb2.Template:
    return template_pb2.Template(
        id=rec.id,
        source=rec.source,
        format=_FORMATS_BACK.get(rec.format, template_pb2.TEMPLATE_FORMAT_UNSPECIFIED),
        canonical_json=json.dumps(rec.canonical),
        revision=rec.revision,
        digest=rec.digest,
        description=rec.description,
        field_names=rec.field_names,
        create_time=ts(rec.created_at),
        update_time=ts(rec.updated_at),
        project_key=rec.project_key,
        shared=rec.shared,
    )


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


def _would_put(
    existing: TemplateRecord | None,
    source: str,
    project: str,
    shared: bool | None,
    result: dict[str, Any],
    allow_update: bool,
    expected: int | None,
) -> tuple[TemplateRecord, bool]:
    """A validate-only put: the template ``TemplateRepository.put`` would store over ``existing``
    (as read just before) and whether it would create it, with the refusals it would make. The
    real put decides them again, atomically."""
    template_id: str = result["id"]
    found = existing.revision if existing is not None else None
    if expected is not None and (found is not None if expected == 0 else found != expected):
        raise ConflictError("template", template_id, expected, found)
    if existing is not None and not allow_update:
        raise AlreadyExistsError(
            f"template {template_id!r} already exists: push it with update allowed to replace it"
        )
    at = now()
    return (
        TemplateRecord(
            id=template_id,
            source=source,
            format=result["format"],
            canonical=result["canonical"],
            digest=template_digest(result["canonical"]),
            description=result["description"],
            field_names=result["field_names"],
            revision=1 if existing is None else existing.revision + 1,
            created_at=at if existing is None else existing.created_at,
            updated_at=at,
            project_key=project,
            shared=bool(shared) if shared is not None or existing is None else existing.shared,
        ),
        existing is None,
    )


def _check_preview(count: int, seed: int | None) -> None:
    if not 1 <= count <= MAX_PREVIEW_ROWS:
        raise InvalidArgumentError("count", f"{count} is outside 1..{MAX_PREVIEW_ROWS}")
    if seed is not None and not -MAX_INT64 - 1 <= seed <= MAX_INT64:
        raise InvalidArgumentError("seed", "must fit in a signed 64-bit integer")


def may_read(action: str) -> None:
    """Lists: a role in some project (each object is then checked against its own)."""
    current_principal().require_any_role(Role.VIEWER, action)


async def or_none(lookup: Awaitable[_R]) -> _R | None:
    """The object, or None when it does not exist (a clash check before a create or an upload)."""
    try:
        return await lookup
    except NotFoundError:
        return None


def _known_template_id(raw: str) -> str:
    """Ids that cannot exist are NOT_FOUND, not INVALID_ARGUMENT: a lookup never tells them apart.
    The ``tmpl_`` prefix may be left out."""
    if not raw:
        raise InvalidArgumentError("template_id", "is required")
    ident = raw if raw.startswith("tmpl_") else "tmpl_" + raw
    if not _TEMPLATE_ID.match(ident):
        raise NotFoundError("template", raw[:100])
    return ident


def _known_connection_id(raw: str) -> str:
    if not raw:
        raise InvalidArgumentError("connection_id", "is required")
    try:
        return normalize_connection_id(raw)
    except InvalidArgumentError:
        raise NotFoundError("connection", raw[:100]) from None
