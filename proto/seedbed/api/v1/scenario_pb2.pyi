import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from seedbed.api.v1 import run_pb2 as _run_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class OverlapPolicy(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OVERLAP_POLICY_UNSPECIFIED: _ClassVar[OverlapPolicy]
    OVERLAP_POLICY_SKIP: _ClassVar[OverlapPolicy]
    OVERLAP_POLICY_ALLOW_CONCURRENT: _ClassVar[OverlapPolicy]
    OVERLAP_POLICY_QUEUE_ONE: _ClassVar[OverlapPolicy]
    OVERLAP_POLICY_QUEUE_ALL: _ClassVar[OverlapPolicy]
    OVERLAP_POLICY_CANCEL_RUNNING: _ClassVar[OverlapPolicy]

class ReporterEvent(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REPORTER_EVENT_UNSPECIFIED: _ClassVar[ReporterEvent]
    REPORTER_EVENT_RUN_STARTED: _ClassVar[ReporterEvent]
    REPORTER_EVENT_RUN_FINISHED: _ClassVar[ReporterEvent]
OVERLAP_POLICY_UNSPECIFIED: OverlapPolicy
OVERLAP_POLICY_SKIP: OverlapPolicy
OVERLAP_POLICY_ALLOW_CONCURRENT: OverlapPolicy
OVERLAP_POLICY_QUEUE_ONE: OverlapPolicy
OVERLAP_POLICY_QUEUE_ALL: OverlapPolicy
OVERLAP_POLICY_CANCEL_RUNNING: OverlapPolicy
REPORTER_EVENT_UNSPECIFIED: ReporterEvent
REPORTER_EVENT_RUN_STARTED: ReporterEvent
REPORTER_EVENT_RUN_FINISHED: ReporterEvent

class CronSchedule(_message.Message):
    __slots__ = ("expression", "timezone")
    EXPRESSION_FIELD_NUMBER: _ClassVar[int]
    TIMEZONE_FIELD_NUMBER: _ClassVar[int]
    expression: str
    timezone: str
    def __init__(self, expression: _Optional[str] = ..., timezone: _Optional[str] = ...) -> None: ...

class Trigger(_message.Message):
    __slots__ = ("id", "name", "active", "cron", "params", "catch_up_seconds")
    class ParamsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    CRON_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    CATCH_UP_SECONDS_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    active: bool
    cron: CronSchedule
    params: _containers.ScalarMap[str, str]
    catch_up_seconds: int
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., active: _Optional[bool] = ..., cron: _Optional[_Union[CronSchedule, _Mapping]] = ..., params: _Optional[_Mapping[str, str]] = ..., catch_up_seconds: _Optional[int] = ...) -> None: ...

class WebhookTarget(_message.Message):
    __slots__ = ("url", "headers", "body_template", "signing_secret")
    class HeadersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    URL_FIELD_NUMBER: _ClassVar[int]
    HEADERS_FIELD_NUMBER: _ClassVar[int]
    BODY_TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    SIGNING_SECRET_FIELD_NUMBER: _ClassVar[int]
    url: str
    headers: _containers.ScalarMap[str, str]
    body_template: str
    signing_secret: str
    def __init__(self, url: _Optional[str] = ..., headers: _Optional[_Mapping[str, str]] = ..., body_template: _Optional[str] = ..., signing_secret: _Optional[str] = ...) -> None: ...

class EmailTarget(_message.Message):
    __slots__ = ("sender", "recipients", "subject_template", "body_template")
    SENDER_FIELD_NUMBER: _ClassVar[int]
    RECIPIENTS_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    BODY_TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    sender: str
    recipients: _containers.RepeatedScalarFieldContainer[str]
    subject_template: str
    body_template: str
    def __init__(self, sender: _Optional[str] = ..., recipients: _Optional[_Iterable[str]] = ..., subject_template: _Optional[str] = ..., body_template: _Optional[str] = ...) -> None: ...

class Reporter(_message.Message):
    __slots__ = ("id", "name", "active", "events", "outcomes", "webhook", "email")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    OUTCOMES_FIELD_NUMBER: _ClassVar[int]
    WEBHOOK_FIELD_NUMBER: _ClassVar[int]
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    active: bool
    events: _containers.RepeatedScalarFieldContainer[ReporterEvent]
    outcomes: _containers.RepeatedScalarFieldContainer[_run_pb2.RunState]
    webhook: WebhookTarget
    email: EmailTarget
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., active: _Optional[bool] = ..., events: _Optional[_Iterable[_Union[ReporterEvent, str]]] = ..., outcomes: _Optional[_Iterable[_Union[_run_pb2.RunState, str]]] = ..., webhook: _Optional[_Union[WebhookTarget, _Mapping]] = ..., email: _Optional[_Union[EmailTarget, _Mapping]] = ...) -> None: ...

