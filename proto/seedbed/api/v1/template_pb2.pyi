import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TemplateFormat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TEMPLATE_FORMAT_UNSPECIFIED: _ClassVar[TemplateFormat]
    TEMPLATE_FORMAT_YAML: _ClassVar[TemplateFormat]
    TEMPLATE_FORMAT_JSON: _ClassVar[TemplateFormat]
TEMPLATE_FORMAT_UNSPECIFIED: TemplateFormat
TEMPLATE_FORMAT_YAML: TemplateFormat
TEMPLATE_FORMAT_JSON: TemplateFormat

class Template(_message.Message):
    __slots__ = ("id", "source", "format", "canonical_json", "revision", "digest", "description", "field_names", "create_time", "update_time", "project_key", "shared")
    ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    CANONICAL_JSON_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    FIELD_NAMES_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    PROJECT_KEY_FIELD_NUMBER: _ClassVar[int]
    SHARED_FIELD_NUMBER: _ClassVar[int]
    id: str
    source: str
    format: TemplateFormat
    canonical_json: str
    revision: int
    digest: str
    description: str
    field_names: _containers.RepeatedScalarFieldContainer[str]
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    project_key: str
    shared: bool
    def __init__(self, id: _Optional[str] = ..., source: _Optional[str] = ..., format: _Optional[_Union[TemplateFormat, str]] = ..., canonical_json: _Optional[str] = ..., revision: _Optional[int] = ..., digest: _Optional[str] = ..., description: _Optional[str] = ..., field_names: _Optional[_Iterable[str]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., project_key: _Optional[str] = ..., shared: _Optional[bool] = ...) -> None: ...

class PutTemplateRequest(_message.Message):
    __slots__ = ("source", "format", "allow_update", "project_key", "shared", "expected_revision", "validate_only")
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    ALLOW_UPDATE_FIELD_NUMBER: _ClassVar[int]
    PROJECT_KEY_FIELD_NUMBER: _ClassVar[int]
    SHARED_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_REVISION_FIELD_NUMBER: _ClassVar[int]
    VALIDATE_ONLY_FIELD_NUMBER: _ClassVar[int]
    source: str
    format: TemplateFormat
    allow_update: bool
    project_key: str
    shared: bool
    expected_revision: int
    validate_only: bool
    def __init__(self, source: _Optional[str] = ..., format: _Optional[_Union[TemplateFormat, str]] = ..., allow_update: _Optional[bool] = ..., project_key: _Optional[str] = ..., shared: _Optional[bool] = ..., expected_revision: _Optional[int] = ..., validate_only: _Optional[bool] = ...) -> None: ...

class PutTemplateResponse(_message.Message):
    __slots__ = ("template", "created")
    TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    template: Template
    created: bool
    def __init__(self, template: _Optional[_Union[Template, _Mapping]] = ..., created: _Optional[bool] = ...) -> None: ...

class GetTemplateRequest(_message.Message):
    __slots__ = ("template_id", "version")
    TEMPLATE_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    template_id: str
    version: int
    def __init__(self, template_id: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class GetTemplateResponse(_message.Message):
    __slots__ = ("template",)
    TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    template: Template
    def __init__(self, template: _Optional[_Union[Template, _Mapping]] = ...) -> None: ...

class ListTemplatesRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "project_key")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    PROJECT_KEY_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    project_key: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., project_key: _Optional[str] = ...) -> None: ...

class ListTemplatesResponse(_message.Message):
    __slots__ = ("templates", "next_page_token")
    TEMPLATES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    templates: _containers.RepeatedCompositeFieldContainer[Template]
    next_page_token: str
    def __init__(self, templates: _Optional[_Iterable[_Union[Template, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class DeleteTemplateRequest(_message.Message):
    __slots__ = ("template_id",)
    TEMPLATE_ID_FIELD_NUMBER: _ClassVar[int]
    template_id: str
    def __init__(self, template_id: _Optional[str] = ...) -> None: ...

class DeleteTemplateResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class PreviewTemplateRequest(_message.Message):
    __slots__ = ("template_id", "source", "count", "seed", "project_key", "version")
    TEMPLATE_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    PROJECT_KEY_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    template_id: str
    source: str
    count: int
    seed: int
    project_key: str
    version: int
    def __init__(self, template_id: _Optional[str] = ..., source: _Optional[str] = ..., count: _Optional[int] = ..., seed: _Optional[int] = ..., project_key: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class PreviewTemplateResponse(_message.Message):
    __slots__ = ("rows_json", "faker_version")
    ROWS_JSON_FIELD_NUMBER: _ClassVar[int]
    FAKER_VERSION_FIELD_NUMBER: _ClassVar[int]
    rows_json: _containers.RepeatedScalarFieldContainer[str]
    faker_version: str
    def __init__(self, rows_json: _Optional[_Iterable[str]] = ..., faker_version: _Optional[str] = ...) -> None: ...

class TemplateVersion(_message.Message):
    __slots__ = ("template_id", "version", "digest", "description", "field_names", "create_time", "created_by", "project_key")
    TEMPLATE_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    FIELD_NAMES_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_FIELD_NUMBER: _ClassVar[int]
    PROJECT_KEY_FIELD_NUMBER: _ClassVar[int]
    template_id: str
    version: int
    digest: str
    description: str
    field_names: _containers.RepeatedScalarFieldContainer[str]
    create_time: _timestamp_pb2.Timestamp
    created_by: str
    project_key: str
    def __init__(self, template_id: _Optional[str] = ..., version: _Optional[int] = ..., digest: _Optional[str] = ..., description: _Optional[str] = ..., field_names: _Optional[_Iterable[str]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., created_by: _Optional[str] = ..., project_key: _Optional[str] = ...) -> None: ...

class TemplateVersionRef(_message.Message):
    __slots__ = ("template_id", "version", "pinned")
    TEMPLATE_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    PINNED_FIELD_NUMBER: _ClassVar[int]
    template_id: str
    version: int
    pinned: bool
    def __init__(self, template_id: _Optional[str] = ..., version: _Optional[int] = ..., pinned: _Optional[bool] = ...) -> None: ...

class ListTemplateVersionsRequest(_message.Message):
    __slots__ = ("template_id", "page_size", "page_token")
    TEMPLATE_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    template_id: str
    page_size: int
    page_token: str
    def __init__(self, template_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListTemplateVersionsResponse(_message.Message):
    __slots__ = ("versions", "next_page_token")
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    versions: _containers.RepeatedCompositeFieldContainer[TemplateVersion]
    next_page_token: str
    def __init__(self, versions: _Optional[_Iterable[_Union[TemplateVersion, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...
