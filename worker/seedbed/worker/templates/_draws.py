"""Generator specs → per-field `draw(row_index)` closures over one `random.Random` stream each.

Everything numeric uses the field's `random.Random` directly (a `random()` call is ~30 ns; a Faker
round trip is microseconds); Faker is called only for `faker` fields. Closures are built once per
generate call and capture what they need as locals, so a row costs one call per field.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, datetime, timedelta
from random import Random
from typing import Any

from seedbed.worker.templates._faker import call_args, to_json_value
from seedbed.worker.templates._picks import SparseSampler, cumulative, picker
from seedbed.worker.templates._spec import (
    BoolGen,
    ChoiceGen,
    ConstGen,
    DateGen,
    DateTimeGen,
    FakerGen,
    FloatGen,
    GeneratorSpec,
    IntGen,
    RefGen,
    SequenceGen,
    UuidGen,
)

__all__ = ["Exhausted", "compile_draw", "domain_size", "with_modifiers"]

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


def _sequence(spec: SequenceGen) -> Draw:
    start, step, prefix, pad = spec.start, spec.step, spec.prefix or "", f"0{spec.pad}d"
    if not spec.formatted:
        return lambda i: start + step * i
    return lambda i: prefix + format(start + step * i, pad)


def _uuid(rng: Random) -> Draw:
    bits = rng.getrandbits
    clear = ~((0xF000 << 64) | (0xC000 << 48))
    mark = (0x4000 << 64) | (0x8000 << 48)  # version 4, RFC 4122 variant

    def draw(_i: int) -> str:
        h = "%032x" % ((bits(128) & clear) | mark)
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

    return draw


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


def _date(spec: DateGen, rng: Random) -> Draw:
    first, span, rnd = spec.start.toordinal(), spec.end.toordinal() - spec.start.toordinal() + 1, rng.random
    fromordinal = date.fromordinal
    return lambda _i: fromordinal(first + int(rnd() * span)).isoformat()


def _datetime(spec: DateTimeGen, rng: Random) -> Draw:
    unit = _UNITS[spec.precision]
    start: datetime = spec.start
    steps = (spec.end - start) // unit + 1
    rnd, timespec = rng.random, spec.precision
    return lambda _i: (start + unit * int(rnd() * steps)).isoformat(timespec=timespec)


def _const(spec: ConstGen) -> Draw:
    value = spec.value
    if isinstance(value, list | dict):
        text = spec.value_json
        return lambda _i: json.loads(text)  # a fresh object per row: rows never share mutable values
    return lambda _i: value


def compile_draw(
    spec: GeneratorSpec, rng: Random, *, faker: Any = None, ref_values: tuple[Any, ...] = ()
) -> Draw:
    """The plain draw for `spec` (no `unique`, no `nullable`); `compute` is not drawn but rendered."""
    if isinstance(spec, SequenceGen):
        return _sequence(spec)
    if isinstance(spec, UuidGen):
        return _uuid(rng)
    if isinstance(spec, FakerGen):
        return _faker(spec, rng, faker)
    if isinstance(spec, ChoiceGen):
        cum = cumulative(spec.weights) if spec.weights is not None else None
        return picker(spec.values, cum if isinstance(cum, tuple) else None, rng)
    if isinstance(spec, IntGen):
        return _int(spec, rng)
    if isinstance(spec, FloatGen):
        return _float(spec, rng)
    if isinstance(spec, BoolGen):
        rnd, p = rng.random, spec.probability
        return lambda _i: rnd() < p
    if isinstance(spec, DateGen):
        return _date(spec, rng)
    if isinstance(spec, DateTimeGen):
        return _datetime(spec, rng)
    if isinstance(spec, ConstGen):
        return _const(spec)
    if isinstance(spec, RefGen):
        return picker(ref_values, None, rng)
    raise TypeError(f"no draw for {type(spec).__name__}")


def domain_size(spec: GeneratorSpec, ref_values: tuple[Any, ...] = ()) -> int | None:
    """How many distinct values a uniform finite generator has (None: unbounded or not uniform)."""
    if isinstance(spec, ChoiceGen):
        return len(spec.values)
    if isinstance(spec, BoolGen):
        return 2 if 0 < spec.probability < 1 else 1
    if isinstance(spec, IntGen) and spec.distribution == "uniform":
        return spec.max - spec.min + 1
    if isinstance(spec, RefGen):
        return len(ref_values)
    if isinstance(spec, DateGen):
        return spec.end.toordinal() - spec.start.toordinal() + 1
    if isinstance(spec, DateTimeGen):
        return (spec.end - spec.start) // _UNITS[spec.precision] + 1
    return None


def _unique_finite(spec: GeneratorSpec, n: int, rng: Random, ref_values: tuple[Any, ...]) -> Draw:
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
    else:  # a ref: its values may repeat, and each distinct value is handed out once
        seen: set[Any] = set()

        def draw_ref(_i: int) -> Any:
            while True:
                if sampler.exhausted:
                    raise Exhausted(len(seen), f"all {n:,} referenced values used")
                value = ref_values[sampler.draw(rng)]
                key = _hash_key(value)
                if key not in seen:
                    seen.add(key)
                    return value

        return draw_ref
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


def with_modifiers(
    spec: GeneratorSpec,
    rng: Random,
    *,
    unique: bool,
    nullable: float,
    faker: Any = None,
    ref_values: tuple[Any, ...] = (),
) -> Draw:
    """The field's draw: `unique` (nulls exempt, as in SQL) inside `nullable`."""
    size = domain_size(spec, ref_values)
    if not unique or isinstance(spec, SequenceGen | UuidGen):  # unique by construction
        draw = compile_draw(spec, rng, faker=faker, ref_values=ref_values)
    elif size is not None and not (isinstance(spec, ChoiceGen) and spec.weights):
        draw = _unique_finite(spec, size, rng, ref_values)
    else:
        draw = _unique_retry(compile_draw(spec, rng, faker=faker, ref_values=ref_values))
    if nullable <= 0:
        return draw
    rnd, p = rng.random, nullable
    if p >= 1:
        return lambda _i: None
    return lambda i: None if rnd() < p else draw(i)
