"""Where `ref` fields find their values: a `RefResolver`, and `RunRefs`, the in-memory one.

The agent owns one resolver per run and records what each generate call produced (or what the
target returned, e.g. database-assigned ids); a `ref: {template, field}` field then draws uniformly
from those values. The resolver returns a sequence; a tuple is used as it is, anything else is
copied into a tuple once per generate call.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

__all__ = ["RefResolver", "RunRefs"]


@runtime_checkable
class RefResolver(Protocol):
    def values(self, template: str, field: str) -> Sequence[Any] | None:
        """The values of `field` in the `template` rows generated earlier in this run, or None."""
        ...


class RunRefs:
    """A `RefResolver` that keeps the columns recorded during one run in memory.

        refs = RunRefs()
        customers = Generator(customer_spec, seed=s1).rows(1000)
        refs.record("tmpl_customer", customers)
        orders = Generator(order_spec, seed=s2, refs=refs).rows(5000)

    `fields` limits what is kept (a million rows × every column adds up); by default every column is.
    """

    def __init__(self, fields: Mapping[str, Iterable[str]] | None = None) -> None:
        self._keep = {t: frozenset(f) for t, f in fields.items()} if fields is not None else None
        self._columns: dict[str, dict[str, list[Any]]] = {}

    def record(self, template: str, rows: Iterable[Mapping[str, Any]]) -> None:
        """Append the rows' values, column by column (rows may lack some fields: those are skipped)."""
        keep = self._keep.get(template, frozenset()) if self._keep is not None else None
        columns = self._columns.setdefault(template, {})
        for row in rows:
            for name, value in row.items():
                if keep is None or name in keep:
                    columns.setdefault(name, []).append(value)

    def record_values(self, template: str, field: str, values: Iterable[Any]) -> None:
        """Append values of one field, e.g. the ids a database assigned on insert."""
        self._columns.setdefault(template, {}).setdefault(field, []).extend(values)

    def values(self, template: str, field: str) -> Sequence[Any] | None:
        column = self._columns.get(template, {}).get(field)
        return column if column else None

    def templates(self) -> tuple[str, ...]:
        return tuple(self._columns)
