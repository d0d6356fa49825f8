"""`seedbed run` on a terminal: a bulk insert's progress lines become one bar drawn in place."""

from __future__ import annotations

import io

import pytest

from seedbed.api.v1 import run_pb2
from seedbed.cli import _main


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _system(text: str) -> run_pb2.LogLine:
    return run_pb2.LogLine(stream=run_pb2.LOG_STREAM_SYSTEM, text=text, level="info")


PROGRESS = "insert orders: 1,200,000/5,000,000 rows (24%), 150,000 rows/s, about 25s left"


def test_progress_lines_redraw_one_bar_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    terminal = _Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    _main.print_line(_system(PROGRESS))
    _main.print_line(_system(PROGRESS.replace("1,200,000", "2,500,000").replace("(24%)", "(50%)")))
    _main.print_line(_system("insert orders: 5,000,000 rows in 33.0s (151,000 rows/s); 50 shards"))
    out = terminal.getvalue()
    assert out.count("\r[seedbed] insert orders [") == 2 and "\n" not in out.split("\r")[1]
    assert "[#######.......................]  24% 1,200,000/5,000,000 rows, 150,000 rows/s, ~25s" in out
    assert "[###############...............]  50% 2,500,000/5,000,000" in out
    # The next ordinary line starts on a line of its own, after the bar.
    assert out.endswith(
        "~25s left\x1b[K\n[seedbed INFO] insert orders: 5,000,000 rows in 33.0s (151,000 rows/s); 50 shards\n"
    )


def test_progress_lines_stay_lines_off_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    plain = io.StringIO()
    monkeypatch.setattr("sys.stderr", plain)
    _main.print_line(_system(PROGRESS))
    assert plain.getvalue() == f"[seedbed INFO] {PROGRESS}\n"
