"""Document → `TemplateSpec`, collecting every problem (with its path) before failing once.

The document level lives here (keys, id, version, locale, field names, modifiers, the `compute`
graph); each generator kind's options are checked in `_kinds`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, cast

from seedbed.worker.templates import _kinds
from seedbed.worker.templates._errors import Problem, Problems, TemplateValidationError, did_you_mean
from seedbed.worker.templates._faker import DEFAULT_LOCALE
from seedbed.worker.templates._loading import check_size, load_text
from seedbed.worker.templates._pools import MAX_POOL
from seedbed.worker.templates._providers import locale_problem
from seedbed.worker.templates._spec import (
    FIELD_NAME,
    TEMPLATE_ID,
    ComputeGen,
    ConstGen,
    FakerGen,
    FieldSpec,
    GeneratorSpec,
    RefGen,
    TemplateSpec,
)

__all__ = ["parse_template", "parse_templates", "validate_template"]

FORMAT_VERSION = 1
MAX_FIELDS = 500
MAX_DESCRIPTION = 2000
TOP_KEYS = ("id", "version", "description", "locale", "fields")
MODIFIERS = ("unique", "nullable", "locale", "pool", "description")


def parse_template(text: str | bytes, *, fmt: str = "auto") -> TemplateSpec:
    """Parse a YAML or JSON template document (fmt "auto": JSON if it starts with "{", else YAML)."""
    return validate_template(load_text(text, fmt))


def parse_templates(documents: Mapping[str, str | bytes], *, fmt: str = "auto") -> dict[str, TemplateSpec]:
    """Parse several documents (name → text) that belong together, e.g. a scenario's templates folder.

    Besides each document's own problems (paths prefixed with the document's name), reports
    duplicate template ids and `ref` fields naming a template or field that is not in the set.
    Returns the specs by template id.
    """
    problems: list[Problem] = []
    specs: dict[str, TemplateSpec] = {}
    origin: dict[str, str] = {}
    for name, text in documents.items():
        try:
            spec = parse_template(text, fmt=fmt)
        except TemplateValidationError as exc:
            problems.extend(Problem(f"{name}:{p.path}", p.message) for p in exc.problems)
            continue
        if spec.id in specs:
            problems.append(
                Problem(f"{name}:id", f"duplicate template id {spec.id!r} (also in {origin[spec.id]})")
            )
            continue
        specs[spec.id] = spec
        origin[spec.id] = name
    for spec in specs.values():
        for field in spec.fields.values():
            gen = field.generator
            if not isinstance(gen, RefGen):
                continue
            path = f"{origin[spec.id]}:fields.{field.name}.ref"
            target = specs.get(gen.template)
            if target is None:
                problems.append(
                    Problem(
                        path,
                        f"references unknown template {gen.template!r}{did_you_mean(gen.template, specs)}",
                    )
                )
            elif gen.field not in target.fields:
                problems.append(
                    Problem(
                        path,
                        f"template {gen.template!r} has no field {gen.field!r}"
                        f"{did_you_mean(gen.field, target.fields)}",
                    )
                )
    if problems:
        raise TemplateValidationError(problems)
    return specs


def validate_template(doc: Mapping[str, Any]) -> TemplateSpec:
    """Check a template document (already parsed, e.g. received as JSON) and build its spec."""
    if not isinstance(doc, Mapping):
        kind = "a list" if isinstance(doc, list) else type(doc).__name__
        raise TemplateValidationError([Problem("(document)", f"a template must be a mapping, not {kind}")])
    check_size(doc)
    p = Problems()
    for key in doc:
        if key not in TOP_KEYS:
            p.add(key, f"unknown key{did_you_mean(key, TOP_KEYS)}; a template has {', '.join(TOP_KEYS)}")
    template_id = _template_id(doc, p)
    _version(doc, p)
    description = _description(doc.get("description"), "description", p)
    locale = doc.get("locale", DEFAULT_LOCALE)
    problem = locale_problem(locale)
    if problem:
        p.add("locale", problem)
    fields = _fields(doc, locale if not problem else None, p)
    declared = doc["fields"] if isinstance(doc.get("fields"), Mapping) else {}
    _check_computes(fields, declared, p)
    if len(p):
        raise TemplateValidationError(p.items, template_id=template_id)
    return TemplateSpec(  # no problem: the id and the locale are valid strings
        id=cast(str, template_id),
        version=FORMAT_VERSION,
        locale=cast(str, locale),
        fields=fields,
        description=description,
    )


def _template_id(doc: Mapping[str, Any], p: Problems) -> str | None:
    if "id" not in doc:
        p.add("id", "missing: every template needs an id such as 'tmpl_customer'")
        return None
    value = doc["id"]
    if not isinstance(value, str) or not TEMPLATE_ID.match(value):
        p.add("id", f"{value!r} is not a template id: 'tmpl_' followed by 1-64 of a-z, 0-9, '_', '-'")
        return None
    return value


def _version(doc: Mapping[str, Any], p: Problems) -> None:
    if "version" not in doc:
        p.add("version", f"missing: the format version of the document ({FORMAT_VERSION})")
        return
    value = doc["version"]
    if value != FORMAT_VERSION or isinstance(value, bool):
        p.add("version", f"unsupported format version {value!r}: this Seedbed reads version {FORMAT_VERSION}")


def _description(value: Any, path: str, p: Problems) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        p.add(path, f"must be a string, not {type(value).__name__}")
        return None
    if len(value) > MAX_DESCRIPTION:
        p.add(path, f"is {len(value):,} characters; the limit is {MAX_DESCRIPTION:,}")
        return None
    return value


def _fields(doc: Mapping[str, Any], locale: str | None, p: Problems) -> dict[str, FieldSpec]:
    raw = doc.get("fields")
    if raw is None:
        p.add("fields", "missing: a template maps field names to generators")
        return {}
    if not isinstance(raw, Mapping) or not raw:
        p.add("fields", "must be a non-empty mapping of field names to generators")
        return {}
    if len(raw) > MAX_FIELDS:
        p.add("fields", f"has {len(raw):,} fields; the limit is {MAX_FIELDS}")
        return {}
    out: dict[str, FieldSpec] = {}
    for name, value in raw.items():
        path = f"fields.{name}"
        if not FIELD_NAME.match(name):
            p.add(path, "a field name is a letter or '_' then up to 62 letters, digits or '_'")
            continue
        field = _field(name, value, path, locale, p)
        if field is not None:
            out[name] = field
    return out


def _field(name: str, value: Any, path: str, locale: str | None, p: Problems) -> FieldSpec | None:
    if not isinstance(value, Mapping):
        p.add(
            path,
            f"must be a mapping with one generator ({', '.join(_kinds.KINDS)}), not {type(value).__name__}",
        )
        return None
    kinds = [k for k in value if k in _kinds.KINDS]
    for key in value:
        if key not in _kinds.KINDS and key not in MODIFIERS:
            hint = did_you_mean(key, _kinds.KINDS + MODIFIERS) or (
                f"; generators: {', '.join(_kinds.KINDS)}; options: {', '.join(MODIFIERS)}"
            )
            p.add(f"{path}.{key}", f"unknown generator or option {key!r}{hint}")
    if not kinds:
        if all(k in MODIFIERS for k in value):
            p.add(path, f"missing a generator: one of {', '.join(_kinds.KINDS)}")
        return None
    if len(kinds) > 1:
        p.add(path, f"has {len(kinds)} generators ({', '.join(kinds)}): a field has exactly one")
        return None
    kind = kinds[0]
    field_locale = value.get("locale")
    if "locale" in value:
        if kind != "faker":
            p.add(f"{path}.locale", "locale applies only to faker fields")
        elif problem := locale_problem(field_locale):
            p.add(f"{path}.locale", problem)
            field_locale = None
            locale = None
        else:
            locale = field_locale
    before = len(p.items)
    gen: GeneratorSpec | None = _kinds.build(kind, value[kind], f"{path}.{kind}", locale, p)
    unique = _unique(value, kind, path, p)
    nullable = _nullable(value, path, p)
    pool = _pool(value, kind, unique, path, p)
    description = _description(value.get("description"), f"{path}.description", p)
    if gen is None or len(p.items) > before:
        return None
    if field_locale is not None and isinstance(gen, FakerGen):
        gen = dataclasses.replace(gen, locale=field_locale)
    if pool is not None and isinstance(gen, FakerGen):
        gen = dataclasses.replace(gen, pool=pool)
    return FieldSpec(name=name, generator=gen, unique=unique, nullable=nullable, description=description)


def _unique(value: Mapping[str, Any], kind: str, path: str, p: Problems) -> bool:
    unique = value.get("unique", False)
    if not isinstance(unique, bool):
        p.add(f"{path}.unique", f"must be true or false, not {unique!r}")
        return False
    if unique and kind == ConstGen.kind:
        p.add(f"{path}.unique", "a const field cannot be unique: every row has the same value")
    if unique and kind == ComputeGen.kind:
        p.add(f"{path}.unique", "a computed field cannot be unique: make the fields it uses unique instead")
    return unique is True


def _pool(value: Mapping[str, Any], kind: str, unique: bool, path: str, p: Problems) -> int | None:
    if "pool" not in value:
        return None
    pool = value["pool"]
    if kind != FakerGen.kind:
        p.add(f"{path}.pool", "pool applies only to faker fields")
        return None
    if isinstance(pool, bool) or not isinstance(pool, int) or not 1 <= pool <= MAX_POOL:
        p.add(
            f"{path}.pool",
            f"must be the number of Faker values to draw rows from, an integer from 1 to {MAX_POOL:,}, "
            f"got {pool!r}",
        )
        return None
    if unique:
        p.add(
            f"{path}.pool",
            f"a pooled field cannot be unique: its rows repeat {pool:,} values; drop `pool` (each row "
            "calls Faker, with retries on collisions) or `unique`",
        )
        return None
    return pool


def _nullable(value: Mapping[str, Any], path: str, p: Problems) -> float:
    nullable = value.get("nullable", 0.0)
    if isinstance(nullable, bool):
        p.add(f"{path}.nullable", "must be the probability of null, from 0 to 1 (such as 0.1), not a boolean")
        return 0.0
    if not isinstance(nullable, int | float) or not 0 <= nullable <= 1:
        p.add(f"{path}.nullable", f"must be the probability of null, from 0 to 1, got {nullable!r}")
        return 0.0
    return float(nullable)


def _check_computes(fields: Mapping[str, FieldSpec], declared: Mapping[str, Any], p: Problems) -> None:
    """Placeholders must name declared fields (fields that failed validation are not reported again)."""
    deps: dict[str, tuple[str, ...]] = {}
    for name, field in fields.items():
        if isinstance(field.generator, ComputeGen):
            for dep in field.generator.depends_on:
                if dep not in declared:
                    p.add(
                        f"fields.{name}.compute",
                        f"references unknown field {dep!r}{did_you_mean(dep, declared)}",
                    )
            deps[name] = tuple(
                d
                for d in field.generator.depends_on
                if d in fields and isinstance(fields[d].generator, ComputeGen)
            )
    reported: set[str] = set()
    for start in deps:
        cycle = _find_cycle(start, deps)
        if cycle and not reported.intersection(cycle):
            reported.update(cycle)
            p.add(
                f"fields.{cycle[0]}.compute",
                "computed fields form a cycle: " + " → ".join([*cycle, cycle[0]]),
            )


def _find_cycle(start: str, deps: Mapping[str, tuple[str, ...]]) -> list[str] | None:
    path: list[str] = []
    on_path: set[str] = set()
    done: set[str] = set()

    def visit(node: str) -> list[str] | None:
        if node in on_path:
            return path[path.index(node) :]
        if node in done:
            return None
        path.append(node)
        on_path.add(node)
        for nxt in deps.get(node, ()):
            found = visit(nxt)
            if found:
                return found
        path.pop()
        on_path.discard(node)
        done.add(node)
        return None

    return visit(start)


def compute_order(fields: Mapping[str, FieldSpec]) -> list[str]:
    """Computed fields in an order where each comes after the computed fields it uses."""
    order: list[str] = []
    seen: set[str] = set()

    def visit(name: str) -> None:
        if name in seen:
            return
        seen.add(name)
        gen = fields[name].generator
        for dep in gen.depends_on if isinstance(gen, ComputeGen) else ():
            if isinstance(fields[dep].generator, ComputeGen):
                visit(dep)
        order.append(name)

    for name, field in fields.items():
        if isinstance(field.generator, ComputeGen):
            visit(name)
    return order
