"""Finding 8: output floods. A script's output is capped in lines as well as bytes, and a script that
writes as fast as it can for its whole deadline ends on time, leaves the Docker engine responsive
and leaves no container behind."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from seedbed.api.v1 import run_pb2, scenario_pb2
from seedbed.client import Client, LogEvent
from seedbed.coordinator import running_in_thread
from tests.conftest import eventually, settings_for
from tests.integration.conftest import containers_of

pytestmark = pytest.mark.integration


@pytest.fixture
def small_cap_coordinator(ray_session: None, tmp_path: Path) -> Iterator[Client]:
    settings = settings_for(f"sqlite+aiosqlite:///{tmp_path / 'seedbed.db'}", tmp_path, max_log_lines=1000)
    with running_in_thread(settings) as coord, Client(coord.address) as client:
        yield client


def _submit(client: Client, script: str, timeout_seconds: int = 0) -> str:
    client.put_scenario(
        "flood",
        script=script,
        settings=scenario_pb2.ScenarioSettings(
            overlap_policy=scenario_pb2.OVERLAP_POLICY_ALLOW_CONCURRENT, timeout_seconds=timeout_seconds
        ),
    )
    return client.run("flood").run_id


def test_empty_lines_count_against_a_line_cap(small_cap_coordinator: Client) -> None:
    client = small_cap_coordinator
    run = client.wait(_submit(client, "import sys\nsys.stdout.write('\\n' * 50_000)\nprint('end')\n"))
    lines = [e.line for e in client.stream_logs(run.id, follow=False) if isinstance(e, LogEvent)]
    assert run.state == run_pb2.RUN_STATE_SUCCESS, run.first_error
    assert run.logs_truncated and run.dropped_log_lines >= 49_000
    script_lines = [line for line in lines if line.stream != run_pb2.LOG_STREAM_SYSTEM]
    assert len(script_lines) == 1000
    assert any("1000 lines" in line.text for line in lines), [line.text for line in lines[-5:]]


# Straight into the container's stdout (the channel), past the runtime's framing, as hostile code
# can: as many bytes as the pipe takes.
FLOOD = """
import gc, os
from seedbed.sdk._channel import Channel
fd = next(o for o in gc.get_objects() if isinstance(o, Channel))._out_fd
chunk = (b"x" * 200 + b"\\n") * 500
while True:
    os.write(fd, chunk)
"""


def test_a_stderr_flood_ends_at_its_deadline_with_the_engine_responsive(
    coordinator: tuple[Any, Client], docker_client: docker.DockerClient
) -> None:
    _, client = coordinator
    slowest = [0.0]
    stop = threading.Event()

    def probe() -> None:
        probe_client = docker.from_env(timeout=60)
        try:
            while not stop.is_set():
                started = time.monotonic()
                probe_client.containers.list(filters={"label": "seedbed.managed=1"}, ignore_removed=True)
                slowest[0] = max(slowest[0], time.monotonic() - started)
                stop.wait(0.5)
        finally:
            probe_client.close()

    prober = threading.Thread(target=probe, daemon=True)
    prober.start()
    started = time.monotonic()
    run_id = _submit(client, FLOOD, timeout_seconds=15)
    try:
        run = client.wait(run_id)
    finally:
        stop.set()
        prober.join(70)
    took = time.monotonic() - started
    assert run.state == run_pb2.RUN_STATE_FAILED, run
    assert run.first_error.reason in (run_pb2.FAILURE_REASON_TIMEOUT, run_pb2.FAILURE_REASON_SCRIPT_ERROR), (
        run
    )
    if run.first_error.reason == run_pb2.FAILURE_REASON_SCRIPT_ERROR:
        assert "output" in run.first_error.message, run.first_error
    assert len(run.attempts) == 1
    # Dispatch and the image check take a few seconds; the flood itself may not stretch the run.
    assert took < 15 + 20, took
    assert slowest[0] < 5, f"the Docker engine took {slowest[0]:.1f} s to list containers during the flood"
    eventually(lambda: containers_of(docker_client, run_id) == [], timeout=10)
