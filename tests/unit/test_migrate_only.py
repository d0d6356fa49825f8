"""`seedbed server --migrate-only` (a deployment's step before its coordinators start): it migrates
the store and checks the secret key against it, and says in one line what is wrong."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from seedbed.api.v1 import connection_pb2
from seedbed.cli import main
from seedbed.client import Client
from seedbed.coordinator import running_in_thread
from seedbed.coordinator.errors import SecretKeyMismatchError
from seedbed.coordinator.fakes import FakeDispatcher
from seedbed.coordinator.server import migrate_only
from tests.conftest import settings_for

KEY = Fernet.generate_key().decode()


def _sealed_store(tmp_path: Path) -> str:
    """A store holding one connection secret sealed with KEY."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'store.db'}"
    settings = settings_for(url, tmp_path, secret_key=KEY)
    with running_in_thread(settings, FakeDispatcher()) as coordinator, Client(coordinator.address) as client:
        client.create_connection(
            connection_pb2.CreateConnectionRequest(
                connection_id="pg",
                kind=connection_pb2.CONNECTION_KIND_POSTGRESQL,
                url="postgresql://app:sealed-secret@db.example:5432/shop",
            )
        )
    return url


def test_migrate_only_accepts_the_key_that_sealed_the_store(tmp_path: Path) -> None:
    url = _sealed_store(tmp_path)
    assert asyncio.run(migrate_only(settings_for(url, tmp_path, secret_key=KEY))) is True


def test_another_secret_key_is_refused_with_a_clear_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = _sealed_store(tmp_path)
    other = Fernet.generate_key().decode()
    with caplog.at_level(logging.ERROR):
        assert asyncio.run(migrate_only(settings_for(url, tmp_path, secret_key=other))) is False
    assert "SEEDBED_SECRET_KEY does not open the secrets in the store (connection 'conn_pg'" in caplog.text
    # The coordinator itself refuses to start with it too.
    refused = pytest.raises(SecretKeyMismatchError, match="does not open the secrets")
    with refused, running_in_thread(settings_for(url, tmp_path, secret_key=other), FakeDispatcher()):
        pass


def test_a_store_that_cannot_be_reached_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "server",
            "--migrate-only",
            "--store-url",
            "postgresql+psycopg://seedbed:hidden-pw@127.0.0.1:1/seedbed",
        ]
    )
    assert code == 1
    err = capsys.readouterr().err
    assert (
        "the store is not usable: cannot open the store at postgresql+psycopg://seedbed:***@127.0.0.1:1"
        in err
    )
    assert "hidden-pw" not in err


def test_coordinators_starting_together_migrate_one_at_a_time(pg_database: str) -> None:
    """Replicas start at once, each migrating: they take turns (an advisory lock), none fails."""
    from seedbed.coordinator.store import Store

    async def together() -> None:
        stores = await asyncio.gather(*(Store.open(pg_database) for _ in range(4)))
        for store in stores:
            await store.aclose()

    # Without the lock they block each other on the catalog: the wait is bounded, so that fails.
    asyncio.run(asyncio.wait_for(together(), 60))
