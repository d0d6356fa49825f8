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
from pathlib import Path
from typing import Any

import docker
import docker.errors
import requests.exceptions
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename

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
    "ImageBuildError",
    "RequirementsError",
    "base_tag",
    "derived_image_tag",
    "ensure_derived_image",
    "ensure_image",
    "image_tag",
    "locate_sandbox_images",
    "parse_requirements_header",
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


def base_tag() -> str:
    """The tag of the base root filesystem image (hash of the mmdebstrap arguments)."""
    return f"{BASE_REPOSITORY}:{_short_hash(*(a.encode() for a in MMDEBSTRAP_ARGS))}"


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


@contextlib.contextmanager
def _build_lock(cache_dir: Path, on_wait: LogFn | None = None) -> Iterator[None]:
    """Serialize builds across threads (threading lock) and processes (flock on a file).
    `on_wait` is told once when another build holds the lock (so a caller can say why it waits)."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    told = False

    def tell() -> None:
        nonlocal told
        if on_wait is not None and not told:
            told = True
            on_wait("waiting for another image build on this machine to finish")

    if not _process_lock.acquire(blocking=False):
        tell()
        _process_lock.acquire()
    try:
        with open(cache_dir / "image-build.lock", "a+b") as lock_file:
            try:
                fcntl.flock(lock_file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                tell()
                fcntl.flock(lock_file.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock_file.fileno(), fcntl.LOCK_UN)
    finally:
        _process_lock.release()


def _run_step(step: str, argv: list[str], log: LogFn, timeout: float) -> None:
    """Run a host command, streaming its output to `log`; raise ImageBuildError with the tail."""
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
        )
    except OSError as exc:
        raise ImageBuildError(step, f"cannot run {argv[0]}: {exc}") from exc
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    try:
        assert proc.stdout is not None  # noqa: S101 - guaranteed by stdout=PIPE
        for line in proc.stdout:
            tail.append(line.rstrip("\n"))
            log(f"[{step}] {line.rstrip()}")
        code = proc.wait()
    finally:
        timer.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if code != 0:
        raise ImageBuildError(step, f"exited with code {code}", "\n".join(tail))


def _ensure_base(client: docker.DockerClient, cache_dir: Path, log: LogFn) -> str:
    tag = base_tag()
    if _image_exists(client, tag):
        return tag
    if shutil.which("mmdebstrap") is None:
        raise ImageBuildError(
            "mmdebstrap", "mmdebstrap is not installed; install it (apt-get install mmdebstrap)"
        )
    repository, _, version = tag.partition(":")
    with tempfile.TemporaryDirectory(dir=cache_dir, prefix="base-") as tmp:
        tarball = Path(tmp) / "rootfs.tar"
        _run_step("mmdebstrap", ["mmdebstrap", *MMDEBSTRAP_ARGS, str(tarball)], log, 1800)
        log(f"[docker import] {tarball} -> {tag}")
        try:
            client.api.import_image_from_file(str(tarball), repository=repository, tag=version)
        except docker.errors.DockerException as exc:
            raise ImageBuildError("docker import", str(exc)) from exc
    if not _image_exists(client, tag):
        raise ImageBuildError("docker import", f"{tag} is missing after the import")
    return tag


def _ensure_wheelhouse(requirements: Path, cache_dir: Path, log: LogFn) -> Path:
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


def _write_context(root: Path, wheelhouse: Path, context: Path) -> None:
    shutil.copy2(root / "python" / "Dockerfile", context / "Dockerfile")
    shutil.copy2(root / "python" / "requirements.txt", context / "requirements.txt")
    wheels = context / "wheels"
    wheels.mkdir()
    for wheel in wheelhouse.glob("*.whl"):
        # Hard links are free; fall back to a copy across file systems.
        try:
            os.link(wheel, wheels / wheel.name)
        except OSError:
            shutil.copy2(wheel, wheels / wheel.name)
    package = _sdk_package_dir(root)
    for path in _sdk_files(root):
        target = context / "sdk" / path.relative_to(package)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)


def _docker_build(
    client: docker.DockerClient,
    context: Path,
    tag: str,
    base: str,
    log: LogFn,
    *,
    network_mode: str | None = None,
    step_images: list[str] | None = None,
) -> None:
    """Build `context` as `tag`; `step_images` (if given) collects the id of every step's image."""
    tail: deque[str] = deque(maxlen=_OUTPUT_TAIL_LINES)
    options: dict[str, Any] = {}
    if network_mode:
        options["network_mode"] = network_mode
    try:
        # The low-level call is the same classic-builder endpoint as `client.images.build`, but it
        # streams progress while the build runs instead of after it.
        stream: Iterator[dict[str, Any]] = client.api.build(
            path=str(context),
            tag=tag,
            buildargs={"BASE": base},
            rm=True,
            forcerm=True,
            pull=False,
            decode=True,
            **options,
        )
        for chunk in stream:
            if "error" in chunk:
                raise ImageBuildError("docker build", str(chunk["error"]).strip(), "\n".join(tail))
            text = str(chunk.get("stream", "")).rstrip()
            if text:
                tail.append(text)
                log(f"[docker build] {text}")
                step = _STEP_IMAGE.match(text)
                if step is not None and step_images is not None:
                    step_images.append(step.group(1))
    except docker.errors.DockerException as exc:
        raise ImageBuildError("docker build", str(exc), "\n".join(tail)) from exc
    if not _image_exists(client, tag):
        raise ImageBuildError("docker build", f"{tag} is missing after the build", "\n".join(tail))


