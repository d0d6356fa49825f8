"""The Faker adapter: accelerated instances return exactly what stock Faker returns, nothing global changes,
and the public surface of `seedbed.worker.templates` stays what it is."""

from __future__ import annotations

import ast
import random
import re
from datetime import date
from pathlib import Path
from typing import Any

import faker
import pytest

import seedbed.worker.templates as templates
from seedbed.worker.templates import FAKER_VERSION, Generator, RunRefs, parse_template
from seedbed.worker.templates._faker import CLOCK_METHODS, ClockDependent, new_faker
from seedbed.worker.templates._providers import _allowed, check_call, provider_problem
from tests.conftest import ROOT

PACKAGE = ROOT / "worker" / "seedbed" / "worker" / "templates"

PROVIDERS = [
    "name",
    "first_name",
    "last_name",
    "prefix",
    "email",
    "free_email",
    "safe_email",
    "user_name",
    "company",
    "company_suffix",
    "catch_phrase",
    "address",
    "street_address",
    "city",
    "postcode",
    "country",
    "phone_number",
    "job",
    "text",
    "sentence",
    "word",
    "words",
    "url",
    "domain_name",
    "ipv4",
    "iban",
    "color_name",
    "license_plate",
    "currency_code",
    "file_name",
    "mime_type",
    "isbn13",
    "ean13",
    "credit_card_number",
    "user_agent",
    "password",
    "uuid4",
    "pystr",
    "bothify",
    "numerify",
    "lexify",
]
LOCALES = ["en_US", "de_DE", "fr_FR", "ja_JP", "pt_BR", "ru_RU", "zh_CN", "en_GB", "es_ES", "it_IT", "ar_AA"]


def stock(locale: str, seed: int) -> Any:
    gen = faker.Factory.create(locale)
    gen.random = random.Random(seed)
    return gen


def ours(locale: str, seed: int) -> Any:
    gen = new_faker(locale)
    gen.random = random.Random(seed)
    return gen


def test_faker_is_the_version_the_sandbox_image_pins() -> None:
    requirements = (ROOT / "sandbox-images" / "python" / "requirements.txt").read_text()
    pinned = re.search(r"^faker==(\S+)$", requirements, re.MULTILINE)
    assert pinned is not None and pinned.group(1) == FAKER_VERSION == faker.VERSION


SWEEP_LOCALES = ["en_US", "es_ES", "uk_UA", "ru_RU"]


class _Clock(Exception):
    pass


def stock_without_clock(locale: str, seed: int) -> Any:
    """Stock Faker, except that reaching a date provider through the generator raises."""
    gen = stock(locale, seed)

    def refuse(*_args: Any, **_kwargs: Any) -> Any:
        raise _Clock

    for name in CLOCK_METHODS:
        if hasattr(gen, name):
            setattr(gen, name, refuse)
    return gen


def draws(gen: Any, provider: str, n: int = 10) -> list[Any]:
    method = getattr(gen, provider)
    return [method() for _ in range(n)]


def check_against_stock(locale: str, provider: str) -> None:
    """Ours gives the same values for a seed every time, and stock Faker's values unless the provider
    reads the clock (which ours pins)."""
    got = draws(ours(locale, 3), provider)
    assert draws(ours(locale, 3), provider) == got, provider
    try:
        expected = draws(stock_without_clock(locale, 3), provider)
    except _Clock:
        return
    assert got == expected, provider


@pytest.mark.parametrize("locale", LOCALES)
def test_accelerated_instances_return_exactly_what_stock_faker_returns(locale: str) -> None:
    for provider in PROVIDERS:
        if hasattr(stock(locale, 1), provider):
            check_against_stock(locale, provider)


@pytest.mark.parametrize("locale", SWEEP_LOCALES)
def test_every_accepted_provider_is_reproducible_and_matches_stock_faker(locale: str) -> None:
    """Whatever validation accepts (called without arguments) passes `check_against_stock`; what it
    refuses is refused for a reason (clock, global random, no JSON form)."""
    refused = []
    for provider in sorted(_allowed(locale)):
        try:
            draws(stock(locale, 3), provider, 3)
        except Exception:  # providers that need arguments
            continue
        if provider_problem(locale, provider) or check_call(locale, provider, [], {}):
            refused.append(provider)
            continue
        check_against_stock(locale, provider)
    assert len(refused) < 70, refused


