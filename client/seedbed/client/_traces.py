"""A run's trace as the client reads it: spans as typed values, their tree, and OTLP JSON.

``Client.get_run_trace(run_id)`` and ``ScenarioRun.get_trace()`` answer a ``RunTrace``::

    trace = client.get_run_trace("run_…")
    for depth, span in trace.walk():
        print("  " * depth + span.name, span.service, span.duration, span.attributes.get("seedbed.rows"))
    json.dump(trace.to_otlp_json(), open("trace.json", "w"))   # for Jaeger, Tempo, otel-desktop-viewer…

Design:

- **Times are integer nanoseconds** since the epoch (``start_unix_nano``), as the contract's
  Timestamps and OTLP carry them; ``start_time``/``end_time`` are datetimes for reading (a datetime
  keeps microseconds only, so OTLP is written from the integers, never from the datetimes).
- **The tree is built once, and loses nothing.** A span's parent is looked up among the spans kept. A
  span whose parent is absent (dropped past the run's cap, lost with a worker that died, or the
  caller's own span that the RunScenario call continued) is a root. Spans caught in a parent cycle
  (only a corrupted or forged set has one) become roots too, the earliest first: ``walk()`` yields
  every span exactly once. Siblings are ordered by start time, the longer first on a tie (a parent
  started in the same nanosecond as its child comes before it).
- **OTLP JSON is written by hand**, per the OTLP/JSON encoding: lowerCamelCase keys, trace and span
  ids as hex (not base64), 64-bit integers as decimal strings, enums as integers, one
  ``resourceSpans`` per service (``service.name``). Rejected: protobuf's ``json_format`` over
  opentelemetry-proto's messages, which encodes ids as base64 (protobuf's rule for bytes) and would
  need the same walk afterwards to undo it, for a dependency more.
- Values, not the contract's messages: a ``TraceSpan`` is frozen, its attributes a plain dict of
  ``str | int | float | bool`` (an attribute sent without a value is left out). ``RunTrace.raw`` keeps
  the response for anything else.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from seedbed.api.v1 import run_pb2

AttributeValue = str | int | float | bool

# The instrumentation scope of every span in the OTLP document (the contract does not carry one).
OTLP_SCOPE = "seedbed"
# OpenTelemetry's resource default when a process did not say which service it is.
UNKNOWN_SERVICE = "unknown_service"

_NANOS = 1_000_000_000


def _nanos(stamp: Timestamp) -> int:
    return stamp.seconds * _NANOS + stamp.nanos


def _datetime(unix_nano: int) -> datetime:
    seconds, nanos = divmod(unix_nano, _NANOS)
    return datetime.fromtimestamp(seconds, UTC) + timedelta(microseconds=nanos // 1000)


def _enum_name(enum: Any, value: int, prefix: str) -> str:
    try:
        name: str = enum.Name(value)
    except ValueError:  # a value added to the contract after this client was built
        return "UNSPECIFIED"
    return name.removeprefix(prefix)


def _attribute(attribute: run_pb2.SpanAttribute) -> AttributeValue | None:
    kind = attribute.WhichOneof("value")
    if kind is None:
        return None
    value: AttributeValue = getattr(attribute, kind)
    return value


@dataclass(frozen=True)
class TraceSpan:
    """One finished span of a run's trace.

    ``kind``: INTERNAL, SERVER, CLIENT, PRODUCER, CONSUMER or UNSPECIFIED; ``status``: OK, ERROR or
    UNSPECIFIED (OpenTelemetry's "unset"), as the contract's enums without their prefix.
    """

    trace_id: str  # 32 lowercase hex digits
    span_id: str  # 16 lowercase hex digits
    parent_span_id: str  # "" for the root of the trace
    name: str
    kind: str
    service: str  # "seedbed-coordinator", "seedbed-worker"
    start_unix_nano: int
    end_unix_nano: int
    attributes: Mapping[str, AttributeValue] = field(hash=False)
    status: str
    status_message: str
    dropped_attributes_count: int

    @classmethod
    def of(cls, span: run_pb2.Span) -> TraceSpan:
        attributes = {a.key: value for a in span.attributes if (value := _attribute(a)) is not None}
        start = _nanos(span.start_time)
        return cls(
            trace_id=span.trace_id,
            span_id=span.span_id,
            parent_span_id=span.parent_span_id,
            name=span.name,
            kind=_enum_name(run_pb2.SpanKind, span.kind, "SPAN_KIND_"),
            service=span.service,
            start_unix_nano=start,
            # A span without an end (never: the store keeps finished spans) is drawn as an instant.
            end_unix_nano=_nanos(span.end_time) if span.HasField("end_time") else start,
            attributes=attributes,
            status=_enum_name(run_pb2.SpanStatusCode, span.status_code, "SPAN_STATUS_CODE_"),
            status_message=span.status_message,
            dropped_attributes_count=span.dropped_attributes_count,
        )

    @property
    def start_time(self) -> datetime:
        return _datetime(self.start_unix_nano)

    @property
    def end_time(self) -> datetime:
        return _datetime(self.end_unix_nano)

    @property
    def duration_nanos(self) -> int:
        return max(0, self.end_unix_nano - self.start_unix_nano)

    @property
    def duration(self) -> timedelta:
        return timedelta(microseconds=self.duration_nanos / 1000)

    @property
    def error(self) -> bool:
        return self.status == "ERROR"

    def to_otlp_json(self) -> dict[str, Any]:
        """This span as an OTLP/JSON ``Span`` object."""
        document: dict[str, Any] = {"traceId": self.trace_id, "spanId": self.span_id}
        if self.parent_span_id:
            document["parentSpanId"] = self.parent_span_id
        document |= {
            "name": self.name,
            "kind": run_pb2.SpanKind.Value(f"SPAN_KIND_{self.kind}"),
            "startTimeUnixNano": str(self.start_unix_nano),
            "endTimeUnixNano": str(self.end_unix_nano),
            "attributes": [{"key": k, "value": otlp_value(v)} for k, v in self.attributes.items()],
            "droppedAttributesCount": self.dropped_attributes_count,
            "status": {
                "code": run_pb2.SpanStatusCode.Value(f"SPAN_STATUS_CODE_{self.status}"),
                "message": self.status_message,
            },
        }
        return document


def otlp_value(value: AttributeValue) -> dict[str, Any]:
    """An attribute value as OTLP/JSON's ``AnyValue``: int64 as a decimal string, and a double that
    JSON cannot spell as proto3 JSON's "NaN", "Infinity" or "-Infinity"."""
    if isinstance(value, bool):  # before int: a bool is an int to Python
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        if math.isnan(value):
            return {"doubleValue": "NaN"}
        if math.isinf(value):
            return {"doubleValue": "Infinity" if value > 0 else "-Infinity"}
        return {"doubleValue": value}
    return {"stringValue": value}


class RunTrace:
    """The spans kept for one run, ordered by start time, with their tree.

    ``dropped_spans``: spans of the run that were not kept (past ``max_spans``, or lost with a
    worker that died); ``note`` says, in words, what was dropped or trimmed and what to do.
    """

    def __init__(self, run_id: str, response: run_pb2.GetRunTraceResponse) -> None:
        self.run_id = run_id
        self.raw = response
        self.trace_id: str = response.trace_id
        self.dropped_spans: int = response.dropped_spans
        self.max_spans: int = response.max_spans
        self.note: str = response.note
        spans = [TraceSpan.of(s) for s in response.spans]
        spans.sort(key=lambda s: (s.start_unix_nano, -s.end_unix_nano))
        self.spans: tuple[TraceSpan, ...] = tuple(spans)
        self._by_id: dict[str, int] = {}
        for index, span in enumerate(self.spans):
            self._by_id.setdefault(span.span_id, index)
        self._children, self._roots, self._parent = self._tree()

    def _tree(self) -> tuple[dict[int, list[int]], list[int], dict[int, int]]:
        children: dict[int, list[int]] = {}
        parent: dict[int, int] = {}
        roots: list[int] = []
        for index, span in enumerate(self.spans):  # in start order: lists come out sorted
            found = self._by_id.get(span.parent_span_id) if span.parent_span_id else None
            if found is None or found == index:
                roots.append(index)
            else:
                children.setdefault(found, []).append(index)
                parent[index] = found
        # What a walk from the roots cannot reach hangs from a parent cycle: following parents from
        # it comes round to a span twice. The cycle's earliest span becomes a root (and stops being
        # its parent's child); again until every span is reachable.
        seen = self._reach(roots, children)
        for index in range(len(self.spans)):
            if index in seen:
                continue
            chain: set[int] = set()
            node = index
            while node not in chain:
                chain.add(node)
                node = parent[node]
            cycle = [node]
            while (node := parent[node]) != cycle[0]:
                cycle.append(node)
            root = min(cycle)
            children[parent.pop(root)].remove(root)
            roots.append(root)
            seen |= self._reach([root], children)
        roots.sort()
        return children, roots, parent

    @staticmethod
    def _reach(starts: Sequence[int], children: Mapping[int, list[int]]) -> set[int]:
        seen: set[int] = set()
        stack = list(starts)
        while stack:
            index = stack.pop()
            if index not in seen:
                seen.add(index)
                stack.extend(children.get(index, ()))
        return seen

    def __repr__(self) -> str:
        return f"RunTrace({self.run_id!r}, {len(self.spans)} spans, dropped={self.dropped_spans})"

    def __len__(self) -> int:
        return len(self.spans)

    def __iter__(self) -> Iterator[TraceSpan]:
        return iter(self.spans)

    @property
    def start_unix_nano(self) -> int | None:
        return min((s.start_unix_nano for s in self.spans), default=None)

    @property
    def end_unix_nano(self) -> int | None:
        return max((s.end_unix_nano for s in self.spans), default=None)

    @property
    def duration(self) -> timedelta | None:
        """From the first span's start to the last one's end; None for a trace without spans."""
        start, end = self.start_unix_nano, self.end_unix_nano
        if start is None or end is None:
            return None
        return timedelta(microseconds=max(0, end - start) / 1000)

    def get(self, span_id: str) -> TraceSpan | None:
        index = self._by_id.get(span_id)
        return None if index is None else self.spans[index]

    def _index(self, span: TraceSpan) -> int:
        index = self._by_id.get(span.span_id)
        if index is None or self.spans[index] != span:
            # A duplicated id (a forged span): find this very one.
            index = next((i for i, s in enumerate(self.spans) if s == span), None)
        if index is None:
            raise ValueError(f"span {span.span_id} ({span.name!r}) is not a span of this trace")
        return index

    def roots(self) -> list[TraceSpan]:
        """The spans without a parent in this trace, by start time: the trace's root, and any span
        whose parent was not kept."""
        return [self.spans[i] for i in self._roots]

    def children(self, span: TraceSpan) -> list[TraceSpan]:
        return [self.spans[i] for i in self._children.get(self._index(span), ())]

    def parent(self, span: TraceSpan) -> TraceSpan | None:
        """The span's parent in this trace; None for a root (including one whose parent is missing)."""
        index = self._parent.get(self._index(span))
        return None if index is None else self.spans[index]

    def walk(self) -> Iterator[tuple[int, TraceSpan]]:
        """Every span once, depth first in tree order, with its depth (0 for a root)."""
        stack = [(0, i) for i in reversed(self._roots)]
        while stack:
            depth, index = stack.pop()
            yield depth, self.spans[index]
            stack.extend((depth + 1, child) for child in reversed(self._children.get(index, ())))

    def errors(self) -> list[TraceSpan]:
        return [s for s in self.spans if s.error]

    def to_otlp_json(self) -> dict[str, Any]:
        """The trace as an OTLP/JSON ``TracesData`` document (``json.dumps`` it): one
        ``resourceSpans`` per service, named by its ``service.name`` resource attribute, in the
        order the services first appear; the spans in start order."""
        by_service: dict[str, list[dict[str, Any]]] = {}
        for span in self.spans:
            by_service.setdefault(span.service or UNKNOWN_SERVICE, []).append(span.to_otlp_json())
        return {
            "resourceSpans": [
                {
                    "resource": {"attributes": [{"key": "service.name", "value": otlp_value(service)}]},
                    "scopeSpans": [{"scope": {"name": OTLP_SCOPE}, "spans": spans}],
                }
                for service, spans in by_service.items()
            ]
        }
