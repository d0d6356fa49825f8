"""A real OTLP/gRPC trace receiver on loopback, built on opentelemetry-proto's service definitions,
that keeps what it is sent, or answers every export with an error status on cue.

    with OtlpReceiver() as receiver:                 # receiver.endpoint: "http://127.0.0.1:PORT"
        ...                                          # point OTEL_EXPORTER_OTLP_ENDPOINT at it
        receiver.spans()                             # every span received, flattened

``OtlpReceiver(failing=grpc.StatusCode.UNAVAILABLE)`` refuses every export (and counts them).
"""

from __future__ import annotations

import threading
from concurrent import futures
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc


@dataclass(frozen=True)
class ReceivedSpan:
    service: str
    trace_id: str
    span_id: str
    parent_span_id: str
    name: str
    kind: int
    attributes: dict[str, Any]


class _Service(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, receiver: OtlpReceiver) -> None:
        self._receiver = receiver

    def Export(  # noqa: N802 - the generated service's name
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: grpc.ServicerContext
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        with self._receiver._lock:
            self._receiver.exports += 1
            if self._receiver.failing is None:
                self._receiver.requests.append(request)
        if self._receiver.failing is not None:
            context.abort(self._receiver.failing, "the test collector refuses every export")
        return trace_service_pb2.ExportTraceServiceResponse()


class OtlpReceiver:
    def __init__(self, failing: grpc.StatusCode | None = None) -> None:
        self.failing = failing
        self.requests: list[trace_service_pb2.ExportTraceServiceRequest] = []
        self.exports = 0
        self._lock = threading.Lock()
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(_Service(self), self._server)
        self.port = self._server.add_insecure_port("127.0.0.1:0")

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Self:
        self._server.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.stop(grace=None)

    def spans(self) -> list[ReceivedSpan]:
        with self._lock:
            requests = list(self.requests)
        out = []
        for request in requests:
            for resource_spans in request.resource_spans:
                service = next(
                    (
                        a.value.string_value
                        for a in resource_spans.resource.attributes
                        if a.key == "service.name"
                    ),
                    "",
                )
                for scope_spans in resource_spans.scope_spans:
                    for span in scope_spans.spans:
                        out.append(
                            ReceivedSpan(
                                service=service,
                                trace_id=span.trace_id.hex(),
                                span_id=span.span_id.hex(),
                                parent_span_id=span.parent_span_id.hex(),
                                name=span.name,
                                kind=span.kind,
                                attributes={
                                    a.key: getattr(a.value, a.value.WhichOneof("value") or "string_value")
                                    for a in span.attributes
                                },
                            )
                        )
        return out
