"""Vectorised kinds: a field's values as a pure function of row indices, a block at a time.

`kernel(gen, seeds, …)` returns a callable rows → list of values (Python str/int/float/bool/None,
never numpy scalars), or None for kinds generated row by row (`_draws`): Faker without a pool,
normal and exponential distributions, and `unique` other than sequences and UUIDs. Every kernel
draws from hashed streams (`_hashing`), so `kernel(np.arange(a, b))` is rows a…b-1 whatever else
was generated, and kernels pickle small (specs, seeds, sources — no tables).

How each kind turns a 64-bit word into a value:

    sequence   start + step × row (no randomness), Python ints, or prefix + zero-padded text
    uuid       two words ("value", "value2") → 128 bits, version 4 and the RFC 4122 variant set,
               hex text built as bytes for the whole block and split once
    int        min + below(word, max - min + 1)   (64-bit wrap-around past 2**53)
    float      min + unit(word) × (max - min), rounded to `decimals` and kept in [min, max]
    bool       unit(word) < probability
    choice     values[below(word, n)], or by cumulative weights (searchsorted)
    date       start + below(word, days) → ISO text via numpy's datetime64 formatting
    datetime   start + below(word, steps) units → ISO text at the precision, start's UTC offset
    const      the value (lists and objects: a fresh copy per row)
    ref, Pick  source.take(below(word, size)) or by cumulative weights
    faker+pool pool[below(word, N)] (`_pools`)
    nullable   a separate word ("null"): unit(word) < p → null

Rejected: numpy string arrays as the output (fixed-width `U` arrays cost 4 bytes a character and
convert back anyway); Python `datetime` per row (~1 µs a value; numpy formats a block at once).
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt

from seedbed.worker.templates._hashing import Rows, below, hash64, unit, weighted
from seedbed.worker.templates._sources import Kernel, RefSource
from seedbed.worker.templates._spec import (
    BoolGen,
    ChoiceGen,
    ConstGen,
    DateGen,
    DateTimeGen,
    FloatGen,
    GeneratorSpec,
    IntGen,
    SequenceGen,
    UuidGen,
)

__all__ = ["ConstKernel", "NullMask", "NullableKernel", "TakeKernel", "kernel"]

_INT64 = 1 << 63
_HEX4 = np.array(
    [
        sum(ord("0123456789abcdef"[(i >> (12 - 4 * j)) & 15]) << (8 * j) for j in range(4))
        for i in range(65536)
    ],
    dtype=np.uint32,
)  # 16 bits → their four hex characters as little-endian bytes
_EPOCH_DAY = date(1970, 1, 1).toordinal()
_UNITS: dict[str, Any] = {"seconds": "s", "milliseconds": "ms", "microseconds": "us"}
_STEP = {"seconds": 1_000_000, "milliseconds": 1_000, "microseconds": 1}  # microseconds per unit


class SequenceKernel:
    __slots__ = ("gen",)

    def __init__(self, gen: SequenceGen) -> None:
        self.gen = gen

    def __call__(self, rows: Rows) -> list[Any]:
        gen = self.gen
        start, step = gen.start, gen.step
        n = len(rows)
        if n and int(rows[-1]) - int(rows[0]) == n - 1:  # contiguous: a range, no per-row multiply
            first = start + step * int(rows[0])
            values: Any = range(first, first + step * n, step)
        else:
            values = [start + step * i for i in rows.tolist()]
        if not gen.formatted:
            return list(values)
        prefix, pad = gen.prefix or "", f"0{gen.pad}d"
        return [prefix + format(v, pad) for v in values]


class UuidKernel:
    __slots__ = ("high", "low")

    def __init__(self, high: int, low: int) -> None:
        self.high, self.low = high, low

    def __call__(self, rows: Rows) -> list[Any]:
        n = len(rows)
        hi, lo = hash64(self.high, rows), hash64(self.low, rows)
        hi &= np.uint64(0xFFFF_FFFF_FFFF_0FFF)
        hi |= np.uint64(0x4000)  # version 4
        lo &= np.uint64(0x3FFF_FFFF_FFFF_FFFF)
        lo |= np.uint64(0x8000_0000_0000_0000)  # RFC 4122 variant
        hexed = np.empty((n, 8), dtype=np.uint32)
        mask = np.uint64(0xFFFF)
        for k, (word, shift) in enumerate(
            ((hi, 48), (hi, 32), (hi, 16), (hi, 0), (lo, 48), (lo, 32), (lo, 16), (lo, 0))
        ):
            hexed[:, k] = _HEX4[((word >> np.uint64(shift)) & mask).astype(np.intp)]
        digits = hexed.view(np.uint8)
        text = np.empty((n, 37), dtype=np.uint8)
        for dst, src in ((0, 0), (9, 8), (14, 12), (19, 16), (24, 20)):
            width = 12 if dst == 24 else 8 if dst == 0 else 4
            text[:, dst : dst + width] = digits[:, src : src + width]
        text[:, [8, 13, 18, 23]] = ord("-")
        text[:, 36] = ord("\n")
        return text.tobytes().decode("ascii").splitlines()


class IntKernel:
    __slots__ = ("lo", "span", "seed")

    def __init__(self, gen: IntGen, seed: int) -> None:
        self.lo, self.span, self.seed = gen.min, gen.max - gen.min + 1, seed

    def __call__(self, rows: Rows) -> list[Any]:
        offset = below(hash64(self.seed, rows), self.span)
        if self.span <= 1 << 53 and abs(self.lo) < _INT64 - self.span:
            return (offset + self.lo).tolist()  # type: ignore[no-any-return]
        wrapped = offset.view(np.uint64) + np.uint64(self.lo % (1 << 64))  # lands in [min, max]
        return wrapped.view(np.int64).tolist()  # type: ignore[no-any-return]


class FloatKernel:
    __slots__ = ("gen", "seed")

    def __init__(self, gen: FloatGen, seed: int) -> None:
        self.gen, self.seed = gen, seed

    def __call__(self, rows: Rows) -> list[Any]:
        gen = self.gen
        x = unit(hash64(self.seed, rows))
        x *= gen.max - gen.min
        x += gen.min
        if gen.decimals is not None:
            x = np.round(x, gen.decimals)
            np.clip(x, gen.min, gen.max, out=x)
        return x.tolist()  # type: ignore[no-any-return]


class BoolKernel:
    __slots__ = ("p", "seed")

    def __init__(self, gen: BoolGen, seed: int) -> None:
        self.p, self.seed = gen.probability, seed

    def __call__(self, rows: Rows) -> list[Any]:
        return (unit(hash64(self.seed, rows)) < self.p).tolist()  # type: ignore[no-any-return]


class TakeKernel:
    """Values from a source (a choice's values, a ref's source, a Pick), uniform or weighted."""

    __slots__ = ("source", "cum", "seed")

    def __init__(self, source: RefSource, cum: npt.NDArray[np.float64] | None, seed: int) -> None:
        self.source, self.cum, self.seed = source, cum, seed

    def __call__(self, rows: Rows) -> list[Any]:
        bits = hash64(self.seed, rows)
        indices = weighted(bits, self.cum) if self.cum is not None else below(bits, self.source.size)
        return self.source.take(indices)


class DateKernel:
    __slots__ = ("first", "days", "seed")

    def __init__(self, gen: DateGen, seed: int) -> None:
        self.first = gen.start.toordinal() - _EPOCH_DAY
        self.days = gen.end.toordinal() - gen.start.toordinal() + 1
        self.seed = seed

    def __call__(self, rows: Rows) -> list[Any]:
        days = below(hash64(self.seed, rows), self.days) + self.first
        return np.datetime_as_string(days.astype("datetime64[D]"), unit="D").tolist()  # type: ignore[no-any-return]


class DateTimeKernel:
    """Wall-clock arithmetic from `start` (as `start + unit × k` on an aware datetime), printed by
    numpy at the precision, then `start`'s UTC offset appended as `isoformat` writes it."""

    __slots__ = ("first", "steps", "step", "unit", "suffix", "seed")

    def __init__(self, gen: DateTimeGen, seed: int) -> None:
        naive = gen.start.replace(tzinfo=None)
        self.first = (naive - datetime(1970, 1, 1)) // timedelta(microseconds=1)
        self.step = _STEP[gen.precision]
        self.steps = (gen.end - gen.start) // timedelta(microseconds=self.step) + 1
        self.unit = _UNITS[gen.precision]
        self.suffix = gen.start.isoformat()[len(naive.isoformat()) :]
        self.seed = seed

    def __call__(self, rows: Rows) -> list[Any]:
        micros = below(hash64(self.seed, rows), self.steps)
        micros *= self.step
        micros += self.first
        stamps = micros.astype("datetime64[us]")
        text: list[str] = np.datetime_as_string(stamps, unit=self.unit).tolist()
        if self.suffix:
            suffix = self.suffix
            return [t + suffix for t in text]
        return text


