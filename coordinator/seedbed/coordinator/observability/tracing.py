"""One trace per run: the coordinator's spans, the store that keeps every run's trace, OTLP export.

The tree of a run::

    RunService/RunScenario (gRPC server span, when a call made the fire: ``faces.grpc.interceptors``)
    └── fire                               recorded here, around the fire's resolution
        └── run                            recorded here when the run ends (created → ended)
            └── attempt N                  recorded here when the attempt ends (dispatch → end)
                └── queue wait, image check, container create/start, script → steps → SDK calls
                    → batches, shards …    recorded by the worker, sent back with the attempt's
                                           events (``AttemptEvent.spans``)

The run and attempt spans outlive any one coordinator process (a run may be taken over after a
restart), so they are not live SDK spans: their ids are derived from the run id and attempt number
(``derived_span_id``), known before they are recorded, and they are written as finished spans once
their end is known. The fire's context is stored with the fire and copied onto its run
(``runs.traceparent``), so a queued fire's run, started minutes later by another coordinator, still
joins the trace. Rejected: keeping a live run span in memory (lost on restart, so the attempts of a
taken-over run would hang from a span that never ends).

Every span goes two ways: into the store, under the run (or under the fire, for the spans recorded
before the fire had a run), through an in-memory queue flushed by a background task (never a store
write on the thread that ends a span); and, when the standard ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or
``…_TRACES_ENDPOINT``) variable names a collector, to an OTLP/gRPC exporter behind a bounded batch
queue on a thread of its own: a collector that is down costs a warning in the log and the spans
past the queue, never a run's time.

What the worker sends is trusted to the extent the worker is, but its contents came partly from the
sandbox (step names, tables): the worker bounds them, and here a span of another trace is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import threading
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ALWAYS_ON
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from seedbed.api.spans import FRAME, from_proto, to_proto
from seedbed.api.v1 import attempt_pb2, run_pb2
from seedbed.coordinator.periodic import PeriodicTask
from seedbed.coordinator.settings import CoordinatorSettings
from seedbed.coordinator.store import RunRecord, Store, now
from seedbed.coordinator.store.spans import SpanBatch

__all__ = [
    "ATTEMPT",
    "FIRE_ID",
    "RUN_ID",
    "SERVICE",
    "RunTracing",
    "attempt_span_ids",
    "derived_span_id",
]

log = logging.getLogger(__name__)

SERVICE = "seedbed-coordinator"
RUN_ID = "seedbed.run.id"
FIRE_ID = "seedbed.fire.id"
ATTEMPT = "seedbed.attempt"
SCENARIO_ID = "seedbed.scenario.id"
_SCOPE = InstrumentationScope("seedbed.coordinator")
_PROPAGATOR = TraceContextTextMapPropagator()
# How often kept spans are written to the store (and always before GetRunTrace reads).
_FLUSH_SECONDS = 0.5
# Spans waiting for the store at most; past it the oldest are counted as dropped for their run.
_MAX_PENDING = 50_000


def derived_span_id(*parts: object) -> int:
    """A span id that is a function of ``parts`` (a run's or an attempt's), never 0."""
    digest = hashlib.sha256("/".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") or 1


def _derived(parent: SpanContext, *parts: object) -> SpanContext:
    """The context of a span of ``parent``'s trace whose id derives from ``parts``."""
    return SpanContext(parent.trace_id, derived_span_id(*parts), False, parent.trace_flags)


def attempt_span_ids(run: RunRecord, attempt: int) -> tuple[str, str]:
    """The trace and span ids (hex) of an attempt's span; empty when the run has no trace. The
    coordinator's own log lines about the attempt carry them."""
    trace_id = run.trace_id
    if not trace_id:
        return "", ""
    return trace_id, f"{derived_span_id(run.id, 'attempt', attempt):016x}"


def _traceparent(ctx: SpanContext) -> str:
    return f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"


