"""Row sets: what `generate` answers — rows described, not made — and where `ref`s find their values.

A `generate` call makes no rows. It checks its arguments (the template, the overrides, that every
`ref` has something to draw from: one row is made to prove it), fixes everything that decides the
rows (the seed from the run key and the call's number, the sources of `ref` and `pick_from` values as
they are at that moment) and answers a handle. The rows are made later, where they are needed:

- inserted into PostgreSQL: in shards, on the nodes that write them (`seedbed.worker.bulk`);
- inserted into another SQL target: streamed in ledger batches, in constant memory;
- read by the script (iterating, indexing, `list(...)`): made here and paged into the sandbox, as
  `generate` did before row sets, within `SEEDBED_MAX_GENERATE_ROWS` and the memory budget.

Each is the same rows: a row set is a pure function of its description, whose digest (`identity`)
is also what the ledger's content hash of a bulk batch stands for.

`Sources` keeps, per template, the row sets made so far; a `ref` to (template, field) draws from
their columns, in order: derived ones (a `uuid` or `sequence` key is recomputed from the row index,
never held) or lazy columns made on the worker the first time something draws from them (held
against the attempt's memory budget from then on).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from seedbed.worker import templates
from seedbed.worker.agent._errors import AgentError, InvalidArgument, LimitExceeded, TemplateError
from seedbed.worker.bulk import FrozenRefs
from seedbed.worker.bulk._sources import LazySource

__all__ = ["ENGINE", "RowSet", "Sources", "describe", "generation_error", "identity_of", "preload"]

# Part of every row set's identity: a change of how rows are made changes the hash of what a replay
# compares, so an attempt of a run started before an upgrade fails NONDETERMINISTIC instead of
# writing other rows next to the old ones.
ENGINE = "seedbed-rowset-v1"
_CHUNK_ROWS = 100_000


def identity_of(parts: Mapping[str, Any]) -> str:
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _unique_rows(spec: Any) -> bool:
    """Whether a field is unique within one call only (so the set is one sequential stream)."""
    return any(f.unique and f.kind not in ("sequence", "uuid") for f in spec.fields.values())


@dataclass
class RowSet:
    handle: str
    template_id: str
    spec: Any
    seed: int
    start: int
    count: int
    overrides: dict[str, Any]
    refs: FrozenRefs
    identity: str
    max_rows: int
    limits: templates.SizeLimits
    columns: list[str] = field(default_factory=list)

    @property
    def unique_rows(self) -> bool:
        return _unique_rows(self.spec)

    @property
    def generator(self) -> Any:
        """A generator of the set's rows, made for each use: a row set keeps its description only
        (a generator holds Faker instances, and a script may make thousands of row sets)."""
        return templates.Generator(
            self.spec, seed=self.seed, refs=self.refs, max_rows=self.max_rows, limits=self.limits
        )

    def column_values(self, name: str) -> list[Any]:
        """One column of the whole set, made in chunks (only that column is kept)."""
        out: list[Any] = []
        generator = self.generator
        if self.unique_rows:
            for rows in generator.stream(
                self.count, batch_size=_CHUNK_ROWS, overrides=self.overrides, start=self.start
            ):
                out.extend(row.get(name) for row in rows)
            return out
        for first in range(0, self.count, _CHUNK_ROWS):
            n = min(_CHUNK_ROWS, self.count - first)
            out.extend(generator.columns(n, overrides=self.overrides, start=self.start + first)[name])
        return out


class Sources:
    """Per (template, field), the sources `ref`s of later row sets draw from, in the run's order.

    Every row set is kept per template (the row set itself, which the attempt holds anyway); the
    sources of a (template, field) are made from them the first time a `ref` to it is frozen, and
    extended with the row sets made since on each later one. Which fields are referenced is not
    known ahead: a version the script pins (`tmpl_order@1`) may `ref` a field no version of the
    run's does. A source made late is the one an early one would have been (the same row sets, in
    order, the same identities), so retries and replays draw the same values.
    """

    def __init__(self, hold: Callable[[int, str], None]) -> None:
        self._hold = hold
        # Keyed by the template's id, not the name the script used: `ref`s draw from the rows of a
        # template whichever version (`tmpl_x@2`) made them.
        self._seen: dict[str, list[tuple[RowSet, Mapping[str, int]]]] = {}
        # Per (template, field): its sources, and how many of the template's row sets they cover.
        self._parts: dict[tuple[str, str], tuple[list[tuple[Any, str]], int]] = {}
        self._columns: dict[tuple[str, str], tuple[Any, str]] = {}  # (row set, field): source, identity

    def record(self, rowset: RowSet, sizes: Mapping[str, int]) -> None:
        """Make `rowset`'s columns available to `ref`s from now on (nothing is made until one draws)."""
        self._seen.setdefault(rowset.spec.id, []).append((rowset, sizes))

    def _sources_of(self, template_id: str, name: str) -> list[tuple[Any, str]]:
        """The sources of (template, field), made up to the latest row set of the template."""
        parts, covered = self._parts.get((template_id, name), ([], 0))
        seen = self._seen.get(template_id, [])
        for rowset, sizes in seen[covered:]:
            if name in rowset.columns:
                parts.append(self.column(rowset, name, sizes))
        self._parts[(template_id, name)] = (parts, len(seen))
        return parts

    def _loader(self, rowset: RowSet, name: str, size: int) -> Callable[[], list[Any]]:
        def load() -> list[Any]:
            # Held for the rest of the attempt, like the rows `generate` kept for refs before.
            self._hold(rowset.count * (size + 64), f"column {name!r} of {rowset.count:,} rows kept for refs")
            return rowset.column_values(name)

        return load

    def frozen(self, spec: Any) -> tuple[FrozenRefs, dict[str, list[str]]]:
        """The sources `spec`'s `ref` fields draw from now, and their identities."""
        sources: dict[tuple[str, str], Any] = {}
        ids: dict[str, list[str]] = {}
        for f in spec.fields.values():
            if f.kind != "ref":
                continue
            key = (f.generator.template, f.generator.field)
            parts = self._sources_of(*key)
            if parts:
                sources[key] = templates.ConcatSource([source for source, _ in parts])
                ids[f"{key[0]}.{key[1]}"] = [identity for _, identity in parts]
        return FrozenRefs(sources), ids

    def column(self, rowset: RowSet, name: str, sizes: Mapping[str, int]) -> tuple[Any, str]:
        """A column of a row set as a source (for `ref`s and `pick_from`), and its identity. One
        per column: made once however many draw from it, and held once."""
        found = self._columns.get((rowset.handle, name))
        if found is not None:
            return found
        source = None
        if name not in rowset.overrides:
            source = rowset.generator.derived(name, rowset.start, rowset.count, rowset.overrides)
        if source is None:
            source = LazySource(rowset.count, self._loader(rowset, name, sizes.get(name, 64)))
        found = self._columns[(rowset.handle, name)] = (source, f"{rowset.identity}:{name}")
        return found