class ConstKernel:
    __slots__ = ("value", "text")

    def __init__(self, value: Any) -> None:
        mutable = not isinstance(value, str | int | float | bool | type(None))  # lists, objects, tuples
        self.value = None if mutable else value
        self.text = json.dumps(value) if mutable else None

    def __call__(self, rows: Rows) -> list[Any]:
        if self.text is None:
            return [self.value] * len(rows)
        text = self.text
        return [json.loads(text) for _ in range(len(rows))]  # rows never share mutable values


class NullMask:
    """Which rows of a `nullable: p` field are null: a separate hashed word per row, < p."""

    __slots__ = ("p", "seed")

    def __init__(self, p: float, seed: int) -> None:
        self.p, self.seed = p, seed

    def __call__(self, rows: Rows) -> npt.NDArray[np.bool_]:
        return unit(hash64(self.seed, rows)) < self.p


class NullableKernel:
    """`inner`'s values with null where the mask says so; `inner` runs on the other rows only."""

    __slots__ = ("inner", "mask")

    def __init__(self, inner: Kernel, mask: NullMask) -> None:
        self.inner, self.mask = inner, mask

    def prepare(self) -> None:
        prepare = getattr(self.inner, "prepare", None)
        if prepare is not None:
            prepare()

    def __call__(self, rows: Rows) -> list[Any]:
        if self.mask.p >= 1:
            return [None] * len(rows)
        keep = ~self.mask(rows)
        values = self.inner(rows[keep])
        out = np.full(len(rows), None, dtype=object)
        out[keep] = np.fromiter(values, dtype=object, count=len(values))
        result: list[Any] = out.tolist()
        return result


