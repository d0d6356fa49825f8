"""Write what the console's script editor completes for `seedbed.sdk`, or check the committed copy.

    python tools/sdk_completions.py          # write .../faces/console/static/sdk-completions.json
    python tools/sdk_completions.py --check  # exit 1 when the committed file has drifted

The editor offers the names `from seedbed.sdk import …` gives, and after `dm.` the members of what
`dm` holds: it follows `dm = Seedbed()` and `db = dm.connection("x")` through the classes and return
annotations recorded here. The SDK's source is read with `ast`, never imported: the SDK is a
distribution of its own (not installed beside the coordinator), importing it binds a run context,
and the source's annotations, as written, are what a script's author should see. Rejected: a
hand-kept list (it drifts from the SDK) and `inspect` on the imported package (needs the SDK on the
path and prints resolved annotations such as `typing.Optional[int]` instead of `int | None`).

The document (keys sorted, so the output is stable):

    exports  {name: entry}  the package's __all__: what `from seedbed.sdk import …` offers
    classes  {name: {doc, signature, bases, members: {name: entry}}}  each class an export leads to

An entry has `kind` (class, function, method, property, attribute, object) and `doc` (the
docstring's summary on one line, when there is one). A callable (class, function, method) has
`signature` ("(count: int, *, seed: int | None = None) -> RowSet") and `returns`, the SDK class its
call gives, when it gives one; a value (property, attribute, object) has `type` (its annotation or
inferred type, as text) and `class`, the SDK class it holds, when it holds one. Members inherited
from `collections.abc` bases (a `Mapping`'s `get`, a `MutableSequence`'s `append`) are included.
"""

from __future__ import annotations

import ast
import builtins
import collections.abc
import inspect
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SDK = ROOT / "sandbox-images" / "sdk" / "seedbed" / "sdk"
PACKAGE = "seedbed.sdk"
CONSOLE = ROOT / "coordinator" / "seedbed" / "coordinator" / "faces" / "console"
OUT = CONSOLE / "static" / "sdk-completions.json"

Entry = dict[str, Any]


@dataclass
class Module:
    """One SDK source file: its top-level classes, functions, assignments and imports."""

    name: str  # "" for the package itself, else the submodule ("_data")
    tree: ast.Module
    classes: dict[str, ast.ClassDef] = field(default_factory=dict)
    functions: dict[str, ast.FunctionDef] = field(default_factory=dict)
    values: dict[str, ast.expr] = field(default_factory=dict)
    # local name -> (module, name): ("seedbed.sdk._data", "Connection"), ("collections.abc",
    # "Mapping"), or (module, "") for a module imported whole
    imports: dict[str, tuple[str, str]] = field(default_factory=dict)


@dataclass(frozen=True)
class ClassRef:
    module: str
    name: str


@dataclass(frozen=True)
class Typed:
    """What an expression holds: its type as text, and the SDK class when it is one."""

    text: str
    cls: ClassRef | None = None


def load(sdk: Path) -> dict[str, Module]:
    modules: dict[str, Module] = {}
    for path in sorted(sdk.glob("*.py")):
        name = "" if path.stem == "__init__" else path.stem
        module = Module(name, ast.parse(path.read_text(), filename=path.name))
        for node in module.tree.body:
            if isinstance(node, ast.ClassDef):
                module.classes[node.name] = node
            elif isinstance(node, ast.FunctionDef):
                module.functions[node.name] = node
            elif isinstance(node, ast.Assign) and len(node.targets) == 1:
                target = node.targets[0]
                if isinstance(target, ast.Name):
                    module.values[target.id] = node.value
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value:
                module.values[node.target.id] = node.value
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                for alias in node.names:
                    local = alias.asname or alias.name
                    if node.module == PACKAGE and (sdk / f"{alias.name}.py").exists():
                        module.imports[local] = (f"{PACKAGE}.{alias.name}", "")
                    else:
                        module.imports[local] = (node.module, alias.name)
        modules[name] = module
    return modules


def summary(node: ast.AST) -> str:
    """The docstring's first paragraph, on one line."""
    if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Module)):
        return ""
    doc = ast.get_docstring(node) or ""
    # ``code`` (reStructuredText) reads as `code` in a hint.
    return " ".join(doc.strip().split("\n\n")[0].split()).replace("``", "`")