def test_weighted_picks_and_patterns_take_the_same_draws_with_arguments() -> None:
    from collections import OrderedDict

    table = OrderedDict([("a", 0.5), ("b", 0.2), ("c", 0.3)])
    a, b = stock("en_US", 5), ours("en_US", 5)
    for gen in (a, b):
        gen.out = [gen.random_element(table) for _ in range(100)]  # type: ignore[attr-defined]
        gen.out += [gen.random_element(["x", "y"]) for _ in range(100)]  # type: ignore[attr-defined]
        gen.out += [gen.random_elements(table, length=3, unique=True) for _ in range(20)]  # type: ignore[attr-defined]
        gen.out += [gen.random_elements(table, length=1, use_weighting=False) for _ in range(20)]  # type: ignore[attr-defined]
        gen.out += [gen.bothify("??-##-%%-!!-@@ plain") for _ in range(20)]  # type: ignore[attr-defined]
    assert a.out == b.out


def test_clock_guard() -> None:
    gen = ours("en_US", 1)
    assert gen.date_time_between(date(2020, 1, 1), date(2021, 1, 1)).year == 2020
    assert len(gen.user_agent()) > 10
    with pytest.raises(ClockDependent):
        gen.date_of_birth()
    with pytest.raises(ClockDependent):
        gen.date_time_between("-30y", "now")
    with pytest.raises(ClockDependent):
        gen.credit_card_expire()


def test_nothing_global_changes() -> None:
    state = random.getstate()
    spec = parse_template(
        "id: tmpl_t\nversion: 1\nfields:\n  n: {faker: name}\n  i: {int: {min: 1, max: 9}}\n"
    )
    Generator(spec, seed=1).rows(100)
    assert random.getstate() == state  # the module-global random is never used
    from faker.providers import BaseProvider

    assert "random_element" not in vars(faker.Factory.create("en_US").providers[0])
    assert BaseProvider.random_element.__qualname__ == "BaseProvider.random_element"
    plain = faker.Faker()
    plain.date_of_birth()  # stock instances keep their clock


# -- the public surface --------------------------------------------------------------------------------


def test_public_surface() -> None:
    assert sorted(templates.__all__) == sorted(
        [
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
    )
    for name in templates.__all__:
        assert getattr(templates, name) is not None
    errors = [templates.CountLimitError, templates.OverrideError, templates.MissingRefError]
    assert all(issubclass(e, templates.GenerationError) for e in [*errors, templates.UniqueExhaustedError])
    assert issubclass(templates.TemplateValidationError, templates.TemplateError)
    assert issubclass(templates.GenerationError, templates.TemplateError)


def test_modules_are_private_small_and_import_no_infrastructure() -> None:
    forbidden = {
        "docker",
        "ray",
        "grpc",
        "sqlalchemy",
        "psycopg",
        "requests",
        "httpx",
        "os",
        "subprocess",
        "socket",
    }
    for path in PACKAGE.glob("*.py"):
        assert path.name == "__init__.py" or path.name.startswith("_"), path.name
        source = path.read_text()
        assert len(source.splitlines()) < 500, path.name
        for node in ast.walk(ast.parse(source)):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            assert not {n.split(".")[0] for n in names} & forbidden, (path.name, names)
    assert (PACKAGE / "FORMAT.md").is_file()


def test_format_reference_mentions_every_generator_and_filter() -> None:
    from seedbed.worker.templates._compute import FILTERS
    from seedbed.worker.templates._kinds import KINDS

    text = Path(PACKAGE / "FORMAT.md").read_text()
    for kind in KINDS:
        assert f"`{kind}`" in text, kind
    for name in FILTERS:
        assert f"`{name}`" in text, name


def test_the_example_in_the_format_reference_is_valid() -> None:
    text = (PACKAGE / "FORMAT.md").read_text()
    example = text.split("```yaml\n", 1)[1].split("```", 1)[0]
    spec = parse_template(example)
    first = Generator(spec, seed=1).rows(50, overrides={"referrer_id": None})  # nobody to refer to yet
    refs = RunRefs()
    refs.record(spec.id, first)
    rows = Generator(spec, seed=2, refs=refs).rows(50)
    assert rows[0]["label"] == f"{rows[0]['name']} <{rows[0]['email'].lower()}>"
    assert {r["referrer_id"] for r in rows} - {None} <= {r["id"] for r in first}
