"""gRPC servicers of the catalog: templates, connections and workspace files.

Template validation, previews and connection tests run on a worker (``runs.ports.CatalogWorker``): the
data plane owns template semantics and target drivers; the coordinator stores what they accept.

Each object belongs to a project and may be shared with every project; who may read and change
what is decided in ``authz`` (``catalog_object``, ``catalog_scope``, ``check_sharing``), as for
scenarios: an object of a project the caller has no role in is NOT_FOUND unless it is shared.
"""

from __future__ import annotations

import json
import logging
import posixpath
import re
from collections.abc import AsyncIterator, Awaitable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import grpc

from seedbed.api.v1 import (
    attempt_pb2,
    connection_pb2,
    connection_pb2_grpc,
    template_pb2,
    template_pb2_grpc,
    workspace_pb2,
    workspace_pb2_grpc,
)
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
    AlreadyExistsError,
    ConflictError,
    CoordinatorError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
)
from seedbed.coordinator.faces.grpc import status
from seedbed.coordinator.faces.grpc.status import guard
from seedbed.coordinator.model import page_of, validate_page
from seedbed.coordinator.ratelimits import Limit, RateLimiter, upload_cost
from seedbed.coordinator.runs.ports import CatalogWorker
from seedbed.coordinator.secrets import SecretBox
from seedbed.coordinator.settings import CoordinatorSettings
from seedbed.coordinator.store import Store, now
from seedbed.coordinator.store.catalog import (
    CatalogScope,
    ConnectionRecord,
    OtherProjectError,
    TemplateRecord,
    WorkspaceFileRecord,
    template_digest,
)

log = logging.getLogger(__name__)

_FORMATS = {template_pb2.TEMPLATE_FORMAT_YAML: "yaml", template_pb2.TEMPLATE_FORMAT_JSON: "json"}
_FORMATS_BACK = {v: k for k, v in _FORMATS.items()}
_TEMPLATE_ID = re.compile(r"^tmpl_[a-z0-9][a-z0-9_-]{0,62}$")
_KINDS = {getattr(connection_pb2, f"CONNECTION_KIND_{k.upper()}"): k for k in KINDS}
_KINDS_BACK = {v: k for k, v in _KINDS.items()}
MAX_PREVIEW_ROWS = 100
_R = TypeVar("_R")


def _known(kind: str, raw: str, pattern: re.Pattern[str], prefix: str) -> str:
    if not raw:
        raise InvalidArgumentError(f"{kind}_id", "is required")
    ident = raw if raw.startswith(prefix) else prefix + raw
    if not pattern.match(ident):
        raise NotFoundError(kind, raw[:100])
    return ident


def template_to_proto(rec: TemplateRecord) -> template_pb2.Template:
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


