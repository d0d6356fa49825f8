"""Every snippet of Dataiku's developer guide page on the scenario API ("Scenarios", Python API), run
verbatim against a real coordinator with real runs (Ray workers, Docker sandboxes): code written for
``dataikuapi`` runs on Seedbed with the import and the connection changed, and nothing else.

The snippets share one namespace, as on the page (``previously_active`` from "disable and remember"
is used by "enable from a list of ids"), where ``project`` is the default project (the connection)
and ``time`` is imported (the page's polling snippet uses it without importing it). Between two
snippets the test prepares what the page takes for granted (scenarios named MYSCENARIO, s1, s2 and
s3, users u1 and u2, a scheduled trigger, a failed run, an e-mail reporter) and checks what each
printed and changed. The snippets' polling pauses (``time.sleep(5)``, ``time.sleep(30)``) are
shortened to half a second by the ``time`` module the snippets import: they pace a loop that ends
when the runs do, and the loops run the same; only the test's wall time changes.
"""

from __future__ import annotations

import builtins
import contextlib
import io
import re
import time
import types
from datetime import UTC, datetime
from typing import Any

import pytest

from seedbed.api.v1 import access_pb2
from seedbed.client import Client, Project

pytestmark = pytest.mark.integration

# -- the page's snippets, verbatim, in the page's order ---------------------------------------------

RUN_AND_WAIT = """\
scenario = project.get_scenario("MYSCENARIO")

scenario.run_and_wait()
"""

RUN_THEN_POLL = """\
scenario = project.get_scenario("MYSCENARIO")

trigger_fire = scenario.run()

# When you call `run` a scenario, the scenario is not immediately
# started. Instead a "manual trigger" fires.
#
# This trigger fire can be cancelled if the scenario was already running,
# or if another trigger fires
# Thus, the scenario run is not available immediately, and we must "wait"
# for it

scenario_run = trigger_fire.wait_for_scenario_run()

# Now the scenario is running. We can wait for it synchronously with
# scenario_run.wait_for_completion(), but if we want to do other stuff
# at the same time, we can use refresh

while True:
    # Do a bit of other stuff
    # ...

    scenario_run.refresh()
    if scenario_run.running:
        print("Scenario is still running ...")
    else:
        print("Scenario is not running anymore")
        break

    time.sleep(5)
"""

LAST_COMPLETED_RUN = """\
scenario = project.get_scenario("MYSCENARIO")

last_runs = scenario.get_last_runs(only_finished_runs=True)

if len(last_runs) == 0:
    raise Exception("The scenario never ran")

last_run = last_runs[0]

# outcome can be one of SUCCESS, WARNING, FAILED or ABORTED
print(f"The last run finished with {last_run.outcome}")

# start_time and end_time are datetime.datetime objects
print(f"Last run started at {last_run.start_time} and finished at {last_run.end_time}")
"""

DISABLE_AND_REMEMBER = """\
# List of scenario ids that were active
previously_active = []

for scenario in project.list_scenarios(as_type="objects"):
    settings = scenario.get_settings()

    if settings.active:
        previously_active.append(scenario.id)
        settings.active = False
        # In order for settings change to take effect, you need to save them
        settings.save()
"""

ENABLE_FROM_IDS = """\
for scenario_id in previously_active:
    scenario = project.get_scenario(scenario_id)
    settings = scenario.get_settings()

    settings.active = True
    settings.save()
"""

LIST_RUN_AS = """\
for scenario in project.list_scenarios(as_type="objects"):
    settings = scenario.get_settings()
    # We must use `effective_run_as` and not `run_as` here.
    # run_as contains the "configured" run as, which can be None - in that case, it will run
    # as the last modifier of the scenario
    # effective_run_as is always valued and is the resolved version.
    print(f"Scenario {scenario.id} runs as user {settings.effective_run_as}")
"""

REASSIGN = """\
for scenario in project.list_scenarios(as_type="objects"):
    settings = scenario.get_settings()

    if settings.effective_run_as == "u1":
        print(f"Scenario {scenario.id} used to run as u1, reassigning it")
        # To configure a run_as, we must use the run_as property.
        # effective_run_as is read-only
        settings.run_as = "u2"
        settings.save()
"""

NEXT_RUN = """\
scenario = project.get_scenario("MYSCENARIO")
# next_run is None if no next run is scheduled
print(f"Next run is at {scenario.get_status().next_run}")
"""

