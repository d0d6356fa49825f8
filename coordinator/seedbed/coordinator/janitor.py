"""The janitor: removes sandbox containers that no attempt needs any more.

It sweeps at start and every ``janitor_interval_seconds``, in two ways:

1. on each worker node, containers past their deadline plus a grace (``SandboxFleet.sweep``): the
   worker died and nothing else would stop them;
2. here, with the store's view (``stale_sandboxes``): containers of runs that have ended, of
   attempts that were superseded (their number is below the run's attempt count: a retry or a
   takeover began a newer attempt), and of runs the store does not know, once they are older than
   ``janitor_unknown_grace_seconds`` (another deployment may share the Docker engine: its runs are
   unknown here, and it keeps sandboxes younger than that).

The container of a run's current attempt is never removed by the second sweep, whatever its age.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from seedbed.coordinator.model import RunState
from seedbed.coordinator.periodic import PeriodicTask
from seedbed.coordinator.runs.ports import SandboxFleet
from seedbed.coordinator.settings import CoordinatorSettings
from seedbed.coordinator.store import Store, now

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Sandbox:
    """A Seedbed container as a worker reported it (from its labels and the engine)."""

    id: str
    run_id: str
    attempt: int
    created: datetime | None
    state: str = ""
    node: str = ""

    @classmethod
    def from_report(cls, data: Mapping[str, str]) -> Sandbox | None:
        """None when the labels are unreadable: the deadline sweep deals with those."""
        try:
            attempt = int(data.get("attempt", ""))
        except ValueError:
            return None
        if not data.get("id") or not data.get("run"):
            return None
        return cls(
            id=data["id"],
            run_id=data["run"],
            attempt=attempt,
            created=_instant(data.get("created", "")),
            state=data.get("state", ""),
            node=data.get("node", ""),
        )


def _instant(text: str) -> datetime | None:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def stale_sandboxes(
    sandboxes: Sequence[Sandbox],
    runs: Mapping[str, tuple[RunState, int]],
    at: datetime,
    unknown_grace: timedelta,
) -> list[tuple[Sandbox, str]]:
    """The sandboxes to remove, each with the reason. ``runs``: state and attempt count by run id,
    for the runs the store knows."""
    out = []
    for box in sandboxes:
        known = runs.get(box.run_id)
        if known is None:
            if box.created is not None and box.created + unknown_grace < at:
                out.append((box, "its run is unknown to the store"))
            continue
        state, attempt_count = known
        if state.is_terminal:
            out.append((box, f"the run has ended ({state})"))
        elif box.attempt < attempt_count:
            out.append((box, f"superseded by attempt {attempt_count}"))
    return out


class SandboxJanitor:
    """Owns the sweeping task: ``start()``, ``aclose()``."""

    def __init__(self, store: Store, fleet: SandboxFleet, settings: CoordinatorSettings) -> None:
        self._store = store
        self._fleet = fleet
        self._interval = settings.janitor_interval_seconds
        self._unknown_grace = timedelta(seconds=settings.janitor_unknown_grace_seconds)
        self._sweeps = PeriodicTask("janitor", self.sweep, self._interval)

    def start(self) -> None:
        self._sweeps.start()

    async def aclose(self) -> None:
        await self._sweeps.aclose()

    async def sweep(self) -> list[str]:
        """One pass of both sweeps; the ids of the containers removed."""
        removed = await self._fleet.sweep()
        if removed:
            log.warning("janitor removed %d sandbox(es) past their deadline: %s", len(removed), removed)
        reports = await self._fleet.list_sandboxes()
        boxes = [
            b for b in (Sandbox.from_report(r) for r in reports) if b is not None and b.id not in removed
        ]
        if not boxes:
            return removed
        runs = await self._store.attempts.current(b.run_id for b in boxes)
        stale = stale_sandboxes(boxes, runs, now(), self._unknown_grace)
        if not stale:
            return removed
        gone = set(await self._fleet.remove_sandboxes([box.id for box, _ in stale]))
        for box, reason in stale:
            if box.id in gone:
                log.warning(
                    "janitor removed sandbox %s of run %s attempt %d: %s",
                    box.id[:12],
                    box.run_id,
                    box.attempt,
                    reason,
                )
        return [*removed, *(box.id for box, _ in stale if box.id in gone)]
