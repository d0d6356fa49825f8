"""Offline build of the sandbox image, tagged by the hash of its inputs.

No registry is ever used. The build has three steps, each cached:

1. **Base root filesystem** — `mmdebstrap --variant=minbase --include=python3,python3-venv,
   ca-certificates bookworm` writes a tarball that is imported into the local engine as
   `seedbed-base:<hash of the mmdebstrap arguments>`; skipped when that tag exists.
2. **Wheelhouse** — `pip download` on the host (wheels only, for CPython 3.11 manylinux x86_64)
   into `<cache>/wheelhouse-<hash of requirements.txt>`; reused once its marker file exists.
   The host does it because a fresh root filesystem usually cannot reach PyPI (no proxy CA).
3. **Image** — a temporary build context (Dockerfile, requirements.txt, wheels/, sdk/) built by the
   engine's classic builder with `BASE` as a build argument, tagged
   `seedbed-python:<hash of Dockerfile, requirements, SDK sources, base tag>`.

**Derived images** (a scenario's `# requirements:` header, see `seedbed.worker._requirements`):
`ensure_image(..., requirements=[...])` / `ensure_derived_image` build `FROM seedbed-python:<tag>`
an image with the extra wheels, tagged `seedbed-python-x:<hash of recipe, base tag, sorted pins>`:

a. list what the base image's venv holds (a throwaway container, no network);
b. pins that contradict it are a `RequirementsError` at once (the base's packages never change);
c. `pip download` on the host, same platform flags as the wheelhouse, dependencies resolved,
   with the base's packages as constraints (`-c`), into a temporary context; the failures that
   are the script's (no such package/version, no wheel for the platform, a conflict) become a
   `RequirementsError` naming the package, the rest an `ImageBuildError("pip download")`;
d. only the new wheels go into the context; a two-stage build installs them with pip run from
   Debian's pip wheel (`/usr/share/python-wheels`, shipped by python3-venv; the venv has no pip)
   into a prefix, and the final stage copies that prefix over `/opt/venv` as one layer.
   The build runs with `network_mode="none"`.

The base image is never modified. Nothing to add (every pin already in the base) → the base image
is tagged with the derived tag, so the next lookup is as cheap as any other.

`image_tag()` and `derived_image_tag()` are pure and cheap (they only hash), so a rebuild with
nothing changed is a lookup of an existing tag. A process-wide lock plus an `fcntl` lock on a
file in the cache directory make concurrent `ensure_image` calls (threads or processes) build once
(derived images included).

Rejected alternatives: `docker build` fetching wheels itself (no PyPI access inside the build on
machines behind a TLS-intercepting proxy); a `# syntax=` BuildKit frontend (pulls an image);
`docker import` through the CLI (the docker SDK already talks to the same engine URL). For derived
images: installing into `/opt/venv` in a stage and copying the venv (duplicates the whole venv as a
layer); `pip install --target` (implies `--ignore-installed`); a pip wheel downloaded into the
context (Debian's is already in the base); build arguments or `labels=` for the labels (each is a
step, i.e. a container commit, seconds each on fuse-overlayfs).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import docker
import docker.errors
import requests.exceptions
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename

from seedbed.worker._image_cache import (
    CachedImage,
    DerivedImagePolicy,
    ImageUseIndex,
    plan_pruning,
    size_text,
)
from seedbed.worker._requirements import (
    PLATFORM_TEXT,
    RequirementsError,
    canonical_requirements,
    explain_download_failure,
    parse_requirements_header,
    requirement_name,
)
from seedbed.worker._sandbox_errors import EngineUnavailableError, ImageBuildError

__all__ = [
    "BuildCancelledError",
    "DerivedImagePolicy",
    "ImageBuildError",
    "RequirementsError",
    "base_tag",
    "derived_image_tag",
    "ensure_derived_image",
    "ensure_image",
    "image_tag",
    "locate_sandbox_images",
    "parse_requirements_header",
    "prune_images",
]

logger = logging.getLogger(__name__)

IMAGE_REPOSITORY = "seedbed-python"
BASE_REPOSITORY = "seedbed-base"
DERIVED_REPOSITORY = "seedbed-python-x"
VENV_PYTHON = "/opt/venv/bin/python"
MMDEBSTRAP_ARGS: tuple[str, ...] = (
    "--variant=minbase",
    "--include=python3,python3-venv,ca-certificates",
    "bookworm",
)
PIP_TARGET_ARGS: tuple[str, ...] = (
    "--only-binary=:all:",
    "--platform",
    "manylinux2014_x86_64",
    "--platform",
    "manylinux_2_17_x86_64",
    "--platform",
    "manylinux_2_28_x86_64",
    "--python-version",
    "3.11",
    "--implementation",
    "cp",
    "--abi",
    "cp311",
)
# The host-side `pip download` both wheelhouses (base and derived images) start with.
_PIP_DOWNLOAD = (sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--no-input")
# Bump when the build recipe in this module changes in a way the hashed files do not show.
_RECIPE_VERSION = b"seedbed-image-recipe-1"
_WHEELHOUSE_MARKER = ".complete"
_OUTPUT_TAIL_LINES = 40

_DERIVED_RECIPE_VERSION = b"seedbed-derived-recipe-1"
# The derived image's Dockerfile template (hashed into its tag; the @…@ label values are filled in
# per build: canonical specifiers only, so no quoting issues). One LABEL step, not build arguments
# or `labels=`: with the classic builder every step costs a container commit (seconds each on
# fuse-overlayfs). No `# syntax=` line (it would pull a frontend image).
DERIVED_DOCKERFILE = """\
# A seedbed-python image plus the wheels of a scenario's `# requirements:` header. Generated by
# seedbed.worker.images: BASE is the seedbed-python image; wheels/ holds only wheels of packages
# the base does not have, and wheels/extra.txt pins exactly those.
ARG BASE
FROM ${BASE} AS extra
COPY wheels/ /build/wheels/
# The venv has no pip: run pip from Debian's pip wheel (python3-venv ships it), offline, as the
# image's user, into a prefix laid out like the venv (lib/python3.11/site-packages, bin).
RUN set -e; set -- /usr/share/python-wheels/pip-*.whl; \\
    /opt/venv/bin/python "$1/pip" install --no-index --no-deps --no-cache-dir \\
        --disable-pip-version-check --no-warn-script-location \\
        --find-links /build/wheels --prefix /tmp/extra -r /build/wheels/extra.txt
