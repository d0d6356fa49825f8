"""Regenerate the Python code of the v1 contract, or check that the committed code matches.

    python tools/protogen.py          # write proto/seedbed/api/v1/*_pb2*.py(i)
    python tools/protogen.py --check  # exit 1 when the committed code has drifted

The generated files sit next to their .proto files: with `package seedbed.api.v1;` at
`proto/seedbed/api/v1/`, protoc emits absolute imports that need no rewriting.
"""

from __future__ import annotations

import filecmp
import sys
import tempfile
from pathlib import Path

import grpc_tools
from grpc_tools import protoc

ROOT = Path(__file__).resolve().parents[1] / "proto"
PACKAGE = Path("seedbed/api/v1")


def generate(out: Path) -> None:
    include = Path(grpc_tools.__file__).parent / "_proto"
    sources = sorted(str(p.relative_to(ROOT)) for p in (ROOT / PACKAGE).glob("*.proto"))
    args = [
        "protoc",
        f"-I{ROOT}",
        f"-I{include}",
        f"--python_out={out}",
        f"--pyi_out={out}",
        f"--grpc_python_out={out}",
        *sources,
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")


def main() -> int:
    if "--check" not in sys.argv:
        generate(ROOT)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        generate(Path(tmp))
        fresh = sorted(p.name for p in (Path(tmp) / PACKAGE).iterdir())
        committed = sorted(
            p.name
            for p in (ROOT / PACKAGE).iterdir()
            if p.name.endswith((".py", ".pyi")) and "_pb2" in p.name
        )
        _, mismatch, errors = filecmp.cmpfiles(Path(tmp) / PACKAGE, ROOT / PACKAGE, fresh, shallow=False)
        if fresh != committed or mismatch or errors:
            print(
                "generated code has drifted from the .proto files: "
                f"differs={mismatch} missing={errors} extra={sorted(set(committed) - set(fresh))}; "
                "run `python tools/protogen.py` and commit the result",
                file=sys.stderr,
            )
            return 1
    print("generated code matches the .proto files")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
