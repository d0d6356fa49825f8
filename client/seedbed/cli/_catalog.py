"""``seedbed template | connection | workspace``: the catalog scenarios draw on.

Templates describe generated rows, connections the targets rows are written to (their secrets stay
with the coordinator: no command ever prints one), workspace files the data scenarios read. Each
command calls one public method of ``seedbed.client.Client`` and prints the contract's message
(``-o json|yaml``) or a table or sentence for people. Old spellings (``template push``, ``rm``,
``--json``) still work for one release and say their new name. The connection commands live in
``_connections`` (imported here, where the command line looks for them).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import click
from rich.markup import escape
from rich.table import Table

from seedbed.cli._catalog_options import owner, ownership, project_filter, tell
from seedbed.cli._connections import connection
from seedbed.cli._context import CliError, SeedbedGroup, state
from seedbed.cli._exits import ExitCode
from seedbed.cli._input import read_bytes, read_text
from seedbed.cli._output import Column, printable, table
from seedbed.cli._template_versions import template_diff, template_history

# -- templates ---------------------------------------------------------------------------------------


@click.group(cls=SeedbedGroup, aliases={"push": "create", "rm": "delete"})
def template() -> None:
    """Data templates: the fields of generated rows, in YAML or JSON.

    \b
    Every change is a new version: TEMPLATE@N names version N (show, preview, diff, and a script's
    dm.generate("tmpl_x@3")); without @N, the latest.

    \b
    Examples:
      seedbed template create examples/shop/customer.yaml examples/shop/order.yaml
      seedbed template preview tmpl_customer -n 3
      seedbed template list --project shop
      seedbed template history tmpl_order
      seedbed template diff tmpl_order@2 tmpl_order@3
    """


template.add_command(template_history)
template.add_command(template_diff)


@template.command("list")
@project_filter("templates")
def template_list(project_key: str) -> None:
    """The templates you may read, or those a project's runs may use.

    \b
    Examples:
      seedbed template list
      seedbed template list --project shop -o json
    """
    g = state()
    templates = g.client().list_templates(project_key)
    columns = (
        Column("TEMPLATE", lambda t: t.id),
        Column("PROJECT", lambda t: owner(t.project_key, t.shared)),
        Column("VERSION", lambda t: t.revision, justify="right"),
        Column("FIELDS", lambda t: ", ".join(t.field_names), overflow="ellipsis", max_width=40),
        Column("DESCRIPTION", lambda t: t.description, overflow="ellipsis"),
    )
    g.emit(templates, lambda: table(templates, columns))


@template.command("show")
@click.argument("template_id", metavar="TEMPLATE")
def template_show(template_id: str) -> None:
    """Print template TEMPLATE's source as it was created (so `> file.yaml` saves it); TEMPLATE@N:
    version N's. -o json|yaml prints the Template (source, fields, revision: its version, project…).

    \b
    Examples:
      seedbed template show tmpl_customer > customer.yaml
      seedbed template show tmpl_customer@2
      seedbed template show tmpl_customer -o yaml
    """
    g = state()
    found = g.client().get_template(template_id)
    if g.output != "table":
        g.emit(found, lambda: None)
        return
    for line in found.source.splitlines():
        click.echo(printable(line))


@template.command("create")
@click.argument("files", metavar="FILE...", nargs=-1, required=True)
@click.option("--no-update", is_flag=True, help="refuse a template that exists instead of updating it")
@ownership("the templates")
def template_create(files: tuple[str, ...], no_update: bool, project_key: str, shared: bool | None) -> None:
    """Create the templates in the YAML or JSON files FILE..., or update those that exist (a new
    version, unless the file is the latest version's source; --no-update refuses instead). Was
    `template push`.

    -o json prints the list of Templates as saved, one per FILE.

    \b
    Examples:
      seedbed template create examples/shop/customer.yaml examples/shop/order.yaml
      seedbed template create team.yaml --project shop --shared
    """
    g = state()
    sources = [read_text(path) for path in files]  # every file readable before the first call
    client = g.client()
    saved = []
    for source in sources:
        made = client.put_template(source, allow_update=not no_update, project_key=project_key, shared=shared)
        saved.append(made)
        if g.output == "table":
            shared_note = ", shared" if made.shared else ""
            click.echo(
                printable(
                    f"{made.id}@{made.revision} ({len(made.field_names)} fields) "
                    f"in project {made.project_key}{shared_note}"
                )
            )
    if g.output != "table":
        g.emit(saved, lambda: None)


@template.command("delete")
@click.argument("template_id", metavar="TEMPLATE")
def template_delete(template_id: str) -> None:
    """Delete template TEMPLATE (scenarios that use it fail at their next run). Its versions stay
    readable (history, show TEMPLATE@N): the runs that used them stay explainable.

    -o json prints {"deleted": TEMPLATE}.

    \b
    Examples:
      seedbed template delete tmpl_order
    """
    g = state()
    g.client().delete_template(template_id)
    tell({"deleted": template_id}, f"deleted {template_id}")


@template.command("preview")
@click.argument("template", metavar="TEMPLATE")
@click.option("-n", "count", type=click.IntRange(1, 100), default=5, show_default=True, help="rows to print")
@click.option("--seed", type=int, help="the generator's seed: the same seed gives the same rows")
@click.option(
    "--project",
    "project_key",
    default="",
    metavar="KEY",
    help="a file: preview it as a run of this project would (its templates and files)",
)
def template_preview(template: str, count: int, seed: int | None, project_key: str) -> None:
    """Print sample rows of TEMPLATE: a stored template's id (TEMPLATE@N: version N), or a
    YAML/JSON template file (not saved). -o json prints the rows as a JSON array of objects, field
    name → value.

    \b
    Examples:
      seedbed template preview tmpl_customer -n 3 --seed 7
      seedbed template preview draft.yaml --project shop -o json
    """
    g = state()
    if Path(template).is_file():
        source = read_text(template)
        rows = g.client().preview_template(source=source, count=count, seed=seed, project_key=project_key)
    else:
        rows = g.client().preview_template(template, count=count, seed=seed)
    g.emit(rows, lambda: _rows_table(rows))


def _rows_table(rows: list[dict[str, object]]) -> Table:
    names = list(dict.fromkeys(name for row in rows for name in row))
    return table(rows, [Column(escape(printable(name)), _field(name), max_width=40) for name in names])


def _field(name: str) -> Callable[[dict[str, object]], object]:
    return lambda row: row.get(name)


# -- workspace ---------------------------------------------------------------------------------------


@click.group(cls=SeedbedGroup, aliases={"rm": "delete"})
def workspace() -> None:
    """Workspace files: data scenarios read (read-only to them) with `workspace.read_csv` and the like.

    \b
    Examples:
      seedbed workspace upload cities.csv --as data/cities.csv
      seedbed workspace list data/
      seedbed workspace download data/cities.csv -
    """


@workspace.command("list")
@click.argument("prefix", metavar="PREFIX", default="")
@project_filter("files")
def workspace_list(prefix: str, project_key: str) -> None:
    """The files you may read whose path starts with PREFIX (default: every one).

    \b
    Examples:
      seedbed workspace list
      seedbed workspace list data/ --project shop -o json
    """
    g = state()
    files = g.client().list_files(prefix, project_key)
    columns = (
        Column("PATH", lambda f: f.path),
        Column("SIZE", lambda f: f.size_bytes, justify="right"),
        Column("PROJECT", lambda f: owner(f.project_key, f.shared)),
        Column("CREATED", lambda f: f.create_time),
    )
    g.emit(files, lambda: table(files, columns))


@workspace.command("upload")
@click.argument("file", metavar="FILE", type=click.Path(dir_okay=False))
@click.option("--as", "as_path", metavar="PATH", help="its path in the workspace (default: the file's name)")
@click.option("--overwrite", is_flag=True, help="replace a file already at that path")
@ownership("the file")
def workspace_upload(
    file: str, as_path: str | None, overwrite: bool, project_key: str, shared: bool | None
) -> None:
    """Upload the local file FILE. -o json prints the WorkspaceFile as stored.

    \b
    Examples:
      seedbed workspace upload cities.csv --as data/cities.csv
      seedbed workspace upload prices.csv --project shop --shared --overwrite
    """
    g = state()
    data = read_bytes(file)
    stored = g.client().upload_file(
        as_path or Path(file).name, data, overwrite=overwrite, project_key=project_key, shared=shared
    )
    shared_note = ", shared" if stored.shared else ""
    tell(
        stored,
        f"{stored.path} {stored.size_bytes} bytes sha256:{stored.sha256} "
        f"in project {stored.project_key}{shared_note}",
    )


@workspace.command("download")
@click.argument("path", metavar="PATH")
@click.argument("dest", metavar="DEST", required=False)
def workspace_download(path: str, dest: str | None) -> None:
    """Download workspace file PATH to the local file DEST ("-": standard output; default: the
    file's name in the current folder). The old `-o FILE` is DEST now (-o is the output format);
    -o json prints the WorkspaceFile downloaded.

    \b
    Examples:
      seedbed workspace download data/cities.csv
      seedbed workspace download data/cities.csv - | head
    """
    g = state()
    if dest == "-" and g.output != "table":
        raise CliError("-o json|yaml describes the file downloaded: give DEST, not -")
    meta, data = g.client().download_file(path)
    if dest == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return
    target = Path(dest or Path(path).name)
    try:
        target.write_bytes(data)
    except OSError as exc:
        raise CliError(f"cannot write {target}: {exc.strerror}", ExitCode.FAILED) from None
    tell(meta, f"{meta.path} ({len(data)} bytes) saved as {target}")


@workspace.command("delete")
@click.argument("path", metavar="PATH")
def workspace_delete(path: str) -> None:
    """Delete workspace file PATH (scenarios that read it fail at their next run).

    -o json prints {"deleted": PATH}.

    \b
    Examples:
      seedbed workspace delete data/cities.csv
    """
    g = state()
    g.client().delete_file(path)
    tell({"deleted": path}, f"deleted {path}")


__all__ = ["connection", "template", "workspace"]
