"""A purge that stops at a failure keeps the run's assets (what explains the run stays downloadable);
the purge that completes it removes them. The fake dispatcher runs the worker's purge in-process
against a SQLite target, its first purge call failing as a lost worker would."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from seedbed.api.v1 import attempt_pb2, run_pb2
from seedbed.client import Client
from seedbed.coordinator import running_in_thread
from seedbed.coordinator.attempt import ledger_key
from seedbed.coordinator.errors import DispatchError
from seedbed.coordinator.fakes import FakeDispatcher
from seedbed.coordinator.secrets import SecretBox
from tests.conftest import settings_for
from tests.unit.test_purge_api import _count, _sqlite, _write


class FlakyPurges(FakeDispatcher):
    """Its first `purge_run` fails as if no worker answered; the later ones purge."""

    def __init__(self) -> None:
        super().__init__()
        self.purge_calls = 0

    async def purge_run(
        self, connection: attempt_pb2.ConnectionSnapshot, *args: Any, **kwargs: Any
    ) -> dict[str, Any]:
        self.purge_calls += 1
        if self.purge_calls == 1:
            raise DispatchError("the worker was lost")
        return await super().purge_run(connection, *args, **kwargs)


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_a_failed_purge_keeps_the_assets_until_a_purge_completes(store_url: str, tmp_path: Path) -> None:
    settings = settings_for(store_url, tmp_path)
    dispatcher = FlakyPurges()
    with running_in_thread(settings, dispatcher) as coordinator, Client(coordinator.address) as client:
        db = tmp_path / "things.db"
        with sqlite3.connect(db) as conn:
            conn.execute("CREATE TABLE things (id integer PRIMARY KEY, parent_id integer)")
        _sqlite(client, "conn_things", db)
        client.put_scenario("kept", script="batch conn_things things 1 0 3\nasset why.txt the reason\n")
        run = client.wait(client.run("kept").run_id)
        assert run.state == run_pb2.RUN_STATE_SUCCESS
        box = SecretBox.from_key_or_file(settings.secret_key, settings.data_dir)
        _write(db, run, ledger_key(box, run.id), 1, "things", range(3), tmp_path)
        assert [a.name for a in client.run_assets(run.id)] == ["why.txt"]

        stopped = client.purge_run(run.id)
        assert [f.message for f in stopped.failures] == [
            "no worker could purge through connection conn_things: the worker was lost"
        ]
        assert stopped.assets_deleted == 0 and stopped.asset_bytes_deleted == 0
        assert [a.name for a in client.run_assets(run.id)] == ["why.txt"]  # still downloadable
        assert _count(db, "things") == 3
        assert "assets are kept until a purge completes" in client.list_purges(run.id)[0].message

        done = client.purge_run(run.id)
        assert not done.failures and done.assets_deleted == 1
        assert client.run_assets(run.id) == [] and _count(db, "things") == 0
