"""The state of one attempt's channel, independent of Docker: bytes in, events and replies out.

`RunSession` receives the demultiplexed stdout/stderr bytes of the container, turns frames into
output lines (enforcing the per-line and per-attempt output caps while still draining), answers
SDK calls, and remembers the script's error frame and the `done` frame. `classify` turns the
container's end state into an `Outcome` and a `ScriptError`. Both are pure, so they are unit-tested
without a container.

A call handler that also has the `AttemptHooks` methods (the agent does) takes part in two
defences against a hostile script. Every call frame queued behind a slow call is held against the
attempt's memory budget until it has been served (`hold_call`; refused past the budget with the
handler's error, before it is queued). And when the attempt ends (`end_calls`: the driver calls it
the moment the deadline passes, an abort arrives or the sandbox's output ends), the frames still
queued are dropped unserved, frames arriving later are ignored, and the handler's `end` stops the
call in flight. Rejected: letting the queue drain after the end (the script's calls would go on
writing to targets after the run was reported over).

Traces: the driver tells the session which of its spans is open (`in_span`): its own lines carry
that span's ids, and SDK calls are served with the "script" span as their current span (the call
thread does not inherit it). A handler with `SpanHooks` (the agent) names the innermost open step:
the script's lines (output, log calls, a bulk insert's progress) carry its ids instead. A log call's
fields travel as a map besides the flattened text, bounded: at most `MAX_LOG_FIELDS` names of at
most `MAX_LOG_FIELD_NAME` characters, each value cut at the line limit and counted, with the text,
against the attempt's output cap.
"""

from __future__ import annotations

import json
import logging
import queue
import signal
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol, runtime_checkable

from opentelemetry.context import Context
from opentelemetry.trace import Span

from seedbed.worker import tracing
from seedbed.worker._channel import (
    MAX_FRAME_BYTES,
    STDERR,
    STDOUT,
    CallFrame,
    DoneFrame,
    ErrorFrame,
    LineSplitter,
    OutFrame,
    Oversized,
    ReadyFrame,
    call_id_of,
    encode_reply,
    nesting_depth,
    parse_frame,
)
from seedbed.worker._sandbox_errors import ProtocolError
from seedbed.worker._sandbox_types import (
    CallHandler,
    Outcome,
    Output,
    OutputLine,
    SandboxLimits,
    ScriptError,
)

__all__ = ["AttemptHooks", "RunSession", "SpanHooks", "classify"]

logger = logging.getLogger(__name__)

_LOG_LEVELS = {"info": "info", "warning": "warning", "warn": "warning", "error": "error"}
_RAW_STDERR_CAP = 64 * 2**10
# The runtime reports a start frame it cannot use with this type (see seedbed.sdk._runtime).
RUNTIME_PROTOCOL_ERROR = "seedbed.ProtocolError"
_MAX_PROTOCOL_NOTICES = 20
# How deeply a log call's fields may nest (they are shown as JSON text on one line).
MAX_LOG_FIELD_DEPTH = 32
# A log call's fields as a map (besides the flattened text): this many names, this long at most.
MAX_LOG_FIELDS = 64
MAX_LOG_FIELD_NAME = 200


def utcnow() -> datetime:
    return datetime.now(UTC)


def _cut(text: str, max_bytes: int) -> str:
    data = text.encode("utf-8", errors="replace")
    if len(data) <= max_bytes:
        return text
    kept = data[:max_bytes].decode("utf-8", errors="ignore")
    return f"{kept} … [line cut: {len(data)} bytes, limit {max_bytes}]"


def _format_fields(fields: Mapping[str, Any]) -> str:
    return " ".join(
        f"{key}={json.dumps(value, default=str, ensure_ascii=False)}" for key, value in fields.items()
    )


def _field_map(fields: Mapping[str, Any], max_bytes: int) -> tuple[tuple[str, str], ...]:
    """A log call's fields as (name, JSON text) pairs, bounded (see the module's doc)."""
    out = []
    for key, value in list(fields.items())[:MAX_LOG_FIELDS]:
        text = json.dumps(value, default=str, ensure_ascii=False)
        out.append((str(key)[:MAX_LOG_FIELD_NAME], _cut(text, max_bytes)))
    return tuple(out)


