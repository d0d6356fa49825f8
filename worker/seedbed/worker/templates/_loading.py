"""Template text → a plain document (dicts, lists, JSON scalars), with every size guard applied.

YAML is read with a `SafeLoader` narrowed to the YAML 1.2 core schema: `yes`/`no`/`on`/`off` stay
strings (no "Norway problem" in a list of country codes), dates stay strings, `010` is ten, and
sexagesimal numbers do not exist. Duplicate mapping keys are an error in both formats (YAML and the
`json` module silently keep the last one). Aliases are allowed, but every document is walked with a
budget on nodes, depth and characters *as expanded*, so an alias bomb fails fast instead of
exhausting memory later (rejected: forbidding anchors outright, which breaks harmless reuse).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

import yaml

from seedbed.worker.templates._errors import Problem, TemplateValidationError

MAX_DOCUMENT_BYTES = 256 * 1024
MAX_NODES = 50_000
MAX_DEPTH = 32
DOC = "(document)"


class _DuplicateKey(yaml.YAMLError):
    pass


class _CoreSchemaLoader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 core-schema scalars and duplicate-key detection."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, str | int | float | bool) or key is None:
                if key in seen:
                    mark = key_node.start_mark
                    raise _DuplicateKey(
                        f"duplicate key {key!r} at line {mark.line + 1}, column {mark.column + 1}"
                    )
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _construct_int(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> int:
    text = str(loader.construct_scalar(node))
    if text.startswith(("0x", "0o")):
        return int(text[2:], 16 if text[1] == "x" else 8)
    return int(text, 10)


def _construct_float(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> float:
    text = str(loader.construct_scalar(node)).lower()
    if text.lstrip("+-") in (".inf", ".nan"):
        return float(text.replace(".", ""))
    return float(text)


def _install_core_schema() -> None:
    resolvers: dict[str | None, list[tuple[str, re.Pattern[str]]]] = {}
    dropped = {
        "tag:yaml.org,2002:bool",
        "tag:yaml.org,2002:int",
        "tag:yaml.org,2002:float",
        "tag:yaml.org,2002:timestamp",
        "tag:yaml.org,2002:null",
    }
    for first, entries in yaml.SafeLoader.yaml_implicit_resolvers.items():
        kept = [(tag, rx) for tag, rx in entries if tag not in dropped]
        if kept:
            resolvers[first] = kept
    _CoreSchemaLoader.yaml_implicit_resolvers = resolvers
    core = [
        ("tag:yaml.org,2002:null", r"^(?:~|null|Null|NULL|)$", list("~nN") + [""]),
        ("tag:yaml.org,2002:bool", r"^(?:true|True|TRUE|false|False|FALSE)$", list("tTfF")),
        ("tag:yaml.org,2002:int", r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", list("-+0123456789")),
        (
            "tag:yaml.org,2002:float",
            r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
            list("-+.0123456789"),
        ),
    ]
    for tag, pattern, first in core:
        _CoreSchemaLoader.add_implicit_resolver(tag, re.compile(pattern), first)
    _CoreSchemaLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)
    _CoreSchemaLoader.add_constructor("tag:yaml.org,2002:float", _construct_float)


_install_core_schema()


def _fail(message: str) -> TemplateValidationError:
    return TemplateValidationError([Problem(DOC, message)])


def load_text(text: str | bytes, fmt: str) -> Any:
    """Parse `text` as YAML or JSON (fmt "auto" picks JSON when it starts with "{")."""
    if fmt not in ("auto", "yaml", "json"):
        raise ValueError(f"fmt must be 'auto', 'yaml' or 'json', not {fmt!r}")
    if isinstance(text, bytes):
        size = len(text)
        if size > MAX_DOCUMENT_BYTES:
            raise _fail(f"document is {size:,} bytes; the limit is {MAX_DOCUMENT_BYTES:,}")
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _fail(f"document is not valid UTF-8 ({exc.reason} at byte {exc.start})") from exc
    elif not isinstance(text, str):
        raise TypeError(f"template text must be str or bytes, not {type(text).__name__}")
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_DOCUMENT_BYTES:
        raise _fail(f"document is {size:,} bytes; the limit is {MAX_DOCUMENT_BYTES:,}")
    if fmt == "auto":
        fmt = "json" if text.lstrip().startswith("{") else "yaml"
    doc = _load_json(text) if fmt == "json" else _load_yaml(text)
    check_size(doc)
    return doc


def _load_json(text: str) -> Any:
    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in items:
            if key in out:
                raise _fail(f"duplicate key {key!r} in a JSON object")
            out[key] = value
        return out

    def constant(name: str) -> Any:
        raise _fail(f"{name} is not a JSON value")

    try:
        return json.loads(text, object_pairs_hook=pairs, parse_constant=constant)
    except json.JSONDecodeError as exc:
        raise _fail(f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from exc
    except RecursionError as exc:
        raise _fail(f"document is nested deeper than {MAX_DEPTH} levels") from exc


def _load_yaml(text: str) -> Any:
    try:
        loader = _CoreSchemaLoader(text)
        try:
            return loader.get_single_data()
        finally:
            loader.dispose()
    except _DuplicateKey as exc:
        raise _fail(str(exc)) from exc
    except yaml.MarkedYAMLError as exc:
        where = ""
        if exc.problem_mark is not None:
            where = f" at line {exc.problem_mark.line + 1}, column {exc.problem_mark.column + 1}"
        detail = " ".join(p for p in (exc.context, exc.problem) if p)
        raise _fail(f"invalid YAML{where}: {detail}") from exc
    except yaml.YAMLError as exc:
        raise _fail(f"invalid YAML: {exc}") from exc
    except RecursionError as exc:
        raise _fail(f"document is nested deeper than {MAX_DEPTH} levels") from exc


def check_size(doc: Any) -> None:
    """Walk `doc` as expanded (aliases count every time they are used) and enforce the budgets.

    Also rejects values that are not JSON: non-string keys, non-finite floats, other types.
    """
    budget = [MAX_NODES, MAX_DOCUMENT_BYTES]  # nodes, characters

    def walk(value: Any, depth: int, path: str) -> None:
        budget[0] -= 1
        if budget[0] < 0:
            raise _fail(f"document has more than {MAX_NODES:,} values (counting each use of a YAML alias)")
        if depth > MAX_DEPTH:
            raise _fail(f"document is nested deeper than {MAX_DEPTH} levels")
        if isinstance(value, str):
            budget[1] -= len(value)
        elif isinstance(value, Mapping):
            for key, item in value.items():
                if not isinstance(key, str):
                    raise _fail(f"{path or 'top level'}: key {key!r} is not a string")
                budget[1] -= len(key)
                walk(item, depth + 1, f"{path}.{key}" if path else key)
        elif isinstance(value, list | tuple):
            for index, item in enumerate(value):
                walk(item, depth + 1, f"{path}[{index}]")
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise _fail(f"{path}: {value!r} is not a JSON number")
        elif not (value is None or isinstance(value, bool | int)):
            raise _fail(f"{path or 'top level'}: {type(value).__name__} is not a JSON value")
        budget[1] -= 8
        if budget[1] < 0:
            raise _fail(
                f"document expands to more than {MAX_DOCUMENT_BYTES:,} characters "
                "(counting each use of a YAML alias)"
            )

    walk(doc, 0, "")
