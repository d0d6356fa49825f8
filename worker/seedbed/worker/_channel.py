"""The worker side of the agent channel: pure byte and frame handling, no Docker.

Three layers, each fed untrusted bytes:

- `StreamDemuxer` splits Docker's multiplexed attach stream (tty=False): 8-byte headers
  `[stream, 0, 0, 0, size (4 bytes, big endian)]` followed by `size` bytes of payload.
- `LineSplitter` re-buffers payload chunks into lines, with a hard cap on what it buffers: a line
  longer than the cap is reported as oversized (its length only) and the rest of it is skipped.
- `parse_frame` checks one line against protocol version 1 and returns a typed frame, or a
  `ProtocolError` saying what is wrong. Strings are capped, never trusted for size; lone
  surrogates (JSON `\\ud800` escapes, or their raw bytes) are kept as that escaped text, so every
  string that leaves here encodes as UTF-8 (protobuf, the store, a database would refuse it).
  `call_id_of` finds the id of a call frame too deep or broken to parse, so the script gets an
  error reply instead of waiting for one until its deadline.

`encode_start` / `encode_reply` build the frames the worker sends (one line each).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from seedbed.worker._sandbox_errors import ProtocolError

__all__ = [
    "MAX_FRAME_BYTES",
    "PROTOCOL_VERSION",
    "CallFrame",
    "DoneFrame",
    "ErrorFrame",
    "Frame",
    "ReadyFrame",
    "LineSplitter",
    "OutFrame",
    "Oversized",
    "StreamDemuxer",
    "call_id_of",
    "encode_reply",
    "nesting_depth",
    "encode_start",
    "parse_frame",
]

PROTOCOL_VERSION = 1
STDIN, STDOUT, STDERR = 0, 1, 2
# Largest frame accepted from the sandbox. SDK calls may carry rows later, hence not tiny; output
# lines are cut much earlier by the sandbox runtime (64 KiB) and by the driver's per-line limit.
MAX_FRAME_BYTES = 8 * 2**20
MAX_MESSAGE_CHARS = 64 * 2**10
MAX_TRACEBACK_CHARS = 256 * 2**10
MAX_TYPE_CHARS = 256
_HEADER_SIZE = 8


class StreamDemuxer:
    """Split Docker's multiplexed stream into (stream number, payload) pieces, incrementally."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._stream = -1
        self._remaining = 0  # payload bytes still to come for the current header

    def feed(self, data: bytes) -> Iterator[tuple[int, bytes]]:
        """Yield payload pieces as soon as they arrive (a frame may come out in several pieces)."""
        self._buffer += data
        while self._buffer:
            if self._remaining == 0:
                if len(self._buffer) < _HEADER_SIZE:
                    return
                header = bytes(self._buffer[:_HEADER_SIZE])
                del self._buffer[:_HEADER_SIZE]
                self._stream = header[0]
                self._remaining = int.from_bytes(header[4:8], "big")
                continue
            piece = bytes(self._buffer[: self._remaining])
            del self._buffer[: len(piece)]
            self._remaining -= len(piece)
            yield self._stream, piece


@dataclass(frozen=True)
class Oversized:
    """A line longer than the splitter's cap: only its size is kept."""

    size: int


class LineSplitter:
    """Re-buffer chunks into lines (without the newline), never holding more than `max_bytes`."""

    def __init__(self, max_bytes: int) -> None:
        self._max = max_bytes
        self._buffer = bytearray()
        self._skipping = 0  # >0: inside an oversized line, counting its bytes

    def feed(self, data: bytes) -> Iterator[bytes | Oversized]:
        start = 0
        while start < len(data):
            newline = data.find(b"\n", start)
            end = len(data) if newline < 0 else newline
            piece = data[start:end]
            if self._skipping:
                self._skipping += len(piece)
            elif len(self._buffer) + len(piece) > self._max:
                self._skipping = len(self._buffer) + len(piece)
                self._buffer.clear()
            else:
                self._buffer += piece
            if newline < 0:
                return
            if self._skipping:
                yield Oversized(self._skipping)
                self._skipping = 0
            else:
                yield bytes(self._buffer)
                self._buffer.clear()
            start = newline + 1

    def flush(self) -> Iterator[bytes | Oversized]:
        """The unterminated rest, at end of stream."""
        if self._skipping:
            yield Oversized(self._skipping)
        elif self._buffer:
            yield bytes(self._buffer)
        self._buffer.clear()
        self._skipping = 0


@dataclass(frozen=True)
class OutFrame:
    stream: Literal["stdout", "stderr"]
    line: str


@dataclass(frozen=True)
class CallFrame:
    id: int
    op: str
    args: Mapping[str, Any]


@dataclass(frozen=True)
class ErrorFrame:
    type: str
    message: str
    traceback: str
    line: int | None


@dataclass(frozen=True)
class DoneFrame:
    pass


@dataclass(frozen=True)
class ReadyFrame:
    """The runtime accepted the start frame and is about to run the script. Whatever comes after it
    may come from the script itself (which can write into the channel), so an error frame of the
    runtime's own type counts as the runtime's only before it."""


Frame = OutFrame | CallFrame | ErrorFrame | DoneFrame | ReadyFrame

# A lone surrogate in a frame: a JSON escape \uD800-\uDFFF, or the same code point as raw
# (CESU-8) bytes, which json.loads lets through.
_SURROGATE_HINT = re.compile(rb"\\u[dD][89a-fA-F]|\xed[\xa0-\xbf]")
_CALL_ID = re.compile(rb'^\{"v":1,"t":"call","id":(\d{1,15}),')