def describe(
    template_doc: str, seed: int, start: int, count: int, overrides: Mapping[str, Any], refs: Any
) -> str:
    """The identity of a row set: everything its rows are a function of."""
    return identity_of(
        {
            "engine": ENGINE,
            "faker": templates.FAKER_VERSION,
            "generation": templates.GENERATION_VERSION,
            "template": hashlib.sha256(template_doc.encode()).hexdigest(),
            "seed": seed,
            "start": start,
            "count": count,
            "overrides": overrides,
            "refs": refs,
        }
    )


def generation_error(exc: templates.GenerationError) -> AgentError:
    """What the script is told when rows cannot be made. A limit hit while a column a `ref` draws
    from was being made (the attempt's memory budget) stays that limit."""
    if isinstance(exc.__cause__, AgentError):
        return exc.__cause__
    if isinstance(exc, templates.CountLimitError):
        return LimitExceeded(str(exc))
    if isinstance(exc, templates.OverrideError):
        return InvalidArgument(str(exc))
    return TemplateError(str(exc))


def preload(rowset: RowSet) -> None:
    """Make every lazy column the row set's `ref`s and `pick_from`s draw from (before shards in
    other processes need them)."""
    pending: list[Any] = list(rowset.refs.sources.values())
    pending += [v.source for v in rowset.overrides.values() if isinstance(v, templates.Pick)]
    while pending:
        source = pending.pop()
        if isinstance(source, LazySource):
            source.loaded()
        elif isinstance(source, templates.ConcatSource):
            pending.extend(source.segments)
