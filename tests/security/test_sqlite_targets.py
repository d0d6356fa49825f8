"""Finding 1: a scenario script with a SQLite `sql` connection reaches files other than its target.

The attacks go through the real path (gRPC → Ray → Docker sandbox → agent → SQLite): `ATTACH` the
coordinator's own store and insert an API key for the superuser; `VACUUM INTO` a file of the
script's choosing; `load_extension`; writing PRAGMAs. Each must fail the run with a clear error and
leave the store, the file system and the target as they were."""

from __future__ import annotations

import hashlib
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from seedbed.api.v1 import access_pb2, access_pb2_grpc, connection_pb2, run_pb2, scenario_pb2
from seedbed.client import Client, ClientError, LogEvent
from seedbed.coordinator import running_in_thread
from tests.conftest import settings_for

pytestmark = pytest.mark.integration

FORGED_KEY_ID = "00000000000000bb"
FORGED_SECRET = "forged-by-a-hostile-script-000000"


@pytest.fixture
def sqlite_coordinator(ray_session: None, tmp_path: Path) -> Iterator[tuple[Any, Client, Path, Path]]:
    """A real coordinator whose store is a SQLite file, and a shop database next to it, as a careless
    operator would lay them out: the script knows (or guesses) the store's path."""
    data = tmp_path / "data"
    store = data / "seedbed.db"
    shop = tmp_path / "shop.db"
    with sqlite3.connect(shop) as db:
        db.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
    settings = settings_for(f"sqlite+aiosqlite:///{store}", tmp_path, data_dir=data)
    with running_in_thread(settings) as coord, Client(coord.address) as client:
        client.create_connection(
            connection_pb2.CreateConnectionRequest(
                connection_id="conn_shop", kind=connection_pb2.CONNECTION_KIND_SQL, url=f"sqlite:///{shop}"
            )
        )
        yield coord, client, store, shop


def _run(client: Client, script: str, params: dict[str, str]) -> tuple[run_pb2.Run, str]:
    client.put_scenario(
        "hostile",
        script=script,
        settings=scenario_pb2.ScenarioSettings(overlap_policy=scenario_pb2.OVERLAP_POLICY_ALLOW_CONCURRENT),
    )
    run = client.wait(client.run("hostile", params).run_id)
    logs = "\n".join(e.line.text for e in client.stream_logs(run.id, follow=False) if isinstance(e, LogEvent))
    return run, logs


def _assert_refused(run: run_pb2.Run, logs: str, *words: str) -> None:
    assert run.state == run_pb2.RUN_STATE_FAILED, (run.first_error, logs)
    assert run.first_error.reason == run_pb2.FAILURE_REASON_SCRIPT_ERROR, run.first_error
    message = run.first_error.message
    assert "not allowed on SQLite targets" in message, message
    for word in words:
        assert word in message, message


ATTACH_STORE = f"""
from seedbed.sdk import Seedbed, params
db = Seedbed().connection("conn_shop")
db.execute("ATTACH DATABASE :path AS store", {{"path": params["store"]}})
db.execute(
    "INSERT INTO store.api_keys (id, user_id, description, secret_sha256, created_at) "
    "VALUES ('key_{FORGED_KEY_ID}', 'admin', 'forged', :digest, '2026-01-01 00:00:00.000000')",
    {{"digest": params["digest"]}},
)
print("attached and forged")
"""


def test_attach_of_the_store_is_refused_and_forges_no_key(
    sqlite_coordinator: tuple[Any, Client, Path, Path],
) -> None:
    coord, client, store, _ = sqlite_coordinator
    digest = hashlib.sha256(FORGED_SECRET.encode()).hexdigest()
    run, logs = _run(client, ATTACH_STORE, {"store": str(store), "digest": digest})
    _assert_refused(run, logs, "ATTACH")
    assert "attached and forged" not in logs
    # The forged key does not authenticate: no row was written into the store.
    with grpc.insecure_channel(coord.address) as channel:
        stub = access_pb2_grpc.AccessServiceStub(channel)
        with pytest.raises(grpc.RpcError) as refused:
            stub.WhoAmI(
                access_pb2.WhoAmIRequest(),
                metadata=(("authorization", f"Bearer sbk_{FORGED_KEY_ID}_{FORGED_SECRET}"),),
            )
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with sqlite3.connect(store) as db:
        assert db.execute("SELECT count(*) FROM api_keys WHERE description = 'forged'").fetchone() == (0,)


