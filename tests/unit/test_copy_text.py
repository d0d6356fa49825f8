"""COPY text from generated columns: every value as PostgreSQL's text format reads it back."""

from __future__ import annotations

import pytest

from seedbed.worker.sinks._copytext import NulInValue, copy_text


def test_columns_become_tab_separated_lines_with_escapes() -> None:
    payload, count = copy_text(
        {
            "name": ["Ann", "tab\there", "back\\slash", "new\nline\r"],
            "n": [1, None, 3, -4],
            "ok": [True, False, None, True],
            "x": [1.5, float("nan"), float("inf"), 0.1],
            "doc": [{"a": [1, "t\tb"]}, None, [1, 2], "plain"],
        }
    )
    assert count == 4
    assert payload.decode().split("\n") == [
        'Ann\t1\tt\t1.5\t{"a":[1,"t\\\\tb"]}',
        "tab\\there\t\\N\tf\tNaN\t\\N",
        "back\\\\slash\t3\t\\N\tInfinity\t[1,2]",
        "new\\nline\\r\t-4\tt\t0.1\tplain",
        "",
    ]


def test_a_nul_character_is_refused_with_its_row_and_column() -> None:
    with pytest.raises(NulInValue, match=r"row 12, column 'name'"):
        copy_text({"id": [1, 2, 3], "name": ["a", "b\x00", "c"]}, first_row=11)
    # Inside JSON a NUL is the escape \u0000 (text that holds no NUL): kept, its backslash escaped.
    assert copy_text({"doc": [{"k": "\x00"}]})[0] == b'{"k":"\\\\u0000"}\n'


def test_columns_of_different_lengths_and_empty_input() -> None:
    with pytest.raises(ValueError, match="column 'b' has 1 values, not 2"):
        copy_text({"a": [1, 2], "b": [1]})
    assert copy_text({}) == (b"", 0)
    assert copy_text({"a": []}) == (b"", 0)
