"""Overrides of one generate call: field name → a JSON value (the same in every row) or a `Pick`.

Overrides cross a JSON channel from the sandboxed script, so anything else is refused with the
reason (a function, a set, a non-finite float, a non-string key, nesting past 32 levels); names
must be field names, and the fields overrides add count against the row's field limit.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from seedbed.worker.templates._errors import OverrideError
from seedbed.worker.templates._picks import Pick
from seedbed.worker.templates._spec import FIELD_NAME, TemplateSpec
from seedbed.worker.templates._validate import MAX_FIELDS

__all__ = ["check_overrides"]

_SCALARS = (str, int, float, bool, type(None))


def check_overrides(spec: TemplateSpec, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The overrides as a dict, or `OverrideError` naming the first problem."""
    tid = spec.id
    if not isinstance(overrides, Mapping):
        raise OverrideError(
            f"template {tid!r}: overrides must be a mapping of field names to values", template_id=tid
        )
    extra = [k for k in overrides if k not in spec.fields]
    if len(spec.fields) + len(extra) > MAX_FIELDS:
        raise OverrideError(
            f"template {tid!r}: overrides add {len(extra)} fields; a row has at most {MAX_FIELDS} fields",
            template_id=tid,
        )
    for name, value in overrides.items():
        if not isinstance(name, str) or not FIELD_NAME.match(name):
            raise OverrideError(
                f"template {tid!r}: override name {name!r} is not a field name (a letter or "
                "'_' then up to 62 letters, digits or '_')",
                template_id=tid,
            )
        if isinstance(value, Pick):
            continue
        if callable(value):
            raise OverrideError(
                f"template {tid!r}: override {name!r} is a function; overrides are JSON values or "
                "Pick(values, weights) because they cross a JSON channel",
                template_id=tid,
                field=name,
            )
        problem = _json_problem(value, 0)
        if problem:
            raise OverrideError(f"template {tid!r}: override {name!r} {problem}", template_id=tid, field=name)
    return dict(overrides)


def _json_problem(value: Any, depth: int) -> str | None:
    if depth > 32:
        return "is nested too deeply"
    if isinstance(value, float):
        return None if math.isfinite(value) else f"is {value!r}, which is not a JSON number"
    if isinstance(value, _SCALARS):
        return None
    if isinstance(value, list | tuple):
        for item in value:
            if problem := _json_problem(item, depth + 1):
                return problem
        return None
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"has a non-string key {key!r}"
            if problem := _json_problem(item, depth + 1):
                return problem
        return None
    return f"is a {type(value).__name__}, not a JSON value or a Pick"
