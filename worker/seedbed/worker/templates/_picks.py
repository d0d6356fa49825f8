"""Drawing from finite sets fast: `Pick` (an override), weighted tables, sampling without replacement.

A `Pick` is a source and optional cumulative weights; its rows are drawn a block at a time (a hash,
then a scale or a `searchsorted` over the cumulative weights) — O(log n) per row and no per-call
conversion, so picking from a million ids costs the same as from ten (Faker's `random_element` over
a list converts the list on every call: 8 ms for a million). `picker` is the row-by-row form, for
weighted choices that must be `unique` (retries); `SparseSampler` samples without replacement.
"""

from __future__ import annotations

import itertools
import math
from bisect import bisect_right
from collections.abc import Callable, Sequence
from random import Random
from typing import Any

import numpy as np
import numpy.typing as npt

from seedbed.worker.templates._errors import OverrideError
from seedbed.worker.templates._sources import MaterialisedColumn, RefSource

__all__ = ["Pick", "SparseSampler", "cumulative", "picker"]

MAX_PICK_VALUES = 10_000_000


def cumulative(weights: Sequence[float]) -> tuple[float, ...] | str:
    """Cumulative weights, or a message saying what is wrong with `weights`."""
    for i, w in enumerate(weights):
        if isinstance(w, bool) or not isinstance(w, int | float):
            return f"weights[{i}] is {w!r}, not a number"
        if not math.isfinite(w) or w < 0:
            return f"weights[{i}] is {w!r}; weights must be finite and not negative"
    cum = tuple(itertools.accumulate(float(w) for w in weights))
    if not cum or cum[-1] <= 0:
        return "weights are all zero: at least one must be positive"
    return cum


def picker(values: tuple[Any, ...], cum: tuple[float, ...] | None, rng: Random) -> Callable[[int], Any]:
    """A draw(row) over `values`, uniform or by cumulative weights, driven by `rng`."""
    rnd = rng.random
    n = len(values)
    if cum is None:
        if n == 1:
            only = values[0]
            return lambda _i: only
        return lambda _i: values[int(rnd() * n)]
    total = cum[-1]
    last = n - 1

    def draw(_i: int) -> Any:
        k = bisect_right(cum, rnd() * total)
        return values[k if k < last else last]

    return draw


class Pick:
    """An override that draws each row's value from `values`, uniformly or by `weights`.

        Generator(spec, seed=s).rows(1000, overrides={"customer_id": Pick(customer_ids)})
        Generator(spec, seed=s).rows(1000, overrides={"customer_id": Pick(refs.source(t, "id"))})

    `values` is a list or tuple (copied into a `MaterialisedColumn` once) or any `RefSource` (drawn
    from uniformly: weights need the values listed). Rows draw indices from a hashed stream of the
    field, a block at a time (`_columns.TakeKernel`); values are returned as they are, not copied.
    Picklable, so a call with a Pick can run in another process.
    """

    __slots__ = ("source", "weights", "cum")

    def __init__(self, values: Sequence[Any] | RefSource, weights: Sequence[float] | None = None) -> None:
        if isinstance(values, RefSource) and not isinstance(values, Sequence):
            if weights is not None:
                raise OverrideError(
                    f"Pick over a {type(values).__name__} is uniform: weights need the values as a list "
                    "or tuple, one weight per value",
                    template_id="(pick)",
                )
            source: RefSource = values
        elif isinstance(values, str | bytes) or not isinstance(values, Sequence):
            raise OverrideError(
                f"Pick values must be a list or tuple, not {type(values).__name__}", template_id="(pick)"
            )
        else:
            source = MaterialisedColumn(values)
        if source.size < 1:
            raise OverrideError("Pick needs at least one value", template_id="(pick)")
        if isinstance(source, MaterialisedColumn) and source.size > MAX_PICK_VALUES:
            raise OverrideError(
                f"Pick has {source.size:,} values; the limit is {MAX_PICK_VALUES:,}",
                template_id="(pick)",
            )
        self.source = source
        self.cum: npt.NDArray[np.float64] | None = None
        self.weights: tuple[float, ...] | None = None
        if weights is not None:
            if isinstance(weights, str | bytes) or not isinstance(weights, Sequence):
                raise OverrideError("Pick weights must be a list or tuple of numbers", template_id="(pick)")
            if len(weights) != source.size:
                raise OverrideError(
                    f"Pick has {source.size:,} values but {len(weights):,} weights", template_id="(pick)"
                )
            cum = cumulative(weights)
            if isinstance(cum, str):
                raise OverrideError(f"Pick {cum}", template_id="(pick)")
            self.weights = tuple(float(w) for w in weights)
            self.cum = np.array(cum, dtype=np.float64)

    def __repr__(self) -> str:
        kind = "weighted" if self.weights is not None else "uniform"
        return f"Pick({self.source.size:,} values, {kind})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Pick):
            return NotImplemented
        return self.source == other.source and self.weights == other.weights

    def __hash__(self) -> int:
        return hash((self.source.size, self.weights is None))


class SparseSampler:
    """Draws 0..n-1 without replacement: a Fisher–Yates shuffle that stores only the swaps made.

    O(1) per draw and O(draws) memory whatever n is, so `unique` over a finite domain (a choice, an
    int range, a ref's values) never needs retries and can hand out every value.
    """

    __slots__ = ("n", "taken", "_swaps")

    def __init__(self, n: int) -> None:
        self.n = n
        self.taken = 0
        self._swaps: dict[int, int] = {}

    @property
    def exhausted(self) -> bool:
        return self.taken >= self.n

    def draw(self, rng: Random) -> int:
        k = self.taken
        j = k + int(rng.random() * (self.n - k)) if self.n - k < 1 << 52 else rng.randrange(k, self.n)
        swaps = self._swaps
        picked = swaps.get(j, j)
        front = swaps.pop(k, k)
        if j != k:
            swaps[j] = front
        self.taken = k + 1
        return picked
