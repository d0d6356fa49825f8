"""The writer gate: at most `max_writers` shard writers write to one connection at once, across every
run and every node of the Ray cluster.

    with writer_slot(key, limit, holder="run_…/shard 3", wait_timeout=600, cancelled=stopping):
        copy_rows(...)        # at most `limit` holders of `key` are in here, cluster-wide

One named, detached Ray actor ("seedbed-writer-gate" in namespace "seedbed", no CPU), created by
whichever worker or driver needs it first, keeps per key the leases of the holders and a FIFO queue
of waiters (`SlotTable`, pure logic). A waiter polls it (every 20 ms, backing off to 0.5 s) and is
admitted when its place in the queue is below the number of free slots: admissions follow arrival
order. A waiter that stops polling loses its place after `WAITER_TTL_SECONDS`.

A slot is a lease, renewed by a background thread every third of its TTL (`lease_ttl`, 30 s by
default); the actor drops a lease not renewed in time, so a holder whose process dies (Ray kills
it, the node is lost) frees its slot within one TTL. A renewal that finds its lease dropped (a
stalled process, an actor restarted with an empty book) takes it back, even over the limit: the
holder is writing anyway, and counting it keeps later writers waiting. Release is idempotent; every
entry into `writer_slot` gets its own lease token, so two writers never share a slot whatever
`holder` says.

The limit is the caller's. When callers of one key disagree (the connection was edited while runs
were writing), the smallest limit among the current holders, waiters and the caller is in force: a
lowered limit applies at once to new writers, a raised one once the writers under the old limit
are gone.

Errors: `WriterGateError` ← `WriterSlotTimeout` (no slot within `wait_timeout`), `WriterSlotCancelled`
(`cancelled()` turned true while waiting). A limit that is not an int >= 1 is a `ValueError`.

Rejected: Ray custom resources (declared per node when the node starts; they cannot be created
per connection at run time); an advisory lock in the target database (needs the target's
cooperation, and a connection per waiter); a limit per run (does not bound the writers of several
runs on one target); an async actor holding each waiter's call open (a waiter killed while queued
would be admitted and hold a slot for a full TTL; polling proves the waiter is alive).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import ray

logger = logging.getLogger(__name__)

GATE_NAMESPACE = "seedbed"
GATE_ACTOR_NAME = "seedbed-writer-gate"
DEFAULT_LEASE_TTL_SECONDS = 30.0
WAITER_TTL_SECONDS = 5.0
ON_WAIT_INTERVAL_SECONDS = 5.0
_POLL_FIRST, _POLL_MAX = 0.02, 0.5
_CALL_TIMEOUT_SECONDS = 10.0


class WriterGateError(Exception):
    """A writer could not get a slot on its connection."""

    def __init__(self, message: str, *, key: str, waited_seconds: float) -> None:
        super().__init__(message)
        self.key, self.waited_seconds = key, waited_seconds


class WriterSlotTimeout(WriterGateError):
    """No slot came free within `wait_timeout`; `busy` holders were in, `ahead` waiters before us."""

    def __init__(self, *, key: str, waited_seconds: float, limit: int, busy: int, ahead: int) -> None:
        message = (
            f"no writer slot on {key!r} within {waited_seconds:.1f} s: {busy} of {limit} busy, "
            f"{ahead} waiting ahead; raise the connection's max_writers or the wait timeout"
        )
        super().__init__(message, key=key, waited_seconds=waited_seconds)
        self.limit, self.busy, self.ahead = limit, busy, ahead


class WriterSlotCancelled(WriterGateError):
    """The writer was cancelled while it waited for a slot."""

    def __init__(self, *, key: str, waited_seconds: float) -> None:
        message = f"cancelled after waiting {waited_seconds:.1f} s for a writer slot on {key!r}"
        super().__init__(message, key=key, waited_seconds=waited_seconds)


def check_limit(limit: object) -> int:
    """`limit` as a writer count, or ValueError: an int >= 1."""
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValueError(f"max_writers must be an integer of at least 1, got {limit!r}")
    return limit


@dataclass(frozen=True)
class Admission:
    """What the gate said to a waiter: admitted, or its place (`ahead` waiters before it)."""

    granted: bool
    limit: int
    busy: int
    ahead: int = 0


@dataclass
class _Entry:
    limit: int
    expires: float


@dataclass
class _Book:
    holders: dict[str, _Entry] = field(default_factory=dict)
    waiters: OrderedDict[str, _Entry] = field(default_factory=OrderedDict)


class SlotTable:
    """Leases and FIFO queues of writer slots, per key; time from `clock` (seconds). The gate actor."""

    def __init__(
        self, *, waiter_ttl: float = WAITER_TTL_SECONDS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._keys: dict[str, _Book] = {}
        self._waiter_ttl, self._clock = waiter_ttl, clock

    def admit(self, key: str, token: str, limit: int, lease_ttl: float) -> Admission:
        """Admit `token` if a slot is free and no earlier waiter is due one; else queue it."""
        check_limit(limit)
        now, book = self._clock(), self._book(key)
        if token in book.holders:
            book.holders[token] = _Entry(limit, now + lease_ttl)
            return Admission(True, self._limit(book, limit), len(book.holders))
        book.waiters[token] = _Entry(limit, now + self._waiter_ttl)
        in_force = self._limit(book, limit)
        ahead = list(book.waiters).index(token)
        if ahead < in_force - len(book.holders):
            del book.waiters[token]
            book.holders[token] = _Entry(limit, now + lease_ttl)
            return Admission(True, in_force, len(book.holders))
        return Admission(False, in_force, len(book.holders), ahead)

    def renew(self, key: str, token: str, limit: int, lease_ttl: float) -> bool:
        """Extend the lease of `token`; False if it had lapsed (it is taken back all the same)."""
        book = self._book(key)
        held = token in book.holders
        book.holders[token] = _Entry(limit, self._clock() + lease_ttl)
        return held

    def release(self, key: str, token: str) -> None:
        """Give up the slot or the place in the queue of `token`, if it has one."""
        book = self._book(key)
        book.holders.pop(token, None)
        book.waiters.pop(token, None)
        if not book.holders and not book.waiters:
            del self._keys[key]  # keys come and go with connections: keep the book small

    def busy(self, key: str) -> int:
        return len(self._book(key).holders) if key in self._keys else 0

    def _book(self, key: str) -> _Book:
        book = self._keys.setdefault(key, _Book())
        now = self._clock()
        for entries in (book.holders, book.waiters):
            for token in [t for t, e in entries.items() if e.expires <= now]:
                del entries[token]
        return book

    @staticmethod
    def _limit(book: _Book, limit: int) -> int:
        return min(
            [limit, *(e.limit for e in book.holders.values()), *(e.limit for e in book.waiters.values())]
        )


# The actor is the table itself: Ray runs its calls one at a time.
_GateActor: Any = ray.remote(SlotTable)
_handle_lock = threading.Lock()
_handle: Any = None


def gate_actor(*, fresh: bool = False) -> Any:
    """A handle to the cluster's gate actor, created if it does not exist yet."""
    global _handle
    with _handle_lock:
        if _handle is None or fresh:
            _handle = _GateActor.options(
                name=GATE_ACTOR_NAME,
                namespace=GATE_NAMESPACE,
                lifetime="detached",
                get_if_exists=True,
                num_cpus=0,
                # On the head: the node a cluster keeps longest (a worker node may be taken away).
                resources={"node:__internal_head__": 0.001},
                max_restarts=-1,  # a restarted gate has an empty book; renewals refill it
                max_task_retries=-1,  # every call is idempotent
            ).remote()
        return _handle