def parse_traceparent(text: str) -> SpanContext | None:
    """The span context a W3C traceparent names; None when it is empty or malformed."""
    if not text:
        return None
    ctx = trace.get_current_span(_PROPAGATOR.extract({"traceparent": text})).get_span_context()
    return ctx if ctx.is_valid else None


def _ns(value: datetime) -> int:
    return int(value.timestamp() * 1e9)


def _fit(kept: list[bytes], budget: int) -> tuple[list[run_pb2.Span], int, int]:
    """The kept spans by start time, made to fit ``budget`` bytes: the attributes of the oldest
    spans go first (ids, names, times and status stay), then, if that is not enough, the newest
    spans that are not the frame. Returns (spans, how many were trimmed, how many left out)."""
    spans = [run_pb2.Span.FromString(data) for data in kept]
    spans.sort(key=lambda s: (s.start_time.ToNanoseconds(), -s.end_time.ToNanoseconds()))
    size = sum(len(data) + 8 for data in kept)  # each span's own bytes and its field's framing
    trimmed = 0
    for span in spans:
        if size <= budget:
            break
        if span.attributes:
            before = span.ByteSize()
            span.dropped_attributes_count += len(span.attributes)
            del span.attributes[:]
            size -= before - span.ByteSize()
            trimmed += 1
    out: set[int] = set()
    for index in range(len(spans) - 1, -1, -1):
        if size <= budget:
            break
        span = spans[index]
        if span.service != SERVICE and not _is_frame(span):  # the coordinator's own are the frame too
            out.add(index)
            size -= span.ByteSize() + 8
    return [s for i, s in enumerate(spans) if i not in out], trimmed, len(out)


def _is_frame(span: run_pb2.Span) -> bool:
    return any(a.key == FRAME and a.bool_value for a in span.attributes)


