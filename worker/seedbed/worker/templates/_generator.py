"""`Generator`: a `TemplateSpec` plus a seed → rows, in one list or in constant-memory batches.

Determinism: rows are a function of (spec, seed, start, count, overrides) and, for `ref` fields,
the resolver's values. Each field draws from its own stream (`_seeds.field_seed`), restarted every
`BLOCK_ROWS` rows, so `rows(n, start=s)` equals rows s…s+n-1 of a longer call, and `stream()`
yields exactly what `rows()` returns whatever the batch size. `unique` is the one exception: values
are unique within a call, so a retry caused by a collision in rows 0…s-1 of a long call does not
happen in a call that starts at s (shards are unique per shard; put a sequence into the value for
uniqueness across shards).

Size: a computed field's text is capped at `limits.field_bytes` while it is rendered (`_compute`);
past it the call fails with `SizeLimitError` naming the field, before the text is built.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator, Mapping
from itertools import islice
from random import Random
from typing import Any

from seedbed.worker.templates._compute import TextTooLarge, compile_compute
from seedbed.worker.templates._draws import Exhausted, domain_size, with_modifiers
from seedbed.worker.templates._errors import (
    CountLimitError,
    GenerationError,
    MissingRefError,
    OverrideError,
    SizeLimitError,
    TemplateError,
    UniqueExhaustedError,
)
from seedbed.worker.templates._faker import ClockDependent, new_faker
from seedbed.worker.templates._picks import Pick
from seedbed.worker.templates._refs import RefResolver
from seedbed.worker.templates._seeds import BLOCK_ROWS, block_seed, field_seed
from seedbed.worker.templates._sizes import SizeLimits
from seedbed.worker.templates._spec import FIELD_NAME, ComputeGen, FakerGen, RefGen, TemplateSpec
from seedbed.worker.templates._validate import MAX_FIELDS, compute_order

__all__ = ["MAX_ROWS_PER_CALL", "Generator", "Row"]

MAX_ROWS_PER_CALL = 1_000_000
DEFAULT_BATCH_SIZE = 1_000
Row = dict[str, Any]
_SCALARS = (str, int, float, bool, type(None))


class _Plan:
    """Everything one call needs: the draws, their streams, the computed fields, the column order."""

    def __init__(self) -> None:
        self.columns: list[str] = []
        self.draws: list[tuple[str, Callable[[int], Any]]] = []
        self.computes: list[tuple[str, Callable[[Row], str]]] = []
        self.streams: list[tuple[Random, int]] = []

    def stream(self, seed: int) -> Random:
        rng = Random()
        self.streams.append((rng, seed))
        return rng

    def restart(self, block: int) -> None:
        for rng, seed in self.streams:
            rng.seed(block_seed(seed, block))


class Generator:
    """Rows for one template under one seed. Not thread-safe: use one per thread or task.

        gen = Generator(spec, seed=derive_seed(run_key, call), refs=run_refs)
        rows = gen.rows(1000, overrides={"tier": "gold", "customer_id": Pick(ids)})
        for batch in gen.stream(1_000_000, batch_size=10_000): ...

    `max_rows` is the per-call ceiling on `count` (default 1,000,000); `limits.field_bytes` caps the
    text of one computed value (default 64 KiB).
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
        self._compute_order = compute_order(spec.fields)

    def rows(self, count: int, overrides: Mapping[str, Any] | None = None, start: int = 0) -> list[Row]:
        """Rows `start`…`start+count-1` as JSON-compatible dicts in field order."""
        plan = self._plan(count, overrides, start)
        return list(self._run(plan, count, start))

    def stream(
        self,
        count: int,
        batch_size: int = DEFAULT_BATCH_SIZE,
        overrides: Mapping[str, Any] | None = None,
        start: int = 0,
    ) -> Iterator[list[Row]]:
        """The same rows as `rows()` in lists of at most `batch_size`, generated as they are consumed.

        Arguments are checked (and refs resolved) now, not at the first `next()`.
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
        rows = self._run(plan, count, start)

        def batches() -> Iterator[list[Row]]:
            while batch := list(islice(rows, batch_size)):
                yield batch

        return batches()

    # -- planning --------------------------------------------------------------------------------

    def _plan(self, count: int, overrides: Mapping[str, Any] | None, start: int) -> _Plan:
        spec = self.spec
        if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= self.max_rows:
            raise CountLimitError(template_id=spec.id, count=count, limit=self.max_rows)
        if not isinstance(start, int) or isinstance(start, bool) or start < 0:
            raise GenerationError(
                f"template {spec.id!r}: start must be a non-negative integer, got {start!r}",
                template_id=spec.id,
            )
        overrides = self._check_overrides(overrides or {})
        plan = _Plan()
        for name, field in spec.fields.items():
            plan.columns.append(name)
            gen = field.generator
            if name in overrides:
                plan.draws.append((name, _override_draw(overrides[name], plan.stream(self._seed_of(name)))))
            elif isinstance(gen, ComputeGen):
                continue
            else:
                ref_values = self._ref_values(name, gen) if isinstance(gen, RefGen) else ()
                if field.unique and not field.nullable:
                    self._check_domain(name, domain_size(gen, ref_values), count, gen)
                faker = self._faker(gen.locale or spec.locale) if isinstance(gen, FakerGen) else None
                rng = plan.stream(self._seed_of(name))
                draw = with_modifiers(
                    gen, rng, unique=field.unique, nullable=field.nullable, faker=faker, ref_values=ref_values
                )
                plan.draws.append((name, draw))
        for name in self._compute_order:
            if name not in overrides:
                gen = spec.fields[name].generator
                if isinstance(gen, ComputeGen):
                    plan.computes.append(
                        (
                            name,
                            _nullable_compute(
                                compile_compute(gen.parts, self.limits.field_bytes),
                                spec.fields[name].nullable,
                                plan.stream(self._seed_of(name)),
                            ),
                        )
                    )
        for name, value in overrides.items():
            if name not in spec.fields:
                plan.columns.append(name)
                plan.draws.append((name, _override_draw(value, plan.stream(self._seed_of(name)))))
        return plan

    def _seed_of(self, name: str) -> int:
        return field_seed(self.seed, self.spec.id, name)

    def _faker(self, locale: str) -> Any:
        gen = self._fakers.get(locale)
        if gen is None:
            gen = self._fakers[locale] = new_faker(locale)
        return gen

    def _ref_values(self, name: str, gen: RefGen) -> tuple[Any, ...]:
        values = self._refs.values(gen.template, gen.field) if self._refs is not None else None
        if not values:
            raise MissingRefError(template_id=self.spec.id, field=name, source=gen.source)
        return values if isinstance(values, tuple) else tuple(values)

    def _check_domain(self, name: str, size: int | None, count: int, gen: Any) -> None:
        if size is not None and size < count:
            raise UniqueExhaustedError(
                template_id=self.spec.id,
                field=name,
                obtained=size,
                requested=count,
                detail=f"its {gen.kind} generator has only {size:,} possible values",
            )

    def _check_overrides(self, overrides: Mapping[str, Any]) -> dict[str, Any]:
        tid = self.spec.id
        if not isinstance(overrides, Mapping):
            raise OverrideError(
                f"template {tid!r}: overrides must be a mapping of field names to values", template_id=tid
            )
        extra = [k for k in overrides if k not in self.spec.fields]
        if len(self.spec.fields) + len(extra) > MAX_FIELDS:
            raise OverrideError(
                f"template {tid!r}: overrides add {len(extra)} fields; a row has at most {MAX_FIELDS} fields",
                template_id=tid,
            )
        for name, value in overrides.items():
            if not isinstance(name, str) or not FIELD_NAME.match(name):
                raise OverrideError(
                    f"template {tid!r}: override name {name!r} is not a field name (a letter or "
                    "'_' then up to 62 letters, digits or '_')",
                    template_id=tid,
                )
            if isinstance(value, Pick):
                continue
            if callable(value):
                raise OverrideError(
                    f"template {tid!r}: override {name!r} is a function; overrides are JSON values or "
                    "Pick(values, weights) because they cross a JSON channel",
                    template_id=tid,
                    field=name,
                )
            problem = _json_problem(value, 0)
            if problem:
                raise OverrideError(
                    f"template {tid!r}: override {name!r} {problem}", template_id=tid, field=name
                )
        return dict(overrides)

    # -- running ---------------------------------------------------------------------------------

    def _run(self, plan: _Plan, count: int, start: int) -> Iterator[Row]:
        spec_id, end = self.spec.id, start + count
        draws, computes = plan.draws, plan.computes
        proto = dict.fromkeys(plan.columns)
        name, j = "", start
        i = start - start % BLOCK_ROWS  # rows before `start` in its block are drawn and dropped
        try:
            while i < end:
                plan.restart(i // BLOCK_ROWS)
                stop = min(end, i + BLOCK_ROWS)
                for j in range(i, stop):
                    row = proto.copy()
                    for name, draw in draws:
                        row[name] = draw(j)
                    for name, fn in computes:  # also for dropped rows: a nullable compute has a stream
                        row[name] = fn(row)
                    if j >= start:
                        yield row
                i = stop
        except Exhausted as exc:
            raise UniqueExhaustedError(
                template_id=spec_id, field=name, obtained=exc.obtained, requested=count, detail=exc.detail
            ) from None
        except TextTooLarge as exc:
            raise SizeLimitError(
                template_id=spec_id, field=name, size=exc.size, limit=self.limits.field_bytes
            ) from None
        except ClockDependent as exc:
            raise GenerationError(
                f"template {spec_id!r}: field {name!r}: the Faker provider called {exc.via!r}, which "
                "depends on today's date, so a retried run would generate different rows: use the date "
                "or datetime generator",
                template_id=spec_id,
                field=name,
            ) from None
        except TemplateError:
            raise
        except Exception as exc:
            raise GenerationError(
                f"template {spec_id!r}: field {name!r} failed at row {j}: {type(exc).__name__}: {exc}",
                template_id=spec_id,
                field=name,
            ) from exc


def _override_draw(value: Any, rng: Random) -> Callable[[int], Any]:
    if isinstance(value, Pick):
        return value.draw(rng)
    if isinstance(value, _SCALARS):
        return lambda _i: value
    text = json.dumps(value)
    return lambda _i: json.loads(text)  # a fresh copy per row


def _nullable_compute(fn: Callable[[Row], str], nullable: float, rng: Random) -> Callable[[Row], Any]:
    if nullable <= 0:
        return fn
    rnd = rng.random
    return lambda row: None if rnd() < nullable else fn(row)


def _json_problem(value: Any, depth: int) -> str | None:
    if depth > 32:
        return "is nested too deeply"
    if isinstance(value, float):
        return None if math.isfinite(value) else f"is {value!r}, which is not a JSON number"
    if isinstance(value, _SCALARS):
        return None
    if isinstance(value, list | tuple):
        for item in value:
            if problem := _json_problem(item, depth + 1):
                return problem
        return None
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"has a non-string key {key!r}"
            if problem := _json_problem(item, depth + 1):
                return problem
        return None
    return f"is a {type(value).__name__}, not a JSON value or a Pick"