FROM ${BASE}
COPY --from=extra --chown=0:0 /tmp/extra/ /opt/venv/
LABEL seedbed.image=python-x seedbed.base="@BASE@" seedbed.requirements="@REQUIREMENTS@" \\
      seedbed.installed="@INSTALLED@"
"""
# Prints name==version for every distribution in the base image's venv.
_LIST_DISTRIBUTIONS = (
    "import importlib.metadata as m\n"
    "for d in m.distributions():\n"
    "    print(d.metadata['Name'], d.version, sep='==')\n"
)

_STEP_IMAGE = re.compile(r"^ ---> ([0-9a-f]{12,64})$")
_STEP_CONTAINER = re.compile(r"^ ---> Running in ([0-9a-f]{12,64})$")
_BUILT_IMAGE = re.compile(r"^Successfully built ([0-9a-f]{12,64})$")
# How often a running build step checks its cancel event and (pip download) the folder's size.
_WATCH_SECONDS = 0.2
_MAX_IMAGE_SETTING = "SEEDBED_MAX_DERIVED_IMAGE_BYTES"


class BuildCancelledError(ImageBuildError):
    """The attempt that asked for the build ended (aborted, or past its deadline): the build was
    stopped and left nothing behind."""

    def __init__(self, step: str) -> None:
        super().__init__(step, "stopped: the attempt that asked for this image ended")


_process_lock = threading.Lock()

LogFn = Callable[[str], None]


def locate_sandbox_images(context_dir: Path | None = None) -> Path:
    """Find the `sandbox-images` folder: explicit, packaged in a wheel, or the repository's."""
    if context_dir is not None:
        candidates = [Path(context_dir)]
    else:
        here = Path(__file__).resolve()
        candidates = [here.parent / "sandbox_images", here.parents[3] / "sandbox-images"]
    for candidate in candidates:
        if (candidate / "python" / "Dockerfile").is_file() and (candidate / "sdk").is_dir():
            return candidate
    raise ImageBuildError(
        "inputs",
        "cannot find the sandbox-images folder (looked in "
        + ", ".join(str(c) for c in candidates)
        + "); pass context_dir",
    )


