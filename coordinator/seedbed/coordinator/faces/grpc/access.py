"""The AccessService servicer: who am I, projects, users, memberships and API keys.

Who may do what is written in ``access.proto``; the checks are the caller's
:class:`~seedbed.coordinator.access.Principal` methods. ``WhoAmI`` is the use case
(``app.AccessUseCases``) the REST face answers too; the rest has only this face yet.
"""

from __future__ import annotations

import grpc

from seedbed.api.v1 import access_pb2, access_pb2_grpc
from seedbed.coordinator._convert import ts
from seedbed.coordinator.access import (
    Principal,
    Role,
    current_principal,
    validate_project_key,
    validate_user_id,
)
from seedbed.coordinator.app import AccessUseCases
from seedbed.coordinator.app.access import user_to_proto
from seedbed.coordinator.errors import InvalidArgumentError, NotFoundError, PermissionDeniedError
from seedbed.coordinator.faces.grpc.status import guard
from seedbed.coordinator.model import validate_name
from seedbed.coordinator.store import Store
from seedbed.coordinator.store.access import ApiKeyRecord, ProjectRecord

MAX_DESCRIPTION_CHARS = 1000


def project_to_proto(rec: ProjectRecord) -> access_pb2.Project:
    return access_pb2.Project(
        key=rec.key, name=rec.name, description=rec.description, create_time=ts(rec.created_at)
    )


def key_to_proto(rec: ApiKeyRecord) -> access_pb2.ApiKey:
    return access_pb2.ApiKey(
        id=rec.id,
        user_id=rec.user_id,
        description=rec.description,
        create_time=ts(rec.created_at),
        last_used_time=ts(rec.last_used_at),
        revoked=rec.revoked,
    )


def _description(text: str) -> str:
    if len(text) > MAX_DESCRIPTION_CHARS:
        raise InvalidArgumentError("description", f"is longer than {MAX_DESCRIPTION_CHARS} characters")
    return text


def _known_project(raw: str) -> str:
    if not raw:
        raise InvalidArgumentError("project_key", "is required")
    try:
        return validate_project_key(raw)
    except InvalidArgumentError:
        raise NotFoundError("project", raw[:100]) from None


def _role(value: int) -> Role | None:
    if value == access_pb2.ROLE_UNSPECIFIED:
        return None
    try:
        return Role(value)
    except ValueError:
        raise InvalidArgumentError("role", f"{value} is not a known role") from None


def _target_user(principal: Principal, raw: str, action: str) -> str:
    """The user a call is about: the caller when empty; another one needs a superuser."""
    if not raw or raw == principal.user_id:
        return principal.user_id
    principal.require_superuser(f"{action} of another user")
    return validate_user_id(raw)