def signature(args: ast.arguments, returns: ast.expr | None, *, drop_first: bool) -> str:
    def one(arg: ast.arg, default: ast.expr | None = None) -> str:
        text = arg.arg + (f": {ast.unparse(arg.annotation)}" if arg.annotation else "")
        if default is not None:
            text += f" = {ast.unparse(default)}" if arg.annotation else f"={ast.unparse(default)}"
        return text

    positional = [*args.posonlyargs, *args.args]
    defaults: list[ast.expr | None] = [None] * (len(positional) - len(args.defaults)) + [*args.defaults]
    parts = [one(arg, default) for arg, default in zip(positional, defaults, strict=True)]
    if args.posonlyargs:
        parts.insert(len(args.posonlyargs), "/")
    if drop_first and positional:
        parts.pop(0)
    if args.vararg:
        parts.append("*" + one(args.vararg))
    elif args.kwonlyargs:
        parts.append("*")
    parts += [one(arg, default) for arg, default in zip(args.kwonlyargs, args.kw_defaults, strict=True)]
    if args.kwarg:
        parts.append("**" + one(args.kwarg))
    text = f"({', '.join(parts)})"
    return text + (f" -> {ast.unparse(returns)}" if returns is not None else "")


def decorators(node: ast.FunctionDef) -> set[str]:
    names = set()
    for decorator in node.decorator_list:
        names.add(ast.unparse(decorator).rsplit(".", 1)[-1])
    return names


