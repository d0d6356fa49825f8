"""Fixtures for tests against the real components: one local Ray instance per session, the local
Docker engine, real coordinators on loopback with SQLite and PostgreSQL stores."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
import ray

from seedbed.client import Client
from seedbed.coordinator import running_in_thread
from seedbed.worker.attempt import SANDBOX_RESOURCE, WORKER_NODE_RESOURCE
from seedbed.worker.catalog import CATALOG_RESOURCE
from tests.conftest import settings_for

_REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def ray_session() -> Iterator[None]:
    # Ray takes seconds to start: one instance for the whole session, shared by every coordinator.
    if not ray.is_initialized():
        # Ray puts the driver's working directory at ray.init on its workers' sys.path: started
        # while a test had chdir'ed to its tmp_path, functions from `tests` failed to import there.
        with contextlib.chdir(_REPO):
            ray.init(
                address="local",  # always a new instance: parallel test processes each start their own
                num_cpus=2,
                resources={SANDBOX_RESOURCE: 8.0, CATALOG_RESOURCE: 2.0, WORKER_NODE_RESOURCE: 1000.0},
                include_dashboard=False,
                namespace="seedbed-tests",
                log_to_driver=False,
            )
    yield
    ray.shutdown()


@pytest.fixture(scope="session")
def docker_client() -> Iterator[docker.DockerClient]:
    client = docker.from_env()
    client.ping()
    yield client
    client.close()


@pytest.fixture
def coordinator(ray_session: None, store_url: str, tmp_path: Path) -> Iterator[tuple[Any, Client]]:
    """A real coordinator: real store, real Ray, real Docker sandboxes."""
    settings = settings_for(store_url, tmp_path, abort_grace_seconds=20)
    with running_in_thread(settings) as coord, Client(coord.address) as client:
        yield coord, client


def containers_of(docker_client: docker.DockerClient, run_id: str) -> list[Any]:
    # ignore_removed: a container removed between the list and its inspect is simply gone.
    return docker_client.containers.list(
        all=True, filters={"label": f"seedbed.run={run_id}"}, ignore_removed=True
    )
