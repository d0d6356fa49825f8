"""What the commands take from the person running them, read one way everywhere: files,
``KEY=VALUE`` options, times, and a yes before something that cannot be undone.

Files (``read_text``, ``read_bytes``): a file that cannot be read is a usage error (exit 2) naming
it and why, raised before any call; ``-`` reads standard input where the command says so
(``scenario create --script -``), and is a file name elsewhere.

``KEY=VALUE`` (``-p/--param``, ``--header``): ``key_values`` is the options' callback; the command
receives a dict, and an item without "=" or without a key is a usage error naming the option.

Confirmation (``scenario delete``, ``run purge``): a command asks only when a person can answer,
stdin and stderr both terminals; off a terminal it needs ``--yes`` and refuses (exit 2, before any
call) without it. Answering no (or Ctrl-C, or the end of input, at the question) is not an error:
nothing changes, the command says so on stderr and exits 0.

Rejected: ``click.confirm(abort=True)`` (a "no" ends in click's "Aborted!" and exit 1 or 130, as if
something had failed); asking whenever stdin is a terminal (with stderr redirected, the question
would be asked where nobody sees it).
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

import click

from seedbed.cli._context import CliError, state
from seedbed.cli._output import say


def read_text(path: str, what: str = "", *, stdin: bool = False) -> str:
    """The UTF-8 text of file ``path`` (``what`` names it in the error: "the script"); with
    ``stdin``, "-" reads standard input."""
    if stdin and path == "-":
        return sys.stdin.read()
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise CliError(_cannot(path, what, exc.strerror or str(exc))) from None
    except UnicodeDecodeError as exc:
        raise CliError(_cannot(path, what, f"not UTF-8 text (byte {exc.start})")) from None


def read_bytes(path: str, what: str = "") -> bytes:
    """The bytes of file ``path`` (``what`` names it in the error)."""
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise CliError(_cannot(path, what, exc.strerror or str(exc))) from None


def _cannot(path: str, what: str, reason: str) -> str:
    return f"cannot read {what + ' ' if what else ''}{path}: {reason}"


def key_values(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> dict[str, str]:
    """The callback of a repeatable ``KEY=VALUE`` option: a dict (the last of a key repeated wins);
    click.BadParameter (exit 2) for an item that is not KEY=VALUE."""
    out: dict[str, str] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"takes {param.metavar or 'KEY=VALUE'}, got {item!r}", ctx, param)
        out[key] = value
    return out


def iso_time(text: str) -> datetime:
    """An ISO 8601 date or date-time (``2026-11-01``, ``2026-11-01T08:00+01:00``); without an
    offset it is UTC. ValueError when ``text`` is not one (the option says what it takes)."""
    value = datetime.fromisoformat(text.strip())
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def check_confirmable(yes: bool, why: str) -> None:
    """Before any call: a command that asks first (``why``: what it would do, e.g. "scenario delete
    deletes scenarios") needs --yes where nobody can answer; a usage error (exit 2) without it."""
    if not yes and not _answerable():
        raise CliError(f"{why}: it asks first, and there is no terminal to ask on: add --yes")


def confirm(question: str, *, yes: bool, why: str, declined: str) -> bool:
    """Whether to go on: True with --yes; else the person's answer to ``question`` (default no).
    A "no" says ``declined`` on stderr (the caller then changes nothing and exits 0); off a
    terminal without --yes, the usage error of ``check_confirmable``."""
    if yes:
        return True
    check_confirmable(yes, why)
    try:
        answer = click.confirm(question, default=False, err=True)
    except click.exceptions.Abort:  # Ctrl-C or the end of input at the question: a no
        click.echo("", err=True)
        answer = False
    if not answer:
        say(declined, err=True)
    return answer


def _answerable() -> bool:
    return sys.stdin.isatty() and state().err.is_terminal


__all__ = ["check_confirmable", "confirm", "iso_time", "key_values", "read_bytes", "read_text"]
