"""Ids in requests: what every face checks the same way before a lookup."""

from __future__ import annotations

from seedbed.coordinator.errors import InvalidArgumentError, NotFoundError
from seedbed.coordinator.model import normalize_scenario_id

MAX_ID_CHARS = 100


def known_scenario_id(raw: str) -> str:
    """Ids that cannot exist are NOT_FOUND, not INVALID_ARGUMENT: a lookup never tells them apart."""
    if not raw:
        raise InvalidArgumentError("scenario_id", "is required")
    try:
        return normalize_scenario_id(raw)
    except InvalidArgumentError:
        raise NotFoundError("scenario", raw[:MAX_ID_CHARS]) from None


def required_id(field: str, value: str) -> str:
    """A run or fire id: present, and NOT_FOUND when longer than any id this server issues."""
    if not value:
        raise InvalidArgumentError(field, "is required")
    if len(value) > MAX_ID_CHARS:
        raise NotFoundError(field.removesuffix("_id"), value[:MAX_ID_CHARS] + "…")
    return value
