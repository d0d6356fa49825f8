"""``seedbed run trace RUN``: a run's trace as a waterfall in the terminal, or (``-o json``) OTLP JSON.

One row per span in tree order: a mark for a span that ended in error, the name under its parent
(tree guides), the service that recorded it, its duration, a bar placed on the run's time axis, and
the span's key attributes in short (operation, table, rows, the ledger's decision, HTTP status, the
error's message). ``--depth N`` shows N levels of the tree, ``--min-ms X`` hides spans shorter than
X ms; a span that ended in error is never hidden by ``--min-ms``, nor is a span above one that is
shown, and a shown span says how many below it are hidden (``+12``).

Layout: the columns are sized from the width rich gives the renderable (the terminal's; 80 columns
off a terminal, or COLUMNS). The bar takes what the text columns leave; below 120 columns the
attributes follow the name, dimmed, instead of having a column of their own. Every line fits.

Colour is rich's decision: only on a terminal, never under NO_COLOR (rich reads both when the
console is made, at the command's edge). Nothing is said by colour alone: an error span is marked
✗ as well as red, and the glyphs fall back to ASCII when the output cannot encode them.

Rejected: rich's ``Table`` (its column sizing squeezes a bar column unpredictably when names are
long, and a bar must know its width to sit on the time axis); rich's ``Tree`` (no columns).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderResult
from rich.text import Text

from seedbed.cli._output import printable
from seedbed.client import RunTrace, TraceSpan

# Attributes shown in short, first found of each group (OpenTelemetry's semantic conventions, then
# Seedbed's own). An operation or table already in the span's name is not repeated.
_OPERATION = ("db.operation.name", "db.operation", "http.request.method")
_TARGET = ("db.collection.name", "db.sql.table", "seedbed.table", "server.address")
_ROWS = ("seedbed.rows", "db.response.returned_rows")
_LEDGER = ("seedbed.ledger",)
_HTTP_STATUS = ("http.response.status_code",)

_SERVICE_STYLES = {"seedbed-coordinator": "cyan", "seedbed-worker": "magenta"}
_WIDE = 120  # from this width on, the attributes have a column of their own
_DURATION_W = 8
_MIN_BAR = 10
_MIN_NAME = 12


@dataclass(frozen=True)
class Glyphs:
    middle: str
    last: str
    through: str
    bar: str
    error: str
    separator: str


UNICODE = Glyphs(middle="├ ", last="└ ", through="│ ", bar="█", error="✗", separator=" · ")
ASCII = Glyphs(middle="|-", last="`-", through="| ", bar="#", error="x", separator=", ")


def short_duration(nanos: int) -> str:
    """At most 8 characters: 0.42ms, 12ms, 3.25s, 2m05.3s, 1h07m."""
    ms = nanos / 1e6
    if ms < 10:
        return f"{ms:.2f}ms"
    if ms < 1000:
        return f"{ms:.0f}ms"
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.2f}s"
    if seconds < 3600:
        minutes, rest = divmod(seconds, 60)
        return f"{int(minutes)}m{rest:04.1f}s"
    hours, rest = divmod(seconds, 3600)
    return f"{int(hours)}h{int(rest // 60):02d}m"


def _first(span: TraceSpan, keys: Sequence[str]) -> object | None:
    return next((span.attributes[k] for k in keys if k in span.attributes), None)


def summary(span: TraceSpan, separator: str = " · ") -> str:
    """The span's key attributes in a few words: "error: …", operation, table, rows, ledger, HTTP."""
    parts: list[str] = []
    if span.error:
        parts.append(f"error: {span.status_message}" if span.status_message else "error")
    for keys in (_OPERATION, _TARGET):
        value = _first(span, keys)
        if value is not None and str(value) and str(value) not in span.name:
            parts.append(str(value))
    rows = _first(span, _ROWS)
    if isinstance(rows, int) and not isinstance(rows, bool):
        parts.append(f"{rows:,} rows")
    elif rows is not None:
        parts.append(f"{rows} rows")
    ledger = _first(span, _LEDGER)
    if ledger is not None:
        parts.append(f"ledger {ledger}")
    status = _first(span, _HTTP_STATUS)
    if status is not None:
        parts.append(f"HTTP {status}")
    return printable(separator.join(parts))


@dataclass(frozen=True)
class Row:
    """A span as drawn: its tree guide, and how many spans below it are hidden."""

    span: TraceSpan
    guide: str
    hidden: int


