"""The coordinator's metrics on their own: registries apart, the store's gauges (and a scrape that
finds them stale), the attempt clock and its split, the API-call interceptor against a real
grpc.aio server on loopback, and the endpoint's HTTP answer and its port-in-use error."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import grpc
import httpx
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from seedbed.api.v1 import attempt_pb2, run_pb2
from seedbed.coordinator.faces.grpc.interceptors import api_call_interceptor
from seedbed.coordinator.model import OverlapPolicy, RunState
from seedbed.coordinator.observability.metrics import (
    CoordinatorMetrics,
    MetricsEndpoint,
    MetricsEndpointError,
)
from seedbed.coordinator.store import ScenarioSettingsValue, Store
from tests.conftest import eventually


def value(metrics: CoordinatorMetrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def stamp(at: datetime) -> Timestamp:
    out = Timestamp()
    out.FromDatetime(at)
    return out


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'seedbed.db'}")
    yield opened
    await opened.aclose()


async def queue_two(store: Store, scenario: str = "scn_metrics") -> None:
    """One QUEUED run and, behind it, one PENDING fire (QUEUE_ALL)."""
    settings = ScenarioSettingsValue(overlap_policy=OverlapPolicy.QUEUE_ALL)
    await store.create_scenario(scenario, "metrics", "print hi", settings)
    await store.fires.fire(scenario, {}, f"{scenario}-1")
    await store.fires.fire(scenario, {}, f"{scenario}-2")


def test_every_metrics_object_has_a_registry_of_its_own() -> None:
    first, second = CoordinatorMetrics(), CoordinatorMetrics()
    first.lines_dropped(3)
    assert value(first, "seedbed_log_lines_dropped_total") == 3
    assert value(second, "seedbed_log_lines_dropped_total") == 0


async def test_the_store_gauges_count_runs_by_state_and_the_fires_behind_them(store: Store) -> None:
    metrics = CoordinatorMetrics(store)
    # Not read yet: no sample rather than a false zero.
    assert value(metrics, "seedbed_runs_queued") is None
    await queue_two(store)
    await metrics.refresh()
    assert value(metrics, "seedbed_runs", state="QUEUED") == 1
    for state in set(RunState) - {RunState.QUEUED}:
        assert value(metrics, "seedbed_runs", state=state.value) == 0
    assert value(metrics, "seedbed_runs_queued") == 2  # the run and the fire waiting behind it
    assert value(metrics, "seedbed_runs_active") == 0


async def test_a_scrape_reads_the_store_again_when_its_counts_are_stale(store: Store) -> None:
    metrics = CoordinatorMetrics(store, refresh_seconds=3600)  # only the first pass, at start
    metrics.start()
    endpoint = MetricsEndpoint("127.0.0.1:0", metrics.registry)
    endpoint.start()
    try:
        await metrics.refresh()
        assert value(metrics, "seedbed_runs_queued") == 0
        await queue_two(store)

        def scraped_queued() -> bool:
            body = httpx.get(f"http://{endpoint.address}/metrics", timeout=5).text
            return "seedbed_runs_queued 2.0" in body

        # The scrape runs on the endpoint's thread and asks this loop for the counts: poll from a
        # thread so the loop stays free to answer.
        assert await asyncio.to_thread(eventually, scraped_queued)
    finally:
        await endpoint.aclose()
        await metrics.aclose()


def test_runs_finished_by_outcome_batches_rows_deliveries() -> None:
    metrics = CoordinatorMetrics()
    for outcome in ("SUCCESS", "WARNING", "FAILED", "ABORTED"):
        assert value(metrics, "seedbed_runs_finished_total", outcome=outcome) == 0  # present from the start
    run: Any = SimpleNamespace(state=RunState.FAILED)  # all a listener reads of the run
    asyncio.run(metrics.run_finished(run))
    assert value(metrics, "seedbed_runs_finished_total", outcome="FAILED") == 1

    applied = run_pb2.WriteBatch(connection_id="pg", rows=500, status=run_pb2.WRITE_BATCH_STATUS_APPLIED)
    replayed = run_pb2.WriteBatch(connection_id="pg", rows=200, status=run_pb2.WRITE_BATCH_STATUS_REPLAYED)
    for batch in (applied, applied, replayed):
        metrics.batch_written(batch)
    assert value(metrics, "seedbed_write_batches_total", connection="pg", ledger="written") == 2
    assert value(metrics, "seedbed_write_rows_total", connection="pg", ledger="written") == 1000
    assert value(metrics, "seedbed_write_batches_total", connection="pg", ledger="skipped") == 1
    assert value(metrics, "seedbed_write_rows_total", connection="pg", ledger="skipped") == 200

    metrics.lines_dropped(0)
    metrics.lines_dropped(7)
    assert value(metrics, "seedbed_log_lines_dropped_total") == 7
    metrics.report_delivered("webhook", "RUN_FINISHED", "DELIVERED")
    labels = {"kind": "webhook", "event": "RUN_FINISHED", "status": "DELIVERED"}
    assert value(metrics, "seedbed_reporter_deliveries_total", **labels) == 1


def test_the_attempt_clock_splits_its_start_with_the_workers_queue_wait_span() -> None:
    metrics = CoordinatorMetrics()
    timer = metrics.attempt_dispatched()
    began = datetime.now(UTC)
    # The worker's spans may come before or after its started event: either order splits once.
    timer.spans([run_pb2.Span(name="image check"), run_pb2.Span(name="queue wait", end_time=stamp(began))])
    timer.started(attempt_pb2.AttemptStarted(time=stamp(began + timedelta(seconds=2))))
    timer.started(attempt_pb2.AttemptStarted(time=stamp(began)))  # once per attempt
    timer.ended("SUCCEEDED")
    timer.ended("INFRASTRUCTURE")  # once per attempt
    start_sum = value(metrics, "seedbed_attempt_start_seconds_sum")
    assert value(metrics, "seedbed_attempt_start_seconds_count") == 1
    assert value(metrics, "seedbed_sandbox_start_seconds_count") == 1
    assert value(metrics, "seedbed_attempt_queue_wait_seconds_count") == 1
    # Both parts lie within what the coordinator saw on its own clock, and add up to it.
    queue = value(metrics, "seedbed_attempt_queue_wait_seconds_sum")
    sandbox = value(metrics, "seedbed_sandbox_start_seconds_sum")
    assert queue is not None and sandbox is not None and start_sum is not None
    assert queue >= 0 and sandbox >= 0
    assert queue + sandbox == pytest.approx(start_sum)
    assert value(metrics, "seedbed_attempt_duration_seconds_count", outcome="SUCCEEDED") == 1
    assert value(metrics, "seedbed_attempt_duration_seconds_count", outcome="INFRASTRUCTURE") is None


def test_without_the_workers_spans_only_the_whole_start_is_recorded() -> None:
    metrics = CoordinatorMetrics()
    timer = metrics.attempt_dispatched()
    timer.started(attempt_pb2.AttemptStarted(time=stamp(datetime.now(UTC))))
    timer.ended("ABORTED")
    assert value(metrics, "seedbed_attempt_start_seconds_count") == 1
    assert value(metrics, "seedbed_sandbox_start_seconds_count") == 0
    assert value(metrics, "seedbed_attempt_queue_wait_seconds_count") == 0
    assert value(metrics, "seedbed_attempt_duration_seconds_count", outcome="ABORTED") == 1


# -- the interceptor ----------------------------------------------------------------------------------


async def _ok(request: bytes, _context: grpc.aio.ServicerContext) -> bytes:
    return b"ok:" + request


async def _not_found(_request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    await context.abort(grpc.StatusCode.NOT_FOUND, "no such thing")
    return b""


async def _set_code(_request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    context.set_code(grpc.StatusCode.FAILED_PRECONDITION)
    context.set_details("not now")
    return b""


async def _crash(_request: bytes, _context: grpc.aio.ServicerContext) -> bytes:
    raise ValueError("a bug")


async def _count_up(request: bytes, _context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
    for number in range(3):
        yield bytes([number])


async def _stream_then_deny(_request: bytes, context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
    yield b"one"
    await context.abort(grpc.StatusCode.PERMISSION_DENIED, "no more")


async def _forever(_request: bytes, _context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
    yield b"first"
    await asyncio.Event().wait()
    yield b"never"


async def _echo(requests: AsyncIterator[bytes], _context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
    async for request in requests:
        yield request


async def _slow(_request: bytes, _context: grpc.aio.ServicerContext) -> bytes:
    await asyncio.Event().wait()
    return b""


@pytest.fixture
async def served() -> AsyncIterator[tuple[CoordinatorMetrics, grpc.aio.Channel]]:
    """A real grpc.aio server on loopback with a tiny servicer (raw bytes), counted; a channel to it."""
    metrics = CoordinatorMetrics()
    server = grpc.aio.server(interceptors=[api_call_interceptor(metrics)])
    handlers = {
        "Ok": grpc.unary_unary_rpc_method_handler(_ok),
        "NotFound": grpc.unary_unary_rpc_method_handler(_not_found),
        "SetCode": grpc.unary_unary_rpc_method_handler(_set_code),
        "Crash": grpc.unary_unary_rpc_method_handler(_crash),
        "Slow": grpc.unary_unary_rpc_method_handler(_slow),
        "CountUp": grpc.unary_stream_rpc_method_handler(_count_up),
        "StreamThenDeny": grpc.unary_stream_rpc_method_handler(_stream_then_deny),
        "Forever": grpc.unary_stream_rpc_method_handler(_forever),
        "Echo": grpc.stream_stream_rpc_method_handler(_echo),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("test.Tiny", handlers),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield metrics, channel
    await server.stop(None)


async def _code(call: Any) -> grpc.StatusCode:
    try:
        await call
    except grpc.aio.AioRpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


async def test_the_interceptor_counts_unary_calls_by_method_and_code(
    served: tuple[CoordinatorMetrics, grpc.aio.Channel],
) -> None:
    metrics, channel = served
    assert await channel.unary_unary("/test.Tiny/Ok")(b"x") == b"ok:x"
    assert await _code(channel.unary_unary("/test.Tiny/NotFound")(b"x")) == grpc.StatusCode.NOT_FOUND
    assert await _code(channel.unary_unary("/test.Tiny/SetCode")(b"x")) == grpc.StatusCode.FAILED_PRECONDITION
    assert await _code(channel.unary_unary("/test.Tiny/Crash")(b"x")) == grpc.StatusCode.UNKNOWN
    slow = channel.unary_unary("/test.Tiny/Slow")(b"x", timeout=0.2)
    assert await _code(slow) == grpc.StatusCode.DEADLINE_EXCEEDED
    for name in ("Nope", "Other"):  # methods no service has: one bounded label
        assert await _code(channel.unary_unary(f"/test.Tiny/{name}")(b"x")) == grpc.StatusCode.UNIMPLEMENTED

    def counted() -> bool:
        calls = {
            ("Ok", "OK"): 1,
            ("NotFound", "NOT_FOUND"): 1,
            ("SetCode", "FAILED_PRECONDITION"): 1,
            ("Crash", "UNKNOWN"): 1,
            ("Slow", "DEADLINE_EXCEEDED"): 1,
            ("unknown", "UNIMPLEMENTED"): 2,
        }
        for (method, code), expected in calls.items():
            assert value(metrics, "seedbed_api_calls_total", method=method, code=code) == expected
        return True

    # The server counts after its answer has left: the client may see it first.
    await _eventually(counted)


async def test_the_interceptor_sees_streaming_calls_aborted_and_cancelled(
    served: tuple[CoordinatorMetrics, grpc.aio.Channel],
) -> None:
    metrics, channel = served
    assert [item async for item in channel.unary_stream("/test.Tiny/CountUp")(b"x")] == [b"\0", b"\1", b"\2"]
    denied = channel.unary_stream("/test.Tiny/StreamThenDeny")(b"x")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        _ = [item async for item in denied]
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED

    async def two() -> AsyncIterator[bytes]:
        yield b"a"
        yield b"b"

    assert [item async for item in channel.stream_stream("/test.Tiny/Echo")(two())] == [b"a", b"b"]
    forever = channel.unary_stream("/test.Tiny/Forever")(b"x")
    assert await forever.read() == b"first"
    forever.cancel()

    def counted() -> bool:
        for method, code in (
            ("CountUp", "OK"),
            ("StreamThenDeny", "PERMISSION_DENIED"),
            ("Echo", "OK"),
            ("Forever", "CANCELLED"),
        ):
            assert value(metrics, "seedbed_api_calls_total", method=method, code=code) == 1
        return True

    await _eventually(counted)


async def _eventually(check: Any) -> None:
    """`eventually` for a check that needs this loop to make progress."""
    for _ in range(600):
        try:
            if check():
                return
        except AssertionError:
            pass
        await asyncio.sleep(0.05)
    check()


# -- the endpoint -------------------------------------------------------------------------------------


@pytest.fixture
def endpoint() -> Iterator[tuple[CoordinatorMetrics, MetricsEndpoint]]:
    metrics = CoordinatorMetrics()
    served = MetricsEndpoint("127.0.0.1:0", metrics.registry)
    served.start()
    yield metrics, served
    asyncio.run(served.aclose())


def test_the_endpoint_answers_get_metrics_in_the_exposition_format(
    endpoint: tuple[CoordinatorMetrics, MetricsEndpoint],
) -> None:
    metrics, served = endpoint
    host, _, port = served.address.rpartition(":")
    assert host == "127.0.0.1" and int(port) > 0  # port 0 asked: the one bound is told
    metrics.lines_dropped(4)
    answer = httpx.get(f"http://{served.address}/metrics", timeout=5)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    assert "# TYPE seedbed_log_lines_dropped_total counter" in answer.text
    assert "seedbed_log_lines_dropped_total 4.0" in answer.text
    assert "# TYPE seedbed_attempt_duration_seconds histogram" in answer.text
    assert 'seedbed_runs_finished_total{outcome="SUCCESS"} 0.0' in answer.text


def test_a_port_in_use_is_a_startup_error_naming_the_setting() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        with pytest.raises(MetricsEndpointError) as caught:
            MetricsEndpoint(address, CoordinatorMetrics().registry).start()
    assert caught.value.setting == "SEEDBED_METRICS_LISTEN"
    assert str(caught.value).startswith("SEEDBED_METRICS_LISTEN: cannot serve metrics on " + address)
    assert "in use" in str(caught.value)
