"""The gRPC API against a real server and store (SQLite and PostgreSQL), with the fake executor."""

from __future__ import annotations

import threading
from typing import Any

import grpc
import pytest

from seedbed.api.v1 import run_pb2, scenario_pb2
from seedbed.client import Client, ClientError, LogEvent, RunEnded
from tests.conftest import eventually


def _texts(client: Client, run_id: str, after: int = 0) -> list[str]:
    return [
        e.line.text
        for e in client.stream_logs(run_id, after=after, follow=True)
        if isinstance(e, LogEvent) and e.line.stream == run_pb2.LOG_STREAM_STDOUT
    ]


def _allow(client: Client, scenario_id: str, script: str) -> None:
    client.put_scenario(
        scenario_id,
        script=script,
        settings=scenario_pb2.ScenarioSettings(overlap_policy=scenario_pb2.OVERLAP_POLICY_ALLOW_CONCURRENT),
    )


def test_run_to_success_with_logs_in_order(fake_coordinator: tuple[Any, Client]) -> None:
    _, client = fake_coordinator
    client.put_scenario("hello", script="print one\nstderr two\nprint three")
    fire = client.run("hello", {"rows": "3"})
    assert fire.state == run_pb2.TRIGGER_FIRE_STATE_RUN_CREATED
    events = list(client.stream_logs(fire.run_id))
    lines = [e.line for e in events if isinstance(e, LogEvent)]
    assert [line.sequence for line in lines] == list(range(1, len(lines) + 1))
    assert [(line.stream, line.text) for line in lines if line.stream != run_pb2.LOG_STREAM_SYSTEM] == [
        (run_pb2.LOG_STREAM_STDOUT, "one"),
        (run_pb2.LOG_STREAM_STDERR, "two"),
        (run_pb2.LOG_STREAM_STDOUT, "three"),
    ]
    end = events[-1]
    assert isinstance(end, RunEnded)
    assert end.end.reason == run_pb2.STREAM_END_REASON_RUN_FINISHED
    run = client.get_run(fire.run_id)
    assert run.state == run_pb2.RUN_STATE_SUCCESS
    assert run.params == {"rows": "3"}
    assert run.start_time.ToDatetime() <= run.end_time.ToDatetime()
    assert client.get_fire(fire.id).run_id == run.id


def test_warning_and_failure_outcomes(fake_coordinator: tuple[Any, Client]) -> None:
    _, client = fake_coordinator
    _allow(client, "warns", "warn careful\nprint done")
    _allow(client, "fails", "print before\nfail boom")
    warned = client.wait(client.run("warns").run_id)
    failed = client.wait(client.run("fails").run_id)
    assert warned.state == run_pb2.RUN_STATE_WARNING and warned.warning_count == 1
    assert failed.state == run_pb2.RUN_STATE_FAILED
    assert failed.first_error.reason == run_pb2.FAILURE_REASON_SCRIPT_ERROR
    assert failed.first_error.message == "boom"


def test_unknown_ids_are_not_found(fake_coordinator: tuple[Any, Client]) -> None:
    _, client = fake_coordinator
    for call in (
        lambda: client.get_run("run_doesnotexist"),
        lambda: client.get_fire("fire_nope"),
        lambda: client.get_scenario("nope"),
        lambda: client.run("nope"),
        lambda: client.abort("run_nope"),
        lambda: client.get_run("x" * 5000),
        lambda: client.get_scenario("../../etc/passwd"),
        lambda: list(client.stream_logs("run_nope")),
        lambda: client.delete_scenario("nope"),
    ):
        with pytest.raises(ClientError) as info:
            call()
        assert info.value.code == grpc.StatusCode.NOT_FOUND, info.value
        assert "not found" in info.value.details


def test_empty_and_oversized_scripts_are_refused(fake_coordinator: tuple[Any, Client]) -> None:
    coordinator, client = fake_coordinator
    with pytest.raises(ClientError) as info:
        client.put_scenario("empty", script="   \n")
    assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "script" in info.value.details and "empty" in info.value.details
    limit = coordinator.settings.max_script_bytes
    with pytest.raises(ClientError) as info:
        client.put_scenario("big", script="#" * (limit + 1))
    assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert str(limit) in info.value.details and "SEEDBED_MAX_SCRIPT_BYTES" in info.value.details
    assert [s.id for s in client.list_scenarios()] == []


def test_bad_params_settings_and_ids(fake_coordinator: tuple[Any, Client]) -> None:
    _, client = fake_coordinator
    client.put_scenario("ok", script="print x")
    cases = [
        lambda: client.run("ok", {"1bad": "x"}),
        lambda: client.run("ok", {"k": "v" * 70_000}),
        lambda: client.run("ok", {f"k{i}": "v" for i in range(101)}),
        lambda: client.run("ok", idempotency_key="k" * 300),
        lambda: client.put_scenario("Bad Id!", script="print x"),
        lambda: client.put_scenario(
            "ok", script="print x", settings=scenario_pb2.ScenarioSettings(timeout_seconds=10**9)
        ),
        lambda: client.put_scenario(
            "ok", script="print x", settings=scenario_pb2.ScenarioSettings(memory_limit_bytes=1)
        ),
    ]
    for call in cases:
        with pytest.raises(ClientError) as info:
            call()
        assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT, info.value
    assert client.list_runs("ok") == []


