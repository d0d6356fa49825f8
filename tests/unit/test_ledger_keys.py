"""How the ledger writes down the keys of the rows a batch created: one JSON shape whatever the path
(the fast one for integer keys included), and no keys at all when they could not be matched again."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from uuid import UUID

from seedbed.worker.ledger._keys import encode_keys


def test_integer_keys_take_the_fast_path_to_the_same_json() -> None:
    text = encode_keys(["id"], [{"id": i, "name": "x"} for i in range(5)])
    assert text is not None and json.loads(text) == {"columns": ["id"], "values": [[0], [1], [2], [3], [4]]}
    assert text == json.dumps(json.loads(text), separators=(",", ":"))


def test_text_and_composite_keys() -> None:
    text = encode_keys(["code"], [{"code": "a,b"}, {"code": 'q"uote'}, {"code": True}])
    assert text is not None and json.loads(text)["values"] == [["a,b"], ['q"uote'], [True]]
    rows = [{"shop": 1, "day": "2024-01-01"}, {"shop": 2, "day": "2024-01-02"}]
    text = encode_keys(["shop", "day"], rows)
    assert text is not None
    assert json.loads(text) == {"columns": ["shop", "day"], "values": [[1, "2024-01-01"], [2, "2024-01-02"]]}


def test_keys_the_database_answered_are_written_as_text_that_casts_back() -> None:
    uid = UUID("6f1c2a10-0000-4000-8000-000000000001")
    text = encode_keys(
        ["id", "at", "day", "amount"],
        [
            {
                "id": uid,
                "at": datetime(2024, 1, 1, 12, tzinfo=UTC),
                "day": date(2024, 1, 2),
                "amount": Decimal("1.10"),
            }
        ],
    )
    assert text is not None
    assert json.loads(text)["values"] == [[str(uid), "2024-01-01T12:00:00+00:00", "2024-01-02", "1.10"]]


def test_no_keys_when_one_is_null_or_cannot_be_matched() -> None:
    assert encode_keys(["id"], [{"id": 1}, {"id": None}]) is None
    assert encode_keys(["a", "b"], [{"a": 1, "b": None}]) is None
    assert encode_keys(["id"], [{"id": b"\x00\x01"}]) is None
