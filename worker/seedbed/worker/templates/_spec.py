"""The validated, immutable form of a template: `TemplateSpec` → `FieldSpec` → one generator spec.

Only `validate_template` builds these (it guarantees every invariant the generator relies on).
Nested JSON values that users supply (a `const` value, Faker arguments) are kept as canonical JSON
text, so a spec is deeply immutable and hashable, and nobody can mutate a shared list in place.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from functools import cached_property
from types import MappingProxyType
from typing import Any, ClassVar, Literal, TypeAlias

__all__ = [
    "FIELD_NAME",
    "TEMPLATE_ID",
    "BoolGen",
    "ChoiceGen",
    "ComputeGen",
    "ConstGen",
    "DateGen",
    "DateTimeGen",
    "FakerGen",
    "FieldSpec",
    "FloatGen",
    "GeneratorSpec",
    "IntGen",
    "RefGen",
    "SequenceGen",
    "TemplateSpec",
    "UuidGen",
    "canonical_json",
]

TEMPLATE_ID = re.compile(r"^tmpl_[a-z0-9_-]{1,64}$")
FIELD_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")

Scalar: TypeAlias = str | int | float | bool | None
Distribution = Literal["uniform", "normal", "exponential"]
Precision = Literal["seconds", "milliseconds", "microseconds"]


def canonical_json(value: Any) -> str:
    """Compact JSON with key order preserved (field order is meaningful), non-ASCII kept."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


@dataclass(frozen=True, slots=True)
class SequenceGen:
    kind: ClassVar[str] = "sequence"
    start: int = 1
    step: int = 1
    prefix: str | None = None
    pad: int = 0

    @property
    def formatted(self) -> bool:
        return self.prefix is not None or self.pad > 0

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"start": self.start, "step": self.step}
        if self.prefix is not None:
            out["prefix"] = self.prefix
        if self.pad:
            out["pad"] = self.pad
        return out


@dataclass(frozen=True, slots=True)
class UuidGen:
    kind: ClassVar[str] = "uuid"

    def to_json(self) -> dict[str, Any]:
        return {}


@dataclass(frozen=True, slots=True)
class FakerGen:
    kind: ClassVar[str] = "faker"
    provider: str
    args_json: str = "[]"
    kwargs_json: str = "{}"
    locale: str | None = None  # None: the template's locale
    pool: int | None = None  # draw rows from this many values made once (`_pools`), not per row
    # The largest value (bytes) validation's trial calls produced: what the size estimate starts from.
    # Not part of the document (nor of equality): it is measured again whenever a document is validated.
    sample_bytes: int = dataclasses.field(default=0, compare=False)

    @property
    def args(self) -> list[Any]:
        return json.loads(self.args_json)  # type: ignore[no-any-return]

    @property
    def kwargs(self) -> dict[str, Any]:
        return json.loads(self.kwargs_json)  # type: ignore[no-any-return]

    def to_json(self) -> dict[str, Any]:
        return {"provider": self.provider, "args": self.args, "kwargs": self.kwargs}


@dataclass(frozen=True, slots=True)
class ChoiceGen:
    kind: ClassVar[str] = "choice"
    values: tuple[Scalar, ...]
    weights: tuple[float, ...] | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"values": list(self.values)}
        if self.weights is not None:
            out["weights"] = list(self.weights)
        return out


@dataclass(frozen=True, slots=True)
class IntGen:
    kind: ClassVar[str] = "int"
    min: int
    max: int
    distribution: Distribution = "uniform"
    mean: float | None = None
    stddev: float | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"min": self.min, "max": self.max, "distribution": self.distribution}
        if self.mean is not None:
            out["mean"] = self.mean
        if self.stddev is not None:
            out["stddev"] = self.stddev
        return out


@dataclass(frozen=True, slots=True)
class FloatGen:
    kind: ClassVar[str] = "float"
    min: float
    max: float
    distribution: Distribution = "uniform"
    mean: float | None = None
    stddev: float | None = None
    decimals: int | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"min": self.min, "max": self.max, "distribution": self.distribution}
        if self.mean is not None:
            out["mean"] = self.mean
        if self.stddev is not None:
            out["stddev"] = self.stddev
        if self.decimals is not None:
            out["decimals"] = self.decimals
        return out


