"""The events of a run's log stream, as ``Client.stream_logs`` yields them: lines, then the end.

A line's ``fields`` are the keyword arguments of the script's SDK log call (``log.info("loaded",
rows=5)`` → ``{"rows": 5}``). The contract carries each value as JSON text (a map of strings keeps
the message simple and any value representable); they are decoded here, once, into Python values.
A value that is not JSON (or is one of the non-standard constants NaN and Infinity, which a JSON
printer could not write back) stays its raw text: a field is never lost. Rejected: decoding in the
CLI only, which would leave every other caller parsing JSON text by hand.

``trace_id`` and ``span_id`` name the span the line was written in (see ``RunTrace``): the script's
open step (else its sandbox), or for Seedbed's own lines about an attempt the attempt's span; empty
when the run has no trace (tracing was off).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from seedbed.api.v1 import run_pb2


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def decode_field(text: str) -> Any:
    """A field's value from its JSON text; the text itself when it is not JSON."""
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except ValueError:  # json.JSONDecodeError is one
        return text


@dataclass(frozen=True)
class LogEvent:
    """One line of a run's log. ``line`` is the contract's message; the properties read it."""

    line: run_pb2.LogLine

    @property
    def text(self) -> str:
        return self.line.text

    @property
    def sequence(self) -> int:
        return self.line.sequence

    @property
    def attempt(self) -> int:
        return self.line.attempt

    @property
    def stream(self) -> str:
        """STDOUT, STDERR or SYSTEM (Seedbed's lines and the SDK's log calls)."""
        return run_pb2.LogStream.Name(self.line.stream).removeprefix("LOG_STREAM_")

    @property
    def level(self) -> str:
        """For SDK log calls and Seedbed's lines: "info", "warning" or "error"; else ""."""
        return self.line.level

    @property
    def time(self) -> datetime | None:
        if not self.line.HasField("time"):
            return None
        value: datetime = self.line.time.ToDatetime(tzinfo=UTC)
        return value

    @property
    def fields(self) -> dict[str, Any]:
        """The log call's fields, each value decoded from its JSON text (undecodable: the text)."""
        return {key: decode_field(text) for key, text in sorted(self.line.fields.items())}

    @property
    def trace_id(self) -> str:
        return self.line.trace_id

    @property
    def span_id(self) -> str:
        return self.line.span_id

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready document of the line (what ``seedbed run logs -o json`` prints, one per line)."""
        time = self.time
        return {
            "sequence": self.sequence,
            "attempt": self.attempt,
            "stream": self.stream,
            "level": self.level,
            "time": time.isoformat() if time is not None else None,
            "text": self.text,
            "fields": self.fields,
            "trace_id": self.trace_id,
            "span_id": self.span_id,
        }


@dataclass(frozen=True)
class RunEnded:
    """The last event of a log stream: the run as it is at the end of the stream."""

    end: run_pb2.StreamEnd

    @property
    def run(self) -> run_pb2.Run:
        return self.end.run
