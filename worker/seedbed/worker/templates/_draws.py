"""Kinds generated row by row: `draw(row_index)` closures over one `random.Random` stream each.

Most kinds are vectorised (`_columns`); these are the rest, because each value depends on the draws
before it or on a library that draws one value at a time: Faker without a pool, the normal and
exponential distributions (truncated by resampling), and `unique` (sampling without replacement
over finite domains, retries elsewhere). The generator restarts each stream every BLOCK_ROWS rows
(`_seeds.block_seed`) and calls the draw only for rows that are not null (`nullable` is a hashed
mask, `_columns.NullableKernel`). Closures are built once per generate call and capture what they
need as locals, so a row costs one call per such field.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, timedelta
from random import Random
from typing import Any

from seedbed.worker.templates._faker import call_args, to_json_value
from seedbed.worker.templates._picks import SparseSampler, cumulative, picker
from seedbed.worker.templates._sources import RefSource, take_one
from seedbed.worker.templates._spec import (
    BoolGen,
    ChoiceGen,
    DateGen,
    DateTimeGen,
    FakerGen,
    FloatGen,
    GeneratorSpec,
    IntGen,
    RefGen,
)

__all__ = ["Exhausted", "compile_draw", "domain_size", "with_unique"]

Draw = Callable[[int], Any]
MAX_UNIQUE_ATTEMPTS = 100
_TRUNCATION_TRIES = 16
_UNITS = {
    "seconds": timedelta(seconds=1),
    "milliseconds": timedelta(milliseconds=1),
    "microseconds": timedelta(microseconds=1),
}


class Exhausted(Exception):
    """A unique draw ran out of distinct values (internal; the generator adds field and counts)."""

    def __init__(self, obtained: int, detail: str) -> None:
        self.obtained = obtained
        self.detail = detail
        super().__init__(detail)


def _faker(spec: FakerGen, rng: Random, gen: Any) -> Draw:
    method = getattr(gen, spec.provider)
    args, kwargs = call_args(spec.args, spec.kwargs)

    def draw(_i: int) -> Any:
        gen.random = rng
        value = method(*args, **kwargs)
        return value if type(value) is str else to_json_value(value)

    return draw


def _bounded(sample: Callable[[], float], lo: float, hi: float) -> Callable[[], float]:
    """Truncate a distribution to [lo, hi] by resampling (a few tries), then clamping."""

    def draw() -> float:
        for _ in range(_TRUNCATION_TRIES):
            x = sample()
            if lo <= x <= hi:
                return x
        return min(max(x, lo), hi)

    return draw


def _continuous(spec: IntGen | FloatGen, rng: Random, integer: bool) -> Callable[[], float]:
    lo, hi = float(spec.min), float(spec.max)
    if spec.distribution == "normal":
        mean = spec.mean if spec.mean is not None else (lo + hi) / 2
        sd = spec.stddev if spec.stddev is not None else max((hi - lo) / 6, 1e-12)
        normal = rng.normalvariate
        if integer:
            return _bounded(lambda: float(round(normal(mean, sd))), lo, hi)
        return _bounded(lambda: normal(mean, sd), lo, hi)
    mean = spec.mean if spec.mean is not None else lo + (hi - lo) / 4
    if mean <= lo:
        return lambda: lo
    lam = 1.0 / (mean - lo)
    expo = rng.expovariate
    if integer:
        return _bounded(lambda: float(lo + round(expo(lam))), lo, hi)
    return _bounded(lambda: lo + expo(lam), lo, hi)


def _int(spec: IntGen, rng: Random) -> Draw:
    lo, hi = spec.min, spec.max
    if spec.distribution == "uniform":
        span = hi - lo + 1
        if span <= 1 << 52:
            rnd = rng.random
            return lambda _i: lo + int(rnd() * span)
        randrange = rng.randrange
        return lambda _i: randrange(lo, hi + 1)
    sample = _continuous(spec, rng, integer=True)
    return lambda _i: int(sample())


def _float(spec: FloatGen, rng: Random) -> Draw:
    lo, hi, decimals = spec.min, spec.max, spec.decimals
    if spec.distribution == "uniform":
        rnd, width = rng.random, hi - lo
        sample: Callable[[], float] = lambda: lo + rnd() * width  # noqa: E731
    else:
        sample = _continuous(spec, rng, integer=False)
    if decimals is None:
        return lambda _i: sample()
    return lambda _i: min(max(round(sample(), decimals), lo), hi)


def compile_draw(spec: GeneratorSpec, rng: Random, *, faker: Any = None) -> Draw:
    """The plain draw of a kind generated row by row (no `unique`): Faker without a pool, weighted
    choices and numbers (the inner draw of `unique` retries, and the non-uniform distributions)."""
    if isinstance(spec, FakerGen):
        return _faker(spec, rng, faker)
    if isinstance(spec, ChoiceGen):
        cum = cumulative(spec.weights) if spec.weights is not None else None
        return picker(spec.values, cum if isinstance(cum, tuple) else None, rng)
    if isinstance(spec, IntGen):
        return _int(spec, rng)
    if isinstance(spec, FloatGen):
        return _float(spec, rng)
    raise TypeError(f"{type(spec).__name__} is not generated row by row")


def domain_size(spec: GeneratorSpec, ref_size: int = 0) -> int | None:
    """How many distinct values a uniform finite generator has (None: unbounded or not uniform)."""
    if isinstance(spec, ChoiceGen):
        return len(spec.values)
    if isinstance(spec, BoolGen):
        return 2 if 0 < spec.probability < 1 else 1
    if isinstance(spec, IntGen) and spec.distribution == "uniform":
        return spec.max - spec.min + 1
    if isinstance(spec, RefGen):
        return ref_size
    if isinstance(spec, DateGen):
        return spec.end.toordinal() - spec.start.toordinal() + 1
    if isinstance(spec, DateTimeGen):
        return (spec.end - spec.start) // _UNITS[spec.precision] + 1
    return None


def _unique_finite(spec: GeneratorSpec, n: int, rng: Random, ref: RefSource | None) -> Draw:
    """Sampling without replacement over a finite domain: every value can be handed out, no retries."""
    sampler = SparseSampler(n)
    if isinstance(spec, IntGen):
        lo = spec.min
        return lambda _i: lo + _next(sampler, rng, n)
    if isinstance(spec, DateGen):
        first, fromordinal = spec.start.toordinal(), date.fromordinal
        return lambda _i: fromordinal(first + _next(sampler, rng, n)).isoformat()
    if isinstance(spec, DateTimeGen):
        start, unit, timespec = spec.start, _UNITS[spec.precision], spec.precision
        return lambda _i: (start + unit * _next(sampler, rng, n)).isoformat(timespec=timespec)
    if isinstance(spec, BoolGen):
        values: tuple[Any, ...] = (False, True) if n == 2 else (spec.probability >= 1,)
    elif isinstance(spec, ChoiceGen):
        values = spec.values
    elif ref is not None:  # a ref: its values may repeat, and each distinct value is handed out once
        seen: set[Any] = set()

        def draw_ref(_i: int) -> Any:
            while True:
                if sampler.exhausted:
                    raise Exhausted(len(seen), f"all {n:,} referenced values used")
                value = take_one(ref, sampler.draw(rng))
                key = _hash_key(value)
                if key not in seen:
                    seen.add(key)
                    return value

        return draw_ref
    else:
        raise TypeError(f"no unique draw for {type(spec).__name__}")
    return lambda _i: values[_next(sampler, rng, n)]


def _next(sampler: SparseSampler, rng: Random, n: int) -> int:
    if sampler.exhausted:
        raise Exhausted(sampler.taken, f"all {n:,} possible values used")
    return sampler.draw(rng)


def _hash_key(value: Any) -> Any:
    return (
        value
        if isinstance(value, str | int | float | bool) or value is None
        else json.dumps(value, sort_keys=True)
    )


def _unique_retry(inner: Draw) -> Draw:
    seen: set[Any] = set()

    def draw(i: int) -> Any:
        for _ in range(MAX_UNIQUE_ATTEMPTS):
            value = inner(i)
            key = _hash_key(value)
            if key not in seen:
                seen.add(key)
                return value
        raise Exhausted(len(seen), f"{MAX_UNIQUE_ATTEMPTS} attempts in a row gave values already used")

    return draw


def with_unique(
    spec: GeneratorSpec, rng: Random, *, unique: bool, faker: Any = None, ref: RefSource | None = None
) -> Draw:
    """The field's draw, `unique` if asked (the generator skips null rows: nulls are exempt)."""
    size = domain_size(spec, ref.size if ref is not None else 0)
    if not unique:
        return compile_draw(spec, rng, faker=faker)
    if size is not None and not (isinstance(spec, ChoiceGen) and spec.weights):
        return _unique_finite(spec, size, rng, ref)
    return _unique_retry(compile_draw(spec, rng, faker=faker))
