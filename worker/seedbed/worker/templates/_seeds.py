"""Seeds: from a run's identity to one random stream per (field, block of rows).

    derive_seed(run_key, call, batch, user_seed)   → the seed of one generate call (or one shard)
    field_seed(seed, template, field)                → the stream of one field in that call
    block_seed(field_seed, block)                    → that stream restarted for rows
                                                       [block·BLOCK_ROWS, (block+1)·BLOCK_ROWS)

Every step is BLAKE2b over an unambiguous encoding, so the numbers are the same in every process
and on every machine (never `hash()`, which is salted per process for strings). One stream per
field means editing, adding or overriding a field never changes the values of the others; one
restart per block of rows means a call with `start=s` reproduces rows s… of a longer call by
skipping at most BLOCK_ROWS - 1 rows, and shards can be generated in any order.
"""

from __future__ import annotations

import hashlib

__all__ = ["BLOCK_ROWS", "block_seed", "derive_seed", "field_seed"]

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
