"""Purge everywhere it can be undone, through the real stack (coordinator, Ray, Docker, PostgreSQL, a
real HTTP target): upserted rows put back or deleted, a row changed since left and listed, REST
resources deleted through the declared undo newest first, a REST connection without one listed,
files removed; the periodic pass purging runs past their scenario's time to live; and a pass
interrupted by a coordinator restart resuming without purging anything twice."""

from __future__ import annotations

import secrets
import sqlite3
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest

from seedbed.api.v1 import connection_pb2, run_pb2, scenario_pb2
from seedbed.client import Client
from seedbed.coordinator import running_in_thread
from seedbed.worker.settings import worker_settings
from tests.conftest import eventually, pg_admin_url, settings_for
from tests.faults.rest_target import RestTarget
from tests.faults.server_process import CoordinatorProcess
from tests.integration.test_seeding import SHOP, _logs, _setup

pytestmark = pytest.mark.integration

THINGS = "CREATE TABLE things (id integer PRIMARY KEY, name text NOT NULL, price numeric(10, 2), born date)"

SCRIPT = """
from seedbed.sdk import Seedbed

dm = Seedbed()
db = dm.connection("conn_pg")
rows = [{"id": i, "name": f"run {i}", "price": i * 1.5} for i in (1, 2, 3, 10, 11)]
db.insert("things", rows, on_conflict="update", key=["id"])
dm.connection("conn_api").post("/things", [{"id": 100 + i, "n": i} for i in range(3)], mode="single")
dm.connection("conn_api").post("/batches", [{"id": 200 + i} for i in range(4)], mode="batch")
dm.connection("conn_plain").post("/kept", [{"id": 1}])
dm.connection("conn_files").write("report.csv", rows)
print("done")
"""


