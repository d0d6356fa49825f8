"""Store records ↔ contract messages."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from google.protobuf.json_format import ParseDict
from google.protobuf.timestamp_pb2 import Timestamp

from seedbed.api.v1 import replay_pb2, run_pb2, scenario_pb2, template_pb2
from seedbed.coordinator.errors import InvalidArgumentError
from seedbed.coordinator.model import FailureReason, FireState, OverlapPolicy, RunState
from seedbed.coordinator.retry import DEFAULT_RETRY_ON, RetryPolicy
from seedbed.coordinator.store import (
    AttemptRecord,
    ErrorInfo,
    FireRecord,
    LogRecord,
    RunRecord,
    ScenarioRecord,
    ScenarioSettingsValue,
    WriteBatchRecord,
)
from seedbed.coordinator.store.reports import DeliveryRecord

_RUN_STATES = {s: getattr(run_pb2, f"RUN_STATE_{s.value}") for s in RunState}
_FIRE_STATES = {s: getattr(run_pb2, f"TRIGGER_FIRE_STATE_{s.value}") for s in FireState}
_REASONS = {r: getattr(run_pb2, f"FAILURE_REASON_{r.value}") for r in FailureReason}
_REASONS_BACK = {v: k for k, v in _REASONS.items()}
_BATCH_STATUS = {
    "APPLIED": run_pb2.WRITE_BATCH_STATUS_APPLIED,
    "REPLAYED": run_pb2.WRITE_BATCH_STATUS_REPLAYED,
}
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
        retry_policy=retry_policy_to_proto(value.retry_policy),
        triggers=[ParseDict(t, scenario_pb2.Trigger(), ignore_unknown_fields=True) for t in value.triggers],
        reporters=[
            ParseDict(r, scenario_pb2.Reporter(), ignore_unknown_fields=True) for r in value.reporters
        ],
        run_as=value.run_as,
        refuse_runs_when_inactive=value.refuse_runs_when_inactive,
        purge_after_seconds=value.purge_after_seconds,
    )


def retry_policy_to_proto(policy: RetryPolicy) -> scenario_pb2.RetryPolicy:
    """Every field explicit: a client reads the policy in effect, defaults included."""
    return scenario_pb2.RetryPolicy(
        maximum_attempts=policy.maximum_attempts,
        initial_backoff_seconds=policy.initial_backoff.total_seconds(),
        maximum_backoff_seconds=policy.maximum_backoff.total_seconds(),
        backoff_coefficient=policy.backoff_coefficient,
        jitter=policy.jitter,
        retry_on=sorted(_REASONS[r] for r in policy.retry_on),
        disabled=policy.disabled,
    )


def retry_policy_from_proto(msg: scenario_pb2.RetryPolicy) -> RetryPolicy:
    """Zero fields take the defaults (see scenario.proto). Raises InvalidArgumentError."""
    default = RetryPolicy()
    retry_on = set()
    for number in msg.retry_on:
        reason = _REASONS_BACK.get(number)
        if reason is None:
            raise InvalidArgumentError("retry_policy.retry_on", f"{number} is not a known failure reason")
        retry_on.add(reason)
    return RetryPolicy(
        maximum_attempts=msg.maximum_attempts or default.maximum_attempts,
        initial_backoff=_duration(
            "initial_backoff_seconds", msg.initial_backoff_seconds, default.initial_backoff
        ),
        maximum_backoff=_duration(
            "maximum_backoff_seconds", msg.maximum_backoff_seconds, default.maximum_backoff
        ),
        backoff_coefficient=msg.backoff_coefficient or default.backoff_coefficient,
        jitter=msg.jitter or default.jitter,
        retry_on=frozenset(retry_on) or DEFAULT_RETRY_ON,
        disabled=msg.disabled,
    )


def _duration(name: str, seconds: float, default: timedelta) -> timedelta:
    if not seconds:
        return default
    try:
        return timedelta(seconds=seconds)
    except (OverflowError, ValueError):  # NaN, infinite or huge
        raise InvalidArgumentError(f"retry_policy.{name}", f"{seconds} is not a number of seconds") from None


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
        project_key=rec.project_key,
        last_modified_by=rec.last_modified_by,
        effective_run_as=rec.effective_run_as,
        script_modified_by=rec.script_modified_by,
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
        trigger_id=rec.trigger_id or "",
        triggered_by=rec.triggered_by,
        scheduled_time=ts(rec.scheduled_at),
        queue_reason=rec.queue_reason or "",
        resolve_time=ts(rec.resolved_at),
    )


def error_to_proto(err: ErrorInfo) -> run_pb2.ErrorDetails:
    return run_pb2.ErrorDetails(
        reason=_REASONS[err.reason] if err.reason else run_pb2.FAILURE_REASON_UNSPECIFIED,
        type=err.type,
        message=err.message,
        traceback=err.traceback,
        line=err.line,
        step=err.step,
    )


def attempt_to_proto(rec: AttemptRecord) -> run_pb2.Attempt:
    msg = run_pb2.Attempt(
        number=rec.number,
        state=rec.state,
        outcome=rec.outcome or "",
        create_time=ts(rec.created_at),
        start_time=ts(rec.started_at),
        end_time=ts(rec.ended_at),
        node=rec.node or "",
        container_id=rec.container_id or "",
        worker_pid=rec.worker_pid or 0,
        fencing_token=rec.fencing_token,
        task_id=rec.task_id or "",
    )
    if rec.error is not None:
        msg.error.CopyFrom(error_to_proto(rec.error))
    return msg


def batch_to_proto(rec: WriteBatchRecord) -> run_pb2.WriteBatch:
    return run_pb2.WriteBatch(
        connection_id=rec.connection_id,
        operation=rec.operation,
        target=rec.target,
        call=rec.call,
        batch=rec.batch,
        rows=rec.rows,
        content_hash=rec.content_hash,
        attempt=rec.attempt,
        status=_BATCH_STATUS.get(rec.status, run_pb2.WRITE_BATCH_STATUS_UNSPECIFIED),
        time=ts(rec.at),
    )


def run_to_proto(
    rec: RunRecord, attempts: Sequence[AttemptRecord] = (), reports: Sequence[DeliveryRecord] = ()
) -> run_pb2.Run:
    msg = run_pb2.Run(
        id=rec.id,
        scenario_id=rec.scenario_id,
        fire_id=rec.fire_id,
        run_key=rec.run_key,
        trace_id=rec.trace_id,
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
        attempts=[attempt_to_proto(a) for a in attempts],
        next_attempt_time=ts(rec.next_attempt_at),
        project_key=rec.project_key,
        run_as=rec.run_as,
        triggered_by=rec.triggered_by,
        trigger_id=rec.trigger_id or "",
    )
    if rec.error is not None:
        msg.first_error.CopyFrom(error_to_proto(rec.error))
    msg.reports.extend(report_to_proto(r) for r in reports)
    msg.inputs.CopyFrom(inputs_to_proto(rec))
    msg.replayed_from = rec.replayed_from
    msg.dry_run = rec.dry_run
    if rec.dry_run_report:
        msg.dry_run_report.ParseFromString(rec.dry_run_report)
    if rec.details:
        msg.versions.update(rec.details.get("versions", {}))
        msg.templates_used.extend(template_uses(rec))
        for step in rec.details.get("steps", []):
            msg.steps.append(ParseDict(step, run_pb2.RunStep(), ignore_unknown_fields=True))
    return msg


def inputs_to_proto(rec: RunRecord) -> replay_pb2.RunInputs:
    """What the run recorded of everything that decides its data (Run.inputs; see app.replay)."""
    pin = rec.replay
    details = rec.details or {}
    versions = details.get("versions") or {}
    return replay_pb2.RunInputs(
        image=rec.image,
        versions={str(k): str(v) for k, v in versions.items()} if isinstance(versions, dict) else {},
        template_versions=replay_template_pins(rec),
        connection_aliases=pin.connection_aliases if pin is not None else {},
        ledger_run_id=rec.ledger_run_id,
        scenario_revision=rec.scenario_revision,
    )


def template_uses(rec: RunRecord) -> list[template_pb2.TemplateVersionRef]:
    """The template versions the run generated from, in the order first used (``details.templates``:
    [{"id", "version", "pinned"}], recorded from its last attempt's result). The one reader of
    that record: Run.templates_used, RunInputs and replays take it from here."""
    found = (rec.details or {}).get("templates") or []
    if not isinstance(found, list):
        return []
    return [
        template_pb2.TemplateVersionRef(
            template_id=u["id"], version=u["version"], pinned=u.get("pinned") is True
        )
        for u in found
        if isinstance(u, dict) and isinstance(u.get("id"), str) and type(u.get("version")) is int
    ]


def replay_template_pins(rec: RunRecord) -> dict[str, int]:
    """The versions a replay of the run pins: the run's version of each template its script named
    without one (a use of ``tmpl_x@1`` needs no pin, and must not become the version of a plain
    ``tmpl_x``). A run without uses (none recorded yet) passes on its own replay's pins."""
    uses = template_uses(rec)
    if not uses and rec.replay is not None:
        return dict(rec.replay.template_versions)
    pins: dict[str, int] = {}
    for use in uses:
        if not use.pinned:
            pins.setdefault(use.template_id, use.version)  # one fixed version per run
    return pins


def report_to_proto(rec: DeliveryRecord) -> run_pb2.ReporterDelivery:
    return run_pb2.ReporterDelivery(
        reporter_id=rec.reporter_id,
        event=rec.event,
        status=rec.status,
        tries=rec.tries,
        error=rec.error,
        time=ts(rec.at),
    )


def log_to_proto(rec: LogRecord) -> run_pb2.LogLine:
    return run_pb2.LogLine(
        sequence=rec.seq,
        attempt=rec.attempt,
        stream=_STREAMS.get(rec.stream, run_pb2.LOG_STREAM_SYSTEM),
        text=rec.text,
        time=ts(rec.at),
        level=rec.level,
        fields=rec.fields or {},
        trace_id=rec.trace_id,
        span_id=rec.span_id,
    )
