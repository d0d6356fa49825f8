"""The log hub: wakes log followers when a run has new lines or changes state; the step filter of
StreamRunLogs.

It carries no data. Followers read lines from the store (the truth) after each wake-up, so a missed
wake-up costs at most one poll interval and never a line.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from seedbed.coordinator.errors import CoordinatorError, NotFoundError
from seedbed.coordinator.store import LogRecord, RunRecord


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


class UnknownStepError(NotFoundError):
    """StreamRunLogs asked for a step the run does not have; names the steps it has."""

    def __init__(self, run_id: str, wanted: str, known: Sequence[str]) -> None:
        CoordinatorError.__init__(
            self,
            f"run {run_id} has no step {wanted!r}; "
            + (
                f"its steps: {', '.join(known)}"
                if known
                else "it has none recorded (steps are recorded when an attempt ends)"
            ),
        )
        self.kind = "step"
        self.ident = wanted


@dataclass(frozen=True)
class StepFilter:
    """The lines written while a step was open: by the attempt that ran it, between its start and
    end. Those times and the lines' times come from the same worker clock, and the SDK's step
    calls wait for their reply, so a line printed inside the step is stamped inside its window."""

    attempt: int
    windows: tuple[tuple[datetime, datetime | None], ...]

    def holds(self, line: LogRecord) -> bool:
        return line.attempt == self.attempt and any(
            start <= line.at and (end is None or line.at <= end) for start, end in self.windows
        )


def step_filter(run: RunRecord, wanted: str) -> StepFilter:
    """The filter of step ``wanted`` (its number, "2", or its name; a name used by several steps
    takes them all). Raises UnknownStepError naming the steps that exist."""
    steps = list((run.details or {}).get("steps", []))
    known, windows = [], []
    for index, step in enumerate(steps):
        number = int(step.get("number") or index + 1)
        name = str(step.get("name", ""))
        known.append(f"{number} {name!r}")
        if wanted == str(number) or wanted == name:
            start = _time(step.get("start_time"))
            if start is not None:
                windows.append((start, _time(step.get("end_time"))))
    if not windows:
        raise UnknownStepError(run.id, wanted, known)
    return StepFilter(run.attempt_count, tuple(windows))


def _time(value: Any) -> datetime | None:
    if not value:
        return None
    stamp = Timestamp()
    stamp.FromJsonString(str(value))
    return stamp.ToDatetime(tzinfo=UTC)