class ScenarioSettings(_message.Message):
    __slots__ = ("active", "timeout_seconds", "memory_limit_bytes", "overlap_policy", "retry_policy", "triggers", "reporters", "run_as", "refuse_runs_when_inactive", "purge_after_seconds")
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    MEMORY_LIMIT_BYTES_FIELD_NUMBER: _ClassVar[int]
    OVERLAP_POLICY_FIELD_NUMBER: _ClassVar[int]
    RETRY_POLICY_FIELD_NUMBER: _ClassVar[int]
    TRIGGERS_FIELD_NUMBER: _ClassVar[int]
    REPORTERS_FIELD_NUMBER: _ClassVar[int]
    RUN_AS_FIELD_NUMBER: _ClassVar[int]
    REFUSE_RUNS_WHEN_INACTIVE_FIELD_NUMBER: _ClassVar[int]
    PURGE_AFTER_SECONDS_FIELD_NUMBER: _ClassVar[int]
    active: bool
    timeout_seconds: int
    memory_limit_bytes: int
    overlap_policy: OverlapPolicy
    retry_policy: RetryPolicy
    triggers: _containers.RepeatedCompositeFieldContainer[Trigger]
    reporters: _containers.RepeatedCompositeFieldContainer[Reporter]
    run_as: str
    refuse_runs_when_inactive: bool
    purge_after_seconds: int
    def __init__(self, active: _Optional[bool] = ..., timeout_seconds: _Optional[int] = ..., memory_limit_bytes: _Optional[int] = ..., overlap_policy: _Optional[_Union[OverlapPolicy, str]] = ..., retry_policy: _Optional[_Union[RetryPolicy, _Mapping]] = ..., triggers: _Optional[_Iterable[_Union[Trigger, _Mapping]]] = ..., reporters: _Optional[_Iterable[_Union[Reporter, _Mapping]]] = ..., run_as: _Optional[str] = ..., refuse_runs_when_inactive: _Optional[bool] = ..., purge_after_seconds: _Optional[int] = ...) -> None: ...

class RetryPolicy(_message.Message):
    __slots__ = ("maximum_attempts", "initial_backoff_seconds", "maximum_backoff_seconds", "backoff_coefficient", "jitter", "retry_on", "disabled")
    MAXIMUM_ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    INITIAL_BACKOFF_SECONDS_FIELD_NUMBER: _ClassVar[int]
    MAXIMUM_BACKOFF_SECONDS_FIELD_NUMBER: _ClassVar[int]
    BACKOFF_COEFFICIENT_FIELD_NUMBER: _ClassVar[int]
    JITTER_FIELD_NUMBER: _ClassVar[int]
    RETRY_ON_FIELD_NUMBER: _ClassVar[int]
    DISABLED_FIELD_NUMBER: _ClassVar[int]
    maximum_attempts: int
    initial_backoff_seconds: float
    maximum_backoff_seconds: float
    backoff_coefficient: float
    jitter: float
    retry_on: _containers.RepeatedScalarFieldContainer[_run_pb2.FailureReason]
    disabled: bool
    def __init__(self, maximum_attempts: _Optional[int] = ..., initial_backoff_seconds: _Optional[float] = ..., maximum_backoff_seconds: _Optional[float] = ..., backoff_coefficient: _Optional[float] = ..., jitter: _Optional[float] = ..., retry_on: _Optional[_Iterable[_Union[_run_pb2.FailureReason, str]]] = ..., disabled: _Optional[bool] = ...) -> None: ...

class Scenario(_message.Message):
    __slots__ = ("id", "name", "script", "settings", "create_time", "update_time", "revision", "project_key", "last_modified_by", "effective_run_as", "script_modified_by")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    SCRIPT_FIELD_NUMBER: _ClassVar[int]
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    PROJECT_KEY_FIELD_NUMBER: _ClassVar[int]
    LAST_MODIFIED_BY_FIELD_NUMBER: _ClassVar[int]
    EFFECTIVE_RUN_AS_FIELD_NUMBER: _ClassVar[int]
    SCRIPT_MODIFIED_BY_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    script: str
    settings: ScenarioSettings
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    revision: int
    project_key: str
    last_modified_by: str
    effective_run_as: str
    script_modified_by: str
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., script: _Optional[str] = ..., settings: _Optional[_Union[ScenarioSettings, _Mapping]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., revision: _Optional[int] = ..., project_key: _Optional[str] = ..., last_modified_by: _Optional[str] = ..., effective_run_as: _Optional[str] = ..., script_modified_by: _Optional[str] = ...) -> None: ...

class CreateScenarioRequest(_message.Message):
    __slots__ = ("scenario_id", "name", "script", "settings", "project_key", "validate_only")
    SCENARIO_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    SCRIPT_FIELD_NUMBER: _ClassVar[int]
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    PROJECT_KEY_FIELD_NUMBER: _ClassVar[int]
    VALIDATE_ONLY_FIELD_NUMBER: _ClassVar[int]
    scenario_id: str
    name: str
    script: str
    settings: ScenarioSettings
    project_key: str
    validate_only: bool
    def __init__(self, scenario_id: _Optional[str] = ..., name: _Optional[str] = ..., script: _Optional[str] = ..., settings: _Optional[_Union[ScenarioSettings, _Mapping]] = ..., project_key: _Optional[str] = ..., validate_only: _Optional[bool] = ...) -> None: ...

