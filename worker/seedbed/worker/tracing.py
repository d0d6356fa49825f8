"""The worker's half of a run's trace: spans recorded per attempt and handed back to the coordinator.

    recorder = SpanRecorder(spec.trace.traceparent, max_spans=500, max_attribute_length=1024)
    with span("insert", parent=recorder.context, attributes={"seedbed.table": "customers"}):
        with span("COPY customers", kind=SpanKind.CLIENT):    # child of "insert": the current span
            ...
    spans, dropped = recorder.take()                          # run_pb2.Span messages, in end order
    recorder.close()

The coordinator records the attempt's own span and sends its W3C `traceparent` in the attempt's
spec; every span the worker records for that attempt is in its trace, its top-level spans children
of that span. Nothing is exported from the worker: the spans go back to the coordinator with the
attempt's events (`AttemptEvent.spans`), which stores them with the run and exports them.

**One provider, spans routed by their parent.** A Ray worker process runs many attempts and shard
tasks, several at once on threads, so the process has one OpenTelemetry `TracerProvider` (made on
first use; in fact one per attribute limit, which is the operator's setting, so one) and one span
processor, `_Router`, that sends each finished span to the recorder of the attempt (or shard task)
it belongs to. A recorder registers the span id of its remote parent; when a span starts, the router
maps it to the recorder of its parent, so a whole tree follows its root. A span whose parent belongs
to no recorder is never started: `start_span` answers OpenTelemetry's invalid span, and that is all
an attempt without tracing pays (a look at an empty table).

**The cap.** A recorder keeps at most `max_spans` spans of the kinds that grow with the work (SDK
calls, batches, shards); past it they are not recorded and are counted (`dropped`), and so are their
children. Structural spans (queue wait, image check, sandbox, container create and start, script,
steps) are always recorded: they are few, and the steps are bounded by the agent. Attribute values
are cut by the SDK's `SpanLimits` at the attempt's `max_attribute_length`, at most
`MAX_ATTRIBUTES` attributes a span; names and status messages are cut the same way when converted.

**Secrets.** A target may echo the credentials it was given (an error page quoting the request, a
database message quoting a value), and what a span says of a failure is the exception's text, set
where it happens, long before the agent scrubs the error the script sees. Spans are stored with the
run, shown to its viewers and exported to collectors, so a recorder passes every status message and
string attribute value of the spans it hands out (`take`, adopted ones too) through the scrub
functions it is given: the attempt's, the agent's scrubber (set by `execute`, knowing every
connection the attempt opened); a shard's own, the scrubber of the shard's connection (its secret
is resolved where the shard runs, which may differ from the attempt's node for an `env` secret). A
shard's spans adopted into the attempt are scrubbed by both. Names are left as they are: they are
Seedbed's words and the script's arguments, never a target's answer, and readers match on them
("queue wait").

**Threads and processes.** OpenTelemetry's context does not cross threads: where work changes thread
(the agent's call thread, a bulk insert's shards) the parent is passed explicitly, as a `Context` in
the process or as a `TraceHandoff` (a traceparent, what is left of the cap, and the limit) to a
shard that may run in another process. There `continued` records the shard's spans with a recorder
of its own, returned as serialized spans that `adopt` adds to the attempt's recorder (subject to its
cap); on a thread of the attempt's own process the spans go straight to the attempt's recorder.

Rejected: the global tracer provider (the coordinator, or a library, may own it in the same process,
and its exporter would send worker spans past the run's cap); an exporter per attempt (a provider's
processors see every span of the process, so each would have to filter them all anyway); a recorder
in the OpenTelemetry context itself (a context made from a traceparent, in another thread or
process, would not carry it; span ids do); recording every span and dropping past the cap at the end
(a script of a million calls would hold a million spans in the worker); scrubbing in `fail` or
`span` (every sink and the ledger would need the attempt's scrubber, and an attribute set anywhere
else would slip past it).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace import Span as SdkSpan
from opentelemetry.sdk.trace.sampling import ALWAYS_ON
from opentelemetry.trace import (
    INVALID_SPAN,
    NonRecordingSpan,
    Span,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
)
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from seedbed.api.spans import FRAME, to_proto
from seedbed.api.v1 import run_pb2

__all__ = [
    "DEFAULT_ATTRIBUTE_LENGTH",
    "DEFAULT_MAX_SPANS",
    "MAX_ATTRIBUTES",
    "SERVICE",
    "Continued",
    "SpanKind",
    "SpanRecorder",
    "TraceHandoff",
    "activated",
    "adopt",
    "context_from_traceparent",
    "context_of",
    "continued",
    "current_span",
    "fail",
    "handoff",
    "ids_of",
    "record_span",
    "span",
    "start_span",
    "traceparent_of",
]

SERVICE = "seedbed-worker"
# Spans of the kinds that grow with the work an attempt keeps when the coordinator names no cap.
DEFAULT_MAX_SPANS = 10_000
DEFAULT_ATTRIBUTE_LENGTH = 1024
# The coordinator's setting allows 64..65,536 characters; anything else is brought into that range.
_MIN_ATTRIBUTE_LENGTH = 64
_MAX_ATTRIBUTE_LENGTH = 65_536
MAX_ATTRIBUTES = 64
_SCOPE = "seedbed.worker"
_PROPAGATOR = TraceContextTextMapPropagator()


# -- ids and traceparents ----------------------------------------------------------------------------


def ids_of(span: Span) -> tuple[str, str]:
    """(trace id, span id) in lowercase hex; empty strings for an invalid span."""
    ctx = span.get_span_context()
    if not ctx.is_valid:
        return "", ""
    return f"{ctx.trace_id:032x}", f"{ctx.span_id:016x}"


def traceparent_of(span: Span) -> str:
    """The W3C traceparent naming `span` (empty for an invalid span)."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier, context=trace.set_span_in_context(span))
    return carrier.get("traceparent", "")


