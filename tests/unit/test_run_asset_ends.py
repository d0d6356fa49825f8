"""Where a run asset's journey ends early: a file connection's file that cannot be kept when the
attempt ends (said in the run's log), an attempt that ends with an asset half arrived (nothing of it
stays in the store), and an asset removed while it is downloaded (DATA_LOSS over gRPC, a cut
connection over REST, never a short body that looks whole)."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import AsyncGenerator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest

from seedbed.api.v1 import attempt_pb2, run_pb2, scenario_pb2
from seedbed.client import Client, ClientError
from seedbed.coordinator.errors import DataLossError, DispatchError
from seedbed.coordinator.fakes import FakeDispatcher
from seedbed.coordinator.server import running_in_thread
from seedbed.coordinator.store import Store
from seedbed.worker.agent._assets import AssetCollector
from seedbed.worker.agent._budget import MemoryBudget
from seedbed.worker.attempt import execute
from seedbed.worker.sandbox import FakeSandboxDriver, Finished, Outcome, SandboxRequest, Started
from tests.conftest import ADMIN_API_KEY, settings_for
from tests.unit.test_run_assets import _receive, run_store  # noqa: F401 - a fixture

ADMIN = {"Authorization": f"Bearer {ADMIN_API_KEY}"}

# -- the worker: files that cannot be kept when the attempt ends --------------------------------------


def test_a_file_gone_or_changed_by_the_attempts_end_is_said_not_kept(tmp_path: Path) -> None:
    collector = AssetCollector(memory=MemoryBudget(2**20))
    kept, changed, gone, link = (tmp_path / n for n in ("kept.csv", "changed.csv", "gone.csv", "link.csv"))
    for path in (kept, changed, gone):
        path.write_bytes(b"a\n1\n")
        assert collector.file_written("conn_files", path.name, path, 4) is None
    link.symlink_to(kept)
    assert collector.file_written("conn_files", "link.csv", link, 4) is None
    changed.write_bytes(b"a\n1\n2\n")
    gone.unlink()
    said: list[str] = []
    pieces = list(collector.drain_files(said.append))
    assert [p.name for p in pieces] == ["files/conn_files/kept.csv"]
    assert len(said) == 3 and all("of connection 'conn_files' is not kept with the run" in s for s in said)
    by_file = {s.split("'")[1]: s for s in said}
    assert (
        "changed after its write (4 bytes when written, more when the attempt ended)"
        in by_file["changed.csv"]
    )
    assert "could not be read when the attempt ended (No such file or directory)" in by_file["gone.csv"]
    assert "replaced by a symbolic link" in by_file["link.csv"]


class _WritesAFileThenLosesIt:
    """A sandbox whose script's file connection wrote a file that is gone when the attempt ends."""

    def __init__(self, path: Path) -> None:
        self._path = path

    def run(self, request: SandboxRequest, *, cancel: Any = None, on_call: Any = None) -> Iterator[Any]:
        now = datetime.now(UTC)
        yield Started(container_id="fake", image="fake:latest", time=now)
        self._path.write_bytes(b"id\n1\n")
        on_call.assets.file_written("conn_files", "out.csv", self._path, 5)
        self._path.unlink()
        yield Finished(
            outcome=Outcome.SUCCEEDED,
            exit_code=0,
            error=None,
            logs_truncated=False,
            dropped_lines=0,
            warnings=0,
            time=now,
        )


def test_a_file_not_kept_at_the_attempts_end_reaches_the_runs_log(tmp_path: Path) -> None:
    spec = attempt_pb2.AttemptSpec(run_id="run_files", attempt=1, ledger_key=b"k" * 32)
    driver: Any = _WritesAFileThenLosesIt(tmp_path / "out.csv")
    events = list(execute(spec, driver, artifacts_dir=tmp_path / "artifacts"))
    kinds = [e.WhichOneof("event") for e in events]
    assert kinds[-2:] == ["output", "result"] and "asset" not in kinds
    (line,) = events[-2].output.lines
    assert line.stream == run_pb2.LOG_STREAM_SYSTEM and line.level == "warning"
    assert "file 'out.csv' of connection 'conn_files' is not kept with the run" in line.text
    # Nothing said when every file is kept.
    quiet = list(execute(spec, FakeSandboxDriver(), artifacts_dir=tmp_path / "artifacts"))
    assert [e.WhichOneof("event") for e in quiet] == ["started", "output", "result"]


