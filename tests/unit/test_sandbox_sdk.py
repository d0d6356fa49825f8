"""The in-sandbox runtime and SDK, run as a plain subprocess (no Docker) against a tiny fake worker.

The integration tests run the same runtime inside the real image; these are fast and pin details
(framing of partial lines, traceback filtering, exit codes, call replies).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

# The SDK is its own distribution (it is not part of the server's editable install): run it from
# the repository folder, in subprocesses, exactly as the sandbox image does.
SDK_ROOT = Path(__file__).resolve().parents[2] / "sandbox-images" / "sdk"


def sdk_env() -> dict[str, str]:
    return {"PYTHONPATH": str(SDK_ROOT), "PATH": os.environ.get("PATH", "")}


def run_python(code: str) -> str:
    """Run code with only the SDK importable; return its stdout."""
    done = subprocess.run([sys.executable, "-c", code], env=sdk_env(), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout


def run_runtime(
    script: str,
    params: dict[str, str] | None = None,
    reply: Any = None,
    start_line: bytes | None = None,
) -> tuple[int, list[dict[str, Any]]]:
    """Run `python -m seedbed.sdk._runtime`, answer its calls, return (exit code, frames)."""
    proc = subprocess.Popen(
        [sys.executable, "-u", "-m", "seedbed.sdk._runtime"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=sdk_env(),
    )
    assert proc.stdin is not None and proc.stdout is not None
    if start_line is None:
        start_line = json.dumps(
            {
                "v": 1,
                "t": "start",
                "script": script,
                "params": params or {},
                "run_id": "run_test",
                "attempt": 1,
                "run_key": "key",
            }
        ).encode()
    proc.stdin.write(start_line + b"\n")
    proc.stdin.flush()
    frames = []
    for line in proc.stdout:
        frame = json.loads(line)
        frames.append(frame)
        if frame["t"] == "call":
            answer = reply(frame) if callable(reply) else {"ok": True, "result": None}
            proc.stdin.write(json.dumps({"v": 1, "t": "reply", "id": frame["id"], **answer}).encode() + b"\n")
            proc.stdin.flush()
    proc.stdin.close()
    code = proc.wait(timeout=30)
    proc.stderr.close()  # type: ignore[union-attr]
    return code, frames


def outs(frames: list[dict[str, Any]], stream: str = "stdout") -> list[str]:
    return [f["line"] for f in frames if f["t"] == "out" and f["stream"] == stream]


def test_prints_partial_lines_and_child_output_become_frames() -> None:
    code, frames = run_runtime(
        "import os, subprocess, sys\n"
        "print('one')\n"
        "sys.stdout.write('par'); sys.stdout.flush(); sys.stdout.write('tial\\n')\n"
        "os.write(1, b'raw fd write\\n')\n"
        "subprocess.run([sys.executable, '-c', 'print(\"from child\")'], check=True)\n"
        "print('to stderr', file=sys.stderr)\n"
        "print('no newline at the end', end='')\n"
    )
    assert code == 0
    assert outs(frames) == ["one", "partial", "raw fd write", "from child", "no newline at the end"]
    assert outs(frames, "stderr") == ["to stderr"]
    assert frames[-1] == {"v": 1, "t": "done"}


def test_params_run_id_and_log_call_round_trip() -> None:
    code, frames = run_runtime(
        "from seedbed.sdk import params, log, run_id\n"
        "print(params['name'], len(params), run_id)\n"
        "try:\n    params['x'] = 'y'\nexcept TypeError:\n    print('read-only')\n"
        "print('before log')\n"
        "log.warning('careful', rows=3)\n",
        params={"name": "alice"},
    )
    assert code == 0
    kinds = [(f["t"], f.get("line") or f.get("op")) for f in frames]
    assert kinds == [
        ("ready", None),  # sent before any line of the script runs
        ("out", "alice 1 run_test"),
        ("out", "read-only"),
        ("out", "before log"),
        ("call", "log"),
        ("done", None),
    ]
    call = frames[4]
    assert call["args"] == {"level": "warning", "message": "careful", "fields": {"rows": 3}}


def test_call_error_reply_raises_call_error() -> None:
    code, frames = run_runtime(
        "from seedbed.sdk import log, CallError\n"
        "try:\n    log.info('x')\nexcept CallError as e:\n    print(e.type, e.message)\n",
        reply=lambda f: {"ok": False, "error": {"type": "Refused", "message": "no"}},
    )
    assert code == 0 and outs(frames) == ["Refused no"]


def test_exception_keeps_only_scenario_frames() -> None:
    code, frames = run_runtime(
        "import json\n\ndef parse(text):\n    return json.loads(text)\nparse('{bad')\n"
    )
    assert code == 1
    error = frames[-1]
    assert error["t"] == "error" and error["type"] == "json.decoder.JSONDecodeError"
    assert error["line"] == 4
    assert 'File "scenario.py", line 5' in error["traceback"]
    assert 'File "scenario.py", line 4' in error["traceback"]
    assert "_runtime" not in error["traceback"] and "json/decoder.py" not in error["traceback"]


def test_syntax_error_reports_line() -> None:
    code, frames = run_runtime("x = 1\n\ndef f(:\n    pass\n")
    assert code == 1
    assert frames[-1]["type"] == "SyntaxError" and frames[-1]["line"] == 3


def test_system_exit_codes() -> None:
    assert run_runtime("raise SystemExit(3)")[0] == 3
    code, frames = run_runtime("import sys; sys.exit(0)")
    assert code == 0 and frames[-1]["t"] == "done"
    code, frames = run_runtime("import sys; sys.exit('bye')")
    assert code == 1 and outs(frames, "stderr") == ["bye"]


def test_bad_start_frame_is_reported_as_protocol_error() -> None:
    code, frames = run_runtime("", start_line=b'{"v": 99, "t": "start"}')
    assert code == 2
    assert frames == [
        {
            "v": 1,
            "t": "error",
            "type": "seedbed.ProtocolError",
            "message": "unsupported protocol version 99 (this SDK speaks 1)",
            "traceback": "",
            "line": None,
        }
    ]


def test_long_lines_are_cut_in_the_sandbox() -> None:
    code, frames = run_runtime("print('x' * 200_000)\nprint('after')")
    assert code == 0
    first, second = outs(frames)
    assert first.endswith("[line cut]") and len(first) < 70_000 and second == "after"


def test_sdk_outside_a_sandbox_says_so() -> None:
    out = run_python(
        "from seedbed.sdk import ChannelClosedError, log, params, run_id\n"
        "print(dict(params), repr(run_id))\n"
        "try:\n    log.info('x')\nexcept ChannelClosedError as exc:\n    print(exc)\n"
    )
    assert out.splitlines() == [
        "{} ''",
        "seedbed.sdk is not connected to a worker: run this script through Seedbed",
    ]


def test_sdk_public_surface() -> None:
    out = run_python("import seedbed.sdk, seedbed; print(sorted(seedbed.sdk.__all__), seedbed.__file__)")
    assert out.strip() == (
        "['Assets', 'CallError', 'ChannelClosedError', 'Column', 'Connection', 'InvalidArgument', "
        "'LimitExceeded', "
        "'NondeterministicWrite', 'Pick', "
        "'RestError', 'RowSet', 'Seedbed', 'SeedbedError', 'SerializationError', 'TargetError', 'Template', "
        "'TemplateError', 'UnknownConnection', 'UnknownTemplate', 'Workspace', 'WorkspaceError', 'log', "
        "'params', 'pick_from', 'run_id'] None"
    )  # seedbed.__file__ is None: a PEP 420 namespace package
    assert not (SDK_ROOT / "seedbed" / "__init__.py").exists()


def test_a_lingering_child_process_does_not_hold_the_run() -> None:
    began = time.monotonic()
    code, frames = run_runtime(
        "import subprocess, sys, time\n"
        "subprocess.Popen([sys.executable, '-c',\n"
        "                  'import time; print(\"child\", flush=True); time.sleep(4)'])\n"
        "time.sleep(0.5)\n"
        "print('parent done')\n"
    )
    assert code == 0 and frames[-1]["t"] == "done"
    assert sorted(outs(frames)) == ["child", "parent done"]
    assert time.monotonic() - began < 3.5  # the output grace (2 s), not the child's 4 s
