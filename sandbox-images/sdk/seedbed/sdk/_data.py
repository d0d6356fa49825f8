"""The data API of the SDK: templates, picks, connections, workspace files and steps (run assets:
``_assets``).

Every call goes over the agent channel to trusted code in the worker, which generates rows and
writes them; credentials never reach the sandbox. Frames on the channel are size-capped, so large
lists travel in chunks: a list argument above the chunk size is uploaded into a buffer on the
worker first and referenced as ``{"$buffer": handle}``; a large result comes back the same way and
is paged in.
"""

from __future__ import annotations

import contextlib
import csv
import datetime
import decimal
import io
import json
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from itertools import islice
from typing import Any

from seedbed.sdk import _context
from seedbed.sdk._assets import Assets
from seedbed.sdk._errors import SerializationError
from seedbed.sdk._rows import Column, RowSet

__all__ = ["Connection", "Pick", "Seedbed", "Template", "Workspace", "pick_from"]

# Rows per piece of an insert of an iterable (the worker's ledger batch).
_INSERT_PIECE_ROWS = 10_000

# Keep every frame far below the channel's cap (8 MiB).
_CHUNK_BYTES = 2 * 2**20


def _plain(value: Any) -> Any:
    """Values JSON cannot carry but rows often hold: dates and times as ISO text, Decimal and UUID
    as text. Anything else is refused."""
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, (decimal.Decimal, uuid.UUID)):
        return str(value)
    raise TypeError(type(value).__name__)


def _size(index: int, item: Any) -> int:
    try:
        return len(
            json.dumps(item, ensure_ascii=False, separators=(",", ":"), default=_plain, allow_nan=False)
        )
    except (TypeError, ValueError) as exc:
        where = f"item {index}"
        if isinstance(item, Mapping):
            for key, value in item.items():
                try:
                    json.dumps(value, default=_plain, allow_nan=False)
                except (TypeError, ValueError):
                    where = f"row {index}, field {key!r}"
                    break
        raise SerializationError(
            "serialise",
            "SerializationError",
            f"{where}: a value of type {exc} cannot be sent (use str, int, "
            "float, bool, None, dates, or lists and dicts of those; NaN and infinity are refused)",
        ) from None


def _wire_list(items: Sequence[Any]) -> Any:
    """The list itself when small, else a reference to a buffer filled chunk by chunk."""
    items = [_convert(index, item) for index, item in enumerate(items)]
    chunk: list[Any] = []
    chunk_bytes = 0
    handle: str | None = None
    total = 0
    for index, item in enumerate(items):
        size = _size(index, item) + 1
        if chunk and chunk_bytes + size > _CHUNK_BYTES:
            handle = _context.call("buffer.put", {"handle": handle, "items": chunk})["handle"]
            chunk, chunk_bytes = [], 0
        chunk.append(item)
        chunk_bytes += size
        total += 1
    if handle is None:
        return chunk
    handle = _context.call("buffer.put", {"handle": handle, "items": chunk})["handle"]
    return {"$buffer": handle, "count": total}


def _convert(index: int, item: Any) -> Any:
    if not _needs_plain(item):
        return item
    try:
        return json.loads(json.dumps(item, default=_plain, allow_nan=False))
    except (TypeError, ValueError):
        _size(index, item)  # raises a SerializationError that names the row and the field
        raise


def _needs_plain(item: Any) -> bool:
    values = item.values() if isinstance(item, Mapping) else (item,)
    return any(isinstance(v, (datetime.date, datetime.time, decimal.Decimal, uuid.UUID)) for v in values)


def _read_result(result: Any) -> Any:
    """Page in a result the worker left in a buffer."""
    if isinstance(result, dict) and "$buffer" in result:
        items: list[Any] = []
        while True:
            page = _context.call("buffer.take", {"handle": result["$buffer"]})
            items.extend(page["items"])
            if page["done"]:
                return {**result.get("meta", {}), "rows": items} if "meta" in result else items
    return result


def _rows_arg(rows: Any) -> Any:
    """A row set still on the worker travels as its reference; anything else as a list."""
    if isinstance(rows, RowSet) and not rows.read:
        return rows.to_wire()
    return _wire_list(rows)


