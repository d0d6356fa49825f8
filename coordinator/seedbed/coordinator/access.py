"""Who is calling and what they may do: roles, the caller of the current RPC, API key format.

Pure domain: no grpc, no SQLAlchemy. The authentication interceptor (``auth``) puts a
:class:`Principal` in a context variable for the duration of a call; servicers read it with
:func:`current_principal` and ask it :meth:`Principal.require` before touching a project's objects.

Decisions:

- A caller with no role in a project gets NOT_FOUND for the project's scenarios and runs, exactly as
  if they did not exist: ids of other projects are not revealed (rejected alternative:
  PERMISSION_DENIED, which confirms that the id exists). A caller with a role too low gets
  PERMISSION_DENIED naming the role needed and the one held: they can see the object anyway.
- Superusers pass every check (they are admin of every project).
- An API key reads ``sbk_<key id hex>_<secret>``: the id part finds the row, and the store keeps only
  the SHA-256 of the whole string, compared in constant time.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import hmac
import re
import secrets
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Protocol

from seedbed.coordinator.errors import (
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    UnauthenticatedError,
)

__all__ = [
    "HOW_TO_GET_A_KEY",
    "Principal",
    "Role",
    "acting_as",
    "current_principal",
    "hash_secret",
    "key_id_of",
    "new_api_key",
    "secret_matches",
    "validate_project_key",
    "validate_user_id",
]

_USER_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
_PROJECT_KEY = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_KEY = re.compile(r"^sbk_([0-9a-f]{16})_([A-Za-z0-9_-]{20,200})$")
# A key an operator chooses (SEEDBED_ADMIN_API_KEY) need not follow the generated format.
_CHOSEN_KEY = re.compile(r"^[!-~]{20,200}$")

HOW_TO_GET_A_KEY = (
    "send 'authorization: Bearer <API key>' (the client reads SEEDBED_API_KEY or --api-key). The first "
    "admin key is SEEDBED_ADMIN_API_KEY, or the file admin-api-key in the coordinator's data folder; "
    "more keys come from `seedbed key create`"
)


class Role(IntEnum):
    """Roles in a project; each includes the ones below it. Numbers match ``access.proto``."""

    VIEWER = 1
    RUNNER = 2
    EDITOR = 3
    ADMIN = 4


@dataclass(frozen=True)
class Principal:
    """The caller of an RPC, as its API key says."""

    user_id: str
    superuser: bool = False
    roles: Mapping[str, Role] = field(default_factory=dict)
    api_key_id: str = ""
    # Set for a worker reading workspace files for a run: that is all such a caller may do.
    worker_run_id: str = ""

    def role_in(self, project_key: str) -> Role | None:
        if self.superuser:
            return Role.ADMIN
        return self.roles.get(project_key)

    def projects(self) -> frozenset[str] | None:
        """The projects the caller has a role in; None for a superuser (every project)."""
        return None if self.superuser else frozenset(self.roles)

    def require(self, project_key: str, role: Role, kind: str, ident: str) -> None:
        """Raise unless the caller holds ``role`` in the project of object ``kind`` ``ident``.

        No role at all: NotFoundError for the object (its existence is not revealed). A lower role:
        PermissionDeniedError naming both roles.
        """
        held = self.role_in(project_key)
        if held is None:
            raise NotFoundError(kind, ident)
        if held < role:
            raise PermissionDeniedError(
                f"{kind} {ident!r} (project {project_key!r}): this needs role {role.name} and "
                f"{self.user_id!r} has {held.name}; ask an admin of the project for more"
            )

    def require_superuser(self, action: str) -> None:
        if not self.superuser:
            raise PermissionDeniedError(f"{action} needs a superuser; {self.user_id!r} is not one")

    def require_any_role(self, minimum: Role, action: str) -> None:
        """For the shared catalog: ``minimum`` in at least one project (or superuser)."""
        if self.superuser or any(r >= minimum for r in self.roles.values()):
            return
        raise PermissionDeniedError(
            f"{action} needs role {minimum.name} in at least one project (or a superuser); "
            f"{self.user_id!r} has none"
        )


_current: contextvars.ContextVar[Principal | None] = contextvars.ContextVar("seedbed_principal", default=None)


def current_principal() -> Principal:
    """The caller of the RPC being served. Raises UnauthenticatedError outside an authenticated call."""
    principal = _current.get()
    if principal is None:
        raise UnauthenticatedError(f"this call needs an API key: {HOW_TO_GET_A_KEY}")
    return principal


@contextlib.contextmanager
def acting_as(principal: Principal) -> Iterator[Principal]:
    """Make ``principal`` the caller for the code inside (the interceptor; tests)."""
    token = _current.set(principal)
    try:
        yield principal
    finally:
        _current.reset(token)


def set_principal(principal: Principal) -> None:
    """Set the caller for the rest of the current task (an RPC's own task: nothing to reset)."""
    _current.set(principal)


# -- validation ------------------------------------------------------------------------------------


def validate_user_id(raw: str, field_name: str = "user_id") -> str:
    if not _USER_ID.match(raw):
        raise InvalidArgumentError(
            field_name,
            f"{raw[:80]!r} is not a valid user id: 1-63 lower-case letters, digits, '.', '_' or '-', "
            "starting with a letter or digit",
        )
    return raw


def validate_project_key(raw: str, field_name: str = "project_key") -> str:
    if not _PROJECT_KEY.match(raw):
        raise InvalidArgumentError(
            field_name,
            f"{raw[:80]!r} is not a valid project key: 1-63 lower-case letters, digits, '_' or '-', "
            "starting with a letter or digit",
        )
    return raw


def validate_chosen_key(raw: str, field_name: str = "SEEDBED_ADMIN_API_KEY") -> str:
    if not _CHOSEN_KEY.match(raw):
        raise InvalidArgumentError(field_name, "must be 20-200 printable ASCII characters without spaces")
    return raw


# -- API keys --------------------------------------------------------------------------------------


def new_api_key() -> tuple[str, str]:
    """A fresh key: (key id, secret). The secret is shown once; only its hash is stored."""
    hex_id = secrets.token_hex(8)
    return f"key_{hex_id}", f"sbk_{hex_id}_{secrets.token_urlsafe(32)}"


def key_id_of(secret: str) -> str:
    """The id of the key a secret belongs to. A generated key names it; a key an operator chose
    (any string) gets one derived from its hash, so the same string always maps to the same row."""
    match = _KEY.match(secret)
    if match:
        return f"key_{match.group(1)}"
    return "key_" + hash_secret(secret)[:16]


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def secret_matches(secret: str, stored_sha256: str) -> bool:
    return hmac.compare_digest(hash_secret(secret), stored_sha256)


# -- worker tokens ---------------------------------------------------------------------------------

WORKER_TOKEN_PREFIX = "sbw_"
_WORKER_PURPOSE = "workspace-read:"


class Sealer(Protocol):
    """What signs worker tokens (``secrets.SecretBox``): any coordinator sharing the key can check one."""

    def seal(self, plain: str) -> str: ...
    def open(self, token: str) -> str: ...


def worker_token(sealer: Sealer, run_id: str) -> str:
    """The credential an attempt's worker sends to read workspace files for ``run_id``: a sealed,
    authenticated note, so no key row is needed and a restarted coordinator still accepts it."""
    return WORKER_TOKEN_PREFIX + sealer.seal(_WORKER_PURPOSE + run_id)


def worker_principal(sealer: Sealer, token: str) -> Principal:
    """The principal of a worker token. UnauthenticatedError when it was not sealed with our key."""
    try:
        plain = sealer.open(token.removeprefix(WORKER_TOKEN_PREFIX))
    except Exception:  # noqa: BLE001 - any failure to open means "not ours"
        plain = ""
    if not plain.startswith(_WORKER_PURPOSE):
        raise UnauthenticatedError("the worker token is not valid for this coordinator's key")
    run_id = plain.removeprefix(_WORKER_PURPOSE)
    return Principal(user_id=f"worker:{run_id}", worker_run_id=run_id)
