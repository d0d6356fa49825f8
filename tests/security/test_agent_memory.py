"""Finding 2 of issue 10: one attempt makes the trusted worker hold gigabytes with small calls.

Three ways a script makes the agent keep what it sends or asks for: lists uploaded into buffers and
never used, generated rows (kept for later `ref` fields), and call frames queued behind a slow call.
Each must run into the attempt's memory budget (`SEEDBED_AGENT_MEMORY_BYTES`, small here): the call
past it fails with `LimitExceeded` naming the budget and the setting, the run ends FAILED with a
script error, and the resident memory of the Ray worker process serving the attempt stays bounded
while the attack runs.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from seedbed.api.v1 import connection_pb2, run_pb2, scenario_pb2
from seedbed.client import Client
from seedbed.coordinator import running_in_thread
from tests.conftest import eventually, settings_for

pytestmark = pytest.mark.integration

MiB = 2**20
BUDGET = 64 * MiB
# Interpreter overhead, one call's transient copies (a frame being parsed, a reply being encoded).
ALLOWANCE = 300 * MiB


@pytest.fixture
def small_budget(ray_session: None, tmp_path: Path) -> Iterator[Client]:
    """A real coordinator (SQLite store: the store plays no part here) with a 64 MiB budget."""
    settings = settings_for(
        f"sqlite+aiosqlite:///{tmp_path / 'seedbed.db'}", tmp_path, agent_memory_bytes=BUDGET
    )
    with running_in_thread(settings) as coord, Client(coord.address) as client:
        yield client


def _rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for process {pid}")


class _Sampler:
    """The resident memory of the Ray worker that runs the attempt, sampled while it runs."""

    def __init__(self, client: Client, run_id: str) -> None:
        self.client = client
        self.run_id = run_id
        self.pid = 0
        self.baseline = 0
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _started(self) -> bool:
        run = self.client.get_run(self.run_id)
        assert run.attempts and run.attempts[-1].worker_pid, "the attempt has not started yet"
        self.pid = run.attempts[-1].worker_pid
        return True

    def __enter__(self) -> _Sampler:
        eventually(self._started, timeout=120)
        self.baseline = self.peak = _rss(self.pid)
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.wait(0.05):
            try:
                self.peak = max(self.peak, _rss(self.pid))
            except (OSError, AssertionError):
                return

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def growth(self) -> int:
        return self.peak - self.baseline


def _attack(
    client: Client, script: str, connection: connection_pb2.CreateConnectionRequest | None = None
) -> None:
    if connection is not None:
        client.create_connection(connection)
    client.put_scenario(
        "hog",
        script=script,
        settings=scenario_pb2.ScenarioSettings(overlap_policy=scenario_pb2.OVERLAP_POLICY_ALLOW_CONCURRENT),
    )
    run_id = client.run("hog", {}).run_id
    with _Sampler(client, run_id) as sampler:
        run = client.wait(run_id)
    assert sampler.growth < BUDGET + ALLOWANCE, (
        f"the worker grew by {sampler.growth / MiB:.0f} MiB (from {sampler.baseline / MiB:.0f} MiB) "
        f"under a budget of {BUDGET / MiB:.0f} MiB; the run ended {run_pb2.RunState.Name(run.state)}"
    )
    assert run.state == run_pb2.RUN_STATE_FAILED, run
    assert run.first_error.reason == run_pb2.FAILURE_REASON_SCRIPT_ERROR, run.first_error
    assert run.first_error.type == "LimitExceeded", run.first_error
    message = run.first_error.message
    assert "the limit is 64 MiB (SEEDBED_AGENT_MEMORY_BYTES)" in message, message
    assert "buffers, queued calls and generated rows kept for refs" in message, message


# 1.5 GB uploaded into one buffer, 6 MB a call, never used.
PARK_BUFFERS = """
from seedbed.sdk import _context
chunk = ["p" * 1_000_000 + str(i) for i in range(6)]
handle = None
for _ in range(250):
    handle = _context.call("buffer.put", {"handle": handle, "items": chunk})["handle"]
print("parked")
"""


def test_parked_buffers_run_into_the_budget(small_budget: Client) -> None:
    _attack(small_budget, PARK_BUFFERS)


# 45 MB of distinct rows per call, kept for refs: 40 calls make 1.8 GB.
WIDE_ROWS = (
    "id: tmpl_wide\nversion: 1\nfields:\n  n: {sequence: {}}\n"
    + '  pad: {const: "'
    + "w" * 60_000
    + '"}\n'
    + "".join(f'  c{i}: {{compute: "{{pad}}{{n}}"}}\n' for i in range(15))
)
# Columns are kept only when some template of the run refers to them (this one refers to them all),
# and only once a row draws from them: a computed column is not derived from the row index, so it
# is made and held.
WIDE_REFS = "id: tmpl_wide_refs\nversion: 1\nfields:\n" + "".join(
    f"  r{i}: {{ref: {{template: tmpl_wide, field: c{i}}}}}\n" for i in range(15)
)
KEEP_ROWS = """
from seedbed.sdk import Seedbed
dm = Seedbed()
for _ in range(40):
    dm.generate("tmpl_wide", count=50)
# Each row drawn refers to one of the 40 row sets: the columns it refers to are made and kept.
print(len(list(dm.generate("tmpl_wide_refs", count=40))))
print("kept")
"""


def test_rows_kept_for_refs_run_into_the_budget(small_budget: Client) -> None:
    small_budget.put_template(WIDE_ROWS)
    small_budget.put_template(WIDE_REFS)
    _attack(small_budget, KEEP_ROWS)


# While one slow query runs, 200 call frames of 7 MB are written straight to the channel (no thread
# waits for their replies); then one real call of the same size.
QUEUE_FRAMES = """
import threading
from seedbed.sdk import Seedbed, _context

db = Seedbed().connection("conn_slow")
slow = threading.Thread(
    target=db.fetch,
    args=("WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 200000000) "
          "SELECT max(n) AS n FROM c",),
    daemon=True,
)
slow.start()
channel = _context.current.channel
big = ["q" * 7_000_000]
for i in range(200):
    frame = {"handle": "nowhere", "items": big}
    channel.send({"t": "call", "id": 1_000_000 + i, "op": "buffer.put", "args": frame})
_context.call("buffer.put", {"handle": None, "items": big})
print("queued")
"""


def test_queued_frames_run_into_the_budget(small_budget: Client, tmp_path: Path) -> None:
    db = tmp_path / "slow.db"
    sqlite3.connect(db).close()
    connection = connection_pb2.CreateConnectionRequest(
        connection_id="conn_slow", kind=connection_pb2.CONNECTION_KIND_SQL, url=f"sqlite:///{db}"
    )
    started = time.monotonic()
    _attack(small_budget, QUEUE_FRAMES, connection)
    # The refusal came at once, not after the slow query: the slow query was stopped at the end.
    assert time.monotonic() - started < 120