def _escape_surrogates(text: str) -> str:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", errors="backslashreplace").decode("utf-8")
    return text


def _escaped(value: Any) -> Any:
    """``value`` with every string (keys included) encodable as UTF-8; iterative (no recursion)."""
    if isinstance(value, str):
        return _escape_surrogates(value)
    if not isinstance(value, dict | list):
        return value
    root: list[Any] = [value]
    todo: list[tuple[Any, Any]] = [(root, 0)]
    while todo:
        parent, key = todo.pop()
        item = parent[key]
        if isinstance(item, str):
            parent[key] = _escape_surrogates(item)
        elif isinstance(item, list):
            todo.extend((item, i) for i in range(len(item)))
        elif isinstance(item, dict):
            fixed = {_escape_surrogates(k): v for k, v in item.items()}
            parent[key] = fixed
            todo.extend((fixed, k) for k in fixed)
    return root[0]


def nesting_depth(value: Any, limit: int) -> int:
    """How deeply lists and objects nest in ``value`` (a scalar: 0), counting no further than
    ``limit + 1``; iterative, so hostile depth cannot exhaust the stack."""
    deepest = 0
    todo: list[tuple[Any, int]] = [(value, 0)]
    while todo:
        item, depth = todo.pop()
        if isinstance(item, dict | list):
            depth += 1
            if depth > limit:
                return depth
            deepest = max(deepest, depth)
            todo.extend((child, depth) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def call_id_of(line: bytes) -> int | None:
    """The id of a call frame as the SDK writes it, read without parsing the rest."""
    found = _CALL_ID.match(line)
    return int(found.group(1)) if found else None


def _cap(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + " [truncated]"


def _str_field(frame: Mapping[str, Any], name: str, limit: int, *, required: bool = True) -> str:
    value = frame.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise ProtocolError(f"field {name!r} must be a string")
    return _cap(value, limit)


def parse_frame(line: bytes) -> Frame:
    """Parse and schema-check one line from the sandbox; raise ProtocolError if it is not valid."""
    if len(line) > MAX_FRAME_BYTES:
        raise ProtocolError(f"frame of {len(line)} bytes exceeds {MAX_FRAME_BYTES}")
    try:
        frame = json.loads(line)
    except RecursionError:
        raise ProtocolError("frame nests too deeply to read") from None
    except ValueError as exc:
        raise ProtocolError(f"frame is not JSON: {str(exc)[:200]}") from None
    if _SURROGATE_HINT.search(line):
        frame = _escaped(frame)
    if not isinstance(frame, dict):
        raise ProtocolError("frame is not a JSON object")
    if frame.get("v") != PROTOCOL_VERSION:
        raise ProtocolError(f"unsupported protocol version {str(frame.get('v'))[:20]!r}")
    kind = frame.get("t")
    if kind == "out":
        stream = frame.get("stream")
        if stream not in ("stdout", "stderr"):
            raise ProtocolError("out frame: stream must be 'stdout' or 'stderr'")
        return OutFrame(
            stream="stdout" if stream == "stdout" else "stderr",
            line=_str_field(frame, "line", MAX_FRAME_BYTES),
        )
    if kind == "call":
        call_id = frame.get("id")
        if not isinstance(call_id, int) or isinstance(call_id, bool) or call_id < 0:
            raise ProtocolError("call frame: id must be a non-negative integer")
        op = _str_field(frame, "op", MAX_TYPE_CHARS)
        args = frame.get("args", {})
        if not isinstance(args, dict):
            raise ProtocolError("call frame: args must be an object")
        return CallFrame(id=call_id, op=op, args=args)
    if kind == "error":
        line_no = frame.get("line")
        if not (line_no is None or (isinstance(line_no, int) and not isinstance(line_no, bool))):
            raise ProtocolError("error frame: line must be an integer or null")
        return ErrorFrame(
            type=_str_field(frame, "type", MAX_TYPE_CHARS),
            message=_str_field(frame, "message", MAX_MESSAGE_CHARS, required=False),
            traceback=_str_field(frame, "traceback", MAX_TRACEBACK_CHARS, required=False),
            line=line_no,
        )
    if kind == "done":
        return DoneFrame()
    if kind == "ready":
        return ReadyFrame()
    raise ProtocolError(f"unknown frame type {str(kind)[:40]!r}")


def _encode(frame: dict[str, Any]) -> bytes:
    body = json.dumps({"v": PROTOCOL_VERSION, **frame}, ensure_ascii=False, separators=(",", ":"))
    return body.encode("utf-8", errors="surrogatepass") + b"\n"


def encode_start(*, script: str, params: Mapping[str, str], run_id: str, attempt: int, run_key: str) -> bytes:
    return _encode(
        {
            "t": "start",
            "script": script,
            "params": dict(params),
            "run_id": run_id,
            "attempt": attempt,
            "run_key": run_key,
        }
    )


def encode_reply(call_id: int, *, result: Any = None, error: tuple[str, str] | None = None) -> bytes:
    if error is None:
        return _encode({"t": "reply", "id": call_id, "ok": True, "result": result})
    return _encode(
        {"t": "reply", "id": call_id, "ok": False, "error": {"type": error[0], "message": error[1]}}
    )
