"""Options and helpers the catalog and access commands share: the project a new object belongs to,
the project filter of lists; and ``tell``, the one-line answer every
command that changed something gives (the scenario and run commands too)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from seedbed.cli._context import state
from seedbed.cli._output import say

F = TypeVar("F", bound=Callable[..., Any])


def tell(value: Any, sentence: str) -> None:
    """Print ``value`` as -o json|yaml asks, else ``sentence`` for people (``say``: each line
    as it is, never wrapped nor read as markup, control characters from the coordinator's names
    shown as "?")."""
    g = state()
    if g.output == "table":
        say(sentence)
    else:
        g.emit(value, lambda: None)


def owner(project_key: str, shared: bool) -> str:
    return f"{project_key} (shared)" if shared else project_key


def ownership(what: str) -> Callable[[F], F]:
    """--project and --shared/--no-shared of the commands that create catalog objects."""

    def decorate(f: F) -> F:
        f = click.option(
            "--shared/--no-shared",
            default=None,
            help="share it with every project, or stop sharing it (needs admin in its project; "
            "default: unchanged, not shared when new)",
        )(f)
        return click.option(
            "--project",
            "project_key",
            default="default",
            show_default=True,
            metavar="KEY",
            help=f"the project {what} belongs to",
        )(f)

    return decorate


def project_filter(what: str) -> Callable[[F], F]:
    return click.option(
        "--project",
        "project_key",
        default="",
        metavar="KEY",
        help=f"only the {what} this project's runs may use (default: every one you may read)",
    )
