"""Exceptions raised by the in-sandbox SDK.

SeedbedError            base of everything the SDK raises
├── CallError           the worker answered a call with ok:false (type and message from it)
│   ├── UnknownTemplate      no template with that id
│   ├── UnknownConnection    no connection with that id
│   ├── InvalidArgument      a call's argument is wrong (count ≤ 0, bad table name, …)
│   ├── LimitExceeded        a call asked for more than the operator allows
│   ├── TemplateError        a template cannot produce the rows asked for
│   ├── TargetError          the database refused a write or a query (its own message inside)
│   ├── RestError            the REST target answered an error or did not answer
│   ├── SerializationError   a row holds a value that cannot be sent or stored
│   ├── WorkspaceError       a workspace file cannot be read
│   └── NondeterministicWrite  a retried run replayed a write with different content than its
│                              first attempt wrote: the run fails as NONDETERMINISTIC
└── ChannelClosedError  the channel to the worker is gone, or the SDK runs outside a sandbox
"""

from __future__ import annotations

__all__ = [
    "CallError",
    "ChannelClosedError",
    "InvalidArgument",
    "LimitExceeded",
    "NondeterministicWrite",
    "RestError",
    "SeedbedError",
    "SerializationError",
    "TargetError",
    "TemplateError",
    "UnknownConnection",
    "UnknownTemplate",
    "WorkspaceError",
    "call_error",
]


class SeedbedError(Exception):
    """Base class of the SDK's errors."""


class CallError(SeedbedError):
    """The worker refused or failed an SDK call.

    `type` is the worker-side error type (e.g. "UnknownOp", "ValidationError"), `op` the call.
    """

    def __init__(self, op: str, type: str, message: str) -> None:  # noqa: A002 - wire name
        self.op = op
        self.type = type
        self.message = message
        # A named subclass already says the type; the generic class repeats it.
        super().__init__(
            f"{op}: {message}" if type == self.__class__.__name__ else f"{op}: {type}: {message}"
        )


class ChannelClosedError(SeedbedError):
    """The agent channel is closed (the worker went away) or was never opened."""


class UnknownTemplate(CallError):
    """No template with that id exists."""


class UnknownConnection(CallError):
    """No connection with that id exists."""


class InvalidArgument(CallError):
    """An argument of the call is wrong."""


class LimitExceeded(CallError):
    """The call asked for more than the operator allows."""


class TemplateError(CallError):
    """The template cannot produce the rows asked for."""


class TargetError(CallError):
    """The database refused the write or the query."""


class RestError(CallError):
    """The REST target answered with an error or did not answer."""


class SerializationError(CallError):
    """A value cannot be sent or stored."""


class WorkspaceError(CallError):
    """A workspace file cannot be read."""


class NondeterministicWrite(CallError):
    """A retried run replayed a write whose content differs from what an earlier attempt wrote.
    Nothing was written; the run fails as NONDETERMINISTIC even if the script catches this."""


_BY_TYPE: dict[str, type[CallError]] = {
    cls.__name__: cls
    for cls in (
        UnknownTemplate,
        UnknownConnection,
        InvalidArgument,
        LimitExceeded,
        TemplateError,
        TargetError,
        RestError,
        SerializationError,
        WorkspaceError,
        NondeterministicWrite,
    )
}


def call_error(op: str, type: str, message: str) -> CallError:  # noqa: A002 - wire name
    """The exception for an ok:false reply: a subclass named after the worker's error type."""
    cls = _BY_TYPE.get(type, CallError)
    return cls(op, type, message)