JOB_IDS = """\
scenario = project.get_scenario("MYSCENARIO")
# Focusing only on the last completed run. Else, use get_last_runs() and iterate
last_run = scenario.get_last_finished_run()

last_run_details = last_run.get_details()

all_job_ids = []
for step in last_run_details.steps:
    all_job_ids.extend(step.job_ids)

print(f"All job ids started by scenario run {last_run.id} : {all_job_ids}")
"""

FIRST_ERROR = """\
scenario = project.get_scenario("MYSCENARIO")

last_run = scenario.get_last_finished_run()

if last_run.outcome == "FAILED":
    last_run_details = last_run.get_details()
    print(f"Error was: {last_run_details.first_error_details}")
"""

RUN_SEVERAL_AND_WAIT = """\
import time

scenarios_ids_to_run = ["s1", "s2", "s3"]

scenario_runs = []

for scenario_id in scenarios_ids_to_run:
    scenario = project.get_scenario(scenario_id)

    trigger_fire = scenario.run()
    # Wait for the trigger fire to have actually started a scenario
    scenario_run = trigger_fire.wait_for_scenario_run()
    scenario_runs.append(scenario_run)

# Poll all scenario runs, until all of them have completed
while True:
    any_not_complete = False
    for scenario_run in scenario_runs:
        # Update the status from the DSS API
        scenario_run.refresh()
        if scenario_run.running:
            any_not_complete = True

    if any_not_complete:
        print("At least a scenario is still running...")
    else:
        print("All scenarios are complete")
        break

    # Wait a bit before checking again
    time.sleep(30)

print(f"Scenario run ids and outcomes: {[(sr.id, sr.outcome) for sr in scenario_runs]}")
"""

EMAIL_SENDER = """\
scenario = project.get_scenario("MYSCENARIO")

settings = scenario.get_settings()

for reporter in settings.raw_reporters:
    # Only look into 'email' kind of reporters
    if reporter["messaging"]["type"] == "mail-scenario":
        messaging_configuration = reporter["messaging"]["configuration"]
        messaging_configuration["sender"] = "new.email.address@company.com"
        print(f"Updated reporter {reporter['id']}")

settings.save()
"""

LAST_RUN_RESULTS = """\
scenario = project.get_scenario(scenario_id)
last_run = scenario.get_last_finished_run()
data = {
    "scenario_id": scenario_id,
    "outcome": last_run.outcome,
    "start_time": last_run.start_time.isoformat(),
    "end_time": last_run.end_time.isoformat()
}
print(data)
"""

# -- what the page takes for granted ---------------------------------------------------------------

STEPPED = """\
from seedbed.sdk import Seedbed

dm = Seedbed()
with dm.step("load"):
    print("loading")
with dm.step("check"):
    if dm.params.get("fail") == "yes":
        raise RuntimeError("check failed: 3 orphans")
"""
QUICK = 'print("done")\n'
NO_RETRY = {"retry_policy": {"disabled": True}}


def _paced_time() -> types.ModuleType:
    """``time``, whose ``sleep`` waits at most half a second (see the module docstring)."""
    paced = types.ModuleType("time")
    paced.__dict__.update(vars(time))
    paced.sleep = lambda seconds: time.sleep(min(seconds, 0.5))  # type: ignore[attr-defined]
    return paced


class Page:
    """The namespace the snippets share, and what each one printed."""

    def __init__(self, project: Project) -> None:
        paced = _paced_time()

        def importer(name: str, *args: Any, **kwargs: Any) -> Any:
            return paced if name == "time" else builtins.__import__(name, *args, **kwargs)

        self.namespace: dict[str, Any] = {
            "__builtins__": {**vars(builtins), "__import__": importer},
            "project": project,
            "time": paced,
        }

    def run(self, snippet: str) -> str:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(snippet, "<snippet>", "exec"), self.namespace)
        return out.getvalue()


def _prepare(client: Client) -> Project:
    from google.protobuf.json_format import ParseDict

    from seedbed.api.v1 import scenario_pb2

    for user in ("u1", "u2"):
        client.create_user(user)
        client.set_membership(user, "default", access_pb2.ROLE_RUNNER)
    project = client.get_default_project()
    settings = ParseDict(NO_RETRY, scenario_pb2.ScenarioSettings())
    project.create_scenario("MYSCENARIO", "My scenario", STEPPED, settings=settings)
    for name in ("s1", "s2", "s3"):
        project.create_scenario(name, name, QUICK, settings=settings)
    reassigned = project.create_scenario("left", "Left by u1", QUICK, settings=settings).get_settings()
    reassigned.run_as = "u1"
    reassigned.save()
    return project


