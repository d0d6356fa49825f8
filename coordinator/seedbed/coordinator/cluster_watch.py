"""Watches the Ray cluster's worker nodes: the metrics show them, the log says when they change, and
while no worker node has joined the coordinator says so every minute (runs wait meanwhile, and each
waiting attempt says why in its run's log: see ``AttemptRunner``)."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

from seedbed.coordinator.observability.metrics import CoordinatorMetrics
from seedbed.coordinator.periodic import PeriodicTask

log = logging.getLogger(__name__)

_REPEAT_SECONDS = 60.0


class _View(Protocol):
    nodes: int
    worker_nodes: int
    sandbox_slots: float
    free_slots: float

    def waiting_reason(self) -> str | None: ...


class ClusterWatch:
    def __init__(
        self,
        view: Callable[[], Awaitable[_View]],
        metrics: CoordinatorMetrics,
        interval: float = 5.0,
        *,
        on_join: Callable[[], Awaitable[object]] | None = None,
    ) -> None:
        """``on_join`` runs when worker nodes appear after a check found none (the engine probe)."""
        self._view = view
        self._on_join = on_join
        self._metrics = metrics
        self._last: tuple[int, float] | None = None
        self._warned_at = float("-inf")
        self._task = PeriodicTask("cluster-watch", self.check, interval)

    def start(self) -> None:
        self._task.start()

    async def aclose(self) -> None:
        await self._task.aclose()

    async def check(self) -> None:
        view = await self._view()
        self._metrics.cluster_seen(view.worker_nodes, view.sandbox_slots, view.free_slots)
        shape = (view.worker_nodes, view.sandbox_slots)
        if view.worker_nodes == 0:
            if shape != self._last or time.monotonic() - self._warned_at >= _REPEAT_SECONDS:
                log.warning("%s", view.waiting_reason())
                self._warned_at = time.monotonic()
        elif shape != self._last:
            # Only after none (the start probed the engine itself when it had worker nodes).
            if self._on_join is not None and self._last is not None and self._last[0] == 0:
                await self._on_join()
            log.info(
                "Ray cluster: %d worker node(s) with %g sandbox slot(s), %d live node(s) in all",
                view.worker_nodes,
                view.sandbox_slots,
                view.nodes,
            )
        self._last = shape
