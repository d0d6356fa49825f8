import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ConnectionKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CONNECTION_KIND_UNSPECIFIED: _ClassVar[ConnectionKind]
    CONNECTION_KIND_POSTGRESQL: _ClassVar[ConnectionKind]
    CONNECTION_KIND_SQL: _ClassVar[ConnectionKind]
    CONNECTION_KIND_REST: _ClassVar[ConnectionKind]
    CONNECTION_KIND_FILE: _ClassVar[ConnectionKind]
CONNECTION_KIND_UNSPECIFIED: ConnectionKind
CONNECTION_KIND_POSTGRESQL: ConnectionKind
CONNECTION_KIND_SQL: ConnectionKind
CONNECTION_KIND_REST: ConnectionKind
CONNECTION_KIND_FILE: ConnectionKind

class SecretSource(_message.Message):
    __slots__ = ("value", "env", "file")
    VALUE_FIELD_NUMBER: _ClassVar[int]
    ENV_FIELD_NUMBER: _ClassVar[int]
    FILE_FIELD_NUMBER: _ClassVar[int]
    value: str
    env: str
    file: str
    def __init__(self, value: _Optional[str] = ..., env: _Optional[str] = ..., file: _Optional[str] = ...) -> None: ...

class RestOptions(_message.Message):
    __slots__ = ("base_url", "headers", "auth_header", "batch_size", "timeout_seconds", "idempotent", "undo", "undo_id_field")
    class HeadersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    BASE_URL_FIELD_NUMBER: _ClassVar[int]
    HEADERS_FIELD_NUMBER: _ClassVar[int]
    AUTH_HEADER_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENT_FIELD_NUMBER: _ClassVar[int]
    UNDO_FIELD_NUMBER: _ClassVar[int]
    UNDO_ID_FIELD_FIELD_NUMBER: _ClassVar[int]
    base_url: str
    headers: _containers.ScalarMap[str, str]
    auth_header: str
    batch_size: int
    timeout_seconds: int
    idempotent: bool
    undo: str
    undo_id_field: str
    def __init__(self, base_url: _Optional[str] = ..., headers: _Optional[_Mapping[str, str]] = ..., auth_header: _Optional[str] = ..., batch_size: _Optional[int] = ..., timeout_seconds: _Optional[int] = ..., idempotent: _Optional[bool] = ..., undo: _Optional[str] = ..., undo_id_field: _Optional[str] = ...) -> None: ...

class BulkOptions(_message.Message):
    __slots__ = ("writers", "shard_rows", "max_writers")
    WRITERS_FIELD_NUMBER: _ClassVar[int]
    SHARD_ROWS_FIELD_NUMBER: _ClassVar[int]
    MAX_WRITERS_FIELD_NUMBER: _ClassVar[int]
    writers: int
    shard_rows: int
    max_writers: int
    def __init__(self, writers: _Optional[int] = ..., shard_rows: _Optional[int] = ..., max_writers: _Optional[int] = ...) -> None: ...

class Connection(_message.Message):
    __slots__ = ("id", "kind", "description", "url", "rest", "secret", "create_time", "update_time", "allowed_users", "project_key", "shared", "bulk")
    ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    REST_FIELD_NUMBER: _ClassVar[int]
    SECRET_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    ALLOWED_USERS_FIELD_NUMBER: _ClassVar[int]
    PROJECT_KEY_FIELD_NUMBER: _ClassVar[int]
    SHARED_FIELD_NUMBER: _ClassVar[int]
    BULK_FIELD_NUMBER: _ClassVar[int]
    id: str
    kind: ConnectionKind
    description: str
    url: str
    rest: RestOptions
    secret: str
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    allowed_users: _containers.RepeatedScalarFieldContainer[str]
    project_key: str
    shared: bool
    bulk: BulkOptions
    def __init__(self, id: _Optional[str] = ..., kind: _Optional[_Union[ConnectionKind, str]] = ..., description: _Optional[str] = ..., url: _Optional[str] = ..., rest: _Optional[_Union[RestOptions, _Mapping]] = ..., secret: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., allowed_users: _Optional[_Iterable[str]] = ..., project_key: _Optional[str] = ..., shared: _Optional[bool] = ..., bulk: _Optional[_Union[BulkOptions, _Mapping]] = ...) -> None: ...