def kernel(
    gen: GeneratorSpec, seeds: tuple[int, int], choice_source: RefSource | None = None
) -> Kernel | None:
    """The kernel of a non-unique (or unique by construction) field, or None: generated row by row.

    `seeds` are the field's "value" and "value2" stream seeds; `choice_source` holds a choice's
    values as a source (built by the caller, which caches it)."""
    value, value2 = seeds
    if isinstance(gen, SequenceGen):
        return SequenceKernel(gen)
    if isinstance(gen, UuidGen):
        return UuidKernel(value, value2)
    if isinstance(gen, IntGen) and gen.distribution == "uniform":
        return IntKernel(gen, value)
    if isinstance(gen, FloatGen) and gen.distribution == "uniform":
        return FloatKernel(gen, value)
    if isinstance(gen, BoolGen):
        return BoolKernel(gen, value)
    if isinstance(gen, ChoiceGen) and choice_source is not None:
        cum = np.cumsum(gen.weights, dtype=np.float64) if gen.weights is not None else None
        return TakeKernel(choice_source, cum, value)
    if isinstance(gen, DateGen):
        return DateKernel(gen, value)
    if isinstance(gen, DateTimeGen):
        return DateTimeKernel(gen, value)
    if isinstance(gen, ConstGen):
        return ConstKernel(gen.value)
    return None
