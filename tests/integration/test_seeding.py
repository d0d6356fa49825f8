"""The classic seeding scenario, unchanged, end to end: templates and connections created through
the API, the script run through gRPC → Ray → Docker, rows checked in the real targets."""

from __future__ import annotations

import json
import secrets
import sqlite3
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psycopg
import pytest

from seedbed.api.v1 import connection_pb2, run_pb2, scenario_pb2
from seedbed.client import Client, LogEvent
from seedbed.worker.ledger import LEDGER_TABLE, POSTGRESQL_LEDGER_DDL
from tests.conftest import ROOT, pg_admin_url

pytestmark = pytest.mark.integration

SHOP = ROOT / "examples" / "shop"
CLASSIC = (SHOP / "classic.py").read_text()
SCHEMA = (SHOP / "schema.sql").read_text()


@pytest.fixture
def target_pg() -> Iterator[str]:
    """A fresh PostgreSQL database to seed, with the shop's tables; its plain URL."""
    admin = pg_admin_url()
    name = f"seedbed_target_{secrets.token_hex(5)}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = f"{admin.rpartition('/')[0]}/{name}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(SCHEMA)
    yield url
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _setup(client: Client) -> None:
    for path in sorted(SHOP.glob("*.yaml")):
        client.put_template(path.read_text())


def _run(client: Client, scenario: str, script: str, params: dict[str, str] | None = None) -> run_pb2.Run:
    client.put_scenario(
        scenario,
        script=script,
        settings=scenario_pb2.ScenarioSettings(overlap_policy=scenario_pb2.OVERLAP_POLICY_ALLOW_CONCURRENT),
    )
    return client.wait(client.run(scenario, params or {}).run_id)


def _logs(client: Client, run_id: str) -> str:
    return "\n".join(e.line.text for e in client.stream_logs(run_id, follow=False) if isinstance(e, LogEvent))


def _pg_connection(client: Client, connection_id: str, url: str) -> None:
    client.create_connection(
        connection_pb2.CreateConnectionRequest(
            connection_id=connection_id, kind=connection_pb2.CONNECTION_KIND_POSTGRESQL, url=url
        )
    )


def test_classic_scenario_on_postgresql(coordinator: tuple[Any, Client], target_pg: str) -> None:
    _, client = coordinator
    _setup(client)
    _pg_connection(client, "conn_postgres", target_pg)
    run = _run(client, "classic", CLASSIC)
    assert run.state == run_pb2.RUN_STATE_SUCCESS, (run.first_error, _logs(client, run.id))
    assert "seeded 100 customers and 500 orders" in _logs(client, run.id)
    assert run.versions["faker"]
    with psycopg.connect(target_pg) as conn:
        assert conn.execute("SELECT count(*) FROM customers").fetchone() == (100,)
        assert conn.execute("SELECT count(*) FROM orders").fetchone() == (500,)
        orphans = conn.execute(
            "SELECT count(*) FROM orders o LEFT JOIN customers c ON c.id = o.customer_id WHERE c.id IS NULL"
        ).fetchone()
        assert orphans == (0,)
        assert conn.execute("SELECT count(DISTINCT customer_id) FROM orders").fetchone()[0] > 50


def test_classic_scenario_on_sqlite(coordinator: tuple[Any, Client], tmp_path: Path) -> None:
    _, client = coordinator
    _setup(client)
    db = tmp_path / "shop.db"
    with sqlite3.connect(db) as conn:
        conn.executescript(SCHEMA)
    client.create_connection(
        connection_pb2.CreateConnectionRequest(
            connection_id="conn_postgres", kind=connection_pb2.CONNECTION_KIND_SQL, url=f"sqlite:///{db}"
        )
    )
    run = _run(client, "classic-sqlite", CLASSIC)
    assert run.state == run_pb2.RUN_STATE_SUCCESS, (run.first_error, _logs(client, run.id))
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM customers").fetchone() == (100,)
        assert conn.execute("SELECT count(*) FROM orders").fetchone() == (500,)
        assert conn.execute(
            "SELECT count(*) FROM orders WHERE customer_id NOT IN (SELECT id FROM customers)"
        ).fetchone() == (0,)


