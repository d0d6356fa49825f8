"""The write ledger written by another run through the same connection.

The ledger (`seedbed_ledger`) lives in the target database, where every script with a SQL
connection to that database may write: a script may `execute` any statement. The attacks, each by
a script of run X against run Y (same connection, same database):

1. X forges a ledger row for a batch Y is about to write, with the content hash Y's batch will
   have: Y's replay logic finds "its" batch already written and skips it (data loss, silently).
2. X edits Y's ledger row (another table, other keys) and adds a row of its own under Y's run key:
   purging Y deletes rows Y never wrote (another project's data in the same database).

The defence: every ledger row carries an HMAC-SHA256 over its content with a key per run that the
coordinator derives from its secret key and hands to the worker (never to the sandbox). A row whose
MAC does not verify is refused: the run fails naming the table, the call and that the row was not
written by Seedbed; a purge skips and lists it, deleting nothing on its word.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from seedbed.api.v1 import connection_pb2, run_pb2, scenario_pb2
from seedbed.client import Client
from seedbed.worker.ledger import LEDGER_TABLE, content_hash
from tests.conftest import pg_admin_url

pytestmark = pytest.mark.integration

ALLOW = scenario_pb2.ScenarioSettings(
    overlap_policy=scenario_pb2.OVERLAP_POLICY_ALLOW_CONCURRENT,
    retry_policy=scenario_pb2.RetryPolicy(disabled=True),
)
VICTIM_ROWS = [{"id": 1, "v": "a"}, {"id": 2, "v": "b"}, {"id": 3, "v": "c"}]

VICTIM = f"""\
from seedbed.sdk import Seedbed

Seedbed().connection("conn_shared").insert("victim_rows", {VICTIM_ROWS!r})
print("victim wrote its rows")
"""

# Run X: reads no secret, needs none. Any statement through its connection reaches the ledger.
FORGE_REPLAY = """\
from seedbed.sdk import Seedbed, params

db = Seedbed().connection("conn_shared")
db.execute("SELECT 1")  # any write through the ledger makes sure its table exists
db.execute(
    "INSERT INTO seedbed_ledger (run_key, call_no, batch_no, content_hash, operation, target,"
    " row_count, returned, row_keys, run_id, attempt, fencing_token)"
    " VALUES (%s, 1, 0, %s, 'insert', 'victim_rows', 3, NULL, NULL, 'run_forged', 1, 1)",
    [params["victim"], params["hash"]],
)
print("forged")
"""

FORGE_PURGE = """\
from seedbed.sdk import Seedbed, params

