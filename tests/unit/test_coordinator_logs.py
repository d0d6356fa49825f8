"""The coordinator's own log lines as JSON: a line about a run names the run, attempt and trace."""

from __future__ import annotations

import contextvars
import json
import logging
import sys

from opentelemetry.sdk.trace import TracerProvider

from seedbed.coordinator.observability.logs import JsonFormatter, bind_run


def _line(message: str, *args: object, exc: bool = False) -> dict[str, object]:
    record = logging.LogRecord("seedbed.coordinator.x", logging.WARNING, __file__, 1, message, args, None)
    if exc:
        try:
            raise ValueError("boom")
        except ValueError:
            record.exc_info = sys.exc_info()
    parsed: dict[str, object] = json.loads(JsonFormatter().format(record))
    return parsed


def test_a_line_outside_any_run_or_call_has_only_the_basics() -> None:
    line = contextvars.Context().run(_line, "hello %s", "there")
    assert line["message"] == "hello there" and line["level"] == "warning"
    assert line["logger"] == "seedbed.coordinator.x"
    assert "run_id" not in line and "trace_id" not in line
    assert str(line["time"]).endswith("+00:00")


def test_a_line_about_a_run_names_run_attempt_and_trace() -> None:
    def inside() -> dict[str, object]:
        bind_run("run_abc", 2, "a" * 32)
        return _line("attempt ended", exc=True)

    line = contextvars.Context().run(inside)
    assert (line["run_id"], line["attempt"], line["trace_id"]) == ("run_abc", 2, "a" * 32)
    assert "ValueError: boom" in str(line["exception"])


def test_a_bound_run_s_span_wins_over_the_call_its_task_was_started_in() -> None:
    tracer = TracerProvider().get_tracer("t")

    def inside() -> dict[str, object]:
        with tracer.start_as_current_span("RunScenario"):
            bind_run("run_abc", 1, "b" * 32, "c" * 16)
            return _line("attempt dispatched")

    line = contextvars.Context().run(inside)
    assert (line["trace_id"], line["span_id"]) == ("b" * 32, "c" * 16)


def test_a_line_in_a_traced_call_carries_its_span() -> None:
    tracer = TracerProvider().get_tracer("t")

    def inside() -> tuple[dict[str, object], str, str]:
        with tracer.start_as_current_span("call") as span:
            ctx = span.get_span_context()
            return _line("served"), f"{ctx.trace_id:032x}", f"{ctx.span_id:016x}"

    line, trace_id, span_id = contextvars.Context().run(inside)
    assert line["trace_id"] == trace_id and line["span_id"] == span_id


def test_hostile_text_stays_one_line_of_json() -> None:
    line = contextvars.Context().run(_line, "%s", 'evil\n{"level": "error"}\x1b[31m')
    assert line["message"] == 'evil\n{"level": "error"}\x1b[31m'
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "a\nb", (), None)
    assert "\n" not in JsonFormatter().format(record)
