"""Fast, replayable Faker instances: the one place that builds and calls Faker.

Speed. Stock Faker spends most of a `name()` or `email()` call rebuilding cumulative weights: every
pick from a weighted table (first names, last names…) copies the table's weights and lets
`random.choices` accumulate them again, O(n) per value. `new_faker` gives each *instance* (never the
class, never other users' instances) replacements that return exactly what stock Faker returns for
the same seed — the same random draws in the same order — only faster: `random_element(s)` with
cumulative weights computed once per table, `parse` with pattern tokens split once per pattern,
`numerify`/`lexify` that skip regex passes with nothing to replace, `_to_ascii` that skips the
table walk for ASCII text. Each replacement is installed only where the provider still uses the
stock method. A unit test pins "identical to stock Faker" for every accepted provider in several
locales; Faker is pinned exactly (`FAKER_VERSION`), as its output for a seed changes between
releases anyway. Pools of pre-generated values are opt-in per field (`pool: N`, `_pools`), not
the default: they cap the distinct values and cannot be `unique`. Rejected: Mimesis (another
dependency, and scenario authors know Faker's provider names).

Replay. A retried run must regenerate identical rows. Providers that read today's date by name are
refused at validation (`_providers`). When another provider reaches them through the generator at
run time (a year inside ru_RU e-mail addresses, a date among `pydict` values), our instances answer
with "now" pinned to PINNED_NOW where only an upper bound was missing, and raise `ClockDependent`
where a relative date ("-30y") was asked for.
"""

from __future__ import annotations

import inspect
import itertools
import string
from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from random import Random
from typing import Any
from uuid import UUID

import faker
import faker.config
import faker.generator
from faker.decode.codes import codes as _unidecode_codes
from faker.providers import date_time as _date_time
from faker.providers import internet as _internet

__all__ = [
    "AVAILABLE_LOCALES",
    "CLOCK_METHODS",
    "DEFAULT_LOCALE",
    "FAKER_VERSION",
    "PINNED_NOW",
    "ClockDependent",
    "NotJSON",
    "call_args",
    "new_faker",
    "to_json_value",
]

FAKER_VERSION: str = faker.VERSION
AVAILABLE_LOCALES: frozenset[str] = frozenset(faker.config.AVAILABLE_LOCALES)
DEFAULT_LOCALE = "en_US"

_CLOCK_SAFE = {"century", "timezone", "pytimezone"}
CLOCK_METHODS = {
    n
    for n in dir(_date_time.Provider)
    if not n.startswith("_") and callable(getattr(_date_time.Provider, n)) and n not in _CLOCK_SAFE
} - set(dir(faker.providers.BaseProvider))
_BETWEEN = {"date_time_between", "date_between", "date_time_between_dates", "date_between_dates"}
# Stock date_time methods that draw up to "now" (arguments that must then be absolute, or None).
PINNED_NOW = datetime(2025, 1, 1, tzinfo=UTC)  # part of the determinism contract, like BLOCK_ROWS
_UP_TO_NOW = {
    "date": ("end_datetime",), "time": ("end_datetime",), "date_time": ("end_datetime",),
    "date_object": ("end_datetime",), "time_object": ("end_datetime",), "iso8601": ("end_datetime",),
    "unix_time": ("end_datetime", "start_datetime"), "date_time_ad": ("end_datetime", "start_datetime"),
}  # fmt: skip
_STRFTIME_ONLY = {"year": "%Y", "month": "%m", "month_name": "%B", "day_of_week": "%A", "day_of_month": "%d",
                  "am_pm": "%p"}  # fmt: skip
_CACHE_LIMIT = 4096
_ASCII_IS_IDENTITY = all(_unidecode_codes[i] == chr(i) for i in range(128))


class ClockDependent(Exception):
    """A Faker provider asked for today's date (internal; surfaces as a validation problem)."""

    def __init__(self, via: str) -> None:
        self.via = via
        super().__init__(via)


class NotJSON(Exception):
    """A Faker value has no JSON form (internal)."""


