"""``seedbed scenario …`` against a live coordinator with the fake executor: exit codes, the text a
person reads (on a file and on a terminal, 40 columns included), the JSON a script reads, and the
old spellings."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from seedbed.api.v1 import run_pb2, scenario_pb2
from seedbed.cli import main
from seedbed.cli._app import cli as root
from seedbed.cli._context import Globals
from seedbed.cli._scenarios import scenario
from seedbed.client import Client, Project
from tests.conftest import Cli, eventually

_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@pytest.fixture
def cli(
    fake_coordinator: tuple[Any, Client], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Cli:
    coordinator, _ = fake_coordinator
    monkeypatch.setenv("COLUMNS", "160")  # a wide file: rows are not wrapped (narrow ones: below)
    return Cli(coordinator.address, capsys)


def _project(fake_coordinator: tuple[Any, Client]) -> Project:
    return fake_coordinator[1].get_default_project()


def test_list_show_triggers_and_old_spellings(fake_coordinator: tuple[Any, Client], cli: Cli) -> None:
    project = _project(fake_coordinator)
    project.create_scenario("alpha", "Alpha", "print hi\n\tprint \x1b[2Jthere")
    project.create_scenario("beta", "Beta", "print hi")
    code, out, _ = cli("scenario", "list")
    assert code == 0
    assert out.splitlines()[0].split() == ["SCENARIO", "ACTIVE", "RUN", "AS", "NEXT", "RUN", "LAST", "NAME"]
    assert "scn_alpha" in out and "admin" in out

    listing = cli.json("scenario", "list")  # the contract's Scenario, as REST answers it
    assert sorted((s["id"], s["effective_run_as"], s["revision"]) for s in listing) == [
        ("scn_alpha", "admin", "1"),
        ("scn_beta", "admin", "1"),
    ]
    assert {"script", "settings", "project_key", "update_time"} <= set(listing[0])

    code, out, _ = cli("scenario", "add-trigger", "alpha", "--daily", "02:30", "--timezone", "Europe/Paris")
    assert code == 0 and "next run: 20" in out
    shown = cli.json("scenario", "show", "alpha")
    trigger = shown["scenario"]["settings"]["triggers"][0]
    assert trigger["cron"] == {"expression": "30 2 * * *", "timezone": "Europe/Paris"}
    assert shown["status"]["next_run_time"] and shown["status"]["running"] is False
    assert shown["status"]["next_run_trigger_id"] == trigger["id"]
    code, out, _ = cli("scenario", "show", "alpha")
    assert code == 0 and "30 2 * * * Europe/Paris" in out and "print hi" not in out
    code, out, _ = cli("scenario", "show", "alpha", "--script")
    assert code == 0 and "    print ?[2Jthere" in out and "\x1b" not in out  # nothing steers the terminal

    # Old spellings: each works and says its new name.
    code, out, err = cli("scenario", "status", "alpha")
    assert code == 0 and "Europe/Paris" in out and "`seedbed scenario show`" in err
    code, out, err = cli("scenario", "settings", "alpha", "--json")
    assert code == 0 and "is now `seedbed scenario show`" in err and "is now `-o json`" in err
    assert json.loads(out)["scenario"]["id"] == "scn_alpha"

    code, out, _ = cli("scenario", "remove-trigger", "alpha", trigger["id"], "-o", "json")
    assert code == 0 and json.loads(out)["removed"]["id"] == trigger["id"]
    assert (
        "triggers" not in cli.json("scenario", "show", "alpha")["scenario"]["settings"]
        or not (cli.json("scenario", "show", "alpha")["scenario"]["settings"]["triggers"])
    )
    code, _, err = cli("scenario", "remove-trigger", "alpha", "nope")
    assert code == 5 and "no trigger 'nope'" in err


def test_bad_input_and_refusals_have_their_exit_codes(fake_coordinator: tuple[Any, Client], cli: Cli) -> None:
    _project(fake_coordinator).create_scenario("alpha", "Alpha", "print hi")
    code, _, err = cli("scenario", "add-trigger", "alpha", "--every-minutes", "45")
    assert code == 2 and "cannot be expressed evenly by cron" in err
    code, _, err = cli("scenario", "add-trigger", "alpha", "--daily", "2h30")
    assert code == 2 and "HH:MM" in err
    code, _, err = cli("scenario", "add-trigger", "alpha", "--daily", "02:30", "--hourly", "5")
    assert code == 2 and "one of --cron" in err
    code, _, err = cli("scenario", "add-trigger", "alpha", "--cron", "61 * * * *")
    assert code == 8 and "INVALID_ARGUMENT" in err
    code, _, err = cli("scenario", "show", "nope")
    assert code == 5 and "NOT_FOUND" in err
    code, _, err = cli("scenario", "show", "alpha", "--project", "nope")
    assert code == 5
    code, _, err = cli("scenario", "list", "--project", "nope")
    assert code == 5 and "NOT_FOUND" in err
    code, _, err = cli("scenario", "fire", "alpha", "-p", "novalue")
    assert code == 2 and "KEY=VALUE" in err
    code, _, err = cli("scenario", "shwo", "alpha")
    assert code == 2 and "Did you mean: show" in err


def test_usage_errors_are_found_before_any_call(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing answers at this address: only a check made before any call can answer 2."""
    monkeypatch.delenv("VISUAL", raising=False)
    monkeypatch.delenv("EDITOR", raising=False)
    for argv, words in (
        (["scenario", "edit", "a"], "--script FILE"),
        (["scenario", "disable"], "--all"),
        (["scenario", "enable", "a", "--all"], "--from-state FILE"),
        (["scenario", "set-run-as", "--from-user", "u1"], "--to-user"),
        (["scenario", "runs", "a", "--to", "2026-01-01"], "--to goes with --from"),
        (["scenario", "delete", "a"], "--yes"),
        (["scenario", "create", "a", "--script", "/nonexistent/x.py"], "cannot read the script"),
    ):
        capsys.readouterr()
        assert main(["--address", "127.0.0.1:9", *argv]) == 2, argv
        assert words in capsys.readouterr().err, argv


