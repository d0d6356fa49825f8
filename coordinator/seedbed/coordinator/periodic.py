"""A background pass repeated at an interval (the janitor's sweep, the trigger pass, lease
recovery): one owner of the task with ``start()``/``aclose()``, a failed pass logged and the next
one coming on time."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


class PeriodicTask:
    def __init__(
        self, name: str, work: Callable[[], Awaitable[object]], interval: float, *, first_wait: bool = False
    ) -> None:
        """``work`` runs every ``interval`` seconds, at once on ``start()`` unless ``first_wait``."""
        self._name = name
        self._work = work
        self._interval = interval
        self._first_wait = first_wait
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name=self._name)

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _loop(self) -> None:
        if self._first_wait:
            await asyncio.sleep(self._interval)
        while True:
            try:
                await self._work()
            except Exception:
                log.exception("%s: a pass failed; the next in %.1fs", self._name, self._interval)
            await asyncio.sleep(self._interval)
