"""The file sink: CSV or JSON Lines files in the attempt's artifacts directory, written atomically.

Each file connection writes into a folder of its own under the run's artifacts folder
(`connection_folder`: `<run folder>/<connection id>/`), so two connections writing the same file
name keep two files (a run's assets name them `files/<connection>/<name>`, and a purge removes a
connection's files from its folder).

A write goes to a temporary file in the same directory (`.{name}.XXXX.tmp`), is flushed and
fsync'd, then renamed over the final name with `os.replace`, and the directory is fsync'd so the
rename survives a crash: a reader sees the old file or the new one, never a partial one. Appending
copies the existing file into the temporary one first (the price of atomicity; fine for artifacts
of a few hundred MB). A failure (a value that cannot be serialised, a full disk) removes the
temporary file and leaves the final name untouched.

Every byte written (appends copy the existing content, and count it) is charged to a `FileQuota`
shared by the attempt's file connections, while it is written: past the quota the write stops with
`QuotaExceededError` and its temporary file is removed.

Names are plain file names: no `/` or `\\`, no `..`, no leading `.` (reserved for the temporary
files), no control characters, at most 200 characters. An existing file is read without following
symlinks.

Each write is an INTERNAL span ("write NAME": `file.name`, the format, rows and bytes written), child
of the span current on the thread (the SDK call).
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import tempfile
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any, Literal, cast

from seedbed.worker import tracing
from seedbed.worker.sinks._errors import (
    ConfigurationError,
    InvalidRequestError,
    QuotaExceededError,
    TargetError,
)
from seedbed.worker.sinks._rows import encode_json_row, prepare_rows
from seedbed.worker.sinks._spec import ConnectionSpec, OptionReader, Row, Sink, WriteResult

__all__ = ["FileFormat", "FileQuota", "FileSink", "connection_folder"]

FileFormat = Literal["csv", "jsonl"]
_MAX_NAME = 200


class FileQuota:
    """Bytes the file connections of one attempt may write together; `setting` names where the
    limit comes from, for the error. Thread-safe."""

    def __init__(self, limit: int, *, setting: str = "the file quota") -> None:
        if limit < 0:
            raise ValueError("FileQuota.limit must be >= 0")
        self.limit = limit
        self.setting = setting
        self.written = 0
        self._lock = threading.Lock()

    def charge(self, size: int, connection_id: str) -> None:
        with self._lock:
            if self.written + size > self.limit:
                self.written = min(self.limit, self.written + size)
                raise QuotaExceededError(
                    connection_id=connection_id, limit=self.limit, setting=self.setting, written=self.written
                )
            self.written += size


class _Metered(io.RawIOBase):
    """The temporary file, charging every byte to the quota before it is written."""

    def __init__(self, out: IO[bytes], quota: FileQuota, connection_id: str) -> None:
        self._out = out
        self._quota = quota
        self._connection_id = connection_id

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        size = len(memoryview(data).cast("B"))
        self._quota.charge(size, self._connection_id)
        self._out.write(data)
        return size

    def flush(self) -> None:
        self._out.flush()

    def fileno(self) -> int:
        return self._out.fileno()


def connection_folder(run_folder: Path, connection_id: str) -> Path:
    """The folder file connection `connection_id` writes into, in the run's artifacts folder."""
    if connection_id in (".", ".."):  # letters, digits and _.:- otherwise: one plain path part
        raise ConfigurationError(
            f"connection id {connection_id!r} cannot name a folder", connection_id=connection_id
        )
    return run_folder / connection_id


