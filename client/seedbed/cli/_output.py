"""What ``seedbed`` prints: ``-o table|json|yaml`` on every command, one shape per object.

JSON and YAML are the contract's messages in the protobuf JSON mapping with the contract's own field
names, every field present, enums by name, 64-bit integers as strings and times as RFC 3339 — the
shape the REST API answers, so a run read with ``seedbed run show RUN -o json``, over REST and over
gRPC cannot differ. A list is a JSON array of those objects; a command that reports something that
is not a contract message (a plan, a purge's counts) says its shape in its help.

Tables are rich tables sized to the terminal (80 columns off a terminal, or ``COLUMNS``): columns
wrap or fold rather than overflow, so a 40-column terminal still reads. Colour, bold and live
displays only on a terminal, never under ``NO_COLOR`` or ``--no-color`` (rich reads ``NO_COLOR``
and ``TERM=dumb`` itself); off a terminal no control code is written.

Everything the coordinator answers may come from a hostile script or tenant (a scenario's name, a
log line, an error message): table cells are plain text (never rich markup) with control characters
shown as "?" (``printable``), so nothing steers the terminal.
"""

from __future__ import annotations

import json
import sys
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import click
import yaml
from google.protobuf import json_format
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from rich.console import Console
from rich.table import Table
from rich.text import Text

Format = Literal["table", "json", "yaml"]
FORMATS: tuple[Format, ...] = ("table", "json", "yaml")

# Bidirectional overrides and isolates: they would reorder the columns drawn after them.
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def printable(text: str) -> str:
    """``text`` with control characters (an escape sequence, a newline, a bidi override) as "?":
    names, attributes and messages come from the script, and must not steer the terminal."""
    return "".join("?" if ch in _BIDI or unicodedata.category(ch) == "Cc" else ch for ch in text)


def to_data(value: Any) -> Any:
    """A contract message (or a list or dict of them, or plain values) as JSON-ready data."""
    if isinstance(value, Message):
        return json_format.MessageToDict(
            value, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
        )
    if isinstance(value, dict):
        return {str(k): to_data(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_data(v) for v in value]
    return value


def dump(value: Any, fmt: Format) -> str:
    """``value`` as JSON (indented) or YAML text, ending with a newline."""
    data = to_data(value)
    if fmt == "yaml":
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=1_000_000)
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


@dataclass(frozen=True)
class Column:
    """One column of a table: its header and how a row's cell is read from an item."""

    header: str
    get: Callable[[Any], object]
    # "fold" breaks a long id anywhere rather than widening the table; "ellipsis" is free text that
    # takes the width left and is cut with "…" where a word does not fit.
    overflow: Literal["fold", "ellipsis"] = "fold"
    justify: Literal["left", "right"] = "left"
    max_width: int | None = None


def table(items: Iterable[Any], columns: Sequence[Column], *, title: str | None = None) -> Table:
    """A rich table of ``items``: one row each, plain text cells (see the module's note)."""
    grid = Table(title=title, box=None, pad_edge=False, header_style="bold", expand=False)
    for column in columns:
        grid.add_column(
            column.header,
            overflow=column.overflow,
            justify=column.justify,
            max_width=column.max_width,
            # Free text takes the width the other columns leave (never squeezing them out).
            ratio=1 if column.overflow == "ellipsis" else None,
        )
    for item in items:
        grid.add_row(*(Text(printable(cell(column.get(item)))) for column in columns))
    return grid


def fields(rows: Iterable[tuple[str, object]]) -> Table:
    """One object as a two-column table of label and value (``show`` commands)."""
    grid = Table(box=None, pad_edge=False, show_header=False)
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    for label, value in rows:
        grid.add_row(label, Text(printable(cell(value))))
    return grid


def cell(value: object) -> str:
    """A value as a table shows it: times in UTC to the second, None and unset times empty."""
    if value is None:
        return ""
    if isinstance(value, Timestamp):
        return when(value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def when(stamp: Timestamp) -> str:
    """A contract time as ``2026-01-31 12:00:00`` (UTC), or empty when unset."""
    if not stamp.seconds and not stamp.nanos:
        return ""
    return datetime.fromtimestamp(stamp.seconds, UTC).strftime("%Y-%m-%d %H:%M:%S")


def consoles(*, no_color: bool = False) -> tuple[Console, Console]:
    """The command's stdout and stderr consoles: rich decides colour and control codes from the
    terminal, ``NO_COLOR`` and ``TERM``; ``no_color`` turns colour off on a terminal too."""
    options: dict[str, Any] = {"no_color": True} if no_color else {}
    return Console(file=sys.stdout, **options), Console(file=sys.stderr, **options)


def say(text: str, *, err: bool = False) -> None:
    """Print a sentence for people as it is: each of its lines on one line (not wrapped at the
    console's width, which would split the words a script looks for), never read as rich markup
    (a name with "[bold]" in it prints as written), control characters shown as "?"."""
    click.echo("\n".join(printable(line) for line in text.split("\n")), err=err)
