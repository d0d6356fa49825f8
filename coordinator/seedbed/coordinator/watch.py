"""WatchRuns: follow fires and runs until every one is resolved (what client waits ride on).

The stream sends the current state of each fire and run, then one message per change, following a
fire into its run once it has one, and ends with ``done`` once every fire is cancelled or its run
ended and every run ended.

Changes are seen by reading the store again (the truth) whenever the hub announces one of the
watched ids (a run's state or log changed here, a fire was resolved here) and at least every
``poll_seconds``, which covers changes made by another coordinator sharing the store. A message is
sent when the record's contract form differs from the one sent last, so nothing is sent twice and a
missed wake-up costs at most one poll interval.

Rejected: a stream per id (a client waiting for 500 fires would hold 500 streams), and pushing
records through the hub (a change made by another coordinator never reaches this process's hub).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Collection, Iterable, Sequence

from seedbed.api.v1 import run_pb2
from seedbed.coordinator import _convert as cv
from seedbed.coordinator.errors import InvalidArgumentError, NotFoundError
from seedbed.coordinator.logs import LogHub
from seedbed.coordinator.model import FireState
from seedbed.coordinator.store import FireRecord, RunRecord, Store

MAX_WATCHED_IDS = 1000
POLL_SECONDS = 1.0


def validate_watch(fire_ids: Sequence[str], run_ids: Sequence[str]) -> tuple[list[str], list[str]]:
    """The ids, without repeats, in the order given; INVALID_ARGUMENT for none or too many."""
    fires = list(dict.fromkeys(fire_ids))
    runs = list(dict.fromkeys(run_ids))
    total = len(fires) + len(runs)
    if total == 0:
        raise InvalidArgumentError("fire_ids", "name at least one fire or run to watch (fire_ids, run_ids)")
    if total > MAX_WATCHED_IDS:
        raise InvalidArgumentError(
            "fire_ids",
            f"{total} fire and run ids in all; at most {MAX_WATCHED_IDS}: watch them in several streams",
        )
    return fires, runs


class RunWatch:
    """One WatchRuns stream. Check the ids with :meth:`open`, then iterate :meth:`events`."""

    def __init__(
        self,
        store: Store,
        hub: LogHub,
        fire_ids: Sequence[str],
        run_ids: Sequence[str],
        *,
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        self._store = store
        self._hub = hub
        self._fire_ids, self._run_ids = validate_watch(fire_ids, run_ids)
        self._poll = poll_seconds
        self._sent: dict[str, bytes] = {}
        # Ids that may still change (pending fires, active runs): the ones whose wake-ups count.
        # Empty before the first read: waiting on ids that are already resolved would leave their
        # events in the hub for good (nobody notifies them again). The first read is therefore
        # followed at once by a second, covered by the wake-ups of the ids the first found open.
        self._open: list[str] = []

    async def open(self, hidden: Collection[str] = ()) -> None:
        """NOT_FOUND naming every id the store does not know or the caller may not see (``hidden``),
        alike."""
        fires = await self._store.fires.get_fires(self._fire_ids)
        runs = await self._store.get_runs(self._run_ids)
        unknown = [i for i in self._fire_ids if i not in fires or i in hidden]
        unknown += [i for i in self._run_ids if i not in runs or i in hidden]
        if unknown:
            shown = ", ".join(unknown[:20]) + (f" and {len(unknown) - 20} more" if len(unknown) > 20 else "")
            raise NotFoundError("fire or run", shown)

    async def events(self) -> AsyncIterator[run_pb2.WatchRunsResponse]:
        """The current state of each, then each change; the last message has ``done`` set."""
        armed = False  # whether this pass's wake-ups were taken before its read
        while True:
            wakes = self._waiters()
            armed_now, armed = armed, True
            fires = await self._store.fires.get_fires(self._fire_ids)
            followed = self._followed_runs(fires[i] for i in self._fire_ids if i in fires)
            runs = await self._store.get_runs(followed)
            attempts = await self._store.attempts.for_runs(list(runs))
            reports = await self._store.reports.for_runs(list(runs))
            changes: list[run_pb2.WatchRunsResponse] = []
            for fire in (fires[i] for i in self._fire_ids if i in fires):
                self._changed(changes, fire.id, run_pb2.WatchRunsResponse(fire=cv.fire_to_proto(fire)))
            for run in (runs[i] for i in followed if i in runs):
                msg = run_pb2.WatchRunsResponse(
                    run=cv.run_to_proto(run, attempts.get(run.id, ()), reports.get(run.id, ()))
                )
                self._changed(changes, run.id, msg)
            finished = _all_resolved(fires.values(), runs)
            self._open = [f.id for f in fires.values() if f.state is FireState.PENDING] + [
                r.id for r in runs.values() if not r.state.is_terminal
            ]
            if finished:
                if changes:
                    changes[-1].done = True
                else:
                    changes.append(run_pb2.WatchRunsResponse(done=True))
            for msg in changes:
                yield msg
            if finished:
                return
            if armed_now:
                await _wait_any(wakes, self._poll)
            # Else the first read was not covered by wake-ups (none were taken for ids not known
            # open yet): read again at once, now covered, instead of sleeping a poll interval blind.

    def _followed_runs(self, fires: Iterable[FireRecord]) -> list[str]:
        ids = list(self._run_ids)
        for fire in fires:
            if fire.run_id and fire.run_id not in ids:
                ids.append(fire.run_id)
        return ids

    def _changed(
        self, out: list[run_pb2.WatchRunsResponse], key: str, msg: run_pb2.WatchRunsResponse
    ) -> None:
        body = msg.SerializeToString(deterministic=True)
        if self._sent.get(key) != body:
            self._sent[key] = body
            out.append(msg)

    def _waiters(self) -> list[asyncio.Event]:
        """The hub's events of every id not resolved yet (taken before reading the store)."""
        events: dict[int, asyncio.Event] = {}
        for key in self._open:
            event = self._hub.waiter(key)
            events[id(event)] = event
        return list(events.values())


def _all_resolved(fires: Iterable[FireRecord], runs: dict[str, RunRecord]) -> bool:
    for fire in fires:
        if fire.state is FireState.PENDING:
            return False
        if fire.state is FireState.RUN_CREATED and (
            fire.run_id not in runs or not runs[fire.run_id].state.is_terminal
        ):
            return False
    return all(run.state.is_terminal for run in runs.values())


async def _wait_any(events: list[asyncio.Event], timeout: float) -> None:
    """Until one of the events is set, or the timeout."""
    if not events:
        await asyncio.sleep(timeout)
        return
    waits = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()
        await asyncio.gather(*waits, return_exceptions=True)
