"""A scenario's `# requirements:` header against the real engine and the real PyPI (from the host).

Small pure-Python wheels only: tabulate, python-slugify and its dependency text-unidecode. The
derived image is removed first, so the first run of this module really builds it (~15 s here);
the runs after it reuse it by its tag.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import docker
import docker.errors
import pytest

from seedbed.worker.images import base_tag, derived_image_tag, ensure_image, image_tag
from seedbed.worker.sandbox import (
    DockerSandboxDriver,
    Finished,
    Outcome,
    Output,
    SandboxEvent,
    SandboxLimits,
    SandboxRequest,
    Started,
)

pytestmark = pytest.mark.integration

PINS = ("python-slugify==8.0.4", "tabulate==0.9.0", "text-unidecode==1.3")
SCRIPT = (
    "# Seeds slugs and prints a table.\n"
    "# requirements: python-slugify==8.0.4, tabulate==0.9.0\n"
    "# requirements: text-unidecode==1.3\n"
    "import importlib.metadata as md\n"
    "from slugify import slugify\n"
    "from tabulate import tabulate\n"
    "print(slugify('Crème Brûlée à la carte'))\n"
    "print(tabulate([[1, 'a']], tablefmt='plain'))\n"
    "print(md.version('tabulate'), md.version('faker'), md.version('numpy'))\n"
)


@pytest.fixture(scope="module")
def docker_client() -> Iterator[docker.DockerClient]:
    client = docker.from_env()
    yield client
    client.close()


@pytest.fixture(scope="module")
def base_id(docker_client: docker.DockerClient) -> str:
    """The sandbox image (built once, outside any timing) and its id before any derived build."""
    ensure_image(docker_client)
    return str(docker_client.images.get(image_tag()).id)


@pytest.fixture(scope="module")
def derived(docker_client: docker.DockerClient, base_id: str) -> Iterator[str]:
    """The derived image's tag, absent when the module starts (so its first use builds it)."""
    tag = derived_image_tag(image_tag(), PINS)
    with contextlib.suppress(docker.errors.ImageNotFound):
        docker_client.images.remove(tag, force=True)
    yield tag
    with contextlib.suppress(docker.errors.ImageNotFound, docker.errors.APIError):
        docker_client.images.remove(tag, force=True)


@pytest.fixture(scope="module")
def driver(base_id: str) -> Iterator[DockerSandboxDriver]:
    drv = DockerSandboxDriver()
    yield drv
    drv.close()


def request(script: str, run_id: str = "run_requirements") -> SandboxRequest:
    return SandboxRequest(
        run_id=run_id,
        attempt=1,
        run_key=f"key-{run_id}",
        script=script,
        params={},
        limits=SandboxLimits(),
        deadline=datetime.now(UTC) + timedelta(minutes=10),
    )


class Result:
    def __init__(self, driver: DockerSandboxDriver, req: SandboxRequest) -> None:
        began = time.monotonic()
        self.events: list[SandboxEvent] = []
        self.started_after: float | None = None
        for event in driver.run(req):
            if isinstance(event, Started):
                self.started_after = time.monotonic() - began
            self.events.append(event)
        self.seconds = time.monotonic() - began
        assert isinstance(self.events[-1], Finished)
        self.finished: Finished = self.events[-1]
        started = [e for e in self.events if isinstance(e, Started)]
        self.started = started[0] if started else None

    def texts(self, stream: str = "stdout") -> list[str]:
        return [
            line.text
            for e in self.events
            if isinstance(e, Output)
            for line in e.lines
            if line.stream == stream
        ]

    def system_before_start(self) -> list[str]:
        lines: list[str] = []
        for event in self.events:
            if isinstance(event, Started):
                break
            if isinstance(event, Output):
                lines += [line.text for line in event.lines if line.stream == "system"]
        return lines


def test_header_packages_are_installed_and_the_image_is_reused(
    driver: DockerSandboxDriver, derived: str, docker_client: docker.DockerClient
) -> None:
    first = Result(driver, request(SCRIPT, "run_req_first"))
    assert first.finished.outcome is Outcome.SUCCEEDED, first.finished.error
    assert first.texts() == ["creme-brulee-a-la-carte", "1  a", "0.9.0 40.54.0 2.4.6"]
    assert first.started is not None and first.started.image == derived
    progress = first.system_before_start()
    assert progress[0] == (
        "building image with 3 extra packages (first use; cached afterwards): "
        "python-slugify==8.0.4, tabulate==0.9.0, text-unidecode==1.3"
    )
    assert any(text.startswith(f"built image {derived} in ") for text in progress)
    labels = docker_client.images.get(derived).labels
    assert labels["seedbed.requirements"] == " ".join(PINS)
    assert labels["seedbed.base"] == image_tag()

    second = Result(driver, request(SCRIPT, "run_req_second"))
    assert second.finished.outcome is Outcome.SUCCEEDED
    assert second.texts() == first.texts()
    assert second.started is not None and second.started.image == derived
    assert second.system_before_start() == []  # no build, nothing to say
    assert second.started_after is not None and second.started_after < 3.0
    print(
        f"\nfirst use (build + run): {first.seconds:.1f}s, sandbox started after "
        f"{first.started_after:.1f}s; cached reuse: {second.seconds:.1f}s, started after "
        f"{second.started_after:.2f}s"
    )