def to_json_value(value: Any) -> Any:
    """A Faker result as JSON data: dates → ISO strings, Decimal → float, UUID → str, tuples → lists."""
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return value
    if kind is float:
        if value != value or value in (float("inf"), float("-inf")):
            raise NotJSON(f"{value!r} is not a JSON number")
        return value
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return to_json_value(float(value))
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, list | tuple):
        return [to_json_value(v) for v in value]
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise NotJSON("a mapping with non-string keys")
        return {k: to_json_value(v) for k, v in value.items()}
    for base in (bool, str, int, float):
        if isinstance(value, base):
            return to_json_value(base(value))
    raise NotJSON(f"a {kind.__name__}")


# -- instances ------------------------------------------------------------------------------------


def _fast_picks(provider: Any) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """Stock `random_elements` and `random_element`, minus the O(n) work per pick; the same draws."""
    original = provider.random_elements
    cache: dict[int, tuple[Any, tuple[Any, ...], list[float], float, int]] = {}

    def weighted(elements: Any) -> tuple[Any, tuple[Any, ...], list[float], float, int] | None:
        entry = cache.get(id(elements))
        if entry is None or entry[0] is not elements:
            if not isinstance(elements, OrderedDict) or not elements or len(cache) >= _CACHE_LIMIT:
                return None
            cum = list(itertools.accumulate(elements.values()))
            entry = (elements, tuple(elements), cum, cum[-1] + 0.0, len(cum) - 1)
            cache[id(elements)] = entry
        return entry

    def random_elements(
        elements: Any = ("a", "b", "c"), length: Any = None, unique: bool = False, use_weighting: Any = None
    ) -> Any:
        if length != 1 or unique:
            return original(elements, length, unique, use_weighting)
        return [pick(elements, use_weighting)]

    def random_element(elements: Any = ("a", "b", "c")) -> Any:
        kind = type(elements)
        if kind is tuple or kind is list or kind is str:
            return provider.generator.random.choice(elements)
        return pick(elements, None)

    def pick(elements: Any, use_weighting: Any) -> Any:
        kind = type(elements)
        if kind is tuple or kind is list or kind is str:
            return provider.generator.random.choice(elements)  # stock: choice(tuple(elements))
        entry = weighted(elements)
        if entry is None:
            return original(elements, 1, False, use_weighting)[0]
        rnd = provider.generator.random
        if not (use_weighting if use_weighting is not None else provider.__use_weighting__):
            return rnd.choice(entry[1])
        # random.choices(keys, cum_weights=cum), inlined: the same single random() and bisect
        return entry[1][bisect_right(entry[2], rnd.random() * entry[3], 0, entry[4])]

    return random_elements, random_element


def _fast_patterns(provider: Any) -> tuple[Callable[..., str], Callable[..., str]]:
    """Stock `numerify` and `lexify` that skip the regex passes with nothing to replace (no draws
    happen in those passes, so the output is the same)."""
    numerify, lexify = provider.numerify, provider.lexify

    def fast_numerify(text: str = "###") -> str:
        if "#" in text or "%" in text or "$" in text or "!" in text or "@" in text:
            return numerify(text)  # type: ignore[no-any-return]
        return text

    def fast_lexify(text: str = "????", letters: str = string.ascii_letters) -> str:
        return lexify(text, letters) if "?" in text else text

    return fast_numerify, fast_lexify


def _fast_to_ascii(provider: Any) -> Callable[[str], str]:
    """The internet provider's `_to_ascii` without the per-character table walk for ASCII text (the
    table maps ASCII to itself, checked at import)."""
    to_ascii = provider._to_ascii

    def fast_to_ascii(text: str) -> str:
        for search, replace in provider.replacements:
            text = text.replace(search, replace)
        return text if text.isascii() else to_ascii(text)

    return fast_to_ascii


