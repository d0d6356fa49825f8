"""Bulk options of PostgreSQL connections, end to end: validated at create, stored, answered, copied
into the snapshot an attempt gets, and handed to the sink by the worker (real gRPC server and store,
fake executor; SQLite and PostgreSQL stores)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from cryptography.fernet import Fernet
from sqlalchemy.ext.asyncio import create_async_engine

from seedbed.api.v1 import attempt_pb2, connection_pb2
from seedbed.client import Client, ClientError
from seedbed.coordinator import store as store_package
from seedbed.coordinator.connections import run_snapshot
from seedbed.coordinator.secrets import SecretBox
from seedbed.coordinator.store import Store, normalize_url
from seedbed.coordinator.store.catalog import ConnectionRecord
from seedbed.worker.agent._connections import to_spec
from tests.conftest import ADMIN_API_KEY

PG_URL = "postgresql://app@db.example:5432/shop"


def _pg(connection_id: str, **bulk: int) -> connection_pb2.CreateConnectionRequest:
    return connection_pb2.CreateConnectionRequest(
        connection_id=connection_id,
        kind=connection_pb2.CONNECTION_KIND_POSTGRESQL,
        url=PG_URL,
        bulk=connection_pb2.BulkOptions(**bulk),
    )


def _refusal(client: Client, request: connection_pb2.CreateConnectionRequest) -> str:
    with pytest.raises(ClientError) as info:
        client.create_connection(request)
    assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT, info.value
    return info.value.details


@pytest.mark.parametrize(
    ("bulk", "message"),
    [
        ({"max_writers": 0}, "bulk.max_writers: 0 is outside 1..1,024"),
        ({"max_writers": -1}, "bulk.max_writers: -1 is outside 1..1,024"),
        ({"max_writers": 1025}, "bulk.max_writers: 1025 is outside 1..1,024"),
        ({"writers": 0}, "bulk.writers: 0 is outside 1..64"),
        ({"writers": 65}, "bulk.writers: 65 is outside 1..64"),
        ({"shard_rows": 5}, "bulk.shard_rows: 5 is outside 10,000..10,000,000"),
        ({"shard_rows": 10_000_001}, "bulk.shard_rows: 10000001 is outside 10,000..10,000,000"),
        ({"writers": 4, "shard_rows": -10_000}, "bulk.shard_rows: -10000 is outside"),
    ],
)
def test_bulk_options_out_of_range_are_invalid_argument(
    fake_coordinator: tuple[Any, Client], bulk: dict[str, int], message: str
) -> None:
    _, client = fake_coordinator
    assert message in _refusal(client, _pg("pg", **bulk))
    assert client.list_connections() == []


def test_bulk_options_on_other_kinds_are_refused(fake_coordinator: tuple[Any, Client]) -> None:
    _, client = fake_coordinator
    rest = connection_pb2.CreateConnectionRequest(
        connection_id="api",
        kind=connection_pb2.CONNECTION_KIND_REST,
        rest=connection_pb2.RestOptions(base_url="https://api.example/v1"),
        bulk=connection_pb2.BulkOptions(writers=4),
    )
    assert "bulk.writers: bulk options apply to postgresql connections only, not to rest" in _refusal(
        client, rest
    )
    sql = connection_pb2.CreateConnectionRequest(
        connection_id="lite",
        kind=connection_pb2.CONNECTION_KIND_SQL,
        url="sqlite:///shop.db",
        bulk=connection_pb2.BulkOptions(shard_rows=20_000, max_writers=2),
    )
    assert "bulk.shard_rows, bulk.max_writers: bulk options apply to postgresql" in _refusal(client, sql)
    files = connection_pb2.CreateConnectionRequest(
        connection_id="out", kind=connection_pb2.CONNECTION_KIND_FILE, bulk=connection_pb2.BulkOptions()
    )
    # An empty BulkOptions gives no option: nothing to refuse, nothing stored.
    assert not client.create_connection(files).HasField("bulk")
    assert [c.id for c in client.list_connections()] == ["conn_out"]


def test_bulk_options_round_trip(fake_coordinator: tuple[Any, Client]) -> None:
    _, client = fake_coordinator
    created = client.create_connection(_pg("pg", writers=4, shard_rows=200_000, max_writers=8))
    got = client.get_connection("pg")
    for answer in (created, got, client.list_connections()[0]):
        assert answer.bulk == connection_pb2.BulkOptions(writers=4, shard_rows=200_000, max_writers=8)
    # Only what was given is stored: the others stay unset (the worker's defaults).
    partial = client.create_connection(_pg("partial", max_writers=3))
    assert partial.bulk.max_writers == 3
    assert not partial.bulk.HasField("writers") and not partial.bulk.HasField("shard_rows")
    plain = client.create_connection(_pg("plain"))
    assert not plain.HasField("bulk") and not client.get_connection("plain").HasField("bulk")
    # shard_rows is a multiple of the ledger's batch: rounded up at create, answered as rounded.
    assert client.create_connection(_pg("odd", shard_rows=15_001)).bulk.shard_rows == 20_000
    assert client.create_connection(_pg("top", shard_rows=10_000_000)).bulk.shard_rows == 10_000_000
    # An update replaces the definition, its bulk options included.
    update = _pg("pg", writers=2)
    update.allow_update = True
    client.create_connection(update)
    assert client.get_connection("pg").bulk == connection_pb2.BulkOptions(writers=2)


def test_the_snapshot_an_attempt_gets_carries_the_bulk_options(fake_coordinator: tuple[Any, Client]) -> None:
    coordinator, client = fake_coordinator
    client.create_connection(_pg("bulky", writers=3, shard_rows=50_000, max_writers=6))
    client.create_connection(_pg("plain"))
    client.get_project("default").create_scenario("s", "s", "print('hi')\n").run_and_wait()
    spec = next(s for s in reversed(coordinator.dispatcher.specs) if s.scenario_id == "scn_s")
    snapshots = {c.id: c for c in spec.connections}
    assert snapshots["conn_bulky"].bulk == connection_pb2.BulkOptions(
        writers=3, shard_rows=50_000, max_writers=6
    )
    assert not snapshots["conn_plain"].HasField("bulk")
    # The worker hands exactly the present options to the PostgreSQL sink.
    options = to_spec(snapshots["conn_bulky"])[0].options
    assert (options["writers"], options["shard_rows"], options["max_writers"]) == (3, 50_000, 6)
    assert not {"writers", "shard_rows", "max_writers"} & set(to_spec(snapshots["conn_plain"])[0].options)


def test_the_worker_passes_only_the_options_given() -> None:
    snapshot = attempt_pb2.ConnectionSnapshot(
        id="conn_pg",
        kind=connection_pb2.CONNECTION_KIND_POSTGRESQL,
        url=PG_URL,
        bulk=connection_pb2.BulkOptions(shard_rows=30_000),
    )
    spec, _ = to_spec(snapshot)
    assert spec.options["shard_rows"] == 30_000 and isinstance(spec.options["shard_rows"], int)
    assert "writers" not in spec.options and "max_writers" not in spec.options


def test_a_refused_snapshot_carries_no_bulk_options() -> None:
    box = SecretBox(Fernet.generate_key())
    at = datetime.now(UTC)
    rec = ConnectionRecord(
        id="conn_x",
        kind="postgresql",
        description="",
        url=PG_URL,
        rest={},
        secret_kind="none",
        secret_ref="",
        secret_cipher=None,
        created_at=at,
        updated_at=at,
        allowed_users=("u2",),
        bulk={"writers": 4},
    )
    assert run_snapshot(rec, box, "u2").bulk.writers == 4
    refused = run_snapshot(rec, box, "u1")
    assert refused.refused_reason and not refused.HasField("bulk")


def test_connections_from_before_bulk_options_have_none(store_url: str) -> None:
    at = datetime.now(UTC)
    row = {
        "id": "conn_old",
        "kind": "postgresql",
        "description": "",
        "url": PG_URL,
        "rest": "{}",
        "secret_kind": "none",
        "secret_ref": "",
        "created_at": at,
        "updated_at": at,
    }

    def upgrade_to_0006_and_insert(conn: sa.Connection) -> None:
        config = Config()
        config.set_main_option("script_location", str(Path(store_package.__file__).parent / "migrations"))
        config.attributes["connection"] = conn
        command.upgrade(config, "0006")
        conn.execute(sa.table("connections", *(sa.column(c) for c in row)).insert().values(**row))

    async def bulk_after_upgrade() -> dict[str, int]:
        engine = create_async_engine(normalize_url(store_url))
        async with engine.begin() as conn:
            await conn.run_sync(upgrade_to_0006_and_insert)
        await engine.dispose()
        store = await Store.open(store_url)
        try:
            return (await store.connections.get("conn_old")).bulk
        finally:
            await store.aclose()

    assert asyncio.run(bulk_after_upgrade()) == {}


def test_cli_connection_create_takes_bulk_options(
    fake_coordinator: tuple[Any, Client],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from seedbed.cli import main

    coordinator, _ = fake_coordinator
    monkeypatch.setenv("SEEDBED_CONFIG_FILE", str(tmp_path / "profiles.yaml"))
    monkeypatch.setenv("SEEDBED_API_KEY", ADMIN_API_KEY)

    def cli(*argv: str) -> str:
        assert main(["--address", coordinator.address, *argv]) == 0
        return capsys.readouterr().out

    out = cli(
        "connection", "create", "pg", "--kind", "postgresql", "--url", PG_URL,
        "--writers", "4", "--shard-rows", "200000", "--max-writers", "8",
    )  # fmt: skip
    assert "bulk: writers=4 shard_rows=200000 max_writers=8" in out
    shown = json.loads(cli("connection", "show", "pg", "-o", "json"))
    # int64 is a string in protobuf's JSON mapping; the contract's field names.
    assert shown["bulk"] == {"writers": 4, "shard_rows": "200000", "max_writers": 8}
    listed = json.loads(cli("connection", "list", "-o", "json"))
    assert listed[0]["bulk"] == shown["bulk"]
    assert "writers=4 shard_rows=200000 max_writers=8" in cli("connection", "show", "pg")
    out = cli("connection", "create", "plain", "--kind", "postgresql", "--url", PG_URL)
    assert "bulk" not in out and "bulk" not in json.loads(cli("connection", "show", "plain", "-o", "json"))
    # Out of the field's range: refused as usage (2) before any call.
    big = ["connection", "create", "big", "--kind", "postgresql", "--url", PG_URL, "--writers", str(2**40)]
    assert main(["--address", coordinator.address, *big]) == 2
    assert "--writers 1099511627776 is out of range" in capsys.readouterr().err
    # In range but refused by the coordinator: 8.
    assert main(["--address", coordinator.address, *big[:-1], "65"]) == 8
    assert "writers" in capsys.readouterr().err
