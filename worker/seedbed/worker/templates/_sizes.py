"""How large a template's values can get: an estimate at validation, a cap while rendering.

A `compute` field is text built from other fields, and computed fields may use computed fields, so
a few KB of document can describe gigabytes per row (`b` is "{a}" a hundred times, `c` is "{b}" a
hundred times, …). Two defences, both bounded by `SizeLimits` (the operator's settings):

- `check_sizes(spec, limits)` estimates the largest text each field can produce (UTF-8 bytes, as a
  placeholder reads it) and what a row adds up to, and refuses the template with one problem per
  field over `field_bytes` (its estimate, the cap and the setting to change) and one for a row over
  `row_bytes`. The estimate is static: nothing is rendered.
- Faker pools (`pool: N`) are built in full before the first row: `check_sizes` also refuses a
  template whose pools would hold more than `pool_bytes` (N values of the field's estimated size,
  plus Python's per-object cost), and `estimate_pool_bytes` tells a caller what to budget for.
- the generator's computed fields fail with `SizeLimitError` once their text would pass
  `field_bytes`, adding up the parts' lengths before joining them (`_compute`). This is the bound
  where the estimate cannot be exact: `ref` values come from another template or a database, and
  overrides from the script.

The estimate per kind: the exact longest value for `const` and `choice`; the widest number for `int`
and `sequence` (plus prefix); fixed widths for `uuid`, `float`, `bool`, `date`, `datetime`; for
`faker`, twice the largest value validation's trial calls produced plus `FAKER_SLACK` (Faker's
size arguments are capped at 10,000, so a provider cannot be unbounded, only large); for `ref`,
`REF_BYTES` (a key, usually: what it really holds is capped while rendering); for `compute`, its
literal text plus each placeholder's estimate, times what its filters may add (`upper("ß")` is
"SS": case filters count triple, `slug` double).

Rejected: rendering sample rows at validation (the bomb itself would run in the validating worker);
counting characters instead of bytes (the caps protect memory and the wire, where bytes count).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from seedbed.worker.templates._compute import text_bytes
from seedbed.worker.templates._errors import Problem, TemplateValidationError
from seedbed.worker.templates._spec import (
    BoolGen,
    ChoiceGen,
    ComputeGen,
    ConstGen,
    DateGen,
    DateTimeGen,
    FakerGen,
    FloatGen,
    GeneratorSpec,
    IntGen,
    RefGen,
    SequenceGen,
    TemplateSpec,
    UuidGen,
)

__all__ = [
    "DEFAULT_FIELD_BYTES",
    "DEFAULT_POOL_BYTES",
    "DEFAULT_ROW_BYTES",
    "SizeLimits",
    "check_sizes",
    "estimate_pool_bytes",
    "estimate_sizes",
]

DEFAULT_FIELD_BYTES = 64 * 1024
DEFAULT_ROW_BYTES = 1024 * 1024
DEFAULT_POOL_BYTES = 256 * 1024 * 1024
POOL_VALUE_OVERHEAD = 64  # a str object's header and its slot in the pool's tuple and array
REF_BYTES = 256
FAKER_SLACK = 64
_CEILING = 2**60  # estimates saturate here: past it the exact figure says nothing more
_FILTER_GROWTH = {"lower": 3, "upper": 3, "title": 3, "slug": 2, "strip": 1, "digits": 1}
_FIXED = {UuidGen: 36, FloatGen: 24, BoolGen: 5, DateGen: 10, DateTimeGen: 32}
_SEQUENCE_DIGITS = 33  # a sign and the digits of start + step × row for 64-bit start and step


@dataclass(frozen=True, slots=True)
class SizeLimits:
    """The caps on generated text: `field_bytes` per field value, `row_bytes` per estimated row,
    `pool_bytes` for the Faker pools of one template."""

    field_bytes: int = DEFAULT_FIELD_BYTES
    row_bytes: int = DEFAULT_ROW_BYTES
    pool_bytes: int = DEFAULT_POOL_BYTES

    def __post_init__(self) -> None:
        for name in ("field_bytes", "row_bytes", "pool_bytes"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")

    @classmethod
    def of(cls, field_bytes: int = 0, row_bytes: int = 0, pool_bytes: int = 0) -> SizeLimits:
        """Limits from settings where 0 means "the default" (an unset field of a wire message)."""
        return cls(
            field_bytes or DEFAULT_FIELD_BYTES,
            row_bytes or DEFAULT_ROW_BYTES,
            pool_bytes or DEFAULT_POOL_BYTES,
        )


def estimate_sizes(spec: TemplateSpec) -> dict[str, int]:
    """The largest text (UTF-8 bytes) each field can produce in one row, in field order."""
    sizes: dict[str, int] = {}

    def size_of(name: str, path: tuple[str, ...] = ()) -> int:
        known = sizes.get(name)
        if known is not None:
            return known
        gen = spec.fields[name].generator
        if isinstance(gen, ComputeGen):
            if name in path:  # validation refuses cycles; never loop here anyway
                return _CEILING
            size = _compute(gen, lambda dep: size_of(dep, (*path, name)))
        else:
            size = _plain(gen)
        sizes[name] = min(size, _CEILING)
        return sizes[name]

    for name in spec.fields:
        size_of(name)
    return {name: sizes[name] for name in spec.fields}


def estimate_pool_bytes(spec: TemplateSpec) -> dict[str, int]:
    """The memory each pooled Faker field's pool may take once built (bytes), for pooled fields."""
    return {
        name: min(gen.pool * (_plain(gen) + POOL_VALUE_OVERHEAD), _CEILING)
        for name, field in spec.fields.items()
        if isinstance(gen := field.generator, FakerGen) and gen.pool
    }


