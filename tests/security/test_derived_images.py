"""Finding 12 of issue 10: derived images could fill the worker's disk and outlive their attempt.

A script's `# requirements:` header makes the worker download wheels and build an image derived
from the sandbox image. A careless or hostile tenant could (a) name packages as large as PyPI has
and keep every image ever built, (b) have those images pile up on the worker's disk for ever, and
(c) abort its attempts (or let them time out) while the worker keeps downloading and building.

Through the real path: the coordinator, Ray, the Docker engine and PyPI (small real wheels only;
pip's cache is not used by the derived build, so each build here downloads them again):

(a) a header whose wheels pass `max_derived_image_bytes` fails as a script error naming the size,
    the cap and the setting, and leaves no image and no downloaded wheels;
(b) past `derived_image_cache_bytes`, the least recently used derived image is removed, while the
    one a running sandbox uses (and the one just built) stay;
(c) an attempt aborted while its image is being built leaves no pip and no build container running
    shortly after, and no image.
"""

from __future__ import annotations

import contextlib
import fcntl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest

from seedbed.api.v1 import run_pb2, scenario_pb2
from seedbed.client import Client, LogEvent
from seedbed.coordinator import running_in_thread
from seedbed.worker.images import derived_image_tag, ensure_image
from tests.conftest import eventually, settings_for
from tests.integration.conftest import containers_of

pytestmark = pytest.mark.integration

MiB = 2**20
# pygments' wheel is about 1.2 MiB: over a 1 MiB cap, and big enough that installing it (some
# hundred modules, byte-compiled) keeps the build's RUN step busy for a few seconds.
LARGE = "pygments==2.19.1"
# Three tiny pure-Python wheels that nothing else in the test suite pins at these versions.
OLDEST, IN_USE, NEWEST = "iniconfig==2.0.0", "wcwidth==0.2.13", "tabulate==0.8.10"
# The derived build's RUN step (its command line, as `docker ps` shows it).
BUILD_STEP_MARK = "/usr/share/python-wheels/pip-"
# Where the worker (same user, same machine) keeps its image cache and its build lock.
IMAGE_CACHE = Path.home() / ".cache" / "seedbed"


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    """The coordinator's own store plays no part here: SQLite only, to keep the module fast."""
    return f"sqlite+aiosqlite:///{tmp_path / 'seedbed.db'}"


@contextlib.contextmanager
def _coordinator(store_url: str, tmp_path: Path, **overrides: Any) -> Iterator[Client]:
    settings = settings_for(store_url, tmp_path, abort_grace_seconds=20, **overrides)
    with running_in_thread(settings) as coord, Client(coord.address) as client:
        yield client


@pytest.fixture(scope="module")
def base_image(docker_client: docker.DockerClient) -> str:
    """The sandbox image, built outside any test's timing."""
    return ensure_image(docker_client)


def _absent(docker_client: docker.DockerClient, *tags: str) -> None:
    for tag in tags:
        with contextlib.suppress(docker.errors.ImageNotFound):
            docker_client.images.remove(tag, force=True)


def _exists(docker_client: docker.DockerClient, tag: str) -> bool:
    try:
        docker_client.images.get(tag)
    except docker.errors.ImageNotFound:
        return False
    return True


def _start(client: Client, scenario: str, script: str, timeout_seconds: int = 0) -> str:
    client.put_scenario(
        scenario,
        script=script,
        settings=scenario_pb2.ScenarioSettings(
            timeout_seconds=timeout_seconds,
            overlap_policy=scenario_pb2.OVERLAP_POLICY_ALLOW_CONCURRENT,
            retry_policy=scenario_pb2.RetryPolicy(maximum_attempts=1),
        ),
    )
    return client.run(scenario, {}).run_id


def _pip_downloads(package: str) -> list[str]:
    """Command lines of running `pip download` processes that fetch `package`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            text = " ".join(part.decode(errors="replace") for part in argv)
            if "pip" in text and "download" in text and package in text:
                found.append(text)
    return found


def _build_containers(docker_client: docker.DockerClient, created_before: float) -> list[str]:
    """Containers of a derived build's RUN step created before `created_before` (epoch seconds):
    later ones belong to another build that took the machine's build lock afterwards."""
    return [
        str(summary["Id"])[:12]
        for summary in docker_client.api.containers(all=True)
        if BUILD_STEP_MARK in str(summary.get("Command", "")) and summary.get("Created", 0) <= created_before
    ]


def _pygments_folders(before: set[Path]) -> list[Path]:
    """Build folders made since `before` that still hold a pygments wheel (downloaded or partial)."""
    return [
        folder
        for folder in set(IMAGE_CACHE.glob("derived-*")) - before
        if any(path.name.startswith("pygments-") for path in folder.rglob("*"))
    ]


