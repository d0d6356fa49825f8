"""Finding 9: hostile frames and text from the sandbox never become a retried INFRASTRUCTURE failure.

Deeply nested log fields, lone surrogates in output, log messages and error messages, and frames
that imitate the runtime's own error types, each sent by a script through the real path (gRPC →
Ray → Docker sandbox → worker → store) against both stores. What must hold: one attempt (nothing
retried), a clear SCRIPT_ERROR where the script misbehaved, the text stored escaped and readable."""

from __future__ import annotations

from typing import Any

import pytest

from seedbed.api.v1 import run_pb2, scenario_pb2
from seedbed.client import Client, LogEvent

pytestmark = pytest.mark.integration

# The script writes straight into the runtime's channel, as hostile code can.
CHANNEL = """
import gc
from seedbed.sdk._channel import Channel
channel = next(o for o in gc.get_objects() if isinstance(o, Channel))
"""


def _run(client: Client, script: str) -> tuple[run_pb2.Run, list[str]]:
    client.put_scenario(
        "hostile-frames",
        script=script,
        settings=scenario_pb2.ScenarioSettings(overlap_policy=scenario_pb2.OVERLAP_POLICY_ALLOW_CONCURRENT),
    )
    run = client.wait(client.run("hostile-frames").run_id)
    lines = [e.line.text for e in client.stream_logs(run.id, follow=False) if isinstance(e, LogEvent)]
    return run, lines


def _one_attempt(run: run_pb2.Run) -> None:
    assert len(run.attempts) == 1, [(a.number, a.outcome) for a in run.attempts]


def test_a_frame_imitating_the_runtimes_protocol_error_is_a_script_error(
    coordinator: tuple[Any, Client],
) -> None:
    _, client = coordinator
    script = CHANNEL + (
        "channel.send({'t': 'error', 'type': 'seedbed.ProtocolError', 'message': 'start frame unusable',"
        " 'traceback': '', 'line': None})\n"
        "import os\nos._exit(2)\n"
    )
    run, lines = _run(client, script)
    assert run.state == run_pb2.RUN_STATE_FAILED, lines
    assert run.first_error.reason == run_pb2.FAILURE_REASON_SCRIPT_ERROR, run.first_error
    assert "imitat" in run.first_error.message, run.first_error.message
    _one_attempt(run)


def test_deeply_nested_log_fields_are_refused_and_the_run_goes_on(coordinator: tuple[Any, Client]) -> None:
    _, client = coordinator
    script = (
        "from seedbed.sdk import log\n"
        "deep = []\n"
        "for _ in range(900):\n"
        "    deep = [deep]\n"
        "try:\n"
        "    log.info('deep', value=deep)\n"
        "except Exception as exc:\n"
        "    print('refused:', type(exc).__name__, str(exc)[:200])\n"
        "log.info('still here', depth=3, nested={'a': {'b': [1, 2]}})\n"
    )
    run, lines = _run(client, script)
    assert run.state == run_pb2.RUN_STATE_SUCCESS, (run.first_error, lines)
    _one_attempt(run)
    refused = [line for line in lines if line.startswith("refused:")]
    assert refused and "nest" in refused[0], lines
    assert any(line.startswith("still here") for line in lines), lines


def test_lone_surrogates_are_stored_escaped(coordinator: tuple[Any, Client]) -> None:
    _, client = coordinator
    script = CHANNEL + (
        "from seedbed.sdk import log\n"
        # An out frame and a log message carrying a lone surrogate (JSON \\ud800 escapes).
        "channel.send({'t': 'out', 'stream': 'stdout', 'line': 'out \\ud800 end'})\n"
        "log.info('log \\udfff end', field='\\ud83d')\n"
        "raise ValueError('bad \\ud800 value')\n"
    )
    run, lines = _run(client, script)
    assert run.state == run_pb2.RUN_STATE_FAILED, lines
    assert run.first_error.reason == run_pb2.FAILURE_REASON_SCRIPT_ERROR, run.first_error
    assert run.first_error.type == "ValueError"
    assert "bad \\ud800 value" in run.first_error.message, run.first_error.message
    _one_attempt(run)
    assert "out \\ud800 end" in lines, lines
    assert any(line.startswith("log \\udfff end") and "\\ud83d" in line for line in lines), lines
