"""Scenarios end to end: gRPC coordinator → Ray worker → Docker sandbox, logs streamed back.

Each test runs against both stores (SQLite and PostgreSQL), a real local Ray and the real engine.
"""

from __future__ import annotations

import contextlib
import os
import time
from datetime import timedelta
from typing import Any

import grpc
import pytest

from seedbed.api.v1 import run_pb2, scenario_pb2
from seedbed.client import Client, LogEvent, RunEnded
from tests.conftest import eventually
from tests.integration.conftest import containers_of

pytestmark = pytest.mark.integration


def _run(
    client: Client, scenario: str, script: str, params: dict[str, str] | None = None, **settings: Any
) -> str:
    client.put_scenario(
        scenario,
        script=script,
        settings=scenario_pb2.ScenarioSettings(
            overlap_policy=scenario_pb2.OVERLAP_POLICY_ALLOW_CONCURRENT, **settings
        ),
    )
    return client.run(scenario, params or {}).run_id


def _stdout(client: Client, run_id: str) -> list[str]:
    return [
        e.line.text
        for e in client.stream_logs(run_id, follow=False)
        if isinstance(e, LogEvent) and e.line.stream == run_pb2.LOG_STREAM_STDOUT
    ]


def _duration(run: run_pb2.Run) -> timedelta:
    return run.end_time.ToDatetime() - run.start_time.ToDatetime()


def test_scenario_runs_with_params_and_live_logs(coordinator: tuple[Any, Client], docker_client: Any) -> None:
    _, client = coordinator
    script = (
        "import time\n"
        "from seedbed.sdk import log, params, run_id\n"
        "print('hello', params['who'])\n"
        "log.info('halfway', step=1)\n"
        "time.sleep(1.5)\n"
        "print('bye from', run_id)\n"
    )
    run_id = _run(client, "live", script, {"who": "world"})
    seen_running = False
    lines: list[run_pb2.LogLine] = []
    for event in client.stream_logs(run_id):
        if isinstance(event, LogEvent):
            lines.append(event.line)
            if event.line.text == "hello world":
                # The first line arrives while the script is still running: logs are live.
                seen_running = client.get_run(run_id).state == run_pb2.RUN_STATE_RUNNING
        else:
            assert isinstance(event, RunEnded)
            assert event.run.state == run_pb2.RUN_STATE_SUCCESS
    assert seen_running
    assert [line.sequence for line in lines] == list(range(1, len(lines) + 1))
    stdout = [line.text for line in lines if line.stream == run_pb2.LOG_STREAM_STDOUT]
    assert stdout == ["hello world", f"bye from {run_id}"]
    sdk = [line for line in lines if line.level == "info" and line.text.startswith("halfway")]
    assert [line.text for line in sdk] == ["halfway step=1"]
    run = client.get_run(run_id)
    assert run.attempt_count == 1 and run.exit_code == 0
    assert containers_of(docker_client, run_id) == []


def test_syntax_error_fails_with_line(coordinator: tuple[Any, Client]) -> None:
    _, client = coordinator
    run = client.wait(_run(client, "syntax", "x = 1\ny = 2\nif x ==:\n    pass\n"))
    assert run.state == run_pb2.RUN_STATE_FAILED
    assert run.first_error.reason == run_pb2.FAILURE_REASON_SCRIPT_ERROR
    assert run.first_error.type == "SyntaxError"
    assert run.first_error.line == 3


def test_exception_reports_type_message_and_traceback(coordinator: tuple[Any, Client]) -> None:
    _, client = coordinator
    script = "def f(n):\n    return 10 / n\n\nprint('before')\nf(0)\n"
    run_id = _run(client, "raises", script)
    run = client.wait(run_id)
    assert run.state == run_pb2.RUN_STATE_FAILED
    err = run.first_error
    assert (err.type, err.line) == ("ZeroDivisionError", 2)
    assert "division by zero" in err.message
    assert "scenario.py" in err.traceback and "seedbed" not in err.traceback.replace("scenario.py", "")
    assert _stdout(client, run_id) == ["before"]


def test_infinite_loop_times_out_at_the_deadline(coordinator: tuple[Any, Client], docker_client: Any) -> None:
    _, client = coordinator
    run_id = _run(client, "loop", "while True:\n    pass\n", timeout_seconds=3)
    run = client.wait(run_id)
    assert run.state == run_pb2.RUN_STATE_FAILED
    assert run.first_error.reason == run_pb2.FAILURE_REASON_TIMEOUT
    assert "3" in run.first_error.message
    assert timedelta(seconds=2.5) <= _duration(run) <= timedelta(seconds=12)
    assert containers_of(docker_client, run_id) == []


