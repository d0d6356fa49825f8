"""A real run's steps name their jobs: the Ray task of the attempt and the write batches, the same
ids ListWriteBatches lists; the first error names the step it happened in; a step's logs are the
lines written while it was open."""

from __future__ import annotations

from typing import Any

import pytest

from seedbed.api.v1 import run_pb2, scenario_pb2
from seedbed.client import Client
from tests.integration.test_seeding import _pg_connection, _setup, target_pg  # noqa: F401

pytestmark = pytest.mark.integration

SCRIPT = """\
from seedbed.sdk import Seedbed

dm = Seedbed()
print("before any step")
with dm.step("customers"):
    customers = dm.generate(template_id="tmpl_customer", count=100)
    dm.connection("conn_postgres").insert(table="customers", rows=customers)
    print("customers written")
with dm.step("orders"):
    ids = [c["id"] for c in customers]
    orders = dm.generate(template_id="tmpl_order", count=500, overrides={"customer_id": dm.pick_from(ids)})
    dm.connection("conn_postgres").insert(table="orders", rows=orders)
    print("orders written")
    raise RuntimeError("checks failed after the orders")
"""


def test_steps_carry_task_and_batch_ids(coordinator: tuple[Any, Client], target_pg: str) -> None:  # noqa: F811
    _, client = coordinator
    _setup(client)
    _pg_connection(client, "conn_postgres", target_pg)
    no_retry = scenario_pb2.ScenarioSettings(retry_policy=scenario_pb2.RetryPolicy(disabled=True))
    client.put_scenario("stepped", script=SCRIPT, settings=no_retry)
    run = client.wait(client.run("stepped").run_id)

    assert run.state == run_pb2.RUN_STATE_FAILED
    assert (run.first_error.type, run.first_error.step) == ("RuntimeError", "orders")
    (attempt,) = run.attempts
    assert attempt.task_id and len(attempt.task_id) >= 16  # a Ray task id (hex)
    steps = [(s.number, s.name, s.outcome, list(s.task_ids)) for s in run.steps]
    assert steps == [
        (1, "customers", "SUCCESS", [attempt.task_id]),
        (2, "orders", "FAILED", [attempt.task_id]),
    ]
    listed = [f"{b.connection_id}/{b.call}/{b.batch}" for b in client.write_batches(run.id)]
    assert run.steps[0].batch_ids and run.steps[1].batch_ids
    assert list(run.steps[0].batch_ids) + list(run.steps[1].batch_ids) == listed

    def lines(step: str) -> list[str]:
        request = run_pb2.StreamRunLogsRequest(run_id=run.id, step=step)
        return [r.line.text for r in client._runs.StreamRunLogs(request) if r.HasField("line")]

    # The bulk insert's summary is the step's too.
    summary, written = lines("customers")
    assert summary.startswith("insert customers: 100 rows in") and written == "customers written"
    assert "orders written" in lines("2") and "before any step" not in lines("2")
