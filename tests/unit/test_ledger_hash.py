"""The ledger's content hash: equal batches hash equal however they were built; any change shows."""

from __future__ import annotations

import json
from datetime import date

from seedbed.worker.ledger import content_hash

ROWS = [
    {"id": i, "name": "Ann" if i % 2 else "Bob", "score": i / 3, "ok": i % 3 == 0, "x": None}
    for i in range(50)
]
HEADER = {"op": "insert", "table": "customers"}


def test_equal_rows_hash_equal_whether_or_not_their_strings_are_shared() -> None:
    # Rows built by a script share string objects; the same rows parsed from JSON do not.
    parsed = json.loads(json.dumps(ROWS))
    assert content_hash(HEADER, ROWS) == content_hash(HEADER, parsed)
    assert content_hash(HEADER, ROWS) == content_hash(dict(reversed(HEADER.items())), ROWS)


def test_any_change_changes_the_hash() -> None:
    base = content_hash(HEADER, ROWS)
    changed = [dict(r) for r in ROWS]
    changed[17]["score"] = changed[17]["score"] + 1e-9
    assert content_hash(HEADER, changed) != base
    assert content_hash(HEADER, list(reversed(ROWS))) != base  # order matters
    assert content_hash({**HEADER, "table": "orders"}, ROWS) != base
    assert content_hash(HEADER, [{**r, "id": str(r["id"])} for r in ROWS]) != base  # types matter
    assert content_hash(HEADER, ROWS[:-1]) != base


def test_values_outside_json_still_hash_stably() -> None:
    rows = [{"id": 1, "born": date(1990, 5, 17)}]
    assert content_hash(HEADER, rows) == content_hash(HEADER, [{"id": 1, "born": date(1990, 5, 17)}])
    assert content_hash(HEADER, rows) != content_hash(HEADER, [{"id": 1, "born": date(1990, 5, 18)}])
