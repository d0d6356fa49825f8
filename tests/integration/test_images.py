"""Offline image build against the real engine: no-op rebuilds, one build under concurrency,
failures that name their step."""

from __future__ import annotations

import contextlib
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import docker.errors
import pytest

from seedbed.worker.images import ImageBuildError, ensure_image, image_tag, locate_sandbox_images

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def docker_client() -> Iterator[docker.DockerClient]:
    client = docker.from_env()
    ensure_image(client)  # the real image: built once, outside the timings below
    yield client
    client.close()


@pytest.fixture
def context(tmp_path: Path, docker_client: docker.DockerClient) -> Iterator[Path]:
    """A copy of sandbox-images whose SDK differs by a unique comment (so its tag is new)."""
    copy = tmp_path / "sandbox-images"
    shutil.copytree(locate_sandbox_images(), copy, ignore=shutil.ignore_patterns("__pycache__"))
    with (copy / "sdk" / "seedbed" / "sdk" / "_log.py").open("a") as handle:
        handle.write(f"\n# test build {uuid.uuid4().hex}\n")
    yield copy
    with contextlib.suppress(docker.errors.ImageNotFound):
        docker_client.images.remove(image_tag(copy), force=True)


def test_rebuild_with_nothing_changed_is_a_fast_no_op(docker_client: docker.DockerClient) -> None:
    began = time.monotonic()
    tag = ensure_image(docker_client)
    assert time.monotonic() - began < 1.0
    assert tag == image_tag() and tag.startswith("seedbed-python:")
    docker_client.images.get(tag)


def test_concurrent_calls_build_once(docker_client: docker.DockerClient, context: Path) -> None:
    messages: list[str] = []
    tags: list[str] = []

    def build() -> None:
        tags.append(ensure_image(docker_client, context_dir=context, log=messages.append))

    threads = [threading.Thread(target=build) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert tags == [image_tag(context)] * 3
    assert sum(m.startswith("building sandbox image") for m in messages) == 1
    docker_client.images.get(tags[0])


def test_failing_build_names_the_step(docker_client: docker.DockerClient, context: Path) -> None:
    # The failing step runs right on the base, so a failed build leaves no dangling layer behind.
    (context / "python" / "Dockerfile").write_text(
        "ARG BASE\nFROM ${BASE}\nRUN echo about to fail && false\n"
    )
    with pytest.raises(ImageBuildError) as info:
        ensure_image(docker_client, context_dir=context, log=lambda _: None)
    assert info.value.step == "docker build"
    assert "about to fail" in info.value.output
    assert "image build failed at step 'docker build'" in str(info.value)
