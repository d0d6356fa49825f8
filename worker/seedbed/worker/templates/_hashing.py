"""Counter-based randomness: 64 random bits as a pure function of (stream seed, row index).

    bits = hash64(seed, rows)             # uint64 array, one word per row index
    unit(bits)                            # floats in [0, 1), 53 bits each
    below(bits, n)                        # integers in [0, n), for any n up to 2**64
    weighted(bits, cum)                   # indices by cumulative weights (zero weights never come up)

The hash is SplitMix64 (Steele, Lea and Flood, 2014) evaluated at a position instead of stepped:
word i of stream s is `mix(s + (i + 1) * GAMMA)`, where `mix` is its finaliser (two xor-shift-multiply
rounds). SplitMix64's outputs pass BigCrush as a sequence, and evaluating it at a position costs the
same as stepping it, so a block of a million rows is a handful of whole-array numpy operations and
any set of rows — a shard, a tail, the rows a `ref` points at — is computed directly, in any order,
in any process. Different streams are different 63-bit seeds from BLAKE2b (`_seeds.stream_seed`),
so fields never share words.

Rejected: a sequential generator per block (numpy's `Generator(PCG64)` restarted every few thousand
rows): fast too, but rows depend on the block layout and a tail of a call must generate and drop
the rows before it; Philox/Threefry via `numpy.random.Philox`: counter-based as well, but numpy
exposes them as sequential bit generators, one object per key, not as a function over an array of
counters; Python's `hash()`: salted per process.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["Bits", "Rows", "below", "hash64", "object_array", "unit", "weighted"]

Rows = npt.NDArray[np.int64]
Bits = npt.NDArray[np.uint64]

_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S11 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(11)
_ONE = np.uint64(1)
_MASK64 = (1 << 64) - 1
_FLOAT_EXACT = 1 << 53


def hash64(seed: int, rows: Rows) -> Bits:
    """SplitMix64 word `rows[k]` of stream `seed`, for every k (row indices are non-negative)."""
    x: Bits = rows.astype(np.uint64)  # a copy: everything below works in place on it
    x += _ONE
    x *= _GAMMA  # uint64 arithmetic wraps modulo 2**64, as the algorithm wants
    x += np.uint64(seed & _MASK64)
    x ^= x >> _S30
    x *= _M1
    x ^= x >> _S27
    x *= _M2
    x ^= x >> _S31
    return x


def unit(bits: Bits) -> npt.NDArray[np.float64]:
    """Floats in [0, 1) from the top 53 bits (every value a multiple of 2**-53, as `random()`)."""
    out: npt.NDArray[np.float64] = (bits >> _S11).astype(np.float64)
    out *= 2.0**-53
    return out


def below(bits: Bits, n: int) -> Rows:
    """Integers in [0, n) for 1 <= n <= 2**64: a scaled float up to 2**53 (bias below n / 2**53),
    the remainder beyond (bias below n / 2**64 relative, only for ranges past 2**53)."""
    if n <= 1:
        return np.zeros(len(bits), dtype=np.int64)
    if n <= _FLOAT_EXACT:
        scaled = unit(bits)
        scaled *= float(n)
        out: Rows = scaled.astype(np.int64)
        np.minimum(out, n - 1, out=out)  # float rounding must never reach n
        return out
    if n >= 1 << 64:
        return bits.view(np.int64).copy()  # every 64-bit pattern: the caller offsets with wrap-around
    return (bits % np.uint64(n)).view(np.int64)


def weighted(bits: Bits, cum: npt.NDArray[np.float64]) -> Rows:
    """Indices by cumulative weights `cum` (as `bisect_right(cum, random() * total)`): a value with
    weight 0 is never chosen, whatever its place."""
    x = unit(bits)
    x *= float(cum[-1])
    out: Rows = np.searchsorted(cum, x, side="right").astype(np.int64)
    np.minimum(out, len(cum) - 1, out=out)
    return out


def object_array(values: Any, count: int) -> npt.NDArray[np.object_]:
    """A 1-D object array holding `values` as they are (lists stay list elements, not a 2-D array)."""
    return np.fromiter(values, dtype=object, count=count)