def context_from_traceparent(traceparent: str) -> Context | None:
    """A context whose current span is the (remote) span `traceparent` names; None when it names
    none (empty, malformed)."""
    if not traceparent:
        return None
    ctx = _PROPAGATOR.extract({"traceparent": traceparent})
    return ctx if trace.get_current_span(ctx).get_span_context().is_valid else None


def context_of(span: Span) -> Context:
    """A context whose current span is `span`: the parent to give work on another thread."""
    return trace.set_span_in_context(span)


def current_span() -> Span:
    """The span current on this thread (OpenTelemetry's invalid span when there is none)."""
    return trace.get_current_span()


# -- the router and the providers ----------------------------------------------------------------------


def _key(ctx: SpanContext) -> tuple[int, int]:
    return ctx.trace_id, ctx.span_id


class _Router(SpanProcessor):
    """Sends each finished span to the recorder its parent belongs to (see the module's doc)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._routes: dict[tuple[int, int], SpanRecorder] = {}

    def recorder_of(self, ctx: SpanContext) -> SpanRecorder | None:
        if not self._routes:  # no attempt of this process is traced: the whole cost of tracing off
            return None
        return self._routes.get(_key(ctx))

    def register(self, ctx: SpanContext, recorder: SpanRecorder) -> None:
        with self._lock:
            if _key(ctx) in self._routes:
                raise ValueError(f"span {ctx.span_id:016x} already has a recorder in this process")
            self._routes[_key(ctx)] = recorder

    def unregister(self, recorder: SpanRecorder) -> None:
        with self._lock:
            for key in [k for k, found in self._routes.items() if found is recorder]:
                del self._routes[key]

    def on_start(self, span: SdkSpan, parent_context: Context | None = None) -> None:
        parent = span.parent
        if parent is None:
            return
        with self._lock:
            recorder = self._routes.get(_key(parent))
            if recorder is not None:
                self._routes[_key(span.get_span_context())] = recorder

    def on_end(self, span: ReadableSpan) -> None:
        ctx = span.context
        if ctx is None:
            return
        with self._lock:
            recorder = self._routes.pop(_key(ctx), None)
        if recorder is not None:
            recorder.finished(span)

    def shutdown(self) -> None:
        """Nothing to flush: recorders are drained by their owners."""

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


_router = _Router()
_setup = threading.Lock()
_providers: dict[int, TracerProvider] = {}
# The SDK warns for every value it cuts and every attribute past the count: cutting is what it is
# asked to do here, and a script making calls with long arguments would fill the worker's log.
_EXPECTED_WARNINGS = ("String attribute value exceeds max length", "Attributes dict is full")


class _QuietLimits(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(_EXPECTED_WARNINGS)


def _tracer(max_attribute_length: int) -> trace.Tracer:
    """The process's tracer for spans whose attributes are cut at `max_attribute_length`."""
    with _setup:
        provider = _providers.get(max_attribute_length)
        if provider is None:
            if not _providers:
                logging.getLogger("opentelemetry.attributes").addFilter(_QuietLimits())
            provider = TracerProvider(
                # Explicit: the OTEL_* variables configure the coordinator's export, not this.
                sampler=ALWAYS_ON,
                resource=Resource({"service.name": SERVICE}),
                shutdown_on_exit=False,
                span_limits=SpanLimits(
                    max_span_attributes=MAX_ATTRIBUTES,
                    max_attribute_length=max_attribute_length,
                    max_events=0,
                    max_links=0,
                ),
            )
            provider.add_span_processor(_router)
            _providers[max_attribute_length] = provider
        return provider.get_tracer(_SCOPE)


