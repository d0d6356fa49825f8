from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DryRunProblemKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DRY_RUN_PROBLEM_KIND_UNSPECIFIED: _ClassVar[DryRunProblemKind]
    DRY_RUN_PROBLEM_KIND_MISSING_TABLE: _ClassVar[DryRunProblemKind]
    DRY_RUN_PROBLEM_KIND_MISSING_COLUMN: _ClassVar[DryRunProblemKind]
    DRY_RUN_PROBLEM_KIND_TYPE_MISMATCH: _ClassVar[DryRunProblemKind]
    DRY_RUN_PROBLEM_KIND_NOT_NULL: _ClassVar[DryRunProblemKind]
    DRY_RUN_PROBLEM_KIND_FOREIGN_KEY: _ClassVar[DryRunProblemKind]
    DRY_RUN_PROBLEM_KIND_DUPLICATE_KEY: _ClassVar[DryRunProblemKind]
    DRY_RUN_PROBLEM_KIND_CHECK: _ClassVar[DryRunProblemKind]
    DRY_RUN_PROBLEM_KIND_TARGET_ERROR: _ClassVar[DryRunProblemKind]
DRY_RUN_PROBLEM_KIND_UNSPECIFIED: DryRunProblemKind
DRY_RUN_PROBLEM_KIND_MISSING_TABLE: DryRunProblemKind
DRY_RUN_PROBLEM_KIND_MISSING_COLUMN: DryRunProblemKind
DRY_RUN_PROBLEM_KIND_TYPE_MISMATCH: DryRunProblemKind
DRY_RUN_PROBLEM_KIND_NOT_NULL: DryRunProblemKind
DRY_RUN_PROBLEM_KIND_FOREIGN_KEY: DryRunProblemKind
DRY_RUN_PROBLEM_KIND_DUPLICATE_KEY: DryRunProblemKind
DRY_RUN_PROBLEM_KIND_CHECK: DryRunProblemKind
DRY_RUN_PROBLEM_KIND_TARGET_ERROR: DryRunProblemKind

class DryRunProblem(_message.Message):
    __slots__ = ("kind", "row", "field", "value", "message", "call")
    KIND_FIELD_NUMBER: _ClassVar[int]
    ROW_FIELD_NUMBER: _ClassVar[int]
    FIELD_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    CALL_FIELD_NUMBER: _ClassVar[int]
    kind: DryRunProblemKind
    row: int
    field: str
    value: str
    message: str
    call: int
    def __init__(self, kind: _Optional[_Union[DryRunProblemKind, str]] = ..., row: _Optional[int] = ..., field: _Optional[str] = ..., value: _Optional[str] = ..., message: _Optional[str] = ..., call: _Optional[int] = ...) -> None: ...

class DryRunTarget(_message.Message):
    __slots__ = ("connection_id", "operation", "target", "rows", "rows_checked", "problem_count", "problems", "unchecked")
    CONNECTION_ID_FIELD_NUMBER: _ClassVar[int]
    OPERATION_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    ROWS_CHECKED_FIELD_NUMBER: _ClassVar[int]
    PROBLEM_COUNT_FIELD_NUMBER: _ClassVar[int]
    PROBLEMS_FIELD_NUMBER: _ClassVar[int]
    UNCHECKED_FIELD_NUMBER: _ClassVar[int]
    connection_id: str
    operation: str
    target: str
    rows: int
    rows_checked: int
    problem_count: int
    problems: _containers.RepeatedCompositeFieldContainer[DryRunProblem]
    unchecked: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, connection_id: _Optional[str] = ..., operation: _Optional[str] = ..., target: _Optional[str] = ..., rows: _Optional[int] = ..., rows_checked: _Optional[int] = ..., problem_count: _Optional[int] = ..., problems: _Optional[_Iterable[_Union[DryRunProblem, _Mapping]]] = ..., unchecked: _Optional[_Iterable[str]] = ...) -> None: ...

class DryRunReport(_message.Message):
    __slots__ = ("targets", "problem_count", "dropped_targets")
    TARGETS_FIELD_NUMBER: _ClassVar[int]
    PROBLEM_COUNT_FIELD_NUMBER: _ClassVar[int]
    DROPPED_TARGETS_FIELD_NUMBER: _ClassVar[int]
    targets: _containers.RepeatedCompositeFieldContainer[DryRunTarget]
    problem_count: int
    dropped_targets: int
    def __init__(self, targets: _Optional[_Iterable[_Union[DryRunTarget, _Mapping]]] = ..., problem_count: _Optional[int] = ..., dropped_targets: _Optional[int] = ...) -> None: ...
