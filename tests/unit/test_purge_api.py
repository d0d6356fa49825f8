"""PurgeRun over the API with the fake dispatcher (which runs the worker's purge in-process) against
SQLite targets: the order across connections, connections deleted since, the run's state, the
client and ``seedbed run purge``. The real components: tests/integration/test_purge.py."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import grpc
import pytest

from seedbed.api.v1 import connection_pb2, run_pb2
from seedbed.cli import main
from seedbed.client import Client, ClientError
from seedbed.coordinator.attempt import ledger_key
from seedbed.coordinator.secrets import SecretBox
from seedbed.worker.ledger import AttemptStamp, LedgeredSql
from seedbed.worker.sinks import ConnectionSpec, SqlSink, open_sink

# What the fake attempt reports; the rows themselves are written below, through the real ledger.
# conn_twin is a second connection to the parents' database; conn_gone is deleted since the run.
SCRIPT = """\
batch conn_parents parents 1 0 3
batch conn_children children 2 0 3
batch conn_twin parents 3 0 3
batch conn_gone things 4 0 1
"""


def _sqlite(client: Client, connection_id: str, path: Path) -> None:
    client.create_connection(
        connection_pb2.CreateConnectionRequest(
            connection_id=connection_id, kind=connection_pb2.CONNECTION_KIND_SQL, url=f"sqlite:///{path}"
        )
    )


def _write(
    path: Path, run: run_pb2.Run, key: bytes, call: int, table: str, ids: range, tmp_path: Path
) -> None:
    sink: SqlSink[Any] = open_sink(  # type: ignore[assignment]
        ConnectionSpec("conn_x", "sql", {"url": f"sqlite:///{path}"}), artifacts_dir=tmp_path
    )
    ledger = LedgeredSql(sink, AttemptStamp(run.run_key, run.id, 1, 1, key), report=lambda _: None)
    ledger.insert(call, table, [{"id": i, "parent_id": i} for i in ids])
    sink.close()


def _seeded_run(coordinator: Any, client: Client, tmp_path: Path) -> tuple[str, Path, Path]:
    parents, children = tmp_path / "parents.db", tmp_path / "children.db"
    for db, table in ((parents, "parents"), (children, "children")):
        with sqlite3.connect(db) as conn:
            conn.execute(f"CREATE TABLE {table} (id integer PRIMARY KEY, parent_id integer)")
    _sqlite(client, "conn_parents", parents)
    _sqlite(client, "conn_children", children)
    _sqlite(client, "conn_twin", parents)
    client.put_scenario("seeding", script=SCRIPT)
    run_id = client.run("seeding").run_id
    run = client.wait(run_id)
    assert run.state == run_pb2.RUN_STATE_SUCCESS
    # Written here as the run's worker would: signed with the key the coordinator derives for it.
    settings = coordinator.settings
    key = ledger_key(SecretBox.from_key_or_file(settings.secret_key, settings.data_dir), run.id)
    _write(parents, run, key, 1, "parents", range(3), tmp_path)
    _write(children, run, key, 2, "children", range(3), tmp_path)
    _write(parents, run, key, 3, "parents", range(10, 13), tmp_path)
    return run_id, parents, children


def _count(db: Path, table: str) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def test_purge_goes_through_connections_newest_first(
    fake_coordinator: tuple[Any, Client], tmp_path: Path
) -> None:
    coordinator, client = fake_coordinator
    run_id, parents, children = _seeded_run(coordinator, client, tmp_path)

    dry = client.purge_run(run_id, dry_run=True)
    assert dry.dry_run
    # Newest first: conn_twin's call 3, then conn_children's call 2; conn_parents shares conn_twin's
    # database (and ledger), so its call 1 goes with conn_twin's, counted once.
    expected = [("conn_twin", "parents", 6, 6, 2), ("conn_children", "children", 3, 3, 1)]
    assert [(t.connection_id, t.table, t.rows_deleted, t.rows_recorded, t.batches) for t in dry.targets] == (
        expected
    )
    assert _count(parents, "parents") == 6 and _count(children, "children") == 3

    purged = client.purge_run(run_id)
    assert [
        (t.connection_id, t.table, t.rows_deleted, t.rows_recorded, t.batches) for t in purged.targets
    ] == expected
    assert [(c.connection_id, c.reason.split(":")[0]) for c in purged.skipped_connections] == [
        ("conn_gone", "deleted since the run"),
        ("conn_parents", "same database as conn_twin"),
    ]
    assert not purged.failures and not purged.skipped
    assert _count(parents, "parents") == 0 and _count(children, "children") == 0
    again = client.purge_run(run_id)
    assert not again.targets and not again.failures


def test_purge_refuses_active_and_unknown_runs(fake_coordinator: tuple[Any, Client]) -> None:
    _, client = fake_coordinator
    client.put_scenario("slow", script="sleep 30")
    run_id = client.run("slow").run_id
    with pytest.raises(ClientError) as info:
        client.purge_run(run_id)
    assert info.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert "abort it first or wait for it to end" in info.value.details
    client.abort(run_id)
    client.wait(run_id)
    with pytest.raises(ClientError) as info:
        client.purge_run("run_doesnotexist")
    assert info.value.code == grpc.StatusCode.NOT_FOUND
    with pytest.raises(ClientError) as info:
        client.purge_run("")
    assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT


def test_seedbed_run_purge_prints_tables_and_keeps_files_named_purge_runnable(
    fake_coordinator: tuple[Any, Client], capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: Any
) -> None:
    coordinator, client = fake_coordinator
    address = ["--address", coordinator.address]
    run_id, _, _ = _seeded_run(coordinator, client, tmp_path)
    assert main([*address, "run", "purge", run_id, "--dry-run"]) == 0
    out = capsys.readouterr().out.splitlines()
    # One line, however narrow the output (80 columns here, off a terminal).
    assert out[0] == f"run {run_id}: dry run, nothing deleted; a purge would delete 9 row(s)"
    assert out[2].split() == ["CONNECTION", "TABLE", "WOULD", "DELETE", "RECORDED", "BATCHES"]
    assert [line.split() for line in out[3:5]] == [
        ["conn_twin", "parents", "6", "6", "2"],
        ["conn_children", "children", "3", "3", "1"],
    ]
    assert "  conn_gone: deleted since the run" in "\n".join(out)
    assert main([*address, "run", "purge", run_id, "--yes", "-o", "json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["run_id"] == run_id and document["dry_run"] is False and document["failures"] == []
    assert [int(t["rows_deleted"]) for t in document["targets"]] == [6, 3]
    assert main([*address, "run", "purge", run_id, "--yes"]) == 0
    assert "nothing to purge" in capsys.readouterr().out
    assert main([*address, "run", "purge", run_id]) == 2  # off a terminal: --yes is required
    assert "--yes" in capsys.readouterr().err

    assert main([*address, "run", "purge", "run_nope", "--yes"]) == 5
    assert "NOT_FOUND" in capsys.readouterr().err
    monkeypatch.chdir(tmp_path)
    assert main([*address, "run", "purge"]) == 2
    assert "Missing argument 'RUN'" in capsys.readouterr().err
    (tmp_path / "purge").write_text("print from a file named purge\n")
    assert main([*address, "run", "submit", "purge", "--no-follow"]) == 0
    assert capsys.readouterr().out.strip().startswith("run_")
    # A file named purge is submitted, never taken for `run purge` (whose --yes submit lacks).
    assert main([*address, "run", "submit", "./purge", "--yes"]) == 2
    assert "No such option '--yes'" in capsys.readouterr().err
