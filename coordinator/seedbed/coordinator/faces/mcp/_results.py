"""What the tools answer: pydantic models (MCP's structured content, with an output schema agents
read) made from the contract's messages.

Field names are the contract's (``run_pb2.Run.first_error`` → ``first_error``); enums are their
names without the prefix (``RUN_STATE_SUCCESS`` → ``"SUCCESS"``), times ISO 8601 in UTC, unset
messages ``null``. A few fields are derived for agents that would otherwise compute them
(``finished``, ``duration_seconds``, ``outcome``).

Rejected: answering the contract's JSON form (``MessageToDict``) directly. A bare dict gives no
output schema and no structured content in mcp 2.x, and the full ``Run`` carries what an agent
rarely needs (attempt fencing tokens, container ids, reporter deliveries).
"""

from __future__ import annotations

import json
from typing import Any

from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message
from pydantic import BaseModel, Field

from seedbed.api.v1 import asset_pb2, run_pb2, scenario_pb2

TERMINAL_STATES = frozenset(
    {
        run_pb2.RUN_STATE_SUCCESS,
        run_pb2.RUN_STATE_WARNING,
        run_pb2.RUN_STATE_FAILED,
        run_pb2.RUN_STATE_ABORTED,
    }
)


def _enum(value: int, enum: Any, prefix: str) -> str:
    return str(enum.Name(value)).removeprefix(prefix)


def _time(message: Message, name: str) -> str | None:
    if not message.HasField(name):
        return None
    stamp = getattr(message, name)
    return str(stamp.ToDatetime().isoformat()) + "Z"


def run_state(run: run_pb2.Run) -> str:
    return _enum(run.state, run_pb2.RunState, "RUN_STATE_")


def is_finished(run: run_pb2.Run) -> bool:
    return run.state in TERMINAL_STATES


class ErrorInfo(BaseModel):
    """Why a run failed (or who aborted it and why)."""

    reason: str = Field(description="SCRIPT_ERROR, TIMEOUT, OOM, KILLED, INFRASTRUCTURE or NONDETERMINISTIC")
    type: str = Field(description="exception type, e.g. ZeroDivisionError")
    message: str
    line: int | None = Field(description="line in the scenario script, null when unknown")
    step: str | None = Field(description="the step open when it happened")
    traceback: str = Field(description="the script's frames only")

    @classmethod
    def of(cls, run: run_pb2.Run) -> ErrorInfo | None:
        if not run.HasField("first_error") or not (run.first_error.type or run.first_error.message):
            return None
        err = run.first_error
        return cls(
            reason=_enum(err.reason, run_pb2.FailureReason, "FAILURE_REASON_"),
            type=err.type,
            message=err.message,
            line=err.line or None,
            step=err.step or None,
            traceback=err.traceback,
        )


class StepInfo(BaseModel):
    number: int
    name: str
    outcome: str = Field(description="SUCCESS, FAILED or RUNNING")
    rows_generated: int
    rows_written: int


class RunInfo(BaseModel):
    """A run of a scenario."""

    id: str
    scenario_id: str
    project_key: str
    fire_id: str
    state: str = Field(description="QUEUED, RUNNING, SUCCESS, WARNING, FAILED or ABORTED")
    finished: bool = Field(description="true once the state is SUCCESS, WARNING, FAILED or ABORTED")
    params: dict[str, str]
    create_time: str | None
    start_time: str | None
    end_time: str | None
    duration_seconds: float | None = Field(description="from start to end, once it ended")
    attempt_count: int
    exit_code: int
    warning_count: int
    first_error: ErrorInfo | None = Field(description="set when it FAILED or was ABORTED")
    steps: list[StepInfo]
    logs_truncated: bool = Field(description="the script wrote more than the per-run log cap")
    dropped_log_lines: int
    dry_run: bool = Field(False, description="a dry run: nothing was written (see dry_run_report)")
    dry_run_report: dict[str, Any] | None = Field(
        None,
        description="a dry run's report: per target, rows that would be written and the problems found "
        "against the live schema (row, field, kind, value, message)",
    )

    @classmethod
    def of(cls, run: run_pb2.Run) -> RunInfo:
        duration = None
        if run.HasField("start_time") and run.HasField("end_time"):
            duration = (run.end_time.ToDatetime() - run.start_time.ToDatetime()).total_seconds()
        return cls(
            id=run.id,
            scenario_id=run.scenario_id,
            project_key=run.project_key,
            fire_id=run.fire_id,
            state=run_state(run),
            finished=is_finished(run),
            params=dict(run.params),
            create_time=_time(run, "create_time"),
            start_time=_time(run, "start_time"),
            end_time=_time(run, "end_time"),
            duration_seconds=duration,
            attempt_count=run.attempt_count,
            exit_code=run.exit_code,
            warning_count=run.warning_count,
            first_error=ErrorInfo.of(run),
            steps=[
                StepInfo(
                    number=s.number,
                    name=s.name,
                    outcome=s.outcome,
                    rows_generated=s.rows_generated,
                    rows_written=s.rows_written,
                )
                for s in run.steps
            ],
            logs_truncated=run.logs_truncated,
            dropped_log_lines=run.dropped_log_lines,
            dry_run=run.dry_run,
            dry_run_report=(
                MessageToDict(run.dry_run_report, preserving_proto_field_name=True)
                if run.HasField("dry_run_report")
                else None
            ),
        )


