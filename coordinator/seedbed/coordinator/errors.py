"""Errors of the coordinator's domain. Each carries an :class:`ErrorCode`, which knows nothing of
the faces: each face maps it once (gRPC status codes in ``faces.grpc.status``, HTTP statuses in the
REST face, tool errors in MCP).

CoordinatorError
├── InvalidArgumentError   a request field breaks a rule or a limit (names the field and the limit)
├── NotFoundError          an unknown scenario, run or fire id
├── AlreadyExistsError     an id or idempotency key already used for something else
├── FailedPreconditionError the request is valid but the current state forbids it
├── ConflictError          a write based on a revision that someone else has changed since
├── UnauthenticatedError   no API key, or one that is unknown or revoked
├── PermissionDeniedError  a known caller without the role (or superuser right) the call needs
├── ResourceExhaustedError a caller past a per-caller rate limit (names it; ``retry-after`` trailer)
├── StoreUnavailableError  the store could not be reached
└── DataLossError          stored content ended short of what its record says (read while removed)

SandboxRuntimeError        at start: the engine lacks the sandboxes' container runtime
SecretKeyMismatchError     at start: the secret key does not open the store's secrets
DispatchError              internal: an attempt could not be executed (worker lost, …)
└── DispatchCancelled      internal: the attempt was cancelled on request

LeaseLost                  internal: another driver took the run over (a newer fencing token), or
                           the run ended elsewhere; the driver that sees it stops, writing nothing
"""

from __future__ import annotations

import enum
import math


class ErrorCode(enum.StrEnum):
    """What went wrong, in the vocabulary every face maps from (named after gRPC's canonical codes,
    which the contract documents; the value is what REST's error envelope and MCP's tool errors
    carry)."""

    INVALID_ARGUMENT = "invalid_argument"
    NOT_FOUND = "not_found"
    ALREADY_EXISTS = "already_exists"
    FAILED_PRECONDITION = "failed_precondition"
    ABORTED = "aborted"
    UNAUTHENTICATED = "unauthenticated"
    PERMISSION_DENIED = "permission_denied"
    RESOURCE_EXHAUSTED = "resource_exhausted"
    UNAVAILABLE = "unavailable"
    INTERNAL = "internal"
    DATA_LOSS = "data_loss"


class CoordinatorError(Exception):
    """Base of every error the coordinator reports to a client."""

    code: ErrorCode = ErrorCode.INTERNAL
    # Sent with the status as trailing metadata.
    trailing_metadata: tuple[tuple[str, str], ...] = ()


class InvalidArgumentError(CoordinatorError):
    code = ErrorCode.INVALID_ARGUMENT

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class NotFoundError(CoordinatorError):
    code = ErrorCode.NOT_FOUND

    def __init__(self, kind: str, ident: str) -> None:
        super().__init__(f"{kind} {ident!r} not found")
        self.kind = kind
        self.ident = ident


class AlreadyExistsError(CoordinatorError):
    code = ErrorCode.ALREADY_EXISTS


class FailedPreconditionError(CoordinatorError):
    code = ErrorCode.FAILED_PRECONDITION


class ConflictError(CoordinatorError):
    """A write conditioned on a revision (``expected_revision``) found another one: someone else
    changed the object since the caller read it. Nothing was written."""

    code = ErrorCode.ABORTED

    def __init__(self, kind: str, ident: str, expected: int, actual: int | None) -> None:
        now = "no longer exists" if actual is None else f"is at revision {actual}"
        if expected == 0 and actual is not None:
            now = f"already exists (revision {actual})"
        super().__init__(
            f"{kind} {ident!r} changed since it was read: expected revision {expected}, but it {now}; "
            "read it again, merge, and retry"
        )
        self.kind = kind
        self.ident = ident
        self.expected = expected
        self.actual = actual


class UnauthenticatedError(CoordinatorError):
    code = ErrorCode.UNAUTHENTICATED


class PermissionDeniedError(CoordinatorError):
    code = ErrorCode.PERMISSION_DENIED


class ResourceExhaustedError(CoordinatorError):
    """Past a limit that lifts with time: ``retry_after_seconds`` says when, also sent as the
    trailer ``retry-after`` (whole seconds, rounded up)."""

    code = ErrorCode.RESOURCE_EXHAUSTED

    def __init__(self, message: str, retry_after_seconds: float) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds
        self.trailing_metadata = (("retry-after", str(max(1, math.ceil(retry_after_seconds)))),)


class StoreUnavailableError(CoordinatorError):
    code = ErrorCode.UNAVAILABLE


class DataLossError(CoordinatorError):
    """Content streamed to a caller ended short of (or past) the size its record says, because it
    was removed while it was read (a purge, a run's next attempt): what was sent is incomplete."""

    code = ErrorCode.DATA_LOSS


class SandboxRuntimeError(Exception):
    """The Docker engine lacks the container runtime the sandboxes must run under."""


class SecretKeyMismatchError(Exception):
    """The configured secret key cannot open the secrets the store keeps: the coordinator must not
    start (every connection with a stored secret would fail)."""


class DispatchError(Exception):
    """The attempt could not be executed (worker lost, task failed outside the sandbox)."""


class DispatchCancelled(DispatchError):
    """The attempt was cancelled on request."""


class LeaseLost(Exception):
    """The run is no longer this driver's: stop driving it and write nothing more about it."""

    def __init__(self, run_id: str, detail: str) -> None:
        super().__init__(f"run {run_id}: {detail}")
        self.run_id = run_id
        self.detail = detail
