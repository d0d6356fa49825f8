"""Whether a value fits a column, the way the database would see it: convertible to the column's
type, not too long for varchar(n), within an integer's or a numeric's range; and whether a row
passes the simple check constraints (comparisons with a literal, IN lists, joined by AND).

`convert` answers the value as the database would store it (so keys compare with what a lookup
reads back) or raises `Mismatch` with the reason. A timestamp with time zone is an instant in UTC;
a naive value given for one is taken to be in UTC, as a session whose time zone is UTC reads it (a
target whose sessions use another time zone stores naive values shifted by its offset: give such a
column aware values). A type this module does not know is accepted as
it is: a dry run reports what it can prove, never a guess. A reason never repeats the value: the
problem carries it (masked before it is cut to its 200 characters, which a value cut inside a
message could not be).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from collections.abc import Callable, Mapping
from decimal import ROUND_HALF_UP, Context, Decimal, InvalidOperation
from typing import Any

import sqlalchemy as sa

__all__ = ["Mismatch", "compile_check", "convert"]

_INT_RANGES = {
    sa.SmallInteger: (-(2**15), 2**15 - 1),
    sa.BigInteger: (-(2**63), 2**63 - 1),
    sa.Integer: (-(2**31), 2**31 - 1),
}
_TRUE = {"t", "true", "y", "yes", "on", "1"}
_FALSE = {"f", "false", "n", "no", "off", "0"}


class Mismatch(ValueError):
    """The value does not fit the column: the message says why."""


def _int_range(type_: Any) -> tuple[int, int]:
    for cls, bounds in _INT_RANGES.items():
        if isinstance(type_, cls):
            return bounds
    return _INT_RANGES[sa.Integer]


def convert(type_: Any, value: Any) -> Any:
    """`value` as a column of `type_` would hold it; raises Mismatch. None passes (NOT NULL is
    checked on its own)."""
    if value is None:
        return None
    name = type(type_).__name__
    if isinstance(type_, sa.Boolean):
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise Mismatch("not a boolean")
    if isinstance(type_, sa.Integer):
        return _integer(type_, value)
    if isinstance(type_, sa.Float):
        if isinstance(value, (bool, dict | list)):
            raise Mismatch("not a number")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise Mismatch("not a number") from None
    if isinstance(type_, sa.Numeric):
        return _numeric(type_, value)
    if isinstance(type_, sa.Enum) and type_.enums:
        if str(value) not in type_.enums:
            raise Mismatch(f"not one of {', '.join(type_.enums)}")
        return str(value)
    if isinstance(type_, sa.String):
        if isinstance(value, dict | list):
            raise Mismatch(f"a {'list' if isinstance(value, list) else 'mapping'} is not text")
        text = (
            value if isinstance(value, str) else str(value).lower() if isinstance(value, bool) else str(value)
        )
        length = getattr(type_, "length", None)
        if length and len(text) > length:
            kind = "char" if isinstance(type_, sa.CHAR) else "varchar"
            raise Mismatch(f"{len(text)} characters are too long for {kind}({length})")
        return text
    if isinstance(type_, sa.DateTime):
        stamp = _parsed(value, dt.datetime, dt.datetime.fromisoformat, "a timestamp")
        if getattr(type_, "timezone", False):
            # timestamptz holds an instant: a naive value is read in the session's time zone, taken
            # to be UTC (the server's default; the dry run's own sessions set it), so that
            # '2024-01-01T00:00:00' and '2024-01-01T01:00:00+01:00' are one key, as in PostgreSQL.
            if stamp.tzinfo is None:
                return stamp.replace(tzinfo=dt.UTC)
            return stamp.astimezone(dt.UTC)
        return stamp
    if isinstance(type_, sa.Date):
        if isinstance(value, dt.datetime):
            return value.date()
        return _parsed(value, dt.date, dt.date.fromisoformat, "a date")
    if isinstance(type_, sa.Time):
        return _parsed(value, dt.time, dt.time.fromisoformat, "a time")
    if isinstance(type_, sa.Uuid) or name == "UUID":
        if isinstance(value, uuid.UUID):
            return value
        try:
            return uuid.UUID(str(value))
        except ValueError:
            raise Mismatch("not a UUID") from None
    if isinstance(type_, sa.JSON):
        try:
            json.dumps(value)
        except (TypeError, ValueError):
            raise Mismatch("not JSON") from None
        return value
    if isinstance(type_, sa.LargeBinary):
        if not isinstance(value, bytes | bytearray | str):
            raise Mismatch("not binary data")
        return value
    if isinstance(type_, sa.ARRAY):
        if not isinstance(value, list):
            raise Mismatch("not a list")
        return value
    return value


def _integer(type_: Any, value: Any) -> int:
    if isinstance(value, bool):
        raise Mismatch("a boolean, not an integer")
    if isinstance(value, int):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str | Decimal):
        try:
            number = int(str(value).strip())
        except ValueError:
            raise Mismatch("not an integer") from None
    else:
        raise Mismatch("not an integer")
    low, high = _int_range(type_)
    if not low <= number <= high:
        raise Mismatch(f"out of range for {type(type_).__name__.lower()} ({low}..{high})")
    return number


def _numeric(type_: Any, value: Any) -> Decimal:
    if isinstance(value, (bool, dict | list)):
        raise Mismatch("not a number")
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise Mismatch("not a number") from None
    if not number.is_finite():
        return number
    precision, scale = getattr(type_, "precision", None), getattr(type_, "scale", None) or 0
    if precision:
        overflow = Mismatch(
            f"overflows numeric({precision},{scale}): at most {precision - scale} digits before the point"
        )
        # Digits before the point, read off the exponent: 1e30 is not made into a 31-digit integer,
        # and quantizing it under the default 28-digit context would raise InvalidOperation.
        if number and number.adjusted() >= precision - scale:
            raise overflow
        # As PostgreSQL rounds (half away from zero), with room for a carry (99.995 → 100.00).
        context = Context(prec=precision + 2, rounding=ROUND_HALF_UP)
        rounded = number.quantize(Decimal(1).scaleb(-scale), context=context)
        if rounded and rounded.adjusted() >= precision - scale:
            raise overflow
        return rounded
    return number


def _parsed(value: Any, cls: type, parse: Callable[[str], Any], what: str) -> Any:
    if isinstance(value, cls):
        return value
    if isinstance(value, str):
        try:
            return parse(value.strip().replace("Z", "+00:00") if value.endswith("Z") else value.strip())
        except ValueError:
            pass
    raise Mismatch(f"not {what}")


# -- check constraints ---------------------------------------------------------------------------------

_CAST = re.compile(r"::[a-z_ ]+(\([0-9, ]+\))?(\[\])?", re.IGNORECASE)
_LITERAL = r"(?:'(?:[^']|'')*'|-?[0-9]+(?:\.[0-9]+)?)"
_NAME = r"[\"`]?([A-Za-z_][A-Za-z0-9_]*)[\"`]?"
_COMPARE = re.compile(rf"^{_NAME}\s*(>=|<=|<>|!=|=|>|<)\s*({_LITERAL})$")
_FLIPPED = re.compile(rf"^({_LITERAL})\s*(>=|<=|<>|!=|=|>|<)\s*{_NAME}$")
_IN = re.compile(rf"^{_NAME}\s+IN\s*\(((?:\s*{_LITERAL}\s*,?)+)\)$", re.IGNORECASE)
_ANY = re.compile(rf"^{_NAME}\s*=\s*ANY\s*\(\s*(?:ARRAY)?\[((?:\s*{_LITERAL}\s*,?)+)\]\s*\)$", re.IGNORECASE)
_LENGTH = re.compile(
    rf"^(?:char_)?length\s*\(\s*{_NAME}\s*\)\s*(>=|<=|<>|!=|=|>|<)\s*([0-9]+)$", re.IGNORECASE
)
_OPS: dict[str, Callable[[Any, Any], bool]] = {
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    "=": lambda a, b: a == b,
    "<>": lambda a, b: a != b,
    "!=": lambda a, b: a != b,
}
_FLIP = {">": "<", "<": ">", ">=": "<=", "<=": ">=", "=": "=", "<>": "<>", "!=": "!="}

Check = Callable[[Mapping[str, Any]], tuple[bool, str]]


def _literal(text: str) -> Any:
    if text.startswith("'"):
        return text[1:-1].replace("''", "'")
    return Decimal(text)


def _strip(text: str) -> str:
    text = _CAST.sub("", text).strip()
    while text.startswith("(") and text.endswith(")") and _balanced(text[1:-1]):
        text = text[1:-1].strip()
    return text


def _balanced(text: str) -> bool:
    depth = 0
    for char in text:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth < 0:
            return False
    return depth == 0


def _split_and(text: str) -> list[str]:
    parts, depth, start = [], 0, 0
    upper = text.upper()
    i = 0
    while i < len(text):
        char = text[i]
        if char == "'":
            i = text.index("'", i + 1) + 1 if "'" in text[i + 1 :] else len(text)
            continue
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth == 0 and upper.startswith(" AND ", i):
            parts.append(text[start:i])
            start = i + 5
            i += 5
            continue
        i += 1
    parts.append(text[start:])
    return [_strip(p) for p in parts]


def _comparable(value: Any, literal: Any) -> Any:
    if isinstance(literal, Decimal) and not isinstance(value, bool):
        return Decimal(str(value))
    return str(value)


def compile_check(sqltext: str) -> Check | None:
    """A function of a row answering (passes, the column involved), or None when the constraint is
    not one this evaluates. A NULL operand passes (SQL: a check that is unknown holds)."""
    parts = _split_and(_strip(sqltext))
    compiled: list[Check] = []
    for part in parts:
        one = _compile_part(part)
        if one is None:
            return None
        compiled.append(one)

    def check(row: Mapping[str, Any]) -> tuple[bool, str]:
        for one in compiled:
            ok, column = one(row)
            if not ok:
                return False, column
        return True, ""

    return check


def _compile_part(part: str) -> Check | None:
    if m := _COMPARE.match(part):
        column, op, literal = m.group(1), m.group(2), _literal(m.group(3))
    elif m := _FLIPPED.match(part):
        literal, op, column = _literal(m.group(1)), _FLIP[m.group(2)], m.group(3)
    elif (m := _IN.match(part)) or (m := _ANY.match(part)):
        column = m.group(1)
        values = [_literal(v) for v in re.findall(_LITERAL, m.group(2))]

        def within(row: Mapping[str, Any]) -> tuple[bool, str]:
            value = row.get(column)
            if value is None:
                return True, column
            try:
                return any(_comparable(value, v) == v for v in values), column
            except (InvalidOperation, ValueError):
                return False, column

        return within
    elif m := _LENGTH.match(part):
        column, op, size = m.group(1), m.group(2), int(m.group(3))

        def length(row: Mapping[str, Any]) -> tuple[bool, str]:
            value = row.get(column)
            return (True if value is None else _OPS[op](len(str(value)), size)), column

        return length
    else:
        return None
    compare = _OPS[op]

    def comparison(row: Mapping[str, Any]) -> tuple[bool, str]:
        value = row.get(column)
        if value is None:
            return True, column
        try:
            return bool(compare(_comparable(value, literal), literal)), column
        except (InvalidOperation, ValueError, TypeError):
            return False, column

    return comparison
