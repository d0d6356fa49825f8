"""The spans of a script's SDK calls and steps.

    script ─┬─ step load                  step.start → step.end (ERROR when it ended FAILED)
            │   ├─ generate               one span per SDK call, named after its op
            │   └─ insert                 seedbed.ledger: written | skipped | mixed
            │       └─ COPY customers     the batches, by the ledger and the sinks
            └─ fetch                      a call outside any step is a child of "script"

A call's parent is the innermost step open when it arrives, else the span current on the call
thread (the sandbox session makes the "script" span current there); the call is then current while
it is served, so the batches and shards it writes nest under it. Only step.start and step.end shape
the tree: nothing the script sends (a forged `traceparent` among a call's arguments) is read as a
parent. A call's attributes are taken from its arguments before they are checked (a string only;
the tracer cuts it at the attempt's attribute length); its rows from its result.

Not spans: `buffer.put`/`buffer.take` (the transport of a call's arguments and reply, not calls of
the script), `asset.append` (one piece of at most 1 MiB of a `dm.assets.write_*`: a 64 MiB asset
would make 64 spans; its `asset.open` and `asset.close` are spans), `log` (served by the session: a
log line, which carries the open step's ids).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

from opentelemetry.trace import Span

from seedbed.worker import tracing

__all__ = ["CallSpans"]

_UNTRACED = frozenset({"buffer.put", "buffer.take", "asset.append", "step.start", "step.end"})
# A call's arguments shown on its span (when they are strings).
_ARGUMENTS = (
    ("connection_id", "seedbed.connection"),
    ("table", "seedbed.table"),
    ("template_id", "seedbed.template"),
    ("path", "seedbed.path"),
    ("name", "seedbed.file"),
    ("handle", "seedbed.handle"),
)


class _Tally:
    """The batches a call wrote or found in the ledger (replayed)."""

    def __init__(self) -> None:
        self.written = 0
        self.skipped = 0

    def attributes(self) -> dict[str, Any]:
        if not self.written and not self.skipped:
            return {}
        decision = "mixed" if self.written and self.skipped else ("skipped" if self.skipped else "written")
        return {
            "seedbed.ledger": decision,
            "seedbed.batches.written": self.written,
            "seedbed.batches.skipped": self.skipped,
        }


class CallSpans:
    """One attempt's call and step spans. Calls are served one at a time (on the call thread);
    the open steps are also read from the channel's thread (`open_ids`), hence the lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._steps: list[tuple[int, Span]] = []  # (step number, span) of the open steps, innermost last
        self._tally: _Tally | None = None

    def serve(
        self, op: str, args: Mapping[str, Any], handler: Callable[[str, Mapping[str, Any]], Any]
    ) -> Any:
        """`handler(op, args)` inside the call's span."""
        if op in _UNTRACED:
            return handler(op, args)
        attributes: dict[str, Any] = {"seedbed.op": op}
        for name, key in _ARGUMENTS:
            value = args.get(name)
            if isinstance(value, str):
                attributes[key] = value
        with tracing.span(op, parent=self._parent(), attributes=attributes) as span:
            if not span.is_recording():
                return handler(op, args)
            self._tally = tally = _Tally()
            try:
                result = handler(op, args)
            finally:
                self._tally = None
                span.set_attributes(tally.attributes())
            count = result.get("count") if isinstance(result, dict) else None
            if isinstance(count, int) and not isinstance(count, bool):
                span.set_attribute("seedbed.rows", count)
            return result

    def _parent(self) -> Any:
        with self._lock:
            return tracing.context_of(self._steps[-1][1]) if self._steps else None

    def batch(self, replayed: bool) -> None:
        """A batch of the call in flight was written (or found written: `replayed`)."""
        tally = self._tally
        if tally is not None:
            if replayed:
                tally.skipped += 1
            else:
                tally.written += 1

    def step_started(self, name: str, number: int) -> None:
        span = tracing.start_span(
            f"step {name}",
            parent=self._parent(),
            attributes={"seedbed.step": name, "seedbed.step.number": number},
            structural=True,
        )
        if span.is_recording():
            with self._lock:
                self._steps.append((number, span))

    def step_ended(self, number: int, *, failed: bool, generated: int, written: int) -> None:
        with self._lock:
            found = next((i for i, (n, _) in enumerate(self._steps) if n == number), None)
            if found is None:
                return
            _, span = self._steps.pop(found)
        span.set_attributes(
            {
                "seedbed.outcome": "FAILED" if failed else "SUCCESS",
                "seedbed.rows.generated": generated,
                "seedbed.rows.written": written,
            }
        )
        if failed:
            tracing.fail(span, error_type="StepFailed", message="the step ended with an exception")
        span.end()

    def end_steps(self) -> None:
        """The attempt ended: steps still open end now, failed (the script never closed them)."""
        with self._lock:
            steps, self._steps = self._steps, []
        for _, span in reversed(steps):
            span.set_attribute("seedbed.outcome", "RUNNING")
            tracing.fail(span, error_type="StepOpen", message="the attempt ended while the step was open")
            span.end()

    def open_ids(self) -> tuple[str, str]:
        """Ids of the innermost open step (empty outside any step or without tracing)."""
        with self._lock:
            return tracing.ids_of(self._steps[-1][1]) if self._steps else ("", "")
