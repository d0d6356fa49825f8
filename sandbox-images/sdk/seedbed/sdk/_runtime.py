"""Entry point of the sandbox: `python -I -u -m seedbed.sdk._runtime`.

1. Keep private duplicates of fd 0 and fd 1 for the agent channel, and point fd 0 at /dev/null,
   so the script cannot read the worker's frames.
2. Read and check the start frame (script, params, run id) — the only way the script and its
   parameters enter the sandbox: never argv, never the environment. Send `ready` once it is
   accepted (before the script runs; see `_fail_start`).
3. Replace fds 1 and 2 with pipes whose lines become "out" frames (see `_output`), so prints,
   partial lines, C-level writes and child processes cannot corrupt the framing.
4. Compile the script as "scenario.py" and run it in a fresh `__main__` module.
5. Send `done`, or an `error` frame whose traceback keeps only the scenario's frames, and exit
   (0, 1 on an error, n on `SystemExit(n)`).

A process the script forks (`os.fork`, multiprocessing's "fork") that runs off the end of the
script or calls `sys.exit` comes back into `main` too; it leaves at once, like a forked child of a
plain interpreter (see `_leave_forked_child`), and never acts as the runtime.
"""

from __future__ import annotations

import atexit
import builtins
import contextlib
import json
import linecache
import os
import sys
import threading
import time
import traceback
import types
from typing import Any

from seedbed.sdk import _context
from seedbed.sdk._channel import PROTOCOL_VERSION, Channel, encode_frame
from seedbed.sdk._output import OutputPump

SCRIPT_FILENAME = "scenario.py"
MAX_START_BYTES = 16 * 2**20
# How long to wait for output still held by lingering child processes after the script ends.
OUTPUT_GRACE_SECONDS = 2.0
_EXIT_PROTOCOL = 2


def _fail_start(out_fd: int, message: str) -> int:
    # A dotted type that no scenario-defined class reports: the worker maps it to an
    # infrastructure failure (the worker and this runtime disagree), not to a script error.
    frame = {
        "t": "error",
        "type": "seedbed.ProtocolError",
        "message": message,
        "traceback": "",
        "line": None,
    }
    os.write(out_fd, encode_frame(frame))
    return _EXIT_PROTOCOL


def _read_start(reader: Any) -> dict[str, Any] | str:
    """The validated start frame, or a message saying what is wrong with it."""
    line = reader.readline(MAX_START_BYTES + 1)
    if not line.endswith(b"\n"):
        return "no complete start frame on stdin"
    try:
        frame = json.loads(line)
    except ValueError as exc:
        return f"start frame is not JSON: {exc}"
    if not isinstance(frame, dict) or frame.get("t") != "start":
        return "first frame is not a start frame"
    if frame.get("v") != PROTOCOL_VERSION:
        return f"unsupported protocol version {frame.get('v')!r} (this SDK speaks {PROTOCOL_VERSION})"
    if not isinstance(frame.get("script"), str):
        return "start frame has no script"
    params = frame.get("params", {})
    if not isinstance(params, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in params.items()
    ):
        return "start frame params must map strings to strings"
    return frame


def _type_name(exc: BaseException) -> str:
    cls = type(exc)
    # The SDK's own errors are named for what went wrong (UnknownTemplate, TargetError, …).
    if cls.__module__ in ("builtins", "__main__") or cls.__module__.startswith("seedbed.sdk"):
        return cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"


def _keep_scenario_frames(te: traceback.TracebackException) -> None:
    """Drop the runtime's and libraries' frames, in the exception and its whole chain."""
    seen: set[int] = set()
    todo: list[traceback.TracebackException | None] = [te]
    while todo:
        item = todo.pop()
        if item is None or id(item) in seen:
            continue
        seen.add(id(item))
        item.stack = traceback.StackSummary.from_list(
            [frame for frame in item.stack if frame.filename == SCRIPT_FILENAME]
        )
        todo.extend([item.__cause__, item.__context__])


def _error_frame(exc: BaseException) -> dict[str, Any]:
    te = traceback.TracebackException.from_exception(exc)
    _keep_scenario_frames(te)
    line: int | None = None
    if isinstance(exc, SyntaxError) and exc.filename == SCRIPT_FILENAME:
        line = exc.lineno
    elif te.stack:
        line = te.stack[-1].lineno
    return {
        "t": "error",
        "type": _type_name(exc),
        "message": str(exc),
        "traceback": "".join(te.format()),
        "line": line,
    }


