"""`compute` expressions: text with `{field}` and `{field|filter|…}` placeholders, nothing more.

The parser is our own, not `str.format`: `str.format` resolves `{x.__class__}` and `{x[0]}` (attribute
and index access on values), `!r` conversions and format specs such as `{x:>999999999}` (a memory
bomb). Here a placeholder is a field name and optional filters; `{{` and `}}` are literal braces.
Rendering is a join over precompiled parts, so there is no eval and no lookup beyond the row.

Size: placeholders multiply (`b` is "{a}" a hundred times, `c` is "{b}" a hundred times…), so the
text is capped while it is rendered: the lengths of the parts are added up as each is made, and a
part that would take the text past the cap raises `TextTooLarge` before anything is joined (the
estimate at validation, `_sizes`, refuses most such templates earlier).
"""

from __future__ import annotations

import json
import re
import sys
import unicodedata
from collections.abc import Callable
from typing import Any

__all__ = ["FILTERS", "TextTooLarge", "compile_compute", "parse_compute", "render_value", "text_bytes"]

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


def text_bytes(value: Any) -> int:
    """A value's size in UTF-8 bytes as computed text (lists and objects: or as JSON, if larger)."""
    text = render_value(value)
    as_text = len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))
    if not isinstance(value, list | dict):
        return as_text
    as_json = json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
    return max(as_text, len(as_json.encode("utf-8", "surrogatepass")))


class TextTooLarge(Exception):
    """A computed text would pass the cap; `size` is a lower bound of its length in bytes (internal)."""

    def __init__(self, size: int) -> None:
        super().__init__(size)
        self.size = size


def _checked(text: str, limit: int) -> str:
    """`text` when its UTF-8 form fits in `limit` bytes. A character is 1-4 bytes: encode only when
    the character count alone cannot decide."""
    n = len(text)
    if n > limit:
        raise TextTooLarge(n)
    if n * 4 > limit and not text.isascii():
        size = len(text.encode("utf-8", "surrogatepass"))
        if size > limit:
            raise TextTooLarge(size)
    return text


def compile_compute(
    parts: tuple[tuple[str, str | None, tuple[str, ...]], ...],
    max_bytes: int | None = None,
) -> Callable[[dict[str, Any]], str]:
    """A function row → text for already-parsed, validated parts; past `max_bytes` (UTF-8) of text it
    raises `TextTooLarge` without building the whole text."""
    limit = sys.maxsize if max_bytes is None else max_bytes
    steps = tuple((literal, name, tuple(FILTERS[f] for f in filters)) for literal, name, filters in parts)
    if len(steps) == 1 and steps[0][1] is not None and not steps[0][0] and not steps[0][2]:
        only = steps[0][1]
        return lambda row: _checked(render_value(row[only]), limit)

    def render(row: dict[str, Any]) -> str:
        out: list[str] = []
        total = 0  # characters so far: a lower bound of the bytes
        for literal, name, filters in steps:
            if literal:
                out.append(literal)
                total += len(literal)
            if name is not None:
                text = render_value(row[name])
                for flt in filters:  # a filter may lengthen its input (upper("ß") is "SS"): check first
                    if total + len(text) > limit:
                        raise TextTooLarge(total + len(text))
                    text = flt(text)
                out.append(text)
                total += len(text)
            if total > limit:
                raise TextTooLarge(total)
        return _checked("".join(out), limit)

    return render
