"""Checking what a script asks to write, before any of it reaches a target: identifiers (table,
schema, columns) and rows (one shape per call, JSON-compatible values).

Identifiers are checked against a strict pattern *and* quoted when they are put into SQL: the check
gives a clear error for `customers; DROP TABLE x` instead of a puzzling "relation does not exist",
the quoting makes an injection impossible even if the pattern were ever loosened. Names are used
exactly as given (quoted identifiers are case-sensitive in PostgreSQL): `Customers` is not
`customers`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from seedbed.worker.sinks._errors import InvalidRequestError, ResultTooLargeError, SerializationError

__all__ = [
    "PreparedRows",
    "check_limit",
    "check_name",
    "check_names",
    "collect_rows",
    "encode_json_row",
    "find_nul",
    "is_table_name",
    "nul_error",
    "prepare_rows",
    "split_table",
    "to_json",
]

# A letter or underscore, then letters, digits or underscores (Unicode letters allowed), at most 63
# bytes: PostgreSQL's limit (longer names are silently truncated there), within MySQL's and SQLite's.
_NAME = re.compile(r"[^\W\d]\w*")
_MAX_NAME_BYTES = 63
_FAST = frozenset({str, int, float, bool, type(None)})


def check_name(name: object, what: str, connection_id: str) -> str:
    """`name` if it is a plain identifier, else InvalidRequestError naming `what` it was for."""
    if not isinstance(name, str) or not _NAME.fullmatch(name) or len(name.encode()) > _MAX_NAME_BYTES:
        raise InvalidRequestError(
            f"invalid {what} name {name!r}: use letters, digits and underscores, starting with a "
            f"letter or underscore, at most {_MAX_NAME_BYTES} bytes",
            connection_id=connection_id,
        )
    return name


def check_names(names: Sequence[str] | None, what: str, connection_id: str) -> list[str] | None:
    """Each name checked; None stays None; an empty list or a bare string is refused."""
    if names is None:
        return None
    if isinstance(names, str) or not isinstance(names, Sequence) or not names:
        raise InvalidRequestError(
            f"{what} must be a non-empty list of column names, got {names!r}", connection_id=connection_id
        )
    checked = [check_name(n, f"{what} column", connection_id) for n in names]
    if len(set(checked)) != len(checked):
        raise InvalidRequestError(f"{what} names a column twice: {checked}", connection_id=connection_id)
    return checked


def split_table(table: object, connection_id: str) -> tuple[str | None, str]:
    """`"table"` → (None, "table"); `"schema.table"` → ("schema", "table"); anything else refused."""
    if not isinstance(table, str):
        raise InvalidRequestError(f"table must be a string, got {table!r}", connection_id=connection_id)
    parts = table.split(".")
    if len(parts) > 2:
        raise InvalidRequestError(
            f"invalid table name {table!r}: expected 'table' or 'schema.table'", connection_id=connection_id
        )
    if len(parts) == 2:
        return check_name(parts[0], "schema", connection_id), check_name(parts[1], "table", connection_id)
    return None, check_name(parts[0], "table", connection_id)


def to_json(value: Any, *, connection_id: str, row: int, field: str) -> str:
    """A nested dict/list as compact JSON text, or SerializationError naming where it failed."""
    try:
        return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise SerializationError(
            connection_id=connection_id,
            row=row,
            field=field,
            type_name=type(value).__name__,
            reason=f"nested value is not JSON: {exc}",
        ) from exc


@dataclass(frozen=True)
class PreparedRows:
    """The rows of one call: the column names (the first row's keys, in its order) and one tuple of
    values per row, nested dicts/lists already turned into JSON text."""

    columns: list[str]
    values: list[tuple[Any, ...]]


def prepare_rows(
    rows: Sequence[Mapping[str, Any]], *, connection_id: str, forbid_nul: bool, sql_names: bool = True
) -> PreparedRows:
    """Check that `rows` share one shape and hold only JSON-compatible values, and lay them out.

    `forbid_nul`: refuse strings holding U+0000 (the PostgreSQL sink leaves that check to psycopg,
    which refuses them while sending, and names the row with `find_nul`). `sql_names`: the keys must
    be SQL identifiers (else any non-empty string, as for a CSV header).

    The loop is the hot path of every write (~1.4 µs a row of 8 fields): `itemgetter` and one
    subset test per row; anything unusual falls back to the slow path that names the problem.
    """
    if isinstance(rows, str | bytes | Mapping) or not isinstance(rows, Sequence):
        raise InvalidRequestError(
            f"rows must be a list of objects, got a {type(rows).__name__}", connection_id=connection_id
        )
    if not rows:
        return PreparedRows([], [])
    first = rows[0]
    if not isinstance(first, Mapping) or not first:
        raise InvalidRequestError("row 0 must be a non-empty object", connection_id=connection_id)
    columns = [
        check_name(c, "column", connection_id) if sql_names else _check_key(c, connection_id) for c in first
    ]
    width = len(columns)
    getter = itemgetter(*columns)
    fast = _FAST.issuperset
    values: list[tuple[Any, ...]] = []
    append = values.append
    for index, row in enumerate(rows):
        if type(row) is not dict and not isinstance(row, Mapping):
            raise InvalidRequestError(
                f"row {index} must be an object, got a {type(row).__name__}", connection_id=connection_id
            )
        if len(row) != width:
            raise _shape_error(index, row, columns, connection_id)
        try:
            out = getter(row)  # same length and every column present: the same keys
        except KeyError:
            raise _shape_error(index, row, columns, connection_id) from None
        if width == 1:
            out = (out,)
        if not fast(map(type, out)):
            out = _with_json(out, index, columns, connection_id)
        append(out)
    if forbid_nul:
        found = find_nul(values, columns)
        if found is not None:
            raise nul_error(found, connection_id)
    return PreparedRows(columns, values)


def find_nul(
    values: Sequence[tuple[Any, ...]], columns: list[str], offset: int = 0
) -> tuple[int, str] | None:
    """(row index + `offset`, field) of the first string holding U+0000, or None."""
    for index, out in enumerate(values):
        for field, value in zip(columns, out, strict=True):
            if type(value) is str and "\x00" in value:
                return offset + index, field
    return None


def nul_error(found: tuple[int, str], connection_id: str) -> SerializationError:
    return SerializationError(
        connection_id=connection_id,
        row=found[0],
        field=found[1],
        type_name="str",
        reason="the string contains a NUL character (U+0000), which the target cannot store",
    )


def _shape_error(
    index: int, row: Mapping[str, Any], columns: list[str], connection_id: str
) -> InvalidRequestError:
    shape = set(columns)
    missing = sorted(shape - set(row))
    extra = sorted(map(str, set(row) - shape))
    return InvalidRequestError(
        f"row {index} has different fields from row 0 (all rows of one call must have the same "
        f"fields): missing {missing}, unexpected {extra}",
        connection_id=connection_id,
    )


def _check_key(key: object, connection_id: str) -> str:
    if not isinstance(key, str) or not key:
        raise InvalidRequestError(
            f"invalid field name {key!r}: expected a non-empty string", connection_id=connection_id
        )
    return key


def encode_json_row(row: object, *, index: int, connection_id: str) -> bytes:
    """One row as compact JSON (UTF-8), or an error naming the row and the field that is not JSON."""
    if not isinstance(row, Mapping):
        raise InvalidRequestError(
            f"row {index} must be an object, got a {type(row).__name__}", connection_id=connection_id
        )
    try:
        return json.dumps(row, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()
    except (TypeError, ValueError):
        for field, value in row.items():  # find the culprit to name it
            to_json(value, connection_id=connection_id, row=index, field=str(field))
        raise SerializationError(
            connection_id=connection_id, row=index, field="?", type_name="dict", reason="keys must be strings"
        ) from None


def _with_json(out: tuple[Any, ...], index: int, columns: list[str], connection_id: str) -> tuple[Any, ...]:
    """The slow path of `prepare_rows` for a row holding something other than a plain scalar."""
    converted: list[Any] = []
    for field, value in zip(columns, out, strict=True):
        kind = type(value)
        if kind is dict or kind is list:
            converted.append(to_json(value, connection_id=connection_id, row=index, field=field))
        elif kind in _FAST:
            converted.append(value)
        else:
            raise SerializationError(
                connection_id=connection_id, row=index, field=field, type_name=kind.__name__
            )
    return tuple(converted)


_TABLE_ONLY = re.compile(r"[^\W\d]\w*(\.[^\W\d]\w*)?")


def is_table_name(text: str) -> bool:
    """True when `text` is a bare `table` or `schema.table` (fetch reads it as SELECT * FROM it)."""
    return bool(_TABLE_ONLY.fullmatch(text))


def check_limit(limit: int | None, ceiling: int, connection_id: str) -> int:
    """A fetch's row limit: the connection's ceiling by default, never above it."""
    if limit is None:
        return ceiling
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise InvalidRequestError(
            f"limit must be a positive integer, got {limit!r}", connection_id=connection_id
        )
    if limit > ceiling:
        raise InvalidRequestError(
            f"limit {limit} is above this connection's fetch_max_rows ({ceiling})",
            connection_id=connection_id,
        )
    return limit


def collect_rows(
    rows: Iterable[dict[str, Any]], *, limit: int, max_bytes: int, connection_id: str, what: str
) -> list[dict[str, Any]]:
    """Up to `limit` rows of `rows` holding at most `max_bytes` (measured as JSON, as they will
    travel to the script), or ResultTooLargeError as soon as either is exceeded."""
    out: list[dict[str, Any]] = []
    size = 0
    for row in rows:
        out.append(row)
        if len(out) > limit:
            raise ResultTooLargeError(connection_id=connection_id, limit_kind="rows", limit=limit, what=what)
        size += len(json.dumps(row, default=str, ensure_ascii=False))
        if size > max_bytes:
            raise ResultTooLargeError(
                connection_id=connection_id, limit_kind="bytes", limit=max_bytes, what=what
            )
    return out