def test_mixed_case_ids_are_kept_and_matched_exactly(fake_coordinator: tuple[Any, Client]) -> None:
    _, client = fake_coordinator
    created = client.put_scenario("MYSCENARIO", script="print x")
    assert created.id == "scn_MYSCENARIO"
    assert client.get_scenario("MYSCENARIO").id == client.get_scenario("scn_MYSCENARIO").id == created.id
    assert client.wait(client.run("MYSCENARIO").run_id).scenario_id == "scn_MYSCENARIO"
    with pytest.raises(ClientError) as info:
        client.get_scenario("myscenario")
    assert info.value.code == grpc.StatusCode.NOT_FOUND
    for attempt in (False, True):  # the real creation, and its validation
        with pytest.raises(ClientError) as info:
            client.put_scenario("MyScenario", script="print x", expected_revision=0, validate_only=attempt)
        assert "differs only by case" in info.value.details, info.value
        assert "case-insensitive file system" in info.value.details
    with pytest.raises(ClientError) as info:
        client.put_scenario("MYSCENARIO", script="print x", expected_revision=0)
    assert "differs only by case" not in info.value.details
    assert [s.id for s in client.list_scenarios()] == ["scn_MYSCENARIO"]


def test_idempotency_key_same_request_same_fire(fake_coordinator: tuple[Any, Client]) -> None:
    _, client = fake_coordinator
    _allow(client, "idem", "print x")
    first = client.run("idem", {"a": "1"}, idempotency_key="key-1")
    again = client.run("idem", {"a": "1"}, idempotency_key="key-1")
    assert again.id == first.id and again.run_id == first.run_id
    with pytest.raises(ClientError) as info:
        client.run("idem", {"a": "2"}, idempotency_key="key-1")
    assert info.value.code == grpc.StatusCode.ALREADY_EXISTS
    # Keys are unique across projects: the fire holding it is not named (it may be another project's).
    assert "key-1" in info.value.details and "different request" in info.value.details
    assert first.id not in info.value.details
    with pytest.raises(ClientError) as reserved:
        client.run("idem", {"a": "1"}, idempotency_key="trigger:scn_idem:nightly:2026-01-01T02:00:00+00:00")
    assert reserved.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "reserved for trigger fires" in reserved.value.details


