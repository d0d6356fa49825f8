"""Which Faker providers a template may name, checked against a real Faker instance.

A provider must be a public provider method of the locale's generator, not one of Faker's meta
methods (`seed`, `seed_instance`, `add_provider`, `format`, `parse`…), not one whose value has no
JSON form, not one that reads today's date, and not one that draws from the process-global
`random` (a few locale-specific ones do: their values cannot be reproduced from a seed). The last
two are found partly by name and partly by trial: validation binds the arguments to the method's
signature, caps size-like arguments, and makes a few seeded calls on a private instance, comparing
the global generator's state before and after. The trial calls also tell how large the values get
(`trial_call`), which the size estimate (`_sizes`) builds on.
"""

from __future__ import annotations

import inspect
import random as random_module
import re
import threading
from collections.abc import Callable
from random import Random
from time import perf_counter as time_now
from typing import Any

import faker.generator

from seedbed.worker.templates._compute import text_bytes
from seedbed.worker.templates._errors import did_you_mean
from seedbed.worker.templates._faker import (
    AVAILABLE_LOCALES,
    CLOCK_METHODS,
    ClockDependent,
    NotJSON,
    call_args,
    new_faker,
    to_json_value,
)

__all__ = ["check_call", "locale_problem", "provider_problem", "trial_call"]

_META = {n for n in dir(faker.generator.Generator) if not n.startswith("_")} | {
    "seed",
    "seed_instance",
    "seed_locale",
    "add_provider",
    "get_providers",
    "provider",
    "format",
    "parse",
    "set_formatter",
    "get_formatter",
    "set_arguments",
    "get_arguments",
    "del_arguments",
    "random",
    "unique",
    "optional",
    "items",
    "weights",
    "factories",
    "locales",
}
_UNSUPPORTED = {
    "binary": "returns bytes",
    "zip": "returns bytes",
    "tar": "returns bytes",
    "image": "returns bytes",
    "json_bytes": "returns bytes",
    "pyobject": "returns a Python type",
    "enum": "needs a Python enum class",
    "pyset": "returns a set (unordered)",
    "pyiterable": "may return a set (unordered)",
    "time_series": "returns a Python generator",
    "pytimezone": "returns a tzinfo object",
    "xml": "needs the optional xmltodict package",
}
_CLOCK_OTHERS = {
    "date_of_birth",
    "profile",
    "simple_profile",
    "credit_card_expire",
    "credit_card_full",
    "passport_dates",
    "passport_dob",
    "passport_full",
    "pesel",
    "businesses_ogrn",
    "individuals_ogrn",
}
_CLOCK_SSN_LOCALES = {"et_EE", "fi_FI", "lv_LV", "no_NO", "sv_SE", "zh_CN", "de_DE", "pl_PL"}
_SIZE_PARAM = re.compile(
    r"^(nb|nb_\w+|\w*_nb|max_nb_chars|\w*length|\w*chars|\w*digits|num_rows|\w*elements"
    r"|levels|deep|size|count|\w*words|\w*sentences|paragraphs)$"
)
MAX_SIZE_ARG = 10_000
TRIAL_CALLS = 32
TRIAL_BUDGET_SECONDS = 0.05
MAX_STRING_ARG = 1_000


class UsesGlobalRandom(Exception):
    """A Faker provider draws from Python's process-global random, not its generator's (internal)."""


def locale_problem(locale: object) -> str | None:
    if not isinstance(locale, str):
        return f"locale must be a string such as 'en_US', not {type(locale).__name__}"
    if locale in AVAILABLE_LOCALES:
        return None
    hint = did_you_mean(locale.replace("-", "_"), AVAILABLE_LOCALES)
    return f"unknown Faker locale {locale!r}{hint}"


# -- validation ------------------------------------------------------------------------------------

_validation_lock = threading.Lock()
_validation_instances: dict[str, Any] = {}
_allowed_cache: dict[str, frozenset[str]] = {}


def _validation_faker(locale: str) -> Any:
    gen = _validation_instances.get(locale)
    if gen is None:
        gen = _validation_instances[locale] = new_faker(locale)
    return gen


def _allowed(locale: str) -> frozenset[str]:
    names = _allowed_cache.get(locale)
    if names is None:
        gen = _validation_faker(locale)
        names = frozenset(
            n
            for n in dir(gen)
            if not n.startswith("_") and n not in _META and callable(getattr(gen, n, None))
        )
        _allowed_cache[locale] = names
    return names