def _would_put(
    existing: TemplateRecord | None,
    request: template_pb2.PutTemplateRequest,
    project: str,
    shared: bool | None,
    result: dict[str, Any],
    expected: int | None,
) -> tuple[TemplateRecord, bool]:
    """A validate-only put: the template ``TemplateRepository.put`` would store over ``existing``
    (as read just before) and whether it would create it, with the refusals it would make. The
    real put decides them again, atomically."""
    template_id: str = result["id"]
    found = existing.revision if existing is not None else None
    if expected is not None and (found is not None if expected == 0 else found != expected):
        raise ConflictError("template", template_id, expected, found)
    if existing is not None and not request.allow_update:
        raise AlreadyExistsError(
            f"template {template_id!r} already exists: push it with update allowed to replace it"
        )
    at = now()
    return (
        TemplateRecord(
            id=template_id,
            source=request.source,
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


class TemplateServicer(template_pb2_grpc.TemplateServiceServicer):
    def __init__(
        self, store: Store, worker: CatalogWorker, settings: CoordinatorSettings, limits: RateLimiter
    ) -> None:
        self._store = store
        self._worker = worker
        self._settings = settings
        self._rates = limits

    async def _validate(self, source: str, fmt: template_pb2.TemplateFormat) -> dict[str, Any]:
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

    @guard
    async def PutTemplate(
        self, request: template_pb2.PutTemplateRequest, context: grpc.aio.ServicerContext
    ) -> template_pb2.PutTemplateResponse:
        project = await authz.project_for_new(self._store, request.project_key, Role.EDITOR)
        self._rates.take(Limit.TEMPLATE_PUSHES, current_principal().user_id)
        result = await self._validate(request.source, request.format)
        template_id = result["id"]
        existing = await _or_none(self._store.templates.get(template_id))
        if existing is not None and existing.project_key != project:
            raise authz.clash("template", template_id, existing.project_key)
        wanted = request.shared if request.HasField("shared") else None
        shared = authz.check_sharing(
            "template", template_id, project, wanted, existing.shared if existing else False
        )
        # Set: the put is conditional on the revision the caller read (0: on there being none).
        expected = request.expected_revision if request.HasField("expected_revision") else None
        if request.validate_only:
            rec, created = _would_put(existing, request, project, shared, result, expected)
            return template_pb2.PutTemplateResponse(template=template_to_proto(rec), created=created)
        try:
            rec, created = await self._store.templates.put(
                template_id,
                project_key=project,
                shared=shared,
                source=request.source,
                fmt=result["format"],
                canonical=result["canonical"],
                description=result["description"],
                field_names=result["field_names"],
                allow_update=request.allow_update,
                at=now(),
                expected_revision=expected,
            )
        except OtherProjectError as exc:  # created in another project meanwhile
            raise authz.clash("template", template_id, exc.project_key) from None
        return template_pb2.PutTemplateResponse(template=template_to_proto(rec), created=created)

    @guard
    async def GetTemplate(
        self, request: template_pb2.GetTemplateRequest, context: grpc.aio.ServicerContext
    ) -> template_pb2.GetTemplateResponse:
        rec = await self._template(request.template_id, Role.VIEWER)
        return template_pb2.GetTemplateResponse(template=template_to_proto(rec))

    async def _template(self, raw_id: str, role: Role) -> TemplateRecord:
        template_id = _known("template", raw_id, _TEMPLATE_ID, "tmpl_")
        rec = await self._store.templates.get(template_id)
        authz.catalog_object("template", template_id, rec.project_key, rec.shared, role)
        return rec

    @guard
    async def ListTemplates(
        self, request: template_pb2.ListTemplatesRequest, context: grpc.aio.ServicerContext
    ) -> template_pb2.ListTemplatesResponse:
        _may_read("listing templates")
        scope = authz.catalog_scope(request.project_key)
        limit, offset = validate_page(request.page_size, request.page_token)
        recs = await self._store.templates.page(limit + 1, offset, scope)
        page, token = page_of(recs, limit, offset)
        return template_pb2.ListTemplatesResponse(
            templates=[template_to_proto(r) for r in page], next_page_token=token
        )

    @guard
    async def DeleteTemplate(
        self, request: template_pb2.DeleteTemplateRequest, context: grpc.aio.ServicerContext
    ) -> template_pb2.DeleteTemplateResponse:
        rec = await self._template(request.template_id, Role.EDITOR)
        await self._store.templates.delete(rec.id, rec.project_key)
        return template_pb2.DeleteTemplateResponse()

    @guard
    async def PreviewTemplate(
        self, request: template_pb2.PreviewTemplateRequest, context: grpc.aio.ServicerContext
    ) -> template_pb2.PreviewTemplateResponse:
        if request.source:
            # An unsaved document is template authoring: what pushing one needs (the validating worker
            # runs it), in the project whose templates it may refer to.
            project = await authz.project_for_new(self._store, request.project_key, Role.EDITOR)
            self._rates.take(Limit.TEMPLATE_PUSHES, current_principal().user_id)
        else:
            stored = await self._template(request.template_id, Role.VIEWER)
            project = stored.project_key
        count = request.count or 5
        if not 1 <= count <= MAX_PREVIEW_ROWS:
            raise InvalidArgumentError("count", f"{count} is outside 1..{MAX_PREVIEW_ROWS}")
        # What a run of that project would see.
        scope = CatalogScope.of_project(project)
        templates = {r.id: r.canonical for r in await self._store.templates.all(scope)}
        if request.source:
            result = await self._validate(request.source, template_pb2.TEMPLATE_FORMAT_UNSPECIFIED)
            template_id = result["id"]
            templates[template_id] = result["canonical"]
        else:
            template_id = stored.id
            templates[template_id] = stored.canonical
        seed = request.seed if request.HasField("seed") else None
        result = await self._worker.preview_template(template_id, templates, count, seed, self._limits())
        if not result["ok"]:
            raise FailedPreconditionError(f"template {template_id!r} cannot produce rows: {result['error']}")
        return template_pb2.PreviewTemplateResponse(
            rows_json=[json.dumps(row) for row in result["rows"]], faker_version=result["faker_version"]
        )


def connection_to_proto(rec: ConnectionRecord) -> connection_pb2.Connection:
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


class ConnectionServicer(connection_pb2_grpc.ConnectionServiceServicer):
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

    async def _allowed_users(self, raw: Sequence[str]) -> tuple[str, ...]:
        """Distinct, valid user ids of existing users (INVALID_ARGUMENT naming the one that is not)."""
        if len(raw) > 1000:
            raise InvalidArgumentError("allowed_users", f"{len(raw)} users; at most 1000")
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

    @guard
    async def CreateConnection(
        self, request: connection_pb2.CreateConnectionRequest, context: grpc.aio.ServicerContext
    ) -> connection_pb2.CreateConnectionResponse:
        current_principal().require_superuser("creating a connection")
        connection_id = normalize_connection_id(request.connection_id)
        project = await authz.project_for_new(self._store, request.project_key, Role.ADMIN)
        existing = await _or_none(self._store.connections.get(connection_id))
        if existing is not None and existing.project_key != project:
            raise authz.clash("connection", connection_id, existing.project_key)
        allowed = await self._allowed_users(request.allowed_users)
        kind = _KINDS.get(request.kind)
        if kind is None:
            raise InvalidArgumentError("kind", f"choose one of {', '.join(KINDS)}")
        if len(request.description) > 1000:
            raise InvalidArgumentError("description", "is longer than 1000 characters")
        url, from_url, rest = "", UrlSecrets(), {}
        if kind in ("postgresql", "sql"):
            url, from_url = split_sql_url(kind, request.url, self._data_dir)
        elif request.url:
            raise InvalidArgumentError("url", f"a {kind} connection takes no URL")
        if kind == "rest":
            rest = validate_rest(
                {
                    "base_url": request.rest.base_url,
                    "headers": dict(request.rest.headers),
                    "auth_header": request.rest.auth_header,
                    "batch_size": request.rest.batch_size,
                    "timeout_seconds": request.rest.timeout_seconds,
                    "idempotent": request.rest.idempotent,
                }
            )
        bulk = validate_bulk(kind, request.bulk)
        source = request.secret.WhichOneof("source") or ""
        secret = choose_secret(
            source,
            getattr(request.secret, source) if source else "",
            from_url,
            secret_file_dir=self._secret_file_dir,
        )
        if kind == "file" and secret.kind != "none":
            raise InvalidArgumentError("secret", "a file connection has no secret")
        at = now()
        record = ConnectionRecord(
            id=connection_id,
            kind=kind,
            description=request.description,
            url=url,
            rest=rest,
            secret_kind=secret.kind,
            secret_ref=secret.ref,
            secret_cipher=self._secrets.seal(secret.value) if secret.value is not None else None,
            created_at=at,
            updated_at=at,
            allowed_users=allowed,
            project_key=project,
            shared=request.shared,
            bulk=bulk,
        )
        try:
            saved = await self._store.connections.put(
                record, allow_update=request.allow_update, set_shared=request.HasField("shared")
            )
        except OtherProjectError as exc:  # created in another project meanwhile
            raise authz.clash("connection", connection_id, exc.project_key) from None
        return connection_pb2.CreateConnectionResponse(connection=connection_to_proto(saved))

    @guard
    async def GetConnection(
        self, request: connection_pb2.GetConnectionRequest, context: grpc.aio.ServicerContext
    ) -> connection_pb2.GetConnectionResponse:
        rec = await self._connection(request.connection_id, Role.VIEWER)
        return connection_pb2.GetConnectionResponse(connection=connection_to_proto(rec))

    async def _connection(self, raw_id: str, role: Role) -> ConnectionRecord:
        rec = await self._store.connections.get(_connection_id(raw_id))
        if rec.shared and role == Role.EDITOR:
            # Any project's runs may use a shared connection: any project's editors may test it.
            _may_write("testing a shared connection")
        else:
            authz.catalog_object("connection", rec.id, rec.project_key, rec.shared, role)
        return rec

    @guard
    async def ListConnections(
        self, request: connection_pb2.ListConnectionsRequest, context: grpc.aio.ServicerContext
    ) -> connection_pb2.ListConnectionsResponse:
        _may_read("listing connections")
        scope = authz.catalog_scope(request.project_key)
        limit, offset = validate_page(request.page_size, request.page_token)
        recs = await self._store.connections.page(limit + 1, offset, scope)
        page, token = page_of(recs, limit, offset)
        return connection_pb2.ListConnectionsResponse(
            connections=[connection_to_proto(r) for r in page], next_page_token=token
        )

    @guard
    async def DeleteConnection(
        self, request: connection_pb2.DeleteConnectionRequest, context: grpc.aio.ServicerContext
    ) -> connection_pb2.DeleteConnectionResponse:
        current_principal().require_superuser("deleting a connection")
        await self._store.connections.delete(_connection_id(request.connection_id))
        return connection_pb2.DeleteConnectionResponse()

    @guard
    async def TestConnection(
        self, request: connection_pb2.TestConnectionRequest, context: grpc.aio.ServicerContext
    ) -> connection_pb2.TestConnectionResponse:
        rec = await self._connection(request.connection_id, Role.EDITOR)
        # A test uses the secret as a run would: the same users may do it.
        reason = refusal(rec, current_principal().user_id)
        if reason:
            raise PermissionDeniedError(reason)
        ok, message, latency = await self._worker.test_connection(snapshot(rec, self._secrets))
        return connection_pb2.TestConnectionResponse(ok=ok, message=message, latency_seconds=latency)


def _may_read(action: str) -> None:
    """Lists: a role in some project (each object is then checked against its own)."""
    current_principal().require_any_role(Role.VIEWER, action)


def _may_write(action: str) -> None:
    """Testing a shared connection: an EDITOR somewhere (or a superuser)."""
    current_principal().require_any_role(Role.EDITOR, action)


async def _or_none(lookup: Awaitable[_R]) -> _R | None:
    """The object, or None when it does not exist (a clash check before a create)."""
    try:
        return await lookup
    except NotFoundError:
        return None


def _connection_id(raw: str) -> str:
    if not raw:
        raise InvalidArgumentError("connection_id", "is required")
    try:
        return normalize_connection_id(raw)
    except InvalidArgumentError:
        raise NotFoundError("connection", raw[:100]) from None


# -- workspace -------------------------------------------------------------------------------------

_PATH_PART = re.compile(r"^[A-Za-z0-9._-][A-Za-z0-9._ -]{0,127}$")


def validate_workspace_path(raw: str) -> str:
    """Relative, '/'-separated, no '..', no absolute paths, no control characters."""
    if not raw or len(raw) > 512:
        raise InvalidArgumentError("path", "must be 1-512 characters")
    if raw.startswith("/") or "\\" in raw:
        raise InvalidArgumentError("path", f"{raw[:100]!r} must be relative and use '/'")
    parts = raw.split("/")
    if any(p in ("", ".", "..") for p in parts) or posixpath.normpath(raw) != raw:
        raise InvalidArgumentError("path", f"{raw[:100]!r} must not contain '..', '.' or empty parts")
    for part in parts:
        if not _PATH_PART.match(part):
            raise InvalidArgumentError(
                "path", f"{part[:60]!r}: use letters, digits, '.', '_', '-' and spaces (≤128 a part)"
            )
    return raw


def file_to_proto(rec: WorkspaceFileRecord) -> workspace_pb2.WorkspaceFile:
    return workspace_pb2.WorkspaceFile(
        path=rec.path,
        size_bytes=rec.size,
        sha256=rec.sha256,
        create_time=ts(rec.created_at),
        project_key=rec.project_key,
        shared=rec.shared,
    )


class WorkspaceServicer(workspace_pb2_grpc.WorkspaceServiceServicer):
    def __init__(self, store: Store, settings: CoordinatorSettings, limits: RateLimiter) -> None:
        self._store = store
        self._settings = settings
        self._rates = limits

    async def UploadFile(
        self,
        request_iterator: AsyncIterator[workspace_pb2.UploadFileRequest],
        context: grpc.aio.ServicerContext,
    ) -> workspace_pb2.UploadFileResponse:
        try:
            return await self._upload(request_iterator)
        except CoordinatorError as exc:
            await status.abort(context, exc)
        raise AssertionError("unreachable")

    async def _upload(
        self, request_iterator: AsyncIterator[workspace_pb2.UploadFileRequest]
    ) -> workspace_pb2.UploadFileResponse:
        limit = self._settings.max_workspace_file_bytes
        header: workspace_pb2.UploadHeader | None = None
        chunks: list[bytes] = []
        received = 0
        async for message in request_iterator:
            if message.HasField("header"):
                if header is not None:
                    raise InvalidArgumentError("header", "sent twice")
                header = message.header
                project = await authz.project_for_new(self._store, header.project_key, Role.EDITOR)
                validate_workspace_path(header.path)
                existing = await _or_none(self._store.workspace.get(header.path))
                if existing is not None and existing.project_key != project:
                    raise authz.clash("workspace file", header.path, existing.project_key)
                shared = authz.check_sharing(
                    "workspace file",
                    header.path,
                    project,
                    header.shared if header.HasField("shared") else None,
                    existing.shared if existing else False,
                )
                if header.size_bytes > limit:
                    raise InvalidArgumentError(
                        "size_bytes",
                        f"{header.size_bytes} bytes is over the file limit of {limit} bytes "
                        "(SEEDBED_MAX_WORKSPACE_FILE_BYTES)",
                    )
                total = await self._store.workspace.total_bytes()
                if total + header.size_bytes > self._settings.max_workspace_bytes:
                    raise InvalidArgumentError(
                        "size_bytes",
                        f"the workspace holds {total} bytes; adding {header.size_bytes} exceeds its limit "
                        f"of {self._settings.max_workspace_bytes} bytes (SEEDBED_MAX_WORKSPACE_BYTES): "
                        "delete files first",
                    )
                cost = upload_cost(header.size_bytes)
                self._rates.take(Limit.UPLOAD_BYTES, current_principal().user_id, cost)
                continue
            if header is None:
                raise InvalidArgumentError("header", "the first message must be the header")
            received += len(message.chunk)
            if received > header.size_bytes or received > limit:
                raise InvalidArgumentError(
                    "chunk", f"more bytes than announced ({header.size_bytes}) or over the limit of {limit}"
                )
            chunks.append(message.chunk)
        if header is None:
            raise InvalidArgumentError("header", "the upload was empty")
        if received != header.size_bytes:
            raise InvalidArgumentError(
                "chunk",
                f"received {received} bytes but {header.size_bytes} were announced: nothing was stored",
            )
        try:
            rec = await self._store.workspace.put(
                header.path,
                chunks,
                project_key=project,
                shared=shared,
                overwrite=header.overwrite,
                at=now(),
            )
        except OtherProjectError as exc:  # uploaded in another project meanwhile
            raise authz.clash("workspace file", header.path, exc.project_key) from None
        return workspace_pb2.UploadFileResponse(file=file_to_proto(rec))

    async def DownloadFile(
        self, request: workspace_pb2.DownloadFileRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[workspace_pb2.DownloadFileResponse]:
        try:
            worker = current_principal().worker
            run_project = None
            if worker is not None:  # a worker reading for its attempt, while that attempt lasts
                run_project = await self._check_worker(worker)
            path = validate_workspace_path(request.path)
            rec = await self._store.workspace.get(path)
            if run_project is None:
                authz.catalog_object("workspace file", path, rec.project_key, rec.shared, Role.VIEWER)
            elif rec.project_key != run_project and not rec.shared:
                # Another project's file is unknown to the run, as a missing one is.
                raise NotFoundError("workspace file", path)
        except InvalidArgumentError:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"workspace file {request.path[:100]!r} not found")
        except CoordinatorError as exc:
            await status.abort(context, exc)
        first = True
        async for chunk in self._store.workspace.chunks(path):
            response = workspace_pb2.DownloadFileResponse(chunk=chunk)
            if first:
                response.file.CopyFrom(file_to_proto(rec))
                first = False
            yield response
        if first:
            yield workspace_pb2.DownloadFileResponse(file=file_to_proto(rec))

    async def _check_worker(self, claims: WorkerClaims) -> str:
        """The project of the run whose attempt holds the token; PermissionDeniedError when the
        attempt may read no more."""
        current = await self._store.attempts.current([claims.run_id])
        run_state, count = current.get(claims.run_id, (None, 0))
        attempt = next(
            (a for a in await self._store.attempts.for_run(claims.run_id) if a.number == claims.attempt), None
        )
        reason = worker_attempt_refusal(
            claims,
            run_state=str(run_state) if run_state is not None else None,
            current_attempt=count,
            attempt_state=attempt.state if attempt is not None else None,
            started_at=attempt.started_at if attempt is not None else None,
        )
        if reason:
            log.warning("workspace read refused: %s", reason)
            raise PermissionDeniedError(reason)
        return (await self._store.get_run(claims.run_id)).project_key

    @guard
    async def ListFiles(
        self, request: workspace_pb2.ListFilesRequest, context: grpc.aio.ServicerContext
    ) -> workspace_pb2.ListFilesResponse:
        _may_read("listing workspace files")
        scope = authz.catalog_scope(request.project_key)
        limit, offset = validate_page(request.page_size, request.page_token)
        recs = await self._store.workspace.page(request.prefix[:512], limit + 1, offset, scope)
        page, token = page_of(recs, limit, offset)
        return workspace_pb2.ListFilesResponse(files=[file_to_proto(r) for r in page], next_page_token=token)

    @guard
    async def DeleteFile(
        self, request: workspace_pb2.DeleteFileRequest, context: grpc.aio.ServicerContext
    ) -> workspace_pb2.DeleteFileResponse:
        try:
            path = validate_workspace_path(request.path)
        except InvalidArgumentError:
            raise NotFoundError("workspace file", request.path[:100]) from None
        rec = await self._store.workspace.get(path)
        authz.catalog_object("workspace file", path, rec.project_key, rec.shared, Role.EDITOR)
        await self._store.workspace.delete(path, rec.project_key)
        return workspace_pb2.DeleteFileResponse()