def test_concurrent_same_key_makes_one_run(fake_coordinator: tuple[Any, Client]) -> None:
    _, client = fake_coordinator
    _allow(client, "conc", "sleep 0.2")
    results: list[str] = []
    lock = threading.Lock()

    def fire() -> None:
        got = client.run("conc", {"x": "y"}, idempotency_key="same").run_id
        with lock:
            results.append(got)

    threads = [threading.Thread(target=fire) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 20 and len(set(results)) == 1
    assert len(client.list_runs("conc")) == 1


def test_overlap_skip_cancels_fire_with_reason(fake_coordinator: tuple[Any, Client]) -> None:
    _, client = fake_coordinator
    client.put_scenario("slow", script="sleep 2")
    first = client.run("slow")
    second = client.run("slow")
    assert second.state == run_pb2.TRIGGER_FIRE_STATE_CANCELLED
    assert "already running" in second.cancel_reason and first.run_id in second.cancel_reason
    assert second.run_id == ""
    client.abort(first.run_id)


def test_abort_running_and_finished(fake_coordinator: tuple[Any, Client]) -> None:
    _, client = fake_coordinator
    client.put_scenario("long", script="print started\nsleep 30\nprint never")
    run_id = client.run("long").run_id
    eventually(lambda: client.get_run(run_id).state == run_pb2.RUN_STATE_RUNNING)
    response = client.abort(run_id, "enough")
    assert not response.already_finished
    assert response.run.state == run_pb2.RUN_STATE_ABORTED
    assert response.run.first_error.message == "enough"
    assert "never" not in _texts(client, run_id)
    again = client.abort(run_id)
    assert again.already_finished and again.run.state == run_pb2.RUN_STATE_ABORTED


def test_log_follower_resumes_without_gap_or_duplicate(fake_coordinator: tuple[Any, Client]) -> None:
    _, client = fake_coordinator
    script = "\n".join(f"print line {i}\nsleep 0.01" for i in range(60))
    client.put_scenario("many", script=script)
    run_id = client.run("many").run_id
    seen: list[int] = []
    texts: list[str] = []
    after = 0
    # Disconnect after every 7 lines and resume from the last sequence number.
    while True:
        stream = client.stream_logs(run_id, after=after)
        ended = False
        for count, event in enumerate(stream):
            if isinstance(event, RunEnded):
                ended = True
                break
            seen.append(event.line.sequence)
            if event.line.stream == run_pb2.LOG_STREAM_STDOUT:
                texts.append(event.line.text)
            after = event.line.sequence
            if count == 6:
                break
        stream.close()
        if ended:
            break
    assert seen == list(range(1, len(seen) + 1))
    assert texts == [f"line {i}" for i in range(60)]


def test_stream_without_follow_ends_caught_up(fake_coordinator: tuple[Any, Client]) -> None:
    _, client = fake_coordinator
    client.put_scenario("blocked", script="print a\nsleep 30")
    run_id = client.run("blocked").run_id
    eventually(lambda: "a" in _texts_now(client, run_id))
    events = list(client.stream_logs(run_id, follow=False))
    assert isinstance(events[-1], RunEnded)
    assert events[-1].end.reason == run_pb2.STREAM_END_REASON_CAUGHT_UP
    client.abort(run_id)


def _texts_now(client: Client, run_id: str) -> list[str]:
    return [e.line.text for e in client.stream_logs(run_id, follow=False) if isinstance(e, LogEvent)]


def test_scenario_crud_and_paging(fake_coordinator: tuple[Any, Client]) -> None:
    _, client = fake_coordinator
    for i in range(5):
        client.put_scenario(f"s{i}", script=f"print {i}", name=f"Scenario {i}")
    assert [s.id for s in client.list_scenarios()] == [f"scn_s{i}" for i in range(5)]
    updated = client.put_scenario("s1", script="print changed")
    assert updated.revision == 2 and updated.script == "print changed"
    client.delete_scenario("s1")
    with pytest.raises(ClientError):
        client.get_scenario("s1")
    page = client._scenarios.ListScenarios(scenario_pb2.ListScenariosRequest(page_size=2))
    assert len(page.scenarios) == 2 and page.next_page_token
    with pytest.raises(grpc.RpcError) as info:
        client._scenarios.ListScenarios(scenario_pb2.ListScenariosRequest(page_token="garbage"))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_delete_refused_while_running(fake_coordinator: tuple[Any, Client]) -> None:
    _, client = fake_coordinator
    client.put_scenario("busy", script="sleep 30")
    run_id = client.run("busy").run_id
    with pytest.raises(ClientError) as info:
        client.delete_scenario("busy")
    assert info.value.code == grpc.StatusCode.FAILED_PRECONDITION and run_id in info.value.details
    client.abort(run_id)
    client.delete_scenario("busy")


def test_inactive_scenario_refuses_fires_only_when_set_to(fake_coordinator: tuple[Any, Client]) -> None:
    _, client = fake_coordinator
    client.put_scenario("off", script="print x", settings=scenario_pb2.ScenarioSettings(active=False))
    assert client.wait(client.run("off").run_id).state == run_pb2.RUN_STATE_SUCCESS
    strict = scenario_pb2.ScenarioSettings(active=False, refuse_runs_when_inactive=True)
    client.put_scenario("strict", script="print x", settings=strict)
    assert client.get_scenario("strict").settings.refuse_runs_when_inactive
    with pytest.raises(ClientError) as info:
        client.run("strict")
    assert info.value.code == grpc.StatusCode.FAILED_PRECONDITION and "inactive" in info.value.details


def test_restart_loses_no_accepted_run(store_url: str, tmp_path: Any) -> None:
    """A run active when the coordinator stops is driven again by the next one on the same store."""
    from seedbed.coordinator import running_in_thread
    from seedbed.coordinator.fakes import FakeDispatcher
    from tests.conftest import settings_for

    settings = settings_for(store_url, tmp_path)
    with running_in_thread(settings, FakeDispatcher()) as first, Client(first.address) as client:
        client.put_scenario("survivor", script="print attempt\nsleep 1\nprint done")
        run_id = client.run("survivor").run_id
        eventually(lambda: "attempt" in _texts_now(client, run_id))
    with running_in_thread(settings, FakeDispatcher()) as second, Client(second.address) as client:
        run = client.wait(run_id)
        assert run.state == run_pb2.RUN_STATE_SUCCESS
        assert run.attempt_count == 2
        lines = [e.line for e in client.stream_logs(run_id) if isinstance(e, LogEvent)]
    assert [line.sequence for line in lines] == list(range(1, len(lines) + 1))
    assert [(line.attempt, line.text) for line in lines if line.stream == run_pb2.LOG_STREAM_STDOUT] == [
        (1, "attempt"),
        (2, "attempt"),
        (2, "done"),
    ]


def test_health_and_reflection_are_served(fake_coordinator: tuple[Any, Client]) -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    coordinator, _ = fake_coordinator
    with grpc.insecure_channel(coordinator.address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", "seedbed.api.v1.RunService", "seedbed.api.v1.ScenarioService"):
            status = health.Check(health_pb2.HealthCheckRequest(service=service)).status
            assert status == health_pb2.HealthCheckResponse.SERVING
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        responses = stub.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")])
        )
        names = {s.name for r in responses for s in r.list_services_response.service}
    assert {"seedbed.api.v1.RunService", "seedbed.api.v1.ScenarioService", "grpc.health.v1.Health"} <= names
