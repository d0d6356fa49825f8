"""Seeds: from a run's identity to the random streams of one field.

    derive_seed(run_key, call, batch, user_seed)   → the seed of one generate call (or one shard)
    field_seed(seed, template, field)                → the seed of one field in that call
    stream_seed(field_seed, purpose)                 → a hashed stream of that field ("value",
                                                       "null", …): `_hashing.hash64(s, rows)`
    block_seed(field_seed, block)                    → the field's `random.Random` stream restarted
                                                       for rows [block·BLOCK_ROWS, (block+1)·BLOCK_ROWS)
                                                       (kinds generated row by row)

Every step is BLAKE2b over an unambiguous encoding, so the numbers are the same in every process
and on every machine (never `hash()`, which is salted per process for strings). One stream per
field means editing, adding or overriding a field never changes the values of the others; one
restart per block of rows means a call with `start=s` reproduces rows s… of a longer call by
skipping at most BLOCK_ROWS - 1 rows, and shards can be generated in any order. Hashed streams need
no restart: a value is a function of its row index.

GENERATION_VERSION names the contract as a whole (these derivations, BLOCK_ROWS, the hash in
`_hashing`, how each kind turns words into values): rows generated under one version are
regenerated identically by the same version with the same Faker release. Version 2 moved numbers,
dates, choices, UUIDs, refs, picks and null masks from per-block `random.Random` streams to hashed
streams, and added Faker pools; Faker fields without a pool, normal and exponential numbers and
`unique` draws (but UUIDs) kept version 1's per-block streams and their values, except in
`nullable` fields (nulls have their own stream now, and null rows consume no draws).
"""

from __future__ import annotations

import hashlib

__all__ = ["BLOCK_ROWS", "GENERATION_VERSION", "block_seed", "derive_seed", "field_seed", "stream_seed"]

GENERATION_VERSION = 2
BLOCK_ROWS = 1024  # part of the determinism contract: changing it changes every generated row
_SEED_BITS = 63  # fits a signed 64-bit integer anywhere a seed is stored or sent


def _digest(*parts: str) -> int:
    payload = "\x1f".join(parts).encode("utf-8")
    raw = hashlib.blake2b(payload, digest_size=8, person=b"seedbed-tmpl-v1").digest()
    return int.from_bytes(raw, "big") >> (64 - _SEED_BITS)


def derive_seed(run_key: str, call: int, batch: int = 0, user_seed: int | None = None) -> int:
    """The seed of generate call number `call` (and shard `batch`) of the run with `run_key`.

    Without `user_seed` the seed follows the run: a retried attempt (same run key, same call numbers)
    regenerates the same rows, another run generates different ones. With `user_seed` the seed
    ignores the run key and the call number: the same `user_seed` gives the same rows in every run and
    wherever the call sits in the script (`batch` still separates shards).
    """
    if not isinstance(run_key, str):
        raise TypeError(f"run_key must be a str, not {type(run_key).__name__}")
    for name, value in (("call", call), ("batch", batch)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    if user_seed is not None:
        if not isinstance(user_seed, int) or isinstance(user_seed, bool):
            raise ValueError(f"user_seed must be an integer or None, got {user_seed!r}")
        return _digest("user", str(user_seed), str(batch))
    return _digest("run", run_key, str(call), str(batch))


def field_seed(seed: int, template: str, field: str) -> int:
    """Includes the template id: two templates with a `uuid` field named `id` differ under one seed."""
    return _digest("field", str(seed), template, field)


def block_seed(field_seed_: int, block: int) -> int:
    return _digest("block", str(field_seed_), str(block))


def stream_seed(field_seed_: int, purpose: str) -> int:
    """The seed of one hashed stream of a field: its values, its null mask, a UUID's second word…"""
    return _digest("stream", str(field_seed_), purpose)