@contextmanager
def writer_slot(
    key: str,
    limit: int,
    *,
    holder: str,
    wait_timeout: float | None = None,
    cancelled: Callable[[], bool] = lambda: False,
    on_wait: Callable[[float], None] | None = None,
    lease_ttl: float = DEFAULT_LEASE_TTL_SECONDS,
) -> Iterator[None]:
    """Hold one of `limit` writer slots of `key` (cluster-wide) for the body of the `with`.

    Waits in FIFO order; `WriterSlotTimeout` after `wait_timeout` seconds (None: no end),
    `WriterSlotCancelled` once `cancelled()` is true while waiting; `on_wait(seconds_waited)` every
    few seconds of waiting. A holder that dies frees its slot within `lease_ttl` seconds.
    """
    check_limit(limit)
    if lease_ttl <= 0:
        raise ValueError(f"lease_ttl must be positive, got {lease_ttl!r}")
    token = f"{holder}#{uuid.uuid4().hex[:12]}"
    try:
        _wait_for_slot(key, token, limit, lease_ttl, wait_timeout, cancelled, on_wait)
        stop = threading.Event()
        renewer = threading.Thread(
            target=_renew_until, args=(stop, key, token, limit, lease_ttl), name=f"lease {token}", daemon=True
        )
        renewer.start()
        try:
            yield
        finally:
            stop.set()
            renewer.join()
    finally:
        try:
            ray.get(gate_actor().release.remote(key, token), timeout=_CALL_TIMEOUT_SECONDS)
        except Exception:  # the lease lapses on its own
            logger.warning("could not release writer slot %s on %r", token, key, exc_info=True)


def _wait_for_slot(
    key: str,
    token: str,
    limit: int,
    lease_ttl: float,
    wait_timeout: float | None,
    cancelled: Callable[[], bool],
    on_wait: Callable[[float], None] | None,
) -> None:
    start = time.monotonic()
    pause, next_report = _POLL_FIRST, start + ON_WAIT_INTERVAL_SECONDS
    last = Admission(False, limit, 0)
    while True:
        try:
            last = ray.get(
                gate_actor().admit.remote(key, token, limit, lease_ttl), timeout=_CALL_TIMEOUT_SECONDS
            )
        except ray.exceptions.RayActorError:  # killed for good: create it again
            gate_actor(fresh=True)
        except ray.exceptions.GetTimeoutError:
            pass  # ask again: the admission is idempotent
        else:
            if last.granted:
                return
        now = time.monotonic()
        waited = now - start
        if cancelled():
            raise WriterSlotCancelled(key=key, waited_seconds=waited)
        if wait_timeout is not None and waited >= wait_timeout:
            raise WriterSlotTimeout(
                key=key, waited_seconds=waited, limit=last.limit, busy=last.busy, ahead=last.ahead
            )
        if on_wait is not None and now >= next_report:
            on_wait(waited)
            next_report = now + ON_WAIT_INTERVAL_SECONDS
        remaining = None if wait_timeout is None else wait_timeout - waited
        time.sleep(pause if remaining is None else min(pause, remaining))
        pause = min(pause * 2, _POLL_MAX)


def _renew_until(stop: threading.Event, key: str, token: str, limit: int, lease_ttl: float) -> None:
    while not stop.wait(lease_ttl / 3):
        try:
            if not ray.get(gate_actor().renew.remote(key, token, limit, lease_ttl), timeout=lease_ttl / 3):
                logger.warning("writer slot %s on %r had lapsed and was taken back", token, key)
        except Exception:  # keep trying: the lease is good for two more periods
            logger.warning("could not renew writer slot %s on %r", token, key, exc_info=True)
