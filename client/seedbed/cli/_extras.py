"""Which optional parts of Seedbed are installed, and one clear refusal when a command needs another.

``pip install seedbed`` is the client and this command. The commands that run Seedbed's own
processes need an extra: the server's libraries (``seedbed[server]``: ``seedbed server``, ``run
--local`` and anything else that starts an embedded coordinator, ``mcp``, ``deploy``) or the
worker's (``seedbed[worker]``: ``seedbed image``). Such a command calls ``require_extra`` before it
imports anything of the extra::

    require_extra("server", feature="seedbed server")

which raises ``MissingExtraError`` when one of the extra's distributions is not installed. It is a
click exception (exit code 2, the usage code: nothing was sent) whose message says what to run::

    seedbed: `seedbed server` needs the server's libraries, and 20 of them are not installed
    (aiosqlite, alembic, cronsim, …): pip install 'seedbed[server]'

How it knows: the extra's requirements are read from Seedbed's own installed metadata (its
``Requires-Dist`` lines marked ``extra == "server"``; the server's include the worker's), and each
distribution is looked up with importlib.metadata, which imports nothing and takes milliseconds:
pyproject.toml stays the one list. A requirement with any condition besides its extra (a Python
version, a platform) is not checked: a command is never refused wrongly, and its own imports decide.
When Seedbed has no metadata (a source folder put on the path, never installed), nothing can be
checked either: the command goes on, and its imports decide.

Rejected: a table of module names to try importing (it drifts from pyproject.toml, and importing Ray
to find out costs seconds); catching the ImportError of the command's first import (it names one
module, from deep inside a traceback, after some of the command's imports already succeeded).
"""

from __future__ import annotations

import functools
import re
from importlib.metadata import PackageNotFoundError, distribution, requires
from typing import IO, Any, Literal

import click

__all__ = ["Extra", "MissingExtraError", "missing_distributions", "require_extra"]

Extra = Literal["server", "worker"]

_DISTRIBUTION = "seedbed"
# "name[extras] (version specifier); marker", as Requires-Dist writes it.
_REQUIREMENT = re.compile(r"\s*(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)[^;]*(?:;(?P<marker>.*))?")
_ONLY_EXTRA = re.compile(r"""\s*extra\s*==\s*(?P<q>["'])(?P<extra>[^"']+)(?P=q)\s*""")
_SHOWN = 3


class MissingExtraError(click.ClickException):
    """A command needs an extra that is not installed: which command, which extra, which
    distributions are missing, and the line that installs them."""

    # The usage code of the command line: nothing was sent, the command cannot run as installed.
    exit_code = 2

    def __init__(self, extra: str, feature: str, missing: list[str]) -> None:
        self.extra = extra
        self.feature = feature
        self.missing = missing
        self.install_line = f"pip install 'seedbed[{extra}]'"
        shown = ", ".join(missing[:_SHOWN]) + (", …" if len(missing) > _SHOWN else "")
        super().__init__(
            f"`{feature}` needs the {extra}'s libraries, and {len(missing)} of them "
            f"{'is' if len(missing) == 1 else 'are'} not installed ({shown}): {self.install_line}"
        )

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"seedbed: {self.format_message()}", file=file, err=file is None)


def require_extra(extra: Extra, *, feature: str) -> None:
    """Return when ``extra``'s libraries are installed (or cannot be checked); otherwise raise
    ``MissingExtraError`` naming ``feature`` (the command, as its user typed it) and the install
    line."""
    missing = missing_distributions(extra)
    if missing:
        raise MissingExtraError(extra, feature, missing)


def missing_distributions(extra: Extra) -> list[str]:
    """The distributions ``extra`` requires that are not installed, as its metadata lists them;
    empty when all are, or when Seedbed's own metadata is not there to say."""
    wanted = _extra_requirements(extra)
    return [name for name in wanted if not _installed(name)]


@functools.cache
def _extra_requirements(extra: str) -> tuple[str, ...]:
    try:
        lines = requires(_DISTRIBUTION) or []
    except PackageNotFoundError:
        return ()
    by_extra: dict[str, list[str]] = {}
    for line in lines:
        found = _REQUIREMENT.fullmatch(line)
        marker = found["marker"] if found else None
        only = _ONLY_EXTRA.fullmatch(marker) if marker else None
        if found is None or only is None:
            continue  # a base requirement, or one with another condition: not checked
        names = by_extra.setdefault(only["extra"], [])
        # hatchling writes an extra naming another (seedbed[worker]) as the other's requirements.
        if _normalize(found["name"]) != _DISTRIBUTION and found["name"] not in names:
            names.append(found["name"])
    # An extra the metadata lacks (an editable install older than the extra) cannot be checked.
    return tuple(by_extra.get(extra, ()))


def _installed(name: str) -> bool:
    try:
        distribution(name)
    except PackageNotFoundError:
        return False
    return True


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()