class _Api(BaseHTTPRequestHandler):
    received: list[tuple[str, str, Any]] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).received.append((self.path, self.headers.get("Idempotency-Key", ""), body))
        self.send_response(201)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"ok": true}')

    def log_message(self, *args: Any) -> None:
        return None


def test_rest_variant_posts_to_a_local_server(coordinator: tuple[Any, Client]) -> None:
    _, client = coordinator
    _setup(client)
    _Api.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Api)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        client.create_connection(
            connection_pb2.CreateConnectionRequest(
                connection_id="conn_api",
                kind=connection_pb2.CONNECTION_KIND_REST,
                rest=connection_pb2.RestOptions(
                    base_url=f"http://127.0.0.1:{server.server_port}",
                    batch_size=20,
                    auth_header="Authorization",
                ),
                secret=connection_pb2.SecretSource(value="Bearer s3cret-token"),
            )
        )
        script = (SHOP / "rest.py").read_text()
        run = _run(client, "rest", script, {"customers": "10", "orders": "45"})
        assert run.state == run_pb2.RUN_STATE_SUCCESS, (run.first_error, _logs(client, run.id))
    finally:
        server.shutdown()
    customers = [r for r in _Api.received if r[0] == "/customers"]
    orders = [r for r in _Api.received if r[0] == "/orders"]
    assert len(customers) == 10 and all(isinstance(body, dict) for _, _, body in customers)
    assert [len(body) for _, _, body in orders] == [20, 20, 5]
    keys = [key for _, key, _ in _Api.received]
    assert all(keys) and len(set(keys)) == len(keys)
    ids = {body["id"] for _, _, body in customers}
    assert all(o["customer_id"] in ids for _, _, batch in orders for o in batch)


BAD = [
    (
        "unknown template",
        "from seedbed.sdk import Seedbed\nSeedbed().generate('tmpl_nope', count=3)\n",
        "UnknownTemplate",
        "tmpl_nope",
    ),
    (
        "unknown connection",
        "from seedbed.sdk import Seedbed\nSeedbed().connection('conn_nope').insert('t', [{'a': 1}])\n",
        "UnknownConnection",
        "conn_nope",
    ),
    (
        "count zero",
        "from seedbed.sdk import Seedbed\nSeedbed().generate('tmpl_customer', count=0)\n",
        "InvalidArgument",
        "count",
    ),
    (
        "count over the limit",
        "from seedbed.sdk import Seedbed\nSeedbed().generate('tmpl_customer', count=10**9)\n",
        "LimitExceeded",
        "SEEDBED_MAX_ROWSET_ROWS",
    ),
    (
        "missing table",
        "from seedbed.sdk import Seedbed\ndm = Seedbed()\n"
        "dm.connection('conn_postgres').insert('custmers', dm.generate('tmpl_customer', count=3))\n",
        "TargetError",
        "custmers",
    ),
    (
        "wrong columns",
        "from seedbed.sdk import Seedbed\n"
        "Seedbed().connection('conn_postgres').insert('customers', [{'id': 1, 'nme': 'x', 'email': 'e'}])\n",
        "TargetError",
        "nme",
    ),
    (
        "unserialisable row",
        "from seedbed.sdk import Seedbed\n"
        "Seedbed().connection('conn_postgres').insert('customers', [{'id': 1, 'name': object()}])\n",
        "SerializationError",
        "'name'",
    ),
    (
        "workspace path escape",
        "from seedbed.sdk import Seedbed\nSeedbed().workspace.read_text('../etc/passwd')\n",
        "InvalidArgument",
        "..",
    ),
    (
        "absolute workspace path",
        "from seedbed.sdk import Seedbed\nSeedbed().workspace.read_text('/etc/passwd')\n",
        "InvalidArgument",
        "relative",
    ),
]


@pytest.mark.parametrize("case", BAD, ids=[c[0] for c in BAD])
def test_bad_calls_fail_the_run_with_a_clear_first_error(
    coordinator: tuple[Any, Client], target_pg: str, case: tuple[str, str, str, str]
) -> None:
    _, client = coordinator
    _, script, error_type, mention = case
    _setup(client)
    _pg_connection(client, "conn_postgres", target_pg)
    run = _run(client, "bad", script)
    assert run.state == run_pb2.RUN_STATE_FAILED
    assert run.first_error.reason == run_pb2.FAILURE_REASON_SCRIPT_ERROR
    assert run.first_error.type == error_type, run.first_error
    assert mention in run.first_error.message, run.first_error
    assert run.first_error.line >= 2