def test_base_image_is_untouched(
    driver: DockerSandboxDriver, derived: str, base_id: str, docker_client: docker.DockerClient
) -> None:
    derived_tag = ensure_image(docker_client, requirements=PINS)  # built by the test above, or now
    assert derived_tag == derived
    base = docker_client.images.get(image_tag())
    assert base.id == base_id
    extra = docker_client.images.get(derived)
    base_layers = base.attrs["RootFS"]["Layers"]
    assert extra.attrs["RootFS"]["Layers"][: len(base_layers)] == base_layers
    assert len(extra.attrs["RootFS"]["Layers"]) == len(base_layers) + 1  # one layer of new packages
    # The same user, entrypoint and environment as the base.
    for key in ("User", "Entrypoint", "Env", "WorkingDir"):
        assert extra.attrs["Config"][key] == base.attrs["Config"][key]
    result = Result(driver, request("import tabulate\n", "run_req_base"))
    assert result.started is not None and result.started.image == image_tag()
    assert result.finished.outcome is Outcome.SCRIPT_ERROR
    assert result.finished.error is not None and result.finished.error.type == "ModuleNotFoundError"


def test_bad_header_fails_at_once_with_its_line(
    driver: DockerSandboxDriver, docker_client: docker.DockerClient
) -> None:
    script = "# Seeds things.\n#\n# requirements: tabulate==0.9.0, python-slugify>=8\nimport tabulate\n"
    result = Result(driver, request(script, "run_req_bad_header"))
    error = result.finished.error
    assert result.finished.outcome is Outcome.SCRIPT_ERROR
    assert error is not None and error.type == "RequirementsError" and error.line == 3
    assert "`python-slugify>=8` is not an exact pin: pin it: python-slugify==<version>" in error.message
    assert result.started is None and result.seconds < 2
    assert not docker_client.containers.list(all=True, filters={"label": "seedbed.run=run_req_bad_header"})


@pytest.mark.parametrize(
    ("pin", "expected"),
    [
        (
            "seedbed-no-such-package-4f1c==1.0",
            "no wheel of seedbed-no-such-package-4f1c==1.0 for CPython 3.11 manylinux x86_64",
        ),
        ("tabulate==0.0.99", "versions with such wheels: "),
        # Source distributions only: never built, so there is nothing to install.
        ("pycrypto==2.6.1", "no wheel of pycrypto==2.6.1 for CPython 3.11 manylinux x86_64"),
    ],
)
def test_a_package_without_wheels_fails_clearly(driver: DockerSandboxDriver, pin: str, expected: str) -> None:
    script = f"# A scenario.\n# requirements: text-unidecode==1.3, {pin}\nprint('never runs')\n"
    result = Result(driver, request(script, "run_req_unknown"))
    error = result.finished.error
    assert result.finished.outcome is Outcome.SCRIPT_ERROR, error
    assert error is not None and error.type == "RequirementsError" and error.line == 2
    assert expected in error.message and "pick a version with wheels" in error.message
    assert result.started is None


def test_conflicts_with_the_preinstalled_packages_fail_clearly(driver: DockerSandboxDriver) -> None:
    # A direct pin of a preinstalled package at another version: refused before any download.
    result = Result(driver, request("# requirements: tabulate==0.9.0\n# requirements: faker==30.0.0\n"))
    error = result.finished.error
    assert result.finished.outcome is Outcome.SCRIPT_ERROR
    assert error is not None and error.type == "RequirementsError" and error.line == 2
    assert "faker==30.0.0 conflicts with faker==40.54.0, preinstalled in the sandbox image" in error.message
    # A dependency that needs another version of a preinstalled package: pip's resolver says so.
    result = Result(driver, request("# requirements: pytest-httpx==0.22.0\npass\n"))
    error = result.finished.error
    assert result.finished.outcome is Outcome.SCRIPT_ERROR
    assert error is not None and error.line == 1
    assert (
        "pytest-httpx 0.22.0 depends on httpx==0.24.*; the sandbox image has httpx==0.28.1" in error.message
    )


def test_a_pinned_image_is_extended_and_concurrent_runs_build_once(
    docker_client: docker.DockerClient, base_id: str
) -> None:
    # A new name for the same base: its derived image is new, so it is built here.
    alias = f"seedbed-python:test-{uuid.uuid4().hex[:12]}"
    docker_client.images.get(image_tag()).tag(*alias.split(":"))
    tag = derived_image_tag(alias, ["tabulate==0.9.0"])
    driver = DockerSandboxDriver(image=alias)
    results: list[Result] = []
    script = "# requirements: tabulate==0.9.0\nimport tabulate\nprint(tabulate.__version__)\n"
    try:
        threads = [
            threading.Thread(
                target=lambda i=i: results.append(Result(driver, request(script, f"run_req_c{i}")))
            )
            for i in range(3)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert [r.finished.outcome for r in results] == [Outcome.SUCCEEDED] * 3
        assert all(r.texts() == ["0.9.0"] for r in results)
        assert all(r.started is not None and r.started.image == tag for r in results)
        builders = [
            r for r in results if any(t.startswith("building image") for t in r.system_before_start())
        ]
        assert len(builders) == 1
        waiting = [r for r in results if r not in builders and r.system_before_start()]
        assert all(
            r.system_before_start() == ["waiting for another image build on this machine to finish"]
            for r in waiting
        )
    finally:
        driver.close()
        for name in (tag, alias):
            with contextlib.suppress(docker.errors.ImageNotFound, docker.errors.APIError):
                docker_client.images.remove(name, force=True)


def test_a_failed_build_is_infrastructure_with_its_step(docker_client: docker.DockerClient) -> None:
    # The bare root filesystem has no /opt/venv: listing its packages fails.
    driver = DockerSandboxDriver(image=base_tag())
    try:
        result = Result(
            driver, request("# requirements: tabulate==0.9.0\nimport tabulate\n", "run_req_infra")
        )
    finally:
        driver.close()
    error = result.finished.error
    assert result.finished.outcome is Outcome.INFRASTRUCTURE
    assert error is not None and error.type == "ImageBuild"
    assert "image build failed at step 'inspect base'" in error.message
    assert "/opt/venv/bin/python" in error.message