def test_vacuum_into_writes_no_file(
    sqlite_coordinator: tuple[Any, Client, Path, Path], tmp_path: Path
) -> None:
    _, client, _, _ = sqlite_coordinator
    target = tmp_path / "elsewhere" / "copy.db"
    target.parent.mkdir()
    script = (
        "from seedbed.sdk import Seedbed, params\n"
        "db = Seedbed().connection('conn_shop')\n"
        "db.execute(f\"VACUUM INTO '{params['to']}'\")\n"
    )
    run, logs = _run(client, script, {"to": str(target)})
    _assert_refused(run, logs, "VACUUM INTO")
    assert not target.exists()


def test_load_extension_is_refused(sqlite_coordinator: tuple[Any, Client, Path, Path]) -> None:
    _, client, _, _ = sqlite_coordinator
    script = (
        "from seedbed.sdk import Seedbed\n"
        "db = Seedbed().connection('conn_shop')\n"
        "db.fetch(\"SELECT load_extension('libm.so.6')\")\n"
    )
    run, logs = _run(client, script, {})
    _assert_refused(run, logs, "load_extension")


@pytest.mark.parametrize(
    "pragma",
    ["PRAGMA writable_schema = ON", "PRAGMA journal_mode = OFF", "PRAGMA temp_store_directory = '/tmp'"],
)
def test_writing_pragmas_is_refused(sqlite_coordinator: tuple[Any, Client, Path, Path], pragma: str) -> None:
    _, client, _, shop = sqlite_coordinator
    script = f'from seedbed.sdk import Seedbed\nSeedbed().connection("conn_shop").execute("{pragma}")\n'
    run, logs = _run(client, script, {})
    _assert_refused(run, logs, "PRAGMA")
    with sqlite3.connect(shop) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] != "off"


def test_ordinary_work_and_reads_of_the_schema_still_run(
    sqlite_coordinator: tuple[Any, Client, Path, Path],
) -> None:
    """The defences refuse what escapes the target, not what seeding needs: inserts (with reflection,
    which reads PRAGMA table_info), fetches, reading a PRAGMA, and turning on foreign keys."""
    _, client, _, shop = sqlite_coordinator
    script = (
        "from seedbed.sdk import Seedbed, log\n"
        "db = Seedbed().connection('conn_shop')\n"
        "db.execute('PRAGMA foreign_keys = ON')\n"
        "db.insert(table='customers', rows=[{'id': 1, 'name': 'a'}, {'id': 2, 'name': 'b'}])\n"
        "columns = db.fetch(\"SELECT name FROM pragma_table_info('customers')\")\n"
        "log.info('columns', names=[r['name'] for r in columns])\n"
        "log.info('user_version', value=db.fetch('PRAGMA user_version')[0]['user_version'])\n"
    )
    run, logs = _run(client, script, {})
    assert run.state == run_pb2.RUN_STATE_SUCCESS, (run.first_error, logs)
    assert "user_version" in logs
    with sqlite3.connect(shop) as db:
        assert db.execute("SELECT count(*) FROM customers").fetchone() == (2,)


def test_a_connection_to_the_coordinators_own_files_is_refused(
    sqlite_coordinator: tuple[Any, Client, Path, Path],
) -> None:
    _, client, store, _ = sqlite_coordinator
    for url in (
        f"sqlite:///{store}",
        f"sqlite:///file:{store}?mode=ro&uri=true",
        f"sqlite:///{store.parent}/../data/x.db",
    ):
        with pytest.raises(ClientError) as refused:
            client.create_connection(
                connection_pb2.CreateConnectionRequest(
                    connection_id="conn_store", kind=connection_pb2.CONNECTION_KIND_SQL, url=url
                )
            )
        assert refused.value.code == grpc.StatusCode.INVALID_ARGUMENT, url
        assert "data folder" in refused.value.details, refused.value.details


def test_the_store_file_and_its_folder_are_private(
    sqlite_coordinator: tuple[Any, Client, Path, Path],
) -> None:
    _, _, store, _ = sqlite_coordinator
    assert stat.S_IMODE(store.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.parent.stat().st_mode) == 0o700