# -- the coordinator: an attempt that ends with an asset half arrived ------------------------------------


def _asset_rows(db: Path, run_id: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as conn:
        assets = conn.execute("SELECT name, complete FROM run_assets WHERE run_id = ?", (run_id,)).fetchall()
        chunks = conn.execute("SELECT name FROM run_asset_chunks WHERE run_id = ?", (run_id,)).fetchall()
    return [*assets, *chunks]


@pytest.mark.parametrize(
    ("script", "said"),
    [
        ("asset-cut half.txt abcdefghij\nprint done", "the attempt ended before its last piece"),
        ("asset-cut half.txt abcdefghij\nlost gone", "the worker was lost before its last piece"),
    ],
)
def test_an_attempt_that_ends_mid_asset_leaves_nothing_of_it(tmp_path: Path, script: str, said: str) -> None:
    db = tmp_path / "seedbed.db"
    settings = settings_for(f"sqlite+aiosqlite:///{db}", tmp_path)
    once = scenario_pb2.ScenarioSettings(retry_policy=scenario_pb2.RetryPolicy(maximum_attempts=1))
    with running_in_thread(settings, FakeDispatcher()) as coordinator, Client(coordinator.address) as client:
        client.put_scenario("cut", script="asset whole.txt whole\n" + script, settings=once)
        run_id = client.run("cut").run_id
        client.wait(run_id)
        lines = [e.line.text for e in client.stream_logs(run_id, follow=False) if hasattr(e, "line")]
    # whole.txt's row, complete, and its two chunks; nothing of half.txt
    assert _asset_rows(db, run_id) == [("whole.txt", 1), ("whole.txt",), ("whole.txt",)]
    assert f"asset 'half.txt' not kept: {said}" in lines


class _NeverStartsAfterTheFirst(FakeDispatcher):
    """Attempt 1 runs its script; every later attempt's worker is lost before it starts."""

    async def execute(self, spec: attempt_pb2.AttemptSpec) -> AsyncGenerator[attempt_pb2.AttemptEvent, None]:
        if spec.attempt > 1:
            raise DispatchError(f"attempt {spec.attempt}: no worker took it")
        async for event in super().execute(spec):
            yield event


def test_an_attempt_that_never_starts_still_clears_the_earlier_attempts_assets(tmp_path: Path) -> None:
    db = tmp_path / "seedbed.db"
    settings = settings_for(f"sqlite+aiosqlite:///{db}", tmp_path)
    twice = scenario_pb2.ScenarioSettings(
        retry_policy=scenario_pb2.RetryPolicy(
            maximum_attempts=2, initial_backoff_seconds=0.05, maximum_backoff_seconds=0.1
        )
    )
    with (
        running_in_thread(settings, _NeverStartsAfterTheFirst()) as coordinator,
        Client(coordinator.address) as client,
    ):
        client.put_scenario("unstarted", script="asset first.txt from-attempt-1\nlost gone", settings=twice)
        run_id = client.run("unstarted").run_id
        run = client.wait(run_id)
        assert run.state == run_pb2.RUN_STATE_FAILED and run.attempt_count == 2
        # Attempt 1's asset is not listed (attempt 2 is the run's) and nothing of it is left behind.
        assert client.run_assets(run_id) == []
    assert _asset_rows(db, run_id) == []


def test_the_receiver_drops_what_is_still_arriving_at_the_end(
    run_store: tuple[Store, str, Any],  # noqa: F811 - the fixture
) -> None:
    from tests.unit.test_run_assets import _pieces

    store, run_id, loop = run_store
    said = loop.run_until_complete(_receive(store, run_id, _pieces("half.txt", b"abcdefghij")[:-1], end=True))
    assert said == ["asset 'half.txt' not kept: the attempt ended before its last piece"]
    assert loop.run_until_complete(store.assets.of_run(run_id)) == []


# -- downloads of an asset removed while it streams ----------------------------------------------------


@pytest.fixture
def kept(tmp_path: Path) -> Iterator[tuple[Client, httpx.Client, str, Path]]:
    """A run that kept report.txt (20 bytes, in 5 chunks) and the store's file."""
    db = tmp_path / "seedbed.db"
    settings = settings_for(f"sqlite+aiosqlite:///{db}", tmp_path)
    with (
        running_in_thread(settings, FakeDispatcher()) as coordinator,
        Client(coordinator.address) as client,
        httpx.Client(base_url=f"http://{coordinator.rest_address}", headers=ADMIN, timeout=30) as http,
    ):
        client.put_scenario("kept", script="asset report.txt 0123456789abcdefghij")
        run_id = client.run("kept").run_id
        assert client.wait(run_id).state == run_pb2.RUN_STATE_SUCCESS
        yield client, http, run_id, db


def _lose_a_chunk(db: Path, run_id: str) -> None:
    """What a purge that runs while a download streams leaves for the download's next read."""
    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM run_asset_chunks WHERE run_id = ? AND idx >= 2", (run_id,))


def test_a_download_of_an_asset_removed_midway_ends_with_data_loss(kept: Any) -> None:
    client, http, run_id, db = kept
    _, chunks = client.download_run_asset(run_id, "report.txt")
    assert b"".join(chunks) == b"0123456789abcdefghij"
    _lose_a_chunk(db, run_id)
    meta, chunks = client.download_run_asset(run_id, "report.txt")
    got = b""
    with pytest.raises(ClientError) as caught:
        for chunk in chunks:
            got += chunk
    assert caught.value.code == grpc.StatusCode.DATA_LOSS
    assert "only 8 of its 20 bytes could be read" in str(caught.value) and got == b"01234567"
    server_log: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = server_log.append  # type: ignore[method-assign]
    logging.getLogger("uvicorn.error").addHandler(handler)
    try:
        with pytest.raises(httpx.RemoteProtocolError):  # REST: the connection ends before Content-Length
            http.get(f"/v1/runs/{run_id}/assets/report.txt")
    finally:
        logging.getLogger("uvicorn.error").removeHandler(handler)
    # Ended as an aborted stream, not as an exception uvicorn logs with a traceback.
    assert server_log and all(r.exc_info is None for r in server_log)
    assert not any("Exception in ASGI application" in r.getMessage() for r in server_log)


def test_closing_a_downloads_chunks_cancels_its_call(tmp_path: Path) -> None:
    """A reader that stops early (the MCP backend past max_bytes) closes the chunks: the call is
    cancelled then, not left streaming until the generator is collected."""
    settings = settings_for(f"sqlite+aiosqlite:///{tmp_path / 'seedbed.db'}", tmp_path)
    with running_in_thread(settings, FakeDispatcher()) as coordinator, Client(coordinator.address) as client:
        client.put_scenario("big", script="asset big.txt " + "x" * 2_000)  # 500 chunks
        run_id = client.run("big").run_id
        assert client.wait(run_id).state == run_pb2.RUN_STATE_SUCCESS
        calls: list[Any] = []
        download = client._runs.DownloadRunAsset

        def kept_call(*args: Any, **kwargs: Any) -> Any:
            calls.append(download(*args, **kwargs))
            return calls[-1]

        client._runs.DownloadRunAsset = kept_call
        meta, chunks = client.download_run_asset(run_id, "big.txt")
        assert meta.size_bytes == 2_000 and next(chunks) == b"xxxx"
        chunks.close()
        assert not calls[0].is_active() and calls[0].code() == grpc.StatusCode.CANCELLED
        # Read to its end, a download's call ends OK.
        _, whole = client.download_run_asset(run_id, "big.txt")
        assert b"".join(whole) == b"x" * 2_000 and calls[1].code() == grpc.StatusCode.OK


def test_the_store_says_data_loss_instead_of_ending_short(kept: Any) -> None:
    _, _, run_id, db = kept
    _lose_a_chunk(db, run_id)

    async def read() -> list[bytes]:
        store = await Store.open(f"sqlite+aiosqlite:///{db}")
        try:
            asset = await store.assets.get(run_id, "report.txt")
            return [c async for c in store.assets.chunks(asset)]
        finally:
            await store.aclose()

    import asyncio

    with pytest.raises(DataLossError, match="removed while it was downloaded"):
        asyncio.run(read())
