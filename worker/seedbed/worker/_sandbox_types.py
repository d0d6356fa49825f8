"""Value types of the sandbox driver (re-exported by `seedbed.worker.sandbox`)."""

from __future__ import annotations

import enum
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any, Literal, Protocol

__all__ = [
    "CallHandler",
    "Finished",
    "Outcome",
    "Output",
    "OutputLine",
    "SandboxDriver",
    "SandboxEvent",
    "SandboxLimits",
    "SandboxRequest",
    "ScriptError",
    "Started",
]


@dataclass(frozen=True)
class SandboxLimits:
    """Resource ceilings of one attempt. Per-scenario limits may only lower the operator's."""

    timeout: timedelta = timedelta(minutes=10)
    memory_bytes: int = 512 * 2**20
    nano_cpus: int = 1_000_000_000
    pids: int = 128
    nofile: int = 256
    tmpfs_bytes: int = 64 * 2**20
    max_log_bytes: int = 10 * 2**20  # per attempt; beyond: drop, mark truncated, keep draining
    max_line_bytes: int = 16 * 2**10  # longer lines are cut and marked
    max_log_lines: int = 100_000  # per attempt, like max_log_bytes (an empty line is a line)

    def __post_init__(self) -> None:
        if self.timeout <= timedelta(0):
            raise ValueError("SandboxLimits.timeout must be positive")
        for name in (
            "memory_bytes",
            "nano_cpus",
            "pids",
            "nofile",
            "tmpfs_bytes",
            "max_log_bytes",
            "max_line_bytes",
            "max_log_lines",
        ):
            if getattr(self, name) <= 0:
                raise ValueError(f"SandboxLimits.{name} must be positive")
        if self.memory_bytes < 6 * 2**20:
            raise ValueError("SandboxLimits.memory_bytes must be at least 6 MiB (Docker's minimum)")

    def lowered(self, other: SandboxLimits) -> SandboxLimits:
        """The element-wise minimum: a scenario's limits can only lower these ceilings."""
        return SandboxLimits(
            **{name: min(getattr(self, name), getattr(other, name)) for name in self.__dataclass_fields__}
        )


def _frozen_mapping(value: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(value))


@dataclass(frozen=True)
class SandboxRequest:
    """One attempt of one run. `deadline` is the tz-aware UTC wall-clock deadline of the attempt."""

    run_id: str
    attempt: int
    run_key: str
    script: str
    params: Mapping[str, str]
    limits: SandboxLimits
    deadline: datetime
    labels: Mapping[str, str] = field(default_factory=dict)
    # W3C traceparent of the attempt's span: the driver records its spans (image check, sandbox,
    # container create and start, script) under it; empty: no spans.
    traceparent: str = ""
    # The image the attempt must run in (a replay's recorded tag, see `_replay`); empty: the image
    # the current inputs give.
    image: str = ""

    def __post_init__(self) -> None:
        if self.deadline.tzinfo is None or self.deadline.utcoffset() is None:
            raise ValueError("SandboxRequest.deadline must be timezone-aware (UTC)")
        for key, value in self.params.items():
            if not isinstance(key, str) or not isinstance(value, str):
                raise ValueError("SandboxRequest.params must map str to str")
        object.__setattr__(self, "params", _frozen_mapping(self.params))
        object.__setattr__(self, "labels", _frozen_mapping(self.labels))


class Outcome(enum.Enum):
    """Why an attempt ended. Only INFRASTRUCTURE is retried by default (the coordinator decides)."""

    SUCCEEDED = "succeeded"
    SCRIPT_ERROR = "script_error"
    TIMEOUT = "timeout"
    OOM = "oom"
    KILLED = "killed"
    ABORTED = "aborted"
    INFRASTRUCTURE = "infrastructure"


@dataclass(frozen=True)
class ScriptError:
    """What went wrong. `line` is the line in scenario.py when known."""

    type: str
    message: str
    traceback: str = ""
    line: int | None = None


@dataclass(frozen=True)
class OutputLine:
    """One line of output. "system" lines come from SDK log calls and from the driver itself.

    `fields`: an SDK log call's fields, (name, value as JSON text) in the call's order. `trace_id`
    and `span_id` (lowercase hex; empty when tracing is off): the span open when the line was
    written — the innermost open step, else the script (the driver's own lines: its current span).
    """

    stream: Literal["stdout", "stderr", "system"]
    text: str
    time: datetime
    level: str = ""
    fields: tuple[tuple[str, str], ...] = ()
    trace_id: str = ""
    span_id: str = ""


@dataclass(frozen=True)
class Started:
    container_id: str
    image: str
    time: datetime


@dataclass(frozen=True)
class Output:
    lines: tuple[OutputLine, ...]


@dataclass(frozen=True)
class Finished:
    outcome: Outcome
    exit_code: int | None
    error: ScriptError | None
    logs_truncated: bool
    dropped_lines: int
    warnings: int
    time: datetime


SandboxEvent = Started | Output | Finished

# Serves the script's SDK calls other than "log": (op, args) -> JSON-able result. Raise any
# exception to answer ok:false; its class name and message go back to the script. It runs on the
# thread iterating run(), so while it works no output is read and no deadline is checked: keep it
# short, or bound it by the request's deadline yourself.
CallHandler = Callable[[str, Mapping[str, Any]], Any]


class SandboxDriver(Protocol):
    """Runs one attempt in a sandbox and yields Started, Output…, then exactly one Finished.

    Per-run failures are reported as Finished(outcome=…), never raised. Closing the iterator early
    (or a KeyboardInterrupt inside it) kills and removes the sandbox.
    """

    def run(
        self,
        request: SandboxRequest,
        *,
        cancel: threading.Event | None = None,
        on_call: CallHandler | None = None,
    ) -> Iterator[SandboxEvent]: ...