def _run_script(script: str) -> tuple[int, dict[str, Any] | None]:
    """Run the script; return the exit code and the error frame (None on success)."""
    # Register the source so tracebacks and warnings can show scenario lines.
    linecache.cache[SCRIPT_FILENAME] = (len(script), None, script.splitlines(keepends=True), SCRIPT_FILENAME)
    try:
        code = compile(script, SCRIPT_FILENAME, "exec", dont_inherit=True)
    except (SyntaxError, ValueError) as exc:
        return 1, _error_frame(exc)
    module = types.ModuleType("__main__")
    module.__dict__.update(__file__=SCRIPT_FILENAME, __builtins__=builtins)
    sys.modules["__main__"] = module
    sys.argv = [SCRIPT_FILENAME]
    try:
        exec(code, module.__dict__)  # noqa: S102 - running the scenario is the whole point
        _finish_like_interpreter()
    except SystemExit as exc:
        return _exit_code(exc), None
    except BaseException as exc:  # noqa: BLE001 - every failure is reported as an error frame
        return 1, _error_frame(exc)
    return 0, None


def _finish_like_interpreter() -> None:
    """What interpreter shutdown would do: wait for the script's threads, run atexit hooks."""
    for thread in threading.enumerate():
        if thread is not threading.current_thread() and not thread.daemon:
            thread.join()
    atexit._run_exitfuncs()  # noqa: SLF001 - we leave with os._exit, which skips them


def _exit_code(exc: SystemExit) -> int:
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code & 0xFF
    print(exc.code, file=sys.stderr)
    return 1


def _leave_forked_child(code: int, error: dict[str, Any] | None) -> int:
    """The exit of a process the script forked, once it returns from the script.

    It holds copies of the runtime's state but not its threads: the output pumps' locks may have
    been held by a pump thread at the moment of the fork and stay locked forever in the child, so
    draining or finishing the pumps here hangs the child — and a parent waiting for it hangs until
    its deadline. And the child must not send `done` or an error frame: the first end frame wins,
    so a child's `done` would end the parent's run before its own result. So flush what the child
    printed (its fds 1 and 2 are the runtime's pipes, which the parent's pumps read), print an
    uncaught exception to stderr as an interpreter would, and exit with the child's own code.
    """
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    if error is not None:
        with contextlib.suppress(OSError):
            os.write(2, str(error.get("traceback") or error.get("message", "")).encode("utf-8", "replace"))
    return code


def main() -> int:
    runtime_pid = os.getpid()
    runtime_module = sys.modules.get("__main__")  # keep alive: the script replaces __main__
    channel_in = os.dup(0)  # os.dup makes non-inheritable fds: child processes never see them
    channel_out = os.dup(1)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    reader = os.fdopen(channel_in, "rb")
    start = _read_start(reader)
    if isinstance(start, str):
        return _fail_start(channel_out, start)

    channel = Channel(channel_out, reader)
    # Before any line of the script runs: an error frame of the runtime's own type that comes
    # after this one can only be the script's, and the worker treats it as such.
    channel.send({"t": "ready"})
    pumps = []
    for fd, name in ((1, "stdout"), (2, "stderr")):
        read_end, write_end = os.pipe()
        os.dup2(write_end, fd)  # dup2 targets are inheritable: children write into the pipe
        os.close(write_end)
        pumps.append(OutputPump(read_end, name, channel.send))
    for pump in pumps:
        pump.start()

    def drain_output() -> None:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
        for pump in pumps:
            pump.drain()

    channel.before_call = drain_output
    _context.bind(start, channel)
    channel.start()

    code, error = _run_script(start["script"])
    if os.getpid() != runtime_pid:
        return _leave_forked_child(code, error)

    drain_output()
    # Close our write ends of the pipes so the pumps see EOF once children are gone too.
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    for pump in pumps:
        pump.request_stop()
    until = time.monotonic() + OUTPUT_GRACE_SECONDS
    for pump in pumps:
        pump.finish(until)
    try:
        if error is not None:
            channel.send(error)
        elif code == 0:
            channel.send({"t": "done"})
    except Exception:  # noqa: BLE001 - the worker is gone; the exit code is all that is left
        pass
    del runtime_module
    return code


if __name__ == "__main__":
    # os._exit: no interpreter shutdown after the final frame (daemon threads, buffered writers
    # and module teardown could otherwise print into a channel that is already finished).
    os._exit(main())
