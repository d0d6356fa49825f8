"""The console editor's completion data for seedbed.sdk: committed, current, and true to the SDK.

tools/sdk_completions.py reads the SDK's source; these tests pin that the committed JSON is what it
writes now, that the entries the editor relies on are there (`dm.` after `dm = Seedbed()`, `db.` after
`db = dm.connection(...)`), and that the names agree with the SDK as Python imports it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SDK_ROOT = ROOT / "sandbox-images" / "sdk"
COMMITTED = ROOT / "coordinator/seedbed/coordinator/faces/console/static/sdk-completions.json"
REGENERATE = "run python tools/sdk_completions.py and commit the JSON it writes"


def load_tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("sdk_completions", ROOT / "tools" / "sdk_completions.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def tool() -> ModuleType:
    return load_tool()


@pytest.fixture(scope="module")
def data() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(COMMITTED.read_text(encoding="utf-8"))
    return loaded


def test_the_committed_json_is_what_the_tool_writes_now(tool: ModuleType) -> None:
    assert COMMITTED.read_text(encoding="utf-8") == tool.document(), f"the SDK changed: {REGENERATE}"


def test_check_mode_fails_on_a_stale_file(
    tool: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stale = tmp_path / "coordinator" / "sdk-completions.json"
    stale.parent.mkdir()
    stale.write_text("{}\n")
    monkeypatch.setattr(tool, "ROOT", tmp_path)
    monkeypatch.setattr(tool, "OUT", stale)
    assert tool.main(["--check"]) == 1
    assert "is stale: run python tools/sdk_completions.py" in capsys.readouterr().err
    assert tool.main([]) == 0
    assert tool.main(["--check"]) == 0


def test_the_editor_can_follow_a_script_from_seedbed_to_its_rows(data: dict[str, Any]) -> None:
    exports, classes = data["exports"], data["classes"]
    assert data["module"] == "seedbed.sdk"
    assert exports["Seedbed"] == {
        "doc": "The entry point of scenario scripts: `dm = Seedbed()`.",
        "kind": "class",
        "returns": "Seedbed",
        "signature": "()",
    }
    seedbed = classes["Seedbed"]["members"]
    assert seedbed["connection"]["returns"] == "Connection"
    assert seedbed["connection"]["signature"] == "(connection_id: str) -> Connection"
    assert seedbed["template"]["returns"] == "Template"
    assert seedbed["generate"]["returns"] == "RowSet"
    assert seedbed["generate"]["doc"].startswith("`count` rows of a template")
    assert seedbed["workspace"] == {"class": "Workspace", "kind": "attribute", "type": "Workspace"}
    assert seedbed["step"]["signature"] == "(name: str) -> AbstractContextManager[None]"
    connection = classes["Connection"]["members"]
    assert {"insert", "fetch", "execute", "post", "get", "write", "id"} <= set(connection)
    insert = connection["insert"]
    assert insert["kind"] == "method" and "*, on_conflict: str | None = None" in insert["signature"]
    assert classes["Template"]["members"]["rows"]["returns"] == "RowSet"
    assert classes["RowSet"]["members"]["column"]["returns"] == "Column"
    assert classes["RowSet"]["members"]["append"]["doc"] == "Inherited from MutableSequence."
    assert classes["Workspace"]["members"]["read_csv"]["signature"] == (
        "(path: str, **reader_options: Any) -> list[dict[str, str]]"
    )


def test_module_level_objects_carry_their_types(data: dict[str, Any]) -> None:
    exports, classes = data["exports"], data["classes"]
    assert exports["params"]["kind"] == "object" and exports["params"]["class"] == "Params"
    assert classes["Params"]["members"]["get"]["signature"] == "(key, default=None)"
    assert exports["log"]["class"] == "Log"
    log = classes["Log"]["members"]
    assert log["warn"] == log["warning"]
    assert log["info"]["signature"] == "(message: object, **fields: Any) -> None"
    assert exports["run_id"] == {"kind": "object", "type": "str"}
    assert exports["pick_from"]["kind"] == "function" and exports["pick_from"]["returns"] == "Pick"


def test_every_class_named_is_described(data: dict[str, Any]) -> None:
    entries = [*data["exports"].values()]
    for described in data["classes"].values():
        entries += described["members"].values()
    named = {entry[key] for entry in entries for key in ("returns", "class") if key in entry}
    assert named <= set(data["classes"])


# Run with only the SDK on the path, as in a sandbox: the names, their kinds, and each class's
# public members as Python sees them (the SDK's own and those of collections.abc bases).
_INTROSPECT = """
import collections.abc, inspect, json
import seedbed.sdk as sdk
out = {"all": list(sdk.__all__), "kinds": {}, "members": {}}
for name in sdk.__all__:
    value = getattr(sdk, name)
    out["kinds"][name] = "class" if inspect.isclass(value) else (
        "function" if inspect.isfunction(value) else "object")
    cls = value if inspect.isclass(value) else type(value)
    if cls.__module__.startswith("seedbed.sdk"):
        names = set()
        for klass in cls.__mro__:
            if klass.__module__.startswith("seedbed.sdk") or klass.__module__ == "collections.abc":
                names |= {n for n in vars(klass) if not n.startswith("_")}
        out["members"][cls.__name__] = sorted(names)
