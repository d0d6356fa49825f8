"""Reporters: validation of a scenario's Reporter messages.

Pure logic: imports no heavyweight library.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from google.protobuf.json_format import MessageToDict

from seedbed.api.v1 import scenario_pb2
from seedbed.coordinator.errors import InvalidArgumentError
from seedbed.coordinator.model import new_id

MAX_REPORTERS = 20


def validate_reporters(reporters: Sequence[scenario_pb2.Reporter]) -> tuple[dict[str, Any], ...]:
    """Check a scenario's reporters and give each an id; returns them as proto JSON."""
    if len(reporters) > MAX_REPORTERS:
        raise InvalidArgumentError(
            "settings.reporters", f"{len(reporters)} reporters; at most {MAX_REPORTERS}"
        )
    seen: set[str] = set()
    out = []
    for index, reporter in enumerate(reporters):
        msg = scenario_pb2.Reporter()
        msg.CopyFrom(reporter)
        msg.id = msg.id or new_id("rep")
        if msg.id in seen:
            raise InvalidArgumentError(f"settings.reporters[{index}].id", f"{msg.id!r} is used twice")
        seen.add(msg.id)
        if not msg.HasField("active"):
            msg.active = True
        out.append(MessageToDict(msg, preserving_proto_field_name=True))
    return tuple(out)
