"""PurgeRun over the API with the fake dispatcher (which runs the worker's purge in-process) against
SQLite targets: the order across connections, connections deleted since, the run's state, the
client and ``seedbed run purge``. The real components: tests/integration/test_purge.py."""

from __future__ import annotations

import asyncio
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
from seedbed.coordinator.store import Store
from seedbed.coordinator.store import _schema as schema
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
    # DONE: asked again, the purge answers its record and does nothing.
    again = client.purge_run(run_id)
    assert again == purged
    assert [(p.trigger, p.attempts) for p in client.list_purges(run_id)] == [("request", 1)]


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
    # DONE: purging again answers what the purge did, and does nothing.
    assert main([*address, "run", "purge", run_id, "--yes"]) == 0
    assert f"run {run_id}: purged 9 row(s)" in capsys.readouterr().out
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


# A replay shares its original's ledger identity (run key, rows signed for the original).
REPLAYED_SCRIPT = """\
batch conn_parents parents 1 0 3
batch conn_parents parents 2 0 3
batch conn_rest /things 3 0 2
"""


def _statuses(coordinator: Any, changes: dict[tuple[str, int], str | None]) -> None:
    """Set what each run reported for a call: APPLIED, REPLAYED, or None (never reached)."""
    url = coordinator.settings.resolved_store_url()
    c = schema.write_batches.c

    async def change() -> None:
        store = await Store.open(url)
        try:
            async with store._write() as conn:
                for (run_id, call), status in changes.items():
                    where = (c.run_id == run_id, c.call == call)
                    if status is None:
                        await conn.execute(schema.write_batches.delete().where(*where))
                    else:
                        await conn.execute(schema.write_batches.update().where(*where).values(status=status))
        finally:
            await store.aclose()

    asyncio.run(change())


def _created(coordinator: Any, run_id: str, ids: list[str]) -> None:
    async def add() -> None:
        store = await Store.open(coordinator.settings.resolved_store_url())
        try:
            await store.purges.add_created(run_id, 1, "conn_rest", 3, 0, "/things", ids)
        finally:
            await store.aclose()

    asyncio.run(add())


def _replayed(coordinator: Any, client: Client, tmp_path: Path) -> tuple[run_pb2.Run, run_pb2.Run, Path]:
    """Run R wrote call 1 and failed before call 2; its replay R2 into the same targets found call 1
    (REPLAYED) and wrote call 2 (APPLIED), signed for R like every replay's."""
    parents = tmp_path / "parents.db"
    with sqlite3.connect(parents) as conn:
        conn.execute("CREATE TABLE parents (id integer PRIMARY KEY, parent_id integer)")
    _sqlite(client, "conn_parents", parents)
    client.create_connection(
        connection_pb2.CreateConnectionRequest(
            connection_id="conn_rest",
            kind=connection_pb2.CONNECTION_KIND_REST,
            rest=connection_pb2.RestOptions(base_url="http://127.0.0.1:9/api", undo="DELETE /things/{id}"),
        )
    )
    client.put_scenario("seeding", script=REPLAYED_SCRIPT)
    original = client.wait(client.run("seeding").run_id)
    replay = client.wait(client.replay_run(original.id).run_id)
    assert replay.inputs.ledger_run_id == original.id
    _statuses(coordinator, {(original.id, 2): None, (replay.id, 1): "REPLAYED"})
    settings = coordinator.settings
    key = ledger_key(SecretBox.from_key_or_file(settings.secret_key, settings.data_dir), original.id)
    _write(parents, original, key, 1, "parents", range(3), tmp_path)
    _write(parents, original, key, 2, "parents", range(10, 13), tmp_path)  # the replay's, signed for R
    return original, replay, parents


def _ids(db: Path) -> list[int]:
    with sqlite3.connect(db) as conn:
        return [int(r[0]) for r in conn.execute("SELECT id FROM parents ORDER BY id")]


