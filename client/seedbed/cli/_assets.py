"""``seedbed run assets RUN`` and ``seedbed run download RUN NAME [DEST|-]``: the files a run kept.

``run assets`` lists them (name, size, SHA-256, the attempt that wrote them); ``-o json|yaml``: the
contract's RunAsset messages. ``run download`` writes one to DEST (default: the last part of its name,
in the current folder; ``-``: standard output), through a temporary file checked against the
asset's size and SHA-256 before it takes DEST's name, so a failed download leaves nothing behind
(to ``-``, the same check after the bytes went out: a download cut short exits FAILED).
As elsewhere, ``-o`` is the output format, not a file: DEST is the second argument (``workspace
download`` does the same).
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from seedbed.api.v1 import asset_pb2
from seedbed.cli._catalog_options import tell
from seedbed.cli._context import CliError, SeedbedCommand, state
from seedbed.cli._exits import ExitCode
from seedbed.cli._output import Column, table, to_data
from seedbed.client import AssetIntegrityError, RunAsset

__all__ = ["assets", "download"]

# The digest's first 16 hex digits keep a row within 80 columns; -o json has all 64.
_COLUMNS = (
    Column("NAME", lambda a: a.name),
    Column("SIZE", lambda a: a.size_bytes, justify="right"),
    Column("SHA256", lambda a: a.sha256[:16]),
    Column("ATTEMPT", lambda a: a.attempt, justify="right"),
)


@click.command(cls=SeedbedCommand)
@click.argument("run_id", metavar="RUN")
def assets(run_id: str) -> int:
    """List the files run RUN kept: what its script wrote with dm.assets.write_* and what its file
    connections wrote (named files/CONNECTION/FILE).

    RUN is a run id. The assets are those of the run's last attempt. The table shows the first 16
    hex digits of each SHA-256; -o json|yaml: {"run_id", "assets": [RunAsset…]}, digests whole.

    \b
    Examples:
      seedbed run assets run_5f0c2a9e1b7d4c3a
      seedbed run assets run_5f0c2a9e1b7d4c3a -o json | jq -r '.assets[].name'
    """
    g = state()
    found = g.client().run_assets(run_id)
    document = {"run_id": run_id, "assets": [to_data(a) for a in found]}
    if g.output == "table" and not found:
        tell(document, f"run {run_id} kept no assets")
        return 0
    g.emit(document, lambda: table(found, _COLUMNS))
    return 0


@click.command(cls=SeedbedCommand)
@click.argument("run_id", metavar="RUN")
@click.argument("name", metavar="NAME")
@click.argument("dest", metavar="DEST", required=False)
def download(run_id: str, name: str, dest: str | None) -> int:
    """Download asset NAME of run RUN to the local file DEST ("-": standard output; default: the
    last part of NAME, in the current folder). -o json|yaml prints the RunAsset downloaded.

    \b
    Examples:
      seedbed run download run_5f0c2a9e1b7d4c3a report/summary.json
      seedbed run download run_5f0c2a9e1b7d4c3a customers.csv - | head
    """
    g = state()
    if dest == "-" and g.output != "table":
        raise CliError("-o json|yaml describes the asset downloaded: give DEST, not -")
    asset = RunAsset(g.client(), run_id, asset_pb2.RunAsset(name=name))
    if dest == "-":
        # Checked too: a download cut short exits FAILED, not 0 with a truncated stream.
        try:
            asset.write_to(sys.stdout.buffer)
        except AssetIntegrityError as exc:
            raise CliError(str(exc), ExitCode.FAILED) from None
        return 0
    target = Path(dest) if dest else Path(_local_name(name))
    if target.is_dir():
        target = target / _local_name(name)
    try:
        asset.download(target)
    except OSError as exc:
        raise CliError(f"cannot write {target}: {exc.strerror or exc}", ExitCode.FAILED) from None
    except AssetIntegrityError as exc:
        raise CliError(str(exc), ExitCode.FAILED) from None
    tell(to_data(asset.raw), f"{name} ({asset.raw.size_bytes} bytes) saved as {target}")
    return 0


def _local_name(name: str) -> str:
    """The last part of an asset's name, as a local file name (never empty, '.' or '..')."""
    last = name.rsplit("/", 1)[-1]
    if last in ("", ".", "..") or "\\" in last or "\x00" in last:
        raise CliError(f"asset name {name[:80]!r} gives no file name here: give DEST")
    return last
