"""Errors of the coordinator's domain, and the one table that maps them to gRPC status codes.

CoordinatorError
├── InvalidArgumentError   a request field breaks a rule or a limit (names the field and the limit)
├── NotFoundError          an unknown scenario, run or fire id
├── AlreadyExistsError     an id or idempotency key already used for something else
├── FailedPreconditionError the request is valid but the current state forbids it
├── UnauthenticatedError   no API key, or one that is unknown or revoked
├── PermissionDeniedError  a known caller without the role (or superuser right) the call needs
├── ResourceExhaustedError a caller past a per-caller rate limit (names it; ``retry-after`` trailer)
└── StoreUnavailableError  the store could not be reached

SandboxRuntimeError        at start: the engine lacks the sandboxes' container runtime
SecretKeyMismatchError     at start: the secret key does not open the store's secrets
DispatchError              internal: an attempt could not be executed (worker lost, …)
└── DispatchCancelled      internal: the attempt was cancelled on request

LeaseLost                  internal: another driver took the run over (a newer fencing token), or
                           the run ended elsewhere; the driver that sees it stops, writing nothing
"""

from __future__ import annotations

import math

import grpc


class CoordinatorError(Exception):
    """Base of every error the coordinator reports to a client."""

    code: grpc.StatusCode = grpc.StatusCode.INTERNAL
    # Sent with the status as trailing metadata.
    trailing_metadata: tuple[tuple[str, str], ...] = ()


class InvalidArgumentError(CoordinatorError):
    code = grpc.StatusCode.INVALID_ARGUMENT

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class NotFoundError(CoordinatorError):
    code = grpc.StatusCode.NOT_FOUND

    def __init__(self, kind: str, ident: str) -> None:
        super().__init__(f"{kind} {ident!r} not found")
        self.kind = kind
        self.ident = ident


class AlreadyExistsError(CoordinatorError):
    code = grpc.StatusCode.ALREADY_EXISTS


class FailedPreconditionError(CoordinatorError):
    code = grpc.StatusCode.FAILED_PRECONDITION


class UnauthenticatedError(CoordinatorError):
    code = grpc.StatusCode.UNAUTHENTICATED


class PermissionDeniedError(CoordinatorError):
    code = grpc.StatusCode.PERMISSION_DENIED


class ResourceExhaustedError(CoordinatorError):
    """Past a limit that lifts with time: ``retry_after_seconds`` says when, also sent as the
    trailer ``retry-after`` (whole seconds, rounded up)."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED

    def __init__(self, message: str, retry_after_seconds: float) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds
        self.trailing_metadata = (("retry-after", str(max(1, math.ceil(retry_after_seconds)))),)


class StoreUnavailableError(CoordinatorError):
    code = grpc.StatusCode.UNAVAILABLE


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