@runtime_checkable
class AttemptHooks(Protocol):
    """What a call handler may add to take part in the attempt's limits (see the module's doc)."""

    def hold_call(self, frame: bytes) -> int:
        """A call frame will wait in the queue: hold its cost against the attempt's budget and
        return what was held, or raise (the call is refused with that error)."""
        ...

    def release_call(self, held: int) -> None:
        """A queued call was served or dropped: release what `hold_call` held."""
        ...

    def end(self) -> None:
        """The attempt ended: refuse further calls and stop the one in flight (never blocks)."""
        ...

    def notes(self) -> list[tuple[str, str]]:
        """Lines (text, level) for the run's log since the last look: what a long call has to say
        while it runs (a bulk insert's progress). Never blocks."""
        ...


@runtime_checkable
class SpanHooks(Protocol):
    """What a call handler may add to say which span the script's lines belong to."""

    def open_span_ids(self) -> tuple[str, str]:
        """(trace id, span id) of the innermost step open now; empty strings outside any step or
        when tracing is off. Called for every line: cheap, never blocks for long."""
        ...


class _CallRunner:
    """Serves SDK calls one at a time, in order, on a thread of its own.

    A call may wait on a database or an HTTP target for long; served on the pump's thread, it would
    stop output from being read and the deadline and abort from being enforced until it returned.
    Here the pump goes on, and picks the replies up as they complete. The thread is a daemon: when
    the attempt ends with a call still running, the attempt does not wait for it. Once stopped, it
    serves nothing more: calls still queued are dropped (their replies would reach no one).
    """

    def __init__(self, serve: Callable[[CallFrame], bytes], release: Callable[[int], None]) -> None:
        self._serve = serve
        self._release = release
        self._todo: queue.SimpleQueue[tuple[CallFrame, int] | None] = queue.SimpleQueue()
        self._done: queue.SimpleQueue[bytes] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._stopped = threading.Event()
        self.pending = 0
        # Called when a reply is ready (the pump waits on its socket and would otherwise see the
        # reply only when its wait times out).
        self.wake: Callable[[], None] | None = None

    def submit(self, frame: CallFrame, held: int = 0) -> None:
        if self._stopped.is_set():
            self._release(held)
            return
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="seedbed-agent-calls", daemon=True)
            self._thread.start()
        self.pending += 1
        self._todo.put((frame, held))

    def _loop(self) -> None:
        while (item := self._todo.get()) is not None:
            frame, held = item
            try:
                if not self._stopped.is_set():
                    self._done.put(self._serve(frame))
                    if self.wake is not None:
                        self.wake()
            finally:
                self._release(held)

    def stop(self) -> None:
        """Serve nothing more; drop the calls still queued (the one running is the handler's)."""
        self._stopped.set()
        while True:
            try:
                item = self._todo.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                self._release(item[1])
        if self._thread is not None:
            self._todo.put(None)

    def completed(self) -> list[bytes]:
        replies: list[bytes] = []
        while True:
            try:
                replies.append(self._done.get_nowait())
            except queue.Empty:
                break
        self.pending -= len(replies)
        return replies


