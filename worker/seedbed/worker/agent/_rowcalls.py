"""The row-set calls of the SDK: `generate`, `rows.read`, `stream.open/next/close`.

A `generate` call describes a row set and checks it (see `_rowsets`); reading it makes its rows
here, within `SEEDBED_MAX_GENERATE_ROWS` and the attempt's memory budget; a stream makes them batch
by batch. The agent hands this room what it needs — the template lookup, the buffers, the budget,
the run key, the attempt's call counter and the open step — and keeps the writes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from seedbed.worker import templates
from seedbed.worker.agent._args import integer as _int
from seedbed.worker.agent._args import text as _text
from seedbed.worker.agent._budget import MemoryBudget, resident_estimate
from seedbed.worker.agent._buffers import Buffers, encode
from seedbed.worker.agent._errors import InvalidArgument, LimitExceeded
from seedbed.worker.agent._rowsets import RowSet, Sources, describe, generation_error

__all__ = ["DEFAULT_MAX_ROWSET_ROWS", "RowSetCalls"]

MAX_STREAMS = 16
MAX_ROWSETS = 100_000
# What one row set is held for besides its overrides (its description), and the largest row index.
ROWSET_BYTES = 2048
MAX_ROW_INDEX = 2**62
DEFAULT_MAX_ROWSET_ROWS = 100_000_000


class RowSetCalls:
    def __init__(
        self,
        *,
        template: Callable[[str], Any],
        template_docs: Mapping[str, str],
        buffers: Buffers,
        memory: MemoryBudget,
        run_key: str,
        max_rows: int,
        max_set_rows: int,
        sizes: templates.SizeLimits,
        count_call: Callable[[], int],
        generated: Callable[[int], None],
    ) -> None:
        self._template = template
        self._template_docs = template_docs
        self._buffers = buffers
        self.memory = memory
        self._run_key = run_key
        self._max_rows = max_rows
        self._max_set_rows = max_set_rows
        self._sizes = sizes
        self._count_call = count_call  # the attempt's call counter: a row set's seed follows it
        self._generated = generated  # rows described, for the open step
        self._rowsets: dict[str, RowSet] = {}
        self._sources = Sources(memory.hold)
        self._field_size_cache: dict[str, dict[str, int]] = {}
        self._streams: dict[str, Iterator[list[dict[str, Any]]]] = {}
        self._stream_count = 0

    def _overrides(self, raw: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        """The overrides, and what identifies them (a `pick_from` over a row set's column is
        identified by that row set, not by its values)."""
        if raw is None:
            return {}, {}
        if not isinstance(raw, dict):
            raise InvalidArgument("overrides must be a mapping of field name to value or pick_from(...)")
        out: dict[str, Any] = {}
        ids: dict[str, Any] = {}
        for name, value in raw.items():
            if isinstance(value, dict) and "$pick" in value:
                body = value["$pick"]
                if not isinstance(body, dict):
                    raise InvalidArgument(f"overrides[{name!r}]: malformed pick_from")
                raw_values = body.get("values")
                weights = self._buffers.resolve(body.get("weights"))
                if isinstance(raw_values, dict) and "$column" in raw_values:
                    values, ident = self._column_source(raw_values["$column"], name)
                else:
                    values = self._buffers.resolve(raw_values)
                    if not isinstance(values, list) or not values:
                        raise InvalidArgument(
                            f"overrides[{name!r}]: pick_from needs a non-empty list of values"
                        )
                    ident = hashlib.sha256(encode(values).encode()).hexdigest()
                try:
                    out[name] = templates.Pick(values, weights)
                except (ValueError, TypeError, templates.TemplateError) as exc:
                    raise InvalidArgument(f"overrides[{name!r}]: {exc}") from None
                ids[name] = {"pick": ident, "weights": weights}
            else:
                out[name] = value
                ids[name] = value
        return out, ids

    @staticmethod
    def _overrides_bytes(overrides: Mapping[str, Any]) -> int:
        """What a row set's overrides keep in memory (a pick_from's values, constants), estimated."""
        values: list[Any] = []
        for value in overrides.values():
            if not isinstance(value, templates.Pick):
                values.append(value)
            elif isinstance(value.source, templates.MaterialisedColumn):
                values.extend(value.source.values)
        return resident_estimate(encode(values))

    def _column_source(self, ref: Any, name: str) -> tuple[Any, str]:
        if not isinstance(ref, dict):
            raise InvalidArgument(f"overrides[{name!r}]: malformed column reference")
        rowset = self.rowset(ref.get("rows"))
        column = ref.get("field")
        if not isinstance(column, str) or column not in rowset.columns:
            raise InvalidArgument(
                f"overrides[{name!r}]: row set {rowset.handle} has no column {column!r} "
                f"(columns: {', '.join(rowset.columns)})"
            )
        return self._sources.column(rowset, column, self._field_sizes(rowset.spec))

    def rowset(self, handle: Any) -> RowSet:
        found = self._rowsets.get(handle) if isinstance(handle, str) else None
        if found is None:
            raise InvalidArgument(f"unknown row set {str(handle)[:40]!r} (it belongs to another run?)")
        return found

    def _field_sizes(self, spec: Any) -> dict[str, int]:
        sizes = self._field_size_cache.get(spec.id)
        if sizes is None:
            sizes = self._field_size_cache[spec.id] = dict(templates.estimate_sizes(spec))
        return sizes

    def _row_estimate(self, spec: Any, overrides: Mapping[str, Any]) -> int:
        """Bytes one generated row may take while it is built and encoded (from the template's
        size estimate; an override's value counts in every row, as the reply repeats it)."""
        sizes = sum(self._field_sizes(spec).values())
        # A constant override is repeated in every row of the reply; a pick_from adds one of its
        # values per row (already counted by the field it replaces).
        extra = sum(
            resident_estimate(encode(value))
            for value in overrides.values()
            if not isinstance(value, templates.Pick)
        )
        return sizes + extra + 64 * len(spec.fields)

    def generate(self, args: Mapping[str, Any]) -> Any:
        """A row set: described and checked now, made where it is used (see `_rowsets`)."""
        template_id = _text(args, "template_id", limit=100)
        count = _int(args, "count")
        assert count is not None
        if count <= 0:
            raise InvalidArgument(f"count must be at least 1, got {count}")
        if count > self._max_set_rows:
            raise LimitExceeded(
                f"count {count:,} is over the limit of {self._max_set_rows:,} rows per row set "
                "(SEEDBED_MAX_ROWSET_ROWS): make several row sets (with one seed=..., start=... "
                "continues a set), or ask the operator to raise it"
            )
        start = _int(args, "start", required=False) or 0
        if not 0 <= start <= MAX_ROW_INDEX - count:
            raise InvalidArgument(f"start must be from 0 to {MAX_ROW_INDEX - count:,}, got {start}")
        seed = _int(args, "seed", required=False)
        if len(self._rowsets) >= MAX_ROWSETS:
            raise LimitExceeded(f"more than {MAX_ROWSETS:,} row sets in one attempt")
        spec = self._template(template_id)
        overrides, override_ids = self._overrides(args.get("overrides"))
        override_bytes = self._overrides_bytes(overrides)
        # The call's number is part of the seed: a replayed attempt regenerates the same rows.
        # With an explicit seed, the rows depend on it alone (the same in every run).
        call = self._count_call()
        derived = (
            templates.derive_seed("", 0, 0, seed)
            if seed is not None
            else templates.derive_seed(self._run_key, call)
        )
        refs, ref_ids = self._sources.frozen(spec)
        columns = list(spec.fields) + [name for name in overrides if name not in spec.fields]
        rowset = RowSet(
            handle=f"rows_{call}",
            template_id=template_id,
            spec=spec,
            seed=derived,
            start=start,
            count=count,
            overrides=overrides,
            refs=refs,
            identity=describe(self._template_docs[template_id], derived, start, count, override_ids, ref_ids),
            max_rows=max(count, self._max_rows),
            limits=self._sizes,
            columns=columns,
        )
        if rowset.unique_rows and count > self._max_rows:
            raise LimitExceeded(
                f"count {count:,} is over {self._max_rows:,} (SEEDBED_MAX_GENERATE_ROWS) for template "
                f"{template_id!r}: its unique fields (other than uuid and sequence) keep every value "
                "handed out, so a row set of it is at most that many rows"
            )
        try:
            # One row proves the arguments now (overrides, refs with nothing to draw from).
            rowset.generator.rows(1, overrides=overrides, start=start)
        except templates.GenerationError as exc:
            raise generation_error(exc) from None
        # Held for the attempt: what the row set keeps (its overrides: a pick_from's values).
        self.memory.hold(ROWSET_BYTES + override_bytes, f"row set of {template_id!r} and its overrides")
        self._rowsets[rowset.handle] = rowset
        self._sources.record(rowset, self._field_sizes(spec))
        self._generated(count)
        return {"$rows": rowset.handle, "count": count, "columns": columns}

    def materialise(self, rowset: RowSet) -> tuple[list[dict[str, Any]], str]:
        """Every row of the set, made here (to be read by the script, or written where no bulk
        path applies), within SEEDBED_MAX_GENERATE_ROWS and the memory budget."""
        if rowset.count > self._max_rows:
            raise LimitExceeded(
                f"a row set of {rowset.count:,} rows is too large to read into the script (at most "
                f"{self._max_rows:,}, SEEDBED_MAX_GENERATE_ROWS): insert it as it is "
                "(connection.insert(table, rows) never reads it into the script), or read it in "
                "pieces with rows.batches(10000)"
            )
        # Held while the rows are built and encoded, before any of it exists: a call that would
        # take more than the attempt has left is refused up front instead of filling the worker.
        building = rowset.count * self._row_estimate(rowset.spec, rowset.overrides)
        self.memory.hold(building, f"{rowset.count:,} rows being generated (estimated)")
        try:
            rows = rowset.generator.rows(rowset.count, overrides=rowset.overrides, start=rowset.start)
            text = encode(rows)
        except templates.GenerationError as exc:
            raise generation_error(exc) from None
        finally:
            self.memory.release(building)
        return rows, text

    def sample(self, handle: Any, limit: int) -> tuple[list[dict[str, Any]], int]:
        """The first `limit` rows of a row set (all when it is smaller) and the set's size: what a dry
        run checks of an insert it does not make whole. Held against the budget while made."""
        rowset = self.rowset(handle)
        count = min(limit, rowset.count)
        building = count * self._row_estimate(rowset.spec, rowset.overrides)
        self.memory.hold(building, f"{count:,} sample rows being generated (estimated)")
        try:
            rows = rowset.generator.rows(count, overrides=rowset.overrides, start=rowset.start)
        except templates.GenerationError as exc:
            raise generation_error(exc) from None
        finally:
            self.memory.release(building)
        return rows, rowset.count

    def read(self, args: Mapping[str, Any]) -> Any:
        rows, text = self.materialise(self.rowset(args.get("rows")))
        return self._buffers.reply(rows, encoded=text)

    def stream_open(self, args: Mapping[str, Any]) -> Any:
        if len(self._streams) >= MAX_STREAMS:
            raise LimitExceeded(f"more than {MAX_STREAMS} open row streams: finish one first")
        batch = _int(args, "batch_size", required=False) or 1000
        if not 1 <= batch <= 100_000:
            raise InvalidArgument(f"batch_size {batch} is outside 1..100000")
        rowset = self.rowset(args.get("rows"))
        self._stream_count += 1
        handle = f"stream_{self._stream_count}"
        try:
            iterator = rowset.generator.stream(
                rowset.count,
                batch_size=min(batch, rowset.count),
                overrides=rowset.overrides,
                start=rowset.start,
            )
        except templates.GenerationError as exc:
            raise generation_error(exc) from None
        self._streams[handle] = iterator
        return {"handle": handle}

    def stream_close(self, args: Mapping[str, Any]) -> Any:
        """A stream the script stopped reading early (its slot is free again)."""
        self._streams.pop(_text(args, "handle", limit=100), None)
        return None

    def stream_next(self, args: Mapping[str, Any]) -> Any:
        handle = _text(args, "handle", limit=100)
        iterator = self._streams.get(handle)
        if iterator is None:
            raise InvalidArgument(f"unknown or finished stream {handle!r}")
        try:
            rows = next(iterator)
        except StopIteration:
            del self._streams[handle]
            return {"rows": [], "done": True}
        except templates.GenerationError as exc:
            del self._streams[handle]
            raise generation_error(exc) from None
        return {"rows": rows, "done": False}