class FileSink(Sink):
    """Writes row files into its connection's folder of `artifacts_dir` (`connection_folder`).
    Calls are serialised by a lock."""

    kind = "file"

    def __init__(self, spec: ConnectionSpec, *, artifacts_dir: Path, quota: FileQuota | None = None) -> None:
        super().__init__(spec)
        self.quota = quota if quota is not None else FileQuota(2**63)
        OptionReader(spec).done()  # a file connection has no options
        folder = connection_folder(artifacts_dir, spec.id)
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigurationError(
                f"artifacts directory {folder} is not usable: {exc.strerror}", connection_id=spec.id
            ) from exc
        self.directory = folder.resolve()
        self._lock = threading.Lock()

    def write(
        self, name: str, rows: Sequence[Row], *, fmt: FileFormat = "csv", append: bool = False
    ) -> WriteResult:
        """Write `rows` to `name` (replacing it, or after its current content with `append`).
        CSV: the header is the first row's keys; every row must have the same keys; None is an
        empty cell, booleans are `true`/`false`, nested values JSON. JSONL: one object per line."""
        attributes = {
            "file.name": str(name),
            "seedbed.format": str(fmt),
            "seedbed.connection": self.connection_id,
        }
        with tracing.span(f"write {name}", attributes=attributes) as span:
            result = self._write(name, rows, fmt=fmt, append=append)
            span.set_attributes({"seedbed.rows": result.count, "seedbed.bytes": result.size_bytes})
            return result

    def _write(self, name: str, rows: Sequence[Row], *, fmt: FileFormat, append: bool) -> WriteResult:
        cid = self.connection_id
        _check_name(name, cid)
        if fmt not in ("csv", "jsonl"):
            raise InvalidRequestError(f"fmt must be 'csv' or 'jsonl', got {fmt!r}", connection_id=cid)
        if isinstance(rows, str | bytes | Mapping) or not isinstance(rows, Sequence):
            raise InvalidRequestError(
                f"rows must be a list of objects, got a {type(rows).__name__}", connection_id=cid
            )
        final = self.directory / name
        with self._lock:
            fd, temporary = tempfile.mkstemp(dir=self.directory, prefix=f".{name}.", suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as raw:
                    out = cast(IO[bytes], _Metered(raw, self.quota, cid))
                    existing = self._copy_existing(final, out) if append else None
                    if fmt == "csv":
                        self._write_csv(out, rows, header_present=existing)
                    else:
                        for index, row in enumerate(rows):
                            out.write(encode_json_row(row, index=index, connection_id=cid) + b"\n")
                    out.flush()
                    os.fsync(raw.fileno())
                os.replace(temporary, final)
                _fsync_directory(self.directory)
                size = final.stat().st_size
            except OSError as exc:
                with contextlib.suppress(OSError):
                    os.unlink(temporary)
                raise TargetError(
                    connection_id=cid, operation="write", db_message=f"{name}: {exc.strerror or exc}"
                ) from exc
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(temporary)
                raise
        return WriteResult(path=final, count=len(rows), size_bytes=size)

    def close(self) -> None:
        """Nothing to release: every write is complete when `write` returns."""

    def _copy_existing(self, final: Path, out: IO[bytes]) -> list[str] | None:
        """Copy the current content of `final` into `out`; its CSV header (None when absent)."""
        try:
            fd = os.open(final, os.O_RDONLY | os.O_NOFOLLOW)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise InvalidRequestError(
                f"cannot append to {final.name!r}: {exc.strerror}", connection_id=self.connection_id
            ) from exc
        with os.fdopen(fd, "rb") as source:
            first = source.readline()
            source.seek(0)
            while chunk := source.read(1 << 20):
                out.write(chunk)
            if _ends_without_newline(source):
                out.write(b"\n")
        if not first.strip():
            return None
        return next(csv.reader([first.decode("utf-8", "replace")]), None)

    def _write_csv(self, out: IO[bytes], rows: Sequence[Row], *, header_present: list[str] | None) -> None:
        cid = self.connection_id
        prepared = prepare_rows(rows, connection_id=cid, forbid_nul=True, sql_names=False)
        if header_present is not None and prepared.columns and header_present != prepared.columns:
            raise InvalidRequestError(
                f"cannot append: the file's header {header_present} differs from the rows' fields "
                f"{prepared.columns}",
                connection_id=cid,
            )
        text = io.TextIOWrapper(out, encoding="utf-8", newline="", write_through=True)
        try:
            writer = csv.writer(text, lineterminator="\n")
            if header_present is None and prepared.columns:
                writer.writerow(prepared.columns)
            writer.writerows([_csv_cell(v) for v in values] for values in prepared.values)
            text.flush()
        finally:
            text.detach()  # `out` stays open: the caller fsyncs and closes it


def _ends_without_newline(source: IO[bytes]) -> bool:
    """True when the copied file is non-empty and does not end with a newline."""
    end = source.seek(0, os.SEEK_END)
    if end == 0:
        return False
    source.seek(end - 1)
    return source.read(1) != b"\n"


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if value is True:
        return "true"
    if value is False:
        return "false"
    return value


def _check_name(name: object, connection_id: str) -> None:
    def refuse(why: str) -> InvalidRequestError:
        return InvalidRequestError(f"invalid file name {name!r}: {why}", connection_id=connection_id)

    if not isinstance(name, str) or not 0 < len(name) <= _MAX_NAME:
        raise refuse(f"expected a non-empty string of at most {_MAX_NAME} characters")
    if "/" in name or "\\" in name:
        raise refuse("a plain file name is expected, without '/' or '\\'")
    if name.startswith("."):
        raise refuse("names starting with '.' are reserved ('..', hidden and temporary files)")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
        raise refuse("control characters (NUL, CR, LF, …) are not allowed")


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