class RunSession:
    """Frames → output lines and replies, with the output caps applied.

    With ``background_calls``, SDK calls (other than ``log``) are served on a thread of their own
    and their replies come from :meth:`completed_replies` instead of :meth:`feed`.
    """

    def __init__(
        self,
        limits: SandboxLimits,
        on_call: CallHandler | None = None,
        clock: Callable[[], datetime] = utcnow,
        *,
        background_calls: bool = False,
    ) -> None:
        self._limits = limits
        self._on_call = on_call
        self._hooks = on_call if isinstance(on_call, AttemptHooks) else None
        self._step_ids = on_call.open_span_ids if isinstance(on_call, SpanHooks) else None
        # The driver's open span (its lines' ids), and the script's context for SDK calls.
        self._span_ids = ("", "")
        self._call_context: Context | None = None
        self._runner = (
            _CallRunner(self._serve, self._release) if background_calls and on_call is not None else None
        )
        self._ended = False
        self._clock = clock
        self._splitters = {
            STDOUT: LineSplitter(MAX_FRAME_BYTES),
            STDERR: LineSplitter(max(limits.max_line_bytes, _RAW_STDERR_CAP)),
        }
        self._batch: list[OutputLine] = []
        self._log_bytes = 0
        self._log_lines = 0
        self._protocol_notices = 0
        self.logs_truncated = False
        self.dropped_lines = 0
        self.warnings = 0
        self.done = False
        self.error: ErrorFrame | None = None
        # The runtime's "ready" frame arrived: from here on, frames may come from the script.
        self.ready = False

    def in_span(self, span: Span, *, script: bool = False) -> None:
        """The driver's span open from now on; `script`: the script's, the parent of its calls."""
        recording = span.is_recording()
        self._span_ids = tracing.ids_of(span) if recording else ("", "")
        if script:
            self._call_context = tracing.context_of(span) if recording else None

    # -- input -------------------------------------------------------------------------------

    def feed(self, stream: int, data: bytes) -> list[bytes]:
        """Consume bytes from the container; return the reply frames to send back."""
        splitter = self._splitters.get(stream)
        if splitter is None:
            self._notice(f"ignored {len(data)} bytes on unknown stream {stream}")
            return []
        replies: list[bytes] = []
        for item in splitter.feed(data):
            self._line(stream, item, replies)
        return replies

    def end_of_stream(self) -> list[bytes]:
        replies: list[bytes] = []
        for stream, splitter in self._splitters.items():
            for item in splitter.flush():
                self._line(stream, item, replies)
        return replies

    def _line(self, stream: int, item: bytes | Oversized, replies: list[bytes]) -> None:
        if isinstance(item, Oversized):
            self._notice(f"dropped an oversized line of {item.size} bytes on {_name(stream)}")
            return
        if stream == STDERR:
            # Raw stderr: the runtime itself failed (the script's stderr arrives as frames).
            self._emit("stderr", item.decode("utf-8", errors="replace"))
            return
        try:
            frame = parse_frame(item)
        except ProtocolError as exc:
            call_id = call_id_of(item)
            if call_id is not None:
                # The script waits for this reply: tell it what is wrong instead of letting it
                # hang until its deadline.
                replies.append(encode_reply(call_id, error=("InvalidArgument", f"unreadable call: {exc}")))
            elif item.lstrip()[:1] == b"{":
                self._notice(f"ignored a malformed frame: {exc}")
            else:
                # Not a frame at all: raw output of a runtime that crashed or never started.
                self._emit("stdout", item.decode("utf-8", errors="replace"))
            return
        try:
            self._frame(frame, replies, item)
        except Exception as exc:  # noqa: BLE001 - a hostile frame must not take the attempt down
            logger.warning("a frame from the sandbox could not be handled: %r", exc)
            if isinstance(frame, CallFrame):
                replies.append(encode_reply(frame.id, error=("InvalidArgument", _short_error(exc))))
            else:
                self._notice(f"ignored a frame that could not be handled: {_short_error(exc)}")

    def _frame(self, frame: Any, replies: list[bytes], raw: bytes = b"") -> None:
        if isinstance(frame, ReadyFrame):
            if self.ready:
                self._notice("ignored a second ready frame")
            self.ready = True
        elif isinstance(frame, OutFrame):
            self._emit(frame.stream, frame.line)
        elif isinstance(frame, CallFrame):
            if self._ended and frame.op != "log":
                return  # the attempt is over: no call runs, and its reply would reach no one
            if self._runner is not None and frame.op != "log":
                self._queue(self._runner, frame, raw, replies)
            else:
                replies.append(self._call(frame))
        elif isinstance(frame, ErrorFrame):
            if self.error is None and not self.done:
                self.error = frame
            else:
                self._notice("ignored a second end frame")
        elif isinstance(frame, DoneFrame):
            if self.error is None and not self.done:
                self.done = True
            else:
                self._notice("ignored a second end frame")

    def _queue(self, runner: _CallRunner, frame: CallFrame, raw: bytes, replies: list[bytes]) -> None:
        held = 0
        if self._hooks is not None:
            try:
                held = self._hooks.hold_call(raw)
            except Exception as exc:  # noqa: BLE001 - the handler's refusal is the call's answer
                replies.append(encode_reply(frame.id, error=(type(exc).__name__, str(exc))))
                return
        runner.submit(frame, held)

    def _release(self, held: int) -> None:
        if self._hooks is not None and held:
            self._hooks.release_call(held)

    def end_calls(self) -> None:
        """The attempt ended: serve no more calls and tell the handler (see the module's doc)."""
        if self._ended:
            return
        self._ended = True
        if self._runner is not None:
            self._runner.stop()
        if self._hooks is not None:
            try:
                self._hooks.end()
            except Exception:  # the attempt's own end must go on
                logger.exception("the call handler failed to end")

    def on_reply(self, wake: Callable[[], None]) -> None:
        """Call `wake` (from the call thread, never blocking) whenever a background call's reply
        is ready for `completed_replies`."""
        if self._runner is not None:
            self._runner.wake = wake

    @property
    def calls_pending(self) -> bool:
        return self._runner is not None and self._runner.pending > 0

    def completed_replies(self) -> list[bytes]:
        """Replies of background calls that completed since the last look; lines the call handler
        has for the log meanwhile (a bulk insert's progress) join the output."""
        if self._hooks is not None:
            for text, level in self._hooks.notes():
                self.system(text, level, script=True)
        return self._runner.completed() if self._runner is not None else []

    def close(self) -> None:
        self.end_calls()

    def _call(self, frame: CallFrame) -> bytes:
        if frame.op == "log":
            return self._log_call(frame)
        return self._serve(frame)

    def _serve(self, frame: CallFrame) -> bytes:
        if self._on_call is None:
            return encode_reply(frame.id, error=("UnknownOp", f"unknown SDK call {frame.op!r}"))
        try:
            with tracing.activated(self._call_context):
                result = self._on_call(frame.op, frame.args)
        except Exception as exc:  # noqa: BLE001 - any failure becomes an ok:false reply
            return encode_reply(frame.id, error=(type(exc).__name__, str(exc)))
        try:
            return encode_reply(frame.id, result=result)
        except (TypeError, ValueError) as exc:
            logger.warning("SDK call %s returned a result that is not JSON: %s", frame.op, exc)
            return encode_reply(frame.id, error=("EncodingError", f"result is not JSON: {exc}"))

    def _log_call(self, frame: CallFrame) -> bytes:
        args = frame.args
        level = _LOG_LEVELS.get(str(args.get("level")))
        message = args.get("message")
        fields = args.get("fields", {})
        if level is None or not isinstance(message, str) or not isinstance(fields, dict):
            return encode_reply(
                frame.id,
                error=("ValidationError", "log needs level info|warning|error, a message and fields"),
            )
        depth = nesting_depth(fields, MAX_LOG_FIELD_DEPTH)
        if depth > MAX_LOG_FIELD_DEPTH:
            return encode_reply(
                frame.id,
                error=(
                    "LimitExceeded",
                    f"log fields nest deeper than {MAX_LOG_FIELD_DEPTH} levels: log a flatter value "
                    "(or its str())",
                ),
            )
        if level == "warning":
            self.warnings += 1
        text = f"{message} {_format_fields(fields)}" if fields else message
        self._emit("system", text, level, _field_map(fields, self._limits.max_line_bytes))
        return encode_reply(frame.id, result=None)

    # -- output ------------------------------------------------------------------------------

    def _notice(self, text: str) -> None:
        """A driver-side warning about untrusted input, rate-limited per attempt."""
        self._protocol_notices += 1
        if self._protocol_notices <= _MAX_PROTOCOL_NOTICES:
            self._emit("system", f"sandbox protocol: {text}", "warning")
        elif self._protocol_notices == _MAX_PROTOCOL_NOTICES + 1:
            self._emit("system", "sandbox protocol: further notices suppressed", "warning")

    def _emit(
        self,
        stream: Literal["stdout", "stderr", "system"],
        text: str,
        level: str = "",
        fields: tuple[tuple[str, str], ...] = (),
    ) -> None:
        text = _cut(text, self._limits.max_line_bytes)
        size = len(text.encode("utf-8", errors="replace")) + 1
        for key, value in fields:
            size += len(key.encode("utf-8", errors="replace")) + len(value.encode("utf-8", errors="replace"))
        over_bytes = self._log_bytes + size > self._limits.max_log_bytes
        if self.logs_truncated or over_bytes or self._log_lines >= self._limits.max_log_lines:
            if not self.logs_truncated:
                self.logs_truncated = True
                limit = (
                    f"{self._limits.max_log_bytes} bytes (SEEDBED_MAX_LOG_BYTES)"
                    if over_bytes
                    else f"{self._limits.max_log_lines} lines (SEEDBED_MAX_LOG_LINES)"
                )
                self.system(
                    f"output limit of {limit} reached; further output of this attempt is dropped",
                    "warning",
                )
            self.dropped_lines += 1
            return
        self._log_bytes += size
        self._log_lines += 1
        trace_id, span_id = self._script_ids()
        self._batch.append(
            OutputLine(
                stream=stream,
                text=text,
                time=self._clock(),
                level=level,
                fields=fields,
                trace_id=trace_id,
                span_id=span_id,
            )
        )

    def system(self, text: str, level: str = "info", *, script: bool = False) -> None:
        """A line from the driver itself (`script`: on the script's behalf, in its open step); not
        counted against the output cap."""
        trace_id, span_id = self._script_ids() if script else self._span_ids
        self._batch.append(
            OutputLine(
                stream="system",
                text=text,
                time=self._clock(),
                level=level,
                trace_id=trace_id,
                span_id=span_id,
            )
        )

    def _script_ids(self) -> tuple[str, str]:
        """The ids of the script's innermost open step, else of the driver's open span."""
        if self._step_ids is not None:
            ids = self._step_ids()
            if ids[1]:
                return ids
        return self._span_ids

    def pending(self) -> int:
        return len(self._batch)

    def take_batch(self, max_lines: int | None = None) -> Output | None:
        """The oldest pending lines (at most `max_lines`), or None if there are none."""
        if not self._batch:
            return None
        cut = len(self._batch) if max_lines is None else max_lines
        batch, self._batch = tuple(self._batch[:cut]), self._batch[cut:]
        return Output(lines=batch)


