"""Declarative data templates: a YAML or JSON document mapping fields to generators → rows.

    spec = parse_template(text)                              # or validate_template(json_doc)
    gen = Generator(spec, seed=derive_seed(run_key, call), refs=run_refs)
    rows = gen.rows(1000, overrides={"customer_id": Pick(ids)})
    columns = gen.columns(1_000_000)                         # the same values, column by column
    for batch in gen.stream(1_000_000, batch_size=10_000): ...
    run_refs.record_source(spec.id, "id", gen.derived("id", 0, 1_000_000))   # refs without the rows

The document format is specified in `FORMAT.md` next to this file. Pure domain logic: no I/O and
no docker, ray, grpc or SQLAlchemy; Faker, PyYAML and numpy are the only dependencies (Faker pinned
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
describe gigabytes per row) or whose Faker pools would be too large; the generator caps computed
text while rendering (`_sizes`).

How it stays fast (one core, `tests/bench/bench_generate.py`: the bulk customer template — a
UUID, four Faker fields with `pool: 10000`, a weighted choice, a date-time — at ~1.5M rows/s
through `columns()` and ~630k rows/s through `rows()`, ~360× a plain Faker script; an 8-field
customer template with Faker fields without pools, a unique e-mail and a normal age at ~84k rows/s,
~16× the script; version 1's row engine did that one at ~35k): one block-columnar engine
(`_generator`). Numbers, dates, choices, sequences, UUIDs, refs, picks, pooled Faker fields and
null masks are kernels over numpy arrays of row indices (`_columns`, `_pools`); Faker without a
pool, normal and exponential numbers and `unique` draws go row by row through closures compiled
once per call (`_draws`), on Faker instances accelerated without changing their output (`_faker`).

How it stays deterministic (`GENERATION_VERSION` 2): kernels hash the row index with a per-field
seed (SplitMix64, `_hashing`) and row-by-row fields draw from a per-field `random.Random` restarted
every 1,024 rows, all seeded by BLAKE2b from the call's seed, the template id and the field name
(`_seeds`). So rows are the same in every process, `rows()` is `columns()` transposed and
`stream()` equals `rows()`, `start=` reproduces the tail of a longer call, a `derived` column is
the rows' values without the rows, and editing one field never changes another. The inputs of a
call (spec, seed, overrides, sources) pickle, for Ray tasks. Faker providers that read the clock
or the process-global random are refused (`_providers`); dates Faker draws internally stop at a
pinned "now". Version 2 changed the values of the kernel kinds (see FORMAT.md).

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
from seedbed.worker.templates._pins import (
    MAX_TEMPLATE_VERSION,
    TemplatePin,
    TemplatePinError,
    parse_template_pin,
)
from seedbed.worker.templates._refs import RefResolver, RunRefs
from seedbed.worker.templates._seeds import BLOCK_ROWS, GENERATION_VERSION, derive_seed
from seedbed.worker.templates._sizes import SizeLimits, check_sizes, estimate_pool_bytes, estimate_sizes
from seedbed.worker.templates._sources import ConcatSource, MaterialisedColumn, RefSource
from seedbed.worker.templates._spec import FieldSpec, GeneratorSpec, TemplateSpec
from seedbed.worker.templates._validate import parse_template, parse_templates, validate_template

__all__ = [
    "BLOCK_ROWS",
    "FAKER_VERSION",
    "GENERATION_VERSION",
    "MAX_ROWS_PER_CALL",
    "MAX_TEMPLATE_VERSION",
    "ConcatSource",
    "CountLimitError",
    "FieldSpec",
    "GenerationError",
    "Generator",
    "GeneratorSpec",
    "MaterialisedColumn",
    "MissingRefError",
    "OverrideError",
    "Pick",
    "Problem",
    "RefResolver",
    "RefSource",
    "Row",
    "RunRefs",
    "SizeLimitError",
    "SizeLimits",
    "TemplateError",
    "TemplatePin",
    "TemplatePinError",
    "TemplateSpec",
    "TemplateValidationError",
    "UniqueExhaustedError",
    "check_sizes",
    "derive_seed",
    "estimate_pool_bytes",
    "estimate_sizes",
    "parse_template",
    "parse_template_pin",
    "parse_templates",
    "validate_template",
]