def _wait_for_no_build() -> None:
    """Block until no image build holds the machine's build lock (every build goes through it)."""
    IMAGE_CACHE.mkdir(parents=True, exist_ok=True)
    with open(IMAGE_CACHE / "image-build.lock", "a+b") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


def test_wheels_past_the_cap_fail_the_run_and_leave_nothing(
    store_url: str, tmp_path: Path, docker_client: docker.DockerClient, base_image: str
) -> None:
    tag = derived_image_tag(base_image, [LARGE])
    _absent(docker_client, tag)
    folders_before = set(IMAGE_CACHE.glob("derived-*"))
    with _coordinator(store_url, tmp_path, max_derived_image_bytes=1 * MiB) as client:
        run_id = _start(client, "large-requirements", f"# requirements: {LARGE}\nimport pygments\n")
        run = client.wait(run_id)
    assert run.state == run_pb2.RUN_STATE_FAILED
    assert run.first_error.reason == run_pb2.FAILURE_REASON_SCRIPT_ERROR, run.first_error
    assert run.first_error.type == "RequirementsError"
    message = run.first_error.message
    assert "1 MiB" in message and "SEEDBED_MAX_DERIVED_IMAGE_BYTES" in message, message
    assert not _exists(docker_client, tag)
    assert not docker_client.images.list(all=True, filters={"label": f"seedbed.requirements={LARGE}"})
    assert _pygments_folders(folders_before) == []


def test_least_recently_used_derived_image_is_pruned_past_the_cache_cap(
    store_url: str, tmp_path: Path, docker_client: docker.DockerClient, base_image: str
) -> None:
    oldest, in_use, newest = (derived_image_tag(base_image, [pin]) for pin in (OLDEST, IN_USE, NEWEST))
    _absent(docker_client, oldest, in_use, newest)
    with _coordinator(store_url, tmp_path, derived_image_cache_bytes=0) as client:
        first = client.wait(_start(client, "oldest", f"# requirements: {OLDEST}\nimport iniconfig\n"))
        assert first.state == run_pb2.RUN_STATE_SUCCESS, first.first_error
        sleeper = _start(
            client,
            "in-use",
            f"# requirements: {IN_USE}\nimport time, wcwidth\nprint('up', flush=True)\ntime.sleep(300)\n",
        )
        eventually(
            lambda: any(c.status == "running" for c in containers_of(docker_client, sleeper)), timeout=180
        )
        last = client.wait(_start(client, "newest", f"# requirements: {NEWEST}\nimport tabulate\n"))
        assert last.state == run_pb2.RUN_STATE_SUCCESS, last.first_error
        # The sleeper's image is the least recently used one but a running sandbox uses it.
        assert _exists(docker_client, in_use)
        assert not _exists(docker_client, oldest)
        assert _exists(docker_client, newest)
        client.abort(sleeper, "test over")
        assert client.wait(sleeper).state == run_pb2.RUN_STATE_ABORTED
    _absent(docker_client, in_use, newest)


def test_aborting_an_attempt_during_its_build_stops_the_build(
    store_url: str, tmp_path: Path, docker_client: docker.DockerClient, base_image: str
) -> None:
    tag = derived_image_tag(base_image, [LARGE])
    _absent(docker_client, tag)
    folders_before = set(IMAGE_CACHE.glob("derived-*"))
    with _coordinator(store_url, tmp_path) as client:
        run_id = _start(client, "aborted-build", f"# requirements: {LARGE}\nimport pygments\n")
        # Abort once the build's RUN step (pip installing the wheels) has a container: after the
        # run says so, since builds on one machine take turns.
        for event in client.stream_logs(run_id, follow=True):
            assert isinstance(event, LogEvent), event
            if event.line.text.startswith("installing 1 wheel into the image"):
                break
        eventually(lambda: _build_containers(docker_client, time.time() + 3600), timeout=300, interval=0.02)
        client.abort(run_id, "stop the build")
        run = client.wait(run_id)
        ended_at = time.time()
    assert run.state == run_pb2.RUN_STATE_ABORTED, run
    # Shortly after: no pip and no build container of this build, running or not, no files.
    eventually(
        lambda: not _pip_downloads(LARGE) and not _build_containers(docker_client, ended_at), timeout=15
    )
    eventually(lambda: _pygments_folders(folders_before) == [], timeout=15)
    # And it does not finish behind the attempt's back: once no build holds the lock, no image.
    _wait_for_no_build()
    assert not _exists(docker_client, tag)
    assert not docker_client.images.list(all=True, filters={"label": f"seedbed.requirements={LARGE}"})
