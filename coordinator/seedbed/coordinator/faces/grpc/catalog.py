"""gRPC servicers of the catalog: templates, connections and workspace files.

Templates and connections are thin adapters over their use cases (``app.TemplateUseCases``,
``app.ConnectionUseCases``), which the REST face calls too. Workspace files are served here from the
store until another face needs them: who may read and change them is decided in ``authz``
(``catalog_object``, ``catalog_scope``, ``check_sharing``), as for the rest of the catalog.
"""

from __future__ import annotations

import logging
import posixpath
import re
from collections.abc import AsyncIterator

import grpc

from seedbed.api.v1 import (
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
)
from seedbed.coordinator.app import ConnectionUseCases, TemplateUseCases
from seedbed.coordinator.app.catalog import may_read, or_none, worker_run_project
from seedbed.coordinator.app.templates import DEFAULT_PREVIEW_ROWS
from seedbed.coordinator.errors import (
    CoordinatorError,
    InvalidArgumentError,
    NotFoundError,
)
from seedbed.coordinator.faces.grpc import status
from seedbed.coordinator.faces.grpc.status import guard
from seedbed.coordinator.model import page_of, validate_page
from seedbed.coordinator.ratelimits import Limit, RateLimiter, upload_cost
from seedbed.coordinator.settings import CoordinatorSettings
from seedbed.coordinator.store import Store, now
from seedbed.coordinator.store.catalog import OtherProjectError, WorkspaceFileRecord

log = logging.getLogger(__name__)


class TemplateServicer(template_pb2_grpc.TemplateServiceServicer):
    def __init__(self, app: TemplateUseCases) -> None:
        self._app = app

    @guard
    async def PutTemplate(
        self, request: template_pb2.PutTemplateRequest, context: grpc.aio.ServicerContext
    ) -> template_pb2.PutTemplateResponse:
        template, created = await self._app.put_template(
            request.source,
            request.format,
            project_key=request.project_key,
            allow_update=request.allow_update,
            shared=request.shared if request.HasField("shared") else None,
            expected_revision=request.expected_revision if request.HasField("expected_revision") else None,
            validate_only=request.validate_only,
        )
        return template_pb2.PutTemplateResponse(template=template, created=created)

    @guard
    async def GetTemplate(
        self, request: template_pb2.GetTemplateRequest, context: grpc.aio.ServicerContext
    ) -> template_pb2.GetTemplateResponse:
        return template_pb2.GetTemplateResponse(
            template=await self._app.get_template(request.template_id, request.version)
        )

    @guard
    async def ListTemplateVersions(
        self, request: template_pb2.ListTemplateVersionsRequest, context: grpc.aio.ServicerContext
    ) -> template_pb2.ListTemplateVersionsResponse:
        versions, token = await self._app.list_template_versions(
            request.template_id, request.page_size, request.page_token
        )
        return template_pb2.ListTemplateVersionsResponse(versions=versions, next_page_token=token)

    @guard
    async def ListTemplates(
        self, request: template_pb2.ListTemplatesRequest, context: grpc.aio.ServicerContext
    ) -> template_pb2.ListTemplatesResponse:
        templates, token = await self._app.list_templates(
            request.project_key, request.page_size, request.page_token
        )
        return template_pb2.ListTemplatesResponse(templates=templates, next_page_token=token)

    @guard
    async def DeleteTemplate(
        self, request: template_pb2.DeleteTemplateRequest, context: grpc.aio.ServicerContext
    ) -> template_pb2.DeleteTemplateResponse:
        await self._app.delete_template(request.template_id)
        return template_pb2.DeleteTemplateResponse()

    @guard
    async def PreviewTemplate(
        self, request: template_pb2.PreviewTemplateRequest, context: grpc.aio.ServicerContext
    ) -> template_pb2.PreviewTemplateResponse:
        count = request.count or DEFAULT_PREVIEW_ROWS  # the contract: 0 means the default
        seed = request.seed if request.HasField("seed") else None
        if request.source:  # the format is detected from the text
            return await self._app.preview_draft(
                request.source, project_key=request.project_key, count=count, seed=seed
            )
        return await self._app.preview_template(
            request.template_id, count=count, seed=seed, version=request.version
        )


class ConnectionServicer(connection_pb2_grpc.ConnectionServiceServicer):
    def __init__(self, app: ConnectionUseCases) -> None:
        self._app = app

    @guard
    async def CreateConnection(
        self, request: connection_pb2.CreateConnectionRequest, context: grpc.aio.ServicerContext
    ) -> connection_pb2.CreateConnectionResponse:
        return connection_pb2.CreateConnectionResponse(connection=await self._app.create_connection(request))

    @guard
    async def GetConnection(
        self, request: connection_pb2.GetConnectionRequest, context: grpc.aio.ServicerContext
    ) -> connection_pb2.GetConnectionResponse:
        return connection_pb2.GetConnectionResponse(
            connection=await self._app.get_connection(request.connection_id)
        )

    @guard
    async def ListConnections(
        self, request: connection_pb2.ListConnectionsRequest, context: grpc.aio.ServicerContext
    ) -> connection_pb2.ListConnectionsResponse:
        connections, token = await self._app.list_connections(
            request.project_key, request.page_size, request.page_token
        )
        return connection_pb2.ListConnectionsResponse(connections=connections, next_page_token=token)

    @guard
    async def DeleteConnection(
        self, request: connection_pb2.DeleteConnectionRequest, context: grpc.aio.ServicerContext
    ) -> connection_pb2.DeleteConnectionResponse:
        await self._app.delete_connection(request.connection_id)
        return connection_pb2.DeleteConnectionResponse()

    @guard
    async def TestConnection(
        self, request: connection_pb2.TestConnectionRequest, context: grpc.aio.ServicerContext
    ) -> connection_pb2.TestConnectionResponse:
        return await self._app.test_connection(request.connection_id)


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
                existing = await or_none(self._store.workspace.get(header.path))
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
        return await worker_run_project(self._store, claims)

    @guard
    async def ListFiles(
        self, request: workspace_pb2.ListFilesRequest, context: grpc.aio.ServicerContext
    ) -> workspace_pb2.ListFilesResponse:
        may_read("listing workspace files")
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
