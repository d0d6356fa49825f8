"""The `seedbed` command against a live coordinator, and on its own with `--local`."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from seedbed.client import Client
from tests.conftest import ROOT

pytestmark = pytest.mark.integration


def seedbed(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "seedbed.cli", *args], capture_output=True, text=True, timeout=timeout
    )


def test_run_follow_exit_codes_logs_runs_abort(coordinator: tuple[Any, Client], tmp_path: Path) -> None:
    coord, client = coordinator
    address = ["--address", coord.address]
    good = tmp_path / "good.py"
    good.write_text("from seedbed.sdk import params\nprint('hi', params['name'])\n")
    result = seedbed(*address, "run", "submit", str(good), "--param", "name=ann")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["hi ann"]
    assert "SUCCESS" in result.stderr

    bad = tmp_path / "bad.py"
    bad.write_text("print('about to fail')\nraise ValueError('no such customer')\n")
    result = seedbed(*address, "run", "submit", str(bad))
    assert result.returncode == 1
    assert "about to fail" in result.stdout
    assert "ValueError: no such customer (line 2)" in result.stderr

    warn = tmp_path / "warn.py"
    warn.write_text("from seedbed.sdk import log\nlog.warning('careful')\n")
    assert seedbed(*address, "run", "submit", str(warn)).returncode == 4

    listing = seedbed(*address, "run", "list", "-o", "json")
    runs = json.loads(listing.stdout)
    assert [r["state"] for r in runs][:3] == ["RUN_STATE_WARNING", "RUN_STATE_FAILED", "RUN_STATE_SUCCESS"]
    good_run = runs[2]["id"]
    logs = seedbed(*address, "run", "logs", good_run)
    assert logs.returncode == 0 and "hi ann" in logs.stdout
    aborted = seedbed(*address, "run", "abort", good_run)
    assert aborted.returncode == 0 and "had already ended (SUCCESS)" in aborted.stdout


def test_bad_invocations_say_what_is_wrong(coordinator: tuple[Any, Client], tmp_path: Path) -> None:
    coord, _ = coordinator
    result = seedbed("--address", coord.address, "run", "submit", str(tmp_path / "missing.py"))
    assert result.returncode == 2 and "cannot read" in result.stderr
    result = seedbed("--address", coord.address, "run", "logs", "run_unknown")
    assert result.returncode == 5 and "NOT_FOUND" in result.stderr
    started = time.monotonic()
    result = seedbed("--address", "127.0.0.1:1", "run", "list")
    assert result.returncode == 7 and "seedbed server" in result.stderr
    assert time.monotonic() - started < 10  # said within the 2 s connect wait, plus start-up
    empty = tmp_path / "empty.py"
    empty.write_text("")
    result = seedbed("--address", coord.address, "run", "submit", str(empty))
    assert result.returncode == 8 and "INVALID_ARGUMENT" in result.stderr


def test_local_run_of_the_example(tmp_path: Path) -> None:
    """The README's main job: an embedded coordinator (SQLite, its own local Ray, Docker), with no
    set-up at all: no API key given, the one generated for the admin is used."""
    import os

    env = {k: v for k, v in os.environ.items() if k not in ("SEEDBED_API_KEY", "SEEDBED_ADMIN_API_KEY")}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "seedbed.cli",
            "run",
            "submit",
            "--local",
            str(ROOT / "examples" / "hello.py"),
            "-p",
            "customers=4",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["id"] for r in rows] == [1, 2, 3, 4] and all(r["email"] for r in rows)
    assert (tmp_path / ".seedbed" / "seedbed.db").exists()
    assert (tmp_path / ".seedbed" / "admin-api-key").exists()


def test_server_command_serves_and_reports_an_unreachable_engine(tmp_path: Path) -> None:
    """`seedbed server` starts on embedded defaults, says clearly when Docker is unreachable, runs
    fail with that reason, and SIGTERM stops it cleanly."""
    import os
    import signal
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        **os.environ,
        "SEEDBED_DOCKER_URL": "unix:///nonexistent/docker.sock",
        "SEEDBED_DATA_DIR": str(tmp_path),
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "seedbed.cli", "server", "--listen", f"127.0.0.1:{port}"],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stderr is not None
        log: list[str] = []
        for line in server.stderr:
            log.append(line)
            if "coordinator listening" in line:
                break
        text = "".join(log)
        assert "Docker engine unreachable" in text and "/nonexistent/docker.sock" in text, text
        script = tmp_path / "hi.py"
        script.write_text("print('hi')\n")
        result = seedbed("--address", f"127.0.0.1:{port}", "run", "submit", str(script))
        assert result.returncode == 1
        assert "INFRASTRUCTURE" in result.stderr and "unreachable" in result.stderr
    finally:
        server.send_signal(signal.SIGTERM)
        rest = server.communicate(timeout=60)[1]
    assert server.returncode == 0, rest[-4000:]
    assert (tmp_path / "seedbed.db").exists()
