"""Faker pools: `{faker: name, pool: 10000}` draws each row from N values made once, not per row.

A Faker call costs microseconds; picking from a pool costs nanoseconds (a hash, a modulo and an
object-array take per block of rows). The pool is N values from the field's Faker provider, driven
by a `random.Random` seeded from the field's seed alone (`_seeds.stream_seed(field_seed, "pool")`),
never by the block or the row: every shard, process and machine builds the same pool, so row i's
value is `pool[hash(field seed, i) % N]` everywhere.

Pools are cached per process (`_CACHE`, least recently used first out, at most `CACHE_ENTRIES`
pools and `CACHE_VALUES` values in all), keyed by everything that decides them: locale, provider,
arguments, N and the pool seed (the Faker release is fixed for the process). Many shards or calls
of one template in a worker process pay for the pool once. Building happens under a lock, on
private per-locale Faker instances (`_faker.new_faker`), so threads never share a Faker mid-call.

Trade-off, stated in FORMAT.md: a pooled field has at most N distinct values, so a pool cannot be
`unique` (validation refuses the pair), and values repeat about count / N times each.

Rejected: pools per call (each 1M-row shard would pay for the pool again); pools shared across
seeds (two runs would draw from one pool: fine for realism, but the seed would no longer decide
every value); storing pools in the template (a validated spec stays small and JSON).
"""

from __future__ import annotations

import copy
import threading
from collections import OrderedDict
from dataclasses import dataclass
from random import Random
from typing import Any

import numpy as np
import numpy.typing as npt

from seedbed.worker.templates._faker import call_args, new_faker, to_json_value
from seedbed.worker.templates._hashing import Rows, below, hash64, object_array
from seedbed.worker.templates._spec import FakerGen

__all__ = ["CACHE_ENTRIES", "CACHE_VALUES", "MAX_POOL", "PoolKernel", "pool_values"]

MAX_POOL = 1_000_000
CACHE_ENTRIES = 16
CACHE_VALUES = 4_000_000

_lock = threading.Lock()
_CACHE: OrderedDict[tuple[Any, ...], _Pool] = OrderedDict()
_FAKERS: dict[str, Any] = {}


@dataclass(frozen=True, slots=True)
class _Pool:
    values: tuple[Any, ...]
    array: npt.NDArray[np.object_]
    mutable: bool  # some values are lists or objects: rows get copies, never a shared object


def _build(gen: FakerGen, locale: str, seed: int) -> _Pool:
    faker = _FAKERS.get(locale)
    if faker is None:
        faker = _FAKERS[locale] = new_faker(locale)
    faker.random = Random(seed)
    method = getattr(faker, gen.provider)
    args, kwargs = call_args(gen.args, gen.kwargs)
    values = []
    for _ in range(gen.pool or 1):
        value = method(*args, **kwargs)
        values.append(value if type(value) is str else to_json_value(value))
    mutable = any(isinstance(v, list | dict) for v in values)
    return _Pool(tuple(values), object_array(values, len(values)), mutable)


def _pool(gen: FakerGen, locale: str, seed: int) -> _Pool:
    key = (locale, gen.provider, gen.args_json, gen.kwargs_json, gen.pool, seed)
    with _lock:
        pool = _CACHE.get(key)
        if pool is not None:
            _CACHE.move_to_end(key)
            return pool
        pool = _build(gen, locale, seed)
        _CACHE[key] = pool
        total = sum(len(p.values) for p in _CACHE.values())
        while len(_CACHE) > 1 and (len(_CACHE) > CACHE_ENTRIES or total > CACHE_VALUES):
            _, dropped = _CACHE.popitem(last=False)
            total -= len(dropped.values)
        return pool


def pool_values(gen: FakerGen, locale: str, seed: int) -> tuple[Any, ...]:
    """The pool of a faker field (built, or taken from the process cache)."""
    return _pool(gen, locale, seed).values


class PoolKernel:
    """Row i's value: pool[hash(value seed, i) % N]. Picklable: the pool itself is not pickled."""

    __slots__ = ("gen", "locale", "pool_seed", "value_seed")

    def __init__(self, gen: FakerGen, locale: str, pool_seed: int, value_seed: int) -> None:
        self.gen = gen
        self.locale = locale
        self.pool_seed = pool_seed
        self.value_seed = value_seed

    def prepare(self) -> None:
        _pool(self.gen, self.locale, self.pool_seed)

    def __call__(self, rows: Rows) -> list[Any]:
        pool = _pool(self.gen, self.locale, self.pool_seed)
        out: list[Any] = pool.array[below(hash64(self.value_seed, rows), len(pool.values))].tolist()
        if pool.mutable:
            out = [copy.deepcopy(v) if isinstance(v, list | dict) else v for v in out]
        return out
