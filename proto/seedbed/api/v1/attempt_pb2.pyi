import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from seedbed.api.v1 import asset_pb2 as _asset_pb2
from seedbed.api.v1 import connection_pb2 as _connection_pb2
from seedbed.api.v1 import dryrun_pb2 as _dryrun_pb2
from seedbed.api.v1 import replay_pb2 as _replay_pb2
from seedbed.api.v1 import run_pb2 as _run_pb2
from seedbed.api.v1 import template_pb2 as _template_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AttemptOutcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ATTEMPT_OUTCOME_UNSPECIFIED: _ClassVar[AttemptOutcome]
    ATTEMPT_OUTCOME_SUCCEEDED: _ClassVar[AttemptOutcome]
    ATTEMPT_OUTCOME_SCRIPT_ERROR: _ClassVar[AttemptOutcome]
    ATTEMPT_OUTCOME_TIMEOUT: _ClassVar[AttemptOutcome]
    ATTEMPT_OUTCOME_OOM: _ClassVar[AttemptOutcome]
    ATTEMPT_OUTCOME_KILLED: _ClassVar[AttemptOutcome]
    ATTEMPT_OUTCOME_ABORTED: _ClassVar[AttemptOutcome]
    ATTEMPT_OUTCOME_INFRASTRUCTURE: _ClassVar[AttemptOutcome]
    ATTEMPT_OUTCOME_NONDETERMINISTIC: _ClassVar[AttemptOutcome]
ATTEMPT_OUTCOME_UNSPECIFIED: AttemptOutcome
ATTEMPT_OUTCOME_SUCCEEDED: AttemptOutcome
ATTEMPT_OUTCOME_SCRIPT_ERROR: AttemptOutcome
ATTEMPT_OUTCOME_TIMEOUT: AttemptOutcome
ATTEMPT_OUTCOME_OOM: AttemptOutcome
ATTEMPT_OUTCOME_KILLED: AttemptOutcome
ATTEMPT_OUTCOME_ABORTED: AttemptOutcome
ATTEMPT_OUTCOME_INFRASTRUCTURE: AttemptOutcome
ATTEMPT_OUTCOME_NONDETERMINISTIC: AttemptOutcome

class SandboxLimits(_message.Message):
    __slots__ = ("timeout_seconds", "memory_bytes", "nano_cpus", "pids", "nofile", "tmpfs_bytes", "max_log_bytes", "max_line_bytes", "max_log_lines")
    TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    NANO_CPUS_FIELD_NUMBER: _ClassVar[int]
    PIDS_FIELD_NUMBER: _ClassVar[int]
    NOFILE_FIELD_NUMBER: _ClassVar[int]
    TMPFS_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_LOG_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_LINE_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_LOG_LINES_FIELD_NUMBER: _ClassVar[int]
    timeout_seconds: int
    memory_bytes: int
    nano_cpus: int
    pids: int
    nofile: int
    tmpfs_bytes: int
    max_log_bytes: int
    max_line_bytes: int
    max_log_lines: int
    def __init__(self, timeout_seconds: _Optional[int] = ..., memory_bytes: _Optional[int] = ..., nano_cpus: _Optional[int] = ..., pids: _Optional[int] = ..., nofile: _Optional[int] = ..., tmpfs_bytes: _Optional[int] = ..., max_log_bytes: _Optional[int] = ..., max_line_bytes: _Optional[int] = ..., max_log_lines: _Optional[int] = ...) -> None: ...