def check_sizes(spec: TemplateSpec, limits: SizeLimits) -> None:
    """Raise `TemplateValidationError` naming every field whose estimate is over `limits.field_bytes`,
    the row when the fields add up to more than `limits.row_bytes`, and the pools when they would
    hold more than `limits.pool_bytes`."""
    sizes = estimate_sizes(spec)
    problems = [
        Problem(f"fields.{name}.{spec.fields[name].kind}", _field_message(spec, name, size, limits))
        for name, size in sizes.items()
        if size > limits.field_bytes
    ]
    row = min(sum(sizes.values()), _CEILING)
    if row > limits.row_bytes:
        largest = sorted(sizes.items(), key=lambda item: -item[1])[:3]
        problems.append(
            Problem(
                "fields",
                f"one row adds up to an estimated {_bytes(row)}; the limit is {limits.row_bytes:,} bytes "
                "per row (SEEDBED_MAX_TEMPLATE_ROW_BYTES, an operator setting): the largest fields are "
                + ", ".join(f"{name} ({size:,} bytes)" for name, size in largest),
            )
        )
    pools = estimate_pool_bytes(spec)
    if sum(pools.values()) > limits.pool_bytes:
        largest = sorted(pools.items(), key=lambda item: -item[1])[:3]
        problems.append(
            Problem(
                f"fields.{largest[0][0]}.pool" if len(pools) == 1 else "fields",
                f"the Faker pools would hold an estimated {_bytes(sum(pools.values()))}; the limit is "
                f"{limits.pool_bytes:,} bytes per template: use smaller pools or shorter values ("
                + ", ".join(f"{name}: {size:,} bytes" for name, size in largest)
                + ")",
            )
        )
    if problems:
        raise TemplateValidationError(problems, template_id=spec.id)


def _plain(gen: GeneratorSpec) -> int:
    if isinstance(gen, ConstGen):
        return text_bytes(gen.value)
    if isinstance(gen, ChoiceGen):
        return max(text_bytes(v) for v in gen.values)
    if isinstance(gen, IntGen):
        return max(len(str(gen.min)), len(str(gen.max)))
    if isinstance(gen, SequenceGen):
        prefix = len(gen.prefix.encode("utf-8", "surrogatepass")) if gen.prefix else 0
        return prefix + max(gen.pad, _SEQUENCE_DIGITS)
    if isinstance(gen, FakerGen):
        return 2 * gen.sample_bytes + FAKER_SLACK
    if isinstance(gen, RefGen):
        return REF_BYTES
    return _FIXED[type(gen)]


def _compute(gen: ComputeGen, size_of: Callable[[str], int]) -> int:
    total = 0
    for literal, name, filters in gen.parts:
        total += len(literal.encode("utf-8", "surrogatepass"))
        if name is None:
            continue
        size = size_of(name)
        for flt in filters:
            size = min(size, 4) if flt == "initial" else size * _FILTER_GROWTH[flt]
        total += size
        if total >= _CEILING:
            return _CEILING
    return total


def _field_message(spec: TemplateSpec, name: str, size: int, limits: SizeLimits) -> str:
    gen = spec.fields[name].generator
    if isinstance(gen, ComputeGen):
        uses = ", ".join(gen.depends_on)
        hint = f"it repeats or multiplies the fields it uses ({uses}): use fewer or shorter placeholders"
    elif isinstance(gen, FakerGen):
        hint = "lower the provider's size arguments"
    else:
        hint = "use a shorter value"
    return (
        f"renders up to an estimated {_bytes(size)} in one row; the limit is {limits.field_bytes:,} "
        f"bytes per field (SEEDBED_MAX_TEMPLATE_FIELD_BYTES, an operator setting): {hint}"
    )


def _bytes(size: int) -> str:
    if size >= _CEILING:
        return f"more than {_CEILING:,} bytes"
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if size >= scale:
            return f"{size:,} bytes (about {size / scale:.1f} {unit})"
    return f"{size:,} bytes"
