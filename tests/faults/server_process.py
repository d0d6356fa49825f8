"""The real coordinator as a subprocess (``python -m seedbed.cli server``), to crash and restart.

Each ``CoordinatorProcess`` has its own loopback port, data dir (SQLite store and secret key file,
unless ``env`` names a store) and log file; ``start()`` again after ``kill()`` or ``stop()`` reuses
all three, as an operator restarting the service would.

What a SIGKILL of the coordinator leaves behind (measured with Ray 2.60 on Linux). The coordinator
starts its own local Ray instance; Ray sees ``PR_SET_PDEATHSIG`` support and uses it instead of its
reaper process, so:

- its direct children (``gcs_server``, ``raylet``, the dashboard, log monitor and autoscaler
  monitor) die at once with it;
- the Ray workers, the running attempt included, notice the raylet is gone and exit within ~2 s;
- ``ray::DashboardAgent`` and ``ray::RuntimeEnvAgent`` survive as orphans for about a minute, then
  exit on their own;
- the attempt's Docker sandbox is not stopped (dockerd owns it, not the Ray worker): its script
  runs on to its end, and the exited container stays until a janitor sweeps it. ``ray_too`` does
  not change that: stop containers through the Docker API.

``kill(ray_too=True)`` also kills the Ray processes at once: it freezes the coordinator and its
descendants with SIGSTOP (so none can spawn more while they are listed), then SIGKILLs them all. It
finds them by process tree, never by name: the test session's own Ray instance (pytest's children)
is left alone. Whatever a plain ``kill()`` left alive is killed by ``close()``.

Linux only (``/proc``). Rejected: killing the process group (Ray workers lead their own groups);
matching the Ray session dir in command lines (workers rename themselves ``ray::…``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from seedbed.api.v1 import run_pb2

# The empty service name reports SERVING as soon as the port is open; the coordinator marks its
# services SERVING only once the supervisor has started.
_READY_SERVICE = run_pb2.DESCRIPTOR.services_by_name["RunService"].full_name
_TAIL_LINES = 60


class CoordinatorStartError(Exception):
    """The coordinator exited or did not become ready; the message ends with its log's tail."""

    def __init__(self, message: str, log_tail: str) -> None:
        super().__init__(f"{message}\n--- coordinator log (tail) ---\n{log_tail}")
        self.log_tail = log_tail


@dataclass(frozen=True)
class _Pid:
    """A process as it was seen: the start time tells a reused pid apart."""

    pid: int
    start_ticks: int