db = Seedbed().connection("conn_shared")
db.execute("SELECT 1")
# Y's own row now names the other project's table; and a row of X's own under Y's run key.
db.execute(
    "UPDATE seedbed_ledger SET target = 'precious', row_keys = %s WHERE run_key = %s",
    ['{"columns":["id"],"values":[[1],[2],[3]]}', params["victim"]],
)
db.execute(
    "INSERT INTO seedbed_ledger (run_key, call_no, batch_no, content_hash, operation, target,"
    " row_count, returned, row_keys, run_id, attempt, fencing_token)"
    " VALUES (%s, 2, 0, %s, 'insert', 'precious', 2, NULL, %s, 'run_forged', 1, 1)",
    [params["victim"], "0" * 64, '{"columns":["id"],"values":[[4],[5]]}'],
)
print("edited")
"""


@pytest.fixture
def shared_db() -> Iterator[str]:
    """A target database shared by two runs (and a table of another project's): its plain URL."""
    admin = pg_admin_url()
    name = f"seedbed_forgery_{secrets.token_hex(5)}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = f"{admin.rpartition('/')[0]}/{name}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE victim_rows (id integer PRIMARY KEY, v text)")
        conn.execute("CREATE TABLE precious (id integer PRIMARY KEY, v text)")
        conn.execute("INSERT INTO precious SELECT g, 'not seedbed''s' FROM generate_series(1, 5) g")
    yield url
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _connect(client: Client, url: str) -> None:
    client.create_connection(
        connection_pb2.CreateConnectionRequest(
            connection_id="conn_shared", kind=connection_pb2.CONNECTION_KIND_POSTGRESQL, url=url
        )
    )


def _run(client: Client, scenario: str, script: str, key: str, **params: str) -> run_pb2.Run:
    client.put_scenario(scenario, script=script, settings=ALLOW)
    return client.wait(client.run(scenario, params, idempotency_key=key).run_id)


def _ids(url: str, table: str) -> list[int]:
    with psycopg.connect(url) as conn:
        return [int(r[0]) for r in conn.execute(f"SELECT id FROM {table} ORDER BY id").fetchall()]


def _victim_hash() -> str:
    """The content hash of the victim's one batch, as anyone who knows its rows can compute it."""
    header: dict[str, Any] = {
        "op": "insert",
        "table": "victim_rows",
        "on_conflict": None,
        "key": [],
        "returning": None,
    }
    return content_hash(header, VICTIM_ROWS)


def test_a_forged_ledger_row_does_not_make_another_run_skip_its_batch(
    coordinator: tuple[Any, Client], shared_db: str
) -> None:
    _, client = coordinator
    _connect(client, shared_db)
    forger = _run(client, "forger", FORGE_REPLAY, "forger-key", victim="victim-key", hash=_victim_hash())
    assert forger.state == run_pb2.RUN_STATE_SUCCESS, forger.first_error

    victim = _run(client, "victim", VICTIM, "victim-key")
    # Not "SUCCESS with nothing written": the run fails and says why.
    assert victim.state == run_pb2.RUN_STATE_FAILED, (victim.state, _ids(shared_db, "victim_rows"))
    message = victim.first_error.message
    assert LEDGER_TABLE in message and "call 1" in message, message
    assert "not written by Seedbed" in message, message
    assert not any(b.status == run_pb2.WRITE_BATCH_STATUS_REPLAYED for b in client.write_batches(victim.id))


def test_an_edited_ledger_row_does_not_make_another_runs_purge_delete_foreign_rows(
    coordinator: tuple[Any, Client], shared_db: str
) -> None:
    _, client = coordinator
    _connect(client, shared_db)
    victim = _run(client, "victim", VICTIM, "victim-key")
    assert victim.state == run_pb2.RUN_STATE_SUCCESS, victim.first_error
    assert _ids(shared_db, "victim_rows") == [1, 2, 3]

    forger = _run(client, "forger", FORGE_PURGE, "forger-key", victim="victim-key")
    assert forger.state == run_pb2.RUN_STATE_SUCCESS, forger.first_error

    purged = client.purge_run(victim.id)
    # Nothing is deleted on the word of a row Seedbed did not write: not the other project's rows,
    # and not the victim's either (its row was changed: the purge cannot know what it wrote).
    assert _ids(shared_db, "precious") == [1, 2, 3, 4, 5], purged
    assert _ids(shared_db, "victim_rows") == [1, 2, 3], purged
    assert not purged.targets and not purged.failures, purged
    skipped = sorted((s.call, s.batch, s.reason) for s in purged.skipped)
    assert [(c, b) for c, b, _ in skipped] == [(1, 0), (2, 0)], skipped
    for _, _, reason in skipped:
        assert "not written by Seedbed" in reason and LEDGER_TABLE in reason, reason
    # The rows stay for someone to look at.
    with psycopg.connect(shared_db) as conn:
        left = conn.execute(
            f"SELECT call_no, row_keys FROM {LEDGER_TABLE} WHERE run_key = 'victim-key' ORDER BY call_no"
        ).fetchall()
    assert [(c, json.loads(k)["values"]) for c, k in left] == [(1, [[1], [2], [3]]), (2, [[4], [5]])]


def test_ledger_rows_copied_from_another_run_do_not_verify(shared_db: str, tmp_path: Path) -> None:
    """A valid row of run X (its MAC made with X's key), copied under Y's run key whole, MAC and
    all, is not Y's: Y's replay refuses it and Y's purge skips it."""
    from datetime import timedelta

    from seedbed.worker.ledger import (
        AttemptStamp,
        ForgedLedgerEntryError,
        LedgeredSql,
        LedgerSeal,
        purge_run,
    )
    from seedbed.worker.sinks import ConnectionSpec, PostgresSink, open_sink

    def sink() -> PostgresSink:
        opened = open_sink(
            ConnectionSpec("conn_shared", "postgresql", {"url": shared_db}), artifacts_dir=tmp_path
        )
        assert isinstance(opened, PostgresSink)
        return opened

    x_stamp = AttemptStamp("forger-key", "run_x", 1, 1, ledger_key=b"x" * 32)
    y_stamp = AttemptStamp("victim-key", "run_y", 1, 1, ledger_key=b"y" * 32)
    x = LedgeredSql(sink(), x_stamp, report=lambda _: None, retry_budget=timedelta(seconds=5))
    x.insert(1, "precious", [{"id": 9, "v": "x"}])
    with psycopg.connect(shared_db, autocommit=True) as conn:
        conn.execute(
            f"INSERT INTO {LEDGER_TABLE} SELECT 'victim-key', call_no, batch_no, content_hash, operation,"
            " target, row_count, returned, row_keys, run_id, attempt, fencing_token, applied_at, mac"
            f" FROM {LEDGER_TABLE} WHERE run_key = 'forger-key'"
        )
    y = LedgeredSql(sink(), y_stamp, report=lambda _: None, retry_budget=timedelta(seconds=5))
    with pytest.raises(ForgedLedgerEntryError, match="not written by Seedbed"):
        y.insert(1, "precious", [{"id": 9, "v": "x"}])
    summary = purge_run(sink(), LedgerSeal("victim-key", "run_y", b"y" * 32), dry_run=False)
    assert not summary.tables and [s.call for s in summary.skipped] == [1]
    assert 9 in _ids(shared_db, "precious")


# The table as Seedbed created it (and told DBAs to create it) before ledger rows were signed.
OLD_DDL = (
    f"CREATE TABLE {LEDGER_TABLE} ("
    " run_key varchar(255) NOT NULL, call_no integer NOT NULL, batch_no integer NOT NULL,"
    " content_hash char(64) NOT NULL, operation varchar(16) NOT NULL,"
    " target varchar(300) NOT NULL, row_count bigint NOT NULL, returned text, row_keys text,"
    " run_id varchar(64) NOT NULL, attempt integer NOT NULL, fencing_token bigint NOT NULL,"
    " applied_at timestamptz NOT NULL DEFAULT now(),"
    " PRIMARY KEY (run_key, call_no, batch_no))"
)


def test_a_ledger_table_from_before_signed_rows_is_upgraded_and_its_rows_are_not_trusted(
    pg_database: str, tmp_path: Path
) -> None:
    """The DBA made the table once, with the old statement, and granted it to a user who may not
    alter it: that user is told the one statement its owner must run. Once the column is there, the
    old rows (no MAC) are neither replayed nor purged on their word: anything may write a row
    without a MAC."""
    from datetime import timedelta

    import sqlalchemy as sa

    from seedbed.worker.ledger import (
        POSTGRESQL_LEDGER_MAC_DDL,
        AttemptStamp,
        ForgedLedgerEntryError,
        LedgeredSql,
        LedgerSeal,
        purge_run,
    )
    from seedbed.worker.sinks import ConnectionSpec, PostgresSink, TargetError, open_sink

    url = pg_database.replace("postgresql+psycopg://", "postgresql://", 1)
    role = f"writer_{secrets.token_hex(4)}"
    with psycopg.connect(url, autocommit=True) as owner:
        owner.execute("CREATE TABLE items (id integer PRIMARY KEY)")
        owner.execute(OLD_DDL)
        owner.execute(f"CREATE ROLE {role} LOGIN PASSWORD 'pw'")
        owner.execute(f"GRANT ALL ON items TO {role}")
        owner.execute(f"GRANT SELECT, INSERT, DELETE ON {LEDGER_TABLE} TO {role}")
        # A batch written by the old Seedbed (or by anyone: nothing tells them apart).
        owner.execute("INSERT INTO items VALUES (1), (2)")
        owner.execute(
            f"INSERT INTO {LEDGER_TABLE} (run_key, call_no, batch_no, content_hash, operation, target,"
            " row_count, row_keys, run_id, attempt, fencing_token)"
            " VALUES ('rk', 1, 0, %s, 'insert', 'items', 2, %s, 'run_1', 1, 1)",
            ["0" * 64, '{"columns":["id"],"values":[[1],[2]]}'],
        )
    as_role = sa.make_url(pg_database).set(username=role, password="pw").render_as_string(hide_password=False)

    def ledger(as_url: str) -> LedgeredSql:
        sink = open_sink(ConnectionSpec("conn_t", "postgresql", {"url": as_url}), artifacts_dir=tmp_path)
        assert isinstance(sink, PostgresSink)
        stamp = AttemptStamp("rk", "run_1", 2, 2, ledger_key=b"k" * 32)
        return LedgeredSql(sink, stamp, report=lambda _: None, retry_budget=timedelta(seconds=5))

    try:
        with pytest.raises(TargetError) as caught:
            ledger(as_role).insert(2, "items", [{"id": 3}])
        message = str(caught.value)
        assert "lacks the column mac" in message and POSTGRESQL_LEDGER_MAC_DDL in message, message

        with psycopg.connect(url, autocommit=True) as owner:
            owner.execute(POSTGRESQL_LEDGER_MAC_DDL)
        writer = ledger(as_role)
        assert writer.insert(2, "items", [{"id": 3}]).count == 1
        with pytest.raises(ForgedLedgerEntryError) as refused:
            writer.insert(1, "items", [{"id": 1}, {"id": 2}])
        assert "carries no MAC" in str(refused.value) and "call 1" in str(refused.value)

        summary = purge_run(writer.sink, LedgerSeal("rk", "run_1", b"k" * 32), dry_run=False)
        assert [(t.table, t.rows_deleted) for t in summary.tables] == [("items", 1)]
        assert [(s.call, "carries no MAC" in s.reason) for s in summary.skipped] == [(1, True)]
        assert _ids(url, "items") == [1, 2]
        writer.sink.close()
    finally:
        with psycopg.connect(url, autocommit=True) as owner:
            owner.execute(f"DROP OWNED BY {role}")
            owner.execute(f"DROP ROLE {role}")


def test_a_sqlalchemy_ledger_table_from_before_signed_rows_gets_its_column(tmp_path: Path) -> None:
    import sqlite3
    from datetime import timedelta

    from seedbed.worker.ledger import AttemptStamp, LedgeredSql
    from seedbed.worker.sinks import ConnectionSpec, SqlSink, open_sink

    db = tmp_path / "old.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE items (id integer PRIMARY KEY)")
        conn.execute(OLD_DDL.replace("timestamptz NOT NULL DEFAULT now()", "timestamp NOT NULL"))
    sink: SqlSink[Any] = open_sink(  # type: ignore[assignment]
        ConnectionSpec("conn_t", "sql", {"url": f"sqlite:///{db}"}), artifacts_dir=tmp_path
    )
    stamp = AttemptStamp("rk", "run_1", 1, 1, ledger_key=b"k" * 32)
    writer = LedgeredSql(sink, stamp, report=lambda _: None, retry_budget=timedelta(seconds=5))
    assert writer.insert(1, "items", [{"id": 1}]).count == 1
    sink.close()
    with sqlite3.connect(db) as conn:
        (mac,) = conn.execute(f"SELECT mac FROM {LEDGER_TABLE}").fetchone()
    assert len(mac) == 64