def ensure_image(
    docker_client: docker.DockerClient,
    *,
    context_dir: Path | None = None,
    cache_dir: Path | None = None,
    log: LogFn | None = None,
    requirements: Sequence[str] = (),
    progress: LogFn | None = None,
) -> str:
    """Return the tag of the image to run, building what is missing.

    Without `requirements`: the sandbox image `seedbed-python:<hash>` (and its base). With them
    (pinned specifiers, e.g. from `parse_requirements_header`): the derived image
    `seedbed-python-x:<hash>` with those packages added (see `ensure_derived_image`).
    `log` gets every line of detail (default: this module's logger); `progress` only a few
    milestones worth showing to the scenario's author (building…, downloading…, built in …).
    Raises RequirementsError (the requirements' fault), ImageBuildError, EngineUnavailableError.
    """
    emit: LogFn = log if log is not None else logger.info
    pins = canonical_requirements(requirements)
    root = locate_sandbox_images(context_dir)
    tag = image_tag(root)
    if pins and _image_exists(docker_client, derived_image_tag(tag, pins)):
        return derived_image_tag(tag, pins)
    cache = Path(cache_dir) if cache_dir is not None else _default_cache_dir()
    if not _image_exists(docker_client, tag):
        _build_sandbox_image(docker_client, root, tag, cache, emit, progress)
    if not pins:
        return tag
    return ensure_derived_image(docker_client, tag, pins, cache_dir=cache, log=emit, progress=progress)


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
        base = _ensure_base(client, cache, emit)
        wheelhouse = _ensure_wheelhouse(root / "python" / "requirements.txt", cache, emit)
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
) -> str:
    """Return the tag of `base_image` (an existing seedbed-python image) plus `requirements`
    (exact pins), building it on first use: see the module docstring, steps a–d.

    Raises RequirementsError when the requirements cannot be met (a pin contradicting a
    preinstalled package, an unknown package or version, no wheel for the platform, a conflict),
    ImageBuildError when a step fails for another reason, EngineUnavailableError.
    """
    emit: LogFn = log if log is not None else logger.info
    pins = canonical_requirements(requirements)
    if not pins:
        return base_image
    tag = derived_image_tag(base_image, pins)
    if _image_exists(docker_client, tag):
        return tag
    if not _image_exists(docker_client, base_image):
        raise ImageBuildError("inputs", f"the base image {base_image} does not exist; build it first")
    cache = Path(cache_dir) if cache_dir is not None else _default_cache_dir()

    def say(message: str) -> None:
        emit(message)
        if progress is not None:
            progress(message)

    with _build_lock(cache, on_wait=say):
        if _image_exists(docker_client, tag):
            return tag
        started = time.monotonic()
        emit(f"building derived image {tag} from {base_image} with {', '.join(pins)}")
        say(
            f"building image with {len(pins)} extra package{'s' if len(pins) != 1 else ''} "
            f"(first use; cached afterwards): {', '.join(pins)}"
        )
        installed = _installed_distributions(docker_client, base_image)
        wanted = _against_base(pins, installed)
        if not wanted:
            emit(f"every requirement is already in {base_image}; tagging it as {tag}")
            _tag_image(docker_client, base_image, tag)
            return tag
        with tempfile.TemporaryDirectory(dir=cache, prefix="derived-") as tmp:
            context = Path(tmp)
            wheels = context / "wheels"
            wheels.mkdir()
            constraints = context / "constraints.txt"
            constraints.write_text("".join(f"{n}=={v}\n" for n, v in sorted(installed.items())))
            say(f"downloading wheels for {PLATFORM_TEXT} (with their dependencies)")
            _download_wheels(wanted, constraints, wheels, emit)
            extra = _new_wheels(wheels, installed)
            if not extra:
                emit(f"nothing to add to {base_image}; tagging it as {tag}")
                _tag_image(docker_client, base_image, tag)
                return tag
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
                _docker_build(
                    docker_client,
                    context,
                    tag,
                    base_image,
                    emit,
                    network_mode="none",
                    step_images=step_images,
                )
            finally:
                _remove_build_leftovers(docker_client, tag, base_image, step_images, emit)
        say(f"built image {tag} in {time.monotonic() - started:.1f}s")
    return tag


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


def _download_wheels(pins: Sequence[str], constraints: Path, wheels: Path, log: LogFn) -> None:
    argv = [
        *_PIP_DOWNLOAD,
        "--progress-bar",
        "off",
        *PIP_TARGET_ARGS,
        "-c",
        str(constraints),
        "-d",
        str(wheels),
        *pins,
    ]
    try:
        _run_step("pip download", argv, log, 900)
    except ImageBuildError as exc:
        explained = explain_download_failure(exc.output, pins)
        if explained is not None:
            raise explained from exc
        raise


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
