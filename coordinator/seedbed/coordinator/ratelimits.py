"""Per-caller rate limits on the calls that create work or store data.

    limits = RateLimiter.from_settings(settings)      # one per coordinator, shared by the servicers
    charge = limits.take(Limit.FIRES, user_id)        # ResourceExhaustedError past the limit
    charge.refund()                                   # the call turned out to cost nothing

Each (caller, limit) pair has a token bucket holding one minute's allowance: a burst of that size
goes through at once, then the bucket refills evenly over the minute. A caller is a user (every key
of a user draws on the same buckets); superusers are limited like everyone else. Past the limit
the call is refused with RESOURCE_EXHAUSTED naming the limit, its setting and when to try again
(also as the ``retry-after`` trailer). One call may cost more than the bucket holds (an upload
larger than a minute's bytes): it goes through when the bucket is full and leaves it in debt, so a
small limit slows large files down without refusing them forever.

What is limited, and where (the servicers, which know what a call costs):

    fires            RunScenario; an idempotent retry of a fire already made is free
    upload bytes     UploadFile, the announced size (at least 1 KiB a file)
    template pushes  PutTemplate, and PreviewTemplate of an unsaved document (both run a worker)
    scenario puts    CreateScenario, UpdateScenario

Buckets live in this coordinator's memory: several coordinators behind one address each allow
the full rate, and a restart refills every bucket.

Rejected: counting in the store (shared by every coordinator, but a write per call on the hot path,
and a store under a flood is what the limit protects); the auth interceptor (it knows the caller
but not what a call costs: a replayed fire is free, an upload costs its size).
"""

from __future__ import annotations

import enum
import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from seedbed.coordinator.errors import ResourceExhaustedError
from seedbed.coordinator.settings import CoordinatorSettings

__all__ = ["Charge", "Limit", "RateLimiter"]

log = logging.getLogger(__name__)

# Buckets kept before full ones (equivalent to no bucket) are dropped.
_PRUNE_AT = 10_000
_MIN_UPLOAD_COST = 1024


@dataclass(frozen=True)
class _Spec:
    field: str  # of CoordinatorSettings
    unit: str  # "5 <unit> a minute"


class Limit(enum.Enum):
    FIRES = _Spec("fires_per_minute", "fires")
    UPLOAD_BYTES = _Spec("upload_bytes_per_minute", "bytes")
    TEMPLATE_PUSHES = _Spec("template_pushes_per_minute", "template pushes")
    SCENARIO_PUTS = _Spec("scenario_puts_per_minute", "scenario puts")

    @property
    def setting(self) -> str:
        return f"SEEDBED_{self.value.field.upper()}"


def upload_cost(size_bytes: int) -> int:
    """What an upload of ``size_bytes`` costs: its size, and at least 1 KiB (an empty file is a
    store write too)."""
    return max(size_bytes, _MIN_UPLOAD_COST)


class _Bucket:
    __slots__ = ("tokens", "updated")

    def __init__(self, tokens: float, now: float) -> None:
        self.tokens = tokens
        self.updated = now


class Charge:
    """What one call took from a bucket; ``refund`` gives it back (once)."""

    def __init__(self, limiter: RateLimiter | None, key: tuple[str, Limit], cost: int) -> None:
        self._limiter = limiter
        self._key = key
        self._cost = cost

    def refund(self) -> None:
        if self._limiter is not None:
            self._limiter._give_back(self._key, self._cost)
            self._limiter = None


class RateLimiter:
    """Token buckets per (caller, limit). ``per_minute[limit]`` of 0 (or absent): unlimited."""

    def __init__(self, per_minute: Mapping[Limit, int], clock: Callable[[], float] = time.monotonic) -> None:
        self._per_minute = {limit: n for limit, n in per_minute.items() if n > 0}
        self._clock = clock
        self._buckets: dict[tuple[str, Limit], _Bucket] = {}
        self._lock = threading.Lock()  # servicers run on one loop, but nothing here may interleave

    @classmethod
    def from_settings(cls, settings: CoordinatorSettings) -> RateLimiter:
        return cls({limit: int(getattr(settings, limit.value.field)) for limit in Limit})

    def take(self, limit: Limit, caller: str, cost: int = 1) -> Charge:
        """Take ``cost`` from the caller's bucket, or raise ResourceExhaustedError (taking nothing)."""
        capacity = self._per_minute.get(limit)
        if capacity is None:
            return Charge(None, (caller, limit), 0)
        rate = capacity / 60.0
        key = (caller, limit)
        with self._lock:
            now = self._clock()
            bucket = self._buckets.get(key)
            if bucket is None:
                if len(self._buckets) >= _PRUNE_AT:
                    self._prune(now)
                bucket = self._buckets[key] = _Bucket(capacity, now)
            bucket.tokens = min(capacity, bucket.tokens + (now - bucket.updated) * rate)
            bucket.updated = now
            needed = min(cost, capacity)
            if bucket.tokens >= needed:
                bucket.tokens -= cost
                return Charge(self, key, cost)
            wait = (needed - bucket.tokens) / rate
        raise ResourceExhaustedError(_refusal(limit, capacity, cost, wait), wait)

    def _give_back(self, key: tuple[str, Limit], cost: int) -> None:
        capacity = self._per_minute[key[1]]
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is not None:
                bucket.tokens = min(capacity, bucket.tokens + cost)

    def _prune(self, now: float) -> None:
        """Forget the buckets that have refilled: a full bucket and no bucket are the same."""
        full = [
            key
            for key, bucket in self._buckets.items()
            if bucket.tokens + (now - bucket.updated) * self._per_minute[key[1]] / 60.0
            >= self._per_minute[key[1]]
        ]
        for key in full:
            del self._buckets[key]
        log.debug("rate limits: forgot %d refilled buckets, %d kept", len(full), len(self._buckets))


def _refusal(limit: Limit, capacity: int, cost: int, wait: float) -> str:
    what = f"{capacity} {limit.value.unit} a minute"
    size = f" (this call: {cost} {limit.value.unit})" if cost > 1 else ""
    return (
        f"rate limit reached: each caller is allowed {what}{size} ({limit.setting}); "
        f"try again in {math.ceil(wait)} s, or ask the operator to raise {limit.setting}"
    )
