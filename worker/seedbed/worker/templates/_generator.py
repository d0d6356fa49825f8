"""`Generator`: a `TemplateSpec` plus a seed → columns, rows, or constant-memory batches of rows.

One engine, block-columnar: a call is cut into blocks of rows (`CHUNK_ROWS`, or the batch size of a
stream) and each block is generated a column at a time. Most kinds are kernels — pure functions of
(field seed, row index) over numpy arrays (`_columns`, `_pools`): a block of a million UUIDs or
dates is a few whole-array operations. The rest are drawn row by row from a per-field
`random.Random` restarted every `BLOCK_ROWS` rows (`_draws`: Faker without a pool, normal and
exponential numbers, `unique`), and `compute` fields are rendered per row once the columns they
use exist. `rows()` and `stream()` are the transposition of `columns()`: the same values, so rows
a script materialises equal what a bulk COPY of the columns writes.

Determinism: values are a function of (spec, seed, start, count, overrides) and, for `ref` fields
and `Pick`s, the sources' values. Kernels do not depend on the block layout at all; row-by-row
fields restart their stream at every multiple of BLOCK_ROWS, so `rows(n, start=s)` equals rows
s…s+n-1 of a longer call (skipping at most BLOCK_ROWS - 1 rows of such fields), and `stream()`
yields exactly what `rows()` returns whatever the batch size. `unique` is the one exception:
values are unique within a call, so a retry caused by a collision in rows 0…s-1 of a long call
does not happen in a call that starts at s (shards are unique per shard; put a sequence into the
value for uniqueness across shards).

Derived sources: `derived(field, start, count)` is a `RefSource` over a kernel field's values in
rows start…start+count-1, computed on demand without generating anything else — what a bulk load
records so that later `ref`s can point at a million rows it never held (`_sources`).

Size: a computed field's text is capped at `limits.field_bytes` while it is rendered (`_compute`);
past it the call fails with `SizeLimitError` naming the field, before the text is built.

Rejected: a row loop with per-field closures for everything (version 1: ~35k rows/s for a
customer template; the columnar engine does the same template's pure kinds at well over a million
rows/s); two engines, a fast columnar one for bulk and a row one for scripts (rows would differ
between a script's preview and the load it describes).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from itertools import islice
from random import Random
from typing import Any

import numpy as np

from seedbed.worker.templates._columns import ConstKernel, NullableKernel, NullMask, TakeKernel, kernel
from seedbed.worker.templates._compute import TextTooLarge, compile_compute
from seedbed.worker.templates._draws import Exhausted, domain_size, with_unique
from seedbed.worker.templates._errors import (
    CountLimitError,
    GenerationError,
    MissingRefError,
    SizeLimitError,
    TemplateError,
    UniqueExhaustedError,
)
from seedbed.worker.templates._faker import ClockDependent, new_faker
from seedbed.worker.templates._overrides import check_overrides
from seedbed.worker.templates._picks import Pick
from seedbed.worker.templates._pools import PoolKernel
from seedbed.worker.templates._refs import RefResolver
from seedbed.worker.templates._seeds import BLOCK_ROWS, block_seed, field_seed, stream_seed
from seedbed.worker.templates._sizes import SizeLimits
from seedbed.worker.templates._sources import DerivedColumn, Kernel, MaterialisedColumn, RefSource
from seedbed.worker.templates._spec import (
    ChoiceGen,
    ComputeGen,
    FakerGen,
    FieldSpec,
    RefGen,
    SequenceGen,
    TemplateSpec,
    UuidGen,
)
from seedbed.worker.templates._validate import compute_order

__all__ = ["CHUNK_ROWS", "MAX_ROWS_PER_CALL", "Generator", "Row"]

MAX_ROWS_PER_CALL = 1_000_000
DEFAULT_BATCH_SIZE = 1_000
CHUNK_ROWS = 65_536  # rows per block of `columns()`: bounds numpy temporaries, not the result
MIN_STREAM_CHUNK = 1_024  # a stream of small batches still generates blocks of this many rows
Row = dict[str, Any]
Columns = dict[str, list[Any]]


class _RowWise:
    """A field drawn row by row, called with consecutive row ranges; skips null rows."""

    __slots__ = ("draw", "rng", "seed", "nulls", "next", "row")

    def __init__(self, draw: Callable[[int], Any], rng: Random, seed: int, nulls: NullMask | None) -> None:
        self.draw, self.rng, self.seed, self.nulls = draw, rng, seed, nulls
        self.next: int | None = None
        self.row = 0

    def fill(self, lo: int, hi: int) -> list[Any]:
        if self.next is None:
            self._run(lo - lo % BLOCK_ROWS, lo)  # rows before `start` in its block: drawn, dropped
        self.next = hi
        return self._run(lo, hi)

    def _run(self, lo: int, hi: int) -> list[Any]:
        out: list[Any] = []
        if lo >= hi:
            return out
        nulls = self.nulls(np.arange(lo, hi, dtype=np.int64)).tolist() if self.nulls else None
        draw, append = self.draw, out.append
        j = lo
        while j < hi:
            if j % BLOCK_ROWS == 0:
                self.rng.seed(block_seed(self.seed, j // BLOCK_ROWS))
            stop = min(hi, j - j % BLOCK_ROWS + BLOCK_ROWS)
            for i in range(j, stop):
                self.row = i
                append(None if nulls is not None and nulls[i - lo] else draw(i))
            j = stop
        return out


class _Compute:
    __slots__ = ("name", "render", "uses", "nulls")

    def __init__(
        self, name: str, render: Callable[[Row], str], uses: tuple[str, ...], nulls: NullMask | None
    ) -> None:
        self.name, self.render, self.uses, self.nulls = name, render, uses, nulls

    def fill(self, lo: int, hi: int, columns: Columns) -> list[Any]:
        uses, render = self.uses, self.render
        skip = self.nulls(np.arange(lo, hi, dtype=np.int64)).tolist() if self.nulls else None
        out: list[Any] = []
        for k, values in enumerate(
            zip(*(columns[u] for u in uses), strict=True) if uses else [()] * (hi - lo)
        ):
            out.append(None if skip is not None and skip[k] else render(dict(zip(uses, values, strict=True))))
        return out


class _Plan:
    """One call's columns in order: kernels (pure), row-by-row fields (stateful), computed fields."""

    def __init__(self) -> None:
        self.columns: list[str] = []
        self.kernels: dict[str, Kernel] = {}
        self.rowwise: dict[str, _RowWise] = {}
        self.computes: list[_Compute] = []


