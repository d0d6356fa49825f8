"""The sandbox side of the agent channel: newline-delimited JSON frames, protocol version 1.

Frames to the worker go to a private duplicate of the container's original stdout; frames from the
worker (the start frame, then replies) come from a private duplicate of the original stdin. The
script's own fds 0, 1 and 2 are replaced by the runtime, so nothing the script prints or reads can
corrupt the framing.

`Channel.call(op, args)` is generic request/reply: it sends `{"t":"call","id":N,"op":…,"args":…}`
and blocks until the reply with the same id arrives. A reader thread dispatches replies by id, so
several script threads may call at once.
"""

from __future__ import annotations

import json
import os
import threading
from typing import Any, BinaryIO

from seedbed.sdk._errors import ChannelClosedError, call_error

__all__ = ["PROTOCOL_VERSION", "Channel", "encode_frame"]

PROTOCOL_VERSION = 1
# Replies larger than this are refused: the worker never sends more, so it is a broken channel.
MAX_REPLY_BYTES = 64 * 2**20


def encode_frame(frame: dict[str, Any]) -> bytes:
    """One frame as one line. json.dumps escapes every newline inside strings."""
    body = json.dumps(
        {"v": PROTOCOL_VERSION, **frame}, ensure_ascii=False, separators=(",", ":"), default=str
    )
    return body.encode("utf-8", errors="surrogatepass") + b"\n"


class _Pending:
    __slots__ = ("done", "reply")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.reply: dict[str, Any] | None = None


class Channel:
    """Frames out on `out_fd`, replies in from `reader` (already past the start frame)."""

    def __init__(self, out_fd: int, reader: BinaryIO) -> None:
        self._out_fd = out_fd
        self._reader = reader
        self._write_lock = threading.Lock()
        self._state_lock = threading.Lock()
        self._next_id = 1
        self._pending: dict[int, _Pending] = {}
        self._closed = False
        self._reader_thread: threading.Thread | None = None
        # Called before every call frame is sent; the runtime drains buffered script output here
        # so that a print() before log.info() reaches the worker before the log line.
        self.before_call: Any = None

    def start(self) -> None:
        self._reader_thread = threading.Thread(
            target=self._read_replies, name="seedbed-channel-reader", daemon=True
        )
        self._reader_thread.start()

    def send(self, frame: dict[str, Any]) -> None:
        data = encode_frame(frame)
        with self._write_lock:
            view = memoryview(data)
            while view:
                try:
                    written = os.write(self._out_fd, view)
                except BrokenPipeError as exc:
                    raise ChannelClosedError("the worker closed the channel") from exc
                view = view[written:]

    def call(self, op: str, args: dict[str, Any]) -> Any:
        """Send a call and wait for its reply; raise CallError on ok:false."""
        if self.before_call is not None:
            self.before_call()
        pending = _Pending()
        with self._state_lock:
            if self._closed:
                raise ChannelClosedError("the channel to the worker is closed")
            call_id = self._next_id
            self._next_id += 1
            self._pending[call_id] = pending
        try:
            self.send({"t": "call", "id": call_id, "op": op, "args": args})
            pending.done.wait()
        finally:
            with self._state_lock:
                self._pending.pop(call_id, None)
        reply = pending.reply
        if reply is None:
            raise ChannelClosedError(f"the channel closed while waiting for the reply to {op!r}")
        if reply.get("ok") is True:
            return reply.get("result")
        error = reply.get("error")
        if not isinstance(error, dict):
            error = {}
        raise call_error(op, str(error.get("type", "Error")), str(error.get("message", "")))

    def _read_replies(self) -> None:
        try:
            while True:
                line = self._reader.readline(MAX_REPLY_BYTES + 1)
                if not line or not line.endswith(b"\n"):
                    break
                try:
                    frame = json.loads(line)
                except ValueError:
                    continue
                if not isinstance(frame, dict) or frame.get("t") != "reply":
                    continue
                call_id = frame.get("id")
                with self._state_lock:
                    pending = self._pending.get(call_id) if isinstance(call_id, int) else None
                if pending is not None:
                    pending.reply = frame
                    pending.done.set()
        except OSError:
            pass
        finally:
            self._close_pending()

    def _close_pending(self) -> None:
        with self._state_lock:
            self._closed = True
            waiting = list(self._pending.values())
        for pending in waiting:
            pending.done.set()
