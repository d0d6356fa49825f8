"""Store records ↔ contract messages."""

from __future__ import annotations

from datetime import datetime

from google.protobuf.json_format import ParseDict
from google.protobuf.timestamp_pb2 import Timestamp

from seedbed.api.v1 import run_pb2, scenario_pb2
from seedbed.coordinator.model import FailureReason, FireState, OverlapPolicy, RunState
from seedbed.coordinator.store import (
    ErrorInfo,
    FireRecord,
    LogRecord,
    RunRecord,
    ScenarioRecord,
    ScenarioSettingsValue,
)

_RUN_STATES = {s: getattr(run_pb2, f"RUN_STATE_{s.value}") for s in RunState}
_FIRE_STATES = {s: getattr(run_pb2, f"TRIGGER_FIRE_STATE_{s.value}") for s in FireState}
_REASONS = {r: getattr(run_pb2, f"FAILURE_REASON_{r.value}") for r in FailureReason}
_OVERLAP = {p: getattr(scenario_pb2, f"OVERLAP_POLICY_{p.value}") for p in OverlapPolicy}
_OVERLAP_BACK = {v: k for k, v in _OVERLAP.items()}
_STREAMS = {
    "stdout": run_pb2.LOG_STREAM_STDOUT,
    "stderr": run_pb2.LOG_STREAM_STDERR,
    "system": run_pb2.LOG_STREAM_SYSTEM,
}


def ts(value: datetime | None) -> Timestamp | None:
    if value is None:
        return None
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp


def settings_to_proto(value: ScenarioSettingsValue) -> scenario_pb2.ScenarioSettings:
    return scenario_pb2.ScenarioSettings(
        active=value.active,
        timeout_seconds=value.timeout_seconds,
        memory_limit_bytes=value.memory_limit_bytes,
        overlap_policy=_OVERLAP[value.overlap_policy],
    )


def overlap_from_proto(value: int) -> OverlapPolicy | None:
    """None for UNSPECIFIED; raises KeyError for numbers this server does not know."""
    if value == scenario_pb2.OVERLAP_POLICY_UNSPECIFIED:
        return None
    return _OVERLAP_BACK[value]


def scenario_to_proto(rec: ScenarioRecord) -> scenario_pb2.Scenario:
    return scenario_pb2.Scenario(
        id=rec.id,
        name=rec.name,
        script=rec.script,
        settings=settings_to_proto(rec.settings),
        create_time=ts(rec.created_at),
        update_time=ts(rec.updated_at),
        revision=rec.revision,
    )


def fire_to_proto(rec: FireRecord) -> run_pb2.TriggerFire:
    return run_pb2.TriggerFire(
        id=rec.id,
        scenario_id=rec.scenario_id,
        state=_FIRE_STATES[rec.state],
        run_id=rec.run_id or "",
        cancel_reason=rec.cancel_reason or "",
        params=rec.params,
        idempotency_key=rec.idempotency_key or "",
        create_time=ts(rec.created_at),
    )


def error_to_proto(err: ErrorInfo) -> run_pb2.ErrorDetails:
    return run_pb2.ErrorDetails(
        reason=_REASONS[err.reason] if err.reason else run_pb2.FAILURE_REASON_UNSPECIFIED,
        type=err.type,
        message=err.message,
        traceback=err.traceback,
        line=err.line,
    )


def run_to_proto(rec: RunRecord) -> run_pb2.Run:
    msg = run_pb2.Run(
        id=rec.id,
        scenario_id=rec.scenario_id,
        fire_id=rec.fire_id,
        run_key=rec.run_key,
        state=_RUN_STATES[rec.state],
        params=rec.params,
        create_time=ts(rec.created_at),
        start_time=ts(rec.started_at),
        end_time=ts(rec.ended_at),
        attempt_count=rec.attempt_count,
        logs_truncated=rec.logs_truncated,
        dropped_log_lines=rec.dropped_log_lines,
        warning_count=rec.warning_count,
        exit_code=rec.exit_code if rec.exit_code is not None else 0,
        scenario_revision=rec.scenario_revision,
    )
    if rec.error is not None:
        msg.first_error.CopyFrom(error_to_proto(rec.error))
    if rec.details:
        msg.versions.update(rec.details.get("versions", {}))
        for step in rec.details.get("steps", []):
            msg.steps.append(ParseDict(step, run_pb2.RunStep(), ignore_unknown_fields=True))
    return msg


def log_to_proto(rec: LogRecord) -> run_pb2.LogLine:
    return run_pb2.LogLine(
        sequence=rec.seq,
        attempt=rec.attempt,
        stream=_STREAMS.get(rec.stream, run_pb2.LOG_STREAM_SYSTEM),
        text=rec.text,
        time=ts(rec.at),
        level=rec.level,
    )