class Pick:
    """A lazy per-row pick from ``values`` (optionally weighted), used as an override value."""

    __slots__ = ("values", "weights")

    def __init__(self, values: Sequence[Any] | Column, weights: Sequence[float] | None = None) -> None:
        if isinstance(values, Column):
            if weights is not None:
                raise ValueError(
                    "pick_from over a row set's column is uniform: weights need a list of values"
                )
            if len(values) == 0:
                raise ValueError("pick_from needs at least one value")
            self.values: Any = values
            self.weights = None
            return
        values = list(values)
        if not values:
            raise ValueError("pick_from needs at least one value")
        if weights is not None:
            weights = [float(w) for w in weights]
            if len(weights) != len(values):
                raise ValueError(f"pick_from got {len(values)} values but {len(weights)} weights")
        self.values = values
        self.weights = weights

    def to_wire(self) -> dict[str, Any]:
        values = self.values.to_wire() if isinstance(self.values, Column) else self.values
        body: dict[str, Any] = {"values": values if isinstance(values, dict) else _wire_list(values)}
        if self.weights is not None:
            body["weights"] = _wire_list(self.weights)
        return {"$pick": body}

    def __repr__(self) -> str:
        return f"pick_from(<{len(self.values)} values>{', weighted' if self.weights else ''})"


def pick_from(values: Sequence[Any] | Column, weights: Sequence[float] | None = None) -> Pick:
    """Each row draws one of `values` (a list, or a row set's `column(name)`), uniformly or by
    `weights`."""
    return Pick(values, weights)


