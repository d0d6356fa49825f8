"""Where `ref` fields find their values: a `RefResolver`, and `RunRefs`, the in-memory one.

The agent owns one resolver per run and records what each generate call produced (or what the
target returned, e.g. database-assigned ids); a `ref: {template, field}` field then draws uniformly
from those values. A resolver answers with one `RefSource` per (template, field): every value
recorded for that field, in recording order.

`RunRefs` keeps each (template, field) as segments: lists of values appended by `record` and
`record_values`, and sources recorded by `record_source` — typically a `Generator.derived(...)`
column, a few hundred bytes that stand for a million generated ids, so a bulk load need not hold
its rows to be referred to. `source()` returns the segments as one source (cached until the next
record), and `values()` materialises them (derived segments are computed) for callers that want a
list.

Rejected: a resolver returning lists (a million UUIDs held twice, and a derived column would have
to be materialised); keeping every column of every row (`fields` narrows it to what refs use).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol, cast, runtime_checkable

import numpy as np

from seedbed.worker.templates._sources import ConcatSource, MaterialisedColumn, RefSource

__all__ = ["RefResolver", "RunRefs"]


@runtime_checkable
class RefResolver(Protocol):
    def source(self, template: str, field: str) -> RefSource | None:
        """The values of `field` in the `template` rows recorded earlier in this run, or None."""
        ...


class RunRefs:
    """A `RefResolver` that keeps the columns recorded during one run in memory.

        refs = RunRefs()
        customers = Generator(customer_spec, seed=s1)
        refs.record("tmpl_customer", customers.rows(1000))                # values kept
        refs.record_source("tmpl_customer", "id", customers.derived("id", 1000, 1_000_000))
        orders = Generator(order_spec, seed=s2, refs=refs).rows(5000)

    `fields` limits what `record` keeps (a million rows × every column adds up); by default every
    column is. `record_values` and `record_source` keep what they are given.
    """

    def __init__(self, fields: Mapping[str, Iterable[str]] | None = None) -> None:
        self._keep = {t: frozenset(f) for t, f in fields.items()} if fields is not None else None
        self._columns: dict[str, dict[str, list[list[Any] | RefSource]]] = {}
        self._sources: dict[tuple[str, str], RefSource] = {}

    def record(self, template: str, rows: Iterable[Mapping[str, Any]]) -> None:
        """Append the rows' values, column by column (rows may lack some fields: those are skipped)."""
        keep = self._keep.get(template, frozenset()) if self._keep is not None else None
        columns = self._columns.setdefault(template, {})
        tails: dict[str, list[Any]] = {}
        for row in rows:
            for name, value in row.items():
                tail = tails.get(name)
                if tail is None:
                    if keep is not None and name not in keep:
                        continue
                    tail = tails[name] = self._tail(columns, template, name)
                tail.append(value)

    def record_values(self, template: str, field: str, values: Iterable[Any]) -> None:
        """Append values of one field, e.g. the ids a database assigned on insert."""
        self._tail(self._columns.setdefault(template, {}), template, field).extend(values)

    def record_source(self, template: str, field: str, source: RefSource) -> None:
        """Append a source's values (all `source.size` of them) without materialising them."""
        if not isinstance(source, RefSource):
            raise TypeError(f"source must be a RefSource (size, take), not {type(source).__name__}")
        self._columns.setdefault(template, {}).setdefault(field, []).append(source)
        self._sources.pop((template, field), None)

    def source(self, template: str, field: str) -> RefSource | None:
        key = (template, field)
        cached = self._sources.get(key)
        if cached is not None:
            return cached
        segments = [
            MaterialisedColumn(s) if isinstance(s, list) else s
            for s in self._columns.get(template, {}).get(field, ())
        ]
        segments = [s for s in segments if s.size > 0]
        if not segments:
            return None
        source = segments[0] if len(segments) == 1 else ConcatSource(segments)
        self._sources[key] = source
        return source

    def values(self, template: str, field: str) -> Sequence[Any] | None:
        """Every recorded value of the field as a list (derived segments are computed), or None."""
        source = self.source(template, field)
        if source is None:
            return None
        if isinstance(source, MaterialisedColumn):
            return source.values
        return source.take(np.arange(source.size, dtype=np.int64))

    def templates(self) -> tuple[str, ...]:
        return tuple(self._columns)

    def _tail(self, columns: dict[str, list[list[Any] | RefSource]], template: str, field: str) -> list[Any]:
        self._sources.pop((template, field), None)
        segments = columns.setdefault(field, [])
        if not segments or not isinstance(segments[-1], list):
            segments.append([])
        return cast(list[Any], segments[-1])