def test_canary_secret_never_reaches_the_sandbox(coordinator: tuple[Any, Client], target_pg: str) -> None:
    """A connection's password (a canary, for a role of its own) is used by the worker to write, and
    is nowhere the script can look: environment, files, its own logs, the API's answers."""
    _, client = coordinator
    canary = "Canary-" + secrets.token_hex(8)
    role = f"canary_{secrets.token_hex(4)}"
    with psycopg.connect(target_pg, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{canary}'")
        conn.execute(f"GRANT ALL ON customers, orders TO {role}")
        # The role may not create tables: the ledger's is created for it (as a careful DBA would).
        conn.execute(POSTGRESQL_LEDGER_DDL)
        conn.execute(f"GRANT SELECT, INSERT ON {LEDGER_TABLE} TO {role}")
    host = target_pg.split("@", 1)[1]
    _setup(client)
    _pg_connection(client, "conn_postgres", f"postgresql://{role}:{canary}@{host}")
    script = (
        "import os\n"
        "from seedbed.sdk import Seedbed\n"
        "dm = Seedbed()\n"
        "dm.connection('conn_postgres').insert('customers', dm.generate('tmpl_customer', count=5))\n"
        "print('ENV', dict(os.environ))\n"
        "seen = []\n"
        "paths = ['/proc/self/environ', '/proc/self/cmdline', '/proc/1/environ', '/proc/1/cmdline']\n"
        "for root in ('/tmp', '/etc', '/home', '/opt/venv/lib/python3.11/site-packages/seedbed'):\n"
        "    for dirpath, _, files in os.walk(root):\n"
        "        paths += [os.path.join(dirpath, name) for name in files]\n"
        "for path in paths:\n"
        "    try:\n"
        "        with open(path, 'rb') as f:\n"
        "            data = f.read(1 << 20)\n"
        f"        if b'{canary}' in data: seen.append(path)\n"
        "    except OSError:\n"
        "        pass\n"
        "print('FOUND', seen, 'of', len(paths))\n"
    )
    try:
        run = _run(client, "canary", script)
    finally:
        with psycopg.connect(target_pg, autocommit=True) as conn:
            conn.execute(f"DROP OWNED BY {role}")
            conn.execute(f"DROP ROLE {role}")
    logs = _logs(client, run.id)
    assert run.state == run_pb2.RUN_STATE_SUCCESS, (run.first_error, logs)
    assert "FOUND [] of" in logs
    assert canary not in logs and canary not in repr(run)
    assert canary not in repr(client.list_connections())
    with psycopg.connect(target_pg) as conn:
        assert conn.execute("SELECT count(*) FROM customers").fetchone() == (5,)


DATA_OPS = """
import json
from seedbed.sdk import Seedbed
dm = Seedbed()
db = dm.connection("conn_postgres")
out = dm.connection("conn_files")
with dm.step("stream"):
    seen = 0
    ids = set()
    for row in dm.template("tmpl_customer").stream(25_000, batch_size=5_000):
        seen += 1
        ids.add(row["id"])
    assert seen == 25_000 and len(ids) == 25_000
with dm.step("seed"):
    a = dm.generate("tmpl_customer", count=50, seed=42)
    b = dm.generate("tmpl_customer", count=50, seed=42)
    assert a == b
    db.insert("customers", a)
with dm.step("read back"):
    assert db.execute("UPDATE customers SET vip = TRUE WHERE id <= %s", [10]) == 10
    vips = db.fetch("SELECT id FROM customers WHERE vip ORDER BY id")
    print("VIPS", [r["id"] for r in vips][:10])
    print("FIRST", json.dumps(db.fetch("customers", limit=1)[0], default=str))
with dm.step("files"):
    out.write("customers.csv", a, format="csv")
    out.write("customers.jsonl", a, format="jsonl")
print("SEEDED", json.dumps(a[:3]))
"""


def test_streams_steps_reads_files_and_seeds(
    coordinator: tuple[Any, Client], target_pg: str, tmp_path: Path
) -> None:
    _, client = coordinator
    _setup(client)
    _pg_connection(client, "conn_postgres", target_pg)
    client.create_connection(
        connection_pb2.CreateConnectionRequest(
            connection_id="conn_files", kind=connection_pb2.CONNECTION_KIND_FILE
        )
    )
    first = _run(client, "data-ops", DATA_OPS)
    logs = _logs(client, first.id)
    assert first.state == run_pb2.RUN_STATE_SUCCESS, (first.first_error, logs)
    assert "VIPS [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]" in logs
    assert [s.name for s in first.steps] == ["stream", "seed", "read back", "files"]
    assert all(s.outcome == "SUCCESS" and s.HasField("end_time") for s in first.steps)
    assert first.steps[0].rows_generated == 25_000 and first.steps[1].rows_written == 50
    # An explicit seed gives the same rows in another run.
    with psycopg.connect(target_pg, autocommit=True) as conn:
        conn.execute("TRUNCATE customers CASCADE")
    second = _run(client, "data-ops", DATA_OPS)
    assert second.state == run_pb2.RUN_STATE_SUCCESS
    seeded = [line for line in logs.splitlines() if line.startswith("SEEDED")]
    assert seeded and seeded == [
        line for line in _logs(client, second.id).splitlines() if line.startswith("SEEDED")
    ]


def test_rows_without_a_seed_differ_between_runs_but_replay_within_one(
    coordinator: tuple[Any, Client],
) -> None:
    _, client = coordinator
    _setup(client)
    script = (
        "import json\nfrom seedbed.sdk import Seedbed\n"
        "dm = Seedbed()\nprint(json.dumps(list(dm.generate('tmpl_customer', count=3))))\n"
    )
    first = _run(client, "unseeded", script)
    second = _run(client, "unseeded", script)
    rows = [
        [line for line in _logs(client, run.id).splitlines() if line.startswith("[")][0]
        for run in (first, second)
    ]
    assert rows[0] != rows[1]  # another run key, other rows


class _Rejecting(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(422)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"error": "email already taken"}')

    def log_message(self, *args: Any) -> None:
        return None


def test_rest_4xx_fails_the_run_with_the_answer(coordinator: tuple[Any, Client]) -> None:
    _, client = coordinator
    _setup(client)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Rejecting)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        client.create_connection(
            connection_pb2.CreateConnectionRequest(
                connection_id="conn_api",
                kind=connection_pb2.CONNECTION_KIND_REST,
                rest=connection_pb2.RestOptions(base_url=f"http://127.0.0.1:{server.server_port}"),
            )
        )
        run = _run(client, "rest-422", (SHOP / "rest.py").read_text(), {"customers": "3"})
    finally:
        server.shutdown()
    assert run.state == run_pb2.RUN_STATE_FAILED
    assert run.first_error.type == "RestError"
    assert "422" in run.first_error.message and "email already taken" in run.first_error.message