def visible_rows(
    trace: RunTrace, glyphs: Glyphs, *, max_depth: int | None = None, min_nanos: int = 0
) -> list[Row]:
    """The rows to draw, in tree order. Iterative throughout: a forged trace may be deep."""
    order = list(trace.walk())
    count = len(order)
    parents = [-1] * count
    ancestors: list[int] = []
    for pos, (depth, _) in enumerate(order):
        del ancestors[depth:]
        parents[pos] = ancestors[-1] if ancestors else -1
        ancestors.append(pos)
    # Bottom-up (reversed pre-order): a span is wanted when it passes the filter or a span below it
    # does; shown when wanted within the depth; the rest below a shown span is counted as hidden.
    wanted = [False] * count
    size = [1] * count
    shown_below = [0] * count
    shown = [False] * count
    for pos in reversed(range(count)):
        depth, span = order[pos]
        wanted[pos] = wanted[pos] or span.duration_nanos >= min_nanos or span.error
        shown[pos] = wanted[pos] and (max_depth is None or depth < max_depth)
        parent = parents[pos]
        if parent >= 0:
            wanted[parent] = wanted[parent] or wanted[pos]
            size[parent] += size[pos]
            shown_below[parent] += shown_below[pos] + (1 if shown[pos] else 0)
    last_child: dict[int, int] = {}
    for pos in range(count):
        if shown[pos] and parents[pos] >= 0:
            last_child[parents[pos]] = pos
    through = [""] * count  # the guide a span's children continue under it
    rows: list[Row] = []
    for pos, (_, span) in enumerate(order):
        if not shown[pos]:
            continue
        parent = parents[pos]
        guide = ""
        if parent >= 0:
            last = last_child[parent] == pos
            guide = through[parent] + (glyphs.last if last else glyphs.middle)
            through[pos] = through[parent] + ("  " if last else glyphs.through)
        rows.append(Row(span, guide, size[pos] - 1 - shown_below[pos]))
    return rows


def _service(span: TraceSpan) -> str:
    return printable(span.service.removeprefix("seedbed-")) or "?"


def _fit(text: Text, width: int) -> Text:
    text.truncate(width, overflow="ellipsis", pad=True)
    return text


@dataclass(frozen=True)
class _Layout:
    """Column widths for one drawing: the text columns first, the bar takes the rest (at least 10)."""

    name_w: int
    service_w: int
    bar_w: int
    detail_w: int  # 0: the attributes follow the name

    @classmethod
    def of(cls, rows: Sequence[Row], details: Sequence[str], width: int) -> _Layout:
        names = [
            row.guide + printable(row.span.name) + (f" +{row.hidden}" if row.hidden else "") for row in rows
        ]
        service_w = min(12, max([len("SERVICE"), *(len(_service(r.span)) for r in rows)]))
        if width >= _WIDE:
            name_w = max(_MIN_NAME, min(max(map(cell_len, names), default=0), int(width * 0.3)))
            detail_w = min(max(map(cell_len, details), default=0), int(width * 0.25))
        else:
            natural = max(
                (cell_len(n) + (2 + cell_len(d) if d else 0) for n, d in zip(names, details, strict=True)),
                default=0,
            )
            name_w = max(_MIN_NAME, min(natural, int(width * 0.4)))
            detail_w = 0
        fixed = 2 + service_w + _DURATION_W + 3 + (detail_w + 1 if detail_w else 0)
        bar_w = width - fixed - name_w
        if bar_w < _MIN_BAR:
            name_w = max(_MIN_NAME, name_w - (_MIN_BAR - bar_w))
            bar_w = max(1, width - fixed - name_w)
        return cls(name_w=name_w, service_w=service_w, bar_w=bar_w, detail_w=detail_w)