def _short_error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc)[:300]}"


def _name(stream: int) -> str:
    return {STDOUT: "stdout", STDERR: "stderr"}.get(stream, str(stream))


@dataclass(frozen=True)
class EndState:
    """How the container ended, as seen by the driver."""

    exit_code: int | None
    oom_killed: bool
    stopped_by: Literal["timeout", "abort"] | None = None
    stop_message: str = ""


def classify(end: EndState, session: RunSession, limits: SandboxLimits) -> tuple[Outcome, ScriptError | None]:
    """The attempt's outcome, from the most to the least specific evidence."""
    if end.stopped_by == "abort":
        return Outcome.ABORTED, ScriptError("Aborted", end.stop_message or "the run was aborted")
    if end.stopped_by == "timeout":
        return Outcome.TIMEOUT, ScriptError("Timeout", end.stop_message)
    frame = session.error
    code = end.exit_code
    if code == 0 and session.done and frame is None:
        # Docker's OOMKilled means "an OOM kill happened in the cgroup": if it hit a child
        # process and the script still finished cleanly, the run succeeded.
        return Outcome.SUCCEEDED, None
    if end.oom_killed:
        return Outcome.OOM, ScriptError(
            "OutOfMemory",
            f"the sandbox ran out of memory (limit {limits.memory_bytes // 2**20} MiB) "
            "and the kernel killed the script",
        )
    if frame is not None:
        error = ScriptError(frame.type, frame.message, frame.traceback, frame.line)
        if frame.type == RUNTIME_PROTOCOL_ERROR and not session.ready:
            # Before "ready" only the runtime writes: the worker and the runtime disagree.
            return Outcome.INFRASTRUCTURE, error
        if frame.type == RUNTIME_PROTOCOL_ERROR:
            return Outcome.SCRIPT_ERROR, ScriptError(
                frame.type,
                "the script sent an error frame imitating the runtime's own "
                f"({RUNTIME_PROTOCOL_ERROR}) after it was started: {frame.message}",
                frame.traceback,
                frame.line,
            )
        if frame.type == "MemoryError":
            return Outcome.OOM, error
        return Outcome.SCRIPT_ERROR, error
    if code == 0:
        return Outcome.SCRIPT_ERROR, ScriptError(
            "IncompleteRun", "the script exited with code 0 without finishing the run protocol"
        )
    if code is None:
        return Outcome.INFRASTRUCTURE, ScriptError("Unknown", "the sandbox ended without an exit code")
    if code > 128 and code - 128 in signal.Signals._value2member_map_:  # noqa: SLF001
        name = signal.Signals(code - 128).name
        if code - 128 == signal.SIGKILL:
            return Outcome.KILLED, ScriptError(
                "Killed",
                f"the sandbox was killed by {name} (exit code {code}), "
                "not by the driver and not for lack of memory",
            )
        return Outcome.SCRIPT_ERROR, ScriptError("Signal", f"the script died from {name} (exit code {code})")
    return Outcome.SCRIPT_ERROR, ScriptError("ExitCode", f"script exited with code {code}")
