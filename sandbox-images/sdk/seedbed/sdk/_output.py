"""Turn the script's stdout/stderr into "out" frames.

The runtime points fds 1 and 2 at pipes; one `OutputPump` per pipe reads what arrives (from the
script, from C extensions, from child processes that inherited the fds), splits it into lines and
sends each line as a frame. A pipe rather than a Python-level `sys.stdout` wrapper is used because
only an fd catches writes that bypass `sys.stdout` (os.write, C code, subprocesses).
"""

from __future__ import annotations

import os
import select
import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = ["MAX_LINE_BYTES", "OutputPump"]

# Longer lines are cut here (and marked) so that a frame stays bounded; the worker applies its own,
# usually lower, per-line limit too.
MAX_LINE_BYTES = 64 * 2**10
CUT_MARKER = " [line cut]"
_READ_SIZE = 64 * 2**10


class OutputPump:
    """Read one pipe and send its lines as {"t":"out","stream":name,"line":…} frames."""

    def __init__(self, read_fd: int, stream: str, send: Callable[[dict[str, Any]], None]) -> None:
        self._fd = read_fd
        self._stream = stream
        self._send = send
        self._lock = threading.Lock()  # one reader at a time: the thread, or drain()
        self._buffer = bytearray()
        self._cutting = False  # inside an over-long line whose rest is being discarded
        self._eof = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"seedbed-{stream}", daemon=True)
        os.set_blocking(read_fd, False)

    def start(self) -> None:
        self._thread.start()

    def drain(self) -> None:
        """Send every complete line already written to the pipe (does not block)."""
        with self._lock:
            while self._read_once():
                pass

    def request_stop(self) -> None:
        """Stop once the pipe is idle (children may still hold it open: do not wait for EOF)."""
        self._stop.set()

    def finish(self, until: float) -> None:
        """Wait (up to the monotonic time `until`) for the reader, then send what is left,
        including a pending partial line."""
        self._thread.join(max(0.0, until - time.monotonic()))
        with self._lock:
            while self._read_once():
                pass
            self._flush_partial()

    def _run(self) -> None:
        poller = select.poll()
        poller.register(self._fd, select.POLLIN)
        while not self._eof:
            # Wait outside the lock, so drain() from the script thread never waits for the poll.
            ready = poller.poll(100)
            if not ready and self._stop.is_set():
                return
            with self._lock:
                while self._read_once():
                    pass

    def _read_once(self) -> bool:
        """Read once without blocking (the fd is non-blocking); True if data was read."""
        if self._eof:
            return False
        try:
            chunk = os.read(self._fd, _READ_SIZE)
        except BlockingIOError:
            return False
        except OSError:
            chunk = b""
        if not chunk:
            self._eof = True
            return False
        self._feed(chunk)
        return True

    def _feed(self, chunk: bytes) -> None:
        start = 0
        while True:
            newline = chunk.find(b"\n", start)
            piece = chunk[start:] if newline < 0 else chunk[start:newline]
            if not self._cutting:
                room = MAX_LINE_BYTES - len(self._buffer)
                if len(piece) > room:
                    self._buffer += piece[:room]
                    self._emit(bytes(self._buffer), cut=True)
                    self._buffer.clear()
                    self._cutting = True
                else:
                    self._buffer += piece
            if newline < 0:
                return
            if not self._cutting:
                self._emit(bytes(self._buffer), cut=False)
            self._buffer.clear()
            self._cutting = False
            start = newline + 1

    def _flush_partial(self) -> None:
        if self._buffer and not self._cutting:
            self._emit(bytes(self._buffer), cut=False)
        self._buffer.clear()

    def _emit(self, raw: bytes, *, cut: bool) -> None:
        text = raw.decode("utf-8", errors="replace")
        if text.endswith("\r"):
            text = text[:-1]
        if cut:
            text += CUT_MARKER
        try:
            self._send({"t": "out", "stream": self._stream, "line": text})
        except Exception:  # noqa: BLE001 - the channel is gone; nothing left to tell
            self._eof = True
