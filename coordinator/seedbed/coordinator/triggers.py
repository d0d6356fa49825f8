"""Time-based triggers: validation of a scenario's Trigger messages.

Pure logic: imports no heavyweight library.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from google.protobuf.json_format import MessageToDict

from seedbed.api.v1 import scenario_pb2
from seedbed.coordinator.errors import InvalidArgumentError
from seedbed.coordinator.model import new_id

MAX_TRIGGERS = 20


def validate_triggers(triggers: Sequence[scenario_pb2.Trigger]) -> tuple[dict[str, Any], ...]:
    """Check a scenario's triggers and give each an id; returns them as proto JSON."""
    if len(triggers) > MAX_TRIGGERS:
        raise InvalidArgumentError("settings.triggers", f"{len(triggers)} triggers; at most {MAX_TRIGGERS}")
    seen: set[str] = set()
    out = []
    for index, trigger in enumerate(triggers):
        msg = scenario_pb2.Trigger()
        msg.CopyFrom(trigger)
        msg.id = msg.id or new_id("trg")
        if msg.id in seen:
            raise InvalidArgumentError(f"settings.triggers[{index}].id", f"{msg.id!r} is used twice")
        seen.add(msg.id)
        if not msg.HasField("active"):
            msg.active = True
        out.append(MessageToDict(msg, preserving_proto_field_name=True))
    return tuple(out)
