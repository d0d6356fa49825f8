"""``seedbed scenario …`` and ``seedbed run details|log|export`` against a live coordinator with the
fake executor: exit codes, the text a person reads, and the JSON a script reads."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from seedbed.cli._main import main
from seedbed.client import Client, Project


class Cli:
    def __init__(self, address: str, capsys: pytest.CaptureFixture[str]) -> None:
        self._address = address
        self._capsys = capsys

    def __call__(self, *argv: str) -> tuple[int, str, str]:
        self._capsys.readouterr()
        code = main(["--address", self._address, *argv])
        out, err = self._capsys.readouterr()
        return code, out, err

    def json(self, *argv: str) -> Any:
        code, out, err = self(*argv, "--json")
        assert code == 0, err
        return json.loads(out)


@pytest.fixture
def cli(fake_coordinator: tuple[Any, Client], capsys: pytest.CaptureFixture[str]) -> Cli:
    coordinator, _ = fake_coordinator
    return Cli(coordinator.address, capsys)


def _project(fake_coordinator: tuple[Any, Client]) -> Project:
    return fake_coordinator[1].get_default_project()


def test_list_show_status_and_settings(fake_coordinator: tuple[Any, Client], cli: Cli) -> None:
    project = _project(fake_coordinator)
    project.create_scenario("alpha", "Alpha", "print hi")
    project.create_scenario("beta", "Beta", "print hi")
    code, out, _ = cli("scenario", "list")
    assert code == 0
    assert out.splitlines()[0].split()[:4] == ["SCENARIO", "ACTIVE", "RUN", "AS"]
    assert "scn_alpha" in out and "admin" in out

    listing = cli.json("scenario", "list")
    assert sorted((s["id"], s["active"], s["effective_run_as"]) for s in listing) == [
        ("scn_alpha", True, "admin"),
        ("scn_beta", True, "admin"),
    ]
    assert all(s["status"]["next_run"] is None for s in listing)

    code, out, _ = cli("scenario", "add-trigger", "alpha", "--daily", "02:30", "--timezone", "Europe/Paris")
    assert code == 0 and "next run:" in out and "next run: -" not in out
    settings = cli.json("scenario", "settings", "alpha")
    assert settings["triggers"][0]["cron"] == {"expression": "30 2 * * *", "timezone": "Europe/Paris"}
    assert settings["effective_run_as"] == "admin" and settings["overlap_policy"] == "SKIP"
    status = cli.json("scenario", "status", "alpha")
    assert status["next_run"] is not None and status["running"] is False
    shown = cli.json("scenario", "show", "alpha")
    assert shown["scenario"]["id"] == "scn_alpha" and shown["status"]["next_run"] == status["next_run"]
    code, out, _ = cli("scenario", "show", "alpha")
    assert code == 0 and "cron '30 2 * * *' Europe/Paris" in out

    trigger_id = settings["triggers"][0]["id"]
    assert cli("scenario", "remove-trigger", "alpha", trigger_id)[0] == 0
    assert cli.json("scenario", "settings", "alpha").get("triggers", []) == []
    code, _, err = cli("scenario", "remove-trigger", "alpha", "nope")
    assert code == 2 and "no trigger 'nope'" in err


def test_bad_trigger_options_are_usage_errors(fake_coordinator: tuple[Any, Client], cli: Cli) -> None:
    _project(fake_coordinator).create_scenario("alpha", "Alpha", "print hi")
    code, _, err = cli("scenario", "add-trigger", "alpha", "--every-minutes", "45")
    assert code == 2 and "cannot be expressed evenly by cron" in err
    code, _, err = cli("scenario", "add-trigger", "alpha", "--daily", "2h30")
    assert code == 2 and "HH:MM" in err
    code, _, err = cli("scenario", "add-trigger", "alpha", "--cron", "61 * * * *")
    assert code == 2 and "INVALID_ARGUMENT" in err
    code, _, err = cli("scenario", "show", "nope")
    assert code == 2 and "NOT_FOUND" in err
    code, _, err = cli("scenario", "list", "--project", "nope")
    assert code == 2 and "NOT_FOUND" in err


def test_disable_all_saving_state_then_enable_exactly_those(
    fake_coordinator: tuple[Any, Client], cli: Cli, tmp_path: Path
) -> None:
    project = _project(fake_coordinator)
    for name in ("alpha", "beta", "gamma"):
        project.create_scenario(name, name.title(), "print hi")
    assert cli("scenario", "disable", "beta")[0] == 0
    state = tmp_path / "active.json"
    result = cli.json("scenario", "disable", "--all", "--save-state", str(state))
    assert sorted(result["disabled"]) == ["scn_alpha", "scn_gamma"]
    assert sorted(json.loads(state.read_text())["active"]) == ["scn_alpha", "scn_gamma"]
    assert not any(s["active"] for s in cli.json("scenario", "list"))

    enabled = cli.json("scenario", "enable", "--from-state", str(state))
    assert sorted(enabled["enabled"]) == ["scn_alpha", "scn_gamma"]
    assert {s["id"]: s["active"] for s in cli.json("scenario", "list")} == {
        "scn_alpha": True,
        "scn_beta": False,
        "scn_gamma": True,
    }
    code, _, err = cli("scenario", "disable")
    assert code == 2 and "--all" in err


def test_set_run_as_and_reassign_from_user_to_user(fake_coordinator: tuple[Any, Client], cli: Cli) -> None:
    from tests.unit.test_client_objects import _add_user

    coordinator, _ = fake_coordinator
    for user in ("u1", "u2"):
        _add_user(coordinator.address, user)
    project = _project(fake_coordinator)
    for name in ("one", "two", "three"):
        project.create_scenario(name, name.title(), "print hi")
    assert cli.json("scenario", "set-run-as", "one", "two", "--user", "u1")["changed"] == [
        "scn_one",
        "scn_two",
    ]
    moved = cli.json("scenario", "set-run-as", "--from-user", "u1", "--to-user", "u2")
    assert sorted(moved["changed"]) == ["scn_one", "scn_two"]
    assert {s["id"]: s["effective_run_as"] for s in cli.json("scenario", "list")} == {
        "scn_one": "u2",
        "scn_two": "u2",
        "scn_three": "admin",
    }
    code, _, err = cli("scenario", "set-run-as", "--from-user", "u1")
    assert code == 2 and "--to-user" in err


def test_set_sender_of_email_reporters(fake_coordinator: tuple[Any, Client], cli: Cli) -> None:
    project = _project(fake_coordinator)
    for name in ("mailer", "quiet"):
        settings = project.create_scenario(name, name.title(), "print hi").get_settings()
        if name == "mailer":
            settings.add_email_reporter(["team@example.com"], sender="old@example.com")
            settings.save()
    result = cli.json("scenario", "set-sender", "--sender", "new@example.com", "--all")
    assert result["changed"] == {"scn_mailer": 1}
    reporters = cli.json("scenario", "settings", "mailer")["reporters"]
    assert reporters[0]["email"]["sender"] == "new@example.com"


def test_fire_wait_table_and_worst_outcome_exit_code(fake_coordinator: tuple[Any, Client], cli: Cli) -> None:
    project = _project(fake_coordinator)
    project.create_scenario("good", "Good", "sleep 0.2\nprint ok")
    project.create_scenario("warns", "Warns", "warn careful")
    project.create_scenario("bad", "Bad", "fail boom")

    code, out, _ = cli("scenario", "fire", "good", "warns", "--wait")
    assert code == 4  # WARNING is the worst
    lines = out.splitlines()
    assert any("scn_good" in line and "SUCCESS" in line for line in lines)  # one line per change
    assert any("scn_warns" in line and "WARNING" in line for line in lines)

    code, out, _ = cli("scenario", "fire", "good", "bad", "warns", "--wait", "--json")
    results = json.loads(out)
    assert code == 1
    assert [r["run"]["outcome"] for r in results] == ["SUCCESS", "FAILED", "WARNING"]
    assert cli("scenario", "fire", "good", "--wait")[0] == 0

    project.create_scenario("busy", "Busy", "sleep 0.5")
    code, out, _ = cli("scenario", "fire", "busy", "busy", "--wait", "--json")
    results = json.loads(out)
    assert code == 1  # a cancelled fire counts as a failure
    assert results[1]["fire_state"] == "CANCELLED" and results[1]["run"] is None
    assert "already running" in results[1]["cancel_reason"]

    code, out, _ = cli("scenario", "fire", "good", "--param", "rows=5")
    assert code == 0 and "RUN_CREATED" in out


def test_runs_details_log_and_export(fake_coordinator: tuple[Any, Client], cli: Cli) -> None:
    project = _project(fake_coordinator)
    seeding = project.create_scenario(
        "seeding", "Seeding", "step customers\nprint loading\nbatch pg customers 1 1 10\nend\nfail late"
    )
    project.create_scenario("never", "Never", "print hi")
    failed = seeding.run_and_wait(no_fail=True)
    assert failed is not None
    client = fake_coordinator[1]
    client.put_scenario("seeding", script="print fine")
    good = seeding.run_and_wait()
    assert good is not None

    runs = cli.json("scenario", "runs", "seeding")
    assert [r["id"] for r in runs] == [good.id, failed.id]
    assert [r["id"] for r in cli.json("scenario", "runs", "seeding", "--successful")] == [good.id]
    assert [r["id"] for r in cli.json("scenario", "runs", "seeding", "--limit", "1")] == [good.id]
    since = cli.json("scenario", "runs", "seeding", "--from", "2000-01-01", "--finished")
    assert len(since) == 2
    assert cli.json("scenario", "runs", "seeding", "--from", "2000-01-01", "--to", "2000-01-02") == []
    code, out, _ = cli("scenario", "runs", "seeding")
    assert code == 0 and "RuntimeError: late" in out

    details = cli.json("run", "details", failed.id)
    assert details["outcome"] == "FAILED" and details["first_error"]["message"] == "late"
    assert details["steps"][0]["batch_ids"] == ["pg/1/1"] and details["task_ids"]
    code, out, _ = cli("run", "details", failed.id)
    assert code == 0 and "first error" in out and "pg/1/1" in out

    code, out, _ = cli("run", "log", failed.id)
    assert code == 0 and "loading" in out
    code, out, _ = cli("run", "log", failed.id, "--step", "customers")
    assert code == 0 and "loading" in out

    exported = cli.json("run", "export", "--last")
    by_id = {e["scenario_id"]: e["last_run"] for e in exported}
    assert by_id["scn_never"] is None and by_id["scn_seeding"]["id"] == good.id
    code, _, err = cli("run", "export")
    assert code == 2 and "--last" in err
    code, _, err = cli("run", "details")
    assert code == 2 and "run id" in err


def test_live_table_redraws_in_place_on_a_terminal(fake_coordinator: tuple[Any, Client]) -> None:
    import io

    from seedbed.cli._scenario_runs import LiveTable, exit_code

    _, client = fake_coordinator
    project = _project(fake_coordinator)
    fires = [project.create_scenario(n, n.title(), "sleep 0.2").run() for n in ("left", "right")]
    screen = io.StringIO()
    table = LiveTable(fires, screen, redraw=True)
    table.draw()
    client.wait_for_runs(fires, on_update=table.update)
    frames = screen.getvalue().split("\x1b[3A")  # each redraw moves up over the header and 2 rows
    assert len(frames) > 1
    last = [line.removeprefix("\x1b[2K") for line in frames[-1].splitlines()]
    assert last[0].split()[:4] == ["SCENARIO", "FIRE", "RUN", "STATE"]
    assert [line.split()[3] for line in last[1:]] == ["SUCCESS", "SUCCESS"]

    assert exit_code(["SUCCESS", "SUCCESS"]) == 0
    assert exit_code(["SUCCESS", "WARNING"]) == 4
    assert exit_code(["WARNING", "ABORTED"]) == 3
    assert exit_code(["ABORTED", "FAILED", "WARNING"]) == 1
    assert exit_code(["SUCCESS", None]) == 1  # a cancelled fire
