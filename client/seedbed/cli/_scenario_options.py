"""What the ``seedbed scenario`` commands share: ``--project``, ``-p KEY=VALUE``, and finding the
scenarios a command names.

Scenario ids are passed to the coordinator as typed: it accepts ``scn_x`` or ``x`` and looks ids up
exactly (mixed case included), so the CLI never rewrites them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from seedbed.cli._context import CliError
from seedbed.cli._input import key_values
from seedbed.client import Client, Scenario

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_PROJECT = "default"


def project_option(f: F) -> F:
    """``--project KEY``: the project whose scenarios ``list`` and ``--all`` take (default
    "default"); for scenarios named by id, a check that they belong to it (ids are unique across
    projects, so without it any project's scenario is found)."""
    text = f'only scenarios of this project (ids: any project by default; `list`, --all: "{DEFAULT_PROJECT}")'
    return click.option("--project", metavar="KEY", default=None, help=text)(f)


def params_option(text: str) -> Callable[[F], F]:
    """``-p/--param KEY=VALUE``, repeatable; the command receives a dict ``params``."""
    return click.option(
        "-p", "--param", "params", multiple=True, metavar="KEY=VALUE", callback=key_values, help=text
    )


def find_scenario(client: Client, scenario_id: str, project: str | None) -> Scenario:
    """The scenario, checked to belong to ``project`` when one is given."""
    if project:
        return client.get_project(project).get_scenario(scenario_id)
    return Scenario(client, client.get_scenario(scenario_id))


def check_targets(ids: tuple[str, ...], all_: bool, what: str) -> None:
    """Scenario ids, or ``--all``: a usage error for neither or both, before any call."""
    if all_ == bool(ids):
        raise CliError(f"{what} takes scenario ids, or --all (not both)")


def targets(client: Client, ids: tuple[str, ...], all_: bool, project: str | None) -> list[Scenario]:
    """The scenarios named, or with ``all_`` every scenario of ``project`` (default "default")."""
    if all_:
        return client.get_project(project or DEFAULT_PROJECT).list_scenarios(as_type="objects")
    return [find_scenario(client, scenario_id, project) for scenario_id in ids]


__all__ = [
    "DEFAULT_PROJECT",
    "check_targets",
    "find_scenario",
    "params_option",
    "project_option",
    "targets",
]
