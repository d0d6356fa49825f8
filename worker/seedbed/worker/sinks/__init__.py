"""The target side of connections: sinks that write a scenario's rows into PostgreSQL, any
SQLAlchemy database, REST APIs and files, and read rows back. Trusted worker code: the agent calls
them with secrets already resolved; nothing here reaches the sandbox.

    spec = ConnectionSpec("conn_pg", "postgresql", {"url": "postgresql://…"})
    with open_sink(spec, artifacts_dir=attempt_dir / "artifacts") as sink:
        result = sink.insert("customers", rows, returning=["id"], in_transaction=write_ledger_row)
        rows = sink.fetch("SELECT id FROM customers WHERE country = %s", ["FR"], limit=1000)

Sinks: `PostgresSink` ("postgresql": psycopg 3, COPY for plain inserts, multi-row INSERT for
upserts and RETURNING), `SqlAlchemySink` ("sql": any SQLAlchemy URL through Core), `RestSink`
("rest": httpx, Idempotency-Key on every request, retries only where they are safe), `FileSink`
("file": CSV / JSON Lines in its connection's folder of the run's artifacts directory,
`connection_folder`; atomic rename). One database call is one
transaction; its `in_transaction` hook runs inside it, after the rows and before COMMIT, so a
ledger row commits or rolls back with them. Query parameters follow the driver: psycopg's `%s` /
`%(name)s` on "postgresql", SQLAlchemy's `:name` (a mapping) on "sql".

Exceptions (each carries `connection_id`; none carries a password or header value):

    SinkError
    ├── ConfigurationError       the spec is unusable: unknown kind or option, bad URL, missing url
    ├── InvalidRequestError      a call's arguments are wrong: identifier, rows' shape, path, name
    │   └── SerializationError   a value cannot be serialised (`row`, `field`, `type_name`)
    ├── ResultTooLargeError      a fetch passed its row or byte limit (`limit_kind`, `limit`)
    ├── QuotaExceededError       file writes passed the attempt's byte quota (`limit`, `setting`)
    ├── TargetError              the database (or file system) failed: `operation`, `table`,
    │                            `batch`, `rows`, `row`, `db_message`, `sqlstate`, `db_code`,
    │                            `detail`, `hint`, `ambiguous` (COMMIT outcome unknown)
    └── RestError                an HTTP target failed: `status`, `method`, `path`, `body` (≤ 1 KiB),
                                 `index`, `completed`, `attempts`, `ambiguous` (may have applied)

Rejected: one generic `write()` for every kind (the kinds differ in what a write means: rows and a
transaction, requests and idempotency keys, a file and a rename); SQLAlchemy for PostgreSQL too
(COPY through psycopg measured ~6x faster than Core's executemany, see tests/bench/bench_insert.py).
"""

from seedbed.worker.sinks._errors import (
    ConfigurationError,
    InvalidRequestError,
    QuotaExceededError,
    RestError,
    ResultTooLargeError,
    SerializationError,
    SinkError,
    TargetError,
)
from seedbed.worker.sinks._files import FileFormat, FileQuota, FileSink, connection_folder
from seedbed.worker.sinks._open import open_sink
from seedbed.worker.sinks._postgres import PostgresSettings, PostgresSink
from seedbed.worker.sinks._rest import PostMode, RestSettings, RestSink, RetryPolicy
from seedbed.worker.sinks._spec import (
    ConnectionKind,
    ConnectionSpec,
    InsertResult,
    OnConflict,
    PostResult,
    Row,
    Sink,
    SqlSink,
    WriteResult,
)
from seedbed.worker.sinks._sqlalchemy import SqlAlchemySettings, SqlAlchemySink

__all__ = [
    "ConfigurationError",
    "ConnectionKind",
    "ConnectionSpec",
    "FileFormat",
    "FileQuota",
    "FileSink",
    "connection_folder",
    "InsertResult",
    "InvalidRequestError",
    "OnConflict",
    "PostMode",
    "PostResult",
    "PostgresSettings",
    "PostgresSink",
    "QuotaExceededError",
    "RestError",
    "RestSettings",
    "RestSink",
    "ResultTooLargeError",
    "RetryPolicy",
    "Row",
    "SerializationError",
    "Sink",
    "SinkError",
    "SqlAlchemySettings",
    "SqlAlchemySink",
    "SqlSink",
    "TargetError",
    "WriteResult",
    "open_sink",
]
