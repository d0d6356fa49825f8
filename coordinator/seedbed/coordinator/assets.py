"""Run assets as the coordinator receives them: the pieces an attempt's worker sends
(``AttemptEvent.asset``), checked and kept in the store (``Store.assets``).

The worker enforces the caps and the name rule against the script; this side trusts no more than
it must and checks again what is cheap to check, so a broken or hostile worker cannot make the
store hold more than the operator allows or an asset whose content differs from its digest:

- a name: relative, "/"-separated, no empty, ``.`` or ``..`` part, no backslash or control
  character, at most ``MAX_NAME_CHARS`` (file connections' files keep their own names under
  ``files/<connection>/``, so this rule is wider than the SDK's);
- pieces in order: the first at offset 0 (it starts the asset), each next one where the previous
  ended; a piece out of order drops the asset;
- caps: one asset ``max_asset_bytes``, the attempt's assets together ``max_run_asset_bytes``, at most
  ``MAX_ASSETS`` assets per attempt (the worker's number: empty assets cost no bytes, but each is a
  row and a line in every listing, whose answer must stay one message);
- pieces of a superseded attempt: the store refuses them (``LeaseLost``, the runner stops);
- the last piece's size and SHA-256 must match what arrived, or the asset is dropped;
- the attempt's end (``end``: its result, an abort, a lost worker) drops an asset still arriving.

A dropped asset is said in the run's log (a system line) and never listed. Rejected: failing the
attempt for a broken asset (the data the run wrote is what matters; a missing report file is
visible in the log and the listing).
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from seedbed.api.v1 import asset_pb2
from seedbed.coordinator.store import now
from seedbed.coordinator.store.assets import AssetRepository

__all__ = ["MAX_ASSETS", "MAX_NAME_CHARS", "AssetReceiver", "name_problem"]

MAX_NAME_CHARS = 512
# Assets of one attempt (the worker refuses the next one with LimitExceeded: agent._assets.MAX_ASSETS).
MAX_ASSETS = 1_000
MAX_CONTENT_TYPE_CHARS = 100


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a stored asset, or None."""
    if not 0 < len(name) <= MAX_NAME_CHARS:
        return f"an asset name has 1 to {MAX_NAME_CHARS} characters"
    if name.startswith("/") or "\\" in name:
        return "an asset name is relative and '/'-separated"
    if any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in name):
        return "an asset name holds no control characters"
    if any(part in ("", ".", "..") for part in name.split("/")):
        return "an asset name has no empty, '.' or '..' part"
    return None


@dataclass
class _Arriving:
    name: str
    next_offset: int = 0
    chunks: int = 0
    digest: Any = field(default_factory=hashlib.sha256)


class AssetReceiver:
    """Keeps the assets of one attempt as their pieces arrive. ``say`` writes a system line to the
    run's log."""

    def __init__(
        self,
        assets: AssetRepository,
        run_id: str,
        attempt: int,
        *,
        max_asset_bytes: int,
        max_run_bytes: int,
        say: Callable[[str], Awaitable[None]],
    ) -> None:
        self._assets = assets
        self._run_id = run_id
        self._attempt = attempt
        self._max_asset = max_asset_bytes
        self._max_run = max_run_bytes
        self._say = say
        self._arriving: _Arriving | None = None
        self._kept = 0  # bytes of this attempt's assets, kept or arriving
        self._names: set[str] = set()  # every name begun in this attempt
        self._said_too_many = False

    async def piece(self, piece: asset_pb2.AttemptAsset) -> None:
        arriving = self._arriving
        if piece.offset == 0:
            if arriving is not None:
                await self._drop(arriving, "a new asset began before its last piece")
            problem = name_problem(piece.name)
            if problem is not None:
                await self._say(f"asset {piece.name[:80]!r} not kept: {problem}")
                return
            if piece.name not in self._names:
                if len(self._names) >= MAX_ASSETS:
                    if not self._said_too_many:  # said once, not once per asset
                        self._said_too_many = True
                        await self._say(
                            f"asset {piece.name[:80]!r} and any after it not kept: an attempt keeps at "
                            f"most {MAX_ASSETS} assets"
                        )
                    return
                self._names.add(piece.name)
            content_type = piece.content_type[:MAX_CONTENT_TYPE_CHARS] or "application/octet-stream"
            arriving = self._arriving = _Arriving(piece.name)
            await self._assets.start(self._run_id, self._attempt, piece.name, content_type, now())
        elif arriving is None or arriving.name != piece.name or piece.offset != arriving.next_offset:
            if arriving is not None and arriving.name == piece.name:
                await self._drop(arriving, "a piece came out of order")
            return  # the rest of an asset already dropped
        size = arriving.next_offset + len(piece.chunk)
        if size > self._max_asset or self._kept + len(piece.chunk) > self._max_run:
            await self._drop(
                arriving,
                "it passes the caps on assets (SEEDBED_MAX_ASSET_BYTES, SEEDBED_MAX_RUN_ASSET_BYTES)",
            )
            return
        if piece.chunk:
            await self._assets.add_chunk(
                self._run_id, self._attempt, piece.name, arriving.chunks, piece.chunk
            )
            arriving.chunks += 1
            arriving.digest.update(piece.chunk)
            self._kept += len(piece.chunk)
        arriving.next_offset = size
        if piece.last:
            self._arriving = None
            digest = arriving.digest.hexdigest()
            if piece.size_bytes != size or piece.sha256 != digest:
                await self._drop(arriving, "its size or digest does not match what arrived")
                return
            await self._assets.complete(self._run_id, self._attempt, piece.name, size, digest)

    async def end(self, why: str = "the attempt ended before its last piece") -> None:
        """The attempt ended: an asset still arriving never will be whole, so its row and the
        chunks it has are discarded now rather than left until a purge."""
        if self._arriving is not None:
            await self._drop(self._arriving, why)

    async def _drop(self, arriving: _Arriving, why: str) -> None:
        self._arriving = None
        self._kept -= arriving.next_offset
        await self._assets.discard(self._run_id, self._attempt, arriving.name)
        await self._say(f"asset {arriving.name[:200]!r} not kept: {why}")
