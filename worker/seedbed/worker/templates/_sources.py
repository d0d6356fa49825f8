"""Reference sources: the values a `ref` field or a `Pick` draws from, read by index.

    class RefSource(Protocol):
        size: int                                        # how many values (indices 0..size-1)
        def take(self, indices: ndarray[int64]) -> list  # the values at those indices, in order

Three shapes, all picklable (a source crosses to Ray tasks with the call that uses it):

- `MaterialisedColumn(values)` — a list or tuple held in memory (rows recorded by `RunRefs.record`,
  ids a database assigned, a script's list in a `Pick`).
- `DerivedColumn` (from `Generator.derived`) — the values a field has in rows start…start+count-1
  of a generator's rows, computed on demand from the field's kernel: a million customer UUIDs cost
  a few hundred bytes to keep and to send, not 40 MB, and `take` computes only the rows drawn.
- `ConcatSource(segments)` — several sources read as one, in recording order (what `RunRefs`
  returns when a template was generated and recorded more than once).

Rejected: handing out Python lists (every consumer copies or converts them; a million-value list
costs ~8 ms per pick in Faker's `random_element`); numpy arrays of strings as the contract (fixed
width, and values may be any JSON value); materialising derived columns at record time (the point
is that the rows a `ref` points at need not exist anywhere).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from seedbed.worker.templates._hashing import Rows, object_array

__all__ = ["ConcatSource", "DerivedColumn", "Kernel", "MaterialisedColumn", "RefSource", "take_one"]


@runtime_checkable
class RefSource(Protocol):
    """Values by index: `size` of them, `take(indices)` → the values at those int64 indices."""

    @property
    def size(self) -> int: ...

    def take(self, indices: Rows) -> list[Any]: ...


class Kernel(Protocol):
    """A field's values as a pure function of row indices (internal: `_columns` builds them)."""

    def __call__(self, rows: Rows) -> list[Any]: ...


class MaterialisedColumn:
    """A `RefSource` over values held in memory. The values are copied into a tuple once, so later
    changes to the caller's list do not reach rows generated from it."""

    __slots__ = ("values", "_array")

    def __init__(self, values: Sequence[Any]) -> None:
        if isinstance(values, str | bytes) or not isinstance(values, Sequence):
            raise TypeError(f"values must be a list or tuple, not {type(values).__name__}")
        self.values: tuple[Any, ...] = tuple(values)
        self._array: npt.NDArray[np.object_] | None = None

    @property
    def size(self) -> int:
        return len(self.values)

    def take(self, indices: Rows) -> list[Any]:
        array = self._array
        if array is None:
            array = self._array = object_array(self.values, len(self.values))
        return array[indices].tolist()  # type: ignore[no-any-return]

    def __getstate__(self) -> tuple[Any, ...]:
        return self.values  # the object array is rebuilt on first use

    def __setstate__(self, state: tuple[Any, ...]) -> None:
        self.values, self._array = state, None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, MaterialisedColumn):
            return NotImplemented
        return self.values == other.values

    def __hash__(self) -> int:
        return hash(len(self.values))

    def __repr__(self) -> str:
        return f"MaterialisedColumn({len(self.values):,} values)"


class DerivedColumn:
    """The values a field has in rows `start`…`start+count-1` of one generator's rows, computed on
    demand: `take(i)` is the field's kernel at rows `start + i`. Small and picklable (the kernel
    holds the field's spec and seeds; a Faker pool is rebuilt from the process cache)."""

    __slots__ = ("kernel", "start", "count", "label")

    def __init__(self, kernel: Kernel, start: int, count: int, label: str = "") -> None:
        self.kernel = kernel
        self.start = start
        self.count = count
        self.label = label

    @property
    def size(self) -> int:
        return self.count

    def take(self, indices: Rows) -> list[Any]:
        return self.kernel(np.asarray(indices, dtype=np.int64) + self.start)

    def __repr__(self) -> str:
        return f"DerivedColumn({self.label or 'field'}, rows {self.start:,}…{self.start + self.count - 1:,})"


class ConcatSource:
    """Several sources read as one, in order: index k falls in the segment whose range holds it."""

    __slots__ = ("segments", "_ends")

    def __init__(self, segments: Sequence[RefSource]) -> None:
        self.segments = tuple(s for s in segments if s.size > 0)
        self._ends = np.cumsum([s.size for s in self.segments], dtype=np.int64)

    @property
    def size(self) -> int:
        return int(self._ends[-1]) if len(self._ends) else 0

    def take(self, indices: Rows) -> list[Any]:
        if len(self.segments) == 1:
            return self.segments[0].take(indices)
        indices = np.asarray(indices, dtype=np.int64)
        which = np.searchsorted(self._ends, indices, side="right")
        out = np.empty(len(indices), dtype=object)
        for k in np.unique(which).tolist():
            mask = which == k
            first = int(self._ends[k - 1]) if k else 0
            values = self.segments[k].take(indices[mask] - first)
            out[mask] = object_array(values, len(values))
        result: list[Any] = out.tolist()
        return result

    def __repr__(self) -> str:
        return f"ConcatSource({len(self.segments)} segments, {self.size:,} values)"


def take_one(source: RefSource, index: int) -> Any:
    """One value (the row-by-row paths: `unique` refs)."""
    if isinstance(source, MaterialisedColumn):
        return source.values[index]
    return source.take(np.array([index], dtype=np.int64))[0]
