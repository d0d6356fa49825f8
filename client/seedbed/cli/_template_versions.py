"""``seedbed template history | diff``: the versions of a template.

Every change of a template is a new immutable version; ``TEMPLATE@N`` names version N wherever a
template is named (``show``, ``preview``, ``diff``, and a script's ``dm.generate("tmpl_x@3")``).
``history`` lists the versions newest first; ``diff`` prints a unified diff of two versions' sources
(coloured on a terminal). The diff is made here from two reads: the coordinator serves versions,
not diffs.
"""

from __future__ import annotations

import difflib

import click
from rich.text import Text

from seedbed.cli._context import CliError, SeedbedCommand, state
from seedbed.cli._output import Column, printable, table, when


@click.command("history", cls=SeedbedCommand)
@click.argument("template_id", metavar="TEMPLATE")
def template_history(template_id: str) -> None:
    """The versions of TEMPLATE, newest first (a deleted template's too). -o json prints the
    TemplateVersions.

    \b
    Examples:
      seedbed template history tmpl_order
      seedbed template show tmpl_order@2
      seedbed template diff tmpl_order@2 tmpl_order@3
    """
    g = state()
    versions = g.client().list_template_versions(template_id)
    columns = (
        Column("VERSION", lambda v: f"{v.template_id}@{v.version}"),
        Column("CREATED", lambda v: when(v.create_time)),
        Column("BY", lambda v: v.created_by or "-"),
        Column("DIGEST", lambda v: v.digest[:12]),
        Column("FIELDS", lambda v: ", ".join(v.field_names), overflow="ellipsis", max_width=40),
        Column("DESCRIPTION", lambda v: v.description, overflow="ellipsis"),
    )
    g.emit(versions, lambda: table(versions, columns))


@click.command("diff", cls=SeedbedCommand)
@click.argument("old", metavar="TEMPLATE@N")
@click.argument("new", metavar="[TEMPLATE@M]", required=False)
@click.option(
    "-U",
    "--context",
    "context",
    type=click.IntRange(0, 1000),
    default=3,
    show_default=True,
    help="lines of context around each change",
)
def template_diff(old: str, new: str | None, context: int) -> None:
    """A unified diff of two versions' sources: TEMPLATE@N against TEMPLATE@M, or against the
    latest version without TEMPLATE@M. -o json prints {"from", "to", "diff"}.

    \b
    Examples:
      seedbed template diff tmpl_order@2 tmpl_order@3
      seedbed template diff tmpl_order@2
    """
    if "@" not in old:
        raise CliError(f"name a version to compare: {old}@N (`seedbed template history {old}` lists them)")
    g = state()
    client = g.client()
    before = client.get_template(old)
    after = client.get_template(new or old.partition("@")[0])
    names = (f"{before.id}@{before.revision}", f"{after.id}@{after.revision}")
    lines = list(
        difflib.unified_diff(
            before.source.splitlines(),
            after.source.splitlines(),
            fromfile=names[0],
            tofile=names[1],
            n=context,
            lineterm="",
        )
    )
    if g.output != "table":
        g.emit({"from": names[0], "to": names[1], "diff": "\n".join(lines)}, lambda: None)
        return
    if not lines:
        g.out.print(Text(f"{names[0]} and {names[1]} have the same source"))
        return
    for line in lines:
        style = ""
        if line.startswith(("+++", "---")):
            style = "bold"
        elif line.startswith("+"):
            style = "green"
        elif line.startswith("-"):
            style = "red"
        elif line.startswith("@@"):
            style = "cyan"
        g.out.print(Text(printable(line), style=style), soft_wrap=True, highlight=False)