@pytest.fixture
def target() -> Iterator[str]:
    """A fresh PostgreSQL database with `things` holding rows from before any run; its URL."""
    admin = pg_admin_url()
    name = f"seedbed_purge_{secrets.token_hex(5)}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = f"{admin.rpartition('/')[0]}/{name}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(THINGS)
        conn.execute(
            "INSERT INTO things VALUES (1, 'one', 9.99, '2001-02-03'), (2, 'two', NULL, NULL),"
            " (3, 'three', 3.00, '1999-12-31'), (50, 'not the run''s', 1, NULL)"
        )
    yield url
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _things(url: str) -> dict[int, tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return {r[0]: r[1:] for r in conn.execute("SELECT * FROM things ORDER BY id").fetchall()}


def _connections(client: Client, url: str, api: RestTarget | None) -> None:
    client.create_connection(
        connection_pb2.CreateConnectionRequest(
            connection_id="conn_pg", kind=connection_pb2.CONNECTION_KIND_POSTGRESQL, url=url
        )
    )
    if api is None:
        return
    for connection_id, undo in (("conn_api", "DELETE {path}/{id}"), ("conn_plain", "")):
        client.create_connection(
            connection_pb2.CreateConnectionRequest(
                connection_id=connection_id,
                kind=connection_pb2.CONNECTION_KIND_REST,
                rest=connection_pb2.RestOptions(base_url=api.url, batch_size=2, undo=undo),
            )
        )
    client.create_connection(
        connection_pb2.CreateConnectionRequest(
            connection_id="conn_files", kind=connection_pb2.CONNECTION_KIND_FILE
        )
    )


def _settings(purge_after: int = 0) -> scenario_pb2.ScenarioSettings:
    return scenario_pb2.ScenarioSettings(
        overlap_policy=scenario_pb2.OVERLAP_POLICY_ALLOW_CONCURRENT, purge_after_seconds=purge_after
    )


def test_a_run_is_undone_everywhere_it_can_be_and_the_rest_is_listed(
    coordinator: tuple[Any, Client], target: str
) -> None:
    _, client = coordinator
    before = _things(target)
    with RestTarget() as api:
        _connections(client, target, api)
        client.put_scenario("everywhere", script=SCRIPT, settings=_settings())
        run = client.wait(client.run("everywhere").run_id)
        assert run.state == run_pb2.RUN_STATE_SUCCESS, (run.first_error, _logs(client, run.id))
        report = worker_settings().artifacts_dir / run.id / "conn_files" / "report.csv"
        assert report.is_file()
        assert len(api.rows("/things")) == 3 and len(api.rows("/batches")) == 4
        # Someone changes a row the run upserted, after the run.
        with psycopg.connect(target, autocommit=True) as conn:
            conn.execute("UPDATE things SET name = 'edited by hand' WHERE id = 2")

        dry = client.purge_run(run.id, dry_run=True)
        assert dry.dry_run and not dry.failures and report.is_file()
        assert len(api.rows("/things")) == 3 and len(_things(target)) == 6

        done = client.purge_run(run.id)
        assert not done.failures, done.failures
        by_target = {(t.connection_id, t.table): t for t in done.targets}
        things = by_target[("conn_pg", "things")]
        assert (things.rows_deleted, things.rows_restored, things.rows_changed) == (2, 2, 1)
        assert [(r.connection_id, r.table, r.key) for r in done.rows_left] == [("conn_pg", "things", "[2]")]
        assert "changed since the run wrote it" in done.rows_left[0].reason
        assert by_target[("conn_api", "/things")].rows_deleted == 3
        assert by_target[("conn_api", "/batches")].rows_deleted == 4
        assert by_target[("conn_files", "report.csv")].rows_deleted == 1
        assert not report.parent.parent.exists()  # the connection's folder and the run's, once empty
        assert [(c.connection_id, "declares no undo" in c.reason) for c in done.skipped_connections] == [
            ("conn_plain", True)
        ]
        # The run's rows are gone, the rows it changed are as they were, the one changed since stays.
        after = _things(target)
        assert after == {**before, 2: ("edited by hand", Decimal("3.00"), None)}
        assert api.rows("/things") == [] and api.rows("/batches") == [] and api.rows("/kept") == [{"id": 1}]
        deletes = [r.path for r in api.requests_made("DELETE")]
        assert deletes == [
            *(f"/batches/{200 + i}" for i in (3, 2, 1, 0)),
            *(f"/things/{100 + i}" for i in (2, 1, 0)),
        ]
        assert not report.exists()

    purges = client.list_purges(run.id)
    assert [(p.trigger, p.state, p.attempts) for p in purges] == [("request", run_pb2.PURGE_STATE_DONE, 1)]
    assert purges[0].result.targets == done.targets
    eventually(lambda: "put back 2 rows an upsert changed" in _logs(client, run.id))


def test_a_run_of_the_shop_example_as_the_demo_makes_it_is_purged_whole(
    coordinator: tuple[Any, Client], tmp_path: Path
) -> None:
    """The demo's run (SQLite, upserts with on_conflict="ignore") used to purge nothing."""
    _, client = coordinator
    _setup(client)
    client.upload_file("shop/schema.sql", (SHOP / "schema.sql").read_bytes(), overwrite=True)
    database = tmp_path / "shop.db"
    client.create_connection(
        connection_pb2.CreateConnectionRequest(
            connection_id="conn_shop", kind=connection_pb2.CONNECTION_KIND_SQL, url=f"sqlite:///{database}"
        )
    )
    client.put_scenario("shop", script=(SHOP / "seed.py").read_text(), settings=_settings())
    run = client.wait(client.run("shop", {"customers": "20", "orders": "50"}).run_id)
    assert run.state == run_pb2.RUN_STATE_SUCCESS, (run.first_error, _logs(client, run.id))

    done = client.purge_run(run.id)
    assert not done.failures and not done.skipped_connections
    assert [(t.table, t.rows_deleted) for t in done.targets] == [("orders", 50), ("customers", 20)]
    assert {s.operation for s in done.skipped} == {"execute"}  # the schema's statements
    with sqlite3.connect(database) as conn:
        assert conn.execute(
            "SELECT (SELECT count(*) FROM customers) + (SELECT count(*) FROM orders)"
        ).fetchone() == (0,)


def test_the_periodic_pass_purges_runs_past_their_time_to_live_once(
    ray_session: None, store_url: str, tmp_path: Path, target: str
) -> None:
    settings = settings_for(store_url, tmp_path, purge_interval_seconds=0.5)
    script = (
        "from seedbed.sdk import Seedbed\n"
        "dm = Seedbed()\n"
        "rows = [{'id': 500, 'name': 'ttl'}]\n"
        "dm.connection('conn_pg').insert('things', rows, on_conflict='ignore', key=['id'])\n"
    )
    with running_in_thread(settings) as coordinator, Client(coordinator.address) as client:
        _connections(client, target, None)
        client.put_scenario("short", script=script, settings=_settings(purge_after=2))
        client.put_scenario(
            "long", script=script.replace("500", "600"), settings=_settings(purge_after=86_400)
        )
        short = client.wait(client.run("short").run_id)
        long = client.wait(client.run("long").run_id)
        assert short.state == long.state == run_pb2.RUN_STATE_SUCCESS, _logs(client, short.id)
        assert {500, 600} <= set(_things(target))

        def purged(run_id: str) -> run_pb2.PurgeRecord:
            found = client.list_purges(run_id)
            assert found and found[0].state == run_pb2.PURGE_STATE_DONE
            return found[0]

        record = eventually(lambda: purged(short.id), timeout=60)
        assert (record.trigger, record.attempts) == ("ttl", 1)
        assert [(t.table, t.rows_deleted) for t in record.result.targets] == [("things", 1)]
        assert 500 not in _things(target) and 600 in _things(target)  # the other is not due
        assert client.list_purges(long.id) == []
        # Later passes (one purges the next run) leave a DONE run alone.
        again = client.wait(client.run("short").run_id)
        eventually(lambda: purged(again.id), timeout=60)
        assert sorted((p.run_id, p.attempts) for p in client.list_purges()) == sorted(
            [(short.id, 1), (again.id, 1)]
        )


def test_a_ttl_purge_interrupted_by_a_restart_resumes_and_purges_nothing_twice(
    tmp_path: Path, target: str
) -> None:
    with psycopg.connect(target, autocommit=True) as conn:
        conn.execute("CREATE TABLE a (id integer PRIMARY KEY); CREATE TABLE b (id integer PRIMARY KEY)")
        conn.execute("CREATE TABLE c (id integer PRIMARY KEY)")
    script = (
        "from seedbed.sdk import Seedbed\n"
        "dm = Seedbed()\n"
        "db = dm.connection('conn_pg')\n"
        "for table in ('a', 'b', 'c'):\n"
        "    db.insert(table, [{'id': i} for i in range(10)])\n"
    )
    env = {"SEEDBED_PURGE_INTERVAL_SECONDS": "0.5", "SEEDBED_PURGE_LEASE_SECONDS": "3"}
    with CoordinatorProcess(tmp_path / "coordinator", env) as process:
        with Client(process.address) as client:
            _connections(client, target, None)
            client.put_scenario("ttl", script=script, settings=_settings(purge_after=3))
            run = client.wait(client.run("ttl").run_id)
            assert run.state == run_pb2.RUN_STATE_SUCCESS, _logs(client, run.id)
            # Hold table b: the purge (newest first: c, b, a) deletes c's rows, then waits on b.
            holder = psycopg.connect(target)
            holder.execute("LOCK TABLE b IN ACCESS EXCLUSIVE MODE")
            eventually(lambda: _count(target, "c") == 0, timeout=60)
            first = client.list_purges(run.id)
            assert [(p.state, p.attempts) for p in first] == [(run_pb2.PURGE_STATE_RUNNING, 1)]
        process.kill(ray_too=True)  # mid-purge: the worker's transaction on b dies with it
        holder.rollback()
        holder.close()
        assert (_count(target, "a"), _count(target, "b"), _count(target, "c")) == (10, 10, 0)

        process.start()
        with Client(process.address) as client:

            def resumed() -> run_pb2.PurgeRecord:
                found = client.list_purges(run.id)
                assert found and found[0].state == run_pb2.PURGE_STATE_DONE
                return found[0]

            record = eventually(resumed, timeout=120)
            assert (record.trigger, record.attempts) == ("ttl", 2)
            # c was purged before the restart and not again: the resumed purge found b and a only.
            assert [(t.table, t.rows_deleted) for t in record.result.targets] == [("b", 10), ("a", 10)]
            assert (_count(target, "a"), _count(target, "b"), _count(target, "c")) == (0, 0, 0)
            assert _count(target, "things") == 4  # nothing else touched


def _count(url: str, table: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
    assert row is not None
    return int(row[0])


def test_a_replay_is_purged_where_it_wrote_and_leaves_the_original_s_rows(
    coordinator: tuple[Any, Client], target: str
) -> None:
    """A replay signs its ledger rows for the run it replays: its purge reads them so, and through
    the original's own database (where it wrote nothing) it removes nothing."""
    _, client = coordinator
    with psycopg.connect(target, autocommit=True) as conn:
        conn.execute("CREATE DATABASE " + f'"{target.rpartition("/")[2]}_b"')
    other = f"{target}_b"
    try:
        with psycopg.connect(other, autocommit=True) as conn:
            conn.execute(THINGS)
        _connections(client, target, None)
        client.create_connection(
            connection_pb2.CreateConnectionRequest(
                connection_id="conn_pg_b", kind=connection_pb2.CONNECTION_KIND_POSTGRESQL, url=other
            )
        )
        script = (
            "from seedbed.sdk import Seedbed\n"
            "dm = Seedbed()\n"
            "dm.connection('conn_pg').insert('things', [{'id': 700 + i, 'name': 'r'} for i in range(5)])\n"
        )
        client.put_scenario("replayed", script=script, settings=_settings())
        original = client.wait(client.run("replayed").run_id)
        assert original.state == run_pb2.RUN_STATE_SUCCESS, _logs(client, original.id)
        moved = client.wait(client.replay_run(original.id, {"pg": "pg_b"}).run_id)
        same = client.wait(client.replay_run(original.id).run_id)
        assert moved.state == same.state == run_pb2.RUN_STATE_SUCCESS

        into_same = client.purge_run(same.id)
        assert not into_same.targets and not into_same.failures
        assert ["wrote nothing through it" in c.reason for c in into_same.skipped_connections] == [True]
        moved_purge = client.purge_run(moved.id)
        assert [(t.connection_id, t.rows_deleted) for t in moved_purge.targets] == [("conn_pg_b", 5)]
        assert _count(other, "things") == 0 and _count(target, "things") == 9  # the original's stay
    finally:
        admin = pg_admin_url()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{other.rpartition("/")[2]}" WITH (FORCE)')
