"""Replaying runs end to end (gRPC → Ray → Docker → agent → real PostgreSQL): the shop's row path
and the bulk path replayed into a second database give the same rows (an md5 over every table's
rows, ordered by key); a replay into the original's own database writes nothing; a bad mapping is
refused; a run whose image was pruned is rebuilt from its recorded inputs, and one whose image can
no longer be rebuilt fails naming it. The mapping's checks alone: tests/unit/test_replay.py."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import docker.errors
import grpc
import psycopg
import pytest

from seedbed.api.v1 import connection_pb2, run_pb2, scenario_pb2
from seedbed.client import Client, ClientError, LogEvent
from seedbed.worker.images import derived_image_tag, image_tag
from seedbed.worker.ledger import LEDGER_TABLE
from tests.conftest import ROOT, scratch_pg

pytestmark = pytest.mark.integration

SHOP = ROOT / "examples" / "shop"
BULK = ROOT / "examples" / "bulk"


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    """One store, a file the tests can read (the replay's store side is tested on both elsewhere)."""
    return f"sqlite+aiosqlite:///{tmp_path / 'seedbed.db'}"


@pytest.fixture
def two_databases() -> Iterator[tuple[str, str]]:
    with scratch_pg(prefix="seedbed_replay_a") as a, scratch_pg(prefix="seedbed_replay_b") as b:
        yield a, b


def _pg(client: Client, connection_id: str, url: str, **bulk: int) -> None:
    client.create_connection(
        connection_pb2.CreateConnectionRequest(
            connection_id=connection_id,
            kind=connection_pb2.CONNECTION_KIND_POSTGRESQL,
            url=url,
            bulk=connection_pb2.BulkOptions(**bulk) if bulk else None,
        )
    )


def _run(client: Client, scenario: str, script: str, params: dict[str, str]) -> run_pb2.Run:
    client.put_scenario(
        scenario,
        script=script,
        settings=scenario_pb2.ScenarioSettings(overlap_policy=scenario_pb2.OVERLAP_POLICY_ALLOW_CONCURRENT),
    )
    run = client.wait(client.run(scenario, params).run_id)
    assert run.state == run_pb2.RUN_STATE_SUCCESS, run.first_error
    return run


def _replay(client: Client, run_id: str, connections: dict[str, str] | None = None) -> run_pb2.Run:
    return client.wait(client.replay_run(run_id, connections or {}).run_id)


def _digest(url: str, table: str) -> tuple[int, str]:
    """Rows and an md5 over every row of ``table`` as text, ordered by its key."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            f"SELECT count(*), md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t.id), '')) FROM {table} t"
        ).fetchone()
    assert row is not None
    return int(row[0]), str(row[1])


def _ledger_rows(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(f"SELECT count(*) FROM {LEDGER_TABLE}").fetchone()
    return int(row[0]) if row else 0


def _logs(client: Client, run_id: str) -> str:
    return "\n".join(e.line.text for e in client.stream_logs(run_id, follow=False) if isinstance(e, LogEvent))


def test_the_shop_replayed_into_another_database_has_the_same_rows_and_into_its_own_writes_nothing(
    coordinator: tuple[Any, Client], two_databases: tuple[str, str]
) -> None:
    _, client = coordinator
    a, b = two_databases
    for path in sorted(SHOP.glob("*.yaml")):
        client.put_template(path.read_text())
    client.upload_file("shop/schema.sql", (SHOP / "schema.sql").read_bytes())
    _pg(client, "conn_shop", a)
    _pg(client, "conn_shop_b", b)
    original = _run(client, "shop", (SHOP / "seed.py").read_text(), {"customers": "300", "orders": "1200"})
    assert original.inputs.image == image_tag()
    assert original.inputs.versions["faker"]

    # The scenario changes afterwards: the replay runs the script as the run ran it.
    client.put_scenario("shop", script="raise SystemExit('not this script')\n")
    replayed = _replay(client, original.id, {"shop": "shop_b"})
    assert replayed.state == run_pb2.RUN_STATE_SUCCESS, replayed.first_error
    assert replayed.replayed_from == original.id
    assert (replayed.run_key, replayed.inputs.image) == (original.run_key, original.inputs.image)
    for table in ("customers", "orders"):
        rows, digest = _digest(a, table)
        assert rows > 0
        assert _digest(b, table) == (rows, digest), table
    # Its batches went to the new connection, written there for the first time.
    batches = client.write_batches(replayed.id)
    assert batches and {x.connection_id for x in batches} == {"conn_shop_b"}
    assert {x.status for x in batches} == {run_pb2.WRITE_BATCH_STATUS_APPLIED}

    # Into the original's own database: every batch is in its ledger already, nothing is written.
    before = {t: _digest(a, t) for t in ("customers", "orders")}
    ledger = _ledger_rows(a)
    same = _replay(client, original.id)
    assert same.state == run_pb2.RUN_STATE_SUCCESS, same.first_error
    statuses = {x.status for x in client.write_batches(same.id)}
    assert statuses == {run_pb2.WRITE_BATCH_STATUS_REPLAYED}
    assert {t: _digest(a, t) for t in ("customers", "orders")} == before
    assert _ledger_rows(a) == ledger

    # A bad mapping starts nothing.
    runs_before = len(client.list_runs("shop", 100))
    for mapping, words in (
        ({"shop": "nowhere"}, "'conn_nowhere' does not exist"),
        ({"warehouse": "shop_b"}, "never used a connection 'conn_warehouse'"),
    ):
        with pytest.raises(ClientError) as info:
            client.replay_run(original.id, mapping)
        assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT and words in info.value.details
    assert len(client.list_runs("shop", 100)) == runs_before


def test_a_bulk_seed_replayed_into_another_database_has_the_same_rows(
    coordinator: tuple[Any, Client], two_databases: tuple[str, str]
) -> None:
    _, client = coordinator
    a, b = two_databases
    schema = (BULK / "schema.sql").read_text()
    for url in (a, b):
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(schema)
    client.put_template((BULK / "customer.yaml").read_text())
    client.put_template((BULK / "order.yaml").read_text())
    _pg(client, "conn_warehouse", a, writers=2)
    _pg(client, "conn_warehouse_b", b, writers=2)
    original = _run(client, "bulk", (BULK / "seed.py").read_text(), {"customers": "25000", "orders": "60000"})
    replayed = _replay(client, original.id, {"warehouse": "warehouse_b"})
    assert replayed.state == run_pb2.RUN_STATE_SUCCESS, replayed.first_error
    for table in ("customers", "orders"):
        rows, digest = _digest(a, table)
        assert rows == (25000 if table == "customers" else 60000)
        assert _digest(b, table) == (rows, digest), table


def _exists(docker_client: docker.DockerClient, tag: str) -> bool:
    try:
        docker_client.images.get(tag)
    except docker.errors.ImageNotFound:
        return False
    return True


def test_a_pruned_image_is_rebuilt_and_one_that_cannot_be_fails_naming_it(
    coordinator: tuple[Any, Client], docker_client: docker.DockerClient, tmp_path: Path
) -> None:
    _, client = coordinator
    pins = ["tabulate==0.8.10"]
    script = "# requirements: tabulate==0.8.10\nfrom tabulate import tabulate\nprint(tabulate([['a', 1]]))\n"
    original = _run(client, "derived", script, {})
    tag = derived_image_tag(image_tag(), pins)
    assert original.inputs.image == tag

    docker_client.images.remove(tag, force=True)
    assert not _exists(docker_client, tag)
    replayed = _replay(client, original.id)
    assert replayed.state == run_pb2.RUN_STATE_SUCCESS, replayed.first_error
    assert replayed.inputs.image == tag and _exists(docker_client, tag)
    assert "building image with 1 extra package" in _logs(client, replayed.id)

    # A run recorded in an image whose inputs are gone (another SDK, another Dockerfile).
    gone = "seedbed-python:000000000000"
    with sqlite3.connect(tmp_path / "seedbed.db") as db:
        db.execute("UPDATE runs SET image = ? WHERE id = ?", (gone, original.id))
    failed = _replay(client, original.id)
    assert failed.state == run_pb2.RUN_STATE_FAILED
    assert failed.first_error.reason == run_pb2.FAILURE_REASON_INFRASTRUCTURE
    assert f"ran in image {gone}, which this worker does not have and cannot rebuild" in (
        failed.first_error.message
    )
    assert f"now give {tag}" in failed.first_error.message


def test_a_worker_with_another_faker_release_refuses_the_replay_naming_both(
    coordinator: tuple[Any, Client], tmp_path: Path
) -> None:
    _, client = coordinator
    original = _run(client, "hello", "print('hello')\n", {})
    faker = original.inputs.versions["faker"]
    # As if the run had been generated by a worker with another Faker release.
    with sqlite3.connect(tmp_path / "seedbed.db") as db:
        db.execute(
            "UPDATE runs SET details = json_set(details, '$.versions.faker', '0.0.1') WHERE id = ?",
            (original.id,),
        )
    assert client.get_run(original.id).inputs.versions["faker"] == "0.0.1"
    failed = _replay(client, original.id)
    assert failed.state == run_pb2.RUN_STATE_FAILED
    assert failed.first_error.type == "ReplayRefused"
    assert f"run {original.id} was generated with Faker release 0.0.1; this worker has {faker}" in (
        failed.first_error.message
    )
    stdout = [
        e.line.text
        for e in client.stream_logs(failed.id, follow=False)
        if isinstance(e, LogEvent) and e.line.stream == run_pb2.LOG_STREAM_STDOUT
    ]
    assert stdout == []  # no sandbox ran the script
