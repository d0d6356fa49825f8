"""The scenario API of the Python client (projects, scenarios, fires, runs, settings) against a live
coordinator with the fake executor: the "done when" list of the scenario API, one test each, and
its bad input."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import grpc
import pytest

from seedbed.api.v1 import access_pb2, access_pb2_grpc, run_pb2
from seedbed.client import (
    Client,
    ClientError,
    FireCancelledError,
    NoRunError,
    Project,
    RunFailedError,
    Scenario,
    ScenarioListItem,
    ScenarioRun,
    TriggerFire,
)
from seedbed.coordinator import running_in_thread
from seedbed.coordinator.fakes import FakeDispatcher
from tests.conftest import auth_metadata, eventually, settings_for

ALLOW = "ALLOW_CONCURRENT"


def _project(client: Client) -> Project:
    return client.get_default_project()


def _scenario(project: Project, scenario_id: str, script: str, *, overlap: str = "") -> Scenario:
    scenario = project.create_scenario(scenario_id, scenario_id.title(), script)
    if overlap:
        settings = scenario.get_settings()
        settings.overlap_policy = overlap
        settings.save()
    return scenario


def _add_user(address: str, user_id: str, role: int = access_pb2.ROLE_RUNNER) -> None:
    with grpc.insecure_channel(address) as channel:
        stub = access_pb2_grpc.AccessServiceStub(channel)
        stub.CreateUser(access_pb2.CreateUserRequest(user_id=user_id), metadata=auth_metadata())
        stub.SetMembership(
            access_pb2.SetMembershipRequest(user_id=user_id, project_key="default", role=role),
            metadata=auth_metadata(),
        )


def _duration(run: ScenarioRun) -> timedelta:
    assert run.duration is not None
    return run.duration


def _aware_utc(value: datetime | None) -> datetime:
    assert value is not None
    assert value.tzinfo is not None and value.utcoffset() == timedelta(0)
    return value


def test_run_and_wait(fake_coordinator: tuple[Any, Client]) -> None:
    _, client = fake_coordinator
    project = _project(client)
    hello = _scenario(project, "hello", "print one\nprint two")
    run = hello.run_and_wait(params={"rows": "3"})
    assert isinstance(run, ScenarioRun)
    assert run.outcome == "SUCCESS" and not run.running and run.params == {"rows": "3"}
    log = run.get_log().splitlines()
    assert [line for line in log if not line.startswith("[seedbed")] == ["one", "two"]
    assert any(line.startswith("[seedbed") for line in log)  # Seedbed's own lines, marked

    warns = _scenario(project, "warns", "warn careful")
    with pytest.raises(RunFailedError) as info:
        warns.run_and_wait()
    assert info.value.outcome == "WARNING" and info.value.run.outcome == "WARNING"
    assert "no_fail" in str(info.value)
    accepted = warns.run_and_wait(no_fail=True)
    assert accepted is not None and accepted.outcome == "WARNING"

    fails = _scenario(project, "fails", "step load\nfail boom")
    with pytest.raises(RunFailedError) as failed:
        fails.run_and_wait()
    assert failed.value.run.outcome == "FAILED"
    assert "in step 'load': RuntimeError: boom" in str(failed.value)


def test_run_then_poll_while_doing_other_work(fake_coordinator: tuple[Any, Client]) -> None:
    _, client = fake_coordinator
    slow = _scenario(_project(client), "slow", "print start\nsleep 1\nprint done")
    fire = slow.run()
    assert isinstance(fire, TriggerFire) and fire.id.startswith("fire_")
    run = fire.wait_for_scenario_run()
    assert run is not None and run.running and run.outcome is None  # does not wait for the end
    work_done = 0

    def finished() -> bool:
        nonlocal work_done
        work_done += 1  # the other work, between two looks at the run
        return not run.refresh().running

    eventually(finished)
    assert work_done > 1 and run.outcome == "SUCCESS"
    assert slow.get_current_run() is None


def test_last_completed_run_outcome_and_times(fake_coordinator: tuple[Any, Client]) -> None:
    _, client = fake_coordinator
    before = datetime.now(UTC) - timedelta(seconds=1)
    flaky = _scenario(_project(client), "flaky", "print ok", overlap=ALLOW)
    for lookup in (flaky.get_last_finished_run, flaky.get_last_successful_run):
        with pytest.raises(NoRunError, match="no_fail=True") as none:
            lookup()
        assert isinstance(none.value, ValueError) and none.value.scenario_id == "scn_flaky"
        assert lookup(no_fail=True) is None
    assert flaky.get_average_duration() is None
    good = flaky.run_and_wait()
    assert good is not None
    settings_script = "print ok\nfail broken"
    client.put_scenario("flaky", script=settings_script)
    bad = flaky.run_and_wait(no_fail=True)
    assert bad is not None

    last = flaky.get_last_finished_run()
    assert last is not None and last.id == bad.id and last.outcome == "FAILED"
    start, end = _aware_utc(last.start_time), _aware_utc(last.end_time)
    assert before <= start <= end <= datetime.now(UTC)
    assert last.duration == end - start
    successful = flaky.get_last_successful_run()
    assert successful is not None and successful.id == good.id
    # Over the runs that ended SUCCESS or WARNING only (the failed one is left out), in seconds.
    assert flaky.get_average_duration(limit=1) == pytest.approx(_duration(good).total_seconds())
    assert flaky.get_average_duration(limit=2) is None
    assert [r.id for r in flaky.get_last_runs(limit=10, only_finished_runs=True)] == [bad.id, good.id]
    assert [r.id for r in flaky.get_last_runs(limit=1)] == [bad.id]
    assert flaky.get_run(good.id).outcome == "SUCCESS"

    assert {r.id for r in flaky.get_runs_by_date(before)} == {good.id, bad.id}
    assert flaky.get_runs_by_date(before, before + timedelta(milliseconds=1)) == []
    with pytest.raises(ValueError, match="naive datetime"):
        flaky.get_runs_by_date(datetime.now())


def test_disable_all_remembering_which_were_active_then_reenable_those(
    fake_coordinator: tuple[Any, Client],
) -> None:
    _, client = fake_coordinator
    project = _project(client)
    for name in ("alpha", "beta", "gamma"):
        _scenario(project, name, "print hi")
    beta = project.get_scenario("beta").get_settings()
    beta.active = False
    beta.save()

    were_active = [item.id for item in project.list_scenarios() if item.active]
    for scenario in project.list_scenarios(as_type="objects"):
        settings = scenario.get_settings()
        settings.active = False
        settings.save()
    assert not any(item.active for item in project.list_scenarios())
    # Inactive stops the triggers, not explicit runs (as in Dataiku)…
    alpha = project.get_scenario("alpha")
    assert alpha.run_and_wait() is not None
    # … unless the scenario is set to refuse them too.
    strict = alpha.get_settings()
    assert strict.refuse_runs_when_inactive is False
    strict.refuse_runs_when_inactive = True
    strict.save()
    with pytest.raises(ClientError) as info:
        alpha.run()
    assert info.value.code == grpc.StatusCode.FAILED_PRECONDITION and "inactive" in info.value.details

    for scenario_id in were_active:
        settings = project.get_scenario(scenario_id).get_settings()
        settings.active = True
        settings.save()
    assert {item.id: item.active for item in project.list_scenarios()} == {
        "scn_alpha": True,
        "scn_beta": False,
        "scn_gamma": True,
    }


def test_list_each_scenarios_effective_run_as(fake_coordinator: tuple[Any, Client]) -> None:
    coordinator, client = fake_coordinator
    _add_user(coordinator.address, "u1")
    project = _project(client)
    _scenario(project, "mine", "print hi")
    theirs = _scenario(project, "theirs", "print hi").get_settings()
    theirs.run_as = "u1"
    theirs.save()
    assert theirs.effective_run_as == "u1"

    items = project.list_scenarios()
    assert all(isinstance(item, ScenarioListItem) for item in items)
    by_name = {item.name: (item.run_as, item.effective_run_as) for item in items}
    assert by_name == {"Mine": ("", "admin"), "Theirs": ("u1", "u1")}
    run = project.get_scenario("theirs").run_and_wait()
    assert run is not None and run.to_dict()["run_as"] == "u1"


def test_reassign_every_scenario_running_as_u1_to_u2(fake_coordinator: tuple[Any, Client]) -> None:
    coordinator, client = fake_coordinator
    for user in ("u1", "u2"):
        _add_user(coordinator.address, user)
    project = _project(client)
    for name, run_as in (("one", "u1"), ("two", "u1"), ("three", "u2"), ("four", "")):
        settings = _scenario(project, name, "print hi").get_settings()
        settings.run_as = run_as
        settings.save()

    moved = []
    for scenario in project.list_scenarios(as_type="objects"):
        settings = scenario.get_settings()
        if settings.effective_run_as == "u1":
            settings.run_as = "u2"
            settings.save()
            moved.append(scenario.name)
    assert sorted(moved) == ["One", "Two"]
    assert {item.name: item.effective_run_as for item in project.list_scenarios()} == {
        "One": "u2",
        "Two": "u2",
        "Three": "u2",
        "Four": "admin",
    }


def test_next_expected_run_of_a_scheduled_scenario(fake_coordinator: tuple[Any, Client]) -> None:
    _, client = fake_coordinator
    nightly = _scenario(_project(client), "nightly", "print hi")
    assert nightly.get_status().next_run is None
    settings = nightly.get_settings()
    settings.add_daily_trigger(hour=2, minute=30, timezone="Europe/Paris", name="night")
    settings.save()
    trigger = settings.raw_triggers[0]
    assert trigger["id"] and trigger["params"] == {"expression": "30 2 * * *", "timezone": "Europe/Paris"}
    assert settings.triggers[0].id == trigger["id"]

    status = nightly.get_status()
    next_run = _aware_utc(status.next_run)
    assert status.next_run_trigger_id == trigger["id"] and not status.running
    local = next_run.astimezone(ZoneInfo("Europe/Paris"))
    assert (local.hour, local.minute) == (2, 30)
    assert datetime.now(UTC) < next_run <= datetime.now(UTC) + timedelta(days=1, hours=1)

    settings.active = False
    settings.save()
    assert nightly.get_status().next_run is None

    with pytest.raises(ValueError, match="cannot be expressed evenly by cron"):
        settings.add_periodic_trigger(45)
    assert settings.add_periodic_trigger(15).cron.expression == "*/15 * * * *"
    assert settings.add_periodic_trigger(360).cron.expression == "0 */6 * * *"
    with pytest.raises(ValueError, match="time zone"):
        settings.add_hourly_trigger(5, timezone="Mars/Olympus")
    settings.add_cron_trigger("61 * * * *", name="broken")
    with pytest.raises(ClientError) as info:
        settings.save()
    assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT


def test_job_ids_started_by_the_last_run(fake_coordinator: tuple[Any, Client]) -> None:
    _, client = fake_coordinator
    script = "step customers\nbatch pg customers 1 1 100\nbatch pg customers 1 2 50\nend\nstep orders\n"
    script += "batch pg orders 2 1 10\nend"
    seeding = _scenario(_project(client), "seeding", script)
    seeding.run_and_wait()
    last = seeding.get_last_finished_run()
    assert last is not None
    details = last.get_details()
    assert [(s.number, s.name, s.outcome) for s in details.steps] == [
        (1, "customers", "SUCCESS"),
        (2, "orders", "SUCCESS"),
    ]
    assert details.steps[0].batch_ids == ["pg/1/1", "pg/1/2"]
    assert details.steps[0].job_ids == [*details.task_ids, "pg/1/1", "pg/1/2"]
    assert details.steps[1].batch_ids == ["pg/2/1"]
    assert details.task_ids and all(step.task_ids == details.task_ids for step in details.steps)
    assert details.first_error_details is None
    assert "customers" in last.get_log(step_id=1) or last.get_log(step_id=1) == ""


def test_first_error_of_a_failed_run(fake_coordinator: tuple[Any, Client]) -> None:
    _, client = fake_coordinator
    broken = _scenario(_project(client), "broken", "step load\nprint loading\nfail no such customer")
    run = broken.run_and_wait(no_fail=True)
    assert run is not None and run.outcome == "FAILED"
    error = run.get_details().first_error_details
    assert error is not None
    assert (error.reason, error.type, error.message, error.step) == (
        "SCRIPT_ERROR",
        "RuntimeError",
        "no such customer",
        "load",
    )
    assert run.get_details().steps[0].outcome == "FAILED"


def test_start_three_scenarios_and_wait_for_all(fake_coordinator: tuple[Any, Client]) -> None:
    _, client = fake_coordinator
    project = _project(client)
    scripts = {"first": "sleep 0.3\nprint a", "second": "warn w", "third": "sleep 0.1\nfail x"}
    fires = [_scenario(project, name, script).run() for name, script in scripts.items()]
    updates: list[tuple[int, str]] = []
    runs = client.wait_for_runs(fires, on_update=lambda i, item: updates.append((i, item.state)))
    assert [r.outcome if r else None for r in runs] == ["SUCCESS", "WARNING", "FAILED"]
    assert [r.scenario_id for r in runs if r] == [f.scenario_id for f in fires]
    assert {i for i, _ in updates} == {0, 1, 2}
    assert (0, "SUCCESS") in updates

    # The default overlap policy (SKIP) cancels a second fire while the first one's run is active.
    busy = _scenario(project, "busy", "sleep 0.5")
    again = [busy.run(), busy.run()]
    first, cancelled = client.wait_for_runs(again)
    assert first is not None and first.outcome == "SUCCESS" and cancelled is None
    assert again[1].cancelled and "already running" in again[1].cancel_reason
    with pytest.raises(FireCancelledError):
        client.wait_for_runs([busy.run(), busy.run()], no_fail=False)
    assert client.wait_for_runs([first]) == [first]  # already ended: no wait


@pytest.fixture
def loopback_hooks(store_url: str, tmp_path: Path) -> Iterator[Client]:
    """A coordinator (fake executor) whose operator lets webhook reporters name 127.0.0.1."""
    settings = settings_for(store_url, tmp_path, webhook_allowed_hosts=["127.0.0.1"])
    with running_in_thread(settings, FakeDispatcher()) as coordinator, Client(coordinator.address) as client:
        yield client


def test_change_the_sender_of_email_reporters(loopback_hooks: Client) -> None:
    client = loopback_hooks
    project = _project(client)
    for name in ("mailer", "hooked"):
        settings = _scenario(project, name, "print hi").get_settings()
        settings.add_webhook_reporter("http://127.0.0.1:9/hook", outcomes=["FAILED"])
        if name == "mailer":
            settings.add_email_reporter(["team@example.com"], sender="old@example.com")
        settings.save()

    changed = 0
    for scenario in project.list_scenarios(as_type="objects"):
        settings = scenario.get_settings()
        if settings.set_email_sender("Seedbed <seedbed@example.com>"):
            settings.save()
            changed += 1
    assert changed == 1
    reporters = project.get_scenario("mailer").get_settings().reporters
    assert [r.email.sender for r in reporters if r.HasField("email")] == ["Seedbed <seedbed@example.com>"]
    assert [r.webhook.url for r in reporters if r.HasField("webhook")] == ["http://127.0.0.1:9/hook"]
    assert all(r.id for r in reporters)

    # Dataiku's way: the raw dicts, changed in place and saved.
    settings = project.get_scenario("mailer").get_settings()
    for reporter in settings.raw_reporters:
        if reporter["messaging"]["type"] == "mail-scenario":
            reporter["messaging"]["configuration"]["sender"] = "new.email.address@company.com"
    settings.save()
    raw = project.get_scenario("mailer").get_settings().raw_reporters
    assert [r["messaging"]["configuration"].get("sender") for r in raw] == [
        None,
        "new.email.address@company.com",
    ]
    assert raw[1]["messaging"]["configuration"]["recipient"] == "team@example.com"
    assert raw[0]["messaging"] == {
        "type": "webhook-scenario",
        "configuration": {
            "url": "http://127.0.0.1:9/hook",
            "headers": {},
            "bodyTemplate": "",
            "signingSecret": raw[0]["messaging"]["configuration"]["signingSecret"],
        },
    }
    assert raw[0]["messaging"]["configuration"]["signingSecret"].startswith("whsec_")
    assert (raw[0]["phase"], raw[0]["outcomes"]) == ("END", ["FAILED"])


def test_export_the_last_run_of_every_scenario_as_json(fake_coordinator: tuple[Any, Client]) -> None:
    _, client = fake_coordinator
    project = _project(client)
    _scenario(project, "ran", "step s\nprint hi\nend").run_and_wait()
    _scenario(project, "never", "print hi")
    exported = {}
    for scenario in project.list_scenarios(as_type="objects"):
        last = scenario.get_last_finished_run(no_fail=True)
        exported[scenario.name] = last.to_dict() if last is not None else None
    document = json.loads(json.dumps(exported))
    assert document["Never"] is None
    ran = document["Ran"]
    assert ran["outcome"] == "SUCCESS" and ran["project_key"] == "default"
    assert datetime.fromisoformat(ran["end_time"]).tzinfo is not None
    assert ran["duration_seconds"] >= 0 and ran["steps"][0]["name"] == "s"


def test_fire_cancelled_by_the_overlap_policy(fake_coordinator: tuple[Any, Client]) -> None:
    _, client = fake_coordinator
    busy = _scenario(_project(client), "busy", "sleep 5")
    first_fire = busy.run()
    first = first_fire.wait_for_scenario_run()
    assert first is not None
    assert first_fire.is_cancelled() is False
    found = first_fire.get_scenario_run()
    assert found is not None and found.id == first.id
    second = busy.run()
    assert second.is_cancelled() and second.is_cancelled(refresh=True)
    assert second.get_scenario_run() is None
    with pytest.raises(FireCancelledError) as info:
        second.wait_for_scenario_run()
    assert "already running" in info.value.reason
    assert second.wait_for_scenario_run(no_fail=True) is None
    assert busy.get_current_run() is not None
    assert busy.get_status().running

    assert first.abort("enough") is False
    with pytest.raises(RunFailedError) as aborted:
        first.wait_for_completion()
    assert aborted.value.outcome == "ABORTED"
    assert first.wait_for_completion(no_fail=True).outcome == "ABORTED"
    assert first.abort("again") is True  # already finished: a no-op, said so


def test_unknown_project_scenario_and_run(fake_coordinator: tuple[Any, Client]) -> None:
    _, client = fake_coordinator
    project = _project(client)
    assert [p.key for p in client.list_projects()] == ["default"]
    _scenario(project, "known", "print hi")
    for call in (
        lambda: client.get_project("nope"),
        lambda: project.get_scenario("nope"),
        lambda: project.get_scenario("known").get_run("run_nope"),
        lambda: ScenarioRun(client, client.get_run("run_nope")),
    ):
        with pytest.raises(ClientError) as info:
            call()
        assert info.value.code == grpc.StatusCode.NOT_FOUND, info.value
    with pytest.raises(ValueError, match="as_type"):
        project.list_scenarios(as_type="dicts")  # type: ignore[call-overload]


def test_stream_logs_of_a_run(fake_coordinator: tuple[Any, Client]) -> None:
    _, client = fake_coordinator
    run = _scenario(_project(client), "chatty", "print a\nprint b").run().wait_for_scenario_run()
    assert run is not None
    texts = [e.text for e in run.stream_logs(follow=True) if e.line.stream == run_pb2.LOG_STREAM_STDOUT]
    assert texts == ["a", "b"]
    assert run.outcome == "SUCCESS"  # the stream's end updated the run


def test_waits_ride_the_watch_stream_not_polling(
    fake_coordinator: tuple[Any, Client], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, client = fake_coordinator
    project = _project(client)
    fires = [_scenario(project, name, "sleep 0.3\nprint done").run() for name in ("left", "right")]
    run = project.get_scenario("left").get_current_run()
    assert run is not None and run.running

    def polled(*_: Any, **__: Any) -> None:
        raise AssertionError("a wait polled GetRun/GetTriggerFire instead of following WatchRuns")

    monkeypatch.setattr(client, "get_run", polled)
    monkeypatch.setattr(client, "get_fire", polled)
    runs = client.wait_for_runs(fires)
    assert [r.outcome if r else None for r in runs] == ["SUCCESS", "SUCCESS"]
    assert run.wait_for_completion().outcome == "SUCCESS"


def _key_for(address: str, user_id: str) -> str:
    with grpc.insecure_channel(address) as channel:
        stub = access_pb2_grpc.AccessServiceStub(channel)
        response = stub.CreateApiKey(
            access_pb2.CreateApiKeyRequest(user_id=user_id), metadata=auth_metadata()
        )
        return str(response.secret)


def test_a_key_without_the_role_is_refused(fake_coordinator: tuple[Any, Client]) -> None:
    coordinator, client = fake_coordinator
    _scenario(_project(client), "guarded", "print hi")
    _add_user(coordinator.address, "viewer", access_pb2.ROLE_VIEWER)
    _add_user(coordinator.address, "runner", access_pb2.ROLE_RUNNER)
    with Client(coordinator.address, api_key=_key_for(coordinator.address, "viewer")) as viewer:
        project = viewer.get_default_project()
        assert project.role == "VIEWER"
        scenario = project.get_scenario("guarded")
        assert [item.id for item in project.list_scenarios()] == ["scn_guarded"]
        with pytest.raises(ClientError) as info:
            scenario.run()
        assert info.value.code == grpc.StatusCode.PERMISSION_DENIED
    with Client(coordinator.address, api_key=_key_for(coordinator.address, "runner")) as runner:
        scenario = runner.get_default_project().get_scenario("guarded")
        assert scenario.run_and_wait() is not None
        settings = scenario.get_settings()
        settings.run_as = "viewer"
        with pytest.raises(ClientError) as info:
            settings.save()
        assert info.value.code == grpc.StatusCode.PERMISSION_DENIED


def test_create_scenario_in_dataikus_form(fake_coordinator: tuple[Any, Client]) -> None:
    _, client = fake_coordinator
    project = _project(client)
    first = project.create_scenario("My scenario", type="custom_python")
    assert (first.id, first.name) == ("scn_MYSCENARIO", "My scenario")
    assert project.get_scenario("MYSCENARIO").id == first.id
    assert first.get_payload().startswith("# A new scenario")
    assert first.run_and_wait() is not None  # the placeholder runs, doing nothing
    first.set_payload("print hello")
    assert first.get_payload() == "print hello" and first.raw.script == "print hello"
    # The same name again: Dataiku allows it, the id gets a suffix.
    assert project.create_scenario("My scenario", type="custom_python").id == "scn_MYSCENARIO_2"

    definition = {
        "script": "print nightly",
        "active": False,
        "runAsUser": None,
        "params": {},
        "triggers": [{"type": "cron", "params": {"expression": "0 2 * * *", "timezone": "UTC"}}],
        "reporters": [
            {
                "phase": "END",
                "outcomes": ["FAILED"],
                "messaging": {"type": "mail-scenario", "configuration": {"recipient": "a@x.org, b@x.org"}},
            }
        ],
    }
    nightly = project.create_scenario("Nightly-load 2", "custom_python", definition)  # positional
    assert nightly.id == "scn_NIGHTLYLOAD2" and nightly.get_payload() == "print nightly"
    settings = nightly.get_settings()
    assert settings.active is False and settings.triggers[0].cron.expression == "0 2 * * *"
    assert list(settings.reporters[0].email.recipients) == ["a@x.org", "b@x.org"]
    assert settings.raw_triggers[0]["id"] and settings.raw_reporters[0]["id"]

    with pytest.raises(ValueError, match="Python scripts"):
        project.create_scenario("Steps", type="step_based")
    with pytest.raises(ValueError, match="unknown key.*'checklists'"):
        project.create_scenario("Odd", type="custom_python", definition={"checklists": []})
    with pytest.raises(ValueError, match=r"definition.reporters\[0\].phase"):
        project.create_scenario(
            "Odd", type="custom_python", definition={"reporters": [{"phase": "X", "messaging": {}}]}
        )
    with pytest.raises(TypeError, match="needs the scenario's script"):
        project.create_scenario("plain", "Plain")
    with pytest.raises(ValueError, match="extension"):
        first.get_payload(extension="sql")
    assert [item.id for item in project.list_scenarios()] == [
        "scn_MYSCENARIO",
        "scn_MYSCENARIO_2",
        "scn_NIGHTLYLOAD2",
    ]


def test_raw_dicts_and_messages_stay_in_step(fake_coordinator: tuple[Any, Client]) -> None:
    _, client = fake_coordinator
    scenario = _scenario(_project(client), "both", "print hi")
    settings = scenario.get_settings()
    triggers = settings.raw_triggers
    assert triggers == []
    triggers.append({"name": "night", "params": {"expression": "0 3 * * *"}, "runParams": {"rows": "5"}})
    added = settings.add_hourly_trigger(15, trigger_id="hourly")  # the dict above is taken in first
    assert [t.name or t.id for t in settings.triggers] == ["night", "hourly"] and added.id == "hourly"
    assert triggers is settings.raw_triggers and [t.get("id") for t in triggers] == ["", "hourly"]
    first = triggers[0]
    settings.save()
    assert first["id"] and first["runParams"] == {"rows": "5"}  # the same dict, with the id it got
    assert triggers[1]["params"] == {"expression": "15 * * * *", "timezone": "UTC"}

    settings.triggers[1].active = False  # a message changed: the dicts follow at the next access
    assert settings.raw_triggers[1]["active"] is False and triggers[1]["active"] is False
    message = settings.triggers[1]
    triggers[0]["active"] = False
    message.active = True  # both forms changed between two accesses: refused, neither wins
    with pytest.raises(ValueError, match="both changed"):
        settings.save()

    settings = scenario.get_settings()  # start again from what was saved
    assert [t["id"] for t in settings.raw_triggers] == [first["id"], "hourly"]
    reporters = settings.raw_reporters
    reporters.append({"runCondition": "outcome == 'FAILED'", "messaging": {}})
    with pytest.raises(ValueError, match=r"raw_reporters\[0\]: unknown key 'runCondition' \(.*'outcomes'"):
        settings.save()
    reporters[0] = {"messaging": {"type": "slack-scenario", "configuration": {}}}
    with pytest.raises(ValueError, match=r"raw_reporters\[0\].messaging.type: 'slack-scenario'"):
        _ = settings.reporters
    reporters[0] = {"messaging": {"type": "mail-scenario", "configuration": {"channelId": "smtp"}}}
    with pytest.raises(ValueError, match="SEEDBED_SMTP_URL"):
        _ = settings.raw_reporters
    reporters[0] = {"outcomes": ["BROKEN"], "messaging": {"type": "webhook-scenario", "configuration": {}}}
    with pytest.raises(ValueError, match="outcome"):
        _ = settings.raw_reporters
    reporters[0] = {"active": "yes", "messaging": {"type": "webhook-scenario", "configuration": {"url": "x"}}}
    with pytest.raises(ValueError, match=r"raw_reporters\[0\].active: expected True or False"):
        _ = settings.raw_reporters
    settings.raw_triggers.append({"type": "temporal", "params": {"frequency": "Daily"}})
    with pytest.raises(ValueError, match="cron schedules"):
        _ = settings.triggers


def test_a_waiting_fire_has_no_run_yet(fake_coordinator: tuple[Any, Client]) -> None:
    _, client = fake_coordinator
    queued = _scenario(_project(client), "queued", "sleep 5", overlap="QUEUE_ONE")
    running = queued.run()
    waiting = queued.run()
    assert waiting.state == "PENDING" and not waiting.is_cancelled(refresh=True)
    assert waiting.get_scenario_run() is None
    run = running.get_scenario_run()
    assert run is not None
    run.abort()
    later = eventually(lambda: waiting.get_scenario_run())
    assert later.scenario_id == "scn_queued"
    later.abort()


def _filled(message: Any) -> Any:
    """``message`` with every field of its type set to something other than its default."""
    for field in message.DESCRIPTOR.fields:
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            getattr(message, field.name)[f"{field.name}-key"] = f"{field.name}-value"
        elif field.message_type is not None:
            _filled(getattr(message, field.name))
        elif field.is_repeated:
            values = (
                [v.number for v in field.enum_type.values[-2:]] if field.enum_type else ["a@x.org", "b@x.org"]
            )
            getattr(message, field.name).extend(values)
        elif field.type == field.TYPE_BOOL:
            setattr(message, field.name, False)  # the default of `active` is True
        elif field.type == field.TYPE_STRING:
            setattr(message, field.name, f"{field.name}-text")
        else:
            setattr(message, field.name, 7)
    return message


def test_raw_dicts_carry_every_field_of_the_contract() -> None:
    """A trigger or reporter read into a dict and back is the same message: a field added to the
    contract and forgotten here would be lost on every save of code using raw_triggers/reporters."""
    from seedbed.api.v1 import scenario_pb2
    from seedbed.client._raw import reporter_from_dict, reporter_to_dict, trigger_from_dict, trigger_to_dict

    trigger = _filled(scenario_pb2.Trigger())
    assert trigger_from_dict(trigger_to_dict(trigger), "t") == trigger
    for target in ("email", "webhook"):
        reporter = _filled(scenario_pb2.Reporter())
        reporter.ClearField("target")
        _filled(getattr(reporter, target))
        del reporter.events[:]
        reporter.events.extend([1, 2])  # both phases: START_AND_END
        assert reporter_from_dict(reporter_to_dict(reporter), "r") == reporter, target