class Reader:
    """Resolves names, types and members across the SDK's modules."""

    def __init__(self, modules: dict[str, Module]) -> None:
        self.modules = modules
        self._members: dict[ClassRef, dict[str, Entry]] = {}

    # -- names ------------------------------------------------------------------------------------

    def module(self, dotted: str) -> Module | None:
        if dotted == PACKAGE:
            return self.modules.get("")
        prefix = PACKAGE + "."
        return self.modules.get(dotted[len(prefix) :]) if dotted.startswith(prefix) else None

    def resolve(self, module: Module, name: str) -> tuple[str, Any] | None:
        """("class", ClassRef), ("function", (Module, node)), ("value", (Module, expr)),
        ("module", Module), ("external", (module, name)), or None."""
        if name in module.classes:
            return "class", ClassRef(module.name, name)
        if name in module.functions:
            return "function", (module, module.functions[name])
        if name in module.values:
            return "value", (module, module.values[name])
        if name in module.imports:
            source, imported = module.imports[name]
            target = self.module(source)
            if target is None:
                return "external", (source, imported)
            if not imported:
                return "module", target
            return self.resolve(target, imported)
        return None

    def node(self, ref: ClassRef) -> ast.ClassDef:
        return self.modules[ref.module].classes[ref.name]

    # -- types ------------------------------------------------------------------------------------

    def annotation(self, module: Module, ann: ast.expr | None) -> Typed | None:
        if ann is None:
            return None
        text = ann.value if isinstance(ann, ast.Constant) and isinstance(ann.value, str) else ast.unparse(ann)
        expr = ast.parse(text, mode="eval").body
        # X | None holds an X when it holds anything (any other union holds no one class).
        while isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.BitOr):
            if isinstance(expr.right, ast.Constant) and expr.right.value is None:
                expr = expr.left
            elif isinstance(expr.left, ast.Constant) and expr.left.value is None:
                expr = expr.right
            else:
                return Typed(text)
        if isinstance(expr, ast.Name):
            found = self.resolve(module, expr.id)
            if found and found[0] == "class":
                return Typed(text, found[1])
        return Typed(text)

    def type_of(self, module: Module, expr: ast.expr, local: dict[str, Typed] | None = None) -> Typed | None:
        if isinstance(expr, ast.Constant):
            return Typed(type(expr.value).__name__)
        if isinstance(expr, ast.Name):
            if local and expr.id in local:
                return local[expr.id]
            found = self.resolve(module, expr.id)
            if found and found[0] == "value":
                return self.type_of(*found[1])
            return None
        if isinstance(expr, ast.Call):
            return self.call_type(module, expr.func)
        if isinstance(expr, ast.Attribute):
            if isinstance(expr.value, ast.Name):
                found = self.resolve(module, expr.value.id)
                if found and found[0] == "module":
                    return self.type_of(found[1], ast.Name(expr.attr))
            owner = self.type_of(module, expr.value, local)
            if owner and owner.cls:
                member = self.members(owner.cls).get(expr.attr)
                if member and "type" in member:
                    return self.typed(member)
        return None

    def call_type(self, module: Module, func: ast.expr) -> Typed | None:
        if isinstance(func, ast.Name):
            found = self.resolve(module, func.id)
            if found is None and isinstance(getattr(builtins, func.id, None), type):
                return Typed(func.id)  # list(columns)
            if found and found[0] == "class":
                return Typed(func.id, found[1])
            if found and found[0] == "function":
                where, node = found[1]
                return self.annotation(where, node.returns)
        return None

    def typed(self, entry: Entry) -> Typed:
        cls = entry.get("class")
        return Typed(entry["type"], self.find(cls) if cls else None)

    def find(self, name: str) -> ClassRef:
        for module in self.modules.values():
            if name in module.classes:
                return ClassRef(module.name, name)
        raise KeyError(name)

    # -- entries ----------------------------------------------------------------------------------

    def callable_entry(self, module: Module, node: ast.FunctionDef, kind: str, *, drop_first: bool) -> Entry:
        returns: ast.expr | None = node.returns
        if "contextmanager" in decorators(node) and isinstance(returns, ast.Subscript):
            # What `with` gets is the yielded value; the call itself gives a context manager.
            returns = ast.Subscript(ast.Name("AbstractContextManager"), returns.slice)
        entry: Entry = {"kind": kind, "signature": signature(node.args, returns, drop_first=drop_first)}
        typed = self.annotation(module, node.returns)
        if typed and typed.cls and returns is node.returns:
            entry["returns"] = typed.cls.name
        return with_doc(entry, summary(node))

    def value_entry(self, kind: str, typed: Typed | None, doc: str = "") -> Entry:
        entry: Entry = {"kind": kind, "type": typed.text if typed else "Any"}
        if typed and typed.cls:
            entry["class"] = typed.cls.name
        return with_doc(entry, doc)

    def members(self, ref: ClassRef) -> dict[str, Entry]:
        if ref not in self._members:
            self._members[ref] = {}  # a cycle through a base ends here
            self._members[ref] = self._read_members(ref)
        return self._members[ref]

    def _read_members(self, ref: ClassRef) -> dict[str, Entry]:
        module, node = self.modules[ref.module], self.node(ref)
        members: dict[str, Entry] = {}
        for base in node.bases:
            base_expr = base.value if isinstance(base, ast.Subscript) else base
            if not isinstance(base_expr, ast.Name):
                continue
            found = self.resolve(module, base_expr.id)
            if found and found[0] == "class":
                members.update(self.members(found[1]))
            elif found and found[0] == "external" and found[1][0] == "collections.abc":
                members.update(abc_members(found[1][1]))
        for statement in node.body:
            if isinstance(statement, ast.FunctionDef):
                names = decorators(statement)
                if statement.name == "__init__":
                    members.update(self._instance_attributes(module, statement))
                elif statement.name.startswith("_") or names & {"setter", "deleter"}:
                    continue
                elif "property" in names:
                    typed = self.annotation(module, statement.returns)
                    members[statement.name] = self.value_entry("property", typed, summary(statement))
                else:
                    members[statement.name] = self.callable_entry(
                        module, statement, "method", drop_first="staticmethod" not in names
                    )
            elif isinstance(statement, ast.Assign) and len(statement.targets) == 1:
                target = statement.targets[0]
                if isinstance(target, ast.Name) and not target.id.startswith("_"):
                    value = statement.value
                    if isinstance(value, ast.Name) and value.id in members:  # warn = warning
                        members[target.id] = members[value.id]
                    else:
                        members[target.id] = self.value_entry("attribute", self.type_of(module, value))
            elif (
                isinstance(statement, ast.AnnAssign)
                and isinstance(statement.target, ast.Name)
                and not statement.target.id.startswith("_")
            ):
                typed = self.annotation(module, statement.annotation)
                members[statement.target.id] = self.value_entry("attribute", typed)
        return members

    def _instance_attributes(self, module: Module, init: ast.FunctionDef) -> dict[str, Entry]:
        """`self.x = …` in __init__, typed by annotation, by the parameter it copies, or by the
        class it constructs. An annotated assignment wins, else the first in the source."""
        params = {
            arg.arg: typed
            for arg in [*init.args.posonlyargs, *init.args.args, *init.args.kwonlyargs]
            if (typed := self.annotation(module, arg.annotation)) is not None
        }
        found: dict[str, Entry] = {}
        statements = [node for node in ast.walk(init) if isinstance(node, (ast.Assign, ast.AnnAssign))]
        statements.sort(key=lambda node: (not isinstance(node, ast.AnnAssign), node.lineno, node.col_offset))
        for statement in statements:
            value: ast.expr | None = statement.value
            ann = statement.annotation if isinstance(statement, ast.AnnAssign) else None
            targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
            for target in targets:
                if (
                    isinstance(target, ast.Attribute)
                    and isinstance(target.value, ast.Name)
                    and target.value.id == "self"
                    and not target.attr.startswith("_")
                    and target.attr not in found
                ):
                    typed = self.annotation(module, ann) or (
                        self.type_of(module, value, params) if value is not None else None
                    )
                    found[target.attr] = self.value_entry("attribute", typed)
        return found

    def class_entry(self, ref: ClassRef) -> dict[str, Any]:
        node = self.node(ref)
        return with_doc(
            {
                "bases": [ast.unparse(base) for base in node.bases],
                "members": self.members(ref),
                "signature": self.constructor(ref),
            },
            summary(node),
        )

    def constructor(self, ref: ClassRef) -> str:
        """The signature of calling the class: its own __init__ or the nearest SDK base's."""
        module, node = self.modules[ref.module], self.node(ref)
        for statement in node.body:
            if isinstance(statement, ast.FunctionDef) and statement.name == "__init__":
                return signature(statement.args, None, drop_first=True)
        for base in node.bases:
            if not isinstance(base, ast.Name):
                continue
            found = self.resolve(module, base.id)
            if found and found[0] == "class":
                return self.constructor(found[1])
            builtin = getattr(builtins, base.id, None)
            if found is None and isinstance(builtin, type) and issubclass(builtin, BaseException):
                return "(*args: object)"
        return "()"

    # -- the package ------------------------------------------------------------------------------

    def exports(self) -> list[str]:
        package = self.modules[""]
        names = package.values.get("__all__")
        if not isinstance(names, (ast.List, ast.Tuple)):
            raise SystemExit(f"{PACKAGE}'s __init__ has no literal __all__")
        return [ast.literal_eval(element) for element in names.elts]

    def export_entry(self, name: str) -> Entry:
        package = self.modules[""]
        found = self.resolve(package, name)
        if found is None:
            return self.value_entry("object", self._lazy_attribute(name))
        kind, what = found
        if kind == "class":
            node = self.node(what)
            entry = {"kind": "class", "returns": what.name, "signature": self.constructor(what)}
            return with_doc(entry, summary(node))
        if kind == "function":
            where, node = what
            return self.callable_entry(where, node, "function", drop_first=False)
        if kind == "value":
            typed = self.type_of(*what)
            doc = summary(self.node(typed.cls)) if typed and typed.cls else ""
            return self.value_entry("object", typed, doc)
        raise SystemExit(f"{PACKAGE}.{name} is a {kind}: the completion data cannot describe it")

    def _lazy_attribute(self, name: str) -> Typed | None:
        """A name the package's module-level __getattr__ answers: `if name == "x": return …`."""
        package = self.modules[""]
        getter = package.functions.get("__getattr__")
        for statement in ast.walk(getter) if getter else ():
            if (
                isinstance(statement, ast.If)
                and isinstance(statement.test, ast.Compare)
                and isinstance(statement.test.comparators[0], ast.Constant)
                and statement.test.comparators[0].value == name
                and isinstance(statement.body[0], ast.Return)
                and statement.body[0].value is not None
            ):
                return self.type_of(package, statement.body[0].value)
        raise SystemExit(f"{PACKAGE}.__all__ names {name!r}, which the package does not define")


