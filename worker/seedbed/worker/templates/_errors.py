"""The templates package's exception tree (re-exported by `seedbed.worker.templates`).

TemplateError                  base of everything this package raises
├── TemplateValidationError    a template document is invalid (`problems`, every one of them)
├── TemplatePinError           a template reference's version ('tmpl_x@N') is malformed (`text`)
└── GenerationError            a generate call cannot be served (`template_id`, `field`)
    ├── CountLimitError        count outside 1..limit (`count`, `limit`)
    ├── OverrideError          an override is not a JSON value or a `Pick`, or a `Pick` is malformed
    ├── MissingRefError        a `ref` field's source has no rows in this run yet (`source`)
    ├── UniqueExhaustedError   a `unique` field ran out of distinct values (`obtained`, `requested`)
    └── SizeLimitError         a computed field's text would pass the per-field cap (`size`, `limit`)
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "CountLimitError",
    "GenerationError",
    "MissingRefError",
    "OverrideError",
    "Problem",
    "SizeLimitError",
    "TemplateError",
    "TemplateValidationError",
    "UniqueExhaustedError",
]


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a template document.

    `path` points at the offending part in dotted form (`fields.email.faker`,
    `fields.tier.choice.weights[1]`); `(document)` means the document as a whole.
    """

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class Problems:
    """Collects problems in document order (internal to validation)."""

    def __init__(self) -> None:
        self.items: list[Problem] = []

    def add(self, path: str, message: str) -> None:
        self.items.append(Problem(path, message))

    def __len__(self) -> int:
        return len(self.items)


def closest(name: str, options: Iterable[str]) -> str | None:
    close = difflib.get_close_matches(name, sorted(options), n=1, cutoff=0.6)
    return close[0] if close else None


def did_you_mean(name: str, options: Iterable[str]) -> str:
    """` (did you mean 'x'?)` for the closest option, or ""."""
    close = closest(name, options)
    return f" (did you mean {close!r}?)" if close else ""


class TemplateError(Exception):
    """Base class of the templates package's errors."""


class TemplateValidationError(TemplateError):
    """A template document is invalid. `problems` lists every problem found, in document order."""

    def __init__(self, problems: Iterable[Problem], *, template_id: str | None = None) -> None:
        self.problems = tuple(problems)
        self.template_id = template_id
        name = f"template {template_id!r}" if template_id else "template"
        count = len(self.problems)
        head = f"{name} is invalid ({count} problem{'s' if count != 1 else ''}):"
        super().__init__("\n".join([head, *(f"  - {p}" for p in self.problems)]))


class GenerationError(TemplateError):
    """A generate call cannot be served. `field` is None when the call as a whole is at fault."""

    def __init__(self, message: str, *, template_id: str, field: str | None = None) -> None:
        self.template_id = template_id
        self.field = field
        super().__init__(message)


class CountLimitError(GenerationError):
    """The requested row count is outside 1..limit."""

    def __init__(self, *, template_id: str, count: object, limit: int) -> None:
        self.count = count
        self.limit = limit
        super().__init__(
            f"template {template_id!r}: count must be an integer from 1 to {limit:,} (the per-call limit), "
            f"got {count!r}; split larger data sets into several calls",
            template_id=template_id,
        )


class OverrideError(GenerationError):
    """An override is neither a JSON value nor a `Pick`, or a `Pick` is malformed."""


class MissingRefError(GenerationError):
    """A `ref` field points at a template and field that have no generated values in this run yet."""

    def __init__(self, *, template_id: str, field: str, source: str) -> None:
        self.source = source
        src_template = source.split(".", 1)[0]
        super().__init__(
            f"template {template_id!r}: field {field!r} references {source} but this run has generated "
            f"no {src_template} rows yet: generate them first or pass an override for {field!r}",
            template_id=template_id,
            field=field,
        )


class UniqueExhaustedError(GenerationError):
    """A `unique: true` field could not produce another distinct value within the retry budget."""

    def __init__(
        self, *, template_id: str, field: str, obtained: int, requested: int, detail: str = ""
    ) -> None:
        self.obtained = obtained
        self.requested = requested
        why = f" ({detail})" if detail else ""
        super().__init__(
            f"template {template_id!r}: field {field!r} is unique but only {obtained:,} distinct values "
            f"could be generated for {requested:,} rows{why}: widen the generator (a larger range, more "
            f"values, another provider), drop `unique`, or generate fewer rows",
            template_id=template_id,
            field=field,
        )


class SizeLimitError(GenerationError):
    """A computed field would render text over the per-field cap; it was refused before being built."""

    def __init__(self, *, template_id: str, field: str, size: int, limit: int) -> None:
        self.size = size
        self.limit = limit
        super().__init__(
            f"template {template_id!r}: field {field!r} would render at least {size:,} bytes of text in "
            f"one row; the limit is {limit:,} bytes per field (SEEDBED_MAX_TEMPLATE_FIELD_BYTES): use "
            "fewer or shorter placeholders, or shorter values in the fields it uses",
            template_id=template_id,
            field=field,
        )
