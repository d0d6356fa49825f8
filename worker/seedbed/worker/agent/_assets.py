"""Run assets on the worker: what ``dm.assets.write_*`` sends, and the files the attempt's ``file``
connections write, collected for the coordinator under the operator's caps.

The script writes an asset in pieces over the channel::

    asset.open    {name, content_type}  -> {handle}
    asset.append  {handle, data}         (data: base64 of at most 1 MiB; several per asset)
    asset.close   {handle}               -> {name, size_bytes, sha256}
    asset.abandon {handle}               (the script could not finish it: nothing is kept)

Everything in those frames is hostile. A name is checked against the same rule the SDK states
(``name_problem``): "/"-separated relative parts of letters, digits, ``.``, ``_`` and ``-``, each
starting with a letter or digit, at most 8 parts and 200 characters; ``files/…`` is reserved for
file connections. A name may be written once per attempt (a second ``asset.open`` of it is
InvalidArgument): the assets of a run are those its last attempt wrote, and a retried attempt that
re-runs the script writes the same set again rather than adding to the first.

Caps: one asset may hold ``max_asset_bytes`` (``SEEDBED_MAX_ASSET_BYTES``), all the assets of the
attempt ``max_run_bytes`` (``SEEDBED_MAX_RUN_ASSET_BYTES``); an asset is charged while it arrives, so
a piece that takes it past a cap is refused with LimitExceeded naming the asset, the size it would
reach, the cap and the setting, and the asset is dropped whole. An attempt keeps at most
``MAX_ASSETS`` assets (files included): empty assets cost no bytes, but each is a row in the store
and a line in every listing. The bytes held until they are
shipped count against the attempt's memory budget (``MemoryBudget``), and leave it once
``drain`` has handed them to the attempt's event stream in pieces of ``PIECE_BYTES``.

File connections: after each file write the agent calls ``file_written``; the file is kept as asset
``files/<connection>/<file name>`` in its final form (read when the attempt ends: a file written
twice is kept once, as last written; one that can no longer be read then, or changed size since its
write, is not kept, said in the run's log). A file over a cap is not kept, and the write itself
stands: ``file_written`` answers a warning for the run's log instead (a file connection's own quota is
``SEEDBED_MAX_FILE_SINK_BYTES``; refusing a write the file quota allows because the asset cap does
not would change what file connections do).

Rejected: spooling assets to the worker's disk (the caps keep them small, and a worker's disk is
the file connections' and the image cache's); shipping a whole asset as one event (Ray moves each
event as one object: pieces keep any one of them small).
"""

from __future__ import annotations

import base64
import binascii
import errno
import hashlib
import os
import re
import threading
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seedbed.api.v1 import asset_pb2
from seedbed.worker.agent._args import handle as _handle
from seedbed.worker.agent._args import text as _text
from seedbed.worker.agent._budget import MemoryBudget
from seedbed.worker.agent._errors import InvalidArgument, LimitExceeded

__all__ = [
    "DEFAULT_MAX_ASSET_BYTES",
    "DEFAULT_MAX_RUN_ASSET_BYTES",
    "MAX_ASSETS",
    "PIECE_BYTES",
    "AssetCollector",
    "name_problem",
]

