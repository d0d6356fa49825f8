"""`seedbed server` as an operator runs it on Kubernetes: JSON log lines that name the run, attempt
and trace they concern; Prometheus metrics on their own address; a metrics port in use refused at
start with the setting to change. A real server process, real Ray; the Docker engine is pointed
somewhere unreachable so the run fails fast (its log lines are what is checked)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx

from tests.conftest import eventually
from tests.integration.test_cli import seedbed


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_json_logs_name_the_run_and_metrics_are_served(tmp_path: Path) -> None:
    port, metrics_port = _free_port(), _free_port()
    env = {
        **os.environ,
        "SEEDBED_DOCKER_URL": "unix:///nonexistent/docker.sock",
        "SEEDBED_DATA_DIR": str(tmp_path),
    }
    command = [sys.executable, "-m", "seedbed.cli", "server", "--listen", f"127.0.0.1:{port}"]
    server = subprocess.Popen(
        [*command, "--log-format", "json", "--metrics-listen", f"127.0.0.1:{metrics_port}"],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stderr is not None
        lines: list[dict[str, object]] = []
        for raw in server.stderr:
            lines.append(json.loads(raw))  # every line is one JSON object
            if "coordinator listening" in str(lines[-1]["message"]):
                break
        assert {"time", "level", "logger", "message"} <= set(lines[-1])

        # A second server on the same metrics port is refused at once, naming the setting.
        clash = subprocess.run(
            [*command[:-1], f"127.0.0.1:{_free_port()}", "--metrics-listen", f"127.0.0.1:{metrics_port}"],
            env={**env, "SEEDBED_DATA_DIR": str(tmp_path / "other")},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert clash.returncode == 2, clash.stderr
        assert "SEEDBED_METRICS_LISTEN" in clash.stderr and "Traceback" not in clash.stderr

        script = tmp_path / "hi.py"
        script.write_text("print('hi')\n")
        result = seedbed("--address", f"127.0.0.1:{port}", "run", "submit", str(script))
        assert result.returncode == 1

        def scraped() -> bool:
            text = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).text
            return 'seedbed_runs_finished_total{outcome="FAILED"} 1.0' in text

        eventually(scraped)
    finally:
        server.send_signal(signal.SIGTERM)
        rest = server.communicate(timeout=60)[1]
    assert server.returncode == 0, rest[-4000:]
    # Ray's core (C++) writes a few raw lines of its own when the process is signalled.
    lines += [json.loads(raw) for raw in rest.splitlines() if raw.startswith("{")]
    about_runs = [line for line in lines if "run_id" in line]
    assert about_runs, lines
    assert all(len(str(line["trace_id"])) == 32 for line in about_runs if "attempt" in line)
    assert any("attempt" in line for line in about_runs)
