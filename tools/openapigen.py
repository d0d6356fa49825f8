"""Write the REST API's OpenAPI document, or check that the committed one matches the code.

    python tools/openapigen.py          # write proto/openapi/seedbed-v1.json
    python tools/openapigen.py --check  # exit 1 when the committed document has drifted

The document comes from the REST app itself (routes, and schemas derived from the contract's
messages), built offline: no coordinator, store or port is needed.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any, cast

from seedbed.coordinator.app import (
    AccessUseCases,
    ConnectionUseCases,
    RunUseCases,
    ScenarioUseCases,
    TemplateUseCases,
)
from seedbed.coordinator.faces.rest import build_app

OUT = Path(__file__).resolve().parents[1] / "proto" / "openapi" / "seedbed-v1.json"


def document() -> str:
    # The routes only hold the use cases; building the document calls none of them.
    app = build_app(
        cast(RunUseCases, None),
        cast(ScenarioUseCases, None),
        cast(Any, None),
        templates=cast(TemplateUseCases, None),
        connections=cast(ConnectionUseCases, None),
        access=cast(AccessUseCases, None),
        max_body_bytes=1,
        closing=asyncio.Event(),
    )
    return json.dumps(app.openapi(), indent=2, sort_keys=True) + "\n"


def main(argv: list[str]) -> int:
    text = document()
    if "--check" in argv:
        if not OUT.exists() or OUT.read_text() != text:
            print(
                f"{OUT.relative_to(OUT.parents[2])} is stale: run python tools/openapigen.py", file=sys.stderr
            )
            return 1
        print("the OpenAPI document matches the code")
        return 0
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(text)
    print(f"wrote {OUT.relative_to(OUT.parents[2])}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