def test_deadline_holds_while_an_sdk_call_waits_on_the_database(
    coordinator: tuple[Any, Client], target_pg: str, docker_client: Any
) -> None:
    """A call stuck in the database does not keep the run past its deadline (a `sql` connection has
    no statement timeout of its own)."""
    from datetime import timedelta

    from tests.integration.conftest import containers_of

    _, client = coordinator
    client.create_connection(
        connection_pb2.CreateConnectionRequest(
            connection_id="conn_slow",
            kind=connection_pb2.CONNECTION_KIND_SQL,
            url=target_pg.replace("postgresql://", "postgresql+psycopg://", 1),
        )
    )
    script = (
        "from seedbed.sdk import Seedbed\n"
        "print('calling', flush=True)\n"
        "Seedbed().connection('conn_slow').fetch('SELECT pg_sleep(60)')\n"
    )
    client.put_scenario(
        "slow-call",
        script=script,
        settings=scenario_pb2.ScenarioSettings(
            timeout_seconds=3, overlap_policy=scenario_pb2.OVERLAP_POLICY_ALLOW_CONCURRENT
        ),
    )
    run = client.wait(client.run("slow-call").run_id)
    assert run.state == run_pb2.RUN_STATE_FAILED
    assert run.first_error.reason == run_pb2.FAILURE_REASON_TIMEOUT
    assert run.end_time.ToDatetime() - run.start_time.ToDatetime() < timedelta(seconds=20)
    assert containers_of(docker_client, run.id) == []