def _otlp_configured(env: Mapping[str, str]) -> bool:
    """OTEL_TRACES_EXPORTER names otlp (its default) and an OTLP endpoint is set."""
    exporters = {part.strip().lower() for part in env.get("OTEL_TRACES_EXPORTER", "otlp").split(",")}
    if "otlp" not in exporters:
        return False
    return bool(env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_ENDPOINT"))


class _NowAndThen(logging.Filter):
    """Lets one record through a minute: a collector that is down is said, not shouted."""

    def __init__(self) -> None:
        super().__init__()
        self._next = 0.0

    def filter(self, record: logging.LogRecord) -> bool:
        if record.created < self._next:
            return False
        self._next = record.created + 60
        return True


def _quiet_exporter_warnings() -> None:
    for name in ("opentelemetry.exporter.otlp.proto.grpc.exporter", "opentelemetry.sdk._shared_internal"):
        chatty = logging.getLogger(name)
        if not any(isinstance(f, _NowAndThen) for f in chatty.filters):
            chatty.addFilter(_NowAndThen())


@dataclass(frozen=True)
class _Kept:
    """A span waiting for the store: its owner (run or fire), trace, attempt (0: the coordinator's)
    and whether it counts against the run's cap (the frame and the coordinator's own do not)."""

    owner: str
    trace_id: str
    attempt: int
    data: bytes
    capped: bool


class _Keeper(SpanProcessor):
    """Queues every finished span that names its run (or fire) for the store, and the worker's;
    the queue is bounded, and what does not fit is counted as lost for its run."""

    def __init__(self, max_attribute_length: int) -> None:
        self.max_attribute_length = max_attribute_length
        self.pending: deque[_Kept] = deque()
        self.lost: dict[str, int] = {}

    def keep(self, kept: _Kept) -> None:
        if len(self.pending) >= _MAX_PENDING:
            self.count_lost(kept.owner, 1)
        else:
            self.pending.append(kept)

    def count_lost(self, owner: str, count: int) -> None:
        if count:
            self.lost[owner] = self.lost.get(owner, 0) + count

    def on_end(self, span: ReadableSpan) -> None:
        attributes = span.attributes or {}
        owner = attributes.get(RUN_ID) or attributes.get(FIRE_ID)
        ctx = span.get_span_context()
        if not isinstance(owner, str) or ctx is None:
            return
        message = to_proto(span, SERVICE, self.max_attribute_length)
        self.keep(_Kept(owner, f"{ctx.trace_id:032x}", 0, message.SerializeToString(), capped=False))


class RunTracing:
    """The coordinator's tracer and the keeper of runs' traces: ``start()``, ``aclose()``.

    With ``settings.tracing`` off every method is a cheap no-op: no spans, no trace on attempts.
    """

    def __init__(
        self, settings: CoordinatorSettings, store: Store, env: Mapping[str, str] | None = None
    ) -> None:
        self.enabled = settings.tracing
        self._store = store
        self._max_spans = settings.max_trace_spans
        self._max_attribute_length = settings.max_span_attribute_length
        # What one GetRunTrace answer may hold: the gRPC message limit, less room for the rest.
        self._max_answer_bytes = settings.max_message_bytes - 64 * 1024
        self._keeper = _Keeper(self._max_attribute_length)
        self._export: BatchSpanProcessor | None = None
        self._provider: TracerProvider | None = None
        self._flushes = PeriodicTask("trace keeper", self.flush, _FLUSH_SECONDS)
        self._flush_lock = asyncio.Lock()
        if not self.enabled:
            self.tracer: trace.Tracer = trace.NoOpTracer()
            return
        self._resource = Resource.create({"service.name": SERVICE})
        self._provider = TracerProvider(
            # Every run gets its trace, whatever a caller's traceparent says about sampling or an
            # OTEL_TRACES_SAMPLER meant for something else: the store keeps them all.
            sampler=ALWAYS_ON,
            resource=self._resource,
            span_limits=SpanLimits(
                max_span_attributes=64, max_span_attribute_length=self._max_attribute_length
            ),
            shutdown_on_exit=False,
        )
        self._provider.add_span_processor(self._keeper)
        if _otlp_configured(os.environ if env is None else env):
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

            # The exporter reads the standard OTEL_EXPORTER_OTLP_* variables itself (endpoint,
            # headers, certificates, timeout). Its queue is bounded: past it spans are dropped.
            self._export = BatchSpanProcessor(OTLPSpanExporter(), max_queue_size=4096)
            self._provider.add_span_processor(self._export)
            _quiet_exporter_warnings()
            log.info("traces: exporting over OTLP as well")
        self.tracer = self._provider.get_tracer("seedbed.coordinator")

    @property
    def provider(self) -> TracerProvider | None:
        """The provider of the coordinator's live spans (None when tracing is off)."""
        return self._provider

    def start(self) -> None:
        if self.enabled:
            self._flushes.start()

    async def aclose(self) -> None:
        await self._flushes.aclose()
        await self.flush()
        if self._export is not None:
            # Bounded: a collector that is down must not hold the coordinator's shutdown for long
            # (the exporter retries for up to OTEL_EXPORTER_OTLP_TIMEOUT on a daemon thread).
            closing = threading.Thread(target=self._export.shutdown, name="otlp-shutdown", daemon=True)
            closing.start()
            await asyncio.to_thread(closing.join, 2.0)

    # -- the fire ----------------------------------------------------------------------------------

    @contextlib.contextmanager
    def fire_span(self, scenario_id: str, trigger_id: str | None) -> Iterator[trace.Span]:
        """The span of a fire's resolution, the child of the current one (the RunScenario call's)
        or a trace's root (a trigger's fire). Name the fire and run on it with :meth:`name_fire`."""
        attributes: dict[str, Any] = {SCENARIO_ID: scenario_id}
        if trigger_id:
            attributes["seedbed.trigger.id"] = trigger_id
        with self.tracer.start_as_current_span("fire", attributes=attributes) as span:
            yield span

    @staticmethod
    def traceparent(span: trace.Span) -> str:
        """A live span's W3C traceparent; empty for a span that records nothing."""
        ctx = span.get_span_context()
        return _traceparent(ctx) if span.is_recording() and ctx.is_valid else ""

    @staticmethod
    def name_fire(span: trace.Span, fire_id: str, run_id: str | None) -> None:
        """Put the fire's (and run's) id on the fire's span, so it is kept with the run's trace."""
        span.set_attribute(FIRE_ID, fire_id)
        if run_id:
            span.set_attribute(RUN_ID, run_id)

    @staticmethod
    def name_call(fire_id: str, run_id: str | None) -> None:
        """Name the fire (and run) on the current span: the RunScenario call's, once ``fire_span``
        has ended (outside a call, the current span records nothing and this does nothing)."""
        span = trace.get_current_span()
        span.set_attribute(FIRE_ID, fire_id)
        if run_id:
            span.set_attribute(RUN_ID, run_id)

    # -- the run and its attempts --------------------------------------------------------------------

    def attempt_trace(self, run: RunRecord, attempt: int) -> attempt_pb2.AttemptTrace | None:
        """Where the worker's spans of this attempt go; None when the run has no trace."""
        parent = parse_traceparent(run.traceparent) if self.enabled else None
        if parent is None:
            return None
        ctx = _derived(parent, run.id, "attempt", attempt)
        dispatched = Timestamp()
        dispatched.GetCurrentTime()
        return attempt_pb2.AttemptTrace(
            traceparent=_traceparent(ctx),
            max_spans=self._max_spans,
            max_attribute_length=self._max_attribute_length,
            dispatch_time=dispatched,
        )

    def record_attempt(
        self,
        run: RunRecord,
        attempt: int,
        began: datetime,
        outcome: str,
        attributes: Mapping[str, Any],
        error: str = "",
    ) -> None:
        """The attempt's span, from its dispatch to now."""
        parent = parse_traceparent(run.traceparent) if self.enabled else None
        if parent is None:
            return
        self._record(
            f"attempt {attempt}",
            _derived(parent, run.id, "attempt", attempt),
            _derived(parent, run.id, "run"),
            began,
            now(),
            {RUN_ID: run.id, ATTEMPT: attempt, "seedbed.attempt.outcome": outcome, **attributes},
            error,
        )

    def record_run(self, run: RunRecord) -> None:
        """The run's span, from its creation to its end (``run.ended_at``)."""
        parent = parse_traceparent(run.traceparent) if self.enabled else None
        if parent is None:
            return
        error = f"{run.error.type}: {run.error.message}" if run.error is not None else ""
        self._record(
            "run",
            _derived(parent, run.id, "run"),
            parent,
            run.created_at,
            run.ended_at or now(),
            {
                RUN_ID: run.id,
                SCENARIO_ID: run.scenario_id,
                "seedbed.fire.id": run.fire_id,
                "seedbed.run.state": run.state.value,
                "seedbed.run.attempts": run.attempt_count,
                "seedbed.project": run.project_key,
            },
            error if run.state.value == "FAILED" else "",
        )

    def _record(
        self,
        name: str,
        ctx: SpanContext,
        parent: SpanContext,
        start: datetime,
        end: datetime,
        attributes: Mapping[str, Any],
        error: str,
    ) -> None:
        # Made by hand, so the provider's limits are applied here: values and the error cut.
        cut = self._max_attribute_length
        values = {k: v[:cut] if isinstance(v, str) else v for k, v in attributes.items()}
        span = ReadableSpan(
            name=name,
            context=ctx,
            parent=parent,
            resource=self._resource,
            attributes=values,
            kind=SpanKind.INTERNAL,
            status=Status(StatusCode.ERROR, error[:cut]) if error else Status(StatusCode.UNSET),
            start_time=_ns(start),
            end_time=max(_ns(end), _ns(start)),
            instrumentation_scope=_SCOPE,
        )
        self._keeper.on_end(span)
        if self._export is not None:
            self._export.on_end(span)

    def keep_worker_spans(self, run: RunRecord, attempt: int, report: attempt_pb2.AttemptSpans) -> None:
        """Queue what the worker sent for an attempt of ``run`` for the store (the run's cap is
        applied when it is written) and export it. Never raises, never waits: the attempt's events
        go on whatever happens to its trace."""
        trace_id = run.trace_id
        if not self.enabled or not trace_id:
            return
        try:
            mine = [span for span in report.spans if span.trace_id == trace_id]
            strays = len(report.spans) - len(mine)
            if strays:
                log.warning("run %s attempt %d: dropped %d span(s) of another trace", run.id, attempt, strays)
            self._keeper.count_lost(run.id, report.dropped + strays)
            for span in mine:
                # The frame (sandbox, script, steps: few, bounded by the worker) is kept past the cap.
                capped = not _is_frame(span)
                self._keeper.keep(_Kept(run.id, trace_id, attempt, span.SerializeToString(), capped))
                if self._export is not None and (readable := from_proto(span, "seedbed.worker")):
                    self._export.on_end(readable)
        except Exception:  # noqa: BLE001 - a trace must never fail a run
            log.exception("run %s attempt %d: could not keep the worker's spans", run.id, attempt)

    async def run_started(self, run: RunRecord) -> None:
        return None

    async def run_finished(self, run: RunRecord) -> None:
        """(A RunListener.) Record the run's span once it has ended."""
        self.record_run(run)

    # -- the store ---------------------------------------------------------------------------------

    async def flush(self) -> None:
        """Write the spans queued so far to the store (in one batch per run, attempt and cap)."""
        async with self._flush_lock:
            pending, self._keeper.pending = self._keeper.pending, deque()
            lost, self._keeper.lost = self._keeper.lost, {}
            batches: dict[tuple[str, str, int, bool], list[bytes]] = {}
            for kept in pending:
                key = (kept.owner, kept.trace_id, kept.attempt, kept.capped)
                batches.setdefault(key, []).append(kept.data)
            writes = [
                SpanBatch(
                    owner,
                    trace_id,
                    attempt,
                    spans,
                    cap=self._max_spans if capped else None,
                    dropped=lost.pop(owner, 0),
                )
                for (owner, trace_id, attempt, capped), spans in batches.items()
            ]
            writes += [SpanBatch(owner, "", 0, [], dropped=count) for owner, count in lost.items()]
            try:
                await self._store.spans.add(writes)  # one transaction: the runs' own writes wait less
            except Exception:  # noqa: BLE001 - a trace must never take the coordinator down
                log.exception("could not keep %d batch(es) of spans", len(writes))

    async def trace_of(self, run: RunRecord) -> run_pb2.GetRunTraceResponse:
        """The run's kept trace, ordered by start time, with what was dropped said in words."""
        await self.flush()
        latest = await self._store.get_run(run.id)
        kept = await self._store.spans.of_run(latest)
        # Parsing, sorting and fitting thousands of spans is CPU work: off the event loop.
        spans, trimmed, left_out = await asyncio.to_thread(_fit, kept, self._max_answer_bytes)
        notes = []
        if not latest.trace_id:
            notes.append("this run has no trace: tracing was off (SEEDBED_TRACING) when it was fired")
        if latest.dropped_spans:
            notes.append(
                f"{latest.dropped_spans} span(s) of this run were not kept: a run keeps at most "
                f"{self._max_spans} spans besides its frame (SEEDBED_MAX_TRACE_SPANS); the fire, run, "
                "attempt, sandbox, script and step spans are always kept"
            )
        if trimmed or left_out:
            notes.append(
                f"to fit one answer (SEEDBED_MAX_MESSAGE_BYTES) the attributes of the {trimmed} oldest "
                f"span(s) were trimmed" + (f" and the {left_out} newest left out" if left_out else "")
            )
        return run_pb2.GetRunTraceResponse(
            trace_id=latest.trace_id,
            spans=spans,
            dropped_spans=latest.dropped_spans + left_out,
            max_spans=self._max_spans,
            note="; ".join(notes),
        )