def test_every_snippet_of_the_scenario_api_page(coordinator: tuple[Any, Client]) -> None:
    _, client = coordinator
    project = _prepare(client)
    page = Page(project)
    scenario = project.get_scenario("MYSCENARIO")

    assert page.run(RUN_AND_WAIT) == ""
    assert scenario.get_last_finished_run().outcome == "SUCCESS"

    printed = page.run(RUN_THEN_POLL)
    assert printed.splitlines()[-1] == "Scenario is not running anymore"
    assert page.namespace["scenario_run"].outcome == "SUCCESS"

    printed = page.run(LAST_COMPLETED_RUN)
    assert "The last run finished with SUCCESS\n" in printed
    started = re.search(r"Last run started at (\S+ \S+) and finished at (\S+ \S+)", printed)
    assert started is not None
    start, end = (datetime.fromisoformat(stamp) for stamp in started.groups())
    assert start.tzinfo == UTC and start <= end <= datetime.now(UTC)

    everything = {"scn_MYSCENARIO", "scn_s1", "scn_s2", "scn_s3", "scn_left"}
    assert page.run(DISABLE_AND_REMEMBER) == ""
    assert set(page.namespace["previously_active"]) == everything
    assert not any(item.active for item in project.list_scenarios())
    # Inactive stops the triggers, not explicit runs, as in Dataiku.
    assert scenario.run_and_wait().outcome == "SUCCESS"
    assert page.run(ENABLE_FROM_IDS) == ""
    assert all(item.active for item in project.list_scenarios())

    printed = page.run(LIST_RUN_AS)
    assert "Scenario scn_left runs as user u1\n" in printed
    assert "Scenario scn_MYSCENARIO runs as user admin\n" in printed

    assert page.run(REASSIGN) == "Scenario scn_left used to run as u1, reassigning it\n"
    assert project.get_scenario("left").get_settings().effective_run_as == "u2"

    settings = scenario.get_settings()
    settings.add_daily_trigger(hour=(datetime.now(UTC).hour + 12) % 24, name="far from now")
    settings.save()
    printed = page.run(NEXT_RUN)
    next_run = datetime.fromisoformat(printed.removeprefix("Next run is at ").strip())
    assert next_run > datetime.now(UTC)

    printed = page.run(JOB_IDS)
    job_ids = page.namespace["all_job_ids"]
    last = scenario.get_last_finished_run()
    assert job_ids and set(job_ids) == set(last.get_details().task_ids)
    assert printed == f"All job ids started by scenario run {last.id} : {job_ids}\n"

    assert scenario.run_and_wait(params={"fail": "yes"}, no_fail=True).outcome == "FAILED"
    printed = page.run(FIRST_ERROR)
    assert printed.startswith("Error was: ErrorInfo(reason='SCRIPT_ERROR', type='RuntimeError'")
    assert "check failed: 3 orphans" in printed and "step='check'" in printed

    printed = page.run(RUN_SEVERAL_AND_WAIT)
    assert "All scenarios are complete\n" in printed
    runs = page.namespace["scenario_runs"]
    assert [run.scenario_id for run in runs] == ["scn_s1", "scn_s2", "scn_s3"]
    assert f"Scenario run ids and outcomes: {[(run.id, 'SUCCESS') for run in runs]}\n" in printed

    settings = scenario.get_settings()
    mail = settings.add_email_reporter(["team@company.com"], sender="old@company.com")
    settings.add_email_reporter(["oncall@company.com"], outcomes=["FAILED"])
    settings.save()
    ids = [reporter.id for reporter in settings.reporters]
    assert page.run(EMAIL_SENDER) == "".join(f"Updated reporter {i}\n" for i in ids)
    saved = project.get_scenario("MYSCENARIO").get_settings().reporters
    assert [r.email.sender for r in saved] == ["new.email.address@company.com"] * 2
    assert [list(r.email.recipients) for r in saved] == [list(mail.email.recipients), ["oncall@company.com"]]

    page.namespace["scenario_id"] = "MYSCENARIO"
    printed = page.run(LAST_RUN_RESULTS)
    assert printed.startswith("{'scenario_id': 'MYSCENARIO', 'outcome': 'FAILED', 'start_time': '")
