"""Following a run on a terminal: a spinner with the run's state, bulk inserts' progress lines as
bars that fit a 40-column terminal; elsewhere the lines as they came, no control codes."""

from __future__ import annotations

import io
import re

import pytest
from rich.console import Console

from seedbed.api.v1 import run_pb2
from seedbed.cli._context import Globals
from seedbed.cli._follow import LogView, run_status
from seedbed.client import LogEvent


def _system(text: str) -> LogEvent:
    return LogEvent(run_pb2.LogLine(stream=run_pb2.LOG_STREAM_SYSTEM, text=text, level="info"))


PROGRESS = "insert orders: 1,200,000/5,000,000 rows (24%), 150,000 rows/s, about 25s left"


def _plain(screen: str) -> list[str]:
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen).replace("\r", "\n").splitlines()


def test_a_40_column_terminal_gets_a_spinner_and_bars_that_fit() -> None:
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=40, color_system=None)
    with LogView(Globals(), console=console) as view:
        view.set_run(run_pb2.Run(id="run_5f0c2a9e1b7d4c3a", state=run_pb2.RUN_STATE_RUNNING, attempt_count=1))
        view.line(_system("attempt 1 dispatched"))
        view.line(_system(PROGRESS))
        view.line(_system(PROGRESS.replace("1,200,000/", "2,500,000/").replace("(24%)", "(50%)")))
        view.line(_system("insert orders: 5,000,000 rows in 33.0s (151,000 rows/s); 50 shards"))
    lines = _plain(screen.getvalue())
    bars = [line for line in lines if line.startswith("orders ")]
    assert bars and all(len(line) <= 40 for line in bars + [x for x in lines if "run_5f0c" in x])
    assert any("50%" in line and "150,000 rows/s" in line for line in bars)
    assert any("running attempt 1" in line for line in lines)
    # The bar ends when the insert does; the lines themselves scroll above the spinner.
    assert "[seedbed INFO] insert orders: 5,000,000 rows in 33.0s (151,000 rows/s); 50 shards" in lines


def test_off_a_terminal_progress_stays_plain_lines(capsys: pytest.CaptureFixture[str]) -> None:
    console = Console(file=io.StringIO(), force_terminal=False)
    with LogView(Globals(), console=console) as view:
        view.line(_system(PROGRESS))
    assert capsys.readouterr().err == f"[seedbed INFO] {PROGRESS}\n"


def test_the_status_says_what_the_run_is_doing() -> None:
    run = run_pb2.Run(id="run_1", state=run_pb2.RUN_STATE_QUEUED)
    assert run_status(run) == "run_1 queued for a slot"
    run.state = run_pb2.RUN_STATE_RUNNING
    run.attempt_count = 2
    assert run_status(run, "every sandbox slot is busy") == (
        "run_1 attempt 2 waiting for a slot: every sandbox slot is busy"
    )
    run.next_attempt_time.FromSeconds(1_000_004)
    assert run_status(run, now=1_000_000.2) == "run_1 retrying in 4 s (attempt 3 next)"