def with_doc(entry: dict[str, Any], doc: str) -> dict[str, Any]:
    if doc:
        entry["doc"] = doc
    return entry


def abc_members(name: str) -> dict[str, Entry]:
    """The public methods a class gets from a `collections.abc` base (`get`, `keys`, `append`, …)."""
    base = getattr(collections.abc, name, None)
    if not isinstance(base, type):
        return {}
    members: dict[str, Entry] = {}
    for member in sorted(dir(base)):
        value = getattr(base, member)
        if member.startswith("_") or not inspect.isfunction(value):
            continue
        parameters = list(inspect.signature(value).parameters.values())[1:]
        # The standard library's docstrings are not repeated: they may change between Python
        # versions, and the file must not.
        text = str(inspect.Signature(parameters))
        members[member] = {"doc": f"Inherited from {name}.", "kind": "method", "signature": text}
    return members


def document(sdk: Path = SDK) -> str:
    reader = Reader(load(sdk))
    exports = {name: reader.export_entry(name) for name in reader.exports()}
    # Every class an export leads to, through return types and attribute types.
    classes: dict[str, dict[str, Any]] = {}
    pending = [entry.get("returns") or entry.get("class") for entry in exports.values()]
    while pending:
        name = pending.pop()
        if not name or name in classes:
            continue
        ref = reader.find(name)
        classes[name] = reader.class_entry(ref)
        for member in classes[name]["members"].values():
            pending += [member.get("returns"), member.get("class")]
    names = [ref for module in reader.modules.values() for ref in module.classes]
    twins = sorted({name for name in classes if names.count(name) > 1})
    if twins:
        raise SystemExit(f"classes of the same name in two SDK modules: {', '.join(twins)}")
    body = {"classes": classes, "exports": exports, "module": PACKAGE}
    return json.dumps(body, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    text = document()
    where = OUT.relative_to(ROOT)
    if "--check" in argv:
        if not OUT.exists() or OUT.read_text(encoding="utf-8") != text:
            print(f"{where} is stale: run python tools/sdk_completions.py", file=sys.stderr)
            return 1
        print("the editor's completion data matches the SDK")
        return 0
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {where}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