def provider_problem(locale: str, name: str) -> str | None:
    """Why `name` cannot be used as a Faker provider for `locale` (None: it can)."""
    if name.startswith("_") or name in _META:
        return f"{name!r} is not a Faker provider (only public provider methods are allowed)"
    if name in _UNSUPPORTED:
        return f"Faker provider {name!r} is not supported: it {_UNSUPPORTED[name]}"
    if name in CLOCK_METHODS or name in _CLOCK_OTHERS or (name == "ssn" and locale in _CLOCK_SSN_LOCALES):
        return (
            f"Faker provider {name!r} depends on today's date, so a retried run would generate different "
            "rows: use the `date` or `datetime` generator instead"
        )
    with _validation_lock:
        allowed = _allowed(locale)
    if name not in allowed:
        usable = allowed - _UNSUPPORTED.keys() - CLOCK_METHODS - _CLOCK_OTHERS
        return f"unknown Faker provider {name!r} for locale {locale}{did_you_mean(name, usable)}"
    return None


def _json_problems(value: Any, path: str) -> list[tuple[str, str]]:
    if isinstance(value, str):
        if len(value) > MAX_STRING_ARG:
            return [(path, f"string arguments are limited to {MAX_STRING_ARG:,} characters")]
        return []
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _json_problems(v, f"{path}[{i}]")]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _json_problems(v, f"{path}.{k}")]
    return []


def _trial_calls(gen: Any, method: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> int:
    """A few seeded calls: the first finds bad argument values; the rest catch what only some draws do
    (a format that includes a year, a random value type without a JSON form), within a time budget.
    Returns the size of the largest value seen (`text_bytes`)."""
    largest = 0
    for _ in range(2):
        global_state = random_module.getstate()
        deadline = time_now() + TRIAL_BUDGET_SECONDS
        for seed in range(TRIAL_CALLS):
            gen.random = Random(seed)
            largest = max(largest, text_bytes(to_json_value(method(*args, **kwargs))))
            if time_now() > deadline:
                break
        if random_module.getstate() == global_state:
            return largest
        # Changed: this provider (or another thread, by bad luck) used the process-global random. Twice
        # in a row is the provider.
    raise UsesGlobalRandom


def check_call(locale: str, name: str, args: list[Any], kwargs: dict[str, Any]) -> list[tuple[str, str]]:
    """Problems (sub-path, message) with calling provider `name` with these arguments."""
    return trial_call(locale, name, args, kwargs)[0]


def trial_call(
    locale: str, name: str, args: list[Any], kwargs: dict[str, Any]
) -> tuple[list[tuple[str, str]], int]:
    """Problems (sub-path, message) with calling provider `name` with these arguments, and the size
    in bytes of the largest value the trial calls produced.

    Binds the arguments to the provider's signature, caps size-like arguments, then makes a few trial
    calls on a private instance and checks that the values have a JSON form and no clock dependency.
    """
    problems = _json_problems(args, "args") + _json_problems(kwargs, "kwargs")
    if problems:
        return problems, 0
    with _validation_lock:
        gen = _validation_faker(locale)
        method = getattr(gen, name)
        try:
            signature = inspect.signature(method).replace(return_annotation=inspect.Signature.empty)
            bound = signature.bind(*args, **kwargs)
        except TypeError as exc:
            return [("", f"bad arguments for {name}{signature}: {exc}")], 0
        except ValueError:  # no signature (builtin): let the trial call judge
            bound = None
        if bound is not None:
            for param, value in bound.arguments.items():
                if (
                    _SIZE_PARAM.match(param)
                    and isinstance(value, int | float)
                    and not isinstance(value, bool)
                    and abs(value) > MAX_SIZE_ARG
                ):
                    return [("", f"argument {param}={value!r} is too large (at most {MAX_SIZE_ARG:,})")], 0
        call_a, call_k = call_args(args, kwargs)
        try:
            largest = _trial_calls(gen, method, call_a, call_k)
        except ClockDependent as exc:
            return [
                (
                    "",
                    f"Faker provider {name!r} depends on today's date (it calls {exc.via!r}), so a "
                    "retried run would generate different rows: use the `date` or `datetime` generator",
                )
            ], 0
        except UsesGlobalRandom:
            return [
                (
                    "",
                    f"Faker provider {name!r} draws from Python's global random generator instead of the "
                    "seeded one, so its values cannot be reproduced: it is not supported",
                )
            ], 0
        except NotJSON as exc:
            return [("", f"Faker provider {name!r} returns {exc}, which has no JSON form")], 0
        except Exception as exc:  # a provider may raise anything for bad argument values
            return [
                (
                    "",
                    f"calling Faker provider {name!r} with these arguments failed: "
                    f"{type(exc).__name__}: {exc}",
                )
            ], 0
    return [], largest
