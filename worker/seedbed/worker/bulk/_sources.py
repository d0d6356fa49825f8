"""A row set's column as a `ref`/`pick_from` source, made the first time something draws from it.

Most referenced keys need no source of their own: a `uuid` or `sequence` key is recomputed from
the drawn row index (`Generator.derived`). A column that is not a pure function of the row index
(a Faker email, a value a `compute` renders) is generated once on the worker, when the first row
that refers to it is made, and held from then on (`load` holds its memory against the attempt's
budget). Crossing to another process (a shard's Ray task), it travels as its values — a
`MaterialisedColumn` put into the object store once per insert — never as the way to make them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from seedbed.worker.templates import MaterialisedColumn

__all__ = ["LazySource"]


class LazySource:
    def __init__(self, size: int, load: Callable[[], list[Any]]) -> None:
        self._size = size
        self._load = load
        self._values: MaterialisedColumn | None = None

    @property
    def size(self) -> int:
        return self._size

    def loaded(self) -> MaterialisedColumn:
        if self._values is None:
            self._values = MaterialisedColumn(self._load())
        return self._values

    def take(self, indices: Any) -> list[Any]:
        return self.loaded().take(indices)

    def __reduce__(self) -> Any:
        return (MaterialisedColumn, (self.loaded().values,))

    def __repr__(self) -> str:
        state = "made" if self._values is not None else "not made yet"
        return f"LazySource({self._size:,} values, {state})"