def _stat(pid: int) -> tuple[int, str, int] | None:
    """(parent pid, state letter, start time in clock ticks) of a live pid, or None."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()  # the command name may contain spaces
    return int(fields[1]), fields[0], int(fields[19])


def _descendants(root: int) -> list[_Pid]:
    children: dict[int, list[_Pid]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (stat := _stat(int(entry))) is not None:
            children.setdefault(stat[0], []).append(_Pid(int(entry), stat[2]))
    found: list[_Pid] = []
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child.pid)
    return found


def _alive(process: _Pid) -> bool:
    stat = _stat(process.pid)
    return stat is not None and stat[2] == process.start_ticks and stat[1] not in ("Z", "X")


def _signal(process: _Pid, signum: signal.Signals) -> None:
    if _alive(process):
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signum)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class CoordinatorProcess:
    """``seedbed server`` in a subprocess: ``start()``, ``kill()``/``stop()``, ``start()`` again.

    ``env`` adds to (or overrides) the inherited environment, e.g. ``SEEDBED_STORE_URL``; the tool
    owns ``SEEDBED_LISTEN`` and ``SEEDBED_DATA_DIR``. ``RAY_ADDRESS`` is dropped unless ``env``
    sets it, so the coordinator starts a Ray instance of its own.
    """

    def __init__(
        self,
        tmp_path: Path,
        env: Mapping[str, str] | None = None,
        *,
        startup_timeout_seconds: float = 120.0,
    ) -> None:
        self.port = _free_port()
        self.data_dir = tmp_path / "coordinator-data"
        self.log_path = tmp_path / "coordinator.log"
        self.startup_timeout_seconds = startup_timeout_seconds
        self._env = dict(env or {})
        self._process: subprocess.Popen[bytes] | None = None
        self._log_offset = 0
        self._starts = 0
        self._leftovers: list[_Pid] = []

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        """The running coordinator's pid; None when it is not running."""
        return self._process.pid if self.running and self._process is not None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def child_pids(self) -> list[int]:
        """The running coordinator's descendants (its Ray instance), as pids."""
        pid = self.pid
        return [] if pid is None else [p.pid for p in _descendants(pid)]

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> Self:
        """Start and wait until the coordinator serves; CoordinatorStartError with its log's tail if
        it exits or is not ready within ``startup_timeout_seconds``."""
        if self.running:
            raise ValueError(f"the coordinator is already running (pid {self.pid})")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._starts += 1
        env = {key: value for key, value in os.environ.items() if key != "RAY_ADDRESS"}
        env.update({"SEEDBED_STORE_URL": "", "SEEDBED_SECRET_KEY": "", "PYTHONUNBUFFERED": "1"})
        env.update(self._env)
        env.update({"SEEDBED_LISTEN": self.address, "SEEDBED_DATA_DIR": str(self.data_dir)})
        with self.log_path.open("ab") as log:
            log.write(f"=== start {self._starts} on {self.address} ===\n".encode())
            log.flush()
            self._log_offset = log.tell()
            # A session of its own: a Ctrl-C meant for pytest does not reach it, and Ray may make
            # it the leader of the group its processes join.
            self._process = subprocess.Popen(
                [sys.executable, "-m", "seedbed.cli", "server"],
                env=env,
                cwd=self.data_dir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            self._wait_ready(self._process)
        except BaseException:
            if self.running:
                self.kill(ray_too=True)
            raise
        return self

    def _wait_ready(self, process: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + self.startup_timeout_seconds
        # Short reconnect backoff: the port opens seconds after the process starts (Ray first).
        options = [("grpc.initial_reconnect_backoff_ms", 100), ("grpc.max_reconnect_backoff_ms", 500)]
        with grpc.insecure_channel(self.address, options=options) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            request = health_pb2.HealthCheckRequest(service=_READY_SERVICE)
            while True:
                if (code := process.poll()) is not None:
                    raise CoordinatorStartError(f"the coordinator exited with code {code}", self.log_tail())
                with contextlib.suppress(grpc.RpcError):
                    if health.Check(request, timeout=1).status == health_pb2.HealthCheckResponse.SERVING:
                        return
                if time.monotonic() > deadline:
                    raise CoordinatorStartError(
                        f"the coordinator was not ready within {self.startup_timeout_seconds:g}s",
                        self.log_tail(),
                    )
                time.sleep(0.1)

    def kill(self, *, ray_too: bool = False) -> None:
        """SIGKILL the coordinator (a crash). Its Ray instance then mostly dies on its own (see the
        module docstring); ``ray_too=True`` kills every process of it at once."""
        process = self._require_process()
        if ray_too:
            stat = _stat(process.pid)
            self._freeze_and_kill(_Pid(process.pid, stat[2] if stat else 0))
        else:
            self._leftovers.extend(_descendants(process.pid))
            process.kill()
        process.wait()

    def stop(self, timeout_seconds: float = 60.0) -> int:
        """SIGTERM (a graceful stop: the coordinator shuts its Ray instance down), SIGKILL with its
        Ray instance after ``timeout_seconds``; the exit code."""
        process = self._require_process()
        self._leftovers.extend(_descendants(process.pid))
        process.send_signal(signal.SIGTERM)
        try:
            return process.wait(timeout_seconds)
        except subprocess.TimeoutExpired:
            self.kill(ray_too=True)
            return process.wait()

    def close(self) -> None:
        """Stop the coordinator if it runs; kill what earlier kills left of its Ray instances."""
        if self.running:
            self.stop()
        for leftover in self._leftovers:
            _signal(leftover, signal.SIGKILL)
        # A SIGKILL lands when the kernel next schedules the process: wait until each is gone.
        deadline = time.monotonic() + 10
        while any(_alive(p) for p in self._leftovers) and time.monotonic() < deadline:
            time.sleep(0.02)
        self._leftovers.clear()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def log_tail(self, lines: int = _TAIL_LINES) -> str:
        """The last ``lines`` lines the current (or last) start wrote."""
        try:
            with self.log_path.open("rb") as log:
                log.seek(self._log_offset)
                text = log.read().decode("utf-8", "replace")
        except OSError as exc:
            return f"(no log: {exc})"
        return "\n".join(text.splitlines()[-lines:])

    # -- internals -------------------------------------------------------------------------------

    def _require_process(self) -> subprocess.Popen[bytes]:
        if self._process is None or self._process.poll() is not None:
            raise ValueError("the coordinator is not running")
        return self._process

    def _freeze_and_kill(self, root: _Pid, wait_seconds: float = 10.0) -> None:
        """SIGSTOP the tree top-down until no new process appears, then SIGKILL all of it."""
        _signal(root, signal.SIGSTOP)
        frozen: dict[int, _Pid] = {}
        while new := [p for p in _descendants(root.pid) if p.pid not in frozen]:
            for process in new:
                _signal(process, signal.SIGSTOP)
                frozen[process.pid] = process
        _signal(root, signal.SIGKILL)
        for process in frozen.values():
            _signal(process, signal.SIGKILL)
        deadline = time.monotonic() + wait_seconds
        while any(_alive(p) for p in frozen.values()) and time.monotonic() < deadline:
            time.sleep(0.05)