def test_memory_bomb_is_oom(coordinator: tuple[Any, Client]) -> None:
    _, client = coordinator
    script = "blocks = []\nwhile True:\n    blocks.append(bytearray(8 * 2**20))\n"
    run = client.wait(_run(client, "membomb", script, memory_limit_bytes=64 * 2**20, timeout_seconds=60))
    assert run.state == run_pb2.RUN_STATE_FAILED
    assert run.first_error.reason == run_pb2.FAILURE_REASON_OOM, run.first_error


def _host_processes() -> int:
    return sum(1 for p in os.listdir("/proc") if p.isdigit())


def test_fork_bomb_is_contained(coordinator: tuple[Any, Client], docker_client: Any) -> None:
    _, client = coordinator
    before = _host_processes()
    script = (
        "import os, time\n"
        "while True:\n"
        "    try:\n"
        "        if os.fork() == 0:\n"
        "            time.sleep(60)\n"
        "    except OSError:\n"
        "        time.sleep(0.01)\n"
    )
    run_id = _run(client, "forkbomb", script, timeout_seconds=5)
    run = client.wait(run_id)
    assert run.state == run_pb2.RUN_STATE_FAILED
    assert run.first_error.reason in (run_pb2.FAILURE_REASON_TIMEOUT, run_pb2.FAILURE_REASON_SCRIPT_ERROR)
    assert containers_of(docker_client, run_id) == []
    eventually(lambda: _host_processes() <= before + 20, timeout=30)


def test_output_flood_is_capped_and_marked(coordinator: tuple[Any, Client]) -> None:
    coord, client = coordinator
    cap = coord.settings.max_log_bytes
    script = f"line = 'x' * 1000\nfor i in range({cap // 1000 * 3}):\n    print(i, line)\nprint('end')\n"
    start = time.monotonic()
    run_id = _run(client, "flood", script, timeout_seconds=120)
    run = client.wait(run_id)
    assert run.state == run_pb2.RUN_STATE_SUCCESS
    assert run.logs_truncated and run.dropped_log_lines > 0
    stored = sum(len(t) for t in _stdout(client, run_id))
    assert stored <= cap
    assert time.monotonic() - start < 120


def test_abort_mid_run_removes_the_container(coordinator: tuple[Any, Client], docker_client: Any) -> None:
    _, client = coordinator
    run_id = _run(client, "abortme", "import time\nprint('started', flush=True)\ntime.sleep(300)\n")
    eventually(lambda: "started" in _stdout(client, run_id), timeout=60)
    assert containers_of(docker_client, run_id)
    response = client.abort(run_id, "stop please")
    assert not response.already_finished
    assert response.run.state == run_pb2.RUN_STATE_ABORTED
    assert response.run.first_error.message == "stop please"
    eventually(lambda: containers_of(docker_client, run_id) == [], timeout=30)
    again = client.abort(run_id)
    assert again.already_finished


def test_follower_resumes_without_gap_or_duplicate(coordinator: tuple[Any, Client]) -> None:
    _, client = coordinator
    script = "import time\nfor i in range(40):\n    print('line', i, flush=True)\n    time.sleep(0.02)\n"
    run_id = _run(client, "resume", script)
    seen: list[int] = []
    texts: list[str] = []
    after = 0
    while True:
        stream = client.stream_logs(run_id, after=after)
        ended = False
        for count, event in enumerate(stream):
            if isinstance(event, RunEnded):
                ended = True
                break
            seen.append(event.line.sequence)
            after = event.line.sequence
            if event.line.stream == run_pb2.LOG_STREAM_STDOUT:
                texts.append(event.line.text)
            if count == 4:
                break  # disconnect
        stream.close()
        if ended:
            break
    assert seen == list(range(1, len(seen) + 1))
    assert texts == [f"line {i}" for i in range(40)]


