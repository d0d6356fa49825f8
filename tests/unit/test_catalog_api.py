"""Connections and workspace files through the real gRPC server and store (SQLite and PostgreSQL)."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from seedbed.api.v1 import connection_pb2
from seedbed.client import Client, ClientError

CANARY = "canary-secret-5f1d8e"


def _pg(connection_id: str, url: str, **kw: Any) -> connection_pb2.CreateConnectionRequest:
    return connection_pb2.CreateConnectionRequest(
        connection_id=connection_id, kind=connection_pb2.CONNECTION_KIND_POSTGRESQL, url=url, **kw
    )


def test_connection_secrets_are_never_returned(fake_coordinator: tuple[Any, Client]) -> None:
    coordinator, client = fake_coordinator
    created = client.create_connection(_pg("pg", f"postgresql://app:{CANARY}@db.example:5432/shop"))
    assert created.id == "conn_pg"
    assert created.url == "postgresql://app@db.example:5432/shop"
    assert created.secret == "stored"
    rest = client.create_connection(
        connection_pb2.CreateConnectionRequest(
            connection_id="api",
            kind=connection_pb2.CONNECTION_KIND_REST,
            rest=connection_pb2.RestOptions(
                base_url="https://api.example/v1", auth_header="Authorization", headers={"X-Team": "qa"}
            ),
            secret=connection_pb2.SecretSource(value=f"Bearer {CANARY}"),
        )
    )
    assert rest.secret == "stored" and rest.rest.batch_size == 100
    env = client.create_connection(
        _pg("envpg", "postgresql://app@db/shop", secret=connection_pb2.SecretSource(env="PG_PASSWORD"))
    )
    assert env.secret == "env:PG_PASSWORD"
    everything = (
        repr(client.list_connections())
        + repr(client.get_connection("pg"))
        + repr(client.get_connection("api"))
    )
    assert CANARY not in everything
    # At rest too: the store holds a Fernet token, never the secret.
    import asyncio

    async def raw() -> str:
        from sqlalchemy import text

        async with coordinator.store._engine.connect() as conn:
            rows = (await conn.execute(text("SELECT * FROM connections"))).all()
        return repr(rows)

    future = asyncio.run_coroutine_threadsafe(raw(), coordinator.loop)
    assert CANARY not in future.result(10)


def test_bad_connections_are_refused(fake_coordinator: tuple[Any, Client]) -> None:
    _, client = fake_coordinator
    cases = [
        _pg("Bad Id", "postgresql://a@b/c"),
        _pg("x", ""),
        _pg("x", "mysql://a@b/c"),
        _pg("x", "not a url"),
        _pg("x", "postgresql://a:pw@b/c", secret=connection_pb2.SecretSource(value="other")),
        _pg("x", "postgresql://a@b/c", secret=connection_pb2.SecretSource(env="1BAD")),
        _pg("x", "postgresql://a@b/c", secret=connection_pb2.SecretSource(file="relative/path")),
        connection_pb2.CreateConnectionRequest(connection_id="x"),
        connection_pb2.CreateConnectionRequest(
            connection_id="x",
            kind=connection_pb2.CONNECTION_KIND_REST,
            rest=connection_pb2.RestOptions(base_url="ftp://x"),
        ),
        connection_pb2.CreateConnectionRequest(
            connection_id="x",
            kind=connection_pb2.CONNECTION_KIND_REST,
            rest=connection_pb2.RestOptions(base_url="https://user:pw@x"),
        ),
        connection_pb2.CreateConnectionRequest(
            connection_id="x",
            kind=connection_pb2.CONNECTION_KIND_REST,
            rest=connection_pb2.RestOptions(base_url="https://x", headers={"Bad\nName": "v"}),
        ),
    ]
    for request in cases:
        with pytest.raises(ClientError) as info:
            client.create_connection(request)
        assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT, (request, info.value)
    assert client.list_connections() == []
    client.create_connection(_pg("dup", "postgresql://a@b/c"))
    with pytest.raises(ClientError) as info:
        client.create_connection(_pg("dup", "postgresql://a@b/c"))
    assert info.value.code == grpc.StatusCode.ALREADY_EXISTS
    for call in (lambda: client.get_connection("nope"), lambda: client.delete_connection("nope")):
        with pytest.raises(ClientError) as info:
            call()
        assert info.value.code == grpc.StatusCode.NOT_FOUND


def test_workspace_round_trip_and_limits(fake_coordinator: tuple[Any, Client]) -> None:
    coordinator, client = fake_coordinator
    data = bytes(range(256)) * 9000  # 2.3 MB, several chunks
    meta = client.upload_file("data/blob.bin", data)
    assert meta.size_bytes == len(data)
    got_meta, got = client.download_file("data/blob.bin")
    assert got == data and got_meta.sha256 == meta.sha256
    client.upload_file("data/cities.csv", b"name\nParis\n")
    client.upload_file("readme.txt", b"")
    assert [f.path for f in client.list_files()] == ["data/blob.bin", "data/cities.csv", "readme.txt"]
    assert [f.path for f in client.list_files("data/")] == ["data/blob.bin", "data/cities.csv"]
    assert client.download_file("readme.txt")[1] == b""
    with pytest.raises(ClientError) as info:
        client.upload_file("data/cities.csv", b"x")
    assert info.value.code == grpc.StatusCode.ALREADY_EXISTS
    client.upload_file("data/cities.csv", b"name\nLyon\n", overwrite=True)
    assert client.download_file("data/cities.csv")[1] == b"name\nLyon\n"
    for bad in ("../etc/passwd", "/etc/passwd", "a//b", "a/./b", "a\\b", "", "x" * 600, "a/\x00b"):
        with pytest.raises(ClientError) as info:
            client.upload_file(bad, b"x")
        assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT, bad
        with pytest.raises(ClientError) as info:
            client.download_file(bad)
        assert info.value.code in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT), bad
    limit = coordinator.settings.max_workspace_file_bytes
    with pytest.raises(ClientError) as info:
        client.upload_file("big.bin", b"\0" * (limit + 1))
    assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT and str(limit) in info.value.details
    client.delete_file("data/blob.bin")
    with pytest.raises(ClientError) as info:
        client.download_file("data/blob.bin")
    assert info.value.code == grpc.StatusCode.NOT_FOUND
    assert "big.bin" not in [f.path for f in client.list_files()]


CUSTOMER = """
id: tmpl_customer
version: 1
description: Customers
fields:
  id: {sequence: {start: 1}}
  name: {faker: name}
  email: {faker: email, unique: true}