def test_create_validate_only_settings_and_mixed_case_ids(
    fake_coordinator: tuple[Any, Client], cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = tmp_path / "nightly.py"
    script.write_text("print nightly\n")
    settings = tmp_path / "settings.yaml"
    settings.write_text("triggers:\n  - cron: {expression: '0 6 * * *', timezone: UTC}\n    name: morning\n")
    argv = ["scenario", "create", "MyNightly", "--script", str(script), "--name", "Nightly"]
    options = ["--settings", str(settings), "--timeout", "600", "--memory-limit", "1G"]
    options += ["--overlap-policy", "queue_one", "--max-attempts", "3"]

    checked = cli.json(*argv, *options, "--validate-only")
    assert checked["id"] == "scn_MyNightly" and checked["settings"]["timeout_seconds"] == 600
    assert cli("scenario", "show", "MyNightly")[0] == 5  # nothing was written

    code, out, _ = cli(*argv, *options)
    assert code == 0 and "created scenario scn_MyNightly in project default (revision 1)" in out
    made = cli.json("scenario", "show", "MyNightly")["scenario"]
    assert made["name"] == "Nightly" and made["script"] == "print nightly\n"
    assert made["settings"]["memory_limit_bytes"] == str(2**30)
    assert made["settings"]["overlap_policy"] == "OVERLAP_POLICY_QUEUE_ONE"
    assert made["settings"]["retry_policy"]["maximum_attempts"] == 3
    assert made["settings"]["triggers"][0]["name"] == "morning"

    code, _, err = cli(*argv)
    assert code == 8 and "already exists" in err and "scenario edit" in err
    monkeypatch.setattr(sys, "stdin", io.StringIO("print from stdin\n"))  # --script - reads stdin
    assert cli("scenario", "create", "piped", "--script", "-")[0] == 0
    assert cli.json("scenario", "show", "piped")["scenario"]["script"] == "print from stdin\n"
    bad = tmp_path / "bad.yaml"
    bad.write_text("timeout: 5\n")
    code, _, err = cli("scenario", "create", "other", "--script", str(script), "--settings", str(bad))
    assert code == 2 and "not a ScenarioSettings document" in err
    code, _, err = cli("scenario", "create", "other", "--script", str(script), "--memory-limit", "lots")
    assert code == 2 and "not a size" in err


def _editor(tmp_path: Path, body: str) -> str:
    """An $EDITOR: a Python script given the file to edit as its argument."""
    path = tmp_path / "editor.py"
    path.write_text("import os, sys\nfrom seedbed.client import Client\npath = sys.argv[1]\n" + body)
    return f"{sys.executable} {path}"


def test_edit_saves_with_the_revision_it_read(
    fake_coordinator: tuple[Any, Client], cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, client = fake_coordinator
    _project(fake_coordinator).create_scenario("alpha", "Alpha", "print one\n")
    monkeypatch.delenv("VISUAL", raising=False)

    monkeypatch.setenv("EDITOR", _editor(tmp_path, "open(path, 'a').write('print two\\n')\n"))
    saved = cli.json("scenario", "edit", "alpha")
    assert saved["revision"] == "2" and saved["script"] == "print one\nprint two\n"

    monkeypatch.setenv("EDITOR", _editor(tmp_path, "pass\n"))
    code, _, err = cli("scenario", "edit", "alpha")
    assert code == 0 and "no change" in err and client.get_scenario("alpha").revision == 2

    # Someone else saves while the editor is open: refused, nothing lost, the merge explained.
    theirs = (
        "with Client(os.environ['ADDRESS']) as c:\n    c.put_scenario('alpha', script='print theirs\\n')\n"
    )
    monkeypatch.setenv("ADDRESS", cli.address)
    monkeypatch.setenv("EDITOR", _editor(tmp_path, theirs + "open(path, 'w').write('print mine\\n')\n"))
    code, _, err = cli("scenario", "edit", "alpha")
    assert code == 8 and "changed by someone else" in err and "nothing was written" in err
    kept = Path(re.search(r"your text is kept in (\S+)", err).group(1))  # type: ignore[union-attr]
    assert kept.read_text() == "print mine\n"
    assert f"seedbed scenario edit scn_alpha --script {kept}" in err
    assert client.get_scenario("alpha").script == "print theirs\n"

    kept.write_text("print theirs\nprint mine\n")  # merged
    code, out, _ = cli("scenario", "edit", "alpha", "--script", str(kept))
    assert code == 0 and "revision 4" in out
    assert client.get_scenario("alpha").script == "print theirs\nprint mine\n"
    kept.unlink()


class Terminal(io.StringIO):
    """Standard input as a person's keyboard: answers typed in advance."""

    def isatty(self) -> bool:
        return True


def test_delete_asks_on_a_terminal_and_needs_yes_elsewhere(
    fake_coordinator: tuple[Any, Client], cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, client = fake_coordinator
    project = _project(fake_coordinator)
    for name in ("one", "two", "three"):
        project.create_scenario(name, name.title(), "print hi")
    code, _, err = cli("scenario", "delete", "one")
    assert code == 2 and "--yes" in err
    assert cli.json("scenario", "delete", "one", "two", "--yes") == {"deleted": ["scn_one", "scn_two"]}

    # A keyboard, but stderr is not a terminal: the question would go unseen, so it is not asked.
    monkeypatch.setattr(sys, "stdin", Terminal("y\n"))
    code, _, err = cli("scenario", "delete", "three")
    assert code == 2 and "no terminal to ask on: add --yes" in err
    assert [s.id for s in client.list_scenarios()] == ["scn_three"]

    monkeypatch.setenv("TTY_COMPATIBLE", "1")  # stderr reads as a terminal too
    monkeypatch.setattr(sys, "stdin", Terminal("n\n"))
    code, out, err = cli("scenario", "delete", "three")
    assert code == 0 and "delete 1 scenario(s): scn_three?" in err  # no: not a failure
    assert "nothing deleted" in err and out == ""
    assert [s.id for s in client.list_scenarios()] == ["scn_three"]
    monkeypatch.setattr(sys, "stdin", Terminal(""))  # the end of input at the question: a no
    code, _, err = cli("scenario", "delete", "three")
    assert code == 0 and "nothing deleted" in err
    monkeypatch.setattr(sys, "stdin", Terminal("y\n"))
    code, out, _ = cli("scenario", "delete", "three")
    assert code == 0 and "deleted 1 scenario(s): scn_three" in out
    assert client.list_scenarios() == []


def test_one_line_answers_are_printed_as_written(
    fake_coordinator: tuple[Any, Client], cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Piped, a sentence is one line however long (scripts grep it), and brackets are not markup."""
    settings = _project(fake_coordinator).create_scenario("mailer", "Mailer", "print hi").get_settings()
    settings.add_email_reporter(["team@example.com"], sender="old@example.com")
    settings.save()
    monkeypatch.setenv("COLUMNS", "40")
    sender = '"[bold]The seeding robot of the data platform team[/bold]" <seedbed-robot@example.com>'
    code, out, err = cli("scenario", "set-sender", "mailer", "--sender", sender)
    assert code == 0, err
    assert out == f"1 e-mail reporter(s) in 1 scenario(s) now send from {sender}\n"
    code, out, _ = cli("scenario", "disable", "mailer")
    assert code == 0 and out == "disabled 1 scenario(s): scn_mailer\n"


def test_disable_all_saving_state_then_enable_exactly_those(
    fake_coordinator: tuple[Any, Client], cli: Cli, tmp_path: Path
) -> None:
    project = _project(fake_coordinator)
    for name in ("alpha", "beta", "gamma"):
        project.create_scenario(name, name.title(), "print hi")

    def active() -> dict[str, bool]:
        return {s["id"]: s["settings"].get("active", True) for s in cli.json("scenario", "list")}

    assert cli("scenario", "disable", "beta")[0] == 0
    state = tmp_path / "active.json"
    result = cli.json("scenario", "disable", "--all", "--save-state", str(state))
    assert sorted(result["disabled"]) == ["scn_alpha", "scn_gamma"]
    assert sorted(json.loads(state.read_text())["active"]) == ["scn_alpha", "scn_gamma"]
    assert not any(active().values())

    enabled = cli.json("scenario", "enable", "--from-state", str(state))
    assert sorted(enabled["enabled"]) == ["scn_alpha", "scn_gamma"]
    assert active() == {"scn_alpha": True, "scn_beta": False, "scn_gamma": True}
    (tmp_path / "broken.json").write_text("{")
    code, _, err = cli("scenario", "enable", "--from-state", str(tmp_path / "broken.json"))
    assert code == 2 and "cannot read the state file" in err


def test_set_run_as_and_reassign_from_user_to_user(fake_coordinator: tuple[Any, Client], cli: Cli) -> None:
    from tests.unit.test_client_objects import _add_user

    coordinator, _ = fake_coordinator
    for user in ("u1", "u2"):
        _add_user(coordinator.address, user)
    project = _project(fake_coordinator)
    for name in ("one", "two", "three"):
        project.create_scenario(name, name.title(), "print hi")
    changed = cli.json("scenario", "set-run-as", "one", "two", "--user", "u1")["changed"]
    assert changed == ["scn_one", "scn_two"]
    moved = cli.json("scenario", "set-run-as", "--from-user", "u1", "--to-user", "u2")
    assert sorted(moved["changed"]) == ["scn_one", "scn_two"]
    assert {s["id"]: s["effective_run_as"] for s in cli.json("scenario", "list")} == {
        "scn_one": "u2",
        "scn_two": "u2",
        "scn_three": "admin",
    }


def test_set_sender_of_email_reporters(fake_coordinator: tuple[Any, Client], cli: Cli) -> None:
    project = _project(fake_coordinator)
    for name in ("mailer", "quiet"):
        settings = project.create_scenario(name, name.title(), "print hi").get_settings()
        if name == "mailer":
            settings.add_email_reporter(["team@example.com"], sender="old@example.com")
            settings.save()
    result = cli.json("scenario", "set-sender", "--sender", "new@example.com", "--all")
    assert result == {"sender": "new@example.com", "changed": {"scn_mailer": 1}}
    reporters = cli.json("scenario", "show", "mailer")["scenario"]["settings"]["reporters"]
    assert reporters[0]["email"]["sender"] == "new@example.com"
    code, out, _ = cli("scenario", "show", "mailer")
    assert code == 0 and "e-mail from new@example.com to team@example.com" in out


def test_fire_wait_worst_outcome_and_cancelled_fires(fake_coordinator: tuple[Any, Client], cli: Cli) -> None:
    project = _project(fake_coordinator)
    project.create_scenario("good", "Good", "sleep 0.2\nprint ok")
    project.create_scenario("warns", "Warns", "warn careful")
    project.create_scenario("bad", "Bad", "fail boom")
    project.create_scenario("busy", "Busy", "sleep 0.5")

    code, out, err = cli("scenario", "fire", "good", "warns", "--wait")
    assert code == 4  # WARNING is the worst
    assert any("scn_good" in line and "SUCCESS" in line for line in err.splitlines())  # a line per change
    assert out.split("\n", 1)[0].split() == ["SCENARIO", "RUN", "STATE", "TIME", "DETAIL"]
    assert re.search(r"scn_warns\s+run_\S+\s+WARNING", out)

    code, out, _ = cli("scenario", "fire", "good", "bad", "warns", "--wait", "-o", "json")
    results = json.loads(out)
    assert code == 1
    assert [r["run"]["state"] for r in results] == [
        "RUN_STATE_SUCCESS",
        "RUN_STATE_FAILED",
        "RUN_STATE_WARNING",
    ]
    assert results[0]["fire"]["run_id"] == results[0]["run"]["id"]

    code, out, err = cli("scenario", "fire", "busy", "busy", "--wait", "-o", "json")
    results = json.loads(out)
    assert code == 8  # a cancelled fire is refused work
    assert results[1]["fire"]["state"] == "TRIGGER_FIRE_STATE_CANCELLED" and results[1]["run"] is None
    assert "was cancelled, no run started" in err and "already running" in err
    code, out, _ = cli("scenario", "fire", "bad", "busy", "busy", "--wait")
    assert code == 1  # FAILED ranks above a cancelled fire
    assert re.search(r"scn_busy\s+fire_\S+\s+CANCELLED", out)

    code, out, _ = cli("scenario", "fire", "good", "--param", "rows=5")
    assert code == 0 and "RUN_CREATED" in out
    code, out, _ = cli("scenario", "fire", "busy", "busy")
    assert code == 8 and "CANCELLED" in out


def test_a_queued_fire_waits_for_its_run(
    fake_coordinator: tuple[Any, Client], cli: Cli, tmp_path: Path
) -> None:
    script = tmp_path / "queued.py"
    script.write_text("sleep 0.3\nprint done")
    assert (
        cli("scenario", "create", "queued", "--script", str(script), "--overlap-policy", "QUEUE_ONE")[0] == 0
    )
    code, out, err = cli("scenario", "fire", "queued", "queued", "--wait", "-o", "json")
    assert code == 0, err
    results = json.loads(out)
    assert [r["run"]["state"] for r in results] == ["RUN_STATE_SUCCESS", "RUN_STATE_SUCCESS"]
    assert results[0]["run"]["id"] != results[1]["run"]["id"]
    assert re.search(r"scn_queued fire_\S+ QUEUED \S", err)  # the second waited, saying why


def test_fire_with_an_idempotency_key_starts_one_run(
    fake_coordinator: tuple[Any, Client], cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = _project(fake_coordinator)
    project.create_scenario("once", "Once", "print hi")
    project.create_scenario("twice", "Twice", "print hi")
    first = cli.json("scenario", "fire", "once", "--idempotency-key", "ci-42")
    again = cli.json("scenario", "fire", "once", "--idempotency-key", "ci-42")
    assert first[0]["id"] == again[0]["id"] and first[0]["run_id"] == again[0]["run_id"]
    monkeypatch.setenv("SEEDBED_IDEMPOTENCY_KEY", "ci-42")
    assert cli.json("scenario", "fire", "once")[0]["id"] == first[0]["id"]
    # The first run ends before "once" is fired again under new keys: while it runs, the scenario's
    # overlap policy (skip) would cancel that fire.
    fake_coordinator[1].wait(first[0]["run_id"])
    both = cli.json("scenario", "fire", "once", "twice", "--wait")  # ci-42/1 and ci-42/2
    assert both[0]["fire"]["id"] != first[0]["id"] and len({b["fire"]["id"] for b in both}) == 2
    assert [f["id"] for f in cli.json("scenario", "fire", "once", "twice")] == [b["fire"]["id"] for b in both]


def test_fire_table_fits_forty_columns_in_a_file_and_on_a_terminal(
    fake_coordinator: tuple[Any, Client], cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = _project(fake_coordinator)
    project.create_scenario("a-rather-long-scenario-name", "Long", "sleep 0.3\nfail " + "x" * 120)
    project.create_scenario("short", "Short", "sleep 0.3")
    monkeypatch.setenv("COLUMNS", "40")
    code, out, _ = cli("scenario", "fire", "a-rather-long-scenario-name", "short", "--wait")
    assert code == 1 and "\x1b" not in out
    assert max(len(line) for line in out.splitlines()) <= 40
    assert "scn_short SUCCESS" in out and "scn_a-rather-long-scenario-name FAILED" in out

    # On a 40-column terminal: a live table on stderr, redrawn in place, every line within 40.
    screen = io.StringIO()
    terminal = Console(file=screen, force_terminal=True, width=40, height=20)
    monkeypatch.setattr(Globals, "consoles", property(lambda self: (Console(file=sys.stdout), terminal)))
    code, out, _ = cli("scenario", "fire", "a-rather-long-scenario-name", "short", "--wait")
    assert code == 1
    drawn = screen.getvalue()
    assert "\x1b[" in drawn and "RUNNING" in drawn  # redrawn while the runs went on
    for line in _ESCAPE.sub("", drawn).replace("\r", "\n").splitlines():
        assert len(line) <= 40, line


def _eventually_in(client: Client, run_id: str, state: int) -> None:
    eventually(lambda: client.get_run(run_id).state == state)


def test_ctrl_c_during_fire_wait_aborts_or_leaves_the_run(
    fake_coordinator: tuple[Any, Client], tmp_path: Path
) -> None:
    coordinator, client = fake_coordinator
    _project(fake_coordinator).create_scenario("slow", "Slow", "sleep 30")
    for choice, state in (("abort", "ABORTED"), ("leave", "RUNNING")):
        process = subprocess.Popen(
            [sys.executable, "-m", "seedbed.cli", "--address", coordinator.address]
            + ["scenario", "fire", "slow", "--wait", "--on-interrupt", choice],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "COLUMNS": "200"},
        )
        assert process.stderr is not None
        line = ""
        deadline = time.monotonic() + 30
        while "RUNNING" not in line and time.monotonic() < deadline:
            line = process.stderr.readline()
        run_id = re.search(r"run_\S+", line).group(0)  # type: ignore[union-attr]
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
        assert process.returncode == 130, err
        assert f"run {run_id} {'aborted' if choice == 'abort' else 'left running'}" in err
        _eventually_in(client, run_id, run_pb2.RunState.Value(f"RUN_STATE_{state}"))
        if choice == "leave":
            client.abort(run_id)


def test_ctrl_c_during_fire_wait_says_a_queued_fire_will_still_run(
    fake_coordinator: tuple[Any, Client], tmp_path: Path
) -> None:
    coordinator, client = fake_coordinator
    settings = _project(fake_coordinator).create_scenario("slow", "Slow", "sleep 30").get_settings()
    settings.raw.overlap_policy = scenario_pb2.OVERLAP_POLICY_QUEUE_ONE  # the second fire waits
    settings.save()
    process = subprocess.Popen(
        [sys.executable, "-m", "seedbed.cli", "--address", coordinator.address]
        + ["scenario", "fire", "slow", "slow", "--wait", "--on-interrupt", "leave"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert process.stderr is not None
    seen = ""
    deadline = time.monotonic() + 30
    while not ("QUEUED" in seen and "RUNNING" in seen) and time.monotonic() < deadline:
        seen += process.stderr.readline()
    fire_id = re.search(r"(fire_\S+) QUEUED", seen).group(1)  # type: ignore[union-attr]
    run_id = re.search(r"(run_\S+) RUNNING", seen).group(1)  # type: ignore[union-attr]
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 130, err
    assert f"run {run_id} left running" in err
    assert f"fire {fire_id} of scn_slow is still queued and will start a run" in err
    client.abort(run_id)
    queued_run = eventually(lambda: client.get_fire(fire_id).run_id)
    client.abort(queued_run)
    client.wait(queued_run)


def test_runs_of_a_scenario(fake_coordinator: tuple[Any, Client], cli: Cli) -> None:
    project = _project(fake_coordinator)
    seeding = project.create_scenario("seeding", "Seeding", "fail late")
    failed = seeding.run_and_wait(no_fail=True)
    assert failed is not None
    fake_coordinator[1].put_scenario("seeding", script="print fine")
    good = seeding.run_and_wait()
    assert good is not None

    runs = cli.json("scenario", "runs", "seeding")  # the contract's Run
    assert [r["id"] for r in runs] == [good.id, failed.id] and runs[0]["state"] == "RUN_STATE_SUCCESS"
    assert [r["id"] for r in cli.json("scenario", "runs", "seeding", "--successful")] == [good.id]
    assert [r["id"] for r in cli.json("scenario", "runs", "seeding", "--limit", "1")] == [good.id]
    assert len(cli.json("scenario", "runs", "seeding", "--from", "2000-01-01", "--finished")) == 2
    assert cli.json("scenario", "runs", "seeding", "--from", "2000-01-01", "--to", "2000-01-02") == []
    code, out, _ = cli("scenario", "runs", "seeding")
    assert code == 0 and "RuntimeError: late" in out
    code, _, err = cli("scenario", "runs", "seeding", "--from", "yesterday")
    assert code == 2 and "ISO 8601" in err


def test_every_scenario_command_documents_its_json() -> None:
    from click.testing import CliRunner

    for name in sorted(scenario.commands):
        result = CliRunner().invoke(root, ["scenario", name, "--help"], obj=Globals())
        assert result.exit_code == 0, name
        assert "Examples:" in result.output and "-o json|yaml" in result.output, name