def _fast_parse(gen: Any, original: Callable[[str], str]) -> Callable[[str], str]:
    token = faker.generator._re_token
    cache: dict[str, tuple[tuple[tuple[str, str], ...], str]] = {}

    def parse(text: str) -> str:
        compiled = cache.get(text)
        if compiled is None:
            if not isinstance(text, str) or len(cache) >= _CACHE_LIMIT:
                return original(text)
            pieces: list[tuple[str, str]] = []
            pos = 0
            for match in token.finditer(text):
                if match.group(2):  # an argument group: rare, leave it to Faker
                    return original(text)
                pieces.append((text[pos : match.start()], match.group(1)))
                pos = match.end()
            compiled = (tuple(pieces), text[pos:])
            cache[text] = compiled
        out = []
        for literal, name in compiled[0]:
            out.append(literal)
            out.append(str(getattr(gen, name)()))
        out.append(compiled[1])
        return "".join(out)

    return parse


def _clock_guard(gen: Any, name: str, original: Callable[..., Any]) -> Callable[..., Any]:
    """What another provider gets when it asks `gen` for a date: the stock value with "now" pinned
    to PINNED_NOW when it only needs an upper bound, the stock value when both ends are absolute
    dates, else `ClockDependent`."""
    if name in _STRFTIME_ONLY:  # year(), month()…: stock is self.date(pattern)
        pattern, date_of = _STRFTIME_ONLY[name], gen.date
        return lambda: date_of(pattern, end_datetime=PINNED_NOW)
    try:
        signature: inspect.Signature | None = inspect.signature(original)
    except (TypeError, ValueError):
        signature = None

    def guard(*args: Any, **kwargs: Any) -> Any:
        if signature is None:
            raise ClockDependent(name)
        bound = signature.bind_partial(*args, **kwargs)
        given = bound.arguments
        if name in _BETWEEN:
            ends = [v for k, v in given.items() if k != "tzinfo"]
            if len(ends) == 2 and all(isinstance(v, date) for v in ends):
                return original(*args, **kwargs)
        elif name in _UP_TO_NOW and all(isinstance(given.get(k), date | None) for k in _UP_TO_NOW[name]):
            if given.get("end_datetime") is None:
                given["end_datetime"] = PINNED_NOW
            return original(*bound.args, **bound.kwargs)
        raise ClockDependent(name)

    return guard


def new_faker(locale: str) -> Any:
    """A private Faker generator for `locale`: accelerated, clock-guarded, with its own `Random`.

    Callers assign `gen.random` (Faker's public setter) to the stream that should drive the next call.
    """
    gen = faker.Factory.create(locale)
    gen.random = Random(0)  # never the module-global random
    base = faker.providers.BaseProvider
    for provider in gen.providers:
        kind = type(provider)
        if kind.random_elements is base.random_elements and kind.random_element is base.random_element:
            random_elements, random_element = _fast_picks(provider)
            setattr(provider, "random_elements", random_elements)  # noqa: B010
            setattr(provider, "random_element", random_element)  # noqa: B010
        if kind.numerify is base.numerify and kind.lexify is base.lexify:
            numerify, lexify = _fast_patterns(provider)
            setattr(provider, "numerify", numerify)  # noqa: B010
            setattr(provider, "lexify", lexify)  # noqa: B010
        if _ASCII_IS_IDENTITY and getattr(kind, "_to_ascii", None) is _internet.Provider._to_ascii:
            setattr(provider, "_to_ascii", _fast_to_ascii(provider))  # noqa: B010
    if type(gen).parse is faker.generator.Generator.parse:
        setattr(gen, "parse", _fast_parse(gen, gen.parse))  # noqa: B010
    for name in CLOCK_METHODS | {"date_of_birth"}:
        original = getattr(gen, name, None)
        if original is not None:
            setattr(gen, name, _clock_guard(gen, name, original))
    return gen


def call_args(args: Sequence[Any], kwargs: dict[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """JSON arguments as Faker expects them: lists → tuples, objects → OrderedDicts (weighted picks)."""

    def thaw(value: Any) -> Any:
        if isinstance(value, list):
            return tuple(thaw(v) for v in value)
        if isinstance(value, dict):
            return OrderedDict((k, thaw(v)) for k, v in value.items())
        return value

    return tuple(thaw(a) for a in args), {k: thaw(v) for k, v in kwargs.items()}
