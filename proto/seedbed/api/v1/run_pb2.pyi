import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from seedbed.api.v1 import asset_pb2 as _asset_pb2
from seedbed.api.v1 import dryrun_pb2 as _dryrun_pb2
from seedbed.api.v1 import replay_pb2 as _replay_pb2
from seedbed.api.v1 import template_pb2 as _template_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RunState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RUN_STATE_UNSPECIFIED: _ClassVar[RunState]
    RUN_STATE_QUEUED: _ClassVar[RunState]
    RUN_STATE_RUNNING: _ClassVar[RunState]
    RUN_STATE_SUCCESS: _ClassVar[RunState]
    RUN_STATE_WARNING: _ClassVar[RunState]
    RUN_STATE_FAILED: _ClassVar[RunState]
    RUN_STATE_ABORTED: _ClassVar[RunState]

class FailureReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FAILURE_REASON_UNSPECIFIED: _ClassVar[FailureReason]
    FAILURE_REASON_SCRIPT_ERROR: _ClassVar[FailureReason]
    FAILURE_REASON_TIMEOUT: _ClassVar[FailureReason]
    FAILURE_REASON_OOM: _ClassVar[FailureReason]
    FAILURE_REASON_KILLED: _ClassVar[FailureReason]
    FAILURE_REASON_INFRASTRUCTURE: _ClassVar[FailureReason]
    FAILURE_REASON_NONDETERMINISTIC: _ClassVar[FailureReason]

class TriggerFireState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TRIGGER_FIRE_STATE_UNSPECIFIED: _ClassVar[TriggerFireState]
    TRIGGER_FIRE_STATE_PENDING: _ClassVar[TriggerFireState]
    TRIGGER_FIRE_STATE_RUN_CREATED: _ClassVar[TriggerFireState]
    TRIGGER_FIRE_STATE_CANCELLED: _ClassVar[TriggerFireState]