@dataclass(frozen=True, slots=True)
class BoolGen:
    kind: ClassVar[str] = "bool"
    probability: float = 0.5

    def to_json(self) -> dict[str, Any]:
        return {"probability": self.probability}


@dataclass(frozen=True, slots=True)
class DateGen:
    kind: ClassVar[str] = "date"
    start: date
    end: date

    def to_json(self) -> dict[str, Any]:
        return {"start": self.start.isoformat(), "end": self.end.isoformat()}


@dataclass(frozen=True, slots=True)
class DateTimeGen:
    kind: ClassVar[str] = "datetime"
    start: datetime
    end: datetime
    precision: Precision = "seconds"

    def to_json(self) -> dict[str, Any]:
        return {"start": self.start.isoformat(), "end": self.end.isoformat(), "precision": self.precision}


@dataclass(frozen=True, slots=True)
class ConstGen:
    kind: ClassVar[str] = "const"
    value_json: str

    @property
    def value(self) -> Any:
        return json.loads(self.value_json)

    def to_json(self) -> Any:
        return self.value


@dataclass(frozen=True, slots=True)
class RefGen:
    kind: ClassVar[str] = "ref"
    template: str
    field: str

    @property
    def source(self) -> str:
        return f"{self.template}.{self.field}"

    def to_json(self) -> dict[str, Any]:
        return {"template": self.template, "field": self.field}


@dataclass(frozen=True, slots=True)
class ComputeGen:
    """`parts` alternates literal text and placeholders: (literal, field or None, filters)."""

    kind: ClassVar[str] = "compute"
    expression: str
    parts: tuple[tuple[str, str | None, tuple[str, ...]], ...]

    @property
    def depends_on(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(name for _, name, _ in self.parts if name is not None))

    def to_json(self) -> str:
        return self.expression


GeneratorSpec: TypeAlias = (
    SequenceGen
    | UuidGen
    | FakerGen
    | ChoiceGen
    | IntGen
    | FloatGen
    | BoolGen
    | DateGen
    | DateTimeGen
    | ConstGen
    | RefGen
    | ComputeGen
)


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One field: its generator plus the modifiers `unique` and `nullable` (probability of null)."""

    name: str
    generator: GeneratorSpec
    unique: bool = False
    nullable: float = 0.0
    description: str | None = None

    @property
    def kind(self) -> str:
        return self.generator.kind

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        gen = self.generator
        out[gen.kind] = gen.to_json()
        if isinstance(gen, FakerGen) and gen.locale is not None:
            out["locale"] = gen.locale
        if isinstance(gen, FakerGen) and gen.pool is not None:
            out["pool"] = gen.pool
        if self.unique:
            out["unique"] = True
        if self.nullable:
            out["nullable"] = self.nullable
        if self.description is not None:
            out["description"] = self.description
        return out


@dataclass(frozen=True, eq=False)
class TemplateSpec:
    """A validated template. Build it with `parse_template` or `validate_template`, never directly.

    Two specs are equal when their canonical documents are (`digest`); `fields` keeps document order,
    which is the column order of generated rows.
    """

    id: str
    version: int
    locale: str
    fields: Mapping[str, FieldSpec]
    description: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.fields, MappingProxyType):
            object.__setattr__(self, "fields", MappingProxyType(dict(self.fields)))

    def to_json(self) -> dict[str, Any]:
        """The canonical document: every default spelled out; `validate_template` of it is this spec."""
        out: dict[str, Any] = {"id": self.id, "version": self.version}
        if self.description is not None:
            out["description"] = self.description
        out["locale"] = self.locale
        out["fields"] = {name: spec.to_json() for name, spec in self.fields.items()}
        return out

    @cached_property
    def canonical(self) -> str:
        return canonical_json(self.to_json())

    @cached_property
    def digest(self) -> str:
        """`sha256:<hex>` of the canonical document."""
        return "sha256:" + hashlib.sha256(self.canonical.encode("utf-8")).hexdigest()

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled for Ray tasks: the fields as a plain dict (a mappingproxy does not pickle), without
        # the cached canonical text and digest (recomputed on demand).
        return (TemplateSpec, (self.id, self.version, self.locale, dict(self.fields), self.description))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TemplateSpec):
            return NotImplemented
        return self.canonical == other.canonical

    def __hash__(self) -> int:
        return hash(self.digest)
