"""Runs' traces exported over OTLP/gRPC when the standard OTEL_* variables name a collector: a real
receiver on loopback gets the whole tree with its parents; a collector that is down or answers
errors neither fails nor holds up a run. A real gRPC coordinator and store, the fake executor (the
worker's real spans reach the collector in tests/integration/test_trace_export.py)."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from seedbed.api.v1 import run_pb2
from seedbed.client import Client
from seedbed.coordinator import running_in_thread
from seedbed.coordinator.fakes import FakeDispatcher
from tests.conftest import eventually, settings_for
from tests.faults.otlp import OtlpReceiver
from tests.unit.test_run_traces import _trace

RUN_SCENARIO = "/seedbed.api.v1.RunService/RunScenario"


@pytest.fixture
def otel_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    # Export batches every 100 ms instead of 5 s; a down collector gives up within 2 s.
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "100")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "2")
    return monkeypatch


@contextlib.contextmanager
def _coordinator(tmp_path: Path) -> Iterator[tuple[Any, Client]]:
    """A coordinator started after the test set its OTEL_* variables (read once, at start)."""
    settings = settings_for(f"sqlite+aiosqlite:///{tmp_path / 's.db'}", tmp_path)
    with running_in_thread(settings, FakeDispatcher()) as coordinator, Client(coordinator.address) as client:
        yield coordinator, client


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_the_whole_tree_reaches_the_collector(otel_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with OtlpReceiver() as receiver:
        otel_env.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
        settings = settings_for(f"sqlite+aiosqlite:///{tmp_path / 's.db'}", tmp_path)
        with (
            running_in_thread(settings, FakeDispatcher()) as coordinator,
            Client(coordinator.address) as client,
        ):
            client.put_scenario("exported", script="print hi\nspans 3")
            run = client.wait(client.run("exported").run_id)
            assert run.state == run_pb2.RUN_STATE_SUCCESS

            def arrived() -> dict[str, object]:
                names = {s.name: s for s in receiver.spans() if s.trace_id == run.trace_id}
                assert {RUN_SCENARIO, "fire", "run", "attempt 1", "call 0", "call 1", "call 2"} <= set(names)
                return names

            spans = eventually(arrived, timeout=20)
        received = [s for s in receiver.spans() if s.trace_id == run.trace_id]
        ids = {s.span_id for s in received}
        roots = [s for s in received if s.parent_span_id not in ids]
        assert [s.name for s in roots] == [RUN_SCENARIO] and not roots[0].parent_span_id
        assert spans["run"].parent_span_id == spans["fire"].span_id  # type: ignore[attr-defined]
        assert {s.service for s in received} == {"seedbed-coordinator", "seedbed-worker"}
        assert spans["run"].attributes["seedbed.run.id"] == run.id  # type: ignore[attr-defined]
        # Each span once, however many batches carried them.
        assert len(ids) == len(received)


@pytest.mark.parametrize("collector", ["down", "refusing"])
def test_a_collector_that_is_down_or_refuses_never_fails_a_run(
    collector: str, otel_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with OtlpReceiver(failing=grpc.StatusCode.INVALID_ARGUMENT) as refusing:
        endpoint = refusing.endpoint if collector == "refusing" else f"http://127.0.0.1:{_closed_port()}"
        otel_env.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
        settings = settings_for(f"sqlite+aiosqlite:///{tmp_path / 's.db'}", tmp_path)
        with (
            running_in_thread(settings, FakeDispatcher()) as coordinator,
            Client(coordinator.address) as client,
        ):
            client.put_scenario("unexported", script="print hi\nspans 2\nprint bye")
            runs = [client.wait(client.run("unexported", idempotency_key=f"k{i}").run_id) for i in range(3)]
            assert [r.state for r in runs] == [run_pb2.RUN_STATE_SUCCESS] * 3
            if collector == "refusing":
                eventually(lambda: refusing.exports > 0, timeout=20)
            # The trace is still kept with the run.
            kept = {s.name for s in _trace(coordinator, runs[-1].id).spans}
            assert {"fire", "run", "attempt 1", "call 0", "call 1"} <= kept
        assert not refusing.spans()
