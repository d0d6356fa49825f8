"""Use cases of access: who the caller is.

The web console and scripts ask it once to learn what they may offer (each project's role, whether
the caller is a superuser); the gRPC ``WhoAmI`` and ``GET /v1/whoami`` answer the same message.
Managing projects, users, memberships and API keys stays in the gRPC face's Access servicer until a
second face needs it.
"""

from __future__ import annotations

from seedbed.api.v1 import access_pb2
from seedbed.coordinator._convert import ts
from seedbed.coordinator.access import current_principal
from seedbed.coordinator.store import Store
from seedbed.coordinator.store.access import UserRecord


class AccessUseCases:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def who_am_i(self) -> access_pb2.WhoAmIResponse:
        """The caller: their user (with a role per project) and the API key they called with."""
        principal = current_principal()
        user = await self._store.access.get_user(principal.user_id)
        return access_pb2.WhoAmIResponse(user=user_to_proto(user), api_key_id=principal.api_key_id)


def user_to_proto(rec: UserRecord) -> access_pb2.User:
    return access_pb2.User(
        id=rec.id,
        display_name=rec.display_name,
        email=rec.email,
        superuser=rec.superuser,
        memberships=[
            access_pb2.Membership(project_key=key, role=f"ROLE_{role.name}")
            for key, role in sorted(rec.memberships.items())
        ],
        create_time=ts(rec.created_at),
    )
