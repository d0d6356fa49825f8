"""Dry runs through the real stack (gRPC, REST and the CLI → Ray → Docker sandbox → agent → a real
PostgreSQL): the report comes back with the run, nothing is written, the flag is part of what an
idempotency key identifies, a dry run's purge removes only its assets, and it is never the
scenario's last outcome."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import psycopg
import pytest

from seedbed.api.v1 import connection_pb2, run_pb2, scenario_pb2
from seedbed.client import Client, ClientError
from tests.conftest import ADMIN_API_KEY, ROOT, scratch_pg
from tests.integration.test_cli import seedbed

pytestmark = pytest.mark.integration

SHOP = ROOT / "examples" / "shop"
SCRIPT = """
from seedbed.sdk import Seedbed
dm = Seedbed()
db = dm.connection("conn_shop")
db.execute("CREATE TABLE IF NOT EXISTS extra (id int)")
customers = dm.generate("tmpl_customer", count=50)
db.insert("customers", customers)
ids = dm.pick_from([c["id"] for c in customers])
orders = dm.generate("tmpl_order", count=200, overrides={"customer_id": ids})
print("inserted", db.insert("orders", orders))
dm.assets.write_text("plan.txt", "50 customers, 200 orders")
"""


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    """One store: what is tested here lives on the worker and in the run's record."""
    return f"sqlite+aiosqlite:///{tmp_path / 'seedbed.db'}"


@pytest.fixture
def shop_pg() -> Iterator[str]:
    with scratch_pg((SHOP / "schema.sql").read_text(), "seedbed_drystack") as url:
        yield url


def _setup(client: Client, url: str) -> None:
    client.put_template((SHOP / "customer.yaml").read_text())
    client.put_template((SHOP / "order.yaml").read_text())
    client.create_connection(
        connection_pb2.CreateConnectionRequest(
            connection_id="conn_shop", kind=connection_pb2.CONNECTION_KIND_POSTGRESQL, url=url
        )
    )
    client.put_scenario(
        "shop",
        script=SCRIPT,
        settings=scenario_pb2.ScenarioSettings(overlap_policy=scenario_pb2.OVERLAP_POLICY_QUEUE_ALL),
    )


def _db(url: str) -> tuple[set[str], int, int]:
    with psycopg.connect(url) as conn:
        tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
        counts = [conn.execute(f"SELECT count(*) FROM {t}").fetchone() for t in ("customers", "orders")]
    return tables, int(counts[0][0]), int(counts[1][0])  # type: ignore[index]


def test_a_dry_run_through_the_stack_then_the_real_run(coordinator: tuple[Any, Client], shop_pg: str) -> None:
    coord, client = coordinator
    _setup(client, shop_pg)
    fire = client.run("shop", idempotency_key="dry-1", dry_run=True)
    run = client.wait(fire.run_id)
    assert run.state == run_pb2.RUN_STATE_SUCCESS, run.first_error
    assert run.dry_run
    report = run.dry_run_report
    assert [(t.operation, t.target, t.rows) for t in report.targets] == [
        ("execute", "CREATE TABLE IF NOT EXISTS extra (id int)", 0),
        ("insert", "customers", 50),
        ("insert", "orders", 200),
    ]
    assert report.problem_count == 0 and "not run" in report.targets[0].unchecked[0]
    assert _db(shop_pg) == ({"customers", "orders"}, 0, 0)  # no row, no ledger, no `extra`
    assert client.write_batches(run.id) == []

    # The flag is part of the request a key identifies; a dry run's purge removes only its assets.
    with pytest.raises(ClientError) as refused:
        client.run("shop", idempotency_key="dry-1")
    assert refused.value.code == grpc.StatusCode.ALREADY_EXISTS
    assert client.run("shop", idempotency_key="dry-1", dry_run=True).run_id == run.id
    assert [a.name for a in client.run_assets(run.id)] == ["plan.txt"]
    purged = client.purge_run(run.id)
    assert not purged.failures and list(purged.targets) == [] and purged.assets_deleted == 1
    assert client.run_assets(run.id) == []
    assert _db(shop_pg) == ({"customers", "orders"}, 0, 0)

    real = client.wait(client.run("shop").run_id)
    assert real.state == run_pb2.RUN_STATE_SUCCESS and not real.dry_run
    assert _db(shop_pg)[1:] == (50, 200)  # what the dry run reported

    # Over REST (wait=true): the same run again as a dry run finds every key already there.
    answer = httpx.post(
        f"http://{coord.rest_address}/v1/scenarios/shop/run",
        params={"wait": "true", "timeout_seconds": 120},
        json={"dry_run": True},
        headers={"Authorization": f"Bearer {ADMIN_API_KEY}"},
        timeout=180,
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()["run"]
    assert body["state"] == "RUN_STATE_FAILED" and body["dry_run"] is True
    assert body["first_error"]["type"] == "DryRunProblems"
    problems = body["dry_run_report"]["targets"][1]["problems"]
    assert problems[0]["kind"] == "DRY_RUN_PROBLEM_KIND_DUPLICATE_KEY" and problems[0]["row"] == "0"
    assert _db(shop_pg)[1:] == (50, 200)
    # A dry run is never the scenario's last outcome.
    status = client.get_scenario_status("shop")
    assert status.last_run_id == real.id and status.last_outcome == run_pb2.RUN_STATE_SUCCESS


def test_run_submit_dry_run_prints_the_report_and_exits_1_on_problems(
    coordinator: tuple[Any, Client], shop_pg: str, tmp_path: Path
) -> None:
    coord, client = coordinator
    _setup(client, shop_pg)
    bad = tmp_path / "bad.py"
    bad.write_text(
        "from seedbed.sdk import Seedbed\n"
        "db = Seedbed().connection('conn_shop')\n"
        "db.insert('customers', [{'id': 1, 'name': 'a', 'email': 'a@x'},\n"
        "                        {'id': 'two', 'name': None, 'email': 'b@x'}])\n"
        "db.insert('nowhere', [{'id': 1}])\n"
    )
    address = ["--address", coord.address]
    result = seedbed(*address, "run", "submit", str(bad), "--dry-run")
    assert result.returncode == 1, result.stderr
    assert "nothing was written" in result.stderr
    for word in ("TYPE_MISMATCH", "NOT_NULL", "MISSING_TABLE", "3 problem(s) found"):
        assert word in result.stderr, result.stderr
    as_json = seedbed(*address, "run", "submit", str(bad), "--dry-run", "-o", "json")
    assert as_json.returncode == 1
    document = json.loads(as_json.stdout)
    assert document["dry_run"] is True
    kinds = [p["kind"] for t in document["dry_run_report"]["targets"] for p in t.get("problems", [])]
    assert kinds == [
        "DRY_RUN_PROBLEM_KIND_TYPE_MISMATCH",
        "DRY_RUN_PROBLEM_KIND_NOT_NULL",
        "DRY_RUN_PROBLEM_KIND_MISSING_TABLE",
    ]
    shown = seedbed(*address, "run", "show", document["id"])
    assert (
        shown.returncode == 0 and "MISSING_TABLE" in shown.stdout and "no write batches" not in shown.stdout
    )
    assert _db(shop_pg) == ({"customers", "orders"}, 0, 0)
