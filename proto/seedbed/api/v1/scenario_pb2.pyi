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
OVERLAP_POLICY_UNSPECIFIED: OverlapPolicy
OVERLAP_POLICY_SKIP: OverlapPolicy
OVERLAP_POLICY_ALLOW_CONCURRENT: OverlapPolicy

class ScenarioSettings(_message.Message):
    __slots__ = ("active", "timeout_seconds", "memory_limit_bytes", "overlap_policy", "retry_policy")
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    MEMORY_LIMIT_BYTES_FIELD_NUMBER: _ClassVar[int]
    OVERLAP_POLICY_FIELD_NUMBER: _ClassVar[int]
    RETRY_POLICY_FIELD_NUMBER: _ClassVar[int]
    active: bool
    timeout_seconds: int
    memory_limit_bytes: int
    overlap_policy: OverlapPolicy
    retry_policy: RetryPolicy
    def __init__(self, active: _Optional[bool] = ..., timeout_seconds: _Optional[int] = ..., memory_limit_bytes: _Optional[int] = ..., overlap_policy: _Optional[_Union[OverlapPolicy, str]] = ..., retry_policy: _Optional[_Union[RetryPolicy, _Mapping]] = ...) -> None: ...

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
    __slots__ = ("id", "name", "script", "settings", "create_time", "update_time", "revision")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    SCRIPT_FIELD_NUMBER: _ClassVar[int]
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    script: str
    settings: ScenarioSettings
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    revision: int
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., script: _Optional[str] = ..., settings: _Optional[_Union[ScenarioSettings, _Mapping]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., revision: _Optional[int] = ...) -> None: ...

class CreateScenarioRequest(_message.Message):
    __slots__ = ("scenario_id", "name", "script", "settings")
    SCENARIO_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    SCRIPT_FIELD_NUMBER: _ClassVar[int]
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    scenario_id: str
    name: str
    script: str
    settings: ScenarioSettings
    def __init__(self, scenario_id: _Optional[str] = ..., name: _Optional[str] = ..., script: _Optional[str] = ..., settings: _Optional[_Union[ScenarioSettings, _Mapping]] = ...) -> None: ...

class CreateScenarioResponse(_message.Message):
    __slots__ = ("scenario",)
    SCENARIO_FIELD_NUMBER: _ClassVar[int]
    scenario: Scenario
    def __init__(self, scenario: _Optional[_Union[Scenario, _Mapping]] = ...) -> None: ...

class UpdateScenarioRequest(_message.Message):
    __slots__ = ("scenario_id", "name", "script", "settings")
    SCENARIO_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    SCRIPT_FIELD_NUMBER: _ClassVar[int]
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    scenario_id: str
    name: str
    script: str
    settings: ScenarioSettings
    def __init__(self, scenario_id: _Optional[str] = ..., name: _Optional[str] = ..., script: _Optional[str] = ..., settings: _Optional[_Union[ScenarioSettings, _Mapping]] = ...) -> None: ...

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
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListScenariosResponse(_message.Message):
    __slots__ = ("scenarios", "next_page_token")
    SCENARIOS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    scenarios: _containers.RepeatedCompositeFieldContainer[Scenario]
    next_page_token: str
    def __init__(self, scenarios: _Optional[_Iterable[_Union[Scenario, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class DeleteScenarioRequest(_message.Message):
    __slots__ = ("scenario_id",)
    SCENARIO_ID_FIELD_NUMBER: _ClassVar[int]
    scenario_id: str
    def __init__(self, scenario_id: _Optional[str] = ...) -> None: ...

class DeleteScenarioResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