DEFAULT_MAX_ASSET_BYTES = 16 * 2**20
DEFAULT_MAX_RUN_ASSET_BYTES = 64 * 2**20
ASSET_SETTING = "SEEDBED_MAX_ASSET_BYTES"
RUN_SETTING = "SEEDBED_MAX_RUN_ASSET_BYTES"
# One AttemptEvent carries at most this much content.
PIECE_BYTES = 1 * 2**20
# A piece from the script: 1 MiB of content is 1,398,104 characters of base64; a little slack.
_MAX_PIECE_CHARS = 1_400_000
MAX_NAME_CHARS = 200
MAX_NAME_PARTS = 8
MAX_OPEN = 16
# Assets of one attempt, files included (the coordinator holds the same number: assets.MAX_ASSETS).
MAX_ASSETS = 1_000
FILES_PREFIX = "files/"
_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_CONTENT_TYPES = frozenset(
    {
        "application/octet-stream",
        "application/json",
        "text/csv; charset=utf-8",
        "text/plain; charset=utf-8",
        "text/plain; charset=latin-1",
        "text/plain; charset=ascii",
    }
)


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot name an asset a script writes, or None."""
    if not 0 < len(name) <= MAX_NAME_CHARS:
        return f"an asset name has 1 to {MAX_NAME_CHARS} characters (this one has {len(name)})"
    parts = name.split("/")
    if len(parts) > MAX_NAME_PARTS:
        return f"an asset name has at most {MAX_NAME_PARTS} '/'-separated parts"
    for part in parts:
        if not _PART.fullmatch(part):
            return (
                f"part {part[:40]!r} is not allowed: each '/'-separated part starts with a letter or "
                "digit and holds only letters, digits, '.', '_' and '-'"
            )
    if name.startswith(FILES_PREFIX):
        return "names under 'files/' are reserved for the files the run's file connections write"
    return None


def _mib(size: int) -> str:
    return f"{size / 2**20:,.1f} MiB" if size >= 2**20 else f"{size:,} bytes"


@dataclass
class _Asset:
    name: str
    content_type: str
    parts: list[bytes] = field(default_factory=list)
    size: int = 0
    digest: Any = field(default_factory=hashlib.sha256)
    path: Path | None = None  # a file connection's file, read when shipped


class AssetCollector:
    """The assets of one attempt. Thread-safe: script calls arrive on the agent's call thread,
    ``drain`` runs on the attempt's."""

    def __init__(
        self,
        *,
        memory: MemoryBudget,
        max_asset_bytes: int = 0,
        max_run_bytes: int = 0,
    ) -> None:
        self.max_asset_bytes = max_asset_bytes or DEFAULT_MAX_ASSET_BYTES
        self.max_run_bytes = max_run_bytes or DEFAULT_MAX_RUN_ASSET_BYTES
        self._memory = memory
        self._lock = threading.Lock()
        self._open: dict[str, _Asset] = {}
        self._names: set[str] = set()  # every name written (or being written) by the script
        self._ready: deque[_Asset] = deque()  # whole, waiting to be shipped
        self._files: dict[str, _Asset] = {}  # a file connection's files, by asset name
        self._charged = 0  # bytes of every asset kept or arriving, files included
        self._next = 0
        self.ops: dict[str, Callable[[Mapping[str, Any]], Any]] = {
            "asset.open": self.open,
            "asset.append": self.append,
            "asset.close": self.close,
            "asset.abandon": self.abandon,
        }

    # -- the script's calls --------------------------------------------------------------------------

    def open(self, args: Mapping[str, Any]) -> Any:
        name = _text(args, "name", limit=MAX_NAME_CHARS * 4)
        problem = name_problem(name)
        if problem is not None:
            raise InvalidArgument(f"asset {name[:80]!r}: {problem}")
        content_type = args.get("content_type") or "application/octet-stream"
        charset = content_type.partition("; charset=")[2] if isinstance(content_type, str) else ""
        if charset and content_type not in _CONTENT_TYPES:
            raise InvalidArgument(
                f"asset {name!r}: write_text takes encoding 'utf-8', 'latin-1' or 'ascii', not "
                f"{charset[:40]!r} (encode the text yourself and use write_bytes for another one)"
            )
        if not isinstance(content_type, str) or content_type not in _CONTENT_TYPES:
            raise InvalidArgument(
                f"asset {name!r}: content_type {str(content_type)[:60]!r} is not one the SDK sends"
            )
        with self._lock:
            if name in self._names:
                raise InvalidArgument(
                    f"asset {name!r} was already written in this run: each name is written once "
                    "(write the whole content in one call, or use another name)"
                )
            if len(self._open) >= MAX_OPEN:
                raise LimitExceeded(f"more than {MAX_OPEN} assets open at once: close one first")
            if len(self._names) + len(self._files) >= MAX_ASSETS:
                raise LimitExceeded(
                    f"asset {name!r} would be the run's asset number {MAX_ASSETS + 1}; a run keeps at most "
                    f"{MAX_ASSETS} assets (its file connections' files included): put more in one asset"
                )
            self._next += 1
            handle = f"asset_{self._next}"
            self._names.add(name)
            self._open[handle] = _Asset(name, str(content_type))
        return {"handle": handle}

    def _asset(self, args: Mapping[str, Any]) -> tuple[str, _Asset]:
        return _handle(args, self._open, "asset handle", limit=40)

    def append(self, args: Mapping[str, Any]) -> Any:
        # One lock section from the handle's lookup to the charge: a close (or abandon) between
        # them would add bytes to an asset already shipped and charge the budget for nothing.
        with self._lock:
            handle, asset = self._asset(args)
            raw = args.get("data")
            if not isinstance(raw, str) or len(raw) > _MAX_PIECE_CHARS:
                self._drop_locked(handle)
                raise InvalidArgument(
                    f"asset {asset.name!r}: data must be base64 text of at most {PIECE_BYTES} bytes"
                )
            try:
                data = base64.b64decode(raw, validate=True)
            except (binascii.Error, ValueError):
                self._drop_locked(handle)
                raise InvalidArgument(f"asset {asset.name!r}: data is not base64") from None
            size = asset.size + len(data)
            if size > self.max_asset_bytes:
                self._drop_locked(handle)
                raise LimitExceeded(
                    f"asset {asset.name!r} would hold {_mib(size)} or more; one asset may hold "
                    f"{_mib(self.max_asset_bytes)} ({ASSET_SETTING}): write less, split it into "
                    "several assets, or ask the operator to raise the setting"
                )
            total = self._charged + len(data)
            if total > self.max_run_bytes:
                self._drop_locked(handle)
                raise LimitExceeded(
                    f"asset {asset.name!r} would take the run's assets to {_mib(total)}; a run may keep "
                    f"{_mib(self.max_run_bytes)} of assets ({RUN_SETTING}): write less, or ask the "
                    "operator to raise the setting"
                )
            try:
                self._memory.hold(len(data), f"asset {asset.name!r}")
            except LimitExceeded:
                self._drop_locked(handle)
                raise
            self._charged = total
            asset.parts.append(data)
            asset.size = size
            asset.digest.update(data)
        return {"size_bytes": size}

    def close(self, args: Mapping[str, Any]) -> Any:
        with self._lock:
            handle, asset = self._asset(args)
            del self._open[handle]
            self._ready.append(asset)
        return {"name": asset.name, "size_bytes": asset.size, "sha256": asset.digest.hexdigest()}

    def abandon(self, args: Mapping[str, Any]) -> Any:
        with self._lock:
            handle = _text(args, "handle", limit=40)
            if handle in self._open:
                self._drop_locked(handle)
        return None

    def _drop_locked(self, handle: str) -> None:
        """Forget an asset that will not be kept (its name is free again: the script may write a
        smaller one under it)."""
        asset = self._open.pop(handle, None)
        if asset is not None:
            self._names.discard(asset.name)
            self._charged -= asset.size
            self._memory.release(asset.size)

    # -- file connections ------------------------------------------------------------------------------

    def file_written(self, connection_id: str, file_name: str, path: Path, size: int) -> str | None:
        """A file connection wrote ``path``: keep it as an asset (its last form, read when shipped),
        or answer why it is not kept (a line for the run's log)."""
        name = f"{FILES_PREFIX}{connection_id}/{file_name}"
        with self._lock:
            earlier = self._files.get(name)
            base = self._charged - (earlier.size if earlier is not None else 0)
            if earlier is None and len(self._names) + len(self._files) >= MAX_ASSETS:
                return (
                    f"file {file_name!r} of connection {connection_id!r} is not kept with the run: a run "
                    f"keeps at most {MAX_ASSETS} assets, its file connections' files included"
                )
            if size > self.max_asset_bytes or base + size > self.max_run_bytes:
                if earlier is not None:
                    del self._files[name]
                    self._charged = base
                over = (
                    f"one asset may hold {_mib(self.max_asset_bytes)} ({ASSET_SETTING})"
                    if size > self.max_asset_bytes
                    else f"the run's assets may hold {_mib(self.max_run_bytes)} ({RUN_SETTING})"
                )
                return (
                    f"file {file_name!r} of connection {connection_id!r} ({_mib(size)}) is not kept with "
                    f"the run: {over}"
                )
            self._files[name] = _Asset(name, _file_type(file_name), size=size, path=path)
            self._charged = base + size
        return None

    # -- shipping ------------------------------------------------------------------------------------------

    def drain(self) -> Iterator[asset_pb2.AttemptAsset]:
        """The pieces of every asset the script finished since the last call, in order; each
        asset's bytes leave the memory budget once its pieces are out."""
        while True:
            with self._lock:
                if not self._ready:
                    return
                asset = self._ready.popleft()
            try:
                yield from _pieces(
                    asset.name, asset.content_type, b"".join(asset.parts), asset.digest.hexdigest()
                )
            finally:
                asset.parts.clear()
                self._memory.release(asset.size)

    def drain_files(self, unkept: Callable[[str], None]) -> Iterator[asset_pb2.AttemptAsset]:
        """The pieces of the file connections' files, as they are now (call once the attempt's
        calls are over). A file that cannot be read, or is no longer the size it was written with,
        is not kept: ``unkept`` gets a line for the run's log saying so (as ``file_written``
        answers one for a file over a cap)."""
        with self._lock:
            files, self._files = list(self._files.values()), {}
        for asset in files:
            data, problem = _read_file(asset.path, asset.size) if asset.path is not None else (None, "")
            if data is None:
                connection, _, file_name = asset.name.removeprefix(FILES_PREFIX).partition("/")
                unkept(f"file {file_name!r} of connection {connection!r} is not kept with the run: {problem}")
                continue
            yield from _pieces(asset.name, asset.content_type, data, hashlib.sha256(data).hexdigest())


