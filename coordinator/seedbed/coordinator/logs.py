"""The log hub: wakes log followers when a run has new lines or changes state.

It carries no data. Followers read lines from the store (the truth) after each wake-up, so a missed
wake-up costs at most one poll interval and never a line.
"""

from __future__ import annotations

import asyncio
import contextlib


class LogHub:
    def __init__(self) -> None:
        self._events: dict[str, asyncio.Event] = {}

    def waiter(self, run_id: str) -> asyncio.Event:
        """The event the next :meth:`notify` for this run sets. Take it *before* reading the store."""
        event = self._events.get(run_id)
        if event is None:
            event = self._events[run_id] = asyncio.Event()
        return event

    def notify(self, run_id: str) -> None:
        event = self._events.pop(run_id, None)
        if event is not None:
            event.set()

    @staticmethod
    async def wait(event: asyncio.Event, timeout: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout)
