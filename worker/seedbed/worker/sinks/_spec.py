"""Value types shared by the sinks: the connection spec, results, the `Sink` base classes, and the
strict reader that turns a spec's options into a sink's typed settings."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from types import MappingProxyType, TracebackType
from typing import Any, ClassVar, Generic, Literal, Self, TypeVar, get_args

from seedbed.worker.sinks._errors import ConfigurationError

__all__ = [
    "ConnectionKind",
    "ConnectionSpec",
    "InsertResult",
    "OnConflict",
    "OptionReader",
    "PostResult",
    "Row",
    "Sink",
    "SqlSink",
    "WriteResult",
]

T = TypeVar("T")

ConnectionKind = Literal["postgresql", "sql", "rest", "file"]
OnConflict = Literal["ignore", "update"]
Row = Mapping[str, Any]

_ID = re.compile(r"[A-Za-z0-9_.:-]{1,100}")


@dataclass(frozen=True)
class ConnectionSpec:
    """One connection, its secrets already resolved by the caller.

    `options` by kind (all durations in seconds, all names as in the scenario's settings):

    - "postgresql": url (required, `postgresql://` or `postgresql+psycopg://`), password (overrides
      the URL's, needs no percent-encoding), batch_size, copy_batch_size, fetch_max_rows,
      fetch_max_bytes, connect_timeout_seconds, statement_timeout_seconds;
    - "sql": url (any SQLAlchemy URL), password (as above), batch_size, fetch_max_rows,
      fetch_max_bytes;
    - "rest": base_url (required), headers, batch_size, timeout_seconds, idempotent, max_retries,
      backoff_base_seconds, backoff_max_seconds, retry_after_max_seconds, max_response_bytes, undo,
      undo_id_field;
    - "file": none.

    The repr shows option names only, never values: URLs and headers hold secrets.
    """

    id: str
    kind: ConnectionKind
    options: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=True)

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not _ID.fullmatch(self.id):
            raise ConfigurationError(
                f"connection id {self.id!r} must be 1-100 characters of letters, digits and _.:-"
            )
        if self.kind not in get_args(ConnectionKind):
            raise ConfigurationError(
                f"unknown connection kind {self.kind!r}; expected one of "
                + ", ".join(get_args(ConnectionKind)),
                connection_id=self.id,
            )
        object.__setattr__(self, "options", MappingProxyType(dict(self.options)))

    def __hash__(self) -> int:  # the options mapping is not hashable; id and kind suffice
        return hash((self.id, self.kind))

    def __repr__(self) -> str:
        return f"ConnectionSpec(id={self.id!r}, kind={self.kind!r}, options=<{', '.join(self.options)}>)"


@dataclass(frozen=True)
class InsertResult:
    """`count`: rows the target reports as written (inserted, or inserted + updated with
    on_conflict="update"; MySQL counts an updated row twice). `rows_returned`: the `returning`
    columns of each written row, in input order, or None when nothing was asked."""

    count: int
    rows_returned: list[dict[str, Any]] | None = None


@dataclass(frozen=True)
class PostResult:
    """`count`: rows accepted; `responses`: the parsed JSON body of each request (None when the body
    was empty or not JSON), one per row in single mode, one per batch in batch mode."""

    count: int
    responses: list[Any]


@dataclass(frozen=True)
class WriteResult:
    """The file written: its final path, the rows written by this call, its size after the write."""

    path: Path
    count: int
    size_bytes: int


class Sink(ABC):
    """A connection to one target, for one attempt. Not shared between threads at the same time."""

    kind: ClassVar[ConnectionKind]

    def __init__(self, spec: ConnectionSpec) -> None:
        self.spec = spec
        self.connection_id = spec.id

    @abstractmethod
    def close(self) -> None:
        """Release the connection. Idempotent."""

    def interrupt(self) -> None:  # noqa: B027 - a no-op for targets with nothing to stop
        """From another thread, when the attempt ends (abort, deadline) under a call in flight:
        stop it where the target allows, and let nothing commit from now on."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.connection_id!r})"


ConnT = TypeVar("ConnT")


class SqlSink(Sink, Generic[ConnT]):
    """A database target: `insert`, `fetch`, `execute`. `ConnT` is the connection type the
    `in_transaction` hook receives (psycopg's, or SQLAlchemy's)."""

    @abstractmethod
    def insert(
        self,
        table: str,
        rows: Sequence[Row],
        *,
        on_conflict: OnConflict | None = None,
        key: Sequence[str] | None = None,
        returning: Sequence[str] | None = None,
        in_transaction: Callable[[ConnT, InsertResult], None] | None = None,
    ) -> InsertResult:
        """Write `rows` into `table` in one transaction; `in_transaction` runs in it after the rows
        are written and before COMMIT, with what was written (its exception rolls everything back
        and propagates). The write ledger records its entry there."""

    @abstractmethod
    def fetch(
        self, sql_or_table: str, params: Any = None, *, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """Rows of a query (or of `SELECT * FROM table` for a bare table name), read-only, capped by
        `limit` rows (at most the connection's fetch_max_rows) and fetch_max_bytes."""

    @abstractmethod
    def execute(
        self, sql: str, params: Any = None, *, in_transaction: Callable[[ConnT, int], None] | None = None
    ) -> int:
        """Run one statement in its own transaction; the affected row count (-1 when unknown).
        `in_transaction` runs after it, before COMMIT, with the count."""

    @abstractmethod
    def transact(self, body: Callable[[ConnT], T], *, operation: str) -> T:
        """Run `body` with the connection in a transaction of its own and COMMIT; driver errors
        become `TargetError` (transient when the connection broke or the server is restarting)."""

    def db_attributes(self) -> Mapping[str, str | int]:
        """The database as a write's span names it (OpenTelemetry's database conventions:
        `db.system.name`, `db.namespace`, `server.address`, `server.port`), never a credential."""
        return {}

    def write_operation(self, *, on_conflict: OnConflict | None, returning: Sequence[str] | None) -> str:
        """The statement `insert` runs with these options (a batch span's `db.operation.name`)."""
        return "INSERT"


class OptionReader:
    """Reads a spec's options into typed values; `done()` refuses the names nobody read."""

    def __init__(self, spec: ConnectionSpec) -> None:
        self._spec = spec
        self._seen: set[str] = set()

    def _error(self, name: str, expected: str) -> ConfigurationError:
        value = self._spec.options[name]
        return ConfigurationError(
            f"option {name!r} must be {expected}, got a {type(value).__name__}",
            connection_id=self._spec.id,
        )

    def _get(self, name: str, required: bool) -> Any:
        self._seen.add(name)
        if name not in self._spec.options or self._spec.options[name] is None:
            if required:
                raise ConfigurationError(
                    f"option {name!r} is required for a {self._spec.kind} connection",
                    connection_id=self._spec.id,
                )
            return None
        return self._spec.options[name]

    def text(self, name: str, *, required: bool = False, default: str = "") -> str:
        value = self._get(name, required)
        if value is None:
            return default
        if not isinstance(value, str) or not value:
            raise self._error(name, "a non-empty string")
        return value

    def integer(self, name: str, *, default: int, minimum: int = 1, maximum: int = 2**31) -> int:
        value = self._get(name, False)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            raise self._error(name, "an integer")
        if not minimum <= value <= maximum:
            raise ConfigurationError(
                f"option {name!r} must be between {minimum} and {maximum}, got {value}",
                connection_id=self._spec.id,
            )
        return value

    def duration(self, name: str, *, default: timedelta, minimum: timedelta = timedelta(0)) -> timedelta:
        """A duration given in seconds (the option's name ends in `_seconds`)."""
        value = self._get(name, False)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self._error(name, "a number of seconds")
        if not minimum.total_seconds() <= value <= 10**7:
            raise ConfigurationError(
                f"option {name!r} must be between {minimum.total_seconds()} and 1e7 seconds, got {value}",
                connection_id=self._spec.id,
            )
        return timedelta(seconds=value)

    def boolean(self, name: str, *, default: bool) -> bool:
        value = self._get(name, False)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self._error(name, "true or false")
        return value

    def string_map(self, name: str) -> dict[str, str]:
        value = self._get(name, False)
        if value is None:
            return {}
        if not isinstance(value, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        ):
            raise self._error(name, "a mapping of strings to strings")
        return dict(value)

    def done(self) -> None:
        unknown = sorted(set(self._spec.options) - self._seen)
        if unknown:
            raise ConfigurationError(
                f"unknown option{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} for a "
                f"{self._spec.kind} connection; known: {', '.join(sorted(self._seen))}",
                connection_id=self._spec.id,
            )