# -- recorders -----------------------------------------------------------------------------------------


class SpanRecorder:
    """The spans of one attempt (or one shard task), bounded, thread-safe, drained by its owner.

    `traceparent` names the remote parent: every span started under it (directly or not) in this
    process is recorded here. Raises ValueError when it names no span, or one that already has a
    recorder in this process.
    """

    def __init__(self, traceparent: str, *, max_spans: int, max_attribute_length: int) -> None:
        ctx = context_from_traceparent(traceparent)
        if ctx is None:
            raise ValueError(f"not a W3C traceparent: {traceparent[:100]!r}")
        self.context = ctx
        self.traceparent = traceparent
        parent = trace.get_current_span(ctx).get_span_context()
        self.trace_id = f"{parent.trace_id:032x}"
        self.max_spans = max(0, max_spans)
        self.max_attribute_length = min(
            _MAX_ATTRIBUTE_LENGTH,
            max(_MIN_ATTRIBUTE_LENGTH, max_attribute_length or DEFAULT_ATTRIBUTE_LENGTH),
        )
        self.tracer = _tracer(self.max_attribute_length)
        self._lock = threading.Lock()
        self._finished: list[ReadableSpan] = []
        self._adopted: list[run_pb2.Span] = []
        self._recorded = 0
        self._dropped = 0
        self._closed = False
        self._scrubs: list[Callable[[str], str]] = []
        _router.register(parent, self)

    def admit(self, structural: bool) -> bool:
        """Whether a span may start: structural ones always, the others within the cap (counted
        as dropped past it)."""
        with self._lock:
            if self._closed:
                return False
            if structural or self._recorded < self.max_spans:
                self._recorded += 1
                return True
            self._dropped += 1
            return False

    def remaining(self) -> int:
        """How many more spans of the kinds that grow with the work the cap admits."""
        with self._lock:
            return 0 if self._closed else max(0, self.max_spans - self._recorded)

    def finished(self, span: ReadableSpan) -> None:
        """A span of this recorder ended (the router's call)."""
        with self._lock:
            if not self._closed:
                self._finished.append(span)

    def add(self, spans: Iterable[run_pb2.Span], dropped: int = 0) -> None:
        """Spans recorded elsewhere (a shard task's), within this recorder's trace and cap."""
        with self._lock:
            if self._closed:
                return
            self._dropped += dropped
            for item in spans:
                if item.trace_id != self.trace_id:
                    continue  # not this attempt's: never let another trace in
                if self._recorded < self.max_spans:
                    self._recorded += 1
                    self._adopted.append(item)
                else:
                    self._dropped += 1

    def scrub_with(self, scrub: Callable[[str], str]) -> None:
        """Pass every status message and string attribute value of the spans handed out through
        `scrub` from now on (after any given before): see "Secrets" in the module's doc."""
        with self._lock:
            self._scrubs.append(scrub)

    def take(self) -> tuple[list[run_pb2.Span], int]:
        """The spans finished since the last look, in the order they ended (adopted ones after),
        scrubbed, and how many were dropped meanwhile."""
        with self._lock:
            finished, self._finished = self._finished, []
            adopted, self._adopted = self._adopted, []
            dropped, self._dropped = self._dropped, 0
            scrubs = tuple(self._scrubs)
        spans = [to_proto(s, SERVICE, self.max_attribute_length) for s in finished] + adopted
        if scrubs:
            _scrub_spans(spans, scrubs)
        return spans, dropped

    def close(self) -> None:
        """Record nothing more; spans still open are forgotten when they end."""
        with self._lock:
            self._closed = True
            self._finished.clear()
            self._adopted.clear()
        _router.unregister(self)

    def __enter__(self) -> SpanRecorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _scrub_spans(spans: list[run_pb2.Span], scrubs: tuple[Callable[[str], str], ...]) -> None:
    """Status messages and string attribute values of `spans` through `scrubs`, in place. The same
    few values recur on span after span (a connection, a table, a database): each is scrubbed once."""
    seen: dict[str, str] = {}

    def clean(text: str) -> str:
        found = seen.get(text)
        if found is None:
            found = text
            for scrub in scrubs:
                found = scrub(found)
            seen[text] = found
        return found

    for span in spans:
        if span.status_message:
            span.status_message = clean(span.status_message)
        for attribute in span.attributes:
            if attribute.WhichOneof("value") == "string_value" and attribute.string_value:
                attribute.string_value = clean(attribute.string_value)


