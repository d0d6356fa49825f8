"""Each generator kind's options: checked, defaulted and turned into its spec dataclass.

`build(kind, raw, path, locale, problems)` returns the spec, or None after adding problems. A None
`locale` means the locale is itself invalid (already reported), so Faker checks are skipped.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from datetime import date, datetime
from typing import Any, cast

from seedbed.worker.templates._compute import parse_compute
from seedbed.worker.templates._errors import Problems, closest, did_you_mean
from seedbed.worker.templates._picks import cumulative
from seedbed.worker.templates._providers import provider_problem, trial_call
from seedbed.worker.templates._spec import (
    FIELD_NAME,
    TEMPLATE_ID,
    BoolGen,
    ChoiceGen,
    ComputeGen,
    ConstGen,
    DateGen,
    DateTimeGen,
    Distribution,
    FakerGen,
    FloatGen,
    GeneratorSpec,
    IntGen,
    RefGen,
    SequenceGen,
    UuidGen,
    canonical_json,
)

KINDS = (
    "sequence",
    "uuid",
    "faker",
    "choice",
    "int",
    "float",
    "bool",
    "date",
    "datetime",
    "const",
    "ref",
    "compute",
)
DISTRIBUTIONS = ("uniform", "normal", "exponential")
PRECISIONS = ("seconds", "milliseconds", "microseconds")
MAX_CHOICES = 10_000
MAX_COMPUTE = 2_000
MAX_PREFIX = 100
MAX_PAD = 32
MAX_DECIMALS = 15
_INT_LIMIT = 2**63  # values stay within signed 64-bit columns


def build(kind: str, raw: Any, path: str, locale: str | None, p: Problems) -> GeneratorSpec | None:
    return _BUILDERS[kind](raw, path, locale, p)


def _options(
    raw: Any, path: str, p: Problems, allowed: tuple[str, ...], required: tuple[str, ...] = ()
) -> dict[str, Any] | None:
    if raw is None and not required:
        return {}
    if not isinstance(raw, Mapping):
        p.add(path, f"must be a mapping of options ({', '.join(allowed)}), not {type(raw).__name__}")
        return None
    ok = True
    suggested = set()
    for key in raw:
        if key not in allowed:
            suggested.add(closest(key, allowed))
            p.add(
                f"{path}.{key}", f"unknown option{did_you_mean(key, allowed)}; options: {', '.join(allowed)}"
            )
            ok = False
    for key in required:
        if key not in raw and key not in suggested:  # a misspelling was reported with a suggestion
            p.add(f"{path}.{key}", "missing")
            ok = False
    return dict(raw) if ok else None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _int(opts: dict[str, Any], key: str, path: str, p: Problems, default: int | None = None) -> int | None:
    value = opts.get(key, default)
    if value is None:
        return None
    if not _is_int(value) or not -_INT_LIMIT <= value < _INT_LIMIT:
        p.add(f"{path}.{key}", f"must be an integer (within signed 64 bits), not {value!r}")
        return None
    return int(value)


def _number(opts: dict[str, Any], key: str, path: str, p: Problems) -> float | None:
    value = opts.get(key)
    if value is None:
        return None
    if not _is_number(value) or not math.isfinite(value) or abs(value) > 1e300:
        p.add(f"{path}.{key}", f"must be a number, not {value!r}")
        return None
    return float(value)


def _sequence(raw: Any, path: str, locale: str | None, p: Problems) -> SequenceGen | None:
    opts = _options(raw, path, p, ("start", "step", "prefix", "pad"))
    if opts is None:
        return None
    before = len(p.items)
    start = _int(opts, "start", path, p, 1)
    step = _int(opts, "step", path, p, 1)
    pad = _int(opts, "pad", path, p, 0)
    prefix = opts.get("prefix")
    if step == 0:
        p.add(f"{path}.step", "must not be 0")
    if pad is not None and not 0 <= pad <= MAX_PAD:
        p.add(f"{path}.pad", f"must be from 0 to {MAX_PAD}, got {pad}")
    if prefix is not None and (not isinstance(prefix, str) or len(prefix) > MAX_PREFIX):
        p.add(f"{path}.prefix", f"must be a string of at most {MAX_PREFIX} characters")
    if len(p.items) > before:
        return None
    return SequenceGen(start=start or 0, step=step or 1, prefix=prefix, pad=pad or 0)


def _uuid(raw: Any, path: str, locale: str | None, p: Problems) -> UuidGen | None:
    opts = _options(raw, path, p, ("version",))
    if opts is None:
        return None
    if opts.get("version", 4) != 4:
        p.add(f"{path}.version", "only version 4 (random) UUIDs are generated")
        return None
    return UuidGen()


def _faker(raw: Any, path: str, locale: str | None, p: Problems) -> FakerGen | None:
    if isinstance(raw, str):
        opts: dict[str, Any] | None = {"provider": raw}
        provider_path = path
    else:
        opts = _options(raw, path, p, ("provider", "args", "kwargs"), required=("provider",))
        provider_path = f"{path}.provider"
    if opts is None:
        return None
    provider, args, kwargs = opts["provider"], opts.get("args", []), opts.get("kwargs", {})
    before = len(p.items)
    if not isinstance(provider, str) or not provider:
        p.add(provider_path, f"must be the name of a Faker provider such as 'name', not {provider!r}")
    if not isinstance(args, list):
        p.add(f"{path}.args", f"must be a list of JSON values, not {type(args).__name__}")
    if not isinstance(kwargs, Mapping) or not all(k.isidentifier() for k in kwargs):
        p.add(f"{path}.kwargs", "must be a mapping of argument names to JSON values")
    if len(p.items) > before or locale is None:
        return None
    if problem := provider_problem(locale, provider):
        p.add(provider_path, problem)
        return None
    problems, sample_bytes = trial_call(locale, provider, args, dict(kwargs))
    for sub, message in problems:
        p.add(f"{path}.{sub}" if sub else path, message)
    if len(p.items) > before:
        return None
    return FakerGen(
        provider=provider,
        args_json=canonical_json(args),
        kwargs_json=canonical_json(dict(kwargs)),
        sample_bytes=sample_bytes,
    )


def _choice(raw: Any, path: str, locale: str | None, p: Problems) -> ChoiceGen | None:
    opts = (
        {"values": raw}
        if isinstance(raw, list)
        else _options(raw, path, p, ("values", "weights"), ("values",))
    )
    if opts is None:
        return None
    values, weights = opts["values"], opts.get("weights")
    vpath = f"{path}.values" if not isinstance(raw, list) else path
    if not isinstance(values, list) or not values:
        p.add(vpath, "must be a non-empty list of values")
        return None
    if len(values) > MAX_CHOICES:
        p.add(
            vpath,
            f"has {len(values):,} values; the limit is {MAX_CHOICES:,} (pass larger sets as a Pick override)",
        )
        return None
    before = len(p.items)
    seen: dict[Any, int] = {}
    for i, value in enumerate(values):
        if isinstance(value, list | dict):
            p.add(f"{vpath}[{i}]", "choice values must be strings, numbers, booleans or null")
            continue
        key = (type(value).__name__, value)
        if key in seen:
            p.add(
                f"{vpath}[{i}]",
                f"duplicate of values[{seen[key]}] ({value!r}): list it once and give it a weight",
            )
        seen.setdefault(key, i)
    cum = None
    if weights is not None:
        if not isinstance(weights, list):
            p.add(f"{path}.weights", "must be a list of numbers")
        elif len(weights) != len(values):
            p.add(
                f"{path}.weights",
                f"has {len(weights)} weights for {len(values)} values: give one weight per value",
            )
        else:
            cum = cumulative(weights)
            if isinstance(cum, str):
                p.add(f"{path}.weights", cum)
    if len(p.items) > before:
        return None
    return ChoiceGen(
        values=tuple(values), weights=tuple(float(w) for w in weights) if weights is not None else None
    )


def _distribution(
    opts: dict[str, Any], path: str, p: Problems, lo: float, hi: float
) -> tuple[Distribution, float | None, float | None]:
    dist = opts.get("distribution", "uniform")
    mean = _number(opts, "mean", path, p)
    stddev = _number(opts, "stddev", path, p)
    if dist not in DISTRIBUTIONS:
        p.add(f"{path}.distribution", f"unknown distribution {dist!r}; one of {', '.join(DISTRIBUTIONS)}")
        return "uniform", None, None
    dist = cast(Distribution, dist)
    if dist == "uniform":
        for key in ("mean", "stddev"):
            if key in opts:
                p.add(f"{path}.{key}", "applies only to the normal and exponential distributions")
    elif dist == "normal":
        if mean is not None and not lo <= mean <= hi:
            p.add(f"{path}.mean", f"{mean:g} lies outside [min, max] = [{lo:g}, {hi:g}]")
        if stddev is not None and stddev <= 0:
            p.add(f"{path}.stddev", f"must be greater than 0, got {stddev:g}")
    else:
        if "stddev" in opts:
            p.add(f"{path}.stddev", "applies only to the normal distribution (exponential takes a mean)")
        if mean is not None and not lo < mean <= hi:
            p.add(
                f"{path}.mean",
                f"must be greater than min and at most max ({lo:g} < mean <= {hi:g}), got {mean:g}",
            )
    return dist, mean, stddev


def _range(opts: dict[str, Any], path: str, p: Problems, read: Callable[..., Any]) -> tuple[Any, Any] | None:
    lo, hi = read(opts, "min", path, p), read(opts, "max", path, p)
    if lo is None or hi is None:
        return None
    if lo > hi:
        p.add(path, f"min ({lo:g}) is greater than max ({hi:g})")
        return None
    return lo, hi


def _int_gen(raw: Any, path: str, locale: str | None, p: Problems) -> IntGen | None:
    opts = _options(raw, path, p, ("min", "max", "distribution", "mean", "stddev"), ("min", "max"))
    if opts is None or (bounds := _range(opts, path, p, _int)) is None:
        return None
    before = len(p.items)
    dist, mean, stddev = _distribution(opts, path, p, *bounds)
    if len(p.items) > before:
        return None
    return IntGen(min=bounds[0], max=bounds[1], distribution=dist, mean=mean, stddev=stddev)


def _float_gen(raw: Any, path: str, locale: str | None, p: Problems) -> FloatGen | None:
    opts = _options(
        raw, path, p, ("min", "max", "distribution", "mean", "stddev", "decimals"), ("min", "max")
    )
    if opts is None or (bounds := _range(opts, path, p, _number)) is None:
        return None
    before = len(p.items)
    dist, mean, stddev = _distribution(opts, path, p, *bounds)
    decimals = _int(opts, "decimals", path, p)
    if decimals is not None and not 0 <= decimals <= MAX_DECIMALS:
        p.add(f"{path}.decimals", f"must be from 0 to {MAX_DECIMALS}, got {decimals}")
    if len(p.items) > before:
        return None
    return FloatGen(
        min=bounds[0], max=bounds[1], distribution=dist, mean=mean, stddev=stddev, decimals=decimals
    )


def _bool_gen(raw: Any, path: str, locale: str | None, p: Problems) -> BoolGen | None:
    opts = _options(raw, path, p, ("probability",))
    if opts is None:
        return None
    prob = opts.get("probability", 0.5)
    if not _is_number(prob) or not 0 <= prob <= 1:
        p.add(f"{path}.probability", f"must be the probability of true, from 0 to 1, got {prob!r}")
        return None
    return BoolGen(probability=float(prob))


def _iso(
    opts: dict[str, Any], key: str, path: str, p: Problems, parse: Callable[[str], Any], what: str
) -> Any:
    value = opts.get(key)
    try:
        if not isinstance(value, str):
            raise ValueError
        return parse(value)
    except ValueError:
        p.add(
            f"{path}.{key}",
            f"must be an ISO 8601 {what} string such as "
            f"{'2024-12-31' if what == 'date' else '2024-12-31T23:59:59'}, not {value!r}",
        )
        return None


def _date_gen(raw: Any, path: str, locale: str | None, p: Problems) -> DateGen | None:
    opts = _options(raw, path, p, ("start", "end"), ("start", "end"))
    if opts is None:
        return None
    start = _iso(opts, "start", path, p, date.fromisoformat, "date")
    end = _iso(opts, "end", path, p, date.fromisoformat, "date")
    if start is None or end is None:
        return None
    if start > end:
        p.add(path, f"start ({start}) is after end ({end})")
        return None
    return DateGen(start=start, end=end)


def _datetime_gen(raw: Any, path: str, locale: str | None, p: Problems) -> DateTimeGen | None:
    opts = _options(raw, path, p, ("start", "end", "precision"), ("start", "end"))
    if opts is None:
        return None
    start = _iso(opts, "start", path, p, datetime.fromisoformat, "date-time")
    end = _iso(opts, "end", path, p, datetime.fromisoformat, "date-time")
    precision = opts.get("precision", "seconds")
    if precision not in PRECISIONS:
        p.add(f"{path}.precision", f"must be one of {', '.join(PRECISIONS)}, not {precision!r}")
        return None
    if start is None or end is None:
        return None
    if (start.tzinfo is None) != (end.tzinfo is None):
        p.add(path, "start and end must both have a UTC offset or both have none")
        return None
    if start > end:
        p.add(path, f"start ({start.isoformat()}) is after end ({end.isoformat()})")
        return None
    return DateTimeGen(start=start, end=end, precision=precision)


def _const(raw: Any, path: str, locale: str | None, p: Problems) -> ConstGen:
    return ConstGen(value_json=canonical_json(raw))


def _ref(raw: Any, path: str, locale: str | None, p: Problems) -> RefGen | None:
    opts = _options(raw, path, p, ("template", "field"), ("template", "field"))
    if opts is None:
        return None
    template, field = opts["template"], opts["field"]
    ok = True
    if not isinstance(template, str) or not TEMPLATE_ID.match(template):
        p.add(f"{path}.template", f"{template!r} is not a template id such as 'tmpl_customer'")
        ok = False
    if not isinstance(field, str) or not FIELD_NAME.match(field):
        p.add(f"{path}.field", f"{field!r} is not a field name")
        ok = False
    return RefGen(template=template, field=field) if ok else None


def _compute(raw: Any, path: str, locale: str | None, p: Problems) -> ComputeGen | None:
    if not isinstance(raw, str):
        p.add(path, f"must be a string such as '{{first}} {{last}}', not {type(raw).__name__}")
        return None
    if len(raw) > MAX_COMPUTE:
        p.add(path, f"is {len(raw):,} characters; the limit is {MAX_COMPUTE:,}")
        return None
    parts, problems = parse_compute(raw)
    for message in problems:
        p.add(path, message)
    return None if problems else ComputeGen(expression=raw, parts=tuple(parts))


_BUILDERS: dict[str, Callable[[Any, str, str | None, Problems], GeneratorSpec | None]] = {
    "sequence": _sequence,
    "uuid": _uuid,
    "faker": _faker,
    "choice": _choice,
    "int": _int_gen,
    "float": _float_gen,
    "bool": _bool_gen,
    "date": _date_gen,
    "datetime": _datetime_gen,
    "const": _const,
    "ref": _ref,
    "compute": _compute,
}
