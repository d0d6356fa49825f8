"""Who is calling: the REST and MCP faces turn a request's ``Authorization`` header into the
principal the use cases act for, the same way (the gRPC face does it in its interceptor, where a
worker token may also download workspace files)."""

from __future__ import annotations

from seedbed.coordinator.access import WORKER_TOKEN_PREFIX, Principal, bearer_secret
from seedbed.coordinator.errors import PermissionDeniedError
from seedbed.coordinator.store import Store


async def caller_of(store: Store, authorization: str | None, face: str) -> Principal:
    """The principal of ``Authorization: Bearer <API key>``. UnauthenticatedError without a valid
    key; PermissionDeniedError for a worker token (it may only download workspace files, over
    gRPC)."""
    secret = bearer_secret(authorization)
    if secret.startswith(WORKER_TOKEN_PREFIX):
        raise PermissionDeniedError(f"a worker token may only download workspace files, not call {face}")
    return await store.access.authenticate(secret)