class ExecuteResult(BaseModel):
    """A fire of a scenario and, once it has one, its run."""

    fire_id: str
    scenario_id: str
    fire_state: str = Field(
        description="RUN_CREATED; PENDING while it waits behind an active run (queue_reason says "
        "why); CANCELLED when refused (cancel_reason says why; no run)"
    )
    cancel_reason: str
    queue_reason: str
    run_id: str | None
    state: str | None = Field(
        description="the run's state: QUEUED, RUNNING, SUCCESS, WARNING, FAILED or ABORTED; null "
        "without a run"
    )
    outcome: str | None = Field(description="the run's final state once it ended, else null")
    first_error: ErrorInfo | None
    waited: bool = Field(description="whether the call waited for the run to end")
    wait_timed_out: bool = Field(
        description="the wait ended at timeout_seconds before the run did: call get_scenario_run "
        "later, or execute_scenario again with the same idempotency_key and wait=true"
    )

    @classmethod
    def of(
        cls, fire: run_pb2.TriggerFire, run: run_pb2.Run | None, *, waited: bool, timed_out: bool
    ) -> ExecuteResult:
        return cls(
            fire_id=fire.id,
            scenario_id=fire.scenario_id,
            fire_state=_enum(fire.state, run_pb2.TriggerFireState, "TRIGGER_FIRE_STATE_"),
            cancel_reason=fire.cancel_reason,
            queue_reason=fire.queue_reason,
            run_id=(run.id if run is not None else fire.run_id) or None,
            state=run_state(run) if run is not None else None,
            outcome=run_state(run) if run is not None and is_finished(run) else None,
            first_error=ErrorInfo.of(run) if run is not None else None,
            waited=waited,
            wait_timed_out=timed_out,
        )


class LogLineInfo(BaseModel):
    sequence: int = Field(description="per run, from 1, without gaps")
    attempt: int
    stream: str = Field(description="STDOUT, STDERR or SYSTEM (Seedbed's own lines and SDK log calls)")
    level: str = Field(description="for SDK log calls: info, warning or error")
    time: str | None
    text: str
    fields: dict[str, Any] = Field(description="the fields of an SDK log call, as JSON values")

    @classmethod
    def of(cls, line: run_pb2.LogLine) -> LogLineInfo:
        return cls(
            sequence=line.sequence,
            attempt=line.attempt,
            stream=_enum(line.stream, run_pb2.LogStream, "LOG_STREAM_"),
            level=line.level,
            time=_time(line, "time"),
            text=line.text,
            fields={k: _json_value(v) for k, v in line.fields.items()},
        )


def _json_value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


class LogsResult(BaseModel):
    """A page of a run's log."""

    run_id: str
    lines: list[LogLineInfo]
    next_after_sequence: int = Field(description="pass as after_sequence to read what follows")
    caught_up: bool = Field(description="every line written so far is in this page or before it")
    run_finished: bool = Field(
        description="the run has ended and its last line is in this page or before it: nothing more will come"
    )
    run_state: str | None = Field(description="the run's state when caught up, else null")


class ScenarioInfo(BaseModel):
    id: str
    name: str
    project_key: str
    revision: int
    active: bool = Field(
        description="an inactive scenario's triggers fire nothing; explicit runs still run unless its "
        "settings refuse runs while inactive"
    )
    timeout_seconds: int = Field(description="deadline of one attempt; 0: the operator's default")
    update_time: str | None
    last_modified_by: str

    @classmethod
    def of(cls, scenario: scenario_pb2.Scenario) -> ScenarioInfo:
        settings = scenario.settings
        return cls(
            id=scenario.id,
            name=scenario.name,
            project_key=scenario.project_key,
            revision=scenario.revision,
            active=settings.active if settings.HasField("active") else True,
            timeout_seconds=settings.timeout_seconds,
            update_time=_time(scenario, "update_time"),
            last_modified_by=scenario.last_modified_by,
        )


class ScenarioList(BaseModel):
    """The first scenarios by id (a tool answers a bounded list), and whether more exist."""

    scenarios: list[ScenarioInfo]
    truncated: bool = Field(description="more scenarios exist than are listed here")
    hint: str | None = Field(description="when truncated: how to list the others")

    @classmethod
    def of(cls, scenarios: list[ScenarioInfo], more: bool, project_key: str) -> ScenarioList:
        hint = None
        if more:
            hint = f"only the first {len(scenarios)} scenarios by id are listed; " + (
                f"project {project_key!r} has more (execute_scenario takes any of them by id)"
                if project_key
                else "pass project_key to list one project's scenarios"
            )
        return cls(scenarios=scenarios, truncated=more, hint=hint)


class AbortResult(BaseModel):
    already_finished: bool = Field(description="the run had ended before: nothing was aborted")
    run: RunInfo


class AssetInfo(BaseModel):
    name: str = Field(description="'/'-separated, e.g. report/summary.json or files/<connection>/<file>")
    size_bytes: int
    sha256: str
    content_type: str = Field(description="as the script declared it, e.g. text/csv; charset=utf-8")
    attempt: int = Field(description="the attempt that wrote it")
    create_time: str | None

    @classmethod
    def of(cls, asset: asset_pb2.RunAsset) -> AssetInfo:
        return cls(
            name=asset.name,
            size_bytes=asset.size_bytes,
            sha256=asset.sha256,
            content_type=asset.content_type,
            attempt=asset.attempt,
            create_time=_time(asset, "create_time"),
        )


class AssetContent(BaseModel):
    """The start of one text asset."""

    name: str
    text: str | None = Field(description="its first max_bytes bytes as text; null when it is not text")
    truncated: bool = Field(description="the asset holds more than the text here")
    note: str | None = Field(description="when text is null or truncated: how to get the whole asset")


class AssetsResult(BaseModel):
    """The files a run kept (those of its latest attempt), and one of them when asked."""

    run_id: str
    assets: list[AssetInfo] = Field(description="by name")
    content: AssetContent | None = Field(description="the asset named in the call, else null")
