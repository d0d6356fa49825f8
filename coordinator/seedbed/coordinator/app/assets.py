"""Use cases of run assets: list a run's assets, download one, and the summary ``GetRun`` shows.

Reading assets needs what reading the run needs (VIEWER in its project). A name is looked up as
given (NOT_FOUND when the run keeps none by that name, also for a name no asset could have): a
lookup never says more than "not found". Content streams chunk by chunk from the store, metadata
first.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from seedbed.api.v1 import asset_pb2
from seedbed.coordinator import _convert as cv
from seedbed.coordinator import authz
from seedbed.coordinator.access import Role
from seedbed.coordinator.app.ids import required_id
from seedbed.coordinator.assets import MAX_NAME_CHARS
from seedbed.coordinator.errors import InvalidArgumentError, NotFoundError
from seedbed.coordinator.store import Store
from seedbed.coordinator.store.assets import AssetRecord

__all__ = ["RunAssetUseCases", "asset_to_proto"]


def asset_to_proto(asset: AssetRecord) -> asset_pb2.RunAsset:
    return asset_pb2.RunAsset(
        name=asset.name,
        size_bytes=asset.size,
        sha256=asset.sha256,
        content_type=asset.content_type,
        attempt=asset.attempt,
        create_time=cv.ts(asset.created_at),
    )


class RunAssetUseCases:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def list_assets(self, run_id: str) -> list[asset_pb2.RunAsset]:
        run = await authz.run_for(self._store, required_id("run_id", run_id), Role.VIEWER)
        return [asset_to_proto(a) for a in await self._store.assets.of_run(run.id)]

    async def summary(self, run_id: str) -> asset_pb2.RunAssetSummary:
        """Count and bytes of the run's assets (the caller already may read the run)."""
        count, size = await self._store.assets.summary(run_id)
        return asset_pb2.RunAssetSummary(count=count, size_bytes=size)

    async def download(self, run_id: str, name: str) -> tuple[asset_pb2.RunAsset, AsyncIterator[bytes]]:
        """The asset's metadata and its content in chunks; errors surface here, before any chunk."""
        run = await authz.run_for(self._store, required_id("run_id", run_id), Role.VIEWER)
        if not name:
            raise InvalidArgumentError("name", "is required (see the run's assets for their names)")
        if len(name) > MAX_NAME_CHARS:
            raise NotFoundError("run asset", f"{run.id}/{name[:100]}…")
        asset = await self._store.assets.get(run.id, name)
        return asset_to_proto(asset), self._store.assets.chunks(asset)
