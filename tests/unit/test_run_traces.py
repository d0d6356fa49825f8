"""One trace per run, the coordinator's side: the RunScenario call, the fire, the run and each attempt
as spans of one trace, the worker's spans kept under the run within the cap, GetRunTrace. A real gRPC
server and store (SQLite and PostgreSQL) with the fake executor; the worker's own spans are tested
against the real sandbox in tests/integration."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from seedbed.api.v1 import run_pb2, run_pb2_grpc, scenario_pb2
from seedbed.client import Client, LogEvent
from seedbed.coordinator import running_in_thread
from seedbed.coordinator.fakes import FakeDispatcher
from seedbed.coordinator.observability.tracing import _fit
from tests.conftest import auth_metadata, eventually, settings_for

RUN_SCENARIO = "/seedbed.api.v1.RunService/RunScenario"


def _trace(coordinator: Any, run_id: str) -> run_pb2.GetRunTraceResponse:
    with grpc.insecure_channel(coordinator.address) as channel:
        stub = run_pb2_grpc.RunServiceStub(channel)
        response: run_pb2.GetRunTraceResponse = stub.GetRunTrace(
            run_pb2.GetRunTraceRequest(run_id=run_id), metadata=auth_metadata()
        )
        return response


def _by_name(trace: run_pb2.GetRunTraceResponse) -> dict[str, run_pb2.Span]:
    return {span.name: span for span in trace.spans}


@pytest.fixture
def capped(store_url: str, tmp_path: Path) -> Iterator[tuple[Any, Client]]:
    settings = settings_for(store_url, tmp_path, max_trace_spans=100)
    with running_in_thread(settings, FakeDispatcher()) as coordinator, Client(coordinator.address) as client:
        yield coordinator, client


def test_a_run_is_one_trace_from_the_call_to_its_attempts(fake_coordinator: tuple[Any, Client]) -> None:
    coordinator, client = fake_coordinator
    client.put_scenario(
        "traced",
        script="attempt<2: lost gone\nprint hi\nspans 3",
        settings=scenario_pb2.ScenarioSettings(
            retry_policy=scenario_pb2.RetryPolicy(maximum_attempts=2, initial_backoff_seconds=0.1)
        ),
    )
    run = client.wait(client.run("traced").run_id)
    assert run.state == run_pb2.RUN_STATE_SUCCESS and run.attempt_count == 2
    assert len(run.trace_id) == 32

    trace = _trace(coordinator, run.id)
    assert trace.trace_id == run.trace_id
    assert all(span.trace_id == run.trace_id for span in trace.spans)
    spans = _by_name(trace)
    call, fire, root = spans[RUN_SCENARIO], spans["fire"], spans["run"]
    assert call.kind == run_pb2.SPAN_KIND_SERVER and not call.parent_span_id
    assert fire.parent_span_id == call.span_id
    assert root.parent_span_id == fire.span_id
    first, second = spans["attempt 1"], spans["attempt 2"]
    # Retries are separate attempt spans of the same run.
    assert first.parent_span_id == second.parent_span_id == root.span_id
    assert first.status_code == run_pb2.SPAN_STATUS_CODE_ERROR
    assert second.status_code != run_pb2.SPAN_STATUS_CODE_ERROR
    attributes = {a.key: a for a in root.attributes}
    assert attributes["seedbed.run.id"].string_value == run.id
    assert attributes["seedbed.run.state"].string_value == "SUCCESS"
    # The worker's spans hang from their attempt's span.
    calls = [span for span in trace.spans if span.name.startswith("call ")]
    assert len(calls) == 3 and {span.parent_span_id for span in calls} == {second.span_id}
    assert {span.service for span in calls} == {"seedbed-worker"}
    assert call.service == fire.service == "seedbed-coordinator"
    starts = [span.start_time.ToNanoseconds() for span in trace.spans]
    assert starts == sorted(starts)
    # The coordinator's own lines about an attempt carry the attempt's span.
    lines = [e.line for e in client.stream_logs(run.id) if isinstance(e, LogEvent)]
    dispatched = [line for line in lines if line.text.endswith(" dispatched")]
    assert [(line.trace_id, line.span_id) for line in dispatched] == [
        (run.trace_id, first.span_id),
        (run.trace_id, second.span_id),
    ]
    assert trace.dropped_spans == 0 and not trace.note


def test_worker_spans_past_the_cap_and_of_other_traces_are_dropped_and_counted(
    capped: tuple[Any, Client],
) -> None:
    coordinator, client = capped
    client.put_scenario("flood", script="spans 80 5\nspans 80\nforeign-span")
    run = client.wait(client.run("flood").run_id)
    # The run itself is unaffected.
    assert run.state == run_pb2.RUN_STATE_SUCCESS

    trace = _trace(coordinator, run.id)
    calls = [span for span in trace.spans if span.name.startswith("call ")]
    assert len(calls) == 100
    assert all(span.trace_id == run.trace_id for span in trace.spans)
    # 60 past the cap, 5 the worker did not record, 1 of another trace.
    assert trace.dropped_spans == 66
    assert trace.max_spans == 100
    assert "SEEDBED_MAX_TRACE_SPANS" in trace.note
    # The frame is kept whatever the cap.
    assert {"fire", "run", "attempt 1", RUN_SCENARIO} <= set(_by_name(trace))


def test_a_queued_fire_s_run_joins_the_fire_s_trace(fake_coordinator: tuple[Any, Client]) -> None:
    coordinator, client = fake_coordinator
    client.put_scenario(
        "queued",
        script="sleep 0.5\nprint done",
        settings=scenario_pb2.ScenarioSettings(overlap_policy=scenario_pb2.OVERLAP_POLICY_QUEUE_ALL),
    )
    first = client.run("queued")
    waiting = client.run("queued")
    assert waiting.state == run_pb2.TRIGGER_FIRE_STATE_PENDING
    client.wait(first.run_id)
    run_id = eventually(lambda: client.get_fire(waiting.id).run_id)
    run = client.wait(run_id)
    trace = _trace(coordinator, run.id)
    spans = _by_name(trace)
    # The call that made the fire ended long before the run existed; it is still in the trace.
    assert spans["fire"].parent_span_id == spans[RUN_SCENARIO].span_id
    assert spans["run"].parent_span_id == spans["fire"].span_id
    assert trace.trace_id != client.get_run(first.run_id).trace_id


def test_huge_values_are_cut_on_the_coordinator_s_spans(store_url: str, tmp_path: Path) -> None:
    settings = settings_for(store_url, tmp_path, max_span_attribute_length=100)
    with running_in_thread(settings, FakeDispatcher()) as coordinator, Client(coordinator.address) as client:
        client.put_scenario("huge", script="fail " + "x" * 200_000)
        run = client.wait(client.run("huge").run_id)
        assert run.state == run_pb2.RUN_STATE_FAILED
        spans = _by_name(_trace(coordinator, run.id))
        for name in ("run", "attempt 1"):
            assert spans[name].status_code == run_pb2.SPAN_STATUS_CODE_ERROR
            assert spans[name].status_message.startswith("RuntimeError: xxx")
            assert len(spans[name].status_message) == 100
            assert all(len(a.string_value) <= 100 for a in spans[name].attributes)


def test_unknown_run_is_not_found(fake_coordinator: tuple[Any, Client]) -> None:
    coordinator, _ = fake_coordinator
    with pytest.raises(grpc.RpcError) as caught:
        _trace(coordinator, "run_nope")
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


def test_tracing_off_records_nothing(store_url: str, tmp_path: Path) -> None:
    settings = settings_for(store_url, tmp_path, tracing=False)
    dispatcher = FakeDispatcher()
    with running_in_thread(settings, dispatcher) as coordinator, Client(coordinator.address) as client:
        client.put_scenario("plain", script="print hi\nspans 3")
        run = client.wait(client.run("plain").run_id)
        assert run.state == run_pb2.RUN_STATE_SUCCESS and run.trace_id == ""
        assert not dispatcher.specs[-1].HasField("trace")
        trace = _trace(coordinator, run.id)
        assert not trace.spans and "tracing was off" in trace.note


def test_a_caller_s_unsampled_traceparent_still_gives_the_run_its_trace(
    fake_coordinator: tuple[Any, Client],
) -> None:
    coordinator, client = fake_coordinator
    client.put_scenario("joined", script="print hi")
    caller_trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    with grpc.insecure_channel(coordinator.address) as channel:
        fire = (
            run_pb2_grpc.RunServiceStub(channel)
            .RunScenario(
                run_pb2.RunScenarioRequest(scenario_id="joined"),
                metadata=(*auth_metadata(), ("traceparent", f"00-{caller_trace}-00f067aa0ba902b7-00")),
            )
            .fire
        )
    run = client.wait(fire.run_id)
    # The run joins the caller's trace, and is recorded although the caller did not sample it.
    assert run.trace_id == caller_trace
    spans = _by_name(_trace(coordinator, run.id))
    assert spans[RUN_SCENARIO].parent_span_id == "00f067aa0ba902b7"
    assert {"fire", "run", "attempt 1"} <= set(spans)


def test_a_retried_call_keeps_no_second_set_of_spans(fake_coordinator: tuple[Any, Client]) -> None:
    coordinator, client = fake_coordinator
    client.put_scenario("retried", script="print hi")
    first = client.run("retried", idempotency_key="same-key")
    again = client.run("retried", idempotency_key="same-key")
    assert again.id == first.id
    run = client.wait(first.run_id)
    names = [span.name for span in _trace(coordinator, run.id).spans]
    assert names.count(RUN_SCENARIO) == 1 and names.count("fire") == 1


def test_an_answer_too_big_trims_the_oldest_attributes_first_then_leaves_out_the_newest() -> None:
    def span(n: int, *, frame: bool = False, service: str = "seedbed-worker") -> bytes:
        message = run_pb2.Span(trace_id="a" * 32, span_id=f"{n + 1:016x}", name=f"span {n}", service=service)
        message.start_time.FromNanoseconds(n)
        message.attributes.add(key="seedbed.table", string_value="t" * 1000)
        if frame:
            message.attributes.add(key="seedbed.frame", bool_value=True)
        return message.SerializeToString()

    kept = [span(0, service="seedbed-coordinator"), span(1, frame=True)] + [span(n) for n in range(2, 12)]
    total = sum(len(data) + 8 for data in kept)
    spans, trimmed, left_out = _fit(kept, total)
    assert (trimmed, left_out) == (0, 0) and len(spans) == 12
    # Room for all but about four spans' attributes: the four oldest lose theirs, in order.
    spans, trimmed, left_out = _fit(kept, total - 4 * 1000)
    assert left_out == 0 and trimmed == 4
    assert [bool(s.attributes) for s in spans] == [False] * 4 + [True] * 8
    assert spans[0].dropped_attributes_count == 1
    # Less room than every span's bare bones: the newest worker spans go, never the frame.
    spans, trimmed, left_out = _fit(kept, 400)
    assert trimmed == 12 and left_out > 0
    assert [s.name for s in spans[:2]] == ["span 0", "span 1"]
    assert [s.name for s in spans] == [f"span {n}" for n in range(len(spans))]
