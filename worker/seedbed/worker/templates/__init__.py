"""Declarative data templates: a YAML or JSON document mapping fields to generators → rows.

    spec = parse_template(text)                              # or validate_template(json_doc)
    gen = Generator(spec, seed=derive_seed(run_key, call), refs=run_refs)
    rows = gen.rows(1000, overrides={"customer_id": Pick(ids)})
    for batch in gen.stream(1_000_000, batch_size=10_000): ...

The document format is specified in `FORMAT.md` next to this file. Pure domain logic: no I/O and
no docker, ray, grpc or SQLAlchemy; Faker and PyYAML are the only dependencies (Faker pinned
exactly: a seed gives the same rows only with the same Faker release, recorded as `FAKER_VERSION`).

Exceptions:

    TemplateError                  base of everything this package raises
    ├── TemplateValidationError    a template document is invalid (`problems`: every one, with its path)
    └── GenerationError            a generate call cannot be served (`template_id`, `field`)
        ├── CountLimitError        count outside 1..limit (`count`, `limit`)
        ├── OverrideError          an override is not a JSON value or a `Pick`, or a `Pick` is malformed
        ├── MissingRefError        a `ref` field's source has no rows in this run yet (`source`)
        ├── UniqueExhaustedError   a `unique` field ran out of distinct values (`obtained`, `requested`)
        └── SizeLimitError         a computed field's text would pass the per-field cap (`size`, `limit`)

How it stays small: `check_sizes(spec, SizeLimits(...))` estimates every field's largest value and
refuses a template whose field or row is over the caps (a few KB of nested `compute` fields can
describe gigabytes per row); the generator caps computed text while rendering (`_sizes`).

How it stays fast (one core: an 8-field customer template at ~35k rows/s, ~13× a plain Faker script
for the same fields; see `tests/bench/bench_generate.py`): numbers, dates, choices, sequences and
UUIDs come from a plain `random.Random`, never Faker; each field is compiled once per call into a
closure; Faker instances are accelerated without changing their output (`_faker`); picks over large
sets are a bisect over cumulative weights computed once.

How it stays deterministic: every value comes from a per-field stream seeded by BLAKE2b from the
call's seed, the template id, the field name and the block of 1,024 rows (`_seeds`), so rows are
the same in every process, `stream()` equals `rows()`, `start=` reproduces the tail of a longer
call, and editing one field never changes another. Faker providers that read the clock or the
process-global random are refused (`_providers`); dates Faker draws internally stop at a pinned "now".

Rejected: `str.format` for computed fields (attribute and index access, format-spec memory bombs);
`eval`/Jinja (a language where a dozen filters suffice); Faker's `unique` proxy (unbounded memory
across calls, and its retries are not ours to bound); `Faker.seed()` (process-global).
"""

from seedbed.worker.templates._errors import (
    CountLimitError,
    GenerationError,
    MissingRefError,
    OverrideError,
    Problem,
    SizeLimitError,
    TemplateError,
    TemplateValidationError,
    UniqueExhaustedError,
)
from seedbed.worker.templates._faker import FAKER_VERSION
from seedbed.worker.templates._generator import MAX_ROWS_PER_CALL, Generator, Row
from seedbed.worker.templates._picks import Pick
from seedbed.worker.templates._refs import RefResolver, RunRefs
from seedbed.worker.templates._seeds import BLOCK_ROWS, derive_seed
from seedbed.worker.templates._sizes import SizeLimits, check_sizes, estimate_sizes
from seedbed.worker.templates._spec import FieldSpec, GeneratorSpec, TemplateSpec
from seedbed.worker.templates._validate import parse_template, parse_templates, validate_template

__all__ = [
    "BLOCK_ROWS",
    "FAKER_VERSION",
    "MAX_ROWS_PER_CALL",
    "CountLimitError",
    "FieldSpec",
    "GenerationError",
    "Generator",
    "GeneratorSpec",
    "MissingRefError",
    "OverrideError",
    "Pick",
    "Problem",
    "RefResolver",
    "Row",
    "RunRefs",
    "SizeLimitError",
    "SizeLimits",
    "TemplateError",
    "TemplateSpec",
    "TemplateValidationError",
    "UniqueExhaustedError",
    "check_sizes",
    "derive_seed",
    "estimate_sizes",
    "parse_template",
    "parse_templates",
    "validate_template",
]
