"""The file sink on the real file system: CSV / JSON Lines, atomic replacement, refused names."""

from __future__ import annotations

import csv
import json
import os
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from seedbed.worker.sinks import (
    ConfigurationError,
    ConnectionSpec,
    FileSink,
    InvalidRequestError,
    SerializationError,
    open_sink,
)

ROWS: list[dict[str, Any]] = [
    {"id": 1, "name": 'Ann, "the" first', "active": True, "score": 1.5, "note": None, "tags": ["a", "b"]},
    {"id": 2, "name": "Bob\nsecond line", "active": False, "score": 2, "note": "x", "tags": {"k": 1}},
]


@pytest.fixture
def sink(tmp_path: Path) -> FileSink:
    opened = open_sink(ConnectionSpec("conn_files", "file"), artifacts_dir=tmp_path / "artifacts")
    assert isinstance(opened, FileSink)
    return opened


def listing(directory: Path) -> list[str]:
    return sorted(os.listdir(directory))


def test_csv_has_the_first_rows_keys_as_header(sink: FileSink) -> None:
    result = sink.write("customers.csv", ROWS)

    assert result.path == sink.directory / "customers.csv"
    assert result.count == 2 and result.size_bytes == result.path.stat().st_size
    with result.path.open(newline="", encoding="utf-8") as f:
        read = list(csv.reader(f))
    assert read == [
        ["id", "name", "active", "score", "note", "tags"],
        ["1", 'Ann, "the" first', "true", "1.5", "", '["a","b"]'],
        ["2", "Bob\nsecond line", "false", "2", "x", '{"k":1}'],
    ]
    assert listing(sink.directory) == ["customers.csv"]


def test_jsonl_writes_one_object_per_line(sink: FileSink) -> None:
    result = sink.write("customers.jsonl", [*ROWS, {"other": "shape"}], fmt="jsonl")
    lines = result.path.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == [*ROWS, {"other": "shape"}]


def test_append_keeps_the_content_and_the_header(sink: FileSink) -> None:
    sink.write("c.csv", ROWS[:1])
    sink.write("c.csv", ROWS[1:], append=True)
    sink.write("c.jsonl", ROWS[:1], fmt="jsonl", append=True)  # appending to nothing creates it
    sink.write("c.jsonl", ROWS[1:], fmt="jsonl", append=True)

    with (sink.directory / "c.csv").open(newline="", encoding="utf-8") as f:
        assert [row["id"] for row in csv.DictReader(f)] == ["1", "2"]
    lines = (sink.directory / "c.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["id"] for line in lines] == [1, 2]
    with pytest.raises(InvalidRequestError, match="header"):
        sink.write("c.csv", [{"id": 3}], append=True)
    assert listing(sink.directory) == ["c.csv", "c.jsonl"]


def test_a_failed_write_leaves_the_old_file_and_no_partial_file(sink: FileSink) -> None:
    old = sink.write("customers.csv", ROWS).path.read_bytes()
    rows = [{**ROWS[0], "id": i} for i in range(1000)]
    rows[999]["note"] = date(2024, 1, 1)

    for fmt in ("csv", "jsonl"):
        with pytest.raises(SerializationError) as caught:
            sink.write("customers.csv", rows, fmt=fmt)  # type: ignore[arg-type]
        assert (caught.value.row, caught.value.field, caught.value.type_name) == (999, "note", "date")
        with pytest.raises(SerializationError):
            sink.write("customers.csv", rows, fmt=fmt, append=True)  # type: ignore[arg-type]
        with pytest.raises(SerializationError):
            sink.write("fresh.csv", rows, fmt=fmt)  # type: ignore[arg-type]

    assert (sink.directory / "customers.csv").read_bytes() == old
    assert listing(sink.directory) == ["customers.csv"]  # no temporary file left behind


def test_csv_rows_must_share_one_shape(sink: FileSink) -> None:
    with pytest.raises(InvalidRequestError, match="row 1 has different fields"):
        sink.write("x.csv", [{"a": 1}, {"b": 2}])
    assert listing(sink.directory) == []


@pytest.mark.parametrize(
    "name",
    [
        "",
        "../escape.csv",
        "..",
        ".",
        ".hidden",
        "/etc/passwd",
        "a/b.csv",
        "a\\b.csv",
        "nul\x00.csv",
        "cr\r.csv",
        "x" * 201,
    ],
)
def test_bad_names_are_refused(sink: FileSink, name: str) -> None:
    with pytest.raises(InvalidRequestError, match="invalid file name"):
        sink.write(name, ROWS)
    assert listing(sink.directory) == []
    assert not (sink.directory.parent / "escape.csv").exists()


def test_names_up_to_200_characters_and_unicode_are_fine(sink: FileSink) -> None:
    sink.write("x" * 196 + ".csv", ROWS)
    sink.write("clientes-españa.csv", ROWS)
    assert len(listing(sink.directory)) == 2


def test_symlinks_are_replaced_or_refused_never_followed(sink: FileSink, tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("keep me")
    (sink.directory / "link.csv").symlink_to(outside)

    with pytest.raises(InvalidRequestError, match="cannot append"):
        sink.write("link.csv", ROWS, append=True)
    sink.write("link.csv", ROWS)  # replaces the link itself

    assert outside.read_text() == "keep me"
    assert not (sink.directory / "link.csv").is_symlink()


def test_bad_format_and_options(sink: FileSink, tmp_path: Path) -> None:
    with pytest.raises(InvalidRequestError, match="fmt"):
        sink.write("x.xml", ROWS, fmt="xml")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="unknown option 'root'"):
        open_sink(ConnectionSpec("conn_files", "file", {"root": "/"}), artifacts_dir=tmp_path)
    (tmp_path / "a-file").write_text("")
    with pytest.raises(ConfigurationError, match="not usable"):
        open_sink(ConnectionSpec("conn_files", "file"), artifacts_dir=tmp_path / "a-file")
