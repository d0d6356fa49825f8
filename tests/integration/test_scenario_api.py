"""The scenario API end to end: the object client against a real coordinator, real Ray workers and
real Docker sandboxes (no fake executor). What the unit tests check against the fake dispatcher,
checked here once on real runs: run and wait, steps with their Ray task ids, the first error and its
step, a step's log, three scenarios at once, and a fire cancelled by the overlap policy."""

from __future__ import annotations

from typing import Any

import pytest

from seedbed.api.v1 import access_pb2, connection_pb2, scenario_pb2
from seedbed.client import Client, FireCancelledError, RunFailedError

pytestmark = pytest.mark.integration

STEPPED = """\
from seedbed.sdk import Seedbed

dm = Seedbed()
print("setting up")
with dm.step("load"):
    print("loading")
with dm.step("check"):
    print("checking")
    if dm.params.get("fail") == "yes":
        raise RuntimeError("check failed: 3 orphans")
"""

WARNS = """\
from seedbed.sdk import Seedbed

Seedbed().log.warning("few rows")
"""

SLOW = """\
import time
time.sleep(30)
"""

NO_RETRY = scenario_pb2.ScenarioSettings(retry_policy=scenario_pb2.RetryPolicy(disabled=True))


def test_the_scenario_api_on_real_runs(coordinator: tuple[Any, Client]) -> None:
    _, client = coordinator
    project = client.get_default_project()
    stepped = project.create_scenario("stepped", "stepped", STEPPED, settings=NO_RETRY)
    warns = project.create_scenario("warns", "warns", WARNS, settings=NO_RETRY)

    run = stepped.run_and_wait()
    assert run.outcome == "SUCCESS" and not run.running
    assert run.start_time is not None and run.end_time is not None and run.start_time.tzinfo is not None
    assert run.duration is not None and run.duration.total_seconds() > 0
    details = run.get_details()
    task_ids = set(details.task_ids)
    assert len(task_ids) == 1
    assert [(s.number, s.name, s.outcome) for s in details.steps] == [
        (1, "load", "SUCCESS"),
        (2, "check", "SUCCESS"),
    ]
    assert all(set(s.task_ids) == task_ids and len(next(iter(task_ids))) >= 16 for s in details.steps)
    assert all(s.job_ids == s.task_ids for s in details.steps)  # no write batches in this script
    assert run.get_log(step_id="load").splitlines()[-1].endswith("loading")
    assert "checking" not in run.get_log(step_id="load")
    assert stepped.get_last_finished_run().id == run.id
    assert stepped.get_average_duration(limit=1) == run.duration.total_seconds()

    with pytest.raises(RunFailedError) as failed:
        stepped.run_and_wait(params={"fail": "yes"})
    error = failed.value.run.get_details().first_error_details
    assert error is not None
    assert (error.type, error.step) == ("RuntimeError", "check")
    assert "check failed: 3 orphans" in error.message and "RuntimeError" in error.traceback

    fires = [stepped.run(), warns.run(), stepped.run()]  # the second "stepped" is skipped
    runs = client.wait_for_runs(fires)
    assert [r.outcome if r else None for r in runs] == ["SUCCESS", "WARNING", None]
    with pytest.raises(FireCancelledError) as cancelled:
        fires[2].wait_for_scenario_run()
    assert cancelled.value.reason.startswith("already running")
    assert fires[2].is_cancelled(refresh=True) and fires[2].get_scenario_run() is None
    assert warns.run_and_wait(no_fail=True).outcome == "WARNING"
    with pytest.raises(RunFailedError):
        warns.run_and_wait()


def test_abort_from_the_client_and_again_once_finished(coordinator: tuple[Any, Client]) -> None:
    _, client = coordinator
    slow = client.get_default_project().create_scenario("slow", "slow", SLOW, settings=NO_RETRY)
    run = slow.run().wait_for_scenario_run()
    assert run is not None
    assert run.abort("enough") is False  # it was running
    assert run.wait_for_completion(no_fail=True).outcome == "ABORTED"
    assert run.abort("again") is True  # already finished: nothing done, said so
    assert run.refresh().outcome == "ABORTED"


GRANTS = """\
from seedbed.sdk import Seedbed

dm = Seedbed()
dm.connection("conn_mine").write("rows.jsonl", [{"id": 1}], format="jsonl")
print("wrote mine")
dm.connection("conn_theirs").write("rows.jsonl", [{"id": 1}], format="jsonl")
"""


def test_a_connection_reaches_only_runs_acting_as_its_allowed_users(coordinator: tuple[Any, Client]) -> None:
    _, client = coordinator
    client._call(client._access.CreateUser, access_pb2.CreateUserRequest(user_id="u9"))
    for connection_id, users in (("conn_mine", ["admin"]), ("conn_theirs", ["u9"])):
        client.create_connection(
            connection_pb2.CreateConnectionRequest(
                connection_id=connection_id, kind=connection_pb2.CONNECTION_KIND_FILE, allowed_users=users
            )
        )
    assert list(client.get_connection("conn_theirs").allowed_users) == ["u9"]
    scenario = client.get_default_project().create_scenario("grants", "grants", GRANTS, settings=NO_RETRY)
    assert scenario.get_settings().effective_run_as == "admin"
    run = scenario.run_and_wait(no_fail=True)
    assert run.outcome == "FAILED"
    error = run.get_details().first_error_details
    assert error is not None
    assert "connection 'conn_theirs' may not be used by runs acting as 'admin' (allowed: u9)" in error.message
    assert "wrote mine" in run.get_log()