class AttemptSpec(_message.Message):
    __slots__ = ("run_id", "attempt", "run_key", "scenario_id", "script", "params", "limits", "deadline", "docker_url", "fencing_token", "templates", "connections", "coordinator_address", "data_limits", "coordinator_token", "coordinator_tls", "sandbox_runtime", "ledger_key", "derived_images", "trace", "max_asset_bytes", "max_run_asset_bytes", "dry_run", "replay")
    class ParamsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    RUN_KEY_FIELD_NUMBER: _ClassVar[int]
    SCENARIO_ID_FIELD_NUMBER: _ClassVar[int]
    SCRIPT_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_FIELD_NUMBER: _ClassVar[int]
    DOCKER_URL_FIELD_NUMBER: _ClassVar[int]
    FENCING_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TEMPLATES_FIELD_NUMBER: _ClassVar[int]
    CONNECTIONS_FIELD_NUMBER: _ClassVar[int]
    COORDINATOR_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    DATA_LIMITS_FIELD_NUMBER: _ClassVar[int]
    COORDINATOR_TOKEN_FIELD_NUMBER: _ClassVar[int]
    COORDINATOR_TLS_FIELD_NUMBER: _ClassVar[int]
    SANDBOX_RUNTIME_FIELD_NUMBER: _ClassVar[int]
    LEDGER_KEY_FIELD_NUMBER: _ClassVar[int]
    DERIVED_IMAGES_FIELD_NUMBER: _ClassVar[int]
    TRACE_FIELD_NUMBER: _ClassVar[int]
    MAX_ASSET_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_RUN_ASSET_BYTES_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    REPLAY_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    attempt: int
    run_key: str
    scenario_id: str
    script: str
    params: _containers.ScalarMap[str, str]
    limits: SandboxLimits
    deadline: _timestamp_pb2.Timestamp
    docker_url: str
    fencing_token: int
    templates: _containers.RepeatedCompositeFieldContainer[TemplateSnapshot]
    connections: _containers.RepeatedCompositeFieldContainer[ConnectionSnapshot]
    coordinator_address: str
    data_limits: DataLimits
    coordinator_token: str
    coordinator_tls: CoordinatorTls
    sandbox_runtime: str
    ledger_key: bytes
    derived_images: DerivedImageLimits
    trace: AttemptTrace
    max_asset_bytes: int
    max_run_asset_bytes: int
    dry_run: bool
    replay: _replay_pb2.ReplayPin
    def __init__(self, run_id: _Optional[str] = ..., attempt: _Optional[int] = ..., run_key: _Optional[str] = ..., scenario_id: _Optional[str] = ..., script: _Optional[str] = ..., params: _Optional[_Mapping[str, str]] = ..., limits: _Optional[_Union[SandboxLimits, _Mapping]] = ..., deadline: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., docker_url: _Optional[str] = ..., fencing_token: _Optional[int] = ..., templates: _Optional[_Iterable[_Union[TemplateSnapshot, _Mapping]]] = ..., connections: _Optional[_Iterable[_Union[ConnectionSnapshot, _Mapping]]] = ..., coordinator_address: _Optional[str] = ..., data_limits: _Optional[_Union[DataLimits, _Mapping]] = ..., coordinator_token: _Optional[str] = ..., coordinator_tls: _Optional[_Union[CoordinatorTls, _Mapping]] = ..., sandbox_runtime: _Optional[str] = ..., ledger_key: _Optional[bytes] = ..., derived_images: _Optional[_Union[DerivedImageLimits, _Mapping]] = ..., trace: _Optional[_Union[AttemptTrace, _Mapping]] = ..., max_asset_bytes: _Optional[int] = ..., max_run_asset_bytes: _Optional[int] = ..., dry_run: _Optional[bool] = ..., replay: _Optional[_Union[_replay_pb2.ReplayPin, _Mapping]] = ...) -> None: ...

