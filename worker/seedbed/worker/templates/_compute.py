"""`compute` expressions: text with `{field}` and `{field|filter|…}` placeholders, nothing more.

The parser is our own, not `str.format`: `str.format` resolves `{x.__class__}` and `{x[0]}` (attribute
and index access on values), `!r` conversions and format specs such as `{x:>999999999}` (a memory
bomb). Here a placeholder is a field name and optional filters; `{{` and `}}` are literal braces.
Rendering is a join over precompiled parts, so there is no eval and no lookup beyond the row.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from typing import Any

__all__ = ["FILTERS", "compile_compute", "parse_compute", "render_value"]

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _slug(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")


FILTERS: dict[str, Callable[[str], str]] = {
    "lower": str.lower,
    "upper": str.upper,
    "title": str.title,
    "strip": str.strip,
    "slug": _slug,
    "digits": lambda s: "".join(c for c in s if c.isdigit()),
    "initial": lambda s: s[:1],
}


def parse_compute(expression: str) -> tuple[list[tuple[str, str | None, tuple[str, ...]]], list[str]]:
    """Split `expression` into (literal, field, filters) parts; also return every problem found."""
    parts: list[tuple[str, str | None, tuple[str, ...]]] = []
    problems: list[str] = []
    literal: list[str] = []
    i, n = 0, len(expression)
    while i < n:
        ch = expression[i]
        if ch == "{" and expression.startswith("{{", i):
            literal.append("{")
            i += 2
        elif ch == "}" and expression.startswith("}}", i):
            literal.append("}")
            i += 2
        elif ch == "}":
            problems.append(f"unmatched '}}' at position {i} (write '}}}}' for a literal brace)")
            i += 1
        elif ch == "{":
            end = expression.find("}", i + 1)
            nested = expression.find("{", i + 1)
            if end < 0 or (0 <= nested < end):
                problems.append(f"unclosed '{{' at position {i} (write '{{{{' for a literal brace)")
                i = n if end < 0 else nested
                continue
            body = expression[i + 1 : end]
            name, *filters = (piece.strip() for piece in body.split("|"))
            if not _NAME.match(name):
                problems.append(
                    f"placeholder {{{body}}} is not allowed: a placeholder names a field, optionally "
                    "followed by |filters (no attribute access, indexing, conversions or format specs)"
                )
            for flt in filters:
                if flt not in FILTERS:
                    problems.append(f"unknown filter {flt!r} in {{{body}}}; filters: {', '.join(FILTERS)}")
            parts.append(("".join(literal), name, tuple(filters)))
            literal = []
            i = end + 1
        else:
            literal.append(ch)
            i += 1
    if literal or not parts:
        parts.append(("".join(literal), None, ()))
    return parts, problems


def render_value(value: Any) -> str:
    """How a field value reads inside computed text: null → "", booleans → true/false."""
    if value is None:
        return ""
    if value is True:
        return "true"
    if value is False:
        return "false"
    return value if type(value) is str else str(value)


def compile_compute(
    parts: tuple[tuple[str, str | None, tuple[str, ...]], ...],
) -> Callable[[dict[str, Any]], str]:
    """A function row → text for already-parsed, validated parts."""
    steps = tuple((literal, name, tuple(FILTERS[f] for f in filters)) for literal, name, filters in parts)
    if len(steps) == 1 and steps[0][1] is not None and not steps[0][0] and not steps[0][2]:
        only = steps[0][1]
        return lambda row: render_value(row[only])

    def render(row: dict[str, Any]) -> str:
        out: list[str] = []
        for literal, name, filters in steps:
            if literal:
                out.append(literal)
            if name is not None:
                text = render_value(row[name])
                for flt in filters:
                    text = flt(text)
                out.append(text)
        return "".join(out)

    return render