def test_script_and_params_never_in_argv_or_environment(
    coordinator: tuple[Any, Client], docker_client: Any
) -> None:
    _, client = coordinator
    canary = "canary-7f3e9d"
    run_id = _run(
        client,
        "secretive",
        f"import time\n# {canary}\nprint('up', flush=True)\ntime.sleep(30)\n",
        {"p": canary},
    )
    eventually(lambda: "up" in _stdout(client, run_id), timeout=60)
    (container,) = containers_of(docker_client, run_id)
    config = container.attrs["Config"]
    host = container.attrs["HostConfig"]
    assert canary not in repr(config.get("Cmd")) + repr(config.get("Entrypoint")) + repr(config.get("Env"))
    assert host["NetworkMode"] == "none" and host["ReadonlyRootfs"] is True
    assert host["CapDrop"] == ["ALL"] and "no-new-privileges" in host["SecurityOpt"][0]
    assert host["Init"] is True and host["PidsLimit"] > 0 and host["Memory"] == host["MemorySwap"]
    assert config["User"] not in ("", "0", "root")
    client.abort(run_id)


def test_engine_unreachable_is_clear(ray_session: None, store_url: str, tmp_path: Any) -> None:
    from seedbed.coordinator import running_in_thread
    from tests.conftest import settings_for

    settings = settings_for(store_url, tmp_path, docker_url="unix:///nonexistent/docker.sock")
    with running_in_thread(settings) as coord, Client(coord.address) as client:
        assert coord.engine_problem and "unreachable" in coord.engine_problem
        assert "/nonexistent/docker.sock" in coord.engine_problem
        run = client.wait(_run(client, "noengine", "print('hi')\n"))
    assert run.state == run_pb2.RUN_STATE_FAILED
    assert run.first_error.reason == run_pb2.FAILURE_REASON_INFRASTRUCTURE
    assert "unreachable" in run.first_error.message and "/nonexistent/docker.sock" in run.first_error.message


def test_not_found_over_the_real_stack(coordinator: tuple[Any, Client]) -> None:
    _, client = coordinator
    from seedbed.client import ClientError

    with pytest.raises(ClientError) as info:
        client.run("missing")
    assert info.value.code == grpc.StatusCode.NOT_FOUND


def test_janitor_removes_orphaned_sandboxes(ray_session: None, docker_client: Any, tmp_path: Any) -> None:
    """A container left by a dead worker (past its deadline) is removed by the coordinator's janitor."""
    from datetime import UTC, datetime

    from seedbed.coordinator import running_in_thread
    from seedbed.worker.images import ensure_image
    from tests.conftest import settings_for

    past = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    orphan = docker_client.containers.run(
        ensure_image(docker_client),
        entrypoint=["sleep", "300"],
        detach=True,
        network_mode="none",
        labels={
            "seedbed.managed": "1",
            "seedbed.run": "run_orphan",
            "seedbed.attempt": "1",
            "seedbed.deadline": past,
        },
    )
    fresh = docker_client.containers.run(
        ensure_image(docker_client),
        entrypoint=["sleep", "300"],
        detach=True,
        network_mode="none",
        labels={
            "seedbed.managed": "1",
            "seedbed.run": "run_alive",
            "seedbed.attempt": "1",
            "seedbed.deadline": (datetime.now(UTC) + timedelta(hours=1)).isoformat(),
        },
    )
    try:
        settings = settings_for(f"sqlite:///{tmp_path / 's.db'}", tmp_path, janitor_interval_seconds=0.5)
        with running_in_thread(settings):
            eventually(lambda: containers_of(docker_client, "run_orphan") == [], timeout=60)
        assert containers_of(docker_client, "run_alive") != []
    finally:
        for container in (orphan, fresh):
            with contextlib.suppress(Exception):
                container.remove(force=True)


def test_coordinator_restart_redrives_the_run(
    ray_session: None, store_url: str, tmp_path: Any, docker_client: Any
) -> None:
    """Stopping the coordinator mid-run stops the sandbox; the next coordinator runs the run again."""
    from seedbed.coordinator import running_in_thread
    from tests.conftest import settings_for

    settings = settings_for(store_url, tmp_path)
    script = "import time\nprint('up', flush=True)\ntime.sleep(3)\nprint('finished')\n"
    with running_in_thread(settings) as first, Client(first.address) as client:
        run_id = _run(client, "restart", script)
        eventually(lambda: "up" in _stdout(client, run_id), timeout=60)
    eventually(lambda: containers_of(docker_client, run_id) == [], timeout=30)
    with running_in_thread(settings) as second, Client(second.address) as client:
        run = client.wait(run_id)
        assert run.state == run_pb2.RUN_STATE_SUCCESS and run.attempt_count == 2
        assert _stdout(client, run_id) == ["up", "up", "finished"]
