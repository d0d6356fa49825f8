"""The spans of one attempt's sandbox, as the Docker driver goes through its phases.

    attempt ─┬─ image check                  the sandbox image, or the one derived for a header
             └─ sandbox                      from the runtime's choice to the script's end
                 ├─ container create         TRACEPARENT (this "sandbox" span) in its environment
                 ├─ container start
                 └─ script                   started → exited; the script's steps and calls below

All are structural (always recorded, whatever the cap). The driver is a generator, so no span is
ever made current here (a context attached before a `yield` would leak into the consumer's code):
each is started with its parent given and ended explicitly, and `finish` ends whatever is still
open with the attempt's outcome. The session learns which span its lines belong to (`in_span`).

The container's `TRACEPARENT` names the "sandbox" span, not "script": the variable is set when the
container is created, before the script starts, and a span's id exists only once it has started.
Rejected: starting "script" before the container is created (its time would include create and
start, which have spans of their own).
"""

from __future__ import annotations

import socket
from collections.abc import Mapping
from typing import Any

from opentelemetry.context import Context
from opentelemetry.trace import INVALID_SPAN, Span

from seedbed.worker import tracing
from seedbed.worker._sandbox_hardening import SandboxRuntime
from seedbed.worker._sandbox_session import RunSession
from seedbed.worker._sandbox_types import Finished, Outcome

__all__ = ["SandboxSpans"]

# Outcomes that are the attempt failing (an abort is the user's choice, not a failure).
_FAILED = frozenset(
    {Outcome.SCRIPT_ERROR, Outcome.TIMEOUT, Outcome.OOM, Outcome.KILLED, Outcome.INFRASTRUCTURE}
)


class SandboxSpans:
    """The driver's spans for one run of `DockerSandboxDriver.run` (see the module's doc)."""

    def __init__(self, traceparent: str, session: RunSession) -> None:
        self._parent: Context | None = tracing.context_from_traceparent(traceparent)
        self._session = session
        self._node = socket.gethostname()
        self._phase: Span = INVALID_SPAN
        self._sandbox: Span = INVALID_SPAN
        self._script: Span = INVALID_SPAN

    def _start(self, name: str, parent: Span | None, attributes: Mapping[str, Any]) -> Span:
        if self._parent is None:
            return INVALID_SPAN
        ctx = tracing.context_of(parent) if parent is not None else self._parent
        return tracing.start_span(name, parent=ctx, attributes=attributes, structural=True)

    def _end_phase(self, **attributes: Any) -> None:
        self._phase.set_attributes(attributes)
        self._phase.end()
        self._phase = INVALID_SPAN

    def image_check(self) -> None:
        """The image is being looked for (and built when missing)."""
        self._phase = self._start("image check", None, {"host.name": self._node})
        self._session.in_span(self._phase)

    def image_picked(self, image: str) -> None:
        self._end_phase(**{"container.image.name": image})

    def sandbox(self, image: str, runtime: SandboxRuntime) -> None:
        """The sandbox is being set up: its span opens (the driver's lines are in it from now)."""
        attributes = {
            "container.image.name": image,
            "container.runtime.name": runtime.name,
            "seedbed.runtime.gvisor": runtime.gvisor,
            "host.name": self._node,
        }
        self._sandbox = self._start("sandbox", None, attributes)
        self._session.in_span(self._sandbox)

    def environment(self) -> dict[str, str]:
        """The container's environment: the sandbox span's TRACEPARENT (nothing without tracing)."""
        traceparent = tracing.traceparent_of(self._sandbox) if self._sandbox.is_recording() else ""
        return {"TRACEPARENT": traceparent} if traceparent else {}

    def creating(self) -> None:
        self._phase = self._start("container create", self._sandbox, {"host.name": self._node})

    def created(self, container_id: str) -> None:
        self._sandbox.set_attribute("container.id", container_id)
        self._end_phase(**{"container.id": container_id})

    def starting(self, container_id: str) -> None:
        self._phase = self._start("container start", self._sandbox, {"container.id": container_id})

    def started(self, container_id: str) -> None:
        """The container runs: "script" opens; SDK calls and the script's lines are under it."""
        self._end_phase()
        self._script = self._start("script", self._sandbox, {"container.id": container_id})
        self._session.in_span(self._script, script=True)

    def finish(self, finished: Finished | None) -> None:
        """End every span still open with the attempt's outcome (None: the consumer stopped
        early, the attempt was abandoned)."""
        outcome = finished.outcome if finished is not None else Outcome.ABORTED
        attributes: dict[str, Any] = {"seedbed.outcome": outcome.value}
        if finished is not None and finished.exit_code is not None:
            attributes["process.exit.code"] = finished.exit_code
        for span in (self._phase, self._script, self._sandbox):
            if not span.is_recording():
                continue
            span.set_attributes(attributes)
            if outcome in _FAILED:
                error = finished.error if finished is not None else None
                tracing.fail(
                    span,
                    error_type=error.type if error is not None else outcome.value,
                    message=error.message if error is not None else "",
                )
            span.end()
        self._phase = self._script = self._sandbox = INVALID_SPAN
