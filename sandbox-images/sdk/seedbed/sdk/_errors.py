"""Exceptions raised by the in-sandbox SDK.

SeedbedError            base of everything the SDK raises
├── CallError           the worker answered a call with ok:false (type and message from it)
└── ChannelClosedError  the channel to the worker is gone, or the SDK runs outside a sandbox
"""

from __future__ import annotations

__all__ = ["CallError", "ChannelClosedError", "SeedbedError"]


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
        super().__init__(f"{op}: {type}: {message}")


class ChannelClosedError(SeedbedError):
    """The agent channel is closed (the worker went away) or was never opened."""