"""

ORDER = """
id: tmpl_order
version: 1
fields:
  id: {sequence: {start: 1}}
  customer_id: {ref: {template: tmpl_customer, field: id}}
  amount: {float: {min: 1, max: 10, decimals: 2}}
"""


def test_templates_push_show_preview_delete(fake_coordinator: tuple[Any, Client]) -> None:
    _, client = fake_coordinator
    created = client.put_template(CUSTOMER)
    assert created.id == "tmpl_customer" and created.revision == 1
    assert list(created.field_names) == ["id", "name", "email"] and created.description == "Customers"
    again = client.put_template(CUSTOMER.replace("Customers", "All customers"))
    assert again.revision == 2
    with pytest.raises(ClientError) as info:
        client.put_template(CUSTOMER, allow_update=False)
    assert info.value.code == grpc.StatusCode.ALREADY_EXISTS
    client.put_template(ORDER)
    assert [t.id for t in client.list_templates()] == ["tmpl_customer", "tmpl_order"]
    assert client.get_template("tmpl_order").source == ORDER
    rows = client.preview_template("tmpl_customer", count=5, seed=7)
    assert [r["id"] for r in rows] == [1, 2, 3, 4, 5] and all("@" in r["email"] for r in rows)
    assert client.preview_template("tmpl_customer", count=5, seed=7) == rows
    orders = client.preview_template("tmpl_order", count=20, seed=1)
    assert {o["customer_id"] for o in orders} <= set(range(1, 21))
    unsaved = client.preview_template(source=CUSTOMER.replace("tmpl_customer", "tmpl_draft"), count=2)
    assert len(unsaved) == 2
    assert "tmpl_draft" not in [t.id for t in client.list_templates()]
    client.delete_template("tmpl_order")
    with pytest.raises(ClientError) as info:
        client.get_template("tmpl_order")
    assert info.value.code == grpc.StatusCode.NOT_FOUND


def test_invalid_templates_name_the_field(fake_coordinator: tuple[Any, Client]) -> None:
    _, client = fake_coordinator
    bad = """
id: tmpl_bad
version: 1
fields:
  email: {faker: emial}
  age: {int: {min: 90, max: 18}}
  tier: {choice: {values: [a, b], weights: [1]}}
"""
    with pytest.raises(ClientError) as info:
        client.put_template(bad)
    assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT
    details = info.value.details
    for path in ("fields.email", "fields.age", "fields.tier"):
        assert path in details, details
    for source in ("", "[1, 2]", "id: tmpl_x\nfields: {a: {nope: 1}}", "{not json", "x" * 300_000):
        with pytest.raises(ClientError) as info:
            client.put_template(source)
        assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT, source[:40]
    assert client.list_templates() == []
    for bad_count in (101, -1, 10**6):
        client.put_template(CUSTOMER)
        with pytest.raises(ClientError) as info:
            client.preview_template("tmpl_customer", count=bad_count)
        assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(ClientError) as info:
        client.preview_template("tmpl_missing")
    assert info.value.code == grpc.StatusCode.NOT_FOUND


def test_field_order_is_kept(fake_coordinator: tuple[Any, Client]) -> None:
    _, client = fake_coordinator
    source = "id: tmpl_z\nversion: 1\nfields:\n  zeta: {const: 1}\n  alpha: {const: 2}\n  mid: {const: 3}\n"
    template = client.put_template(source)
    assert list(template.field_names) == ["zeta", "alpha", "mid"]
    assert list(client.preview_template("tmpl_z", count=1)[0]) == ["zeta", "alpha", "mid"]
