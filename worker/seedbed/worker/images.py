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

`image_tag()` is pure and cheap (it only hashes files), so a rebuild with nothing changed is a
lookup of an existing tag. A process-wide lock plus an `fcntl` lock on a file in the cache
directory make concurrent `ensure_image` calls (threads or processes) build once.

Rejected alternatives: `docker build` fetching wheels itself (no PyPI access inside the build on
machines behind a TLS-intercepting proxy); a `# syntax=` BuildKit frontend (pulls an image);
`docker import` through the CLI (the docker SDK already talks to the same engine URL).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import docker
import docker.errors
import requests.exceptions

from seedbed.worker._sandbox_errors import EngineUnavailableError, ImageBuildError

__all__ = ["ImageBuildError", "base_tag", "ensure_image", "image_tag", "locate_sandbox_images"]

logger = logging.getLogger(__name__)

IMAGE_REPOSITORY = "seedbed-python"
BASE_REPOSITORY = "seedbed-base"
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
# Bump when the build recipe in this module changes in a way the hashed files do not show.
_RECIPE_VERSION = b"seedbed-image-recipe-1"
_WHEELHOUSE_MARKER = ".complete"
_OUTPUT_TAIL_LINES = 40

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
def _build_lock(cache_dir: Path) -> Iterator[None]:
    """Serialize builds across threads (threading lock) and processes (flock on a file)."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    with _process_lock, open(cache_dir / "image-build.lock", "a+b") as lock_file:
        fcntl.flock(lock_file.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file.fileno(), fcntl.LOCK_UN)


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
        sys.executable,
        "-m",
        "pip",
        "download",
        "--disable-pip-version-check",
        "--no-input",
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


def _docker_build(client: docker.DockerClient, context: Path, tag: str, base: str, log: LogFn) -> None:
    tail: deque[str] = deque(maxlen=_OUTPUT_TAIL_LINES)
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
        )
        for chunk in stream:
            if "error" in chunk:
                raise ImageBuildError("docker build", str(chunk["error"]).strip(), "\n".join(tail))
            text = str(chunk.get("stream", "")).rstrip()
            if text:
                tail.append(text)
                log(f"[docker build] {text}")
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
) -> str:
    """Return the sandbox image tag, building the image (and its base) if it is missing."""
    emit: LogFn = log if log is not None else logger.info
    root = locate_sandbox_images(context_dir)
    tag = image_tag(root)
    if _image_exists(docker_client, tag):
        return tag
    cache = Path(cache_dir) if cache_dir is not None else _default_cache_dir()
    with _build_lock(cache):
        # Another thread or process may have built it while we waited for the lock.
        if _image_exists(docker_client, tag):
            return tag
        started = time.monotonic()
        emit(f"building sandbox image {tag}")
        base = _ensure_base(docker_client, cache, emit)
        wheelhouse = _ensure_wheelhouse(root / "python" / "requirements.txt", cache, emit)
        with tempfile.TemporaryDirectory(dir=cache, prefix="context-") as tmp:
            context = Path(tmp)
            _write_context(root, wheelhouse, context)
            _docker_build(docker_client, context, tag, base, emit)
        emit(f"built sandbox image {tag} in {time.monotonic() - started:.1f}s")
    return tag


def main(argv: list[str] | None = None) -> int:
    """`python -m seedbed.worker.images`: print the image tag, building the image if missing."""
    parser = argparse.ArgumentParser(
        prog="python -m seedbed.worker.images", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--context-dir", type=Path, default=None, help="the sandbox-images folder")
    parser.add_argument("--cache-dir", type=Path, default=None, help="default ~/.cache/seedbed")
    parser.add_argument("--docker-url", default=None, help="Docker engine URL (default: env)")
    parser.add_argument("--tag-only", action="store_true", help="print the tag, do not build")
    args = parser.parse_args(argv)
    if args.tag_only:
        print(image_tag(args.context_dir))
        return 0
    progress: LogFn = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
    try:
        client = docker.DockerClient(base_url=args.docker_url) if args.docker_url else docker.from_env()
        print(ensure_image(client, context_dir=args.context_dir, cache_dir=args.cache_dir, log=progress))
    except docker.errors.DockerException as exc:
        print(f"error: Docker engine unreachable: {exc}", file=sys.stderr)
        return 2
    except (ImageBuildError, EngineUnavailableError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
