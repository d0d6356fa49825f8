"""The README's `seedbed` commands are the command line's: every one of them parses against the
grammar (no unknown command, option or choice), and the walk-throughs run as written against a real
coordinator (real Ray, Docker sandboxes), with their placeholders filled in."""

from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest

from seedbed.cli._app import cli
from seedbed.cli._context import Globals
from seedbed.client import Client
from tests.conftest import ADMIN_API_KEY, ROOT

pytestmark = pytest.mark.integration

README = ROOT / "README.md"
DEPLOY_README = ROOT / "deploy" / "README.md"
# A `seedbed …` (or `.venv/bin/seedbed …`) command where a shell would start one: at a line's
# start, after `$ `, `$(`, `&&`, `;`, `|`, or an environment assignment.
_COMMAND = re.compile(r"(^|\$\(|&&|;|\||^\$ |^(?:[A-Z_]+=\S+ )+)\s*(?:\S*/)?seedbed\s(.*)$")
# Values for the placeholders the README writes in capitals, so that typed options parse.
_PARSE_VALUES = {"N": "5", "MS": "10", "S": "60", "SECONDS": "60", "HH:MM": "02:30", "MM": "15"}


def _blocks(path: Path, heading: str | None = None) -> Iterator[str]:
    """The shell blocks of ``path`` (under ``heading`` only, when given), continuation lines joined."""
    text = path.read_text()
    if heading is not None:
        start = text.index(heading)
        following = re.search(r"^#{1,3} ", text[start + len(heading) :], re.MULTILINE)
        text = text[start : start + len(heading) + (following.start() if following else len(text))]
    for block in re.findall(r"```(?:sh|bash|console|shell)\n(.*?)```", text, re.DOTALL):
        yield block.replace("\\\n", " ")


def _commands(block: str) -> list[list[str]]:
    """The `seedbed` commands of a shell block as argument lists, up to the first pipe, `;`, `&&`,
    redirection or comment (and to the `)` of a `$(…)`)."""
    found: list[list[str]] = []
    for line in block.splitlines():
        line = re.sub(r"\s+#\s.*$", "", line.strip())
        match = _COMMAND.search(line)
        if match is None:
            continue
        rest = match.group(2).split(")")[0] if match.group(1) == "$(" else match.group(2)
        lexer = shlex.shlex(rest, posix=True, punctuation_chars="|;&<>")
        lexer.whitespace_split = True
        words: list[str] = []
        for word in lexer:
            if set(word) <= set("|;&<>"):
                break
            words.append(word)
        found.append(words)
    return found


def _parse(args: list[str]) -> None:
    """Parse ``args`` as the command line would, down to the command, without running it."""
    ctx = cli.make_context("seedbed", list(args), obj=Globals())
    command: click.Command = cli
    while isinstance(command, click.Group):
        with warnings.catch_warnings():  # click 9 will hand all of them in ctx.args
            warnings.simplefilter("ignore", DeprecationWarning)
            rest = [*ctx.protected_args, *ctx.args]
        if not rest:
            return
        name, sub, rest = command.resolve_command(ctx, rest)
        assert sub is not None and name is not None
        ctx = sub.make_context(name, rest, parent=ctx)
        command = sub


def _all_readme_commands() -> list[list[str]]:
    commands = [c for path in (README, DEPLOY_README) for block in _blocks(path) for c in _commands(block)]
    return [[_PARSE_VALUES.get(word, word) for word in command] for command in commands]


def test_every_readme_command_parses_in_the_new_grammar() -> None:
    commands = _all_readme_commands()
    assert len(commands) > 40, commands
    problems: list[str] = []
    for args in commands:
        said = io.StringIO()
        try:
            with contextlib.redirect_stderr(said):
                _parse(args)
        except click.exceptions.Exit:
            pass  # --help, --version
        except click.UsageError as exc:
            problems.append(f"seedbed {shlex.join(args)}: {exc.format_message()}")
        if "the old spelling goes away" in said.getvalue():  # an alias kept for one release
            problems.append(f"seedbed {shlex.join(args)}: {said.getvalue().strip()}")
    assert not problems, "\n".join(problems)


def _seedbed(
    address: str, args: list[str], env: dict[str, str], stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "seedbed.cli", *args],
        capture_output=True,
        text=True,
        input=stdin,
        timeout=300,
        env={**os.environ, "SEEDBED_ADDRESS": address, **env},
        cwd=ROOT,
    )


def test_the_using_it_walk_through_runs_as_written(coordinator: tuple[Any, Client], tmp_path: Path) -> None:
    coord, client = coordinator
    block = next(_blocks(README, "## Using it"))
    commands = _commands(block)
    # The coordinator is this test's; `--local` starts its own (tests/integration/test_cli.py runs it).
    runnable = [c for c in commands if c[:1] != ["server"] and "--local" not in c]
    assert [c[:2] for c in runnable][:3] == [["run", "submit"], ["run", "list"], ["run", "logs"]], runnable
    env = {"SEEDBED_CONFIG_FILE": str(tmp_path / "profiles.yaml")}
    run_id = ""
    for args in runnable:
        filled = [run_id if word == "RUN_ID" else word for word in args]
        result = _seedbed(coord.address, filled, env)
        assert result.returncode == 0, (filled, result.stdout, result.stderr)
        if filled[:2] == ["run", "submit"]:
            run_id = client.list_runs()[0].id
            assert "SUCCESS" in result.stderr
    assert run_id


def test_the_command_line_section_runs_as_written(coordinator: tuple[Any, Client], tmp_path: Path) -> None:
    coord, _ = coordinator
    blocks = list(_blocks(README, "### The command line"))
    commands = [c for block in blocks for c in _commands(block)]
    env = {"SEEDBED_CONFIG_FILE": str(tmp_path / "profiles.yaml")}
    ran = 0
    for args in commands:
        filled = [coord.address if a.startswith(("https://", "10.0.0.5")) else a for a in args]
        filled = [a for a in filled]
        if "--tls-ca-file" in filled:  # the coordinator here speaks plaintext
            at = filled.index("--tls-ca-file")
            del filled[at : at + 2]
        result = _seedbed(coord.address, filled, env, stdin=ADMIN_API_KEY + "\n")
        assert result.returncode == 0, (filled, result.stdout, result.stderr)
        ran += 1
    assert ran >= 4
    assert "staging" in (tmp_path / "profiles.yaml").read_text()