class AttemptTrace(_message.Message):
    __slots__ = ("traceparent", "max_spans", "max_attribute_length", "dispatch_time")
    TRACEPARENT_FIELD_NUMBER: _ClassVar[int]
    MAX_SPANS_FIELD_NUMBER: _ClassVar[int]
    MAX_ATTRIBUTE_LENGTH_FIELD_NUMBER: _ClassVar[int]
    DISPATCH_TIME_FIELD_NUMBER: _ClassVar[int]
    traceparent: str
    max_spans: int
    max_attribute_length: int
    dispatch_time: _timestamp_pb2.Timestamp
    def __init__(self, traceparent: _Optional[str] = ..., max_spans: _Optional[int] = ..., max_attribute_length: _Optional[int] = ..., dispatch_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class AttemptSpans(_message.Message):
    __slots__ = ("spans", "dropped")
    SPANS_FIELD_NUMBER: _ClassVar[int]
    DROPPED_FIELD_NUMBER: _ClassVar[int]
    spans: _containers.RepeatedCompositeFieldContainer[_run_pb2.Span]
    dropped: int
    def __init__(self, spans: _Optional[_Iterable[_Union[_run_pb2.Span, _Mapping]]] = ..., dropped: _Optional[int] = ...) -> None: ...

class DerivedImageLimits(_message.Message):
    __slots__ = ("max_image_bytes", "cache_bytes", "max_unused_seconds")
    MAX_IMAGE_BYTES_FIELD_NUMBER: _ClassVar[int]
    CACHE_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_UNUSED_SECONDS_FIELD_NUMBER: _ClassVar[int]
    max_image_bytes: int
    cache_bytes: int
    max_unused_seconds: int
    def __init__(self, max_image_bytes: _Optional[int] = ..., cache_bytes: _Optional[int] = ..., max_unused_seconds: _Optional[int] = ...) -> None: ...

class CoordinatorTls(_message.Message):
    __slots__ = ("ca_pem",)
    CA_PEM_FIELD_NUMBER: _ClassVar[int]
    ca_pem: bytes
    def __init__(self, ca_pem: _Optional[bytes] = ...) -> None: ...

class TemplateSnapshot(_message.Message):
    __slots__ = ("id", "canonical_json", "revision")
    ID_FIELD_NUMBER: _ClassVar[int]
    CANONICAL_JSON_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    id: str
    canonical_json: str
    revision: int
    def __init__(self, id: _Optional[str] = ..., canonical_json: _Optional[str] = ..., revision: _Optional[int] = ...) -> None: ...

class ConnectionSnapshot(_message.Message):
    __slots__ = ("id", "kind", "url", "rest", "secret", "refused_reason", "bulk")
    ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    REST_FIELD_NUMBER: _ClassVar[int]
    SECRET_FIELD_NUMBER: _ClassVar[int]
    REFUSED_REASON_FIELD_NUMBER: _ClassVar[int]
    BULK_FIELD_NUMBER: _ClassVar[int]
    id: str
    kind: _connection_pb2.ConnectionKind
    url: str
    rest: _connection_pb2.RestOptions
    secret: _connection_pb2.SecretSource
    refused_reason: str
    bulk: _connection_pb2.BulkOptions
    def __init__(self, id: _Optional[str] = ..., kind: _Optional[_Union[_connection_pb2.ConnectionKind, str]] = ..., url: _Optional[str] = ..., rest: _Optional[_Union[_connection_pb2.RestOptions, _Mapping]] = ..., secret: _Optional[_Union[_connection_pb2.SecretSource, _Mapping]] = ..., refused_reason: _Optional[str] = ..., bulk: _Optional[_Union[_connection_pb2.BulkOptions, _Mapping]] = ...) -> None: ...

class DataLimits(_message.Message):
    __slots__ = ("max_generate_rows", "max_fetch_rows", "max_reply_bytes", "max_workspace_read_bytes", "max_template_field_bytes", "max_template_row_bytes", "max_file_sink_bytes", "agent_memory_bytes", "max_rowset_rows")
    MAX_GENERATE_ROWS_FIELD_NUMBER: _ClassVar[int]
    MAX_FETCH_ROWS_FIELD_NUMBER: _ClassVar[int]
    MAX_REPLY_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_WORKSPACE_READ_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_TEMPLATE_FIELD_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_TEMPLATE_ROW_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_FILE_SINK_BYTES_FIELD_NUMBER: _ClassVar[int]
    AGENT_MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_ROWSET_ROWS_FIELD_NUMBER: _ClassVar[int]
    max_generate_rows: int
    max_fetch_rows: int
    max_reply_bytes: int
    max_workspace_read_bytes: int
    max_template_field_bytes: int
    max_template_row_bytes: int
    max_file_sink_bytes: int
    agent_memory_bytes: int
    max_rowset_rows: int
    def __init__(self, max_generate_rows: _Optional[int] = ..., max_fetch_rows: _Optional[int] = ..., max_reply_bytes: _Optional[int] = ..., max_workspace_read_bytes: _Optional[int] = ..., max_template_field_bytes: _Optional[int] = ..., max_template_row_bytes: _Optional[int] = ..., max_file_sink_bytes: _Optional[int] = ..., agent_memory_bytes: _Optional[int] = ..., max_rowset_rows: _Optional[int] = ...) -> None: ...

class AttemptStarted(_message.Message):
    __slots__ = ("container_id", "image", "time", "node", "worker_pid", "task_id")
    CONTAINER_ID_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    NODE_FIELD_NUMBER: _ClassVar[int]
    WORKER_PID_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    container_id: str
    image: str
    time: _timestamp_pb2.Timestamp
    node: str
    worker_pid: int
    task_id: str
    def __init__(self, container_id: _Optional[str] = ..., image: _Optional[str] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., node: _Optional[str] = ..., worker_pid: _Optional[int] = ..., task_id: _Optional[str] = ...) -> None: ...

class AttemptOutput(_message.Message):
    __slots__ = ("lines",)
    LINES_FIELD_NUMBER: _ClassVar[int]
    lines: _containers.RepeatedCompositeFieldContainer[_run_pb2.LogLine]
    def __init__(self, lines: _Optional[_Iterable[_Union[_run_pb2.LogLine, _Mapping]]] = ...) -> None: ...

class AttemptResult(_message.Message):
    __slots__ = ("outcome", "exit_code", "error", "logs_truncated", "dropped_lines", "warnings", "time", "versions", "steps", "templates_used", "dry_run_report")
    class VersionsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    EXIT_CODE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    LOGS_TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    DROPPED_LINES_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    TEMPLATES_USED_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_REPORT_FIELD_NUMBER: _ClassVar[int]
    outcome: AttemptOutcome
    exit_code: int
    error: _run_pb2.ErrorDetails
    logs_truncated: bool
    dropped_lines: int
    warnings: int
    time: _timestamp_pb2.Timestamp
    versions: _containers.ScalarMap[str, str]
    steps: _containers.RepeatedCompositeFieldContainer[_run_pb2.RunStep]
    templates_used: _containers.RepeatedCompositeFieldContainer[_template_pb2.TemplateVersionRef]
    dry_run_report: _dryrun_pb2.DryRunReport
    def __init__(self, outcome: _Optional[_Union[AttemptOutcome, str]] = ..., exit_code: _Optional[int] = ..., error: _Optional[_Union[_run_pb2.ErrorDetails, _Mapping]] = ..., logs_truncated: _Optional[bool] = ..., dropped_lines: _Optional[int] = ..., warnings: _Optional[int] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., versions: _Optional[_Mapping[str, str]] = ..., steps: _Optional[_Iterable[_Union[_run_pb2.RunStep, _Mapping]]] = ..., templates_used: _Optional[_Iterable[_Union[_template_pb2.TemplateVersionRef, _Mapping]]] = ..., dry_run_report: _Optional[_Union[_dryrun_pb2.DryRunReport, _Mapping]] = ...) -> None: ...

class AttemptEvent(_message.Message):
    __slots__ = ("started", "output", "result", "batch", "spans", "asset")
    STARTED_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    BATCH_FIELD_NUMBER: _ClassVar[int]
    SPANS_FIELD_NUMBER: _ClassVar[int]
    ASSET_FIELD_NUMBER: _ClassVar[int]
    started: AttemptStarted
    output: AttemptOutput
    result: AttemptResult
    batch: _run_pb2.WriteBatch
    spans: AttemptSpans
    asset: _asset_pb2.AttemptAsset
    def __init__(self, started: _Optional[_Union[AttemptStarted, _Mapping]] = ..., output: _Optional[_Union[AttemptOutput, _Mapping]] = ..., result: _Optional[_Union[AttemptResult, _Mapping]] = ..., batch: _Optional[_Union[_run_pb2.WriteBatch, _Mapping]] = ..., spans: _Optional[_Union[AttemptSpans, _Mapping]] = ..., asset: _Optional[_Union[_asset_pb2.AttemptAsset, _Mapping]] = ...) -> None: ...