class Generator:
    """Rows for one template under one seed. Not thread-safe: use one per thread or task.

        gen = Generator(spec, seed=derive_seed(run_key, call), refs=run_refs)
        columns = gen.columns(1_000_000)                         # {field: [values…]} for COPY
        rows = gen.rows(1000, overrides={"tier": "gold", "customer_id": Pick(ids)})
        for batch in gen.stream(1_000_000, batch_size=10_000): ...
        ids = gen.derived("id", 0, 1_000_000)                    # a RefSource, nothing generated

    `max_rows` is the per-call ceiling on `count` (default 1,000,000); `limits.field_bytes` caps the
    text of one computed value (default 64 KiB). The spec, seed, overrides (a `Pick` too) and
    derived sources pickle, so a call can be repeated in another process with the same result.
    """

    def __init__(
        self,
        spec: TemplateSpec,
        *,
        seed: int,
        refs: RefResolver | None = None,
        max_rows: int = MAX_ROWS_PER_CALL,
        limits: SizeLimits | None = None,
    ) -> None:
        if not isinstance(spec, TemplateSpec):
            raise TypeError(f"spec must be a TemplateSpec (see parse_template), not {type(spec).__name__}")
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise TypeError(f"seed must be an int, not {type(seed).__name__}")
        if not isinstance(max_rows, int) or isinstance(max_rows, bool) or max_rows < 1:
            raise ValueError(f"max_rows must be a positive int, got {max_rows!r}")
        self.spec = spec
        self.seed = seed
        self.max_rows = max_rows
        self.limits = limits if limits is not None else SizeLimits()
        self._refs = refs
        self._fakers: dict[str, Any] = {}
        self._choices: dict[str, MaterialisedColumn] = {}
        self._compute_order = compute_order(spec.fields)

    # -- the three shapes of one call ------------------------------------------------------------

    def columns(self, count: int, overrides: Mapping[str, Any] | None = None, start: int = 0) -> Columns:
        """Rows `start`…`start+count-1` as one list per column, in column order (fields, then the
        fields overrides add). Values are JSON-compatible Python objects, never numpy scalars."""
        plan = self._plan(count, overrides, start)
        out: Columns = {name: [] for name in plan.columns}
        for lo in range(start, start + count, CHUNK_ROWS):
            for name, values in self._block(plan, lo, min(start + count, lo + CHUNK_ROWS), count).items():
                out[name].extend(values)
        return out

    def rows(self, count: int, overrides: Mapping[str, Any] | None = None, start: int = 0) -> list[Row]:
        """Rows `start`…`start+count-1` as JSON-compatible dicts in column order: `columns()`,
        transposed (a block at a time, so only one block's columns exist beside the rows)."""
        plan = self._plan(count, overrides, start)
        return list(self._rows(plan, start, count, CHUNK_ROWS))

    def stream(
        self,
        count: int,
        batch_size: int = DEFAULT_BATCH_SIZE,
        overrides: Mapping[str, Any] | None = None,
        start: int = 0,
    ) -> Iterator[list[Row]]:
        """The same rows as `rows()` in lists of at most `batch_size`, generated as they are consumed.

        Arguments are checked (and refs resolved, pools built) now, not at the first `next()`.
        """
        if (
            not isinstance(batch_size, int)
            or isinstance(batch_size, bool)
            or not 1 <= batch_size <= self.max_rows
        ):
            raise GenerationError(
                f"template {self.spec.id!r}: batch_size must be an integer from 1 to {self.max_rows:,}, "
                f"got {batch_size!r}",
                template_id=self.spec.id,
            )
        plan = self._plan(count, overrides, start)
        rows = self._rows(plan, start, count, min(CHUNK_ROWS, max(batch_size, MIN_STREAM_CHUNK)))

        def batches() -> Iterator[list[Row]]:
            while batch := list(islice(rows, batch_size)):
                yield batch

        return batches()

    def derived(
        self, field: str, start: int, count: int, overrides: Mapping[str, Any] | None = None
    ) -> RefSource | None:
        """A `RefSource` over `field`'s values in rows start…start+count-1 of this generator's rows,
        computed on demand without generating other rows or fields; None unless the field is a pure
        function of (seed, row index) — sequences, UUIDs, uniform numbers, dates, choices, bools,
        constants, pooled Faker fields (nullable or not) — and not overridden."""
        spec = self.spec
        if field not in spec.fields:
            raise GenerationError(
                f"template {spec.id!r} has no field {field!r}", template_id=spec.id, field=field
            )
        _check_range(spec.id, start, count)
        if overrides and field in overrides:
            return None
        kern = self._pure_kernel(field, spec.fields[field])
        if kern is None:
            return None
        return DerivedColumn(kern, start, count, f"{spec.id}.{field}")

    # -- planning --------------------------------------------------------------------------------

    def _plan(self, count: int, overrides: Mapping[str, Any] | None, start: int) -> _Plan:
        spec = self.spec
        if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= self.max_rows:
            raise CountLimitError(template_id=spec.id, count=count, limit=self.max_rows)
        _check_range(spec.id, start, count)
        overrides = check_overrides(spec, overrides or {})
        plan = _Plan()
        for name, field in spec.fields.items():
            plan.columns.append(name)
            if name in overrides:
                plan.kernels[name] = self._override(name, overrides[name])
            elif not isinstance(field.generator, ComputeGen):
                with self._translating(count, [name, 0]):
                    self._plan_field(plan, name, field, count)
        for name in self._compute_order:  # computed fields, each after the computed fields it uses
            field = spec.fields[name]
            gen = field.generator
            if isinstance(gen, ComputeGen) and name not in overrides:
                render = compile_compute(gen.parts, self.limits.field_bytes)
                plan.computes.append(_Compute(name, render, gen.depends_on, self._nulls(name, field)))
        for name, value in overrides.items():
            if name not in spec.fields:
                plan.columns.append(name)
                plan.kernels[name] = self._override(name, value)
        return plan

    def _plan_field(self, plan: _Plan, name: str, field: FieldSpec, count: int) -> None:
        gen = field.generator
        source = self._ref_source(name, gen) if isinstance(gen, RefGen) else None
        if field.nullable >= 1:
            plan.kernels[name] = ConstKernel(None)
            return
        nulls = self._nulls(name, field)
        if field.unique and not field.nullable:
            size = domain_size(gen, source.size if source is not None else 0)
            if size is not None and size < count:
                raise UniqueExhaustedError(
                    template_id=self.spec.id,
                    field=name,
                    obtained=size,
                    requested=count,
                    detail=f"its {gen.kind} generator has only {size:,} possible values",
                )
        kern: Kernel | None
        if source is not None and not field.unique:
            kern = TakeKernel(source, None, stream_seed(self._seed_of(name), "value"))
            if nulls is not None:
                kern = NullableKernel(kern, nulls)
        else:
            kern = self._pure_kernel(name, field)
        if kern is not None:
            prepare = getattr(kern, "prepare", None)
            if prepare is not None:
                prepare()  # builds a Faker pool now: its failures are the call's, before any row
            plan.kernels[name] = kern
            return
        faker = self._faker(gen.locale or self.spec.locale) if isinstance(gen, FakerGen) else None
        rng = Random()
        draw = with_unique(gen, rng, unique=field.unique, faker=faker, ref=source)
        plan.rowwise[name] = _RowWise(draw, rng, self._seed_of(name), nulls)

    def _pure_kernel(self, name: str, field: FieldSpec) -> Kernel | None:
        """The field's kernel when its values are a function of (seed, row index) alone."""
        gen = field.generator
        if field.unique and not isinstance(gen, SequenceGen | UuidGen):
            return None
        if field.nullable >= 1:
            return ConstKernel(None)
        fs = self._seed_of(name)
        kern: Kernel | None
        if isinstance(gen, FakerGen):
            locale = gen.locale or self.spec.locale
            kern = (
                PoolKernel(gen, locale, stream_seed(fs, "pool"), stream_seed(fs, "value"))
                if gen.pool
                else None
            )
        elif isinstance(gen, RefGen | ComputeGen):
            kern = None
        else:
            choices = self._choice_source(name, gen) if isinstance(gen, ChoiceGen) else None
            kern = kernel(gen, (stream_seed(fs, "value"), stream_seed(fs, "value2")), choices)
        nulls = self._nulls(name, field)
        if kern is not None and nulls is not None:
            kern = NullableKernel(kern, nulls)
        return kern

    def _nulls(self, name: str, field: FieldSpec) -> NullMask | None:
        if field.nullable <= 0:
            return None
        return NullMask(field.nullable, stream_seed(self._seed_of(name), "null"))

    def _override(self, name: str, value: Any) -> Kernel:
        if isinstance(value, Pick):
            return TakeKernel(value.source, value.cum, stream_seed(self._seed_of(name), "value"))
        return ConstKernel(value)

    def _choice_source(self, name: str, gen: ChoiceGen) -> MaterialisedColumn:
        source = self._choices.get(name)
        if source is None:
            source = self._choices[name] = MaterialisedColumn(gen.values)
        return source

    def _seed_of(self, name: str) -> int:
        return field_seed(self.seed, self.spec.id, name)

    def _faker(self, locale: str) -> Any:
        gen = self._fakers.get(locale)
        if gen is None:
            gen = self._fakers[locale] = new_faker(locale)
        return gen

    def _ref_source(self, name: str, gen: RefGen) -> RefSource:
        source = self._refs.source(gen.template, gen.field) if self._refs is not None else None
        if source is None or source.size < 1:
            raise MissingRefError(template_id=self.spec.id, field=name, source=gen.source)
        return source

    # -- running ---------------------------------------------------------------------------------

    def _rows(self, plan: _Plan, start: int, count: int, chunk: int) -> Iterator[Row]:
        end = start + count
        for lo in range(start, end, chunk):
            yield from _transpose(self._block(plan, lo, min(end, lo + chunk), count))

    def _block(self, plan: _Plan, lo: int, hi: int, count: int) -> Columns:
        """Rows lo…hi-1 of every column, in column order (computed fields last, then reordered)."""
        rows = np.arange(lo, hi, dtype=np.int64)
        out: Columns = {}
        where: list[Any] = ["", lo]
        with self._translating(count, where):
            for name in plan.columns:
                where[0] = name
                kern = plan.kernels.get(name)
                if kern is not None:
                    out[name] = kern(rows)
                elif name in plan.rowwise:
                    rowwise = plan.rowwise[name]
                    try:
                        out[name] = rowwise.fill(lo, hi)
                    finally:
                        where[1] = rowwise.row
            where[1] = lo
            for compute in plan.computes:
                where[0] = compute.name
                out[compute.name] = compute.fill(lo, hi, out)
        return {name: out[name] for name in plan.columns}

    @contextmanager
    def _translating(self, count: int, where: list[Any]) -> Iterator[None]:
        """Internal failures of field `where[0]` (at row `where[1]`) → the package's errors."""
        spec_id = self.spec.id
        try:
            yield
        except Exhausted as exc:
            raise UniqueExhaustedError(
                template_id=spec_id, field=where[0], obtained=exc.obtained, requested=count, detail=exc.detail
            ) from None
        except TextTooLarge as exc:
            raise SizeLimitError(
                template_id=spec_id, field=where[0], size=exc.size, limit=self.limits.field_bytes
            ) from None
        except ClockDependent as exc:
            raise GenerationError(
                f"template {spec_id!r}: field {where[0]!r}: the Faker provider called {exc.via!r}, which "
                "depends on today's date, so a retried run would generate different rows: use the date "
                "or datetime generator",
                template_id=spec_id,
                field=where[0],
            ) from None
        except TemplateError:
            raise
        except Exception as exc:
            raise GenerationError(
                f"template {spec_id!r}: field {where[0]!r} failed at row {where[1]}: "
                f"{type(exc).__name__}: {exc}",
                template_id=spec_id,
                field=where[0],
            ) from exc


def _transpose(columns: Columns) -> list[Row]:
    names = list(columns)
    return [dict(zip(names, values, strict=True)) for values in zip(*columns.values(), strict=True)]


def _check_range(template_id: str, start: int, count: int) -> None:
    if not isinstance(start, int) or isinstance(start, bool) or start < 0:
        raise GenerationError(
            f"template {template_id!r}: start must be a non-negative integer, got {start!r}",
            template_id=template_id,
        )
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise GenerationError(
            f"template {template_id!r}: count must be a positive integer, got {count!r}",
            template_id=template_id,
        )
