"""Run assets in the scenario API: the files a run kept, each able to download itself.

    run = scenario.run_and_wait()
    for asset in run.assets():
        print(asset.name, asset.size_bytes, asset.sha256)
    run.assets()[0].download("out/summary.json")      # or .read() for the bytes

A download is written to a temporary file beside the target, checked against the asset's size and
SHA-256, then renamed over the target: a failed or cut download leaves no partial file behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import tempfile
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from seedbed.api.v1 import asset_pb2

if TYPE_CHECKING:
    from seedbed.client._client import Client

__all__ = ["AssetIntegrityError", "RunAsset"]


class AssetIntegrityError(ValueError):
    """What was downloaded is not what the coordinator listed (size or SHA-256 differ)."""


class RunAsset:
    """One file a run kept (``ScenarioRun.assets``). ``raw``: the contract's RunAsset."""

    def __init__(self, client: Client, run_id: str, raw: asset_pb2.RunAsset) -> None:
        self._client = client
        self.run_id = run_id
        self.raw = raw

    def __repr__(self) -> str:
        return f"<RunAsset {self.name!r} of {self.run_id}, {self.size_bytes} bytes>"

    @property
    def name(self) -> str:
        return self.raw.name

    @property
    def size_bytes(self) -> int:
        return self.raw.size_bytes

    @property
    def sha256(self) -> str:
        return self.raw.sha256

    @property
    def content_type(self) -> str:
        return self.raw.content_type

    @property
    def attempt(self) -> int:
        return self.raw.attempt

    @property
    def create_time(self) -> datetime | None:
        return self.raw.create_time.ToDatetime() if self.raw.HasField("create_time") else None

    def read(self) -> bytes:
        """The whole content, checked against its size and SHA-256."""
        out = io.BytesIO()
        self.write_to(out)
        return out.getvalue()

    def write_to(self, out: BinaryIO) -> None:
        """Stream the content into ``out`` (standard output, a socket…), then check it against its
        size and SHA-256: AssetIntegrityError when a download was cut short (``out`` holds what came).
        ``raw`` is then the metadata the download came with."""
        meta, chunks = self._client.download_run_asset(self.run_id, self.name)
        digest = hashlib.sha256()
        size = 0
        with contextlib.closing(chunks):  # ``out`` failing cancels the download at once
            for chunk in chunks:
                out.write(chunk)
                digest.update(chunk)
                size += len(chunk)
        out.flush()
        _check(meta, size, digest.hexdigest())
        self.raw = meta

    def download(self, path: str | os.PathLike[str]) -> Path:
        """Write the content to ``path`` (a file; its folder must exist), atomically; the path.
        ``raw`` is then the metadata the download came with."""
        target = Path(path)
        fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as out:
                self.write_to(out)
            os.replace(temporary, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise
        return target


def _check(meta: asset_pb2.RunAsset, size: int, sha256: str) -> None:
    if size != meta.size_bytes or sha256 != meta.sha256:
        raise AssetIntegrityError(
            f"asset {meta.name!r}: downloaded {size} bytes with SHA-256 {sha256}, expected "
            f"{meta.size_bytes} bytes with {meta.sha256}; download it again"
        )
