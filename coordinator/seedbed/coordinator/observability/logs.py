"""The coordinator's own log lines: text for a terminal, or one JSON object per line for a log
collector (``SEEDBED_LOG_FORMAT=json``, ``seedbed server --log-format json``).

A line about a run carries the run's id, the attempt and the run's trace id, so a collector can join
the coordinator's lines with the run's trace and its script's log. They come from context variables
bound where a run is driven (``bind_run``): every task and call made from there inherits them, so
the hundreds of existing ``log.info("run %s …", run_id)`` calls need no change. Outside a run, a
line written while a traced gRPC call is served carries that call's trace and span ids.
Rejected: a ``LoggerAdapter`` per run (every module would have to be handed one).
"""

from __future__ import annotations

import json
import logging
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Literal

from opentelemetry import trace

__all__ = ["JsonFormatter", "adopt_logger", "bind_run", "configure_logging"]

_RUN: ContextVar[tuple[str, int | None, str, str] | None] = ContextVar("seedbed_run", default=None)
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def bind_run(run_id: str, attempt: int | None = None, trace_id: str = "", span_id: str = "") -> None:
    """From here on (in this task and what it starts), log lines concern this run (and attempt,
    whose span they name)."""
    _RUN.set((run_id, attempt, trace_id, span_id))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message; run_id, attempt and
    trace_id when the line concerns a run; span_id inside a traced call; exception text."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        bound = _RUN.get()
        if bound is not None:
            # A run's task may have been started inside the RunScenario call: its OpenTelemetry
            # context names that (long ended) call, so a bound run's own ids win.
            run_id, attempt, trace_id, span_id = bound
            out["run_id"] = run_id
            if attempt is not None:
                out["attempt"] = attempt
            if trace_id:
                out["trace_id"] = trace_id
            if span_id:
                out["span_id"] = span_id
        else:
            ctx = trace.get_current_span().get_span_context()
            if ctx.is_valid:
                out["trace_id"] = f"{ctx.trace_id:032x}"
                out["span_id"] = f"{ctx.span_id:016x}"
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


def configure_logging(fmt: Literal["text", "json"], level: int = logging.INFO) -> None:
    """The process's root logger writes to stderr in ``fmt``."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def adopt_logger(name: str) -> None:
    """When the process logs JSON, have a library's logger that brings its own handler (Ray's)
    write through the root's instead, so every line of the process is one JSON object. Call it once
    the library is imported (its import installs the handler)."""
    if any(isinstance(h.formatter, JsonFormatter) for h in logging.getLogger().handlers):
        library = logging.getLogger(name)
        library.handlers[:] = []
        library.propagate = True
