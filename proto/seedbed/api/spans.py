"""OpenTelemetry's finished spans ↔ the contract's ``Span``: one mapping for both ends of the wire.

The worker turns the spans it records into ``Span`` messages (``to_proto``) to send them with an
attempt's events; the coordinator turns its own into the same messages to keep them in the store,
and turns the worker's back (``from_proto``) to export them over OTLP. Both ends use this module so
a kind, a status or an attribute means the same thing on each; it depends on the OpenTelemetry SDK,
which the server side installs (the client never imports it).

Attributes keep their type where the contract has one (str, int64, double, bool); anything else
(sequences, mappings, ints past int64) travels as its JSON text. Names, string values and status
messages are cut at ``max_attribute_length`` characters.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

from seedbed.api.v1 import run_pb2

__all__ = ["FRAME", "QUEUE_WAIT", "from_proto", "to_proto"]

# Names both ends must spell alike. A span of the trace's frame (sandbox, script, steps …) carries
# the boolean attribute FRAME: a run keeps those past its span cap. QUEUE_WAIT is the worker's span
# of an attempt's wait for a Ray slot (the coordinator's metrics read it).
FRAME = "seedbed.frame"
QUEUE_WAIT = "queue wait"

_KINDS = {
    SpanKind.INTERNAL: run_pb2.SPAN_KIND_INTERNAL,
    SpanKind.SERVER: run_pb2.SPAN_KIND_SERVER,
    SpanKind.CLIENT: run_pb2.SPAN_KIND_CLIENT,
    SpanKind.PRODUCER: run_pb2.SPAN_KIND_PRODUCER,
    SpanKind.CONSUMER: run_pb2.SPAN_KIND_CONSUMER,
}
_KINDS_BACK = {value: key for key, value in _KINDS.items()}
_STATUSES = {
    StatusCode.UNSET: run_pb2.SPAN_STATUS_CODE_UNSPECIFIED,
    StatusCode.OK: run_pb2.SPAN_STATUS_CODE_OK,
    StatusCode.ERROR: run_pb2.SPAN_STATUS_CODE_ERROR,
}
_STATUSES_BACK = {value: key for key, value in _STATUSES.items()}
_INT64 = (-(2**63), 2**63 - 1)


def _timestamp(nanoseconds: int | None) -> Timestamp:
    stamp = Timestamp()
    stamp.FromNanoseconds(nanoseconds or 0)
    return stamp


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit]


def _attribute(key: str, value: Any, limit: int) -> run_pb2.SpanAttribute:
    # bool before int: a bool is an int to Python, not to the contract.
    if isinstance(value, bool):
        return run_pb2.SpanAttribute(key=key, bool_value=value)
    if isinstance(value, int) and _INT64[0] <= value <= _INT64[1]:
        return run_pb2.SpanAttribute(key=key, int_value=value)
    if isinstance(value, float):
        return run_pb2.SpanAttribute(key=key, double_value=value)
    if isinstance(value, str):
        return run_pb2.SpanAttribute(key=key, string_value=_cut(value, limit))
    if isinstance(value, bytes):
        return run_pb2.SpanAttribute(key=key, string_value=_cut(value.hex(), limit))
    if isinstance(value, int):  # past int64
        return run_pb2.SpanAttribute(key=key, string_value=str(value))
    value = dict(value) if isinstance(value, Mapping) else list(value)
    text = json.dumps(value, default=str, ensure_ascii=False)
    return run_pb2.SpanAttribute(key=key, string_value=_cut(text, limit))


def to_proto(span: ReadableSpan, service: str, max_attribute_length: int) -> run_pb2.Span:
    """A finished span as the contract's message, recorded by ``service``."""
    ctx = span.context
    assert ctx is not None  # a finished SDK span always has its context
    parent = span.parent
    limit = max_attribute_length
    return run_pb2.Span(
        trace_id=f"{ctx.trace_id:032x}",
        span_id=f"{ctx.span_id:016x}",
        parent_span_id=f"{parent.span_id:016x}" if parent is not None and parent.is_valid else "",
        name=_cut(span.name, limit),
        kind=_KINDS.get(span.kind, run_pb2.SPAN_KIND_INTERNAL),
        start_time=_timestamp(span.start_time),
        end_time=_timestamp(span.end_time),
        attributes=[_attribute(key, value, limit) for key, value in (span.attributes or {}).items()],
        status_code=_STATUSES.get(span.status.status_code, run_pb2.SPAN_STATUS_CODE_UNSPECIFIED),
        status_message=_cut(span.status.description or "", limit),
        dropped_attributes_count=span.dropped_attributes,
        service=service,
    )


def from_proto(span: run_pb2.Span, scope: str) -> ReadableSpan | None:
    """A contract span as a finished SDK span (for an exporter), its resource naming its service;
    None when its ids are unreadable."""
    try:
        trace_id = int(span.trace_id, 16)
        span_id = int(span.span_id, 16)
        parent_id = int(span.parent_span_id, 16) if span.parent_span_id else 0
    except ValueError:
        return None
    if not trace_id or not span_id:
        return None
    flags = TraceFlags(TraceFlags.SAMPLED)
    attributes: dict[str, Any] = {}
    for item in span.attributes:
        kind = item.WhichOneof("value")
        if kind is not None:
            attributes[item.key] = getattr(item, kind)
    return ReadableSpan(
        name=span.name,
        context=SpanContext(trace_id, span_id, is_remote=False, trace_flags=flags),
        parent=SpanContext(trace_id, parent_id, is_remote=False, trace_flags=flags) if parent_id else None,
        resource=Resource({"service.name": span.service}),
        attributes=attributes,
        kind=_KINDS_BACK.get(span.kind, SpanKind.INTERNAL),
        status=Status(_STATUSES_BACK.get(span.status_code, StatusCode.UNSET), span.status_message or None),
        start_time=span.start_time.ToNanoseconds(),
        end_time=span.end_time.ToNanoseconds(),
        instrumentation_scope=InstrumentationScope(scope),
    )
