"""``seedbed run …`` against a live coordinator with the fake executor: exit codes, the text a person
reads, the JSON a script reads, the old spellings, and what a narrow terminal, a pipe and Ctrl-C get."""

from __future__ import annotations

import io
import json
import re
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner
from rich.console import Console

from seedbed.api.v1 import run_pb2
from seedbed.cli import main
from seedbed.cli._follow import settle
from seedbed.cli._runs import parse_since, runs_table
from seedbed.cli._show import error_text, seconds, state_name, took
from seedbed.client import Client
from tests.conftest import ROOT, Cli, eventually

CONTROL = re.compile(r"\x1b|\r")


@pytest.fixture
def cli(fake_coordinator: tuple[Any, Client], capsys: pytest.CaptureFixture[str]) -> Cli:
    return Cli(fake_coordinator[0].address, capsys)


def _script(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_submit_follows_and_exits_with_the_outcome(cli: Cli, tmp_path: Path) -> None:
    code, out, err = cli("run", "submit", _script(tmp_path, "good.py", "print hi there\nstderr careful"))
    assert code == 0, err
    assert out == "hi there\n"  # the script's stdout alone on stdout
    assert "careful" in err and "SUCCESS" in err and "→ run run_" in err
    assert not CONTROL.search(out + err)  # not a terminal: no control codes
    assert cli("run", "submit", _script(tmp_path, "bad.py", "fail boom"))[0] == 1
    assert cli("run", "submit", _script(tmp_path, "warn.py", "warn careful"))[0] == 4

    code, out, err = cli("run", "submit", _script(tmp_path, "quiet.py", "print x"), "--no-follow")
    assert code == 0 and re.fullmatch(r"run_\w+\n", out)

    code, out, err = cli("run", "submit", _script(tmp_path, "j.py", "print to stderr"), "-o", "json")
    document = json.loads(out)  # the logs went to stderr, the run to stdout
    assert code == 0 and document["state"] == "RUN_STATE_SUCCESS" and "to stderr" in err


def test_submit_keeps_the_case_of_the_file_name_and_the_settings(
    fake_coordinator: tuple[Any, Client], cli: Cli, tmp_path: Path
) -> None:
    _, client = fake_coordinator
    document = cli.json("run", "submit", _script(tmp_path, "MYSCENARIO.py", "print upper"))
    assert document["scenario_id"] == "scn_MYSCENARIO"
    assert client.get_scenario("MYSCENARIO").script == "print upper"

    # --timeout on a scenario that exists changes its timeout, and nothing else of its settings.
    client.put_scenario("kept", script="print one")
    kept = client.get_project("default").get_scenario("kept").get_settings()
    kept.add_daily_trigger(2, 30, timezone="Europe/Paris")
    kept.add_email_reporter(["team@example.com"])
    kept.active = False
    kept.save()
    code, _, err = cli("run", "submit", _script(tmp_path, "kept.py", "print two"), "--timeout", "42")
    assert code == 0, err
    saved = client.get_scenario("kept")
    assert saved.script == "print two" and saved.settings.timeout_seconds == 42
    assert len(saved.settings.triggers) == 1 and len(saved.settings.reporters) == 1
    assert saved.settings.HasField("active") and not saved.settings.active
    fresh = cli.json("run", "submit", _script(tmp_path, "fresh.py", "print new"), "--timeout", "7")
    assert client.get_scenario(fresh["scenario_id"]).settings.timeout_seconds == 7


def test_submit_refusals_and_usage(cli: Cli, tmp_path: Path) -> None:
    code, _, err = cli("run", "submit", str(tmp_path / "missing.py"))
    assert code == 2 and "cannot read" in err
    code, _, err = cli("run", "submit", _script(tmp_path, "p.py", "print x"), "-p", "novalue")
    assert code == 2 and "KEY=VALUE" in err
    code, _, err = cli("run", "submit", _script(tmp_path, "empty.py", ""))
    assert code == 8 and "INVALID_ARGUMENT" in err  # the coordinator refused it


def test_key_value_options_are_read_one_way(capsys: pytest.CaptureFixture[str]) -> None:
    """-p of run submit and scenario fire, and connection create's --header: the same check, made
    before any call (nothing answers at this address)."""
    for argv, metavar in (
        (["run", "submit", "x.py", "-p", "novalue"], "KEY=VALUE"),
        (["scenario", "fire", "a", "-p", "=value"], "KEY=VALUE"),
        (["connection", "create", "c", "--kind", "rest", "--header", "no-equals-sign"], "NAME=VALUE"),
    ):
        capsys.readouterr()
        assert main(["--address", "127.0.0.1:9", *argv]) == 2, argv
        assert f"takes {metavar}, got" in capsys.readouterr().err, argv


def test_files_are_read_one_way(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A file that cannot be read: exit 2 naming it and why, before any call (nothing answers here)."""
    missing = str(tmp_path / "missing.py")
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00")
    for argv, said in (
        (["run", "submit", missing], f"cannot read {missing}: No such file or directory"),
        (["scenario", "create", "a", "--script", missing], f"cannot read the script {missing}: No such"),
        (["scenario", "enable", "--from-state", missing], f"cannot read the state file {missing}"),
        (["template", "create", missing], f"cannot read {missing}: No such file or directory"),
        (["template", "create", str(binary)], f"cannot read {binary}: not UTF-8 text"),
        (["workspace", "upload", missing], f"cannot read {missing}: No such file or directory"),
    ):
        capsys.readouterr()
        assert main(["--address", "127.0.0.1:9", *argv]) == 2, argv
        assert said in capsys.readouterr().err, argv


def test_the_same_idempotency_key_gets_the_same_run(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = _script(tmp_path, "once.py", "print once")
    first = cli.json("run", "submit", script, "--idempotency-key", "ci-pipeline-42")
    again = cli.json("run", "submit", script, "--idempotency-key", "ci-pipeline-42")
    assert first["id"] == again["id"]
    monkeypatch.setenv("SEEDBED_IDEMPOTENCY_KEY", "ci-pipeline-42")
    assert cli.json("run", "submit", script)["id"] == first["id"]
    monkeypatch.delenv("SEEDBED_IDEMPOTENCY_KEY")
    assert cli.json("run", "submit", script)["id"] != first["id"]
    runs = cli.json("run", "list", "--scenario", "once")
    assert len(runs) == 2


def test_a_cancelled_fire_says_why_and_exits_refused(
    fake_coordinator: tuple[Any, Client], cli: Cli, tmp_path: Path
) -> None:
    _, client = fake_coordinator
    script = _script(tmp_path, "busy.py", "sleep 1")
    running = cli.json("run", "submit", script, "--no-follow")
    code, _, err = cli("run", "submit", script)  # overlap policy SKIP: the second fire is cancelled
    assert code == 8 and "cancelled" in err and "already running" in err
    client.wait(running["run_id"])


def test_a_queued_fire_waits_for_its_run(
    fake_coordinator: tuple[Any, Client], cli: Cli, tmp_path: Path
) -> None:
    from seedbed.api.v1 import scenario_pb2

    _, client = fake_coordinator
    client.put_scenario("queue", script="sleep 0.5\nprint first")
    settings = client.get_scenario("queue").settings
    settings.overlap_policy = scenario_pb2.OVERLAP_POLICY_QUEUE_ONE
    client.update_scenario_settings("queue", settings)
    first = client.run("queue")
    # Submitting the same scenario id queues a fire behind the running one; it follows its run.
    code, out, err = cli("run", "submit", _script(tmp_path, "queue.py", "print second"))
    assert code == 0, err
    assert "queued" in err and out == "second\n"
    client.wait(first.run_id)


def test_list_show_abort_and_the_old_spellings(
    fake_coordinator: tuple[Any, Client], cli: Cli, tmp_path: Path
) -> None:
    _, client = fake_coordinator
    client.put_scenario(
        "seeding", script="step customers\nprint loading\nbatch pg customers 1 1 10\nend\nfail late"
    )
    failed = client.wait(client.run("seeding").run_id)
    client.put_scenario("fine", script="print fine")
    good = client.wait(client.run("fine").run_id)

    runs = cli.json("run", "list")
    assert [r["id"] for r in runs] == [good.id, failed.id]
    assert [r["id"] for r in cli.json("run", "list", "--state", "failed")] == [failed.id]
    assert [r["id"] for r in cli.json("run", "list", "--scenario", "fine")] == [good.id]
    assert [r["id"] for r in cli.json("run", "list", "--project", "default", "--limit", "1")] == [good.id]
    code, out, _ = cli("run", "list")
    assert code == 0 and out.split()[:3] == ["RUN", "SCENARIO", "STATE"] and "RuntimeError" in out

    shown = cli.json("run", "show", failed.id)
    assert shown["state"] == "RUN_STATE_FAILED" and shown["first_error"]["message"] == "late"
    assert shown["steps"][0]["batch_ids"] == ["pg/1/1"] and shown["attempts"][0]["task_id"]
    assert shown["write_batches"][0]["target"] == "customers"
    code, out, _ = cli("run", "show", failed.id)
    assert code == 0 and "first error: SCRIPT_ERROR: RuntimeError: late" in out and "pg/1/1" in out
    assert "customers" in out and "APPLIED" in out

    code, out, err = cli("run", "details", failed.id)  # the old spelling says its new name
    assert code == 0 and "is now `seedbed run show`" in err and "first error" in out
    code, out, err = cli("run", "log", failed.id, "--step", "customers")
    assert code == 0 and "is now `seedbed run logs`" in err and "loading" in out
    code, out, err = cli("runs", "--limit", "1")
    assert code == 0 and "is now `seedbed run list`" in err and good.id in out
    code, out, err = cli("logs", good.id)
    assert code == 0 and "is now `seedbed run logs`" in err and "fine" in out
    code, out, err = cli("abort", good.id)
    assert code == 0 and "is now `seedbed run abort`" in err and "had already ended (SUCCESS)" in out

    code, _, err = cli("run", "show", "run_nope")
    assert code == 5 and "NOT_FOUND" in err
    code, _, err = cli("run", "show")
    assert code == 2 and "RUN" in err


def test_a_file_named_like_a_verb_and_the_old_run_file(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("show").write_text("print shown")
    code, out, err = cli("run", "./show")  # the old `seedbed run FILE`
    assert code == 0 and out == "shown\n" and "is now `seedbed run submit ./show`" in err
    code, out, _ = cli("run", "submit", "show")
    assert code == 0 and out == "shown\n"


def test_abort_a_running_run(fake_coordinator: tuple[Any, Client], cli: Cli) -> None:
    _, client = fake_coordinator
    client.put_scenario("slow", script="sleep 30")
    fire = client.run("slow")
    response = cli.json("run", "abort", fire.run_id, "--reason", "wrong parameters")
    assert response["already_finished"] is False
    assert client.wait(fire.run_id).state == run_pb2.RUN_STATE_ABORTED


def test_logs_sequence_after_since_json_and_follow_exit_code(
    fake_coordinator: tuple[Any, Client], cli: Cli
) -> None:
    _, client = fake_coordinator
    client.put_scenario("chatty", script="print one\nprint two\nprint three\nfail late")
    ended = client.wait(client.run("chatty").run_id)
    code, out, _ = cli("run", "logs", ended.id, "--sequence")
    assert code == 0  # not followed: 0 whatever the outcome
    numbered = [line.split(maxsplit=1) for line in out.splitlines()]
    assert [text for _, text in numbered] == ["one", "two", "three"]
    after = numbered[0][0]
    code, out, _ = cli("run", "logs", ended.id, "--after", after)
    assert out.splitlines() == ["two", "three"]

    lines = [json.loads(line) for line in cli("run", "logs", ended.id, "-o", "json")[1].splitlines()]
    assert [x["text"] for x in lines if x["stream"] == "STDOUT"] == ["one", "two", "three"]
    assert all(set(x) >= {"sequence", "attempt", "stream", "level", "time", "fields"} for x in lines)

    assert cli("run", "logs", ended.id, "--since", "1h")[1].splitlines() == ["one", "two", "three"]
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert cli("run", "logs", ended.id, "--since", future)[1] == ""
    code, _, err = cli("run", "logs", ended.id, "--since", "yesterday")
    assert code == 2 and "duration" in err

    code, _, err = cli("run", "logs", ended.id, "--follow")
    assert code == 1 and "RuntimeError: late" in err
    code, _, err = cli("run", "logs", "run_unknown")
    assert code == 5 and "NOT_FOUND" in err


def test_export_and_purge_usage(fake_coordinator: tuple[Any, Client], cli: Cli) -> None:
    _, client = fake_coordinator
    client.put_scenario("fine", script="print fine")
    good = client.wait(client.run("fine").run_id)
    code, out, _ = cli("run", "export", good.id)
    assert code == 0 and json.loads(out)["outcome"] == "SUCCESS"
    exported = json.loads(cli("run", "export", "--last")[1])
    assert exported[0]["last_run"]["id"] == good.id
    code, _, err = cli("run", "export")
    assert code == 2 and "--last" in err
    code, _, err = cli("run", "purge", good.id)  # off a terminal, --yes is required
    assert code == 2 and "--yes" in err
    report = cli.json("run", "purge", good.id, "--yes")
    assert report["run_id"] == good.id and report["failures"] == []


class Terminal(io.StringIO):
    """Standard input as a person's keyboard: answers typed in advance."""

    def isatty(self) -> bool:
        return True


def test_purge_asks_on_a_terminal_and_no_changes_nothing(
    fake_coordinator: tuple[Any, Client], cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, client = fake_coordinator
    client.put_scenario("fine", script="print fine")
    good = client.wait(client.run("fine").run_id)
    monkeypatch.setattr(sys, "stdin", Terminal("y\n"))
    code, _, err = cli("run", "purge", good.id)  # stderr is no terminal: nobody would see the question
    assert code == 2 and "no terminal to ask on: add --yes" in err
    monkeypatch.setenv("TTY_COMPATIBLE", "1")
    monkeypatch.setattr(sys, "stdin", Terminal("n\n"))
    code, out, err = cli("run", "purge", good.id)
    assert code == 0 and f"undo what run {good.id} wrote?" in err
    assert "nothing purged" in err and out == ""  # no purge was asked of the coordinator
    monkeypatch.setattr(sys, "stdin", Terminal("y\n"))
    code, out, err = cli("run", "purge", good.id)
    assert code == 0 and f"run {good.id}: purged 0 row(s)" in out


def test_parse_since() -> None:
    now = datetime(2026, 1, 31, 12, 0, tzinfo=UTC)
    assert parse_since("10m", now) == now - timedelta(minutes=10)
    assert parse_since("1.5h", now) == now - timedelta(hours=1.5)
    assert parse_since("2026-01-31T08:00") == datetime(2026, 1, 31, 8, 0, tzinfo=UTC)
    with pytest.raises(click.BadParameter):
        parse_since("10 parsecs")


def test_run_fields_read_one_way() -> None:
    """State names, durations and errors as every command shows them (one precision)."""
    from google.protobuf.timestamp_pb2 import Timestamp

    assert (state_name(run_pb2.RUN_STATE_SUCCESS), state_name(0)) == ("SUCCESS", "")
    assert seconds(timedelta(seconds=1.26)) == "1.3s" and seconds(None) == ""
    start, end = Timestamp(seconds=100), Timestamp(seconds=163, nanos=400_000_000)
    assert took(start, end) == "63.4s" and took(start, Timestamp()) == ""
    error = run_pb2.ErrorDetails(type="TimeoutError", message="slow", reason=run_pb2.FAILURE_REASON_TIMEOUT)
    assert error_text(error) == "TIMEOUT: TimeoutError: slow"
    assert (
        error_text(error, reason=False) == "TimeoutError: slow" and error_text(run_pb2.ErrorDetails()) == ""
    )


# -- a narrow terminal ------------------------------------------------------------------------


def test_runs_table_fits_40_columns(fake_coordinator: tuple[Any, Client]) -> None:
    _, client = fake_coordinator
    client.put_scenario("a-rather-long-scenario-name", script="fail a long error message " * 5)
    client.wait(client.run("a-rather-long-scenario-name").run_id)
    screen = io.StringIO()
    Console(file=screen, width=40).print(runs_table(client.list_runs(), width=40))
    assert all(len(line) <= 40 for line in screen.getvalue().splitlines())


# -- Ctrl-C -------------------------------------------------------------------------------------


def test_ctrl_c_answers(fake_coordinator: tuple[Any, Client]) -> None:
    _, client = fake_coordinator
    client.put_scenario("slow", script="sleep 30")
    run_id = client.run("slow").run_id
    left = settle(client, [run_id], "leave")
    assert left.kind == 130 and f"seedbed run abort {run_id}" in left.message
    with CliRunner().isolation(input="y\n") as (_, err, _both):
        asked = settle(client, [run_id], "ask")
    assert asked.kind == 130 and f"abort run {run_id}?" in err.getvalue().decode()
    assert client.wait(run_id).state == run_pb2.RUN_STATE_ABORTED
    # An abort that fails is said with why; the command still ends interrupted (130).
    failed = settle(client, ["run_nope"], "abort")
    assert failed.kind == 130 and "the abort of run run_nope failed (NOT_FOUND" in failed.message
    assert "seedbed run abort run_nope" in failed.message


def _queue_one(client: Client, scenario_id: str, script: str) -> None:
    from seedbed.api.v1 import scenario_pb2

    client.put_scenario(scenario_id, script=script)
    settings = client.get_scenario(scenario_id).settings
    settings.overlap_policy = scenario_pb2.OVERLAP_POLICY_QUEUE_ONE
    client.update_scenario_settings(scenario_id, settings)


def test_ctrl_c_answers_for_queued_fires(fake_coordinator: tuple[Any, Client]) -> None:
    _, client = fake_coordinator
    _queue_one(client, "queue", "sleep 30")
    first = client.run("queue")
    queued = client.run("queue")
    assert queued.state == run_pb2.TRIGGER_FIRE_STATE_PENDING
    answer = settle(client, [], "abort", [queued])  # nothing to abort: the fire is not a run yet
    assert answer.kind == 130 and "before a run started" not in answer.message
    assert f"fire {queued.id} of scn_queue is still queued and will start a run" in answer.message
    assert "seedbed scenario show scn_queue" in answer.message
    # A fire last seen queued that has its run by now is one more run to settle.
    left = settle(client, [], "leave", [first])
    assert f"run {first.run_id} left running" in left.message
    client.abort(first.run_id)
    started = eventually(lambda: client.get_fire(queued.id).run_id)
    client.abort(started)
    client.wait(started)


@pytest.mark.parametrize("choice", ["abort", "leave"])
def test_ctrl_c_during_a_wait(fake_coordinator: tuple[Any, Client], tmp_path: Path, choice: str) -> None:
    coordinator, client = fake_coordinator
    script = _script(tmp_path, f"wait-{choice}.py", "print started\nsleep 30")
    process = subprocess.Popen(
        [sys.executable, "-m", "seedbed.cli", "--address", coordinator.address, "run", "submit", script]
        + ["--on-interrupt", choice],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert process.stdout is not None and process.stderr is not None
    assert process.stdout.readline() == "started\n"
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 130, err
    run_id = re.search(r"→ run (run_\w+)", err)
    assert run_id is not None
    run = client.get_run(run_id[1])
    if choice == "abort":
        assert "aborted" in err
        assert eventually(lambda: client.get_run(run.id).state == run_pb2.RUN_STATE_ABORTED)
    else:
        assert "left running" in err and f"seedbed run logs {run.id} -f" in err
        time.sleep(0.2)
        assert client.get_run(run.id).state == run_pb2.RUN_STATE_RUNNING
        client.abort(run.id)


def test_ctrl_c_while_the_fire_is_queued(fake_coordinator: tuple[Any, Client], tmp_path: Path) -> None:
    coordinator, client = fake_coordinator
    _queue_one(client, "queue", "sleep 30")
    first = client.run("queue")
    script = _script(tmp_path, "queue.py", "print second")
    process = subprocess.Popen(
        [sys.executable, "-m", "seedbed.cli", "--address", coordinator.address, "run", "submit", script]
        + ["--on-interrupt", "abort"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert process.stderr is not None
    line = ""
    deadline = time.monotonic() + 30
    while "waiting for its run" not in line and time.monotonic() < deadline:
        line = process.stderr.readline()
    fire_id = re.search(r"fire (fire_\w+) queued", line)
    assert fire_id is not None, line
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 130, err
    assert f"fire {fire_id[1]} of scn_queue is still queued and will start a run" in err
    assert "before a run started" not in err
    assert client.get_fire(fire_id[1]).state == run_pb2.TRIGGER_FIRE_STATE_PENDING  # as said
    client.abort(first.run_id)
    assert client.wait(eventually(lambda: client.get_fire(fire_id[1]).run_id)).state == (
        run_pb2.RUN_STATE_SUCCESS
    )
