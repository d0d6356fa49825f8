"""`FakeSandboxDriver`: a scripted stand-in for unit tests of code that consumes sandbox events.

It never touches Docker. Integration and end-to-end tests use the real `DockerSandboxDriver`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime

from seedbed.worker._sandbox_types import (
    CallHandler,
    Finished,
    Outcome,
    Output,
    OutputLine,
    SandboxEvent,
    SandboxRequest,
    ScriptError,
    Started,
)

__all__ = ["FakeSandboxDriver"]

Script = Callable[[SandboxRequest], Iterable[SandboxEvent]]


def _now() -> datetime:
    return datetime.now(UTC)


class FakeSandboxDriver:
    """Yields scripted events for each run.

    `script` is either a fixed sequence of events (replayed for every run) or a function of the
    request returning events. The default prints one line and succeeds. `delay` seconds pass
    between events (interruptible by `cancel`), so cancellation paths can be tested; a set
    `cancel` ends the run with Finished(ABORTED). Every request is recorded in `requests`.
    """

    def __init__(self, script: Script | Sequence[SandboxEvent] | None = None, *, delay: float = 0.0) -> None:
        self._script = script
        self._delay = delay
        self.requests: list[SandboxRequest] = []

    @staticmethod
    def events(
        *lines: str,
        outcome: Outcome = Outcome.SUCCEEDED,
        error: ScriptError | None = None,
        exit_code: int | None = None,
        warnings: int = 0,
    ) -> list[SandboxEvent]:
        """Started, one Output with `lines` on stdout, and a Finished with the given outcome."""
        now = _now()
        code = exit_code if exit_code is not None else (0 if outcome is Outcome.SUCCEEDED else 1)
        result: list[SandboxEvent] = [Started(container_id="fake", image="fake:latest", time=now)]
        if lines:
            result.append(Output(lines=tuple(OutputLine("stdout", text, now) for text in lines)))
        result.append(
            Finished(
                outcome=outcome,
                exit_code=code,
                error=error,
                logs_truncated=False,
                dropped_lines=0,
                warnings=warnings,
                time=now,
            )
        )
        return result

    def run(
        self,
        request: SandboxRequest,
        *,
        cancel: threading.Event | None = None,
        on_call: CallHandler | None = None,
    ) -> Iterator[SandboxEvent]:
        self.requests.append(request)
        if self._script is None:
            events: Iterable[SandboxEvent] = self.events(f"hello from {request.run_id}")
        elif callable(self._script):
            events = self._script(request)
        else:
            events = list(self._script)
        waiter = cancel if cancel is not None else threading.Event()
        for event in events:
            if waiter.is_set():
                yield Finished(
                    outcome=Outcome.ABORTED,
                    exit_code=None,
                    error=ScriptError("Aborted", "the run was aborted"),
                    logs_truncated=False,
                    dropped_lines=0,
                    warnings=0,
                    time=_now(),
                )
                return
            yield event
            if isinstance(event, Finished):
                return
            if self._delay:
                waiter.wait(self._delay)
