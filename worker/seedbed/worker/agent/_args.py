"""Reading a call's arguments: every one comes from the sandbox, so each is checked for type and size
before use, with an error that names it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from seedbed.worker.agent._errors import InvalidArgument

__all__ = ["handle", "integer", "names", "text"]

T = TypeVar("T")


def text(args: Mapping[str, Any], name: str, *, limit: int = 1000, required: bool = True) -> str:
    value = args.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value):
        raise InvalidArgument(f"{name} must be a non-empty string")
    if len(value) > limit:
        raise InvalidArgument(f"{name} is longer than {limit} characters")
    return value


def handle(
    args: Mapping[str, Any], entries: Mapping[str, T], what: str, *, limit: int = 100
) -> tuple[str, T]:
    """The call's ``handle`` and the open ``what`` (an insert, an asset) it names in ``entries``;
    InvalidArgument naming the handle when none is open under it (never opened, or closed)."""
    key = text(args, "handle", limit=limit)
    entry = entries.get(key)
    if entry is None:
        raise InvalidArgument(f"unknown or closed {what} {key!r}")
    return key, entry


def integer(args: Mapping[str, Any], name: str, *, required: bool = True) -> int | None:
    value = args.get(name)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgument(f"{name} must be an integer, got {type(value).__name__}")
    return value


def names(args: Mapping[str, Any], name: str) -> list[str] | None:
    value = args.get(name)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value) or len(value) > 1000:
        raise InvalidArgument(f"{name} must be a list of column names")
    return value
