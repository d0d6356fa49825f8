"""Row sets: what `generate` returns — rows that stay on the worker until the script reads them.

    customers = dm.generate("tmpl_customer", count=1_000_000)   # nothing generated yet
    len(customers)                                              # 1000000, no rows read
    db.insert("customers", customers)                          # written on the workers, in shards
    orders = dm.generate("tmpl_order", count=5_000_000,
                         overrides={"customer_id": dm.pick_from(customers.column("id"))})

Reading a row set (iterating, indexing, slicing, `list(...)`, changing it) brings every row into the
script once, within the worker's limit on rows read into a sandbox; from then on it is an ordinary
list of dicts, and inserting it sends the rows as they are now (changes included). `batches(n)`
reads it in pieces without keeping them. `column(name)` names a column for `pick_from` without
reading it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, MutableSequence
from typing import Any, overload

from seedbed.sdk import _context

__all__ = ["Column", "RowSet"]


def _read(result: Any) -> Any:
    from seedbed.sdk._data import _read_result

    return _read_result(result)


class Column:
    """A column of a row set, as `pick_from` values: it stays on the worker."""

    __slots__ = ("name", "rows")

    def __init__(self, rows: RowSet, name: str) -> None:
        self.rows = rows
        self.name = name

    def to_wire(self) -> Any:
        if self.rows.read:
            # Read (and maybe changed) in the script: the values as they are here.
            return [row.get(self.name) for row in self.rows]
        return {"$column": {"rows": self.rows.handle, "field": self.name}}

    def __len__(self) -> int:
        return len(self.rows)

    def __repr__(self) -> str:
        return f"<column {self.name!r} of {self.rows!r}>"


class RowSet(MutableSequence[dict[str, Any]]):
    """Rows generated on the worker (see the module's doc)."""

    def __init__(self, handle: str, count: int, columns: list[str], template_id: str = "") -> None:
        self.handle = handle
        self.columns = list(columns)
        self.template_id = template_id
        self._count = int(count)
        self._rows: list[dict[str, Any]] | None = None

    @property
    def read(self) -> bool:
        """Whether the rows were brought into the script."""
        return self._rows is not None

    def _all(self) -> list[dict[str, Any]]:
        if self._rows is None:
            rows: list[dict[str, Any]] = _read(_context.call("rows.read", {"rows": self.handle}))
            self._rows = rows
        return self._rows

    def column(self, name: str) -> Column:
        if name not in self.columns:
            raise KeyError(f"no column {name!r} in this row set (columns: {', '.join(self.columns)})")
        return Column(self, name)

    def batches(self, size: int = 10_000) -> Iterator[list[dict[str, Any]]]:
        """The rows in lists of at most `size`, generated as they are read (memory stays constant)."""
        if self._rows is not None:
            for start in range(0, len(self._rows), size):
                yield self._rows[start : start + size]
            return
        handle = _context.call("stream.open", {"rows": self.handle, "batch_size": size})["handle"]
        done = False
        try:
            while not done:
                page = _context.call("stream.next", {"handle": handle})
                done = page["done"]
                if page["rows"]:
                    yield page["rows"]
        finally:
            if not done:  # left early (break, an exception): free the worker's stream
                _context.call("stream.close", {"handle": handle})

    def to_wire(self) -> Any:
        """What a call sends for these rows: a reference while they are on the worker."""
        if self._rows is None:
            return {"$rows": self.handle}
        return self._rows

    # -- the list protocol (reads the rows) ---------------------------------------------------------

    def __len__(self) -> int:
        return self._count if self._rows is None else len(self._rows)

    @overload
    def __getitem__(self, index: int) -> dict[str, Any]: ...
    @overload
    def __getitem__(self, index: slice) -> list[dict[str, Any]]: ...
    def __getitem__(self, index: int | slice) -> Any:
        return self._all()[index]

    def __setitem__(self, index: Any, value: Any) -> None:
        self._all()[index] = value

    def __delitem__(self, index: Any) -> None:
        del self._all()[index]

    def insert(self, index: int, value: dict[str, Any]) -> None:
        self._all().insert(index, value)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self._all())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, RowSet):
            other = other._all()
        if isinstance(other, list):
            return self._all() == other
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __add__(self, other: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        return [*self._all(), *other]

    def __radd__(self, other: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        return [*other, *self._all()]

    def __repr__(self) -> str:
        state = "read" if self._rows is not None else "on the worker"
        return f"<{len(self):,} rows of {self.template_id or 'a template'} ({state})>"
