"""Template size caps: the estimate at validation (`check_sizes`) and the cap while rendering."""

from __future__ import annotations

import json
from typing import Any

import pytest

from seedbed.api.v1 import attempt_pb2
from seedbed.worker import catalog
from seedbed.worker.templates import (
    Generator,
    MaterialisedColumn,
    SizeLimitError,
    SizeLimits,
    TemplateValidationError,
    check_sizes,
    estimate_sizes,
    validate_template,
)


def spec_of(fields: dict[str, Any], template_id: str = "tmpl_t") -> Any:
    return validate_template({"id": template_id, "version": 1, "fields": fields})


def problems(fields: dict[str, Any], limits: SizeLimits | None = None) -> list[tuple[str, str]]:
    try:
        check_sizes(spec_of(fields), limits or SizeLimits())
    except TemplateValidationError as exc:
        return [(p.path, p.message) for p in exc.problems]
    return []


def test_plain_kinds_are_estimated_by_their_widest_value() -> None:
    sizes = estimate_sizes(
        spec_of(
            {
                "c": {"const": "zoë"},
                "obj": {"const": {"a": [1, 2]}},
                "pick": {"choice": ["a", "bbbb", 7]},
                "n": {"int": {"min": -5, "max": 12345}},
                "u": {"uuid": {}},
                "b": {"bool": {}},
                "d": {"date": {"start": "2020-01-01", "end": "2020-12-31"}},
                "seq": {"sequence": {"prefix": "ORD-", "pad": 6}},
                "r": {"ref": {"template": "tmpl_x", "field": "id"}},
            }
        )
    )
    assert sizes["c"] == 4  # bytes, not characters
    assert sizes["obj"] == len("{'a': [1, 2]}")  # as a placeholder reads it (longer than the JSON)
    assert sizes["pick"] == 4
    assert sizes["n"] == 5
    assert sizes["u"] == 36 and sizes["b"] == 5 and sizes["d"] == 10
    assert sizes["seq"] == 4 + 33
    assert sizes["r"] == 256


def test_a_faker_field_is_bounded_by_what_its_trial_calls_produced() -> None:
    spec = spec_of(
        {"name": {"faker": "name"}, "s": {"faker": {"provider": "pystr", "kwargs": {"max_chars": 10000}}}}
    )
    sizes = estimate_sizes(spec)
    names = Generator(spec, seed=1).rows(200)
    assert max(len(r["name"]) for r in names) <= sizes["name"] < 200
    assert 10_000 <= sizes["s"] <= 2 * 10_000 + 64


def test_computed_fields_multiply_through_what_they_use_and_their_filters() -> None:
    sizes = estimate_sizes(
        spec_of(
            {
                "a": {"const": "x" * 10},
                "b": {"compute": "<{a}{a}>"},
                "c": {"compute": "{b}-{b}-{b}"},
                "up": {"compute": "{a|upper}"},
                "first": {"compute": "{c|initial}"},
                "later": {"compute": "{z}{z}"},  # uses a field declared after it
                "z": {"const": "abc"},
            }
        )
    )
    assert sizes["b"] == 22
    assert sizes["c"] == 3 * 22 + 2
    assert sizes["up"] == 30  # a case change may lengthen text (upper("ß") == "SS")
    assert sizes["first"] == 4
    assert sizes["later"] == 6


def test_a_nested_compute_bomb_is_refused_naming_each_field_over_the_cap() -> None:
    found = problems(
        {
            "a": {"const": "x" * 100},
            "b": {"compute": "{a}" * 100},
            "c": {"compute": "{b}" * 100},
            "d": {"compute": "{c}" * 600},
        }
    )
    paths = [path for path, _ in found]
    assert paths == ["fields.c.compute", "fields.d.compute", "fields"]
    message = dict(found)["fields.c.compute"]
    assert "1,000,000 bytes" in message and "65,536 bytes per field" in message
    assert "SEEDBED_MAX_TEMPLATE_FIELD_BYTES" in message and "(b)" in message
    assert "600,000,000 bytes (about 572.2 MiB)" in dict(found)["fields.d.compute"]


def test_estimates_saturate_instead_of_growing_without_end() -> None:
    fields: dict[str, Any] = {"f0": {"const": "x" * 1000}}
    for i in range(1, 60):
        fields[f"f{i}"] = {"compute": f"{{f{i - 1}}}" * 300}
    sizes = estimate_sizes(spec_of(fields))
    assert sizes["f59"] == 2**60
    assert "more than 1,152,921,504,606,846,976 bytes" in dict(problems(fields))["fields.f59.compute"]


def test_the_row_cap_counts_every_field() -> None:
    fields: dict[str, Any] = {"a": {"const": "w" * 30_000}}
    fields.update({f"c{i}": {"compute": "{a}"} for i in range(40)})
    (found,) = problems(fields)
    assert found[0] == "fields"
    assert "1,230,000 bytes" in found[1] and "1,048,576 bytes per row" in found[1]
    assert "SEEDBED_MAX_TEMPLATE_ROW_BYTES" in found[1]
    assert problems(fields, SizeLimits(row_bytes=2 * 2**20)) == []


def test_faker_size_arguments_count_too() -> None:
    pystr = {"faker": {"provider": "pystr", "kwargs": {"max_chars": 10000}}}
    found = problems({"s": pystr, "x4": {"compute": "{s}" * 4}})
    assert [path for path, _ in found] == ["fields.x4.compute"]
    ((path, message),) = problems({"p": pystr}, SizeLimits(field_bytes=1024))
    assert path == "fields.p.faker" and "lower the provider's size arguments" in message