class LogStream(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LOG_STREAM_UNSPECIFIED: _ClassVar[LogStream]
    LOG_STREAM_STDOUT: _ClassVar[LogStream]
    LOG_STREAM_STDERR: _ClassVar[LogStream]
    LOG_STREAM_SYSTEM: _ClassVar[LogStream]

class WriteBatchStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    WRITE_BATCH_STATUS_UNSPECIFIED: _ClassVar[WriteBatchStatus]
    WRITE_BATCH_STATUS_APPLIED: _ClassVar[WriteBatchStatus]
    WRITE_BATCH_STATUS_REPLAYED: _ClassVar[WriteBatchStatus]

class StreamEndReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STREAM_END_REASON_UNSPECIFIED: _ClassVar[StreamEndReason]
    STREAM_END_REASON_RUN_FINISHED: _ClassVar[StreamEndReason]
    STREAM_END_REASON_CAUGHT_UP: _ClassVar[StreamEndReason]

class SpanKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SPAN_KIND_UNSPECIFIED: _ClassVar[SpanKind]
    SPAN_KIND_INTERNAL: _ClassVar[SpanKind]
    SPAN_KIND_SERVER: _ClassVar[SpanKind]
    SPAN_KIND_CLIENT: _ClassVar[SpanKind]
    SPAN_KIND_PRODUCER: _ClassVar[SpanKind]
    SPAN_KIND_CONSUMER: _ClassVar[SpanKind]

class SpanStatusCode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SPAN_STATUS_CODE_UNSPECIFIED: _ClassVar[SpanStatusCode]
    SPAN_STATUS_CODE_OK: _ClassVar[SpanStatusCode]
    SPAN_STATUS_CODE_ERROR: _ClassVar[SpanStatusCode]

class PurgeState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PURGE_STATE_UNSPECIFIED: _ClassVar[PurgeState]
    PURGE_STATE_RUNNING: _ClassVar[PurgeState]
    PURGE_STATE_DONE: _ClassVar[PurgeState]
    PURGE_STATE_FAILED: _ClassVar[PurgeState]
RUN_STATE_UNSPECIFIED: RunState
RUN_STATE_QUEUED: RunState
RUN_STATE_RUNNING: RunState
RUN_STATE_SUCCESS: RunState
RUN_STATE_WARNING: RunState
RUN_STATE_FAILED: RunState
RUN_STATE_ABORTED: RunState
FAILURE_REASON_UNSPECIFIED: FailureReason
FAILURE_REASON_SCRIPT_ERROR: FailureReason
FAILURE_REASON_TIMEOUT: FailureReason
FAILURE_REASON_OOM: FailureReason
FAILURE_REASON_KILLED: FailureReason
FAILURE_REASON_INFRASTRUCTURE: FailureReason
FAILURE_REASON_NONDETERMINISTIC: FailureReason
TRIGGER_FIRE_STATE_UNSPECIFIED: TriggerFireState
TRIGGER_FIRE_STATE_PENDING: TriggerFireState
TRIGGER_FIRE_STATE_RUN_CREATED: TriggerFireState
TRIGGER_FIRE_STATE_CANCELLED: TriggerFireState
LOG_STREAM_UNSPECIFIED: LogStream
LOG_STREAM_STDOUT: LogStream
LOG_STREAM_STDERR: LogStream
LOG_STREAM_SYSTEM: LogStream
WRITE_BATCH_STATUS_UNSPECIFIED: WriteBatchStatus
WRITE_BATCH_STATUS_APPLIED: WriteBatchStatus
WRITE_BATCH_STATUS_REPLAYED: WriteBatchStatus
STREAM_END_REASON_UNSPECIFIED: StreamEndReason
STREAM_END_REASON_RUN_FINISHED: StreamEndReason
STREAM_END_REASON_CAUGHT_UP: StreamEndReason
SPAN_KIND_UNSPECIFIED: SpanKind
SPAN_KIND_INTERNAL: SpanKind
SPAN_KIND_SERVER: SpanKind
SPAN_KIND_CLIENT: SpanKind
SPAN_KIND_PRODUCER: SpanKind
SPAN_KIND_CONSUMER: SpanKind
SPAN_STATUS_CODE_UNSPECIFIED: SpanStatusCode
SPAN_STATUS_CODE_OK: SpanStatusCode
SPAN_STATUS_CODE_ERROR: SpanStatusCode
PURGE_STATE_UNSPECIFIED: PurgeState
PURGE_STATE_RUNNING: PurgeState
PURGE_STATE_DONE: PurgeState
PURGE_STATE_FAILED: PurgeState

class ErrorDetails(_message.Message):
    __slots__ = ("reason", "type", "message", "traceback", "line", "step")
    REASON_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    TRACEBACK_FIELD_NUMBER: _ClassVar[int]
    LINE_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    reason: FailureReason
    type: str
    message: str
    traceback: str
    line: int
    step: str
    def __init__(self, reason: _Optional[_Union[FailureReason, str]] = ..., type: _Optional[str] = ..., message: _Optional[str] = ..., traceback: _Optional[str] = ..., line: _Optional[int] = ..., step: _Optional[str] = ...) -> None: ...

class TriggerFire(_message.Message):
    __slots__ = ("id", "scenario_id", "state", "run_id", "cancel_reason", "params", "idempotency_key", "create_time", "trigger_id", "triggered_by", "scheduled_time", "queue_reason", "resolve_time")
    class ParamsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    SCENARIO_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    CANCEL_REASON_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    TRIGGER_ID_FIELD_NUMBER: _ClassVar[int]
    TRIGGERED_BY_FIELD_NUMBER: _ClassVar[int]
    SCHEDULED_TIME_FIELD_NUMBER: _ClassVar[int]
    QUEUE_REASON_FIELD_NUMBER: _ClassVar[int]
    RESOLVE_TIME_FIELD_NUMBER: _ClassVar[int]
    id: str
    scenario_id: str
    state: TriggerFireState
    run_id: str
    cancel_reason: str
    params: _containers.ScalarMap[str, str]
    idempotency_key: str
    create_time: _timestamp_pb2.Timestamp
    trigger_id: str
    triggered_by: str
    scheduled_time: _timestamp_pb2.Timestamp
    queue_reason: str
    resolve_time: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., scenario_id: _Optional[str] = ..., state: _Optional[_Union[TriggerFireState, str]] = ..., run_id: _Optional[str] = ..., cancel_reason: _Optional[str] = ..., params: _Optional[_Mapping[str, str]] = ..., idempotency_key: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., trigger_id: _Optional[str] = ..., triggered_by: _Optional[str] = ..., scheduled_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., queue_reason: _Optional[str] = ..., resolve_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Run(_message.Message):
    __slots__ = ("id", "scenario_id", "fire_id", "run_key", "state", "params", "create_time", "start_time", "end_time", "first_error", "attempt_count", "logs_truncated", "dropped_log_lines", "warning_count", "exit_code", "scenario_revision", "versions", "steps", "attempts", "next_attempt_time", "project_key", "run_as", "triggered_by", "trigger_id", "reports", "trace_id", "templates_used", "assets", "dry_run", "dry_run_report", "inputs", "replayed_from")
    class ParamsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class VersionsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    SCENARIO_ID_FIELD_NUMBER: _ClassVar[int]
    FIRE_ID_FIELD_NUMBER: _ClassVar[int]
    RUN_KEY_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    FIRST_ERROR_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_COUNT_FIELD_NUMBER: _ClassVar[int]
    LOGS_TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    DROPPED_LOG_LINES_FIELD_NUMBER: _ClassVar[int]
    WARNING_COUNT_FIELD_NUMBER: _ClassVar[int]
    EXIT_CODE_FIELD_NUMBER: _ClassVar[int]
    SCENARIO_REVISION_FIELD_NUMBER: _ClassVar[int]
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_ATTEMPT_TIME_FIELD_NUMBER: _ClassVar[int]
    PROJECT_KEY_FIELD_NUMBER: _ClassVar[int]
    RUN_AS_FIELD_NUMBER: _ClassVar[int]
    TRIGGERED_BY_FIELD_NUMBER: _ClassVar[int]
    TRIGGER_ID_FIELD_NUMBER: _ClassVar[int]
    REPORTS_FIELD_NUMBER: _ClassVar[int]
    TRACE_ID_FIELD_NUMBER: _ClassVar[int]
    TEMPLATES_USED_FIELD_NUMBER: _ClassVar[int]
    ASSETS_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_REPORT_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    REPLAYED_FROM_FIELD_NUMBER: _ClassVar[int]
    id: str
    scenario_id: str
    fire_id: str
    run_key: str
    state: RunState
    params: _containers.ScalarMap[str, str]
    create_time: _timestamp_pb2.Timestamp
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    first_error: ErrorDetails
    attempt_count: int
    logs_truncated: bool
    dropped_log_lines: int
    warning_count: int
    exit_code: int
    scenario_revision: int
    versions: _containers.ScalarMap[str, str]
    steps: _containers.RepeatedCompositeFieldContainer[RunStep]
    attempts: _containers.RepeatedCompositeFieldContainer[Attempt]
    next_attempt_time: _timestamp_pb2.Timestamp
    project_key: str
    run_as: str
    triggered_by: str
    trigger_id: str
    reports: _containers.RepeatedCompositeFieldContainer[ReporterDelivery]
    trace_id: str
    templates_used: _containers.RepeatedCompositeFieldContainer[_template_pb2.TemplateVersionRef]
    assets: _asset_pb2.RunAssetSummary
    dry_run: bool
    dry_run_report: _dryrun_pb2.DryRunReport
    inputs: _replay_pb2.RunInputs
    replayed_from: str
    def __init__(self, id: _Optional[str] = ..., scenario_id: _Optional[str] = ..., fire_id: _Optional[str] = ..., run_key: _Optional[str] = ..., state: _Optional[_Union[RunState, str]] = ..., params: _Optional[_Mapping[str, str]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., first_error: _Optional[_Union[ErrorDetails, _Mapping]] = ..., attempt_count: _Optional[int] = ..., logs_truncated: _Optional[bool] = ..., dropped_log_lines: _Optional[int] = ..., warning_count: _Optional[int] = ..., exit_code: _Optional[int] = ..., scenario_revision: _Optional[int] = ..., versions: _Optional[_Mapping[str, str]] = ..., steps: _Optional[_Iterable[_Union[RunStep, _Mapping]]] = ..., attempts: _Optional[_Iterable[_Union[Attempt, _Mapping]]] = ..., next_attempt_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., project_key: _Optional[str] = ..., run_as: _Optional[str] = ..., triggered_by: _Optional[str] = ..., trigger_id: _Optional[str] = ..., reports: _Optional[_Iterable[_Union[ReporterDelivery, _Mapping]]] = ..., trace_id: _Optional[str] = ..., templates_used: _Optional[_Iterable[_Union[_template_pb2.TemplateVersionRef, _Mapping]]] = ..., assets: _Optional[_Union[_asset_pb2.RunAssetSummary, _Mapping]] = ..., dry_run: _Optional[bool] = ..., dry_run_report: _Optional[_Union[_dryrun_pb2.DryRunReport, _Mapping]] = ..., inputs: _Optional[_Union[_replay_pb2.RunInputs, _Mapping]] = ..., replayed_from: _Optional[str] = ...) -> None: ...

class ReporterDelivery(_message.Message):
    __slots__ = ("reporter_id", "event", "status", "tries", "error", "time")
    REPORTER_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    TRIES_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    reporter_id: str
    event: str
    status: str
    tries: int
    error: str
    time: _timestamp_pb2.Timestamp
    def __init__(self, reporter_id: _Optional[str] = ..., event: _Optional[str] = ..., status: _Optional[str] = ..., tries: _Optional[int] = ..., error: _Optional[str] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class RunStep(_message.Message):
    __slots__ = ("name", "start_time", "end_time", "outcome", "rows_generated", "rows_written", "number", "task_ids", "batch_ids")
    NAME_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    ROWS_GENERATED_FIELD_NUMBER: _ClassVar[int]
    ROWS_WRITTEN_FIELD_NUMBER: _ClassVar[int]
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    TASK_IDS_FIELD_NUMBER: _ClassVar[int]
    BATCH_IDS_FIELD_NUMBER: _ClassVar[int]
    name: str
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    outcome: str
    rows_generated: int
    rows_written: int
    number: int
    task_ids: _containers.RepeatedScalarFieldContainer[str]
    batch_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., outcome: _Optional[str] = ..., rows_generated: _Optional[int] = ..., rows_written: _Optional[int] = ..., number: _Optional[int] = ..., task_ids: _Optional[_Iterable[str]] = ..., batch_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class Attempt(_message.Message):
    __slots__ = ("number", "state", "outcome", "error", "create_time", "start_time", "end_time", "node", "container_id", "worker_pid", "fencing_token", "task_id")
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    NODE_FIELD_NUMBER: _ClassVar[int]
    CONTAINER_ID_FIELD_NUMBER: _ClassVar[int]
    WORKER_PID_FIELD_NUMBER: _ClassVar[int]
    FENCING_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    number: int
    state: str
    outcome: str
    error: ErrorDetails
    create_time: _timestamp_pb2.Timestamp
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    node: str
    container_id: str
    worker_pid: int
    fencing_token: int
    task_id: str
    def __init__(self, number: _Optional[int] = ..., state: _Optional[str] = ..., outcome: _Optional[str] = ..., error: _Optional[_Union[ErrorDetails, _Mapping]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., node: _Optional[str] = ..., container_id: _Optional[str] = ..., worker_pid: _Optional[int] = ..., fencing_token: _Optional[int] = ..., task_id: _Optional[str] = ...) -> None: ...

class WriteBatch(_message.Message):
    __slots__ = ("connection_id", "operation", "target", "call", "batch", "rows", "content_hash", "attempt", "status", "time", "created_ids")
    CONNECTION_ID_FIELD_NUMBER: _ClassVar[int]
    OPERATION_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    CALL_FIELD_NUMBER: _ClassVar[int]
    BATCH_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    CONTENT_HASH_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    CREATED_IDS_FIELD_NUMBER: _ClassVar[int]
    connection_id: str
    operation: str
    target: str
    call: int
    batch: int
    rows: int
    content_hash: str
    attempt: int
    status: WriteBatchStatus
    time: _timestamp_pb2.Timestamp
    created_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, connection_id: _Optional[str] = ..., operation: _Optional[str] = ..., target: _Optional[str] = ..., call: _Optional[int] = ..., batch: _Optional[int] = ..., rows: _Optional[int] = ..., content_hash: _Optional[str] = ..., attempt: _Optional[int] = ..., status: _Optional[_Union[WriteBatchStatus, str]] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., created_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class LogLine(_message.Message):
    __slots__ = ("sequence", "attempt", "stream", "text", "time", "level", "fields", "trace_id", "span_id")
    class FieldsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    STREAM_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    LEVEL_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    TRACE_ID_FIELD_NUMBER: _ClassVar[int]
    SPAN_ID_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    attempt: int
    stream: LogStream
    text: str
    time: _timestamp_pb2.Timestamp
    level: str
    fields: _containers.ScalarMap[str, str]
    trace_id: str
    span_id: str
    def __init__(self, sequence: _Optional[int] = ..., attempt: _Optional[int] = ..., stream: _Optional[_Union[LogStream, str]] = ..., text: _Optional[str] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., level: _Optional[str] = ..., fields: _Optional[_Mapping[str, str]] = ..., trace_id: _Optional[str] = ..., span_id: _Optional[str] = ...) -> None: ...

class RunScenarioRequest(_message.Message):
    __slots__ = ("scenario_id", "params", "idempotency_key", "dry_run")
    class ParamsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    SCENARIO_ID_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    scenario_id: str
    params: _containers.ScalarMap[str, str]
    idempotency_key: str
    dry_run: bool
    def __init__(self, scenario_id: _Optional[str] = ..., params: _Optional[_Mapping[str, str]] = ..., idempotency_key: _Optional[str] = ..., dry_run: _Optional[bool] = ...) -> None: ...

class RunScenarioResponse(_message.Message):
    __slots__ = ("fire",)
    FIRE_FIELD_NUMBER: _ClassVar[int]
    fire: TriggerFire
    def __init__(self, fire: _Optional[_Union[TriggerFire, _Mapping]] = ...) -> None: ...

class GetTriggerFireRequest(_message.Message):
    __slots__ = ("fire_id",)
    FIRE_ID_FIELD_NUMBER: _ClassVar[int]
    fire_id: str
    def __init__(self, fire_id: _Optional[str] = ...) -> None: ...

class GetTriggerFireResponse(_message.Message):
    __slots__ = ("fire",)
    FIRE_FIELD_NUMBER: _ClassVar[int]
    fire: TriggerFire
    def __init__(self, fire: _Optional[_Union[TriggerFire, _Mapping]] = ...) -> None: ...

class GetRunRequest(_message.Message):
    __slots__ = ("run_id",)
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    def __init__(self, run_id: _Optional[str] = ...) -> None: ...

class GetRunResponse(_message.Message):
    __slots__ = ("run",)
    RUN_FIELD_NUMBER: _ClassVar[int]
    run: Run
    def __init__(self, run: _Optional[_Union[Run, _Mapping]] = ...) -> None: ...

class ListRunsRequest(_message.Message):
    __slots__ = ("scenario_id", "page_size", "page_token", "states", "created_after", "created_before", "project_key")
    SCENARIO_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    STATES_FIELD_NUMBER: _ClassVar[int]
    CREATED_AFTER_FIELD_NUMBER: _ClassVar[int]
    CREATED_BEFORE_FIELD_NUMBER: _ClassVar[int]
    PROJECT_KEY_FIELD_NUMBER: _ClassVar[int]
    scenario_id: str
    page_size: int
    page_token: str
    states: _containers.RepeatedScalarFieldContainer[RunState]
    created_after: _timestamp_pb2.Timestamp
    created_before: _timestamp_pb2.Timestamp
    project_key: str
    def __init__(self, scenario_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., states: _Optional[_Iterable[_Union[RunState, str]]] = ..., created_after: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., created_before: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., project_key: _Optional[str] = ...) -> None: ...

class ListRunsResponse(_message.Message):
    __slots__ = ("runs", "next_page_token")
    RUNS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    runs: _containers.RepeatedCompositeFieldContainer[Run]
    next_page_token: str
    def __init__(self, runs: _Optional[_Iterable[_Union[Run, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ListWriteBatchesRequest(_message.Message):
    __slots__ = ("run_id", "page_size", "page_token")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    page_size: int
    page_token: str
    def __init__(self, run_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListWriteBatchesResponse(_message.Message):
    __slots__ = ("batches", "next_page_token")
    BATCHES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    batches: _containers.RepeatedCompositeFieldContainer[WriteBatch]
    next_page_token: str
    def __init__(self, batches: _Optional[_Iterable[_Union[WriteBatch, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class AbortRunRequest(_message.Message):
    __slots__ = ("run_id", "reason")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    reason: str
    def __init__(self, run_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class AbortRunResponse(_message.Message):
    __slots__ = ("run", "already_finished")
    RUN_FIELD_NUMBER: _ClassVar[int]
    ALREADY_FINISHED_FIELD_NUMBER: _ClassVar[int]
    run: Run
    already_finished: bool
    def __init__(self, run: _Optional[_Union[Run, _Mapping]] = ..., already_finished: _Optional[bool] = ...) -> None: ...

class PurgeRunRequest(_message.Message):
    __slots__ = ("run_id", "dry_run")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    dry_run: bool
    def __init__(self, run_id: _Optional[str] = ..., dry_run: _Optional[bool] = ...) -> None: ...

class PurgedTarget(_message.Message):
    __slots__ = ("connection_id", "table", "rows_deleted", "rows_recorded", "batches", "rows_restored", "rows_changed")
    CONNECTION_ID_FIELD_NUMBER: _ClassVar[int]
    TABLE_FIELD_NUMBER: _ClassVar[int]
    ROWS_DELETED_FIELD_NUMBER: _ClassVar[int]
    ROWS_RECORDED_FIELD_NUMBER: _ClassVar[int]
    BATCHES_FIELD_NUMBER: _ClassVar[int]
    ROWS_RESTORED_FIELD_NUMBER: _ClassVar[int]
    ROWS_CHANGED_FIELD_NUMBER: _ClassVar[int]
    connection_id: str
    table: str
    rows_deleted: int
    rows_recorded: int
    batches: int
    rows_restored: int
    rows_changed: int
    def __init__(self, connection_id: _Optional[str] = ..., table: _Optional[str] = ..., rows_deleted: _Optional[int] = ..., rows_recorded: _Optional[int] = ..., batches: _Optional[int] = ..., rows_restored: _Optional[int] = ..., rows_changed: _Optional[int] = ...) -> None: ...

class SkippedBatch(_message.Message):
    __slots__ = ("connection_id", "operation", "target", "call", "batch", "reason")
    CONNECTION_ID_FIELD_NUMBER: _ClassVar[int]
    OPERATION_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    CALL_FIELD_NUMBER: _ClassVar[int]
    BATCH_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    connection_id: str
    operation: str
    target: str
    call: int
    batch: int
    reason: str
    def __init__(self, connection_id: _Optional[str] = ..., operation: _Optional[str] = ..., target: _Optional[str] = ..., call: _Optional[int] = ..., batch: _Optional[int] = ..., reason: _Optional[str] = ...) -> None: ...

class SkippedConnection(_message.Message):
    __slots__ = ("connection_id", "reason")
    CONNECTION_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    connection_id: str
    reason: str
    def __init__(self, connection_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class PurgeFailure(_message.Message):
    __slots__ = ("connection_id", "table", "call", "batch", "message")
    CONNECTION_ID_FIELD_NUMBER: _ClassVar[int]
    TABLE_FIELD_NUMBER: _ClassVar[int]
    CALL_FIELD_NUMBER: _ClassVar[int]
    BATCH_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    connection_id: str
    table: str
    call: int
    batch: int
    message: str
    def __init__(self, connection_id: _Optional[str] = ..., table: _Optional[str] = ..., call: _Optional[int] = ..., batch: _Optional[int] = ..., message: _Optional[str] = ...) -> None: ...

class PurgeRunResponse(_message.Message):
    __slots__ = ("targets", "skipped", "skipped_connections", "failures", "dry_run", "rows_left", "assets_deleted", "asset_bytes_deleted")
    TARGETS_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_CONNECTIONS_FIELD_NUMBER: _ClassVar[int]
    FAILURES_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    ROWS_LEFT_FIELD_NUMBER: _ClassVar[int]
    ASSETS_DELETED_FIELD_NUMBER: _ClassVar[int]
    ASSET_BYTES_DELETED_FIELD_NUMBER: _ClassVar[int]
    targets: _containers.RepeatedCompositeFieldContainer[PurgedTarget]
    skipped: _containers.RepeatedCompositeFieldContainer[SkippedBatch]
    skipped_connections: _containers.RepeatedCompositeFieldContainer[SkippedConnection]
    failures: _containers.RepeatedCompositeFieldContainer[PurgeFailure]
    dry_run: bool
    rows_left: _containers.RepeatedCompositeFieldContainer[LeftRow]
    assets_deleted: int
    asset_bytes_deleted: int
    def __init__(self, targets: _Optional[_Iterable[_Union[PurgedTarget, _Mapping]]] = ..., skipped: _Optional[_Iterable[_Union[SkippedBatch, _Mapping]]] = ..., skipped_connections: _Optional[_Iterable[_Union[SkippedConnection, _Mapping]]] = ..., failures: _Optional[_Iterable[_Union[PurgeFailure, _Mapping]]] = ..., dry_run: _Optional[bool] = ..., rows_left: _Optional[_Iterable[_Union[LeftRow, _Mapping]]] = ..., assets_deleted: _Optional[int] = ..., asset_bytes_deleted: _Optional[int] = ...) -> None: ...

class LeftRow(_message.Message):
    __slots__ = ("connection_id", "table", "call", "batch", "key", "reason")
    CONNECTION_ID_FIELD_NUMBER: _ClassVar[int]
    TABLE_FIELD_NUMBER: _ClassVar[int]
    CALL_FIELD_NUMBER: _ClassVar[int]
    BATCH_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    connection_id: str
    table: str
    call: int
    batch: int
    key: str
    reason: str
    def __init__(self, connection_id: _Optional[str] = ..., table: _Optional[str] = ..., call: _Optional[int] = ..., batch: _Optional[int] = ..., key: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class StreamRunLogsRequest(_message.Message):
    __slots__ = ("run_id", "after_sequence", "follow", "step")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    AFTER_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    FOLLOW_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    after_sequence: int
    follow: bool
    step: str
    def __init__(self, run_id: _Optional[str] = ..., after_sequence: _Optional[int] = ..., follow: _Optional[bool] = ..., step: _Optional[str] = ...) -> None: ...

class StreamEnd(_message.Message):
    __slots__ = ("reason", "run", "last_sequence")
    REASON_FIELD_NUMBER: _ClassVar[int]
    RUN_FIELD_NUMBER: _ClassVar[int]
    LAST_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    reason: StreamEndReason
    run: Run
    last_sequence: int
    def __init__(self, reason: _Optional[_Union[StreamEndReason, str]] = ..., run: _Optional[_Union[Run, _Mapping]] = ..., last_sequence: _Optional[int] = ...) -> None: ...

class WatchRunsRequest(_message.Message):
    __slots__ = ("fire_ids", "run_ids")
    FIRE_IDS_FIELD_NUMBER: _ClassVar[int]
    RUN_IDS_FIELD_NUMBER: _ClassVar[int]
    fire_ids: _containers.RepeatedScalarFieldContainer[str]
    run_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, fire_ids: _Optional[_Iterable[str]] = ..., run_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class WatchRunsResponse(_message.Message):
    __slots__ = ("fire", "run", "done")
    FIRE_FIELD_NUMBER: _ClassVar[int]
    RUN_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    fire: TriggerFire
    run: Run
    done: bool
    def __init__(self, fire: _Optional[_Union[TriggerFire, _Mapping]] = ..., run: _Optional[_Union[Run, _Mapping]] = ..., done: _Optional[bool] = ...) -> None: ...

class StreamRunLogsResponse(_message.Message):
    __slots__ = ("line", "end")
    LINE_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    line: LogLine
    end: StreamEnd
    def __init__(self, line: _Optional[_Union[LogLine, _Mapping]] = ..., end: _Optional[_Union[StreamEnd, _Mapping]] = ...) -> None: ...

class SpanAttribute(_message.Message):
    __slots__ = ("key", "string_value", "int_value", "double_value", "bool_value")
    KEY_FIELD_NUMBER: _ClassVar[int]
    STRING_VALUE_FIELD_NUMBER: _ClassVar[int]
    INT_VALUE_FIELD_NUMBER: _ClassVar[int]
    DOUBLE_VALUE_FIELD_NUMBER: _ClassVar[int]
    BOOL_VALUE_FIELD_NUMBER: _ClassVar[int]
    key: str
    string_value: str
    int_value: int
    double_value: float
    bool_value: bool
    def __init__(self, key: _Optional[str] = ..., string_value: _Optional[str] = ..., int_value: _Optional[int] = ..., double_value: _Optional[float] = ..., bool_value: _Optional[bool] = ...) -> None: ...

class Span(_message.Message):
    __slots__ = ("trace_id", "span_id", "parent_span_id", "name", "kind", "start_time", "end_time", "attributes", "status_code", "status_message", "dropped_attributes_count", "service")
    TRACE_ID_FIELD_NUMBER: _ClassVar[int]
    SPAN_ID_FIELD_NUMBER: _ClassVar[int]
    PARENT_SPAN_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    STATUS_CODE_FIELD_NUMBER: _ClassVar[int]
    STATUS_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    DROPPED_ATTRIBUTES_COUNT_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    trace_id: str
    span_id: str
    parent_span_id: str
    name: str
    kind: SpanKind
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    attributes: _containers.RepeatedCompositeFieldContainer[SpanAttribute]
    status_code: SpanStatusCode
    status_message: str
    dropped_attributes_count: int
    service: str
    def __init__(self, trace_id: _Optional[str] = ..., span_id: _Optional[str] = ..., parent_span_id: _Optional[str] = ..., name: _Optional[str] = ..., kind: _Optional[_Union[SpanKind, str]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., attributes: _Optional[_Iterable[_Union[SpanAttribute, _Mapping]]] = ..., status_code: _Optional[_Union[SpanStatusCode, str]] = ..., status_message: _Optional[str] = ..., dropped_attributes_count: _Optional[int] = ..., service: _Optional[str] = ...) -> None: ...

class GetRunTraceRequest(_message.Message):
    __slots__ = ("run_id",)
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    def __init__(self, run_id: _Optional[str] = ...) -> None: ...

class GetRunTraceResponse(_message.Message):
    __slots__ = ("trace_id", "spans", "dropped_spans", "max_spans", "note")
    TRACE_ID_FIELD_NUMBER: _ClassVar[int]
    SPANS_FIELD_NUMBER: _ClassVar[int]
    DROPPED_SPANS_FIELD_NUMBER: _ClassVar[int]
    MAX_SPANS_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    trace_id: str
    spans: _containers.RepeatedCompositeFieldContainer[Span]
    dropped_spans: int
    max_spans: int
    note: str
    def __init__(self, trace_id: _Optional[str] = ..., spans: _Optional[_Iterable[_Union[Span, _Mapping]]] = ..., dropped_spans: _Optional[int] = ..., max_spans: _Optional[int] = ..., note: _Optional[str] = ...) -> None: ...

class ReplayRunRequest(_message.Message):
    __slots__ = ("run_id", "connections", "idempotency_key")
    class ConnectionsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    CONNECTIONS_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    connections: _containers.ScalarMap[str, str]
    idempotency_key: str
    def __init__(self, run_id: _Optional[str] = ..., connections: _Optional[_Mapping[str, str]] = ..., idempotency_key: _Optional[str] = ...) -> None: ...

class ReplayRunResponse(_message.Message):
    __slots__ = ("fire",)
    FIRE_FIELD_NUMBER: _ClassVar[int]
    fire: TriggerFire
    def __init__(self, fire: _Optional[_Union[TriggerFire, _Mapping]] = ...) -> None: ...

class PurgeRecord(_message.Message):
    __slots__ = ("run_id", "scenario_id", "trigger", "state", "attempts", "start_time", "end_time", "message", "result")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    SCENARIO_ID_FIELD_NUMBER: _ClassVar[int]
    TRIGGER_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    scenario_id: str
    trigger: str
    state: PurgeState
    attempts: int
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    message: str
    result: PurgeRunResponse
    def __init__(self, run_id: _Optional[str] = ..., scenario_id: _Optional[str] = ..., trigger: _Optional[str] = ..., state: _Optional[_Union[PurgeState, str]] = ..., attempts: _Optional[int] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., message: _Optional[str] = ..., result: _Optional[_Union[PurgeRunResponse, _Mapping]] = ...) -> None: ...

class ListPurgesRequest(_message.Message):
    __slots__ = ("run_id", "limit")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    limit: int
    def __init__(self, run_id: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class ListPurgesResponse(_message.Message):
    __slots__ = ("purges",)
    PURGES_FIELD_NUMBER: _ClassVar[int]
    purges: _containers.RepeatedCompositeFieldContainer[PurgeRecord]
    def __init__(self, purges: _Optional[_Iterable[_Union[PurgeRecord, _Mapping]]] = ...) -> None: ...