# -- spans ---------------------------------------------------------------------------------------------


def start_span(
    name: str,
    *,
    parent: Context | None = None,
    kind: SpanKind = SpanKind.INTERNAL,
    attributes: Mapping[str, Any] | None = None,
    structural: bool = False,
    start_time: int | None = None,
) -> Span:
    """Start a span under `parent` (default: the current span); end it yourself.

    Under no recorder: the invalid span (nothing recorded, nothing paid). Past the recorder's cap
    (not `structural`): a non-recording span standing for the parent, so that its children are
    counted as dropped too."""
    parent_span = trace.get_current_span(parent)
    parent_ctx = parent_span.get_span_context()
    recorder = _router.recorder_of(parent_ctx)
    if recorder is None:
        return INVALID_SPAN
    if not recorder.admit(structural):
        return NonRecordingSpan(parent_ctx)
    if structural:  # the coordinator keeps these past its own cap too (see the contract's Span)
        attributes = {**(attributes or {}), FRAME: True}
    return recorder.tracer.start_span(
        name,
        context=trace.set_span_in_context(parent_span),
        kind=kind,
        attributes=attributes,
        start_time=start_time,
        record_exception=False,
        set_status_on_exception=False,
    )


@contextmanager
def span(
    name: str,
    *,
    parent: Context | None = None,
    kind: SpanKind = SpanKind.INTERNAL,
    attributes: Mapping[str, Any] | None = None,
    structural: bool = False,
) -> Iterator[Span]:
    """A span for the block, current on this thread while it runs; an exception out of the block
    sets its status to ERROR (see `fail`). Never use it across a generator's `yield`."""
    started = start_span(name, parent=parent, kind=kind, attributes=attributes, structural=structural)
    if started is INVALID_SPAN:
        yield started
        return
    # A span dropped past the cap is current too: what the block sets on "the current span" must
    # not land on its recorded parent.
    with trace.use_span(started, end_on_exit=True, record_exception=False, set_status_on_exception=False):
        try:
            yield started
        except BaseException as exc:
            fail(started, exc)
            raise


def record_span(
    name: str,
    *,
    parent: Context | None,
    start_time: int,
    end_time: int,
    attributes: Mapping[str, Any] | None = None,
    structural: bool = False,
) -> None:
    """A span whose times are already known (nanoseconds since the epoch)."""
    done = start_span(
        name, parent=parent, attributes=attributes, structural=structural, start_time=start_time
    )
    done.end(end_time=max(start_time, end_time))


def fail(span: Span, exc: BaseException | None = None, *, error_type: str = "", message: str = "") -> None:
    """Mark `span` failed: status ERROR with `error.type` (the exception's class, or `error_type`)."""
    kind = error_type or (type(exc).__name__ if exc is not None else "Error")
    text = message or (str(exc) if exc is not None else "")
    span.set_attribute("error.type", kind)
    span.set_status(Status(StatusCode.ERROR, f"{kind}: {text}" if text else kind))


@contextmanager
def activated(ctx: Context | None) -> Iterator[None]:
    """Make `ctx` current on this thread for the block (nothing when None)."""
    if ctx is None:
        yield
        return
    token = otel_context.attach(ctx)
    try:
        yield
    finally:
        otel_context.detach(token)


# -- across threads and processes ----------------------------------------------------------------------