class CreateScenarioResponse(_message.Message):
    __slots__ = ("scenario",)
    SCENARIO_FIELD_NUMBER: _ClassVar[int]
    scenario: Scenario
    def __init__(self, scenario: _Optional[_Union[Scenario, _Mapping]] = ...) -> None: ...

class UpdateScenarioRequest(_message.Message):
    __slots__ = ("scenario_id", "name", "script", "settings", "expected_revision", "validate_only")
    SCENARIO_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    SCRIPT_FIELD_NUMBER: _ClassVar[int]
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_REVISION_FIELD_NUMBER: _ClassVar[int]
    VALIDATE_ONLY_FIELD_NUMBER: _ClassVar[int]
    scenario_id: str
    name: str
    script: str
    settings: ScenarioSettings
    expected_revision: int
    validate_only: bool
    def __init__(self, scenario_id: _Optional[str] = ..., name: _Optional[str] = ..., script: _Optional[str] = ..., settings: _Optional[_Union[ScenarioSettings, _Mapping]] = ..., expected_revision: _Optional[int] = ..., validate_only: _Optional[bool] = ...) -> None: ...

class UpdateScenarioResponse(_message.Message):
    __slots__ = ("scenario",)
    SCENARIO_FIELD_NUMBER: _ClassVar[int]
    scenario: Scenario
    def __init__(self, scenario: _Optional[_Union[Scenario, _Mapping]] = ...) -> None: ...

class GetScenarioRequest(_message.Message):
    __slots__ = ("scenario_id",)
    SCENARIO_ID_FIELD_NUMBER: _ClassVar[int]
    scenario_id: str
    def __init__(self, scenario_id: _Optional[str] = ...) -> None: ...

class GetScenarioResponse(_message.Message):
    __slots__ = ("scenario",)
    SCENARIO_FIELD_NUMBER: _ClassVar[int]
    scenario: Scenario
    def __init__(self, scenario: _Optional[_Union[Scenario, _Mapping]] = ...) -> None: ...

class ListScenariosRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "project_key")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    PROJECT_KEY_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    project_key: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., project_key: _Optional[str] = ...) -> None: ...

class ListScenariosResponse(_message.Message):
    __slots__ = ("scenarios", "next_page_token")
    SCENARIOS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    scenarios: _containers.RepeatedCompositeFieldContainer[Scenario]
    next_page_token: str
    def __init__(self, scenarios: _Optional[_Iterable[_Union[Scenario, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetScenarioStatusRequest(_message.Message):
    __slots__ = ("scenario_id",)
    SCENARIO_ID_FIELD_NUMBER: _ClassVar[int]
    scenario_id: str
    def __init__(self, scenario_id: _Optional[str] = ...) -> None: ...

class GetScenarioStatusResponse(_message.Message):
    __slots__ = ("running", "current_run_ids", "queued_fire_ids", "next_run_time", "next_run_trigger_id", "last_run_id", "last_outcome", "last_end_time")
    RUNNING_FIELD_NUMBER: _ClassVar[int]
    CURRENT_RUN_IDS_FIELD_NUMBER: _ClassVar[int]
    QUEUED_FIRE_IDS_FIELD_NUMBER: _ClassVar[int]
    NEXT_RUN_TIME_FIELD_NUMBER: _ClassVar[int]
    NEXT_RUN_TRIGGER_ID_FIELD_NUMBER: _ClassVar[int]
    LAST_RUN_ID_FIELD_NUMBER: _ClassVar[int]
    LAST_OUTCOME_FIELD_NUMBER: _ClassVar[int]
    LAST_END_TIME_FIELD_NUMBER: _ClassVar[int]
    running: bool
    current_run_ids: _containers.RepeatedScalarFieldContainer[str]
    queued_fire_ids: _containers.RepeatedScalarFieldContainer[str]
    next_run_time: _timestamp_pb2.Timestamp
    next_run_trigger_id: str
    last_run_id: str
    last_outcome: _run_pb2.RunState
    last_end_time: _timestamp_pb2.Timestamp
    def __init__(self, running: _Optional[bool] = ..., current_run_ids: _Optional[_Iterable[str]] = ..., queued_fire_ids: _Optional[_Iterable[str]] = ..., next_run_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., next_run_trigger_id: _Optional[str] = ..., last_run_id: _Optional[str] = ..., last_outcome: _Optional[_Union[_run_pb2.RunState, str]] = ..., last_end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class DeleteScenarioRequest(_message.Message):
    __slots__ = ("scenario_id",)
    SCENARIO_ID_FIELD_NUMBER: _ClassVar[int]
    scenario_id: str
    def __init__(self, scenario_id: _Optional[str] = ...) -> None: ...

class DeleteScenarioResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
