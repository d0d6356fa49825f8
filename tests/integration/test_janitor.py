"""The janitor against the real engine: the worker's listing and removal of labelled containers, and
the coordinator removing the sandbox of a superseded attempt while keeping the current one's."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest

from seedbed.coordinator.model import OverlapPolicy, RunState
from seedbed.coordinator.store import RunEnd, ScenarioSettingsValue, Store
from seedbed.worker.attempt import list_sandboxes, remove_sandboxes
from seedbed.worker.images import ensure_image
from tests.conftest import eventually, settings_for
from tests.integration.conftest import containers_of

pytestmark = pytest.mark.integration


@pytest.fixture
def sandboxes(docker_client: docker.DockerClient) -> Iterator[Any]:
    """Start idle containers labelled like sandboxes; all removed at the end."""
    started: list[Any] = []
    image = ensure_image(docker_client)

    def start(run_id: str, attempt: int, *, managed: bool = True) -> Any:
        labels = {
            "seedbed.run": run_id,
            "seedbed.attempt": str(attempt),
            "seedbed.deadline": (datetime.now(UTC) + timedelta(hours=1)).isoformat(),
            "seedbed.fencing": str(attempt * 1000),
        }
        if managed:
            labels["seedbed.managed"] = "1"
        container = docker_client.containers.run(
            image, entrypoint=["sleep", "300"], detach=True, network_mode="none", labels=labels
        )
        started.append(container)
        return container

    yield start
    for container in started:
        with contextlib.suppress(Exception):
            container.remove(force=True)


def test_worker_lists_and_removes_only_managed_containers(sandboxes: Any, docker_client: Any) -> None:
    run_id = f"run_janitor_{int(time.time() * 1000)}"
    managed = sandboxes(run_id, 3)
    foreign = sandboxes(run_id, 4, managed=False)
    listed = [box for box in list_sandboxes("") if box["run"] == run_id]
    assert len(listed) == 1
    box = listed[0]
    assert (box["id"], box["attempt"], box["fencing"], box["state"]) == (managed.id, "3", "3000", "running")
    created = datetime.fromisoformat(box["created"])
    assert abs(datetime.now(UTC) - created) < timedelta(minutes=2)
    assert datetime.fromisoformat(box["deadline"]) > datetime.now(UTC)
    # A container that is not Seedbed's is never removed, even when asked by id.
    assert remove_sandboxes("", [managed.id, foreign.id, "0" * 64]) == [managed.id]
    assert [c.id for c in containers_of(docker_client, run_id)] == [foreign.id]


async def _runs_with_attempts(url: str) -> tuple[str, str]:
    """An active run on attempt 2 (begun by a coordinator that still holds it) and a finished run."""
    store = await Store.open(url)
    try:
        settings = ScenarioSettingsValue(overlap_policy=OverlapPolicy.ALLOW_CONCURRENT)
        await store.create_scenario("scn_janitor", "janitor", "print('x')\n", settings)
        _, active, _ = await store.fires.fire("scn_janitor", {}, "")
        _, ended, _ = await store.fires.fire("scn_janitor", {}, "")
        assert active is not None and ended is not None
        for seen in (0, 1):
            await store.attempts.begin(
                active.id, seen_attempts=seen, holder="elsewhere", lease=timedelta(hours=1)
            )
        await store.attempts.begin(ended.id, seen_attempts=0, holder="elsewhere", lease=timedelta(hours=1))
        assert await store.finish_run(ended.id, RunEnd(RunState.SUCCESS))
        return active.id, ended.id
    finally:
        await store.aclose()


def test_coordinator_removes_superseded_and_ended_sandboxes(
    ray_session: None, sandboxes: Any, docker_client: Any, tmp_path: Path
) -> None:
    from seedbed.coordinator import running_in_thread

    url = f"sqlite:///{tmp_path / 's.db'}"
    active, ended = asyncio.run(_runs_with_attempts(url))
    superseded = sandboxes(active, 1)
    current = sandboxes(active, 2)
    finished = sandboxes(ended, 1)
    settings = settings_for(url, tmp_path, janitor_interval_seconds=0.5)
    with running_in_thread(settings):
        eventually(lambda: [c.id for c in containers_of(docker_client, active)] == [current.id], timeout=90)
        eventually(lambda: containers_of(docker_client, ended) == [], timeout=30)
        time.sleep(2)  # several more sweeps: the current attempt's sandbox stays
        assert [c.id for c in containers_of(docker_client, active)] == [current.id]
    for gone in (superseded, finished):
        with pytest.raises(docker.errors.NotFound):
            docker_client.containers.get(gone.id)