@dataclass(frozen=True)
class TraceHandoff:
    """What a shard task needs to record its spans under a span of the attempt (picklable)."""

    traceparent: str
    max_spans: int
    max_attribute_length: int


def handoff(span: Span | None = None) -> TraceHandoff | None:
    """The handoff for work done under `span` (default: the current span) elsewhere; None when
    it is not traced. Its cap is what the attempt's cap has left now: a shard recording more would
    build and ship spans that `adopt` can only drop. Under a span dropped past the cap, the handoff
    records nothing and counts."""
    span = span if span is not None else trace.get_current_span()
    ctx = span.get_span_context()
    recorder = _router.recorder_of(ctx)
    if recorder is None:
        return None
    limit = recorder.remaining() if span.is_recording() else 0
    return TraceHandoff(traceparent_of(span), limit, recorder.max_attribute_length)


# Recorders `Continued` made in this process, by the span they continue, with how many use each:
# shards of one insert run in the same process (two shard tasks in one Ray worker, or threads) share
# one, since the router has one recorder a parent; it is closed when the last of them leaves.
_shared_lock = threading.Lock()
_shared: dict[tuple[int, int], tuple[SpanRecorder, int]] = {}


class Continued:
    """Spans recorded under a handoff: `context` parents them; `take` returns those recorded by a
    recorder of its own (in another process), serialized, with the count dropped.

    A recorder is shared by every `Continued` of the same handoff in this process (each takes what
    has finished so far; a shard's own spans have all ended before it takes) and closed by the last
    to close: closing it with the first would lose the spans of the others, open or not yet taken.
    """

    def __init__(self, handoff: TraceHandoff | None, *, scrub: Callable[[str], str] | None = None) -> None:
        self._recorder: SpanRecorder | None = None
        ctx = context_from_traceparent(handoff.traceparent) if handoff is not None else None
        if handoff is None or ctx is None:
            self.context: Context = trace.set_span_in_context(INVALID_SPAN)
            return
        self.context = ctx
        parent = trace.get_current_span(ctx).get_span_context()
        self._key = _key(parent)
        with _shared_lock:
            found = _shared.get(self._key)
            if found is not None:  # another shard of the same insert, in this process
                self._recorder, users = found
                _shared[self._key] = (self._recorder, users + 1)
            elif _router.recorder_of(parent) is not None:
                # The attempt's recorder is in this process (shards on threads): spans go to it,
                # scrubbed with the agent's scrubber, which knows the same secrets.
                return
            else:
                self._recorder = SpanRecorder(
                    handoff.traceparent,
                    max_spans=handoff.max_spans,
                    max_attribute_length=handoff.max_attribute_length,
                )
                _shared[self._key] = (self._recorder, 1)
        if scrub is not None:
            self._recorder.scrub_with(scrub)

    def take(self) -> tuple[list[bytes], int]:
        if self._recorder is None:
            return [], 0
        spans, dropped = self._recorder.take()
        return [s.SerializeToString() for s in spans], dropped

    def close(self) -> None:
        recorder, self._recorder = self._recorder, None
        if recorder is None:
            return
        with _shared_lock:  # closed under the lock: a shard arriving now finds it shared, or gone
            _, users = _shared[self._key]
            if users > 1:
                _shared[self._key] = (recorder, users - 1)
                return
            del _shared[self._key]
            recorder.close()


@contextmanager
def continued(
    handoff: TraceHandoff | None, *, scrub: Callable[[str], str] | None = None
) -> Iterator[Continued]:
    """Record spans under `handoff` for the block (see `Continued`); those recorded here are
    passed through `scrub` (the secrets of the work's connection) before they leave."""
    found = Continued(handoff, scrub=scrub)
    try:
        yield found
    finally:
        found.close()


def adopt(spans: Iterable[bytes], dropped: int, *, into: TraceHandoff | None) -> None:
    """Spans a shard task recorded (serialized) into the recorder of `into`'s span in this process
    (subject to its cap); nothing when that span has no recorder here."""
    if into is None or (not dropped and not spans):
        return
    ctx = context_from_traceparent(into.traceparent)
    recorder = (
        _router.recorder_of(trace.get_current_span(ctx).get_span_context()) if ctx is not None else None
    )
    if recorder is not None:
        recorder.add((run_pb2.Span.FromString(data) for data in spans), dropped)
