"""Template documents: parsing, every validation problem with its path, canonical form and digest."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from seedbed.worker.templates import (
    TemplateSpec,
    TemplateValidationError,
    parse_template,
    parse_templates,
    validate_template,
)

CUSTOMER = """
id: tmpl_customer
version: 1
description: Customers of the shop
locale: en_US
fields:
  id:        {sequence: {start: 1, step: 1}}
  uuid:      {uuid: {}}
  name:      {faker: name}
  email:     {faker: email, unique: true}
  company:   {faker: company, locale: de_DE, nullable: 0.1}
  country:   {choice: {values: [US, CA, MX], weights: [70, 20, 10]}}
  age:       {int: {min: 18, max: 90, distribution: normal, mean: 40, stddev: 12}}
  balance:   {float: {min: 0, max: 10000, decimals: 2}}
  signup:    {date: {start: "2020-01-01", end: "2024-12-31"}}
  seen:      {datetime: {start: "2024-01-01T00:00:00Z", end: "2024-12-31T23:59:59Z"}}
  vip:       {bool: {probability: 0.1}}
  tier:      {const: gold}
  phone:     {faker: {provider: numerify, args: ["###-####"]}}
  label:     {compute: "{name} <{email}>"}
"""


def problems(text: str | dict[str, Any]) -> list[str]:
    """Every problem as 'path: message'; fails the test if the document is valid."""
    with pytest.raises(TemplateValidationError) as info:
        if isinstance(text, str):
            parse_template(text)
        else:
            validate_template(text)
    return [str(p) for p in info.value.problems]


def doc(fields: str, head: str = "id: tmpl_t\nversion: 1\n") -> str:
    return head + "fields:\n" + "".join(f"  {line}\n" for line in fields.strip().splitlines())


def one_problem(fields: str) -> str:
    found = problems(doc(fields))
    assert len(found) == 1, found
    return found[0]


# -- the happy path ---------------------------------------------------------------------------------


def test_the_documented_example_parses_into_a_frozen_spec() -> None:
    spec = parse_template(CUSTOMER)
    assert spec.id == "tmpl_customer" and spec.version == 1 and spec.locale == "en_US"
    assert list(spec.fields) == [
        "id",
        "uuid",
        "name",
        "email",
        "company",
        "country",
        "age",
        "balance",
        "signup",
        "seen",
        "vip",
        "tier",
        "phone",
        "label",
    ]
    assert spec.fields["email"].unique and spec.fields["email"].kind == "faker"
    assert spec.fields["company"].nullable == 0.1
    assert spec.fields["company"].generator.locale == "de_DE"  # type: ignore[union-attr]
    with pytest.raises(AttributeError):
        spec.id = "tmpl_other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        spec.fields["x"] = spec.fields["id"]  # type: ignore[index]
    assert hash(spec) == hash(parse_template(CUSTOMER))


def test_json_and_yaml_give_the_same_spec_and_digest() -> None:
    spec = parse_template(CUSTOMER)
    as_json = json.dumps(spec.to_json())
    assert parse_template(as_json) == spec
    assert parse_template(as_json, fmt="json").digest == spec.digest
    assert validate_template(spec.to_json()) == spec


def test_to_json_is_canonical_with_defaults_spelled_out() -> None:
    spec = parse_template(doc("n: {int: {min: 1, max: 5}}\ns: {sequence: {}}\nf: {faker: name}"))
    assert spec.to_json() == {
        "id": "tmpl_t",
        "version": 1,
        "locale": "en_US",
        "fields": {
            "n": {"int": {"min": 1, "max": 5, "distribution": "uniform"}},
            "s": {"sequence": {"start": 1, "step": 1}},
            "f": {"faker": {"provider": "name", "args": [], "kwargs": {}}},
        },
    }
    assert spec.digest.startswith("sha256:") and len(spec.digest) == 7 + 64


def test_a_pool_is_part_of_the_canonical_document() -> None:
    spec = parse_template(doc("f: {faker: name, locale: de_DE, pool: 100}"))
    assert spec.to_json()["fields"]["f"] == {
        "faker": {"provider": "name", "args": [], "kwargs": {}},
        "locale": "de_DE",
        "pool": 100,
    }
    assert validate_template(spec.to_json()) == spec
    assert spec.fields["f"].generator.pool == 100  # type: ignore[union-attr]
    without = parse_template(doc("f: {faker: name, locale: de_DE}"))
    other = parse_template(doc("f: {faker: name, locale: de_DE, pool: 101}"))
    assert len({spec.digest, without.digest, other.digest}) == 3


def test_digest_changes_with_content_and_field_order() -> None:
    a = parse_template(doc("x: {const: 1}\ny: {const: 2}"))
    b = parse_template(doc("y: {const: 2}\nx: {const: 1}"))
    c = parse_template(doc("x: {const: 1}\ny: {const: 3}"))
    assert len({a.digest, b.digest, c.digest}) == 3
    assert a != b


def test_yaml_uses_the_core_schema() -> None:
    spec = parse_template(
        doc("c: {choice: [NO, yes, on, off, 010, 0x1F, 1_000, 2020-01-01, 1.5e3, true, null]}")
    )
    assert spec.fields["c"].generator.values == (  # type: ignore[union-attr]
        "NO",
        "yes",
        "on",
        "off",
        10,
        31,
        "1_000",
        "2020-01-01",
        1500.0,
        True,
        None,
    )


def test_shorthands() -> None:
    spec = parse_template(doc("c: {choice: [a, b]}\nu: {uuid: null}\nb: {bool: {}}"))
    assert spec.fields["c"].generator.to_json() == {"values": ["a", "b"]}
    assert spec.fields["b"].generator.to_json() == {"probability": 0.5}


def test_yaml_aliases_are_allowed_within_budget() -> None:
    text = "id: tmpl_t\nversion: 1\nfields:\n  a: &g {int: {min: 1, max: 2}}\n  b: *g\n"
    assert list(parse_template(text).fields) == ["a", "b"]


# -- document-level problems --------------------------------------------------------------------------


def test_not_a_mapping() -> None:
    assert problems("- a\n- b\n") == ["(document): a template must be a mapping, not a list"]
    assert problems("just text") == ["(document): a template must be a mapping, not str"]
    assert problems("") == ["(document): a template must be a mapping, not NoneType"]


def test_syntax_errors_name_line_and_column() -> None:
    (found,) = problems("id: tmpl_t\nfields: {a: [1, 2}\n")
    assert found.startswith("(document): invalid YAML at line 2")
    (found,) = problems('{"id": "tmpl_t", }')
    assert found.startswith("(document): invalid JSON at line 1, column")


def test_duplicate_keys_are_errors_in_both_formats() -> None:
    (found,) = problems(doc("a: {const: 1}\na: {const: 2}"))
    assert "duplicate key 'a' at line 5" in found
    (found,) = problems('{"id": "tmpl_t", "id": "tmpl_u"}')
    assert found == "(document): duplicate key 'id' in a JSON object"


def test_size_limits() -> None:
    (found,) = problems("x: " + "a" * (256 * 1024))
    assert "bytes; the limit is 262,144" in found
    many = "".join(f"  f{i}: {{const: {i}}}\n" for i in range(501))
    assert problems("id: tmpl_t\nversion: 1\nfields:\n" + many) == [
        "fields: has 501 fields; the limit is 500"
    ]


def test_alias_bomb_fails_fast() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}]" for i in range(1, 12)]
    started = time.perf_counter()
    (found,) = problems("\n".join(lines) + "\n")  # 10·5¹¹ ≈ 490 million values if expanded
    assert "(counting each use of a YAML alias)" in found
    assert time.perf_counter() - started < 1


def test_deep_nesting_and_non_json_values() -> None:
    (found,) = problems("x: " + "[" * 40 + "]" * 40)
    assert "nested deeper than 32 levels" in found
    (found,) = problems('{"id": NaN}')
    assert "NaN is not a JSON value" in found
    (found,) = problems({"id": "tmpl_t", "version": 1, "fields": {"a": {"const": {1, 2}}}})
    assert found == "(document): fields.a.const: set is not a JSON value"


def test_top_level_problems_all_reported_at_once() -> None:
    found = problems("id: customer\nversion: 2\ndescripton: x\nlocale: en-US\n")
    assert found == [
        "descripton: unknown key (did you mean 'description'?); a template has id, version, description, "
        "locale, fields",
        "id: 'customer' is not a template id: 'tmpl_' followed by 1-64 of a-z, 0-9, '_', '-'",
        "version: unsupported format version 2: this Seedbed reads version 1",
        "locale: unknown Faker locale 'en-US' (did you mean 'en_US'?)",
        "fields: missing: a template maps field names to generators",
    ]
    assert problems("fields: {a: {const: 1}}")[:2] == [
        "id: missing: every template needs an id such as 'tmpl_customer'",
        "version: missing: the format version of the document (1)",
    ]


def test_error_message_lists_every_problem() -> None:
    with pytest.raises(TemplateValidationError) as info:
        parse_template(doc("a: {int: {min: 5, max: 1}}\nb: {faker: emial}"))
    assert str(info.value) == (
        "template 'tmpl_t' is invalid (2 problems):\n"
        "  - fields.a.int: min (5) is greater than max (1)\n"
        "  - fields.b.faker: unknown Faker provider 'emial' for locale en_US (did you mean 'email'?)"
    )
    assert info.value.template_id == "tmpl_t"


# -- field-level problems ------------------------------------------------------------------------------

FIELD_CASES = [
    (
        "a: {foo: 1}",
        "fields.a.foo: unknown generator or option 'foo'; generators: sequence, uuid, faker, "
        "choice, int, float, bool, date, datetime, const, ref, compute; options: unique, nullable, "
        "locale, pool, description",
    ),
    (
        "a: {const: 1, uniqe: true}",
        "fields.a.uniqe: unknown generator or option 'uniqe' (did you mean 'unique'?)",
    ),
    (
        "a: {unique: true}",
        "fields.a: missing a generator: one of sequence, uuid, faker, choice, "
        "int, float, bool, "
        "date, datetime, const, ref, compute",
    ),
    (
        "a: {const: 1, int: {min: 1, max: 2}}",
        "fields.a: has 2 generators (const, int): a field has exactly one",
    ),
    (
        "a: 5",
        "fields.a: must be a mapping with one generator (sequence, uuid, faker, choice, int, "
        "float, bool, "
        "date, datetime, const, ref, compute), not int",
    ),
    ("9a: {const: 1}", "fields.9a: a field name is a letter or '_' then up to 62 letters, digits or '_'"),
    ("a: {sequence: {step: 0}}", "fields.a.sequence.step: must not be 0"),
    ("a: {sequence: {pad: 40}}", "fields.a.sequence.pad: must be from 0 to 32, got 40"),
    (
        "a: {sequence: {start: x}}",
        "fields.a.sequence.start: must be an integer (within signed 64 bits), not 'x'",
    ),
    ("a: {uuid: {version: 1}}", "fields.a.uuid.version: only version 4 (random) UUIDs are generated"),
    ("a: {int: {min: 90, max: 18}}", "fields.a.int: min (90) is greater than max (18)"),
    (
        "a: {int: {min: 1.5, max: 18}}",
        "fields.a.int.min: must be an integer (within signed 64 bits), not 1.5",
    ),
    (
        "a: {int: {min: true, max: 18}}",
        "fields.a.int.min: must be an integer (within signed 64 bits), not True",
    ),
    ("a: {int: {min: 1}}", "fields.a.int.max: missing"),
    (
        "a: {int: {min: 1, max: 9, mx: 3}}",
        "fields.a.int.mx: unknown option (did you mean 'max'?); "
        "options: min, max, distribution, mean, stddev",
    ),
    (
        "a: {int: {min: 1, max: 9, distribution: gaussian}}",
        "fields.a.int.distribution: unknown distribution 'gaussian'; one of uniform, normal, exponential",
    ),
    (
        "a: {int: {min: 1, max: 9, mean: 3}}",
        "fields.a.int.mean: applies only to the normal and exponential distributions",
    ),
    (
        "a: {int: {min: 1, max: 9, distribution: normal, mean: 30}}",
        "fields.a.int.mean: 30 lies outside [min, max] = [1, 9]",
    ),
    (
        "a: {int: {min: 1, max: 9, distribution: normal, stddev: 0}}",
        "fields.a.int.stddev: must be greater than 0, got 0",
    ),
    (
        "a: {int: {min: 1, max: 9, distribution: exponential, stddev: 1}}",
        "fields.a.int.stddev: applies only to the normal distribution (exponential takes a mean)",
    ),
    (
        "a: {float: {min: 1, max: 9, distribution: exponential, mean: 1}}",
        "fields.a.float.mean: must be greater than min and at most max (1 < mean <= 9), got 1",
    ),
    ("a: {float: {min: 0, max: 10, decimals: 99}}", "fields.a.float.decimals: must be from 0 to 15, got 99"),
    ("a: {float: {min: 0, max: x}}", "fields.a.float.max: must be a number, not 'x'"),
    (
        "a: {bool: {probability: 2}}",
        "fields.a.bool.probability: must be the probability of true, from 0 to 1, got 2",
    ),
    ("a: {choice: []}", "fields.a.choice: must be a non-empty list of values"),
    (
        "a: {choice: {values: [US, CA, MX], weights: [70, 20]}}",
        "fields.a.choice.weights: has 2 weights for 3 values: give one weight per value",
    ),
    (
        "a: {choice: {values: [US, CA], weights: [0, 0]}}",
        "fields.a.choice.weights: weights are all zero: at least one must be positive",
    ),
    (
        "a: {choice: {values: [US, CA], weights: [-1, 2]}}",
        "fields.a.choice.weights: weights[0] is -1; weights must be finite and not negative",
    ),
    (
        "a: {choice: {values: [US, CA], weights: [1, x]}}",
        "fields.a.choice.weights: weights[1] is 'x', not a number",
    ),
    (
        "a: {choice: [US, CA, US]}",
        "fields.a.choice[2]: duplicate of values[0] ('US'): list it once and give it a weight",
    ),
    ("a: {choice: [[1], 2]}", "fields.a.choice[0]: choice values must be strings, numbers, booleans or null"),
    (
        "a: {choice: {value: [1]}}",
        "fields.a.choice.value: unknown option (did you mean 'values'?); options: values, weights",
    ),
    (
        'a: {date: {start: "2020-13-01", end: "2021-01-01"}}',
        "fields.a.date.start: must be an ISO 8601 date string such as 2024-12-31, not '2020-13-01'",
    ),
    (
        'a: {date: {start: "2021-01-02", end: "2021-01-01"}}',
        "fields.a.date: start (2021-01-02) is after end (2021-01-01)",
    ),
    (
        'a: {datetime: {start: "2020-01-01T00:00:00Z", end: "2021-01-01T00:00:00"}}',
        "fields.a.datetime: start and end must both have a UTC offset or both have none",
    ),
    (
        'a: {datetime: {start: "2020-01-01", end: "2021-01-01", precision: hours}}',
        "fields.a.datetime.precision: must be one of seconds, milliseconds, microseconds, not 'hours'",
    ),
    (
        "a: {const: gold, unique: true}",
        "fields.a.unique: a const field cannot be unique: every row has the same value",
    ),
    ("a: {const: 1, unique: yes}", "fields.a.unique: must be true or false, not 'yes'"),
    (
        "a: {const: 1, nullable: 1.5}",
        "fields.a.nullable: must be the probability of null, from 0 to 1, got 1.5",
    ),
    (
        "a: {const: 1, nullable: true}",
        "fields.a.nullable: must be the probability of null, from 0 to 1 (such as 0.1), not a boolean",
    ),
    ("a: {const: 1, locale: de_DE}", "fields.a.locale: locale applies only to faker fields"),
    ("a: {faker: name, locale: xx_XX}", "fields.a.locale: unknown Faker locale 'xx_XX'"),
    ("a: {const: 1, pool: 10}", "fields.a.pool: pool applies only to faker fields"),
    (
        "a: {faker: name, pool: 0}",
        "fields.a.pool: must be the number of Faker values to draw rows from, an integer from 1 to "
        "1,000,000, got 0",
    ),
    (
        "a: {faker: name, pool: true}",
        "fields.a.pool: must be the number of Faker values to draw rows from, an integer from 1 to "
        "1,000,000, got True",
    ),
    (
        "a: {faker: name, pool: 1000001}",
        "fields.a.pool: must be the number of Faker values to draw rows from, an integer from 1 to "
        "1,000,000, got 1000001",
    ),
    (
        "a: {faker: email, pool: 500, unique: true}",
        "fields.a.pool: a pooled field cannot be unique: its rows repeat 500 values; drop `pool` (each "
        "row calls Faker, with retries on collisions) or `unique`",
    ),
    (
        "a: {ref: {template: Customer, field: id}}",
        "fields.a.ref.template: 'Customer' is not a template id such as 'tmpl_customer'",
    ),
    ("a: {ref: {template: tmpl_c}}", "fields.a.ref.field: missing"),
    ("a: {compute: 5}", "fields.a.compute: must be a string such as '{first} {last}', not int"),
]


@pytest.mark.parametrize(("fields", "expected"), FIELD_CASES, ids=[c[1].split(":")[0] for c in FIELD_CASES])
def test_field_problem(fields: str, expected: str) -> None:
    assert one_problem(fields) == expected


FAKER_CASES = [
    (
        "a: {faker: emial}",
        "fields.a.faker: unknown Faker provider 'emial' for locale en_US (did you mean 'email'?)",
    ),
    (
        "a: {faker: {provider: emial}}",
        "fields.a.faker.provider: unknown Faker provider 'emial' for locale en_US (did you mean 'email'?)",
    ),
    ("a: {faker: prefecture}", "fields.a.faker: unknown Faker provider 'prefecture' for locale en_US"),
    (
        "a: {faker: seed_instance}",
        "fields.a.faker: 'seed_instance' is not a Faker provider (only public provider methods are allowed)",
    ),
    (
        "a: {faker: seed}",
        "fields.a.faker: 'seed' is not a Faker provider (only public provider methods are allowed)",
    ),
    (
        "a: {faker: add_provider}",
        "fields.a.faker: 'add_provider' is not a Faker provider (only public provider methods are allowed)",
    ),
    (
        "a: {faker: format}",
        "fields.a.faker: 'format' is not a Faker provider (only public provider methods are allowed)",
    ),
    (
        "a: {faker: parse}",
        "fields.a.faker: 'parse' is not a Faker provider (only public provider methods are allowed)",
    ),
    (
        "a: {faker: _random}",
        "fields.a.faker: '_random' is not a Faker provider (only public provider methods are allowed)",
    ),
    (
        "a: {faker: __class__}",
        "fields.a.faker: '__class__' is not a Faker provider (only public provider methods are allowed)",
    ),
    ("a: {faker: binary}", "fields.a.faker: Faker provider 'binary' is not supported: it returns bytes"),
    (
        "a: {faker: date_of_birth}",
        "fields.a.faker: Faker provider 'date_of_birth' depends on "
        "today's date, so a "
        "retried run would generate different rows: use the `date` or `datetime` generator instead",
    ),
    (
        "a: {faker: {provider: numerify, args: [1, 2]}}",
        "fields.a.faker: bad arguments for numerify(text: str = '###'): too many positional arguments",
    ),
    (
        "a: {faker: {provider: numerify, kwargs: {txt: x}}}",
        "fields.a.faker: bad arguments for numerify(text: str = '###'): got an unexpected keyword "
        "argument 'txt'",
    ),
    (
        "a: {faker: {provider: numerify, args: '###'}}",
        "fields.a.faker.args: must be a list of JSON values, not str",
    ),
    (
        "a: {faker: {provider: text, kwargs: {max_nb_chars: 10000000}}}",
        "fields.a.faker: argument max_nb_chars=10000000 is too large (at most 10,000)",
    ),
    (
        "a: {faker: {provider: pyint, kwargs: {min_value: 10, max_value: 1}}}",
        "fields.a.faker: calling Faker provider 'pyint' with these arguments failed: ValueError: empty "
        "range for "
        "randrange() (10, 2, -8)",
    ),
    ("a: {faker: {args: []}}", "fields.a.faker.provider: missing"),
    (
        "a: {faker: {provider: name, arg: []}}",
        "fields.a.faker.arg: unknown option (did you mean 'args'?); options: provider, args, kwargs",
    ),
]


@pytest.mark.parametrize(("fields", "expected"), FAKER_CASES, ids=[c[0] for c in FAKER_CASES])
def test_faker_problem(fields: str, expected: str) -> None:
    assert one_problem(fields) == expected


def test_providers_that_reach_the_clock_are_refused() -> None:
    assert "depends on today's date" in one_problem("a: {faker: ssn, locale: pl_PL}")
    assert "depends on today's date" in one_problem("a: {faker: profile}")
    assert "depends on today's date" in one_problem("a: {faker: credit_card_full}")


def test_providers_that_use_the_global_random_are_refused() -> None:
    assert one_problem("a: {faker: passport_gender}") == (
        "fields.a.faker: Faker provider 'passport_gender' draws from Python's global random generator "
        "instead of the seeded one, so its values cannot be reproduced: it is not supported"
    )
    assert "global random generator" in one_problem("a: {faker: nie, locale: es_ES}")


def test_clock_free_providers_that_use_absolute_dates_are_accepted() -> None:
    spec = parse_template(
        doc(
            "ua: {faker: user_agent}\ntz: {faker: timezone}\nc: {faker: century}\n"
            "e: {faker: email, locale: ru_RU}"
        )
    )
    assert list(spec.fields) == ["ua", "tz", "c", "e"]


def test_faker_arguments_and_locale_specific_providers() -> None:
    spec = parse_template(
        doc(
            "p: {faker: prefecture, locale: ja_JP}\n"
            "w: {faker: {provider: random_element, kwargs: {elements: {a: 0.7, b: 0.3}}}}\n"
            "s: {faker: {provider: pystr, args: [3, 5]}}"
        )
    )
    assert spec.fields["w"].generator.to_json() == {  # type: ignore[union-attr]
        "provider": "random_element",
        "args": [],
        "kwargs": {"elements": {"a": 0.7, "b": 0.3}},
    }


def test_an_invalid_template_locale_skips_faker_checks_instead_of_cascading() -> None:
    found = problems("id: tmpl_t\nversion: 1\nlocale: xx\nfields:\n  a: {faker: name}\n")
    assert found == ["locale: unknown Faker locale 'xx'"]


# -- compute -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "placeholder",
    [
        "{x.__class__}",
        "{x[0]}",
        "{x!r}",
        "{x:>999999999}",
        "{x.__globals__}",
        "{0}",
        "{}",
        "{x y}",
        "{__import__('os')}",
    ],
)
def test_compute_allows_only_field_names_and_filters(placeholder: str) -> None:
    fields = {"x": {"const": 1}, "c": {"compute": placeholder}}
    assert problems({"id": "tmpl_t", "version": 1, "fields": fields}) == [
        f"fields.c.compute: placeholder {placeholder} is not allowed: a placeholder names a field, "
        f"optionally "
        "followed by |filters (no attribute access, indexing, conversions or format specs)"
    ]


def test_compute_problems() -> None:
    assert one_problem("c: {compute: '{nmae}'}\nname: {const: 1}") == (
        "fields.c.compute: references unknown field 'nmae' (did you mean 'name'?)"
    )
    assert one_problem("x: {const: 1}\nc: {compute: '{x|lowr}'}") == (
        "fields.c.compute: unknown filter 'lowr' in {x|lowr}; filters: lower, upper, title, strip, "
        "slug, digits, "
        "initial"
    )
    assert one_problem("c: {compute: 'a { b'}") == (
        "fields.c.compute: unclosed '{' at position 2 (write '{{' for a literal brace)"
    )
    assert one_problem("c: {compute: 'a } b'}") == (
        "fields.c.compute: unmatched '}' at position 2 (write '}}' for a literal brace)"
    )
    assert one_problem("c: {compute: '{c}'}") == "fields.c.compute: computed fields form a cycle: c → c"
    assert one_problem("a: {compute: '{b}'}\nb: {compute: '{c}'}\nc: {compute: '{a}'}") == (
        "fields.a.compute: computed fields form a cycle: a → b → c → a"
    )
    assert one_problem("c: {compute: x, unique: true}") == (
        "fields.c.unique: a computed field cannot be unique: make the fields it uses unique instead"
    )


def test_compute_may_use_literal_braces_and_fields_that_come_later() -> None:
    spec = parse_template(doc("c: {compute: '{{{a|upper}}}-{b}'}\na: {const: x}\nb: {compute: '{a}!'}"))
    assert spec.fields["c"].generator.depends_on == ("a", "b")  # type: ignore[union-attr]


def test_an_invalid_field_is_not_reported_again_by_computes_using_it() -> None:
    assert problems(doc("a: {int: {min: 2, max: 1}}\nc: {compute: '{a}'}")) == [
        "fields.a.int: min (2) is greater than max (1)"
    ]


# -- sets of documents -------------------------------------------------------------------------------


def test_parse_templates_checks_ids_and_refs_across_documents() -> None:
    customer = "id: tmpl_customer\nversion: 1\nfields:\n  id: {sequence: {}}\n"
    order = "id: tmpl_order\nversion: 1\nfields:\n  c: {ref: {template: tmpl_customer, field: id}}\n"
    specs = parse_templates({"customer.yaml": customer, "order.yaml": order})
    assert sorted(specs) == ["tmpl_customer", "tmpl_order"]
    with pytest.raises(TemplateValidationError) as info:
        parse_templates(
            {
                "customer.yaml": customer,
                "again.yaml": customer,
                "order.yaml": order.replace("field: id", "field: idd"),
                "lost.yaml": order.replace("tmpl_order", "tmpl_lost").replace(
                    "tmpl_customer", "tmpl_custmer"
                ),
                "broken.yaml": "id: tmpl_b\nversion: 1\nfields:\n  a: {int: {min: 2, max: 1}}\n",
            }
        )
    assert [str(p) for p in info.value.problems] == [
        "again.yaml:id: duplicate template id 'tmpl_customer' (also in customer.yaml)",
        "broken.yaml:fields.a.int: min (2) is greater than max (1)",
        "order.yaml:fields.c.ref: template 'tmpl_customer' has no field 'idd' (did you mean 'id'?)",
        "lost.yaml:fields.c.ref: references unknown template 'tmpl_custmer' (did you mean 'tmpl_customer'?)",
    ]


def test_spec_is_built_only_from_valid_documents() -> None:
    spec = parse_template(CUSTOMER)
    assert isinstance(spec, TemplateSpec)
    assert validate_template(json.loads(spec.canonical)) == spec
