"""The command line's frame: the grammar every command follows (help, examples, global options
anywhere, -o), profiles from `seedbed login`, the exit-code table, and what a user sees when the
coordinator is down, the key is missing, the terminal is narrow or the output is a file."""

from __future__ import annotations

import io
import json
import os
import re
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import click
import grpc
import pytest
import yaml
from rich.cells import cell_len
from rich.console import Console
from rich.text import Text

from seedbed.api.v1 import run_pb2
from seedbed.cli import main
from seedbed.cli._app import _ALIASES, cli
from seedbed.cli._exits import ExitCode, for_run_state, for_status, worst
from seedbed.cli._output import Column, consoles, dump, printable, table
from seedbed.client import Client
from tests.conftest import ADMIN_API_KEY, ROOT


@pytest.fixture(autouse=True)
def _profiles_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test has its own profiles file and no address from the environment."""
    path = tmp_path / "config" / "seedbed" / "profiles.yaml"
    monkeypatch.setenv("SEEDBED_CONFIG_FILE", str(path))
    monkeypatch.delenv("SEEDBED_ADDRESS", raising=False)
    monkeypatch.delenv("SEEDBED_PROFILE", raising=False)
    return path


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _commands(group: click.Group, ctx: click.Context) -> list[tuple[str, click.Command]]:
    found: list[tuple[str, click.Command]] = []
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None, name
        path = f"{ctx.command_path} {name}"
        found.append((path, command))
        if isinstance(command, click.Group):
            found.extend(_commands(command, click.Context(command, info_name=name, parent=ctx)))
    return found


def test_every_command_has_help_examples_and_explained_arguments() -> None:
    root = click.Context(cli, info_name="seedbed")
    missing: list[str] = []
    for path, command in _commands(cli, root):
        text = command.help or ""
        if not text.strip():
            missing.append(f"{path}: no help")
            continue
        if not isinstance(command, click.Group) and "Examples:" not in text:
            missing.append(f"{path}: no Examples: block")
        for param in command.params:
            if isinstance(param, click.Option) and not param.hidden and not (param.help or "").strip():
                missing.append(f"{path} {param.opts[0]}: no help")
            if isinstance(param, click.Argument):
                metavar = (param.metavar or param.name or "").upper().strip(".[]")
                if metavar not in text:
                    missing.append(f"{path} {metavar}: the argument is not explained in the help")
    assert not missing, "\n".join(missing)


def test_every_command_takes_the_global_options_and_output_formats() -> None:
    root = click.Context(cli, info_name="seedbed")
    for path, command in _commands(cli, root):
        if isinstance(command, click.Group):
            continue
        names = {opt for param in command.params for opt in getattr(param, "opts", [])}
        assert {"--address", "--api-key", "--profile", "-o", "--no-color"} <= names, path


@pytest.mark.parametrize(("old", "new"), sorted(_ALIASES.items()))
def test_old_spellings_are_hidden_and_say_their_new_name(
    old: str, new: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run(capsys, old, "--help")
    assert code == 0, err
    assert f"is now `seedbed {new}`" in err
    assert "Usage: seedbed " + new in out
    code, out, _ = _run(capsys, "--help")
    assert f"\n  {old} " not in out


def test_the_old_json_flag_means_o_json_on_every_command(
    fake_coordinator: tuple[Any, Client], capsys: pytest.CaptureFixture[str]
) -> None:
    coordinator, client = fake_coordinator
    client.put_scenario("s", script="print(1)")
    client.wait(client.run("s").run_id)
    for argv in (
        ["runs", "--json"],
        ["run", "list", "--json"],
        ["scenario", "list", "--json"],
        ["whoami", "--json"],
    ):
        code, out, err = _run(capsys, "--address", coordinator.address, *argv)
        assert code == 0, (argv, err)
        assert "`--json` is now `-o json`" in err, argv
        assert json.loads(out), argv


def test_version_and_help(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "--version")
    assert code == 0 and out.startswith("seedbed ") and out.split()[1][0].isdigit()
    code, out, _ = _run(capsys, "--help")
    assert code == 0
    for word in ("run", "scenario", "template", "connection", "login", "completion", "Exit codes"):
        assert word in out


def test_typos_get_suggestions_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "scenaro", "list")
    assert code == ExitCode.USAGE
    assert "No such command 'scenaro'" in err and "Did you mean: scenario" in err
    code, _, err = _run(capsys, "run", "lsit")
    assert code == ExitCode.USAGE and "Did you mean: list" in err
    code, _, err = _run(capsys, "--adress", "x", "run", "list")
    assert code == ExitCode.USAGE and "--address" in err


def test_completion_scripts_and_a_real_completion() -> None:
    for shell, marker in (("bash", "complete -o nosort"), ("zsh", "#compdef seedbed"), ("fish", "complete")):
        result = subprocess.run(
            [sys.executable, "-m", "seedbed.cli", "completion", shell], capture_output=True, text=True
        )
        assert result.returncode == 0, result.stderr
        assert "_SEEDBED_COMPLETE" in result.stdout and marker in result.stdout
    # What the bash script asks at a TAB after `seedbed sce`.
    env = {**os.environ, "_SEEDBED_COMPLETE": "bash_complete", "COMP_WORDS": "seedbed sce", "COMP_CWORD": "1"}
    result = subprocess.run([sys.executable, "-m", "seedbed.cli"], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "plain,scenario" in result.stdout.splitlines()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_coordinator_that_is_down_is_said_within_two_seconds(capsys: pytest.CaptureFixture[str]) -> None:
    address = f"127.0.0.1:{_free_port()}"
    started = time.monotonic()
    code, _, err = _run(capsys, "whoami", "--address", address)
    elapsed = time.monotonic() - started
    assert code == ExitCode.UNREACHABLE
    assert elapsed < 2.5, elapsed  # 2 s, and the process's own start
    assert f"no coordinator answered at {address}" in err
    assert "seedbed server" in err and "SEEDBED_ADDRESS" in err


def test_login_keeps_a_private_profile_that_later_commands_use(
    fake_coordinator: tuple[Any, Client],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    _profiles_file: Path,
) -> None:
    coordinator, _ = fake_coordinator
    monkeypatch.delenv("SEEDBED_API_KEY")
    # Global options after the verb, as before it.
    code, out, err = _run(capsys, "login", "--address", coordinator.address, "--api-key", ADMIN_API_KEY)
    assert code == 0, err
    assert "as admin" in out and "profile 'default'" in out
    assert stat.S_IMODE(_profiles_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(_profiles_file.parent.stat().st_mode) == 0o700
    saved = yaml.safe_load(_profiles_file.read_text())
    assert saved == {
        "current": "default",
        "profiles": {"default": {"address": coordinator.address, "api_key": ADMIN_API_KEY}},
    }
    # No option, no variable: the profile's address and key.
    code, out, err = _run(capsys, "whoami", "-o", "json")
    assert code == 0, err
    assert json.loads(out)["user"]["id"] == "admin"
    # A second profile, not made current; --profile picks it, before or after the verb.
    code, _, err = _run(
        capsys, "--profile", "other", "login", "--address", coordinator.address,
        "--api-key", ADMIN_API_KEY, "--no-default",
    )  # fmt: skip
    assert code == 0, err
    assert yaml.safe_load(_profiles_file.read_text())["current"] == "default"
    assert _run(capsys, "whoami", "--profile", "other")[0] == 0
    code, _, err = _run(capsys, "whoami", "--profile", "nope")
    assert code == ExitCode.USAGE and "seedbed login --profile nope" in err
    # The variable wins over the profile: a wrong key in it is refused.
    monkeypatch.setenv("SEEDBED_API_KEY", "sbk_00000000000000ff_wrong-key-wrong-key-wrong")
    code, _, err = _run(capsys, "whoami")
    assert code == ExitCode.PERMISSION_DENIED and "not accepted" in err
    monkeypatch.delenv("SEEDBED_API_KEY")
    code, out, err = _run(capsys, "logout")
    assert code == 0 and "removed" in out
    assert yaml.safe_load(_profiles_file.read_text())["current"] == ""


def test_a_profiles_key_goes_only_to_its_own_address(
    fake_coordinator: tuple[Any, Client],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    _profiles_file: Path,
) -> None:
    coordinator, _ = fake_coordinator
    monkeypatch.delenv("SEEDBED_API_KEY")
    assert _run(capsys, "login", "--address", coordinator.address, "--api-key", ADMIN_API_KEY)[0] == 0
    # The same coordinator under another name: the profile's key is not sent there.
    host, port = coordinator.address.rsplit(":", 1)
    other = f"localhost:{port}"
    code, _, err = _run(capsys, "whoami", "--address", other)
    assert code == ExitCode.PERMISSION_DENIED, err
    assert f"keeps a key for {coordinator.address}, not for this address" in err
    monkeypatch.setenv("SEEDBED_ADDRESS", other)
    assert _run(capsys, "whoami")[0] == ExitCode.PERMISSION_DENIED
    monkeypatch.setenv("SEEDBED_ADDRESS", coordinator.address)
    assert _run(capsys, "whoami")[0] == 0


def test_two_logins_at_once_both_land(fake_coordinator: tuple[Any, Client], _profiles_file: Path) -> None:
    coordinator, _ = fake_coordinator
    env = {**os.environ, "SEEDBED_CONFIG_FILE": str(_profiles_file)}
    logins = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "seedbed.cli",
                "login",
                "--profile",
                f"p{i}",
                "--address",
                coordinator.address,
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for i in range(4)
    ]
    assert [p.wait(timeout=60) for p in logins] == [0, 0, 0, 0]
    assert set(yaml.safe_load(_profiles_file.read_text())["profiles"]) == {"p0", "p1", "p2", "p3"}


def test_of_json_and_output_the_last_given_wins(
    fake_coordinator: tuple[Any, Client], capsys: pytest.CaptureFixture[str]
) -> None:
    coordinator, _ = fake_coordinator
    code, out, _ = _run(capsys, "--address", coordinator.address, "whoami", "--json", "-o", "yaml")
    assert code == 0 and yaml.safe_load(out)["user"]["id"] == "admin" and not out.lstrip().startswith("{")
    code, out, _ = _run(capsys, "--address", coordinator.address, "whoami", "-o", "yaml", "--json")
    assert code == 0 and json.loads(out)["user"]["id"] == "admin"


def test_a_login_the_coordinator_refuses_saves_nothing(
    fake_coordinator: tuple[Any, Client], capsys: pytest.CaptureFixture[str], _profiles_file: Path
) -> None:
    coordinator, _ = fake_coordinator
    wrong = "sbk_00000000000000ff_wrong-key-wrong-key-wrong"
    code, _, err = _run(capsys, "login", "--address", coordinator.address, "--api-key", wrong)
    assert code == ExitCode.PERMISSION_DENIED, err
    assert not _profiles_file.exists()


def test_a_profiles_file_others_can_read_is_refused(
    capsys: pytest.CaptureFixture[str], _profiles_file: Path
) -> None:
    _profiles_file.parent.mkdir(parents=True)
    _profiles_file.write_text("current: default\nprofiles: {default: {address: 'x:1', api_key: k}}\n")
    _profiles_file.chmod(0o644)
    code, _, err = _run(capsys, "whoami")
    assert code == ExitCode.USAGE
    assert "others may read it (mode 0644)" in err and f"chmod 600 {_profiles_file}" in err
    _profiles_file.chmod(0o600)
    _profiles_file.write_text("profiles: [1, 2]\n")
    code, _, err = _run(capsys, "whoami")
    assert code == ExitCode.USAGE and "expected `current:` and a `profiles:` mapping" in err


def test_a_missing_key_names_login_and_the_variable(
    fake_coordinator: tuple[Any, Client], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    coordinator, _ = fake_coordinator
    monkeypatch.delenv("SEEDBED_API_KEY")
    code, _, err = _run(capsys, "--address", coordinator.address, "run", "list")
    assert code == ExitCode.PERMISSION_DENIED
    assert "seedbed login" in err and "SEEDBED_API_KEY" in err


def test_an_unknown_run_is_not_found(
    fake_coordinator: tuple[Any, Client], capsys: pytest.CaptureFixture[str]
) -> None:
    coordinator, _ = fake_coordinator
    code, _, err = _run(capsys, "run", "show", "run_doesnotexist", "--address", coordinator.address)
    assert code == ExitCode.NOT_FOUND, err
    assert "NOT_FOUND" in err


def test_exit_code_table() -> None:
    assert for_run_state(run_pb2.RUN_STATE_SUCCESS) == 0
    assert for_run_state(run_pb2.RUN_STATE_FAILED) == 1
    assert for_run_state(run_pb2.RUN_STATE_ABORTED) == 3
    assert for_run_state(run_pb2.RUN_STATE_WARNING) == 4
    assert worst([ExitCode.SUCCESS, ExitCode.WARNING, ExitCode.ABORTED]) == ExitCode.ABORTED
    assert worst([ExitCode.ABORTED, ExitCode.FAILED]) == ExitCode.FAILED
    assert worst([]) == ExitCode.SUCCESS
    assert for_status(grpc.StatusCode.NOT_FOUND) == 5
    assert for_status(grpc.StatusCode.UNAUTHENTICATED) == for_status(grpc.StatusCode.PERMISSION_DENIED) == 6
    assert for_status(grpc.StatusCode.UNAVAILABLE) == 7
    assert for_status(grpc.StatusCode.INVALID_ARGUMENT) == for_status(grpc.StatusCode.ABORTED) == 8
    assert for_status(grpc.StatusCode.INTERNAL) == 9
    assert worst([ExitCode.ABORTED, ExitCode.REFUSED, ExitCode.WARNING]) == ExitCode.REFUSED
    # The table the help prints, the module's and the README's are the code's.
    import seedbed.cli._exits as exits_module

    epilog = dict(re.findall(r"(\d+) ([^,.]+)", (cli.epilog or "").split("Exit codes:")[1].split(".")[0]))
    docstring = dict(re.findall(r"^(\d+) +(\S.*)$", exits_module.__doc__ or "", re.MULTILINE))
    readme = dict(re.findall(r"^\| (\d+) \| (.+) \|$", (ROOT / "README.md").read_text(), re.MULTILINE))
    codes = {str(int(c)) for c in ExitCode}
    assert set(epilog) == set(docstring) == set(readme) == codes, (epilog, docstring, readme)
    for code, word in ((1, "FAILED"), (3, "ABORTED"), (4, "WARNING"), (5, "not found"), (7, "unreachable")):
        assert word in epilog[str(code)] and word in readme[str(code)], code


def test_json_is_the_rest_shape() -> None:
    from seedbed.coordinator.faces.rest._json import to_json

    run = run_pb2.Run(id="run_1", scenario_id="shop", state=run_pb2.RUN_STATE_FAILED, dropped_log_lines=2**40)
    run.first_error.message = "boom"
    assert json.loads(dump(run, "json")) == to_json(run)
    assert yaml.safe_load(dump([run], "yaml")) == [to_json(run)]
    assert json.loads(dump(run, "json"))["dropped_log_lines"] == str(2**40)


def test_tables_fit_forty_columns_and_files_get_no_control_codes() -> None:
    items = [
        {"id": "run_" + "x" * 30, "scenario": "a-very-long-scenario-name-indeed", "error": "e" * 200},
        {"id": "run_2", "scenario": "\x1b[2J\x1b]0;owned\x07evil", "error": "\u202eevil"},
    ]
    columns = [
        Column("RUN", lambda i: i["id"]),
        Column("SCENARIO", lambda i: i["scenario"]),
        Column("ERROR", lambda i: i["error"], overflow="ellipsis"),
    ]
    narrow = io.StringIO()
    Console(file=narrow, width=40, force_terminal=True).print(table(items, columns))
    text = narrow.getvalue()
    assert all(cell_len(Text.from_ansi(line).plain) <= 40 for line in text.splitlines()), text
    assert "\x1b[2J" not in text and "\x1b]0;" not in text and "\u202e" not in text
    piped = io.StringIO()
    Console(file=piped, width=80).print(table(items, columns))
    assert "\x1b" not in piped.getvalue()
    assert "RUN" in piped.getvalue() and "?[2J" in piped.getvalue()


def test_printable_masks_what_steers_a_terminal() -> None:
    assert printable("ok\x1b[31mred\r\n\u202eevil\tend") == "ok?[31mred???evil?end"


def test_no_color_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    for no_color, env, coloured in ((False, {}, True), (True, {}, False), (False, {"NO_COLOR": "1"}, False)):
        screen = Terminal()
        monkeypatch.setattr(sys, "stdout", screen)
        monkeypatch.delenv("NO_COLOR", raising=False)
        monkeypatch.setenv("TERM", "xterm-256color")
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        out, _ = consoles(no_color=no_color)
        out.print("[red]alert[/red]")
        assert ("\x1b[31m" in screen.getvalue()) is coloured, (no_color, env)