print(json.dumps(out))
"""


def test_the_names_agree_with_the_sdk_python_imports(data: dict[str, Any]) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _INTROSPECT],
        env={"PYTHONPATH": str(SDK_ROOT), "PATH": os.environ.get("PATH", "")},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    real = json.loads(done.stdout)
    assert list(data["exports"]) == sorted(real["all"])
    for name, kind in real["kinds"].items():
        assert data["exports"][name]["kind"] == kind, name
    for cls, names in real["members"].items():
        described = data["classes"][cls]["members"]
        # Instance attributes set in __init__ are not on the class; everything on it is described.
        assert set(names) <= set(described), cls
        callables = {n for n, entry in described.items() if entry["kind"] != "attribute"}
        assert callables <= set(names), cls


def test_the_tool_reads_types_the_way_a_script_uses_them(tool: ModuleType, tmp_path: Path) -> None:
    sdk = tmp_path / "sdk"
    sdk.mkdir()
    (sdk / "__init__.py").write_text(
        textwrap.dedent(
            '''
            """A tiny SDK."""
            from seedbed.sdk import _state
            from seedbed.sdk._things import Thing, Box, make

            __all__ = ["Box", "Thing", "make", "state", "token"]

            state = _state.current.box

            def __getattr__(name):
                if name == "token":
                    return _state.current.token
                raise AttributeError(name)
            '''
        )
    )
    (sdk / "_things.py").write_text(
        textwrap.dedent(
            '''
            from __future__ import annotations
            import contextlib
            from collections.abc import Iterator, Mapping
            from typing import Any

            class Box(Mapping[str, str]):
                """A box.

                More about the box.
                """

            class Thing:
                """A ``thing``."""

                limit: int = 3

                def __init__(self, name: str, box: Box | None = None) -> None:
                    self.name = name
                    self.box = box
                    self.items: Any = []
                    self.items = list(name)
                    self._hidden = 1

                @property
                def size(self) -> int:
                    """How big."""
                    return 1

                def open(self, path: str, /, mode: str = "r", *rest: str, flag: bool) -> Box | None:
                    """Open it."""

                def either(self) -> Box | Thing:
                    ...

                close = open

                @contextlib.contextmanager
                def session(self) -> Iterator[Box]:
                    yield Box()

            def make(name: str) -> Thing:
                """Make a thing."""
                return Thing(name)
            '''
        )
    )
    (sdk / "_state.py").write_text(
        textwrap.dedent(
            """
            from seedbed.sdk._things import Box

            class _State:
                def __init__(self) -> None:
                    self.box = Box()
                    self.token = ""

            current = _State()
            """
        )
    )
    data = json.loads(tool.document(sdk))
    exports, thing = data["exports"], data["classes"]["Thing"]
    assert exports["state"] == {"class": "Box", "doc": "A box.", "kind": "object", "type": "Box"}
    assert exports["token"] == {"kind": "object", "type": "str"}
    assert exports["make"] == {
        "doc": "Make a thing.",
        "kind": "function",
        "returns": "Thing",
        "signature": "(name: str) -> Thing",
    }
    assert thing["doc"] == "A `thing`."
    assert thing["signature"] == "(name: str, box: Box | None = None)"
    members = thing["members"]
    assert set(members) == {"box", "close", "either", "items", "limit", "name", "open", "session", "size"}
    assert members["box"] == {"class": "Box", "kind": "attribute", "type": "Box | None"}
    assert members["items"] == {"kind": "attribute", "type": "Any"}
    assert members["limit"] == {"kind": "attribute", "type": "int"}
    assert members["size"] == {"doc": "How big.", "kind": "property", "type": "int"}
    assert members["open"] == {
        "doc": "Open it.",
        "kind": "method",
        "returns": "Box",
        "signature": "(path: str, /, mode: str = 'r', *rest: str, flag: bool) -> Box | None",
    }
    assert members["close"] == members["open"]
    assert "returns" not in members["either"]
    assert members["session"] == {"kind": "method", "signature": "() -> AbstractContextManager[Box]"}
    assert set(data["classes"]["Box"]["members"]) == {"get", "items", "keys", "values"}