def _overrides(overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in (overrides or {}).items():
        out[str(key)] = value.to_wire() if isinstance(value, Pick) else value
    return out


class Template:
    """A stored template, by id."""

    def __init__(self, template_id: str) -> None:
        self.id = template_id

    def rows(
        self,
        count: int,
        *,
        overrides: Mapping[str, Any] | None = None,
        seed: int | None = None,
        start: int = 0,
    ) -> RowSet:
        """Rows `start`… of this template's data set, as a row set that stays on the worker until
        read (see `RowSet`); `rows(n, start=s)` equals rows s… of a longer set with the same seed."""
        answer = _context.call(
            "generate",
            {
                "template_id": self.id,
                "count": count,
                "overrides": _overrides(overrides),
                "seed": seed,
                "start": start,
            },
        )
        return RowSet(answer["$rows"], answer["count"], answer["columns"], self.id)

    def generate(
        self, count: int, overrides: Mapping[str, Any] | None = None, seed: int | None = None
    ) -> RowSet:
        return self.rows(count, overrides=overrides, seed=seed)

    def stream(
        self,
        count: int,
        *,
        batch_size: int = 1000,
        overrides: Mapping[str, Any] | None = None,
        seed: int | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Rows one by one, fetched in batches: memory stays constant whatever ``count`` is."""
        for batch in self.rows(count, overrides=overrides, seed=seed).batches(batch_size):
            yield from batch

    def __repr__(self) -> str:
        return f"Template({self.id!r})"


class Connection:
    """A connection by id. SQL kinds: insert, fetch, execute. REST: post, get. Files: write."""

    def __init__(self, connection_id: str) -> None:
        self.id = connection_id

    def insert(
        self,
        table: str,
        rows: RowSet | Sequence[Mapping[str, Any]] | Iterable[Mapping[str, Any]],
        *,
        on_conflict: str | None = None,
        key: Sequence[str] | str | None = None,
        returning: Sequence[str] | str | None = None,
        writers: int | None = None,
        shard_rows: int | None = None,
    ) -> Any:
        """Insert rows; returns the number of rows written, or the returned rows with ``returning``.

        ``rows`` may be a row set from ``generate`` (written on the workers, never read into the
        script: into PostgreSQL in shards of ``shard_rows`` rows, ``writers`` at once — both default
        to the connection's settings), a list of dicts, or any iterable of dicts (a generator is
        sent in pieces: memory stays constant). With ``on_conflict``, ``key`` names the unique
        columns; inserting a row set into PostgreSQL without it, ``key`` names the columns that
        identify a row while the table has no primary key yet (so ``seedbed run purge`` can
        remove the rows after the keys are added)."""
        base = {
            "connection_id": self.id,
            "table": table,
            "on_conflict": on_conflict,
            "key": [key] if isinstance(key, str) else (list(key) if key else None),
            "returning": [returning]
            if isinstance(returning, str)
            else (list(returning) if returning else None),
        }
        if isinstance(rows, RowSet) and not rows.read:
            args = {**base, "rows": rows.to_wire(), "writers": writers, "shard_rows": shard_rows}
        elif isinstance(rows, Sequence) or on_conflict is not None or returning is not None:
            args = {**base, "rows": _wire_list(list(rows) if not isinstance(rows, Sequence) else rows)}
        else:
            return self._insert_pieces(table, rows)
        result = _read_result(_context.call("insert", args))
        if isinstance(result, dict) and "rows" in result and args["returning"]:
            return result["rows"]
        return result["count"] if isinstance(result, dict) else result

    def _insert_pieces(self, table: str, rows: Iterable[Mapping[str, Any]]) -> int:
        handle = _context.call("insert.open", {"connection_id": self.id, "table": table})["handle"]
        iterator = iter(rows)
        try:
            while piece := list(islice(iterator, _INSERT_PIECE_ROWS)):
                _context.call("insert.write", {"handle": handle, "rows": _wire_list(piece)})
        finally:
            # Also when the iterable raised: the pieces written stay written (and in the ledger).
            count = int(_context.call("insert.close", {"handle": handle})["count"])
        return count

    def fetch(
        self,
        sql_or_table: str,
        params: Mapping[str, Any] | Sequence[Any] | None = None,
        *,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = _read_result(
            _context.call(
                "fetch", {"connection_id": self.id, "query": sql_or_table, "params": params, "limit": limit}
            )
        )
        return rows

    def execute(self, sql: str, params: Mapping[str, Any] | Sequence[Any] | None = None) -> int:
        return int(_context.call("execute", {"connection_id": self.id, "sql": sql, "params": params}))

    def post(self, path: str, rows: Sequence[Mapping[str, Any]], *, mode: str = "single") -> list[Any]:
        responses: list[Any] = _read_result(
            _context.call(
                "post", {"connection_id": self.id, "path": path, "rows": _rows_arg(rows), "mode": mode}
            )
        )
        return responses

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        return _read_result(_context.call("get", {"connection_id": self.id, "path": path, "params": params}))

    def write(self, name: str, rows: Sequence[Mapping[str, Any]], *, format: str = "csv") -> int:  # noqa: A002
        result = _context.call(
            "write", {"connection_id": self.id, "name": name, "rows": _rows_arg(rows), "format": format}
        )
        return int(result["count"])

    def __repr__(self) -> str:
        return f"Connection({self.id!r})"


class Workspace:
    """Workspace files, read-only."""

    def read_text(self, path: str, encoding: str = "utf-8") -> str:
        data = _read_result(_context.call("workspace.read", {"path": path, "encoding": encoding}))
        return "".join(data) if isinstance(data, list) else str(data)

    def read_json(self, path: str) -> Any:
        return json.loads(self.read_text(path))

    def read_csv(self, path: str, **reader_options: Any) -> list[dict[str, str]]:
        return list(csv.DictReader(io.StringIO(self.read_text(path)), **reader_options))


class Seedbed:
    """The entry point of scenario scripts: ``dm = Seedbed()``."""

    def __init__(self) -> None:
        self.workspace = Workspace()
        self.assets = Assets()

    @property
    def params(self) -> Mapping[str, str]:
        return _context.current.params

    @property
    def run_id(self) -> str:
        return _context.current.run_id

    @property
    def log(self) -> Any:
        from seedbed.sdk import log

        return log

    def generate(
        self,
        template_id: str,
        count: int,
        overrides: Mapping[str, Any] | None = None,
        seed: int | None = None,
        start: int = 0,
    ) -> RowSet:
        """`count` rows of a template, as a row set that stays on the worker until read."""
        return Template(template_id).rows(count, overrides=overrides, seed=seed, start=start)

    def pick_from(self, values: Sequence[Any] | Column, weights: Sequence[float] | None = None) -> Pick:
        return Pick(values, weights)

    def template(self, template_id: str) -> Template:
        return Template(template_id)

    def connection(self, connection_id: str) -> Connection:
        return Connection(connection_id)

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[None]:
        """Group work under a name in the run's details; the step fails if the block raises."""
        _context.call("step.start", {"name": str(name)})
        try:
            yield
        except BaseException:
            _context.call("step.end", {"name": str(name), "outcome": "FAILED"})
            raise
        _context.call("step.end", {"name": str(name), "outcome": "SUCCESS"})