class CreateConnectionRequest(_message.Message):
    __slots__ = ("connection_id", "kind", "description", "url", "rest", "secret", "allow_update", "allowed_users", "project_key", "shared", "bulk")
    CONNECTION_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    REST_FIELD_NUMBER: _ClassVar[int]
    SECRET_FIELD_NUMBER: _ClassVar[int]
    ALLOW_UPDATE_FIELD_NUMBER: _ClassVar[int]
    ALLOWED_USERS_FIELD_NUMBER: _ClassVar[int]
    PROJECT_KEY_FIELD_NUMBER: _ClassVar[int]
    SHARED_FIELD_NUMBER: _ClassVar[int]
    BULK_FIELD_NUMBER: _ClassVar[int]
    connection_id: str
    kind: ConnectionKind
    description: str
    url: str
    rest: RestOptions
    secret: SecretSource
    allow_update: bool
    allowed_users: _containers.RepeatedScalarFieldContainer[str]
    project_key: str
    shared: bool
    bulk: BulkOptions
    def __init__(self, connection_id: _Optional[str] = ..., kind: _Optional[_Union[ConnectionKind, str]] = ..., description: _Optional[str] = ..., url: _Optional[str] = ..., rest: _Optional[_Union[RestOptions, _Mapping]] = ..., secret: _Optional[_Union[SecretSource, _Mapping]] = ..., allow_update: _Optional[bool] = ..., allowed_users: _Optional[_Iterable[str]] = ..., project_key: _Optional[str] = ..., shared: _Optional[bool] = ..., bulk: _Optional[_Union[BulkOptions, _Mapping]] = ...) -> None: ...

class CreateConnectionResponse(_message.Message):
    __slots__ = ("connection",)
    CONNECTION_FIELD_NUMBER: _ClassVar[int]
    connection: Connection
    def __init__(self, connection: _Optional[_Union[Connection, _Mapping]] = ...) -> None: ...

class GetConnectionRequest(_message.Message):
    __slots__ = ("connection_id",)
    CONNECTION_ID_FIELD_NUMBER: _ClassVar[int]
    connection_id: str
    def __init__(self, connection_id: _Optional[str] = ...) -> None: ...

class GetConnectionResponse(_message.Message):
    __slots__ = ("connection",)
    CONNECTION_FIELD_NUMBER: _ClassVar[int]
    connection: Connection
    def __init__(self, connection: _Optional[_Union[Connection, _Mapping]] = ...) -> None: ...

class ListConnectionsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "project_key")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    PROJECT_KEY_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    project_key: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., project_key: _Optional[str] = ...) -> None: ...

class ListConnectionsResponse(_message.Message):
    __slots__ = ("connections", "next_page_token")
    CONNECTIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    connections: _containers.RepeatedCompositeFieldContainer[Connection]
    next_page_token: str
    def __init__(self, connections: _Optional[_Iterable[_Union[Connection, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class DeleteConnectionRequest(_message.Message):
    __slots__ = ("connection_id",)
    CONNECTION_ID_FIELD_NUMBER: _ClassVar[int]
    connection_id: str
    def __init__(self, connection_id: _Optional[str] = ...) -> None: ...

class DeleteConnectionResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class TestConnectionRequest(_message.Message):
    __slots__ = ("connection_id",)
    CONNECTION_ID_FIELD_NUMBER: _ClassVar[int]
    connection_id: str
    def __init__(self, connection_id: _Optional[str] = ...) -> None: ...

class TestConnectionResponse(_message.Message):
    __slots__ = ("ok", "message", "latency_seconds")
    OK_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    LATENCY_SECONDS_FIELD_NUMBER: _ClassVar[int]
    ok: bool
    message: str
    latency_seconds: float
    def __init__(self, ok: _Optional[bool] = ..., message: _Optional[str] = ..., latency_seconds: _Optional[float] = ...) -> None: ...
