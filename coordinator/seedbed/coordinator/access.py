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

import base64
import contextlib
import contextvars
import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
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
MAX_KEY_CHARS = 4096


def bearer_secret(authorization: str | None) -> str:
    """The key of an ``Authorization: Bearer <key>`` value, as every face reads it.
    UnauthenticatedError when absent or malformed."""
    if authorization is None:
        raise UnauthenticatedError(f"this call needs an API key: {HOW_TO_GET_A_KEY}")
    scheme, _, secret = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not secret.strip() or len(secret) > MAX_KEY_CHARS:
        raise UnauthenticatedError(f"authorization must read 'Bearer <API key>': {HOW_TO_GET_A_KEY}")
    return secret.strip()


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
    worker: WorkerClaims | None = None

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
#
# ``sbw_<claims>.<mac>``: the claims (run, attempt, the attempt's time limit, an expiry) in URL-safe
# base64 JSON, and an HMAC-SHA256 of them under a key derived for this purpose alone from the
# coordinator's secret key, so any coordinator sharing that key checks a token without a stored row.
# The expiry is only an outer bound (the attempt may wait for a sandbox slot first): the workspace
# service also checks the run, that the token's attempt is its current one and has not ended, and
# that the attempt's own deadline (its start plus its time limit) plus a grace has not passed.
# Rejected: a Fernet note under the secret key itself (one key for two purposes; no expiry).

WORKER_TOKEN_PREFIX = "sbw_"
WORKER_TOKEN_PURPOSE = "seedbed worker token: workspace read v2"
WORKER_TOKEN_GRACE = timedelta(minutes=1)
# How long an attempt may wait for a sandbox slot and build its image before its token lapses.
WORKER_TOKEN_QUEUE_ALLOWANCE = timedelta(hours=1)


class Sealer(Protocol):
    """What keys worker tokens (``secrets.SecretBox``): any coordinator sharing its key can check one."""

    def derive_key(self, purpose: str) -> bytes: ...


@dataclass(frozen=True)
class WorkerClaims:
    run_id: str
    attempt: int
    timeout_seconds: int
    expires_at: datetime


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def worker_token(
    sealer: Sealer, run_id: str, *, attempt: int, timeout_seconds: int, expires_at: datetime | None = None
) -> str:
    """The credential attempt ``attempt`` of ``run_id`` sends to read workspace files; it expires at
    ``expires_at`` (default: now + the time limit + the queue allowance + the grace)."""
    if expires_at is None:
        expires_at = (
            datetime.now(UTC)
            + timedelta(seconds=timeout_seconds)
            + WORKER_TOKEN_QUEUE_ALLOWANCE
            + WORKER_TOKEN_GRACE
        )
    claims = json.dumps(
        {"r": run_id, "a": attempt, "t": timeout_seconds, "e": int(expires_at.timestamp())},
        separators=(",", ":"),
    ).encode()
    mac = hmac.new(sealer.derive_key(WORKER_TOKEN_PURPOSE), claims, hashlib.sha256).digest()
    return f"{WORKER_TOKEN_PREFIX}{_b64(claims)}.{_b64(mac)}"


def worker_claims(sealer: Sealer, token: str, *, now: datetime | None = None) -> WorkerClaims:
    """The claims of a worker token. UnauthenticatedError when it was not signed with our key, is
    malformed, or has expired."""
    body, _, mac = token.removeprefix(WORKER_TOKEN_PREFIX).partition(".")
    try:
        claims = _unb64(body)
        expected = hmac.new(sealer.derive_key(WORKER_TOKEN_PURPOSE), claims, hashlib.sha256).digest()
        valid = hmac.compare_digest(expected, _unb64(mac))
        doc = json.loads(claims) if valid else None
        parsed = (
            WorkerClaims(
                run_id=str(doc["r"]),
                attempt=int(doc["a"]),
                timeout_seconds=int(doc["t"]),
                expires_at=datetime.fromtimestamp(int(doc["e"]), UTC),
            )
            if isinstance(doc, dict)
            else None
        )
    except (ValueError, KeyError, TypeError):
        parsed = None
    if parsed is None:
        raise UnauthenticatedError("the worker token is not valid for this coordinator's key")
    if (now or datetime.now(UTC)) >= parsed.expires_at:
        raise UnauthenticatedError(
            f"the worker token of run {parsed.run_id} expired at {parsed.expires_at:%Y-%m-%d %H:%M:%S}Z"
        )
    return parsed


def worker_attempt_refusal(
    claims: WorkerClaims,
    *,
    run_state: str | None,
    current_attempt: int,
    attempt_state: str | None,
    started_at: datetime | None,
    now: datetime | None = None,
) -> str:
    """Why the store's view of the run refuses a token's holder; empty when it may read.

    ``run_state`` None: no such run; ``attempt_state`` the attempt's (DISPATCHED, RUNNING, ENDED)."""
    run = claims.run_id
    if run_state is None:
        return f"run {run} does not exist"
    if run_state not in ("QUEUED", "RUNNING"):
        return f"run {run} has ended ({run_state}): its worker token reads nothing more"
    if current_attempt != claims.attempt or attempt_state in (None, "ENDED"):
        return f"attempt {claims.attempt} of run {run} is over: its worker token reads nothing more"
    if started_at is not None:
        deadline = started_at + timedelta(seconds=claims.timeout_seconds) + WORKER_TOKEN_GRACE
        if (now or datetime.now(UTC)) >= deadline:
            return f"attempt {claims.attempt} of run {run} is past its deadline: its worker token expired"
    return ""


def worker_principal(sealer: Sealer, token: str) -> Principal:
    """The principal of a worker token (see ``worker_claims``)."""
    claims = worker_claims(sealer, token)
    return Principal(user_id=f"worker:{claims.run_id}", worker_run_id=claims.run_id, worker=claims)