def test_ordinary_templates_are_far_below_the_caps() -> None:
    spec = spec_of(
        {
            "id": {"sequence": {}},
            "name": {"faker": "name"},
            "email": {"faker": "email"},
            "bio": {"faker": "text"},
            "when": {"datetime": {"start": "2024-01-01T00:00:00Z", "end": "2024-12-31T00:00:00Z"}},
            "label": {"compute": "{name|upper} <{email|lower}> {id}"},
        }
    )
    check_sizes(spec, SizeLimits())
    assert sum(estimate_sizes(spec).values()) < 4096


def test_size_limits_are_positive_and_zero_means_the_default() -> None:
    assert SizeLimits.of(0, 0) == SizeLimits() == SizeLimits(64 * 1024, 2**20)
    assert SizeLimits.of(2048, 0) == SizeLimits(2048, 2**20)
    for bad in (0, -1, True, 1.5):
        with pytest.raises(ValueError, match="field_bytes"):
            SizeLimits(field_bytes=bad)  # type: ignore[arg-type]


# -- while rendering --------------------------------------------------------------------------------


def test_computed_text_past_the_cap_fails_naming_the_template_and_field() -> None:
    spec = spec_of({"r": {"ref": {"template": "tmpl_big", "field": "x"}}, "twice": {"compute": "{r}{r}"}})

    class Refs:
        def source(self, template: str, field: str) -> MaterialisedColumn:
            return MaterialisedColumn(["y" * 600])

    gen = Generator(spec, seed=1, refs=Refs(), limits=SizeLimits(field_bytes=1024))
    with pytest.raises(SizeLimitError) as info:
        gen.rows(3)
    error = info.value
    assert (error.template_id, error.field, error.size, error.limit) == ("tmpl_t", "twice", 1200, 1024)
    assert "'tmpl_t'" in str(error) and "'twice'" in str(error) and "1,024 bytes per field" in str(error)
    assert "SEEDBED_MAX_TEMPLATE_FIELD_BYTES" in str(error)
    # Under the cap the same template renders.
    assert (
        Generator(spec, seed=1, refs=Refs(), limits=SizeLimits(field_bytes=1200)).rows(1)[0]["twice"]
        == "y" * 1200
    )


def test_rendering_stops_at_the_part_that_passes_the_cap() -> None:
    spec = spec_of({"a": {"const": "a"}, "b": {"const": "b"}, "c": {"compute": "{a}{b}{a}{b}"}})
    gen = Generator(spec, seed=1, limits=SizeLimits(field_bytes=1024))
    with pytest.raises(SizeLimitError) as info:
        gen.rows(1, overrides={"a": "x" * 2000, "b": "y" * 10**6})
    assert info.value.size == 2000  # the first part alone: nothing after it was rendered or joined


def test_the_cap_counts_utf8_bytes_and_applies_to_a_lone_placeholder() -> None:
    spec = spec_of({"a": {"const": "é"}, "same": {"compute": "{a}"}, "shout": {"compute": "{a|upper}!"}})
    limits = SizeLimits(field_bytes=1024)
    with pytest.raises(SizeLimitError) as info:
        Generator(spec, seed=1, limits=limits).rows(1, overrides={"a": "é" * 600})  # 600 chars, 1,200 bytes
    assert (info.value.field, info.value.size) == ("same", 1200)
    row = Generator(spec, seed=1, limits=limits).rows(1, overrides={"a": "é" * 500})[0]
    assert row["shout"] == "É" * 500 + "!"


def test_streams_and_shards_are_capped_too() -> None:
    spec = spec_of({"a": {"const": "x" * 100}, "b": {"compute": "{a}" * 20}})
    gen = Generator(spec, seed=1, limits=SizeLimits(field_bytes=1024))
    with pytest.raises(SizeLimitError):
        next(gen.stream(10, batch_size=2))
    with pytest.raises(SizeLimitError):
        gen.rows(1, start=5000)


# -- the catalog tasks ------------------------------------------------------------------------------


def _limits(field_bytes: int = 0, row_bytes: int = 0) -> bytes:
    return attempt_pb2.DataLimits(
        max_template_field_bytes=field_bytes, max_template_row_bytes=row_bytes
    ).SerializeToString()


def test_validating_a_source_applies_the_callers_caps() -> None:
    source = 'id: tmpl_s\nversion: 1\nfields:\n  a: {const: "' + "x" * 3000 + '"}\n'
    assert catalog.validate_template_source(source, "auto", _limits())["ok"]
    refused = catalog.validate_template_source(source, "auto", _limits(field_bytes=2048))
    assert not refused["ok"]
    (issue,) = refused["issues"]
    assert issue["path"] == "fields.a.const" and "3,000 bytes" in issue["message"]


def test_a_preview_row_over_the_row_cap_fails() -> None:
    big = {"id": "tmpl_big", "version": 1, "fields": {"x": {"const": "y" * 60_000}}}
    wide = {
        "id": "tmpl_wide",
        "version": 1,
        "fields": {f"r{i}": {"ref": {"template": "tmpl_big", "field": "x"}} for i in range(20)},
    }
    documents = {"tmpl_big": big, "tmpl_wide": wide}
    result = catalog.preview_rows("tmpl_wide", documents, 2, None, _limits())
    assert not result["ok"]
    assert "preview row 1" in result["error"] and "SEEDBED_MAX_TEMPLATE_ROW_BYTES" in result["error"]
    ok = catalog.preview_rows("tmpl_wide", documents, 2, None, _limits(row_bytes=2 * 2**20))
    assert ok["ok"] and json.dumps(ok["rows"]).count("y" * 60_000) == 40