def _short_hash(*parts: bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        # Length-prefix every part so that different splits of the same bytes hash differently.
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()[:16]


def _sdk_package_dir(root: Path) -> Path:
    return root / "sdk" / "seedbed" / "sdk"


def _sdk_files(root: Path) -> list[Path]:
    package = _sdk_package_dir(root)
    return sorted(
        path
        for path in package.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    )


def base_tag(args: Sequence[str] = MMDEBSTRAP_ARGS, repository: str = BASE_REPOSITORY) -> str:
    """The tag of a base root filesystem image (hash of its mmdebstrap arguments)."""
    return f"{repository}:{_short_hash(*(a.encode() for a in args))}"


def image_tag(context_dir: Path | None = None) -> str:
    """The tag of the sandbox image for the current inputs. Pure: hashes files, talks to nobody."""
    root = locate_sandbox_images(context_dir)
    parts = [
        _RECIPE_VERSION,
        (root / "python" / "Dockerfile").read_bytes(),
        (root / "python" / "requirements.txt").read_bytes(),
        base_tag().encode(),
    ]
    package = _sdk_package_dir(root)
    for path in _sdk_files(root):
        parts.append(path.relative_to(package).as_posix().encode())
        parts.append(path.read_bytes())
    return f"{IMAGE_REPOSITORY}:{_short_hash(*parts)}"


def _default_cache_dir() -> Path:
    return Path.home() / ".cache" / "seedbed"


def _engine_url(client: docker.DockerClient) -> str:
    return str(getattr(client.api, "base_url", "the configured Docker URL"))


def _image_exists(client: docker.DockerClient, tag: str) -> bool:
    try:
        client.images.get(tag)
    except docker.errors.ImageNotFound:
        return False
    except (requests.exceptions.ConnectionError, docker.errors.DockerException) as exc:
        if isinstance(exc, docker.errors.APIError):
            raise
        raise EngineUnavailableError(_engine_url(client), str(exc)) from exc
    return True


def image_present(client: docker.DockerClient, tag: str, cache_dir: Path | None = None) -> bool:
    """Whether the engine has the image `tag` (a replay's recorded image); records its use."""
    if not _image_exists(client, tag):
        return False
    ImageUseIndex(Path(cache_dir) if cache_dir is not None else _default_cache_dir()).record_safely(tag)
    return True


@contextlib.contextmanager
def _build_lock(
    cache_dir: Path,
    on_wait: LogFn | None = None,
    cancel: threading.Event | None = None,
    *,
    blocking: bool = True,
) -> Iterator[bool]:
    """Serialize builds across threads (threading lock) and processes (flock on a file); yields
    True once held. `on_wait` is told once when another build holds the lock (so a caller can say
    why it waits); `cancel` stops the wait (BuildCancelledError); not `blocking`: yields False at
    once when the lock is taken (the janitor's pruning then skips a turn)."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    told = False

    def tell() -> None:
        nonlocal told
        if on_wait is not None and not told:
            told = True
            on_wait("waiting for another image build on this machine to finish")

    def check() -> None:
        if cancel is not None and cancel.is_set():
            raise BuildCancelledError("waiting for another build")

    if not _process_lock.acquire(blocking=False):
        if not blocking:
            yield False
            return
        tell()
        while not _process_lock.acquire(timeout=_WATCH_SECONDS):
            check()
    try:
        with open(cache_dir / "image-build.lock", "a+b") as lock_file:
            while True:
                try:
                    fcntl.flock(lock_file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if not blocking:
                        yield False
                        return
                    tell()
                    check()
                    if cancel is None:
                        fcntl.flock(lock_file.fileno(), fcntl.LOCK_EX)
                        break
                    cancel.wait(_WATCH_SECONDS)
            try:
                yield True
            finally:
                fcntl.flock(lock_file.fileno(), fcntl.LOCK_UN)
    finally:
        _process_lock.release()


def _folder_bytes(folder: Path) -> int:
    """Bytes of the files under `folder` (those that vanish meanwhile count nothing)."""
    total = 0
    for parent, _, files in os.walk(folder):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(parent, name)).st_size
    return total


def _run_step(
    step: str,
    argv: list[str],
    log: LogFn,
    timeout: float,
    *,
    env: dict[str, str] | None = None,
    cancel: threading.Event | None = None,
    watch: Callable[[], Exception | None] | None = None,
) -> None:
    """Run a host command, streaming its output to `log`; raise ImageBuildError with the tail.

    The command is killed past `timeout`, when `cancel` is set (BuildCancelledError), or when
    `watch` (polled every `_WATCH_SECONDS`) returns an exception, which is then raised."""
    log(f"[{step}] {' '.join(argv)}")
    tail: deque[str] = deque(maxlen=_OUTPUT_TAIL_LINES)
    try:
        proc = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            errors="replace",
            env=env,
        )
    except OSError as exc:
        raise ImageBuildError(step, f"cannot run {argv[0]}: {exc}") from exc
    stopped: list[Exception] = []
    ended = threading.Event()

    def guard() -> None:
        give_up = time.monotonic() + timeout
        while not ended.wait(_WATCH_SECONDS):
            if cancel is not None and cancel.is_set():
                stopped.append(BuildCancelledError(step))
            elif time.monotonic() > give_up:
                stopped.append(ImageBuildError(step, f"did not finish within {timeout:g}s"))
            elif watch is not None and (problem := watch()) is not None:
                stopped.append(problem)
            if stopped:
                proc.kill()
                return

    guardian = threading.Thread(target=guard, name=f"seedbed-{step.replace(' ', '-')}-guard", daemon=True)
    guardian.start()
    try:
        assert proc.stdout is not None  # noqa: S101 - guaranteed by stdout=PIPE
        for line in proc.stdout:
            tail.append(line.rstrip("\n"))
            log(f"[{step}] {line.rstrip()}")
        code = proc.wait()
    finally:
        ended.set()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        guardian.join()
    if stopped:
        raise stopped[0]
    if code != 0:
        raise ImageBuildError(step, f"exited with code {code}", "\n".join(tail))


def ensure_base(
    client: docker.DockerClient,
    cache_dir: Path,
    log: LogFn,
    args: Sequence[str] = MMDEBSTRAP_ARGS,
    repository: str = BASE_REPOSITORY,
) -> str:
    """The base root filesystem image made by `mmdebstrap ARGS`, imported when missing; its tag."""
    tag = base_tag(args, repository)
    if _image_exists(client, tag):
        return tag
    if shutil.which("mmdebstrap") is None:
        raise ImageBuildError(
            "mmdebstrap", "mmdebstrap is not installed; install it (apt-get install mmdebstrap)"
        )
    repository, _, version = tag.partition(":")
    with tempfile.TemporaryDirectory(dir=cache_dir, prefix="base-") as tmp:
        tarball = Path(tmp) / "rootfs.tar"
        _run_step("mmdebstrap", ["mmdebstrap", *args, str(tarball)], log, 1800)
        log(f"[docker import] {tarball} -> {tag}")
        try:
            client.api.import_image_from_file(str(tarball), repository=repository, tag=version)
        except docker.errors.DockerException as exc:
            raise ImageBuildError("docker import", str(exc)) from exc
    if not _image_exists(client, tag):
        raise ImageBuildError("docker import", f"{tag} is missing after the import")
    return tag


def ensure_wheelhouse(requirements: Path, cache_dir: Path, log: LogFn) -> Path:
    """A folder of the wheels `requirements` pins (CPython 3.11, manylinux x86_64), downloaded on
    the host once per content of the file."""
    key = _short_hash(requirements.read_bytes(), *(a.encode() for a in PIP_TARGET_ARGS))
    wheelhouse = cache_dir / f"wheelhouse-{key}"
    if (wheelhouse / _WHEELHOUSE_MARKER).is_file():
        return wheelhouse
    wheelhouse.mkdir(parents=True, exist_ok=True)
    argv = [
        *_PIP_DOWNLOAD,
        *PIP_TARGET_ARGS,
        "-r",
        str(requirements),
        "-d",
        str(wheelhouse),
    ]
    _run_step("pip download", argv, log, 1800)
    (wheelhouse / _WHEELHOUSE_MARKER).write_text("ok\n")
    return wheelhouse


def copy_wheelhouse(wheelhouse: Path, wheels: Path) -> None:
    """The wheelhouse's wheels into a new build-context folder `wheels` (hard links are free; a
    copy across file systems)."""
    wheels.mkdir()
    for wheel in wheelhouse.glob("*.whl"):
        try:
            os.link(wheel, wheels / wheel.name)
        except OSError:
            shutil.copy2(wheel, wheels / wheel.name)


def _write_context(root: Path, wheelhouse: Path, context: Path) -> None:
    shutil.copy2(root / "python" / "Dockerfile", context / "Dockerfile")
    shutil.copy2(root / "python" / "requirements.txt", context / "requirements.txt")
    copy_wheelhouse(wheelhouse, context / "wheels")
    package = _sdk_package_dir(root)
    for path in _sdk_files(root):
        target = context / "sdk" / path.relative_to(package)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)


class _BuildStopper:
    """Stops a classic-builder build when `cancel` is set: the engine goes on with a build whose
    client went away, so the container of the running step (the build prints its id) is killed,
    which fails the build at that step; a step that starts later is killed as soon as it is seen.
    Steps without a container (COPY, LABEL) take moments."""

    def __init__(self, client: docker.DockerClient, cancel: threading.Event | None, log: LogFn) -> None:
        self._client = client
        self._cancel = cancel
        self._log = log
        self._lock = threading.Lock()
        self._container: str | None = None
        self._ended = threading.Event()
        self._thread: threading.Thread | None = None
        if cancel is not None:
            self._thread = threading.Thread(target=self._watch, name="seedbed-build-stopper", daemon=True)
            self._thread.start()

    @property
    def cancelled(self) -> bool:
        return self._cancel is not None and self._cancel.is_set()

    def step_container(self, container_id: str) -> None:
        with self._lock:
            self._container = container_id
        if self.cancelled:
            self._kill()

    def _watch(self) -> None:
        assert self._cancel is not None  # noqa: S101 - only started with an event
        while not self._ended.is_set():
            if self._cancel.wait(_WATCH_SECONDS):
                self._kill()
                return

    def _kill(self) -> None:
        with self._lock:
            container, self._container = self._container, None
        if container is None:
            return
        self._log(f"[docker build] stopping: killing the step container {container[:12]}")
        with contextlib.suppress(docker.errors.DockerException, requests.exceptions.RequestException):
            self._client.api.kill(container)

    def close(self) -> None:
        self._ended.set()
        if self._thread is not None:
            self._thread.join()


def _docker_build(
    client: docker.DockerClient,
    context: Path,
    tag: str | None,
    base: str,
    log: LogFn,
    *,
    network_mode: str | None = None,
    step_images: list[str] | None = None,
    cancel: threading.Event | None = None,
    target: str | None = None,
) -> str:
    """Build `context` (as `tag`, or untagged when None); return the image id. `step_images` (if
    given) collects the id of every step's image. `cancel` stops the build (BuildCancelledError;
    an image the build finished meanwhile is removed). `target`: the Dockerfile stage to build."""
    tail: deque[str] = deque(maxlen=_OUTPUT_TAIL_LINES)
    options: dict[str, Any] = {}
    if network_mode:
        options["network_mode"] = network_mode
    if tag is not None:
        options["tag"] = tag
    if target is not None:
        options["target"] = target
    built: str | None = None
    stopper = _BuildStopper(client, cancel, log)
    try:
        # The low-level call is the same classic-builder endpoint as `client.images.build`, but it
        # streams progress while the build runs instead of after it.
        stream: Iterator[dict[str, Any]] = client.api.build(
            path=str(context),
            buildargs={"BASE": base},
            rm=True,
            forcerm=True,
            pull=False,
            decode=True,
            **options,
        )
        for chunk in stream:
            if "error" in chunk:
                if stopper.cancelled:
                    raise BuildCancelledError("docker build")
                raise ImageBuildError("docker build", str(chunk["error"]).strip(), "\n".join(tail))
            text = str(chunk.get("stream", "")).rstrip()
            if not text:
                continue
            tail.append(text)
            log(f"[docker build] {text}")
            if (running := _STEP_CONTAINER.match(text)) is not None:
                stopper.step_container(running.group(1))
            elif (step := _STEP_IMAGE.match(text)) is not None and step_images is not None:
                step_images.append(step.group(1))
            elif (done := _BUILT_IMAGE.match(text)) is not None:
                built = done.group(1)
    except docker.errors.DockerException as exc:
        if stopper.cancelled:
            raise BuildCancelledError("docker build") from exc
        raise ImageBuildError("docker build", str(exc), "\n".join(tail)) from exc
    finally:
        stopper.close()
    if stopper.cancelled:
        if built is not None and tag is None:
            with contextlib.suppress(docker.errors.DockerException, requests.exceptions.RequestException):
                client.api.remove_image(built)
        raise BuildCancelledError("docker build")
    if tag is not None:
        if not _image_exists(client, tag):
            raise ImageBuildError("docker build", f"{tag} is missing after the build", "\n".join(tail))
        return str(client.api.inspect_image(tag)["Id"])
    if built is None:
        raise ImageBuildError("docker build", "the build did not say which image it built", "\n".join(tail))
    return built


def ensure_image(
    docker_client: docker.DockerClient,
    *,
    context_dir: Path | None = None,
    cache_dir: Path | None = None,
    log: LogFn | None = None,
    requirements: Sequence[str] = (),
    progress: LogFn | None = None,
    policy: DerivedImagePolicy | None = None,
    cancel: threading.Event | None = None,
) -> str:
    """Return the tag of the image to run, building what is missing.

    Without `requirements`: the sandbox image `seedbed-python:<hash>` (and its base). With them
    (pinned specifiers, e.g. from `parse_requirements_header`): the derived image
    `seedbed-python-x:<hash>` with those packages added (see `ensure_derived_image`, which
    `policy` and `cancel` are for; the sandbox image's own build is not cancelled: it is the
    operator's, and cached for every attempt after). `log` gets every line of detail (default:
    this module's logger); `progress` only a few milestones worth showing to the scenario's
    author (building…, downloading…, built in …). Every tag returned is recorded as used.
    Raises RequirementsError (the requirements' fault), ImageBuildError, EngineUnavailableError.
    """
    emit: LogFn = log if log is not None else logger.info
    pins = canonical_requirements(requirements)
    root = locate_sandbox_images(context_dir)
    tag = image_tag(root)
    cache = Path(cache_dir) if cache_dir is not None else _default_cache_dir()
    if pins and _image_exists(docker_client, derived_image_tag(tag, pins)):
        ImageUseIndex(cache).record_safely(derived_image_tag(tag, pins))
        return derived_image_tag(tag, pins)
    if not _image_exists(docker_client, tag):
        _build_sandbox_image(docker_client, root, tag, cache, emit, progress)
    if not pins:
        ImageUseIndex(cache).record_safely(tag)
        return tag
    return ensure_derived_image(
        docker_client,
        tag,
        pins,
        cache_dir=cache,
        log=emit,
        progress=progress,
        policy=policy,
        cancel=cancel,
        current_base=tag,
    )


def _build_sandbox_image(
    client: docker.DockerClient,
    root: Path,
    tag: str,
    cache: Path,
    emit: LogFn,
    progress: LogFn | None,
) -> None:
    with _build_lock(cache, on_wait=progress):
        # Another thread or process may have built it while we waited for the lock.
        if _image_exists(client, tag):
            return
        started = time.monotonic()
        emit(f"building sandbox image {tag}")
        if progress is not None:
            progress("building the sandbox image (first use on this machine; cached afterwards)")
        base = ensure_base(client, cache, emit)
        wheelhouse = ensure_wheelhouse(root / "python" / "requirements.txt", cache, emit)
        with tempfile.TemporaryDirectory(dir=cache, prefix="context-") as tmp:
            context = Path(tmp)
            _write_context(root, wheelhouse, context)
            _docker_build(client, context, tag, base, emit)
        emit(f"built sandbox image {tag} in {time.monotonic() - started:.1f}s")
        if progress is not None:
            progress(f"built the sandbox image in {time.monotonic() - started:.0f}s")


# -- derived images (a scenario's `# requirements:` header) ------------------------------------


def derived_image_tag(base_image: str, requirements: Sequence[str]) -> str:
    """The tag of `base_image` plus `requirements`. Pure: validates (RequirementsError) and
    hashes the recipe, the base tag and the sorted canonical pins."""
    pins = canonical_requirements(requirements)
    digest = _short_hash(
        _DERIVED_RECIPE_VERSION,
        DERIVED_DOCKERFILE.encode(),
        base_image.encode(),
        *(pin.encode() for pin in pins),
    )
    return f"{DERIVED_REPOSITORY}:{digest}"


def ensure_derived_image(
    docker_client: docker.DockerClient,
    base_image: str,
    requirements: Sequence[str],
    *,
    cache_dir: Path | None = None,
    log: LogFn | None = None,
    progress: LogFn | None = None,
    policy: DerivedImagePolicy | None = None,
    cancel: threading.Event | None = None,
    current_base: str | None = None,
) -> str:
    """Return the tag of `base_image` (an existing seedbed-python image) plus `requirements`
    (exact pins), building it on first use: see the module docstring, steps a–d.

    `policy` caps what the build may add (`max_image_bytes`: the wheels while they download,
    then the installed layer; past it a RequirementsError, nothing kept) and the image cache the
    build is pruned into afterwards (`prune_images`; `current_base`, default `image_tag()`, is
    never pruned). `cancel` stops a build in progress (the wait for another build, `pip download`,
    `docker build`): BuildCancelledError, nothing kept. The tag returned is recorded as used.

    Raises RequirementsError when the requirements cannot be met (a pin contradicting a
    preinstalled package, an unknown package or version, no wheel for the platform, a conflict,
    more than the cap), ImageBuildError when a step fails for another reason, EngineUnavailableError.
    """
    emit: LogFn = log if log is not None else logger.info
    rules = policy if policy is not None else DerivedImagePolicy()
    pins = canonical_requirements(requirements)
    if not pins:
        return base_image
    tag = derived_image_tag(base_image, pins)
    cache = Path(cache_dir) if cache_dir is not None else _default_cache_dir()
    if _image_exists(docker_client, tag):
        ImageUseIndex(cache).record_safely(tag)
        return tag
    if not _image_exists(docker_client, base_image):
        raise ImageBuildError("inputs", f"the base image {base_image} does not exist; build it first")

    def say(message: str) -> None:
        emit(message)
        if progress is not None:
            progress(message)

    with _build_lock(cache, on_wait=say, cancel=cancel):
        if not _image_exists(docker_client, tag):
            _build_derived(docker_client, base_image, pins, tag, cache, rules, emit, say, cancel)
        ImageUseIndex(cache).record_safely(tag)
        try:
            prune_images(
                docker_client,
                rules,
                cache_dir=cache,
                keep=(tag, base_image),
                current_base=current_base,
                log=emit,
                locked=True,
            )
        except (EngineUnavailableError, OSError) as exc:
            # The image is built; pruning is the janitor's to retry.
            logger.warning("pruning images after building %s: %s", tag, exc)
    return tag


def _build_derived(
    client: docker.DockerClient,
    base_image: str,
    pins: Sequence[str],
    tag: str,
    cache: Path,
    policy: DerivedImagePolicy,
    emit: LogFn,
    say: LogFn,
    cancel: threading.Event | None,
) -> None:
    """Steps a–d of the module docstring, under the build lock; leaves `tag` or nothing."""
    started = time.monotonic()
    emit(f"building derived image {tag} from {base_image} with {', '.join(pins)}")
    say(
        f"building image with {len(pins)} extra package{'s' if len(pins) != 1 else ''} "
        f"(first use; cached afterwards): {', '.join(pins)}"
    )
    installed = _installed_distributions(client, base_image)
    wanted = _against_base(pins, installed)
    if not wanted:
        emit(f"every requirement is already in {base_image}; tagging it as {tag}")
        _tag_image(client, base_image, tag)
        return
    if cancel is not None and cancel.is_set():
        raise BuildCancelledError("inspect base")
    with tempfile.TemporaryDirectory(dir=cache, prefix="derived-") as tmp:
        context = Path(tmp)
        wheels = context / "wheels"
        wheels.mkdir()
        constraints = context / "constraints.txt"
        constraints.write_text("".join(f"{n}=={v}\n" for n, v in sorted(installed.items())))
        say(f"downloading wheels for {PLATFORM_TEXT} (with their dependencies)")
        _download_wheels(wanted, constraints, wheels, emit, policy.max_image_bytes, cancel)
        extra = _new_wheels(wheels, installed)
        if not extra:
            emit(f"nothing to add to {base_image}; tagging it as {tag}")
            _tag_image(client, base_image, tag)
            return
        pinned = {requirement_name(pin) for pin in pins}
        dependencies = [f"{n}=={v}" for n, v in extra if n not in pinned]
        if dependencies:
            say(
                "also installing unpinned dependencies: "
                + ", ".join(dependencies)
                + " (pin them in the header to fix their versions)"
            )
        (wheels / "extra.txt").write_text("".join(f"{n}=={v}\n" for n, v in extra))
        (context / "Dockerfile").write_text(
            DERIVED_DOCKERFILE.replace("@BASE@", base_image)
            .replace("@REQUIREMENTS@", " ".join(pins))
            .replace("@INSTALLED@", " ".join(f"{n}=={v}" for n, v in extra))
        )
        constraints.unlink()
        say(f"installing {len(extra)} wheel{'s' if len(extra) != 1 else ''} into the image")
        step_images: list[str] = []
        try:
            # Untagged until its size is checked: a build past the cap, or stopped, is never tagged.
            built = _docker_build(
                client,
                context,
                None,
                base_image,
                emit,
                network_mode="none",
                step_images=step_images,
                cancel=cancel,
            )
            _check_layer_size(client, built, base_image, policy)
            if cancel is not None and cancel.is_set():
                raise BuildCancelledError("docker build")
            _tag_image(client, built, tag)
        finally:
            _remove_build_leftovers(client, tag, base_image, step_images, emit)
    say(f"built image {tag} in {time.monotonic() - started:.1f}s")


def _over_cap(what: str, size: int, cap: int) -> RequirementsError:
    return RequirementsError(
        f"{what} {size_text(size)}, over the {size_text(cap)} a requirements header may add to the "
        f"sandbox image ({_MAX_IMAGE_SETTING}): drop packages or pin smaller ones, or ask the "
        "operator to raise the cap"
    )


def _check_layer_size(
    client: docker.DockerClient, image: str, base_image: str, policy: DerivedImagePolicy
) -> None:
    try:
        added = int(client.api.inspect_image(image)["Size"]) - int(
            client.api.inspect_image(base_image)["Size"]
        )
    except (docker.errors.DockerException, requests.exceptions.RequestException, KeyError, ValueError) as exc:
        raise ImageBuildError("docker build", f"cannot read the size of the image built: {exc}") from exc
    if added > policy.max_image_bytes:
        raise _over_cap("once installed, the packages take", added, policy.max_image_bytes)


def prune_images(
    docker_client: docker.DockerClient,
    policy: DerivedImagePolicy | None = None,
    *,
    cache_dir: Path | None = None,
    keep: Sequence[str] = (),
    current_base: str | None = None,
    log: LogFn | None = None,
    locked: bool = False,
) -> list[str]:
    """Remove derived images (`seedbed-python-x:*`) and superseded sandbox images (a
    `seedbed-python:*` other than `current_base`, default `image_tag()`) past `policy`, least
    recently used first (see `seedbed.worker._image_cache`); never those in `keep`, those a
    container uses, or the current sandbox image. Returns the tags removed.

    Runs under the build lock (a build in progress may be about to use an image): `locked` says the
    caller holds it; otherwise, when a build holds it, nothing is pruned this time.
    Raises EngineUnavailableError."""
    emit: LogFn = log if log is not None else logger.info
    rules = policy if policy is not None else DerivedImagePolicy()
    cache = Path(cache_dir) if cache_dir is not None else _default_cache_dir()
    if current_base is None:
        with contextlib.suppress(ImageBuildError, OSError):
            current_base = image_tag()
    if not locked:
        with _build_lock(cache, blocking=False) as held:
            if not held:
                emit("image pruning skipped: an image build is in progress")
                return []
            return prune_images(
                docker_client,
                rules,
                cache_dir=cache,
                keep=keep,
                current_base=current_base,
                log=emit,
                locked=True,
            )
    index = ImageUseIndex(cache)
    try:
        summaries: list[dict[str, Any]] = docker_client.api.images()
        used = {str(c.get("ImageID", "")) for c in docker_client.api.containers(all=True)}
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        raise EngineUnavailableError(_engine_url(docker_client), str(exc)[:300]) from exc
    images = _cached_images(summaries, index.read(), used, {*keep, *([current_base] if current_base else [])})
    removed: list[str] = []
    for image, reason in plan_pruning(images, rules, datetime.now(UTC)):
        gone = _remove_tags(docker_client, image.tags, emit)
        if gone:
            emit(f"removed image {', '.join(gone)} ({size_text(image.size)}): {reason}")
            removed += gone
    present = {t for summary in summaries for t in summary.get("RepoTags") or []}
    index.forget([*removed, *(t for t in index.read() if t not in present)])
    return removed


def _cached_images(
    summaries: Sequence[dict[str, Any]],
    uses: dict[str, datetime],
    used_ids: set[str],
    keep: set[str],
) -> list[CachedImage]:
    """The images pruning manages, from the engine's image summaries: each with the bytes it adds
    to the image it was built from, its last use, and why it stays, if it must."""
    size_of = {t: int(s.get("Size", 0)) for s in summaries for t in s.get("RepoTags") or []}
    out = []
    for summary in summaries:
        tags = tuple(
            t
            for t in summary.get("RepoTags") or []
            if t.startswith((f"{DERIVED_REPOSITORY}:", f"{IMAGE_REPOSITORY}:"))
        )
        if not tags:
            continue
        labels = summary.get("Labels") or {}
        parent = labels.get("seedbed.base", "") if labels.get("seedbed.image") == "python-x" else ""
        parent_size = size_of.get(parent) or size_of.get(base_tag(), 0)
        created = datetime.fromtimestamp(int(summary.get("Created", 0)), UTC)
        image_id = str(summary.get("Id", ""))
        kept = ""
        if image_id in used_ids:
            kept = "a container uses it"
        elif any(t in keep for t in summary.get("RepoTags") or []):
            kept = "current, or about to be used"
        out.append(
            CachedImage(
                tags=tags,
                image_id=image_id,
                size=max(0, int(summary.get("Size", 0)) - parent_size),
                last_used=max((uses[t] for t in tags if t in uses), default=created),
                kept_because=kept,
            )
        )
    return out


def _remove_tags(client: docker.DockerClient, tags: Sequence[str], log: LogFn) -> list[str]:
    """Untag (and so, with the last tag, remove) an image; the tags removed. An image a container
    started using meanwhile is refused by the engine: left alone, quietly."""
    gone = []
    for tag in tags:
        try:
            client.api.remove_image(tag)
        except docker.errors.ImageNotFound:
            gone.append(tag)
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            log(f"image {tag} stays: {str(exc)[:200]}")
            break
        else:
            gone.append(tag)
    return gone


def _installed_distributions(client: docker.DockerClient, image: str) -> dict[str, str]:
    """canonical name → version of every distribution in the image's venv (pip is not one),
    read by a throwaway container (no network, no capabilities, read-only, removed after)."""
    container: Any = None
    try:
        container = client.containers.create(
            image,
            entrypoint=[VENV_PYTHON, "-I", "-c", _LIST_DISTRIBUTIONS],
            command=[],
            network_mode="none",
            user="10001:10001",
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            read_only=True,
            labels={"seedbed.purpose": "list-distributions"},
        )
        container.start()
        status = container.wait(timeout=120).get("StatusCode")
        text = container.logs(stdout=True, stderr=True).decode("utf-8", "replace")
    except (requests.exceptions.RequestException, docker.errors.DockerException) as exc:
        raise ImageBuildError("inspect base", f"cannot list the packages of {image}: {exc}") from exc
    finally:
        if container is not None:
            with contextlib.suppress(docker.errors.DockerException, requests.exceptions.RequestException):
                container.remove(force=True)
    if status != 0:
        raise ImageBuildError(
            "inspect base", f"listing the packages of {image} exited with code {status}", text[-2000:]
        )
    installed: dict[str, str] = {}
    for line in text.splitlines():
        name, sep, version = line.strip().partition("==")
        if sep and name and version:
            installed[canonicalize_name(name)] = version
    if not installed:
        raise ImageBuildError("inspect base", f"{image} lists no packages in {VENV_PYTHON}", text[-2000:])
    return installed


def _against_base(pins: Sequence[str], installed: dict[str, str]) -> list[str]:
    """The pins that add something to the base. A pin of a preinstalled package at another
    version is the script's error: the base's packages never change (other scenarios and the
    SDK rely on them, and a seed's output depends on, e.g., Faker's exact version)."""
    wanted: list[str] = []
    for pin in pins:
        name = requirement_name(pin)
        version = pin.rpartition("==")[2]
        have = installed.get(name)
        if have is None:
            wanted.append(pin)
            continue
        if version != have:
            raise RequirementsError(
                f"{pin} conflicts with {name}=={have}, preinstalled in the sandbox image; preinstalled "
                f"packages cannot change: remove the pin, or pin {name}=={have}",
                package=name,
            )
        if "[" in pin:
            wanted.append(pin)  # its extras may add packages
    return wanted


def _download_wheels(
    pins: Sequence[str],
    constraints: Path,
    wheels: Path,
    log: LogFn,
    max_bytes: int,
    cancel: threading.Event | None = None,
) -> None:
    """`pip download` into `wheels`, killed once the context folder (the wheels, and pip's
    temporary files, kept beside them) passes `max_bytes`: a RequirementsError naming the cap."""
    context = wheels.parent
    scratch = context / "pip-tmp"
    scratch.mkdir(exist_ok=True)
    argv = [
        *_PIP_DOWNLOAD,
        "--no-cache-dir",
        "--progress-bar",
        "off",
        *PIP_TARGET_ARGS,
        "-c",
        str(constraints),
        "-d",
        str(wheels),
        *pins,
    ]

    def too_large() -> Exception | None:
        size = _folder_bytes(context)
        if size > max_bytes:
            return _over_cap("the wheels to download (with their dependencies) passed", size, max_bytes)
        return None

    try:
        # pip downloads into a temporary folder first: there, so that the size counts it.
        _run_step(
            "pip download",
            argv,
            log,
            900,
            env={**os.environ, "TMPDIR": str(scratch)},
            cancel=cancel,
            watch=too_large,
        )
    except RequirementsError:
        raise
    except BuildCancelledError:
        raise
    except ImageBuildError as exc:
        explained = explain_download_failure(exc.output, pins)
        if explained is not None:
            raise explained from exc
        raise
    # The last wheel may have landed between two looks.
    if (problem := too_large()) is not None:
        raise problem


def _new_wheels(wheels: Path, installed: dict[str, str]) -> list[tuple[str, str]]:
    """Remove the wheels of preinstalled packages (the constraints pinned them to the installed
    versions) and return (name, version) of the others, sorted."""
    extra: list[tuple[str, str]] = []
    for wheel in sorted(wheels.glob("*.whl")):
        try:
            name, version, _, _ = parse_wheel_filename(wheel.name)
        except InvalidWheelFilename as exc:
            raise ImageBuildError("pip download", f"unexpected file {wheel.name}: {exc}") from exc
        if name in installed:
            wheel.unlink()
        else:
            extra.append((str(name), str(version)))
    return extra


def _remove_build_leftovers(
    client: docker.DockerClient, tag: str, base_image: str, step_images: list[str], log: LogFn
) -> None:
    """Remove the build stage's images (the wheels and the installed prefix): the classic
    builder keeps them as cache, and each derived build would leave its packages there twice.
    Only step images outside the result's (and the base's) ancestry are removed."""
    keep: set[str] = set()
    for name in (tag, base_image):
        with contextlib.suppress(docker.errors.DockerException, requests.exceptions.RequestException):
            keep.add(str(client.api.inspect_image(name)["Id"]))
            keep.update(str(entry.get("Id", "")) for entry in client.api.history(name))
    for short in reversed(step_images):
        if any(full.removeprefix("sha256:").startswith(short) for full in keep):
            continue
        try:
            client.api.remove_image(short)
            log(f"removed build-stage image {short}")
        except docker.errors.ImageNotFound:
            pass  # removed with a child removed before it
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            log(f"could not remove build-stage image {short}: {exc}")


def _tag_image(client: docker.DockerClient, source: str, tag: str) -> None:
    repository, _, version = tag.rpartition(":")
    try:
        client.images.get(source).tag(repository, version)
    except docker.errors.DockerException as exc:
        raise ImageBuildError("docker tag", f"cannot tag {source} as {tag}: {exc}") from exc


def main(argv: list[str] | None = None) -> int:
    """`python -m seedbed.worker.images`: print the image tag, building the image if missing."""
    parser = argparse.ArgumentParser(
        prog="python -m seedbed.worker.images", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--context-dir", type=Path, default=None, help="the sandbox-images folder")
    parser.add_argument("--cache-dir", type=Path, default=None, help="default ~/.cache/seedbed")
    parser.add_argument("--docker-url", default=None, help="Docker engine URL (default: env)")
    parser.add_argument("--tag-only", action="store_true", help="print the tag, do not build")
    parser.add_argument(
        "-r",
        "--requirement",
        action="append",
        default=[],
        metavar="NAME==VERSION",
        help="an extra package (repeatable): the image derived for a `# requirements:` header",
    )
    parser.add_argument(
        "--script", type=Path, default=None, help="take the extra packages from this script's header"
    )
    args = parser.parse_args(argv)
    progress: LogFn = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
    try:
        requirements = list(args.requirement)
        if args.script is not None:
            requirements += parse_requirements_header(args.script.read_text(encoding="utf-8"))
        if args.tag_only:
            tag = image_tag(args.context_dir)
            print(derived_image_tag(tag, requirements) if requirements else tag)
            return 0
        client = docker.DockerClient(base_url=args.docker_url) if args.docker_url else docker.from_env()
        print(
            ensure_image(
                client,
                context_dir=args.context_dir,
                cache_dir=args.cache_dir,
                log=progress,
                requirements=requirements,
            )
        )
    except docker.errors.DockerException as exc:
        print(f"error: Docker engine unreachable: {exc}", file=sys.stderr)
        return 2
    except (ImageBuildError, EngineUnavailableError, RequirementsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
