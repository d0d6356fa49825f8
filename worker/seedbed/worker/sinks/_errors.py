"""The sinks' exception tree (drawn in `seedbed.worker.sinks`, re-exported there).

Every error names the connection it happened on (`connection_id`) and never carries a secret: the
messages are built from the database's or the server's own words, never from the URL or headers, and
`redact` scrubs any secret that a driver might still echo.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from seedbed.worker.sinks._spec import PostResult

__all__ = [
    "ConfigurationError",
    "InvalidRequestError",
    "QuotaExceededError",
    "ResultTooLargeError",
    "RestError",
    "SerializationError",
    "SinkError",
    "TargetError",
    "redact",
]


def redact(text: str, secrets: Iterable[str]) -> str:
    """`text` with every non-trivial secret replaced by `***`."""
    for secret in secrets:
        if secret and len(secret) >= 3:
            text = text.replace(secret, "***")
    return text


class SinkError(Exception):
    """Base class of everything a sink raises. `connection_id` names the connection."""

    def __init__(self, message: str, *, connection_id: str = "") -> None:
        self.connection_id = connection_id
        super().__init__(f"{connection_id}: {message}" if connection_id else message)


class ConfigurationError(SinkError):
    """The connection's spec is unusable: unknown kind, missing or malformed option, bad URL."""


class InvalidRequestError(SinkError):
    """A call's arguments are wrong: an identifier, the rows' shape, a path, a file name."""


class SerializationError(InvalidRequestError):
    """A value in a row cannot be serialised for the target.

    `row` is the index of the row in the call, `field` the key, `type_name` the Python type found.
    """

    def __init__(self, *, connection_id: str, row: int, field: str, type_name: str, reason: str = "") -> None:
        self.row = row
        self.field = field
        self.type_name = type_name
        reason = reason or ("only str, int, float, bool, None and nested dict/list of those can be written")
        super().__init__(
            f"row {row}, field {field!r}: cannot serialise a value of type {type_name}: {reason}",
            connection_id=connection_id,
        )


class ResultTooLargeError(SinkError):
    """A read returned more than its row limit or byte limit (`limit_kind` "rows" or "bytes")."""

    def __init__(self, *, connection_id: str, limit_kind: str, limit: int, what: str) -> None:
        self.limit_kind = limit_kind
        self.limit = limit
        super().__init__(
            f"{what} returned more than {limit} {limit_kind}; narrow the query (WHERE, LIMIT, fewer "
            "columns) or read it in pages",
            connection_id=connection_id,
        )


class QuotaExceededError(SinkError):
    """A write would pass the bytes an attempt may write to files (`limit`, named by `setting`)."""

    def __init__(self, *, connection_id: str, limit: int, setting: str, written: int) -> None:
        self.limit = limit
        self.setting = setting
        self.written = written
        super().__init__(
            f"this run may write at most {limit} bytes to files ({setting}) and has written {written}: "
            "write less (fewer or smaller files) or ask the operator to raise the quota",
            connection_id=connection_id,
        )


class TargetError(SinkError):
    """The target database refused or failed an operation.

    Attributes: `operation` ("connect", "insert", "fetch", "execute", "commit"); `table`; `batch`
    (0-based batch number within the call) and `rows` (the batch's row range, start inclusive, end
    exclusive) and `row` (the exact failing row when the database says so: COPY does); the
    database's own words in `db_message` (and `detail`, `hint`); `sqlstate` (PostgreSQL's code, also
    through SQLAlchemy with psycopg); `db_code` (the driver's code otherwise: SQLite's error name,
    MySQL's error number); `ambiguous` when the COMMIT was sent but its outcome is unknown (the
    connection broke): the caller must check the target (the ledger) before writing again;
    `transient` when the failure says nothing about the request (the connection broke, the server
    is shutting down or starting, a serialization failure or deadlock): the same call may succeed
    once the target is back.
    """

    def __init__(
        self,
        *,
        connection_id: str,
        operation: str,
        db_message: str,
        table: str | None = None,
        batch: int | None = None,
        rows: tuple[int, int] | None = None,
        row: int | None = None,
        sqlstate: str | None = None,
        db_code: str | None = None,
        detail: str | None = None,
        hint: str | None = None,
        ambiguous: bool = False,
        transient: bool = False,
    ) -> None:
        self.operation = operation
        self.transient = transient or ambiguous
        self.db_message = db_message
        self.table = table
        self.batch = batch
        self.rows = rows
        self.row = row
        self.sqlstate = sqlstate
        self.db_code = db_code
        self.detail = detail
        self.hint = hint
        self.ambiguous = ambiguous
        where = operation
        if table is not None:
            where += f" into {table}" if operation == "insert" else f" on {table}"
        if batch is not None:
            where += f", batch {batch}"
        if rows is not None:
            last = rows[1] - 1
            where += f" (row {last})" if last == rows[0] else f" (rows {rows[0]}-{last})"
        if row is not None:
            where += f", at row {row}"
        text = f"{where} failed: {db_message}"
        if detail:
            text += f"; detail: {detail}"
        if hint:
            text += f"; hint: {hint}"
        code = ", ".join(x for x in (f"SQLSTATE {sqlstate}" if sqlstate else "", db_code or "") if x)
        if code:
            text += f" [{code}]"
        if ambiguous:
            text += " (the COMMIT outcome is unknown: check the target before writing again)"
        super().__init__(text, connection_id=connection_id)


class RestError(SinkError):
    """An HTTP target answered with an error, or could not be reached.

    Attributes: `status` (None when no response arrived: connect error, timeout), `method`, `path`
    (the URL path, never the query or headers), `body` (an excerpt of the response, at most 1 KiB),
    `index` (the row in single mode or batch in batch mode that failed), `completed` (rows accepted
    before it), `attempts`, and `ambiguous` when the request may have been applied (a timeout or 5xx
    after it was sent) and was not retried because the target is not idempotent. `partial`, for a
    post: the requests before the failing one, which did create their rows (`PostResult`: their
    rows and responses), so the caller can record what a purge must undo; None for other calls.
    """

    def __init__(
        self,
        *,
        connection_id: str,
        method: str,
        path: str,
        reason: str,
        status: int | None = None,
        body: str = "",
        index: int | None = None,
        completed: int = 0,
        attempts: int = 1,
        ambiguous: bool = False,
    ) -> None:
        self.status = status
        self.method = method
        self.path = path
        self.body = body
        self.index = index
        self.completed = completed
        self.attempts = attempts
        self.ambiguous = ambiguous
        self.partial: PostResult | None = None
        head = f"{method} {path}"
        if status is not None:
            head += f" answered {status}"
        text = f"{head}: {reason}"
        if index is not None:
            text += f" (request {index}, {completed} rows accepted before it"
            text += f", {attempts} attempt{'s' if attempts != 1 else ''})"
        if ambiguous:
            text += "; the request may have been applied and the target is not idempotent: not retried"
        if body:
            text += f"\n--- response body (excerpt) ---\n{body}"
        super().__init__(text, connection_id=connection_id)
