"""Run assets under attack from inside: a script that writes thousands of empty assets (no bytes, so
no byte cap stops it; each is a store row and a line in a listing that must stay one message), a
frame with a content type that is not text, and a superseded attempt whose worker keeps sending
pieces after the next attempt began (they would be kept where no later attempt clears them).

Defences: ``MAX_ASSETS`` per attempt on the worker (LimitExceeded naming the asset) and again on the
coordinator (one line in the run's log), the content type checked as a string, and the store fencing
every asset write by the run's current attempt (LeaseLost: the stale runner stops)."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from seedbed.api.v1 import asset_pb2, run_pb2, scenario_pb2
from seedbed.client import Client
from seedbed.coordinator.assets import MAX_ASSETS as COORDINATOR_MAX_ASSETS
from seedbed.coordinator.assets import AssetReceiver
from seedbed.coordinator.errors import LeaseLost
from seedbed.coordinator.fakes import FakeDispatcher
from seedbed.coordinator.server import running_in_thread
from seedbed.coordinator.store import Store
from seedbed.worker.agent._assets import MAX_ASSETS, AssetCollector
from seedbed.worker.agent._budget import MemoryBudget
from seedbed.worker.agent._errors import InvalidArgument, LimitExceeded
from tests.conftest import settings_for

# -- the worker ------------------------------------------------------------------------------------


def _empty(collector: AssetCollector, name: str) -> None:
    handle = collector.open({"name": name, "content_type": "application/json"})["handle"]
    collector.close({"handle": handle})


def test_a_script_cannot_keep_more_than_max_assets(tmp_path: Path) -> None:
    collector = AssetCollector(memory=MemoryBudget(2**20))
    for n in range(MAX_ASSETS - 1):
        _empty(collector, f"a/{n}.json")
    out = tmp_path / "out.csv"
    out.write_bytes(b"id\n1\n")
    assert collector.file_written("conn_files", "out.csv", out, 5) is None  # the last one allowed
    with pytest.raises(LimitExceeded, match=rf"'a/more\.json'.*at most {MAX_ASSETS} assets"):
        collector.open({"name": "a/more.json", "content_type": "application/json"})
    unkept = collector.file_written("conn_files", "other.csv", out, 5)
    assert unkept is not None and f"at most {MAX_ASSETS} assets" in unkept
    # The file already kept may still be rewritten (it is the same asset).
    assert collector.file_written("conn_files", "out.csv", out, 5) is None
    assert len(list(collector.drain())) == MAX_ASSETS - 1
    assert [p.name for p in collector.drain_files(pytest.fail)] == ["files/conn_files/out.csv"]


@pytest.mark.parametrize("content_type", [["application/json"], {"a": 1}, 7])
def test_a_content_type_that_is_not_text_is_an_invalid_argument(content_type: object) -> None:
    collector = AssetCollector(memory=MemoryBudget(2**20))
    with pytest.raises(InvalidArgument, match="content_type"):
        collector.open({"name": "x.json", "content_type": content_type})


# -- the coordinator --------------------------------------------------------------------------------


def _whole(name: str, data: bytes = b"") -> asset_pb2.AttemptAsset:
    return asset_pb2.AttemptAsset(
        name=name,
        offset=0,
        chunk=data,
        last=True,
        size_bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
    )


@pytest.fixture
def retried_run(store_url: str, tmp_path: Path) -> Iterator[tuple[Store, str, asyncio.AbstractEventLoop]]:
    """A store holding a run whose first attempt lost its worker and whose second succeeded."""
    settings = settings_for(store_url, tmp_path)
    with running_in_thread(settings, FakeDispatcher()) as coordinator, Client(coordinator.address) as client:
        retry = scenario_pb2.RetryPolicy(initial_backoff_seconds=0.05, maximum_backoff_seconds=0.1)
        client.put_scenario(
            "twice",
            script="attempt<2: lost worker gone\nprint done\n",
            settings=scenario_pb2.ScenarioSettings(retry_policy=retry),
        )
        run_id = client.run("twice").run_id
        assert client.wait(run_id).state == run_pb2.RUN_STATE_SUCCESS
    loop = asyncio.new_event_loop()
    store = loop.run_until_complete(Store.open(store_url))
    try:
        yield store, run_id, loop
    finally:
        loop.run_until_complete(store.aclose())
        loop.close()


def _receiver(store: Store, run_id: str, attempt: int, said: list[str]) -> AssetReceiver:
    async def say(text: str) -> None:
        said.append(text)

    return AssetReceiver(store.assets, run_id, attempt, max_asset_bytes=2**20, max_run_bytes=2**20, say=say)


def test_a_superseded_attempts_pieces_are_refused_and_leave_nothing(
    retried_run: tuple[Store, str, asyncio.AbstractEventLoop],
) -> None:
    store, run_id, loop = retried_run
    stale = _receiver(store, run_id, 1, [])
    with pytest.raises(LeaseLost, match="attempt 1 was superseded"):
        loop.run_until_complete(stale.piece(_whole("late.txt", b"from the past")))
    current = _receiver(store, run_id, 2, [])
    loop.run_until_complete(current.piece(_whole("now.txt", b"current")))
    assert [a.name for a in loop.run_until_complete(store.assets.of_run(run_id))] == ["now.txt"]
    # Nothing of the stale attempt was written anywhere, listed or not.
    assert loop.run_until_complete(store.assets.delete_run(run_id)) == (1, len(b"current"))


def test_the_coordinator_keeps_at_most_max_assets_per_attempt(
    retried_run: tuple[Store, str, asyncio.AbstractEventLoop],
) -> None:
    store, run_id, loop = retried_run
    assert COORDINATOR_MAX_ASSETS == MAX_ASSETS
    said: list[str] = []
    receiver = _receiver(store, run_id, 2, said)

    async def flood() -> None:
        for n in range(MAX_ASSETS + 20):
            await receiver.piece(_whole(f"a/{n}.txt"))
        await receiver.piece(_whole("a/0.txt", b"again"))  # a name it already kept is no new asset

    loop.run_until_complete(flood())
    count, size = loop.run_until_complete(store.assets.summary(run_id))
    assert (count, size) == (MAX_ASSETS, len(b"again"))
    assert len(said) == 1 and f"at most {MAX_ASSETS} assets" in said[0]
