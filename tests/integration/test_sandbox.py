"""The Docker sandbox driver against the real local engine (no mocks, nothing skipped).

Needs a running Docker engine. The first run builds the sandbox image (a few minutes cold,
mmdebstrap + pip download on the host); later runs reuse it by its content hash.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import docker
import docker.errors
import pytest

from seedbed.worker.images import ensure_image, image_tag
from seedbed.worker.sandbox import (
    DockerSandboxDriver,
    Finished,
    Outcome,
    Output,
    OutputLine,
    SandboxEvent,
    SandboxLimits,
    SandboxRequest,
    Started,
)
from tests.conftest import sandbox_runtime

pytestmark = pytest.mark.integration

# Under gVisor some answers differ from the host kernel's (noted where they do).
GVISOR = sandbox_runtime() == "runsc"


@pytest.fixture(scope="module")
def docker_client() -> Iterator[docker.DockerClient]:
    client = docker.from_env()
    yield client
    client.close()


@pytest.fixture(scope="module")
def driver(docker_client: docker.DockerClient) -> Iterator[DockerSandboxDriver]:
    ensure_image(docker_client)  # build once, outside any test's timing
    drv = DockerSandboxDriver(runtime=sandbox_runtime())
    yield drv
    drv.close()


def request(
    script: str, *, params: dict[str, str] | None = None, run_id: str = "run_test", **limits: object
) -> SandboxRequest:
    return SandboxRequest(
        run_id=run_id,
        attempt=1,
        run_key=f"key-{run_id}",
        script=script,
        params=params or {},
        limits=SandboxLimits(**limits),  # type: ignore[arg-type]
        deadline=datetime.now(UTC) + timedelta(minutes=5),
    )


class Result:
    def __init__(self, events: list[SandboxEvent], seconds: float) -> None:
        self.events = events
        self.seconds = seconds
        self.finished = events[-1]
        assert isinstance(self.finished, Finished)
        assert sum(isinstance(e, Finished) for e in events) == 1
        started = [e for e in events if isinstance(e, Started)]
        self.container_id = started[0].container_id if started else None

    def lines(self, stream: str | None = None) -> list[OutputLine]:
        return [
            line
            for e in self.events
            if isinstance(e, Output)
            for line in e.lines
            if stream is None or line.stream == stream
        ]

    def texts(self, stream: str | None = "stdout") -> list[str]:
        return [line.text for line in self.lines(stream)]


def run(driver: DockerSandboxDriver, req: SandboxRequest, **kwargs: object) -> Result:
    began = time.monotonic()
    events = list(driver.run(req, **kwargs))  # type: ignore[arg-type]
    return Result(events, time.monotonic() - began)


def assert_removed(client: docker.DockerClient, container_id: str | None) -> None:
    assert container_id
    with pytest.raises(docker.errors.NotFound):
        client.containers.get(container_id)


def eventually(check: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            assert check()  # type: ignore[operator]
            return
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_hello_world(driver: DockerSandboxDriver, docker_client: docker.DockerClient) -> None:
    result = run(driver, request("print('hello')\nfor i in range(1000):\n    print(i)\n"))
    assert result.finished.outcome is Outcome.SUCCEEDED
    assert result.finished.exit_code == 0 and result.finished.error is None
    assert result.texts() == ["hello", *map(str, range(1000))]
    assert all(len(e.lines) <= 500 for e in result.events if isinstance(e, Output))
    assert isinstance(result.events[0], Started)
    assert result.seconds < 10
    assert_removed(docker_client, result.container_id)


def test_params_and_run_id_reach_the_script(driver: DockerSandboxDriver) -> None:
    script = "from seedbed.sdk import params, run_id\nprint(run_id, params['customers'], params['note'])\n"
    result = run(driver, request(script, params={"customers": "42", "note": "a b\nc"}, run_id="run_params"))
    assert result.finished.outcome is Outcome.SUCCEEDED
    assert result.texts() == ["run_params 42 a b", "c"]


def test_sdk_log_lines_and_warning_count(driver: DockerSandboxDriver) -> None:
    script = (
        "from seedbed.sdk import log\n"
        "print('first')\n"
        "log.info('starting', rows=10)\n"
        "log.warning('slow target', ms=900)\n"
        "log.warn('again')\n"
        "log.error('bad row', row={'id': 1})\n"
        "print('last')\n"
    )
    result = run(driver, request(script))
    assert result.finished.outcome is Outcome.SUCCEEDED
    assert result.finished.warnings == 2
    assert [(ln.stream, ln.level, ln.text) for ln in result.lines()][1:] == [
        ("stdout", "", "first"),
        ("system", "info", "starting rows=10"),
        ("system", "warning", "slow target ms=900"),
        ("system", "warning", "again"),
        ("system", "error", 'bad row row={"id": 1}'),
        ("stdout", "", "last"),
    ]


def test_syntax_error(driver: DockerSandboxDriver) -> None:
    result = run(driver, request("print('ok')\n\nfor x in range(3)\n    print(x)\n"))
    finished = result.finished
    assert finished.outcome is Outcome.SCRIPT_ERROR and finished.exit_code == 1
    assert finished.error is not None
    assert finished.error.type == "SyntaxError" and finished.error.line == 3
    assert result.texts() == []  # nothing ran


def test_exception_reports_type_message_line_and_scenario_frames(
    driver: DockerSandboxDriver,
) -> None:
    script = "import pandas as pd\n\ndef ratio(a, b):\n    return a / b\n\nprint('computing')\nratio(1, 0)\n"
    result = run(driver, request(script))
    error = result.finished.error
    assert result.finished.outcome is Outcome.SCRIPT_ERROR
    assert error is not None
    assert (error.type, error.message, error.line) == ("ZeroDivisionError", "division by zero", 4)
    assert 'File "scenario.py", line 7, in <module>' in error.traceback
    assert 'File "scenario.py", line 4, in ratio' in error.traceback
    assert "return a / b" in error.traceback
    assert "seedbed" not in error.traceback and "/opt/venv" not in error.traceback
    assert result.texts() == ["computing"]


def test_nonzero_exit_without_error_frame(driver: DockerSandboxDriver) -> None:
    result = run(driver, request("import os\nos._exit(7)\n"))
    assert result.finished.outcome is Outcome.SCRIPT_ERROR
    assert result.finished.exit_code == 7
    assert result.finished.error is not None
    assert result.finished.error.message == "script exited with code 7"


def test_infinite_loop_times_out_at_the_deadline(
    driver: DockerSandboxDriver, docker_client: docker.DockerClient
) -> None:
    result = run(driver, request("print('spinning')\nwhile True:\n    pass\n", timeout=timedelta(seconds=3)))
    finished = result.finished
    assert finished.outcome is Outcome.TIMEOUT
    assert finished.error is not None and "time limit of 3s" in finished.error.message
    assert 2.9 < result.seconds < 7
    assert result.texts() == ["spinning"]
    assert_removed(docker_client, result.container_id)


def test_memory_bomb_is_oom(driver: DockerSandboxDriver) -> None:
    script = "chunks = []\nwhile True:\n    chunks.append(bytearray(8 * 2**20))\n"
    result = run(driver, request(script, memory_bytes=64 * 2**20, timeout=timedelta(seconds=30)))
    assert result.finished.outcome is Outcome.OOM, result.finished
    assert result.finished.error is not None
    assert "64 MiB" in result.finished.error.message or result.finished.error.type == "MemoryError"
    assert result.seconds < 20


def _host_pids() -> int:
    return sum(1 for name in os.listdir("/proc") if name.isdigit())


def _pids_in_container(container_id: str) -> int:
    """Host processes whose cgroup names the container (immune to other work on the machine)."""
    count = 0
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/cgroup") as handle:
                    count += container_id in handle.read()
            except OSError:
                pass  # the process ended while we looked
    return count


def test_fork_bomb_is_contained(driver: DockerSandboxDriver, docker_client: docker.DockerClient) -> None:
    before = _host_pids()
    script = (
        "import os, time\n"
        "print('forking', flush=True)\n"
        "while True:\n"
        "    try:\n"
        "        os.fork()\n"
        "    except OSError:\n"
        "        time.sleep(0.01)\n"
    )
    began = time.monotonic()
    events: list[SandboxEvent] = []
    peak = 0
    stop = threading.Event()
    gen = driver.run(request(script, pids=64, timeout=timedelta(seconds=4)))
    started = next(gen)
    assert isinstance(started, Started)

    def watch() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, _pids_in_container(started.container_id))
            time.sleep(0.05)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        events = [started, *gen]
    finally:
        stop.set()
        watcher.join()
    result = Result(events, time.monotonic() - began)
    # Under gVisor, 64 processes may outgrow the memory limit first (its kernel's memory counts),
    # and the script's main process sometimes exits with code 2 once the children it forked die
    # (a gVisor quirk seen with scripts whose forked children exit; runc never does it). Either way
    # the bomb ended, and what follows checks that it stayed contained.
    expected = (Outcome.TIMEOUT, Outcome.OOM, Outcome.SCRIPT_ERROR) if GVISOR else (Outcome.TIMEOUT,)
    assert result.finished.outcome in expected, result.finished
    assert result.seconds < 15
    # The bomb did fork, and the pids limit (threads count too) held it...
    # (Under gVisor the cgroup holds gVisor's host tasks, bounded by the container's pids limit.)
    assert 10 < peak <= (64 * 10 + 256 if GVISOR else 64), peak
    # ...and nothing of it is left: not in its cgroup, not on the host.
    assert _pids_in_container(started.container_id) == 0
    eventually(lambda: _host_pids() - before < 20)
    assert_removed(docker_client, result.container_id)


def test_output_flood_is_capped_and_drained(driver: DockerSandboxDriver) -> None:
    script = "import sys\nfor i in range(200_000):\n    print(i)\nprint('x' * 100_000)\nprint('end')\n"
    result = run(driver, request(script, max_log_bytes=64 * 2**10, max_line_bytes=1024))
    finished = result.finished
    assert finished.outcome is Outcome.SUCCEEDED
    assert finished.logs_truncated and finished.dropped_lines > 150_000
    stdout = result.texts()
    assert stdout[:3] == ["0", "1", "2"]
    assert sum(len(t) + 1 for t in stdout) <= 64 * 2**10
    assert any("output limit" in line.text for line in result.lines("system"))
    assert result.seconds < (90 if GVISOR else 30)  # gVisor's write(2) is far slower


def test_cancel_event_aborts_mid_run(driver: DockerSandboxDriver, docker_client: docker.DockerClient) -> None:
    cancel = threading.Event()
    events: list[SandboxEvent] = []
    began = time.monotonic()
    for event in driver.run(request("import time\nprint('working')\ntime.sleep(60)\n"), cancel=cancel):
        events.append(event)
        if isinstance(event, Output) and any(ln.text == "working" for ln in event.lines):
            cancel.set()
    result = Result(events, time.monotonic() - began)
    assert result.finished.outcome is Outcome.ABORTED
    assert result.seconds < 10
    assert_removed(docker_client, result.container_id)


def test_abort_by_run_id(driver: DockerSandboxDriver) -> None:
    req = request("import time\ntime.sleep(60)\n", run_id="run_abort_me")
    timer = threading.Timer(1.5, driver.abort, args=("run_abort_me",))
    timer.start()
    result = run(driver, req)
    timer.join()
    assert result.finished.outcome is Outcome.ABORTED and result.seconds < 10


def test_keyboard_interrupt_aborts_and_stopping_iteration_cleans_up(
    driver: DockerSandboxDriver, docker_client: docker.DockerClient
) -> None:
    # KeyboardInterrupt inside the generator (how Ray cancels a task): Finished(ABORTED), then
    # the interrupt itself.
    gen = driver.run(request("import time\ntime.sleep(60)\n"))
    started = next(gen)
    assert isinstance(started, Started)
    finished = gen.throw(KeyboardInterrupt)
    assert isinstance(finished, Finished) and finished.outcome is Outcome.ABORTED
    assert_removed(docker_client, started.container_id)  # gone before Finished is handed out
    with pytest.raises(KeyboardInterrupt):  # asking for more lets the interrupt continue
        next(gen)

    # The consumer simply stops iterating: the container is removed all the same.
    gen = driver.run(request("import time\ntime.sleep(60)\n"))
    started = next(gen)
    assert isinstance(started, Started)
    gen.close()
    assert_removed(docker_client, started.container_id)


def test_script_and_params_are_not_in_inspect(
    driver: DockerSandboxDriver, docker_client: docker.DockerClient
) -> None:
    secret_script = "import time\n# SCRIPT-MARKER-7f3a\ntime.sleep(30)\n"
    gen = driver.run(request(secret_script, params={"token": "PARAM-MARKER-91c2"}))
    started = next(gen)
    assert isinstance(started, Started)
    try:
        attrs = docker_client.api.inspect_container(started.container_id)
        text = repr(attrs)
        assert "SCRIPT-MARKER" not in text and "PARAM-MARKER" not in text
        config, host = attrs["Config"], attrs["HostConfig"]
        assert config["User"] == "10001:10001"
        assert config["Entrypoint"][-2:] == ["-m", "seedbed.sdk._runtime"]
        assert not config["Cmd"]
        assert host["NetworkMode"] == "none" and host["ReadonlyRootfs"] is True
        assert host["CapDrop"] == ["ALL"] and host["SecurityOpt"][0] == "no-new-privileges"
        assert host["SecurityOpt"][1].startswith("seccomp=") and "noexec" in host["Tmpfs"]["/tmp"]
        assert host["Memory"] == host["MemorySwap"] == 512 * 2**20
        assert host["PidsLimit"] == (128 * 10 + 256 if GVISOR else 128) and host["Init"] is True
        assert host["LogConfig"]["Type"] == "none"  # output reaches the worker through the attach stream only
        assert config["Labels"]["seedbed.managed"] == "1"
        assert config["Labels"]["seedbed.run"] == "run_test"
        assert "/tmp" in host["Tmpfs"]
    finally:
        gen.close()
    assert_removed(docker_client, started.container_id)


def test_sandbox_is_confined(driver: DockerSandboxDriver) -> None:
    script = (
        "import os, socket, pathlib\n"
        "print(os.getuid(), os.getcwd())\n"
        "for path in ('/etc/x', '/opt/venv/x'):\n"
        "    try:\n"
        "        pathlib.Path(path).write_text('x')\n"
        "        print('wrote', path)\n"
        "    except OSError as exc:\n"
        "        print('denied', exc.errno)\n"
        "pathlib.Path('/tmp/scratch').write_text('ok')\n"
        "try:\n"
        "    socket.create_connection(('1.1.1.1', 53), timeout=2)\n"
        "    print('network!')\n"
        "except OSError:\n"
        "    print('no network')\n"
        "import numpy, pandas, faker, sqlalchemy, psycopg, httpx, yaml, dateutil\n"
        "print('libs ok')\n"
    )
    result = run(driver, request(script))
    assert result.finished.outcome is Outcome.SUCCEEDED, result.finished
    # EROFS from the host kernel; gVisor checks permissions first (EACCES).
    denied = "denied 13" if GVISOR else "denied 30"
    assert result.texts() == ["10001 /tmp", denied, denied, "no network", "libs ok"]


def test_hostile_frames_do_not_crash_the_driver(driver: DockerSandboxDriver) -> None:
    script = (
        "import os, stat\n"
        "chan = []\n"
        "for fd in map(int, os.listdir('/proc/self/fd')):\n"
        "    try:\n"
        "        if fd > 2 and stat.S_ISFIFO(os.fstat(fd).st_mode):\n"
        "            chan.append(fd)\n"
        "    except OSError:\n"
        "        pass\n"
        "print('fifos', len(chan))\n"
        "junk = [b'not json at all\\n', b'{\"v\": 1, \"t\": \"bogus\"}\\n', b'{broken\\n',\n"
        '        b\'\\xff\\xfe\\x00binary\\n\', b\'{"v": 1, "t": "call", "id": -1}\\n\',\n'
        '        b\'{"v": 1, "t": "out", "stream": "stdout", "line": "forged"}\\n\',\n'
        "        b'[' * 50000 + b'\\n', b'y' * (9 * 2**20) + b'\\n']\n"
        "for fd in chan:\n"
        "    for piece in junk:\n"
        "        try:\n"
        "            os.write(fd, piece)\n"
        "        except OSError:\n"
        "            pass\n"
        "os.write(1, b'z' * (3 * 2**20) + b'\\n')\n"
        "print('still here')\n"
    )
    result = run(driver, request(script, timeout=timedelta(seconds=60)))
    assert isinstance(result.finished, Finished)
    assert result.finished.outcome is Outcome.SUCCEEDED, result.finished
    assert "still here" in result.texts()
    notices = [ln.text for ln in result.lines("system")]
    assert any("sandbox protocol" in text for text in notices), notices


def test_engine_unreachable_is_infrastructure() -> None:
    driver = DockerSandboxDriver(docker_url="unix:///nonexistent.sock")
    result = run(driver, request("print('never')"))
    finished = result.finished
    assert finished.outcome is Outcome.INFRASTRUCTURE
    assert finished.error is not None and finished.error.type == "EngineUnavailable"
    assert "unix:///nonexistent.sock" in finished.error.message
    assert "start Docker or set SEEDBED_DOCKER_URL" in finished.error.message
    assert result.events == [finished]


def test_sweep_removes_expired_managed_containers(
    driver: DockerSandboxDriver, docker_client: docker.DockerClient
) -> None:
    tag = image_tag()
    past = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    expired = docker_client.containers.create(
        tag, labels={"seedbed.managed": "1", "seedbed.deadline": past, "seedbed.run": "run_old"}
    )
    alive = docker_client.containers.create(
        tag, labels={"seedbed.managed": "1", "seedbed.deadline": future, "seedbed.run": "run_new"}
    )
    try:
        removed = driver.sweep(grace=timedelta(minutes=1))
        assert expired.id in removed and alive.id not in removed
        assert_removed(docker_client, expired.id)
        docker_client.containers.get(alive.id)
    finally:
        for container in (expired, alive):
            with contextlib.suppress(docker.errors.NotFound):
                container.remove(force=True)
