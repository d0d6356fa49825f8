from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class RunInputs(_message.Message):
    __slots__ = ("image", "versions", "template_versions", "connection_aliases", "ledger_run_id", "scenario_revision")
    class VersionsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class TemplateVersionsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    class ConnectionAliasesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_VERSIONS_FIELD_NUMBER: _ClassVar[int]
    CONNECTION_ALIASES_FIELD_NUMBER: _ClassVar[int]
    LEDGER_RUN_ID_FIELD_NUMBER: _ClassVar[int]
    SCENARIO_REVISION_FIELD_NUMBER: _ClassVar[int]
    image: str
    versions: _containers.ScalarMap[str, str]
    template_versions: _containers.ScalarMap[str, int]
    connection_aliases: _containers.ScalarMap[str, str]
    ledger_run_id: str
    scenario_revision: int
    def __init__(self, image: _Optional[str] = ..., versions: _Optional[_Mapping[str, str]] = ..., template_versions: _Optional[_Mapping[str, int]] = ..., connection_aliases: _Optional[_Mapping[str, str]] = ..., ledger_run_id: _Optional[str] = ..., scenario_revision: _Optional[int] = ...) -> None: ...

class ReplayPin(_message.Message):
    __slots__ = ("connection_aliases", "ledger_run_id", "image", "versions", "replayed_from")
    class ConnectionAliasesEntry(_message.Message):
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
    CONNECTION_ALIASES_FIELD_NUMBER: _ClassVar[int]
    LEDGER_RUN_ID_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    REPLAYED_FROM_FIELD_NUMBER: _ClassVar[int]
    connection_aliases: _containers.ScalarMap[str, str]
    ledger_run_id: str
    image: str
    versions: _containers.ScalarMap[str, str]
    replayed_from: str
    def __init__(self, connection_aliases: _Optional[_Mapping[str, str]] = ..., ledger_run_id: _Optional[str] = ..., image: _Optional[str] = ..., versions: _Optional[_Mapping[str, str]] = ..., replayed_from: _Optional[str] = ...) -> None: ...