class AccessServicer(access_pb2_grpc.AccessServiceServicer):
    def __init__(self, store: Store, app: AccessUseCases) -> None:
        self._store = store
        self._app = app

    @guard
    async def WhoAmI(
        self, request: access_pb2.WhoAmIRequest, context: grpc.aio.ServicerContext
    ) -> access_pb2.WhoAmIResponse:
        return await self._app.who_am_i()

    @guard
    async def CreateProject(
        self, request: access_pb2.CreateProjectRequest, context: grpc.aio.ServicerContext
    ) -> access_pb2.CreateProjectResponse:
        current_principal().require_superuser("creating a project")
        key = validate_project_key(request.key, "key")
        rec = await self._store.access.create_project(
            key, validate_name(request.name or key), _description(request.description)
        )
        return access_pb2.CreateProjectResponse(project=project_to_proto(rec))

    @guard
    async def GetProject(
        self, request: access_pb2.GetProjectRequest, context: grpc.aio.ServicerContext
    ) -> access_pb2.GetProjectResponse:
        key = _known_project(request.key)
        role = current_principal().role_in(key)
        if role is None:
            raise NotFoundError("project", key)
        rec = await self._store.access.get_project(key)
        return access_pb2.GetProjectResponse(project=project_to_proto(rec), role=f"ROLE_{role.name}")

    @guard
    async def ListProjects(
        self, request: access_pb2.ListProjectsRequest, context: grpc.aio.ServicerContext
    ) -> access_pb2.ListProjectsResponse:
        recs = await self._store.access.list_projects(current_principal().projects())
        return access_pb2.ListProjectsResponse(projects=[project_to_proto(r) for r in recs])

    @guard
    async def CreateUser(
        self, request: access_pb2.CreateUserRequest, context: grpc.aio.ServicerContext
    ) -> access_pb2.CreateUserResponse:
        current_principal().require_superuser("creating a user")
        user_id = validate_user_id(request.user_id)
        if len(request.display_name) > 200:
            raise InvalidArgumentError("display_name", "is longer than 200 characters")
        if request.email and (len(request.email) > 320 or "@" not in request.email):
            raise InvalidArgumentError("email", f"{request.email[:80]!r} is not an e-mail address")
        rec = await self._store.access.create_user(
            user_id, display_name=request.display_name, email=request.email, superuser=request.superuser
        )
        return access_pb2.CreateUserResponse(user=user_to_proto(rec))

    @guard
    async def GetUser(
        self, request: access_pb2.GetUserRequest, context: grpc.aio.ServicerContext
    ) -> access_pb2.GetUserResponse:
        user_id = _target_user(current_principal(), request.user_id, "reading the details")
        return access_pb2.GetUserResponse(user=user_to_proto(await self._store.access.get_user(user_id)))

    @guard
    async def ListUsers(
        self, request: access_pb2.ListUsersRequest, context: grpc.aio.ServicerContext
    ) -> access_pb2.ListUsersResponse:
        current_principal().require_superuser("listing users")
        return access_pb2.ListUsersResponse(
            users=[user_to_proto(u) for u in await self._store.access.list_users()]
        )

    @guard
    async def SetMembership(
        self, request: access_pb2.SetMembershipRequest, context: grpc.aio.ServicerContext
    ) -> access_pb2.SetMembershipResponse:
        key = _known_project(request.project_key)
        principal = current_principal()
        principal.require(key, Role.ADMIN, "project", key)
        if not request.user_id:
            raise InvalidArgumentError("user_id", "is required")
        user_id = validate_user_id(request.user_id)
        if not principal.superuser and key not in (await self._store.access.get_user(user_id)).memberships:
            # A member is someone the project's scenarios may run as (run_as): a project admin adding
            # anyone would borrow their rights.
            raise PermissionDeniedError(
                f"adding {user_id!r} to project {key!r} needs a superuser; a project admin changes or "
                "removes the roles of its members only"
            )
        rec = await self._store.access.set_membership(user_id, key, _role(request.role))
        return access_pb2.SetMembershipResponse(user=user_to_proto(rec))

    @guard
    async def CreateApiKey(
        self, request: access_pb2.CreateApiKeyRequest, context: grpc.aio.ServicerContext
    ) -> access_pb2.CreateApiKeyResponse:
        user_id = _target_user(current_principal(), request.user_id, "creating an API key")
        rec, secret = await self._store.access.create_api_key(user_id, _description(request.description))
        return access_pb2.CreateApiKeyResponse(api_key=key_to_proto(rec), secret=secret)

    @guard
    async def ListApiKeys(
        self, request: access_pb2.ListApiKeysRequest, context: grpc.aio.ServicerContext
    ) -> access_pb2.ListApiKeysResponse:
        user_id = _target_user(current_principal(), request.user_id, "listing the API keys")
        recs = await self._store.access.list_api_keys(user_id)
        return access_pb2.ListApiKeysResponse(api_keys=[key_to_proto(r) for r in recs])

    @guard
    async def RevokeApiKey(
        self, request: access_pb2.RevokeApiKeyRequest, context: grpc.aio.ServicerContext
    ) -> access_pb2.RevokeApiKeyResponse:
        principal = current_principal()
        key_id = request.api_key_id
        if not key_id:
            raise InvalidArgumentError("api_key_id", "is required")
        if len(key_id) > 40:
            raise NotFoundError("API key", key_id[:40] + "…")
        rec = await self._store.access.get_api_key(key_id)
        if rec.user_id != principal.user_id and not principal.superuser:
            # Someone else's key: as if it did not exist.
            raise NotFoundError("API key", key_id)
        rec = await self._store.access.revoke_api_key(key_id)
        return access_pb2.RevokeApiKeyResponse(api_key=key_to_proto(rec))