class Waterfall:
    """A rich renderable: ``Console().print(Waterfall(trace))``."""

    def __init__(
        self, trace: RunTrace, *, max_depth: int | None = None, min_duration: timedelta | None = None
    ) -> None:
        self.trace = trace
        self.max_depth = max_depth
        self.min_nanos = 0 if min_duration is None else int(min_duration.total_seconds() * 1e9)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        glyphs = ASCII if options.ascii_only else UNICODE
        rows = visible_rows(self.trace, glyphs, max_depth=self.max_depth, min_nanos=self.min_nanos)
        details = [summary(row.span, glyphs.separator) for row in rows]
        layout = _Layout.of(rows, details, options.max_width)
        start = self.trace.start_unix_nano or 0
        total = max(1, (self.trace.end_unix_nano or 0) - start)
        yield from self._head(layout, total)
        for row, detail in zip(rows, details, strict=True):
            yield self._line(row, detail, layout, glyphs, start, total)
        yield from self._foot(rows)

    def _line(self, row: Row, detail: str, layout: _Layout, glyphs: Glyphs, start: int, total: int) -> Text:
        span = row.span
        line = Text(no_wrap=True, overflow="ellipsis")
        if span.error:
            line.append(f"{glyphs.error} ", style="bold red")
        else:
            line.append("  ")
        cell = Text()
        cell.append(row.guide, style="dim")
        cell.append(printable(span.name), style="bold red" if span.error else "")
        if row.hidden:
            cell.append(f" +{row.hidden}", style="dim")
        if detail and not layout.detail_w:
            cell.append("  " + detail, style="red" if span.error else "dim")
        line.append_text(_fit(cell, layout.name_w))
        style = "red" if span.error else _SERVICE_STYLES.get(span.service, "blue")
        line.append(" ")
        line.append_text(_fit(Text(_service(span), style=style), layout.service_w))
        line.append(" " + short_duration(span.duration_nanos).rjust(_DURATION_W) + " ")
        line.append_text(self._bar(span, start, total, layout.bar_w, glyphs.bar, style))
        if layout.detail_w:
            line.append(" ")
            line.append_text(_fit(Text(detail, style="red" if span.error else "dim"), layout.detail_w))
        line.rstrip()
        return line

    def _head(self, layout: _Layout, total: int) -> Iterator[Text]:
        trace, bar_w = self.trace, layout.bar_w
        head = Text(no_wrap=True, overflow="ellipsis")
        head.append(f"trace {printable(trace.trace_id) or '-'}", style="bold")
        head.append(f"  run {printable(trace.run_id)}  {len(trace.spans)} spans  {short_duration(total)}")
        yield head
        axis = [" "] * bar_w
        # The ends first: a label that would touch one already placed is left out.
        labels = [(0, "0s", "left"), (bar_w, short_duration(total), "right")]
        if bar_w >= 24:
            labels.append((bar_w // 2, short_duration(total // 2), "centre"))
        for at, label, how in labels:
            begin = {"left": at, "centre": at - len(label) // 2, "right": at - len(label)}[how]
            begin = max(0, min(begin, bar_w - len(label)))
            if all(c == " " for c in axis[max(0, begin - 1) : begin + len(label) + 1]):
                axis[begin : begin + len(label)] = label[: bar_w - begin]
        columns = Text(no_wrap=True, overflow="ellipsis", style="bold")
        columns.append("  " + "SPAN".ljust(layout.name_w) + " " + "SERVICE".ljust(layout.service_w) + " ")
        columns.append("DURATION".rjust(_DURATION_W) + " " + "".join(axis))
        if layout.detail_w:
            columns.append(" DETAIL")
        columns.rstrip()
        yield columns

    @staticmethod
    def _bar(span: TraceSpan, start: int, total: int, bar_w: int, glyph: str, style: str) -> Text:
        begin = min(bar_w - 1, int((span.start_unix_nano - start) * bar_w / total))
        end = min(bar_w, max(begin + 1, math.ceil((span.end_unix_nano - start) * bar_w / total)))
        bar = Text(" " * begin)
        bar.append(glyph * (end - begin), style=style)
        bar.append(" " * (bar_w - end))
        return bar

    def _foot(self, rows: list[Row]) -> Iterator[Text]:
        trace = self.trace
        yield Text()
        count = len(trace.spans)
        if len(rows) < count:
            yield Text(f"{len(rows)} of {count} spans shown ({count - len(rows)} hidden by --depth/--min-ms)")
        else:
            yield Text(f"{count} spans")
        errors = trace.errors()
        if errors:
            yield Text(f"{len(errors)} span(s) ended in error", style="bold red")
        if trace.dropped_spans:
            cap = f" (at most {trace.max_spans:,} are kept per run)" if trace.max_spans else ""
            yield Text(f"{trace.dropped_spans:,} span(s) dropped{cap}", style="yellow")
        if trace.note:
            yield Text(f"note: {printable(trace.note)}", style="yellow")


def no_spans(trace: RunTrace) -> Text:
    """What ``run trace`` says of a run without spans."""
    text = (
        f"run {printable(trace.run_id)} has no spans: tracing was off when it ran (SEEDBED_TRACING), "
        "or it has not started yet"
    )
    if trace.note:
        text += f"\nnote: {printable(trace.note)}"
    return Text(text)
