"""Run assets: files a scenario writes that are kept with its run (``dm.assets``).

    dm.assets.write_text("report/summary.txt", "120 customers, 600 orders\\n")
    dm.assets.write_json("report/summary.json", {"customers": 120, "orders": 600})
    dm.assets.write_csv("customers.csv", customers)            # a list of dicts or a row set
    dm.assets.write_bytes("logo.png", data)

The run keeps them (``seedbed run assets RUN``, ``seedbed run download RUN NAME``) until it is
purged. Content travels to the worker in pieces of 1 MiB (base64 inside the channel's JSON frames,
far below its frame cap); the worker holds each asset against the attempt's memory budget, checks
the operator's caps while it arrives (one asset: ``SEEDBED_MAX_ASSET_BYTES``, all of a run's:
``SEEDBED_MAX_RUN_ASSET_BYTES``) and ships it to the coordinator once it is whole. Past a cap the
call raises ``LimitExceeded`` naming the asset, its size, the cap and the setting, and nothing of
the asset is kept.

Names: "/"-separated and relative, e.g. ``report/summary.json``; each part starts with a letter or
digit and holds only letters, digits, ``.``, ``_`` and ``-``; at most 8 parts and 200 characters.
So no ``..``, no absolute path, no hidden file, no control character or space: a name is the same
file on every system it is downloaded to. ``files/…`` is reserved for the files the run's ``file``
connections write (kept as ``files/<connection>/<file name>``). A name may be written once per
attempt: a second write of it raises ``InvalidArgument`` (a retried attempt starts afresh, and the
run keeps what its last attempt wrote, never both).
"""

from __future__ import annotations

import base64
import codecs
import contextlib
import csv
import io
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from seedbed.sdk import _context
from seedbed.sdk._errors import InvalidArgument
from seedbed.sdk._rows import RowSet

__all__ = ["MAX_NAME_CHARS", "MAX_NAME_PARTS", "Assets", "name_problem"]

MAX_NAME_CHARS = 200
MAX_NAME_PARTS = 8
RESERVED_PREFIX = "files/"
_PIECE_BYTES = 1 * 2**20
_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
# codecs.lookup's names of the encodings the worker declares, and how an asset names them.
_CHARSETS = {"utf-8": "utf-8", "iso8859-1": "latin-1", "ascii": "ascii"}


def name_problem(name: object) -> str | None:
    """Why ``name`` cannot name an asset, or None (the rule in the module's doc; the worker applies
    the same rule again)."""
    if not isinstance(name, str):
        return f"an asset name is a string, not {type(name).__name__}"
    if not 0 < len(name) <= MAX_NAME_CHARS:
        return f"an asset name has 1 to {MAX_NAME_CHARS} characters (this one has {len(name)})"
    parts = name.split("/")
    if len(parts) > MAX_NAME_PARTS:
        return f"an asset name has at most {MAX_NAME_PARTS} '/'-separated parts"
    for part in parts:
        if not _PART.fullmatch(part):
            return (
                f"part {part[:40]!r} is not allowed: each '/'-separated part starts with a letter or "
                "digit and holds only letters, digits, '.', '_' and '-' (no '..', no leading '/', "
                "no spaces or control characters)"
            )
    if name.startswith(RESERVED_PREFIX):
        return "names under 'files/' are reserved for the files the run's file connections write"
    return None


class _Writer:
    """One asset on its way: pieces of at most 1 MiB, then close."""

    def __init__(self, name: str, content_type: str) -> None:
        problem = name_problem(name)
        if problem is not None:
            raise InvalidArgument("asset.open", "InvalidArgument", f"asset {str(name)[:80]!r}: {problem}")
        self._handle = _context.call("asset.open", {"name": name, "content_type": content_type})["handle"]
        self._pending = bytearray()
        self._closed = False

    def write(self, data: bytes) -> None:
        self._pending += data
        while len(self._pending) >= _PIECE_BYTES:
            self._send(bytes(self._pending[:_PIECE_BYTES]))
            del self._pending[:_PIECE_BYTES]

    def _send(self, piece: bytes) -> None:
        _context.call("asset.append", {"handle": self._handle, "data": base64.b64encode(piece).decode()})

    def close(self) -> dict[str, Any]:
        if self._pending:
            self._send(bytes(self._pending))
            self._pending.clear()
        answer: dict[str, Any] = _context.call("asset.close", {"handle": self._handle})
        # Only once the worker holds it whole: a close that failed leaves it to ``abandon``.
        self._closed = True
        return answer

    def abandon(self) -> None:
        """The content could not be produced (or the worker refused a piece): keep nothing."""
        if not self._closed:
            self._closed = True
            _context.call("asset.abandon", {"handle": self._handle})


