"""Versioned templates in real runs (real coordinator, store, Ray and Docker sandboxes): a script's pin
of an old version generates that version's rows (read by the agent from the coordinator with the
attempt's token) and its `ref`s draw from the rows made before it, a retry generates from the
versions fixed when the run was created even after a push, a pin of a version that does not exist
fails the run naming it, and the run records every version it used."""

from __future__ import annotations

from typing import Any

import pytest

from seedbed.api.v1 import run_pb2, scenario_pb2
from seedbed.client import Client, LogEvent
from tests.conftest import eventually

pytestmark = pytest.mark.integration

CUSTOMER = """
id: tmpl_customer
version: 1
description: Customers
fields:
  id: {sequence: {start: 1}}
  name: {faker: name}
"""
SDK = "from seedbed.sdk import Seedbed\ngenerate = Seedbed().generate\n"
CUSTOMER_V2 = CUSTOMER + "  tier: {choice: {values: [gold, silver]}}\n"


def _fire(client: Client, scenario: str, script: str, **settings: Any) -> str:
    client.put_scenario(
        scenario,
        script=script,
        settings=scenario_pb2.ScenarioSettings(
            overlap_policy=scenario_pb2.OVERLAP_POLICY_ALLOW_CONCURRENT, **settings
        ),
    )
    return client.run(scenario, {}).run_id


def _stdout(client: Client, run_id: str) -> list[tuple[int, str]]:
    return [
        (event.line.attempt, event.line.text)
        for event in client.stream_logs(run_id)
        if isinstance(event, LogEvent) and event.line.stream == run_pb2.LOG_STREAM_STDOUT
    ]


def _used(run: run_pb2.Run) -> list[str]:
    return [f"{u.template_id}@{u.version}" for u in run.templates_used]


def test_a_pinned_old_version_generates_its_rows_beside_the_latest(coordinator: tuple[Any, Client]) -> None:
    _, client = coordinator
    client.put_template(CUSTOMER)
    client.put_template(CUSTOMER_V2)
    script = (
        "from seedbed.sdk import Seedbed\ngenerate = Seedbed().generate\n"
        "old = generate('tmpl_customer@1', 3, seed=5)\n"
        "new = generate('tmpl_customer', 3, seed=5)\n"
        "print(old.columns)\n"
        "print(new.columns)\n"
        "print([r['name'] for r in old] == [r['name'] for r in new])\n"
    )
    run = client.wait(_fire(client, "pinned", script))
    assert run.state == run_pb2.RUN_STATE_SUCCESS, run.first_error.message
    assert [text for _, text in _stdout(client, run.id)] == [
        "['id', 'name']",
        "['id', 'name', 'tier']",
        "True",  # the same seed: the fields the versions share are the same
    ]
    assert _used(run) == ["tmpl_customer@1", "tmpl_customer@2"]


ORDER_BY_NAME = """
id: tmpl_order
version: 1
fields:
  id: {sequence: {}}
  customer_name: {ref: {template: tmpl_customer, field: name}}
"""
ORDER_BY_ID = ORDER_BY_NAME.replace(
    "customer_name: {ref: {template: tmpl_customer, field: name}}",
    "customer_id: {ref: {template: tmpl_customer, field: id}}",
)


def test_a_ref_only_a_pinned_version_makes_draws_from_the_rows_made_before_it(
    coordinator: tuple[Any, Client],
) -> None:
    # Only tmpl_order@1 refs tmpl_customer.name (the run's version 2 refs the id).
    _, client = coordinator
    client.put_template(CUSTOMER)
    client.put_template(ORDER_BY_NAME)
    client.put_template(ORDER_BY_ID)
    script = SDK + (
        "names = {r['name'] for r in generate('tmpl_customer', 5)}\n"
        "orders = list(generate('tmpl_order@1', 20))\n"
        "print(len(orders), {r['customer_name'] for r in orders} <= names)\n"
    )
    run = client.wait(_fire(client, "pinned-ref", script))
    assert run.state == run_pb2.RUN_STATE_SUCCESS, run.first_error.message
    assert [text for _, text in _stdout(client, run.id)] == ["20 True"]
    assert _used(run) == ["tmpl_customer@1", "tmpl_order@1"]


def test_a_pin_of_a_missing_version_fails_the_run_naming_it(coordinator: tuple[Any, Client]) -> None:
    _, client = coordinator
    client.put_template(CUSTOMER)
    client.put_template(CUSTOMER_V2)
    script = (
        "from seedbed.sdk import Seedbed\ngenerate = Seedbed().generate\ngenerate('tmpl_customer@9', 1)\n"
    )
    run = client.wait(_fire(client, "missing", script))
    assert run.state == run_pb2.RUN_STATE_FAILED
    assert "tmpl_customer@9 not found (versions of tmpl_customer: 1, 2)" in run.first_error.message
    malformed = client.wait(
        _fire(
            client,
            "malformed",
            SDK + "generate('tmpl_customer@0', 1)\n",
        )
    )
    assert malformed.state == run_pb2.RUN_STATE_FAILED
    assert "versions count from 1" in malformed.first_error.message


def test_a_retry_generates_from_the_versions_fixed_when_the_run_was_created(
    coordinator: tuple[Any, Client],
) -> None:
    _, client = coordinator
    client.put_template(CUSTOMER)
    script = (
        "import time\n"
        "from seedbed.sdk import Seedbed\ngenerate = Seedbed().generate\n"
        "print(generate('tmpl_customer', 2).columns)\n"
        "time.sleep(4)\n"
        "raise RuntimeError('fail this attempt')\n"
    )
    retry = scenario_pb2.RetryPolicy(
        maximum_attempts=2,
        initial_backoff_seconds=0.5,
        retry_on=[run_pb2.FAILURE_REASON_SCRIPT_ERROR],
    )
    run_id = _fire(client, "retried", script, retry_policy=retry)
    eventually(lambda: _stdout_now(client, run_id), timeout=120)
    pushed = client.put_template(CUSTOMER_V2)  # while the first attempt still runs
    assert pushed.revision == 2
    run = client.wait(run_id)
    assert run.attempt_count == 2 and run.state == run_pb2.RUN_STATE_FAILED
    assert run.attempts[1].create_time.ToDatetime() > pushed.update_time.ToDatetime()
    assert _stdout(client, run_id) == [(1, "['id', 'name']"), (2, "['id', 'name']")]
    assert _used(run) == ["tmpl_customer@1"]
    # A new run takes the latest.
    later = client.wait(
        _fire(
            client,
            "later",
            SDK + "print(generate('tmpl_customer', 1).columns)\n",
        )
    )
    assert [text for _, text in _stdout(client, later.id)] == ["['id', 'name', 'tier']"]
    assert _used(later) == ["tmpl_customer@2"]


def _stdout_now(client: Client, run_id: str) -> bool:
    """Whether the run printed a line yet (without following the log to the run's end)."""
    return any(
        isinstance(event, LogEvent) and event.line.stream == run_pb2.LOG_STREAM_STDOUT
        for event in client.stream_logs(run_id, follow=False)
    )