def _pieces(name: str, content_type: str, data: bytes, sha256: str) -> Iterator[asset_pb2.AttemptAsset]:
    view = memoryview(data)
    offset = 0
    while True:
        chunk = bytes(view[offset : offset + PIECE_BYTES])
        last = offset + len(chunk) >= len(data)
        piece = asset_pb2.AttemptAsset(name=name, offset=offset, chunk=chunk, last=last)
        if offset == 0:
            piece.content_type = content_type
        if last:
            piece.size_bytes = len(data)
            piece.sha256 = sha256
        yield piece
        offset += len(chunk)
        if last:
            return


def _read_file(path: Path, expected: int) -> tuple[bytes | None, str]:
    """The file's content, read without following a symlink, or None and why not (it cannot be
    read, or is no longer the size it was written with)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(fd, "rb") as source:
            data = source.read(expected + 1)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return None, "it was replaced by a symbolic link, which is never followed"
        return None, f"it could not be read when the attempt ended ({exc.strerror or type(exc).__name__})"
    if len(data) != expected:
        return None, (
            f"it changed after its write ({_mib(expected)} when written, "
            f"{'more' if len(data) > expected else _mib(len(data))} when the attempt ended)"
        )
    return data, ""


def _file_type(file_name: str) -> str:
    if file_name.endswith(".csv"):
        return "text/csv; charset=utf-8"
    if file_name.endswith((".jsonl", ".ndjson")):
        return "application/x-ndjson"
    return "application/octet-stream"