def _write(name: str, content_type: str, pieces: Iterable[bytes]) -> dict[str, Any]:
    writer = _Writer(name, content_type)
    try:
        for piece in pieces:
            writer.write(piece)
        return writer.close()
    except BaseException:
        # The first error is the one the script should see.
        with contextlib.suppress(Exception):
            writer.abandon()
        raise


class Assets:
    """The run's assets (``dm.assets``): each ``write_*`` returns ``{"name", "size_bytes",
    "sha256"}`` once the worker holds the whole asset."""

    def write_bytes(self, name: str, data: bytes | bytearray | memoryview) -> dict[str, Any]:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"write_bytes takes bytes, not {type(data).__name__}")
        view = memoryview(data).cast("B")
        pieces = (bytes(view[i : i + _PIECE_BYTES]) for i in range(0, len(view), _PIECE_BYTES))
        return _write(name, "application/octet-stream", pieces)

    def write_text(self, name: str, text: str, *, encoding: str = "utf-8") -> dict[str, Any]:
        if not isinstance(text, str):
            raise TypeError(f"write_text takes a str, not {type(text).__name__}")
        charset = _charset(encoding)
        # Encoded a piece at a time: a large text is never held twice over.
        step = _PIECE_BYTES // 4
        pieces = (text[i : i + step].encode(charset) for i in range(0, len(text), step))
        return _write(name, f"text/plain; charset={charset}", pieces)

    def write_json(self, name: str, value: Any, *, indent: int | None = 2) -> dict[str, Any]:
        encoder = json.JSONEncoder(ensure_ascii=False, indent=indent, allow_nan=False, default=_plain)
        pieces = (chunk.encode("utf-8") for chunk in encoder.iterencode(value))
        return _write(name, "application/json", pieces)

    def write_csv(
        self,
        name: str,
        rows: RowSet | Sequence[Mapping[str, Any]] | Iterable[Mapping[str, Any]],
        fieldnames: Sequence[str] | None = None,
    ) -> dict[str, Any]:
        """Rows (dicts, a row set, or any iterable of dicts) as CSV with a header: ``fieldnames``,
        else the first row's keys (a row set's columns). A row set is read in batches, never held
        whole in the script."""
        return _write(name, "text/csv; charset=utf-8", _csv_pieces(rows, fieldnames))


def _charset(encoding: str) -> str:
    """The name an asset declares for ``encoding``: any spelling of UTF-8, Latin-1 or ASCII
    (``utf8``, ``UTF-8``, ``latin1``, ``iso-8859-1``, ``us-ascii``) as the worker takes it; another
    codec keeps its own name (the worker refuses it, naming the three)."""
    if not isinstance(encoding, str):
        raise TypeError(f"write_text's encoding is a str, not {type(encoding).__name__}")
    name = codecs.lookup(encoding).name  # LookupError for a codec Python does not know
    return _CHARSETS.get(name, name)


def _csv_pieces(rows: Any, fieldnames: Sequence[str] | None) -> Iterable[bytes]:
    if isinstance(rows, RowSet) and not rows.read:
        columns = list(fieldnames or rows.columns)
        source: Iterable[Mapping[str, Any]] = (row for batch in rows.batches(1000) for row in batch)
    else:
        source = rows
        columns = list(fieldnames) if fieldnames is not None else []
    out = io.StringIO()
    writer: csv.DictWriter[str] | None = None
    for index, row in enumerate(source):
        if not isinstance(row, Mapping):
            raise TypeError(f"write_csv: row {index} is a {type(row).__name__}, not a mapping")
        if writer is None:
            writer = csv.DictWriter(out, fieldnames=columns or list(row), lineterminator="\n")
            writer.writeheader()
        try:
            writer.writerow({k: _cell(v) for k, v in row.items()})
        except ValueError as exc:
            raise InvalidArgument("asset.write_csv", "InvalidArgument", f"row {index}: {exc}") from None
        if out.tell() >= _PIECE_BYTES:
            yield out.getvalue().encode("utf-8")
            out.seek(0)
            out.truncate()
    if writer is None and columns:
        csv.writer(out, lineterminator="\n").writerow(columns)
    yield out.getvalue().encode("utf-8")


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, default=_plain)
    return value


def _plain(value: Any) -> Any:
    from seedbed.sdk._data import _plain as plain

    return plain(value)