def test_purging_a_replay_deletes_only_what_it_applied_and_the_original_only_its_own(
    fake_coordinator: tuple[Any, Client], tmp_path: Path
) -> None:
    coordinator, client = fake_coordinator
    original, replay, parents = _replayed(coordinator, client, tmp_path)
    client.delete_connection("conn_rest")  # REST: the test below

    dry = client.purge_run(replay.id, dry_run=True)
    assert [(t.table, t.rows_deleted, t.batches) for t in dry.targets] == [("parents", 3, 1)]
    assert [(s.target, s.call, s.reason) for s in dry.skipped] == [
        (
            "parents",
            1,
            "1 batch written by another run of the same data set (the original or a replay): purge that run",
        )
    ]
    purged = client.purge_run(replay.id)
    assert [(t.table, t.rows_deleted, t.batches) for t in purged.targets] == [("parents", 3, 1)]
    assert not purged.failures and len(purged.skipped) == 1
    assert _ids(parents) == [0, 1, 2]  # the original's rows stay

    assert [(t.table, t.rows_deleted) for t in client.purge_run(original.id, dry_run=True).targets] == [
        ("parents", 3)
    ]
    done = client.purge_run(original.id)
    assert [(t.table, t.rows_deleted) for t in done.targets] == [("parents", 3)] and not done.skipped
    assert _ids(parents) == []


def test_the_original_purged_first_leaves_its_replays_rows(
    fake_coordinator: tuple[Any, Client], tmp_path: Path
) -> None:
    coordinator, client = fake_coordinator
    original, replay, parents = _replayed(coordinator, client, tmp_path)
    client.delete_connection("conn_rest")
    done = client.purge_run(original.id)
    assert [(t.table, t.rows_deleted) for t in done.targets] == [("parents", 3)]
    assert _ids(parents) == [10, 11, 12]


def test_a_done_purge_is_not_done_again_after_a_replay_into_the_same_targets(
    fake_coordinator: tuple[Any, Client], tmp_path: Path
) -> None:
    """Purge R, replay R into the same database (as the README advises), purge R again: the
    replay's rows stay, and the answer is the first purge's."""
    coordinator, client = fake_coordinator
    parents = tmp_path / "parents.db"
    with sqlite3.connect(parents) as conn:
        conn.execute("CREATE TABLE parents (id integer PRIMARY KEY, parent_id integer)")
    _sqlite(client, "conn_parents", parents)
    client.put_scenario("seeding", script="batch conn_parents parents 1 0 3\n")
    original = client.wait(client.run("seeding").run_id)
    settings = coordinator.settings
    key = ledger_key(SecretBox.from_key_or_file(settings.secret_key, settings.data_dir), original.id)
    _write(parents, original, key, 1, "parents", range(3), tmp_path)
    first = client.purge_run(original.id)
    assert [(t.table, t.rows_deleted) for t in first.targets] == [("parents", 3)] and _ids(parents) == []

    client.wait(client.replay_run(original.id).run_id)
    _write(parents, original, key, 1, "parents", range(3), tmp_path)  # the replay's rows, signed for R
    again = client.purge_run(original.id)
    assert again == first
    assert _ids(parents) == [0, 1, 2]
    assert [(p.state, p.attempts) for p in client.list_purges(original.id)] == [(run_pb2.PURGE_STATE_DONE, 1)]


def test_purging_a_replay_leaves_the_rest_resources_the_target_answered_with_the_originals(
    fake_coordinator: tuple[Any, Client], tmp_path: Path
) -> None:
    coordinator, client = fake_coordinator
    original, replay, _ = _replayed(coordinator, client, tmp_path)
    client.delete_connection("conn_parents")
    # The target honours Idempotency-Keys: the replay's post was answered with R's resources.
    _created(coordinator, original.id, ["a1", "a2"])
    _created(coordinator, replay.id, ["a1", "a2"])

    dry = client.purge_run(replay.id, dry_run=True)
    assert [(t.table, t.rows_deleted) for t in dry.targets] == [("/things", 0)] or not dry.targets
    assert [(r.table, r.key, r.reason) for r in dry.rows_left] == [
        (
            "/things",
            key,
            f"created by run {original.id}: the target answered this run's idempotency key with the "
            f"original's resource; purge {original.id}",
        )
        for key in ("a1", "a2")
    ]
    mine = client.purge_run(original.id, dry_run=True)
    assert [(t.table, t.rows_deleted) for t in mine.targets] == [("/things", 2)] and not mine.rows_left
