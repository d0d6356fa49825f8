"""Offline build of the images a cluster runs: `seedbed-coordinator`, `seedbed-worker` and, for the
compose cluster only, `seedbed-postgres` (the store).

Built like the sandbox image (`seedbed.worker.images`): no registry, a Debian root filesystem from
`mmdebstrap`, wheels downloaded on the host, the engine's classic builder, tags from input hashes.

- **Coordinator and worker** share one Dockerfile (`deploy/images/Dockerfile`, targets
  `coordinator` and `worker`) and one tag: the hash of the Dockerfile, the entry point script, the
  pinned closure of Seedbed's dependencies (`deploy/images/requirements.txt`), the base's mmdebstrap
  arguments, Seedbed's own sources and the sandbox image's tag. The context holds the wheelhouse, a
  wheel of Seedbed built from the source tree, and (worker only) the sandbox image saved with
  `docker save`, which a worker whose engine lacks it loads at start (`seedbed image load`).
- **Store** (`deploy/compose/postgres/`): Debian's PostgreSQL 15 on its own mmdebstrap base; on a
  machine with a registry the compose file may name `postgres:15` instead.

A rebuild with nothing changed is a lookup of existing tags. `save_images` writes any of them to
one tarball (layers shared by the coordinator and the worker are stored once) for `docker load`
on machines that cannot build.

Rejected: installing Seedbed from its sources inside the build (the build has no network, and a
wheel is what users install); one image for both roles (the worker carries the sandbox image and
runs as root to reach its engine; the coordinator needs neither).
"""

from __future__ import annotations

import io
import json
import shutil
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import docker
import docker.errors
import requests.exceptions

from seedbed.worker._sandbox_errors import ImageBuildError
from seedbed.worker.images import (
    LogFn,
    _build_lock,
    _default_cache_dir,
    _docker_build,
    _image_exists,
    _run_step,
    _short_hash,
    base_tag,
    copy_wheelhouse,
    ensure_base,
    ensure_image,
    ensure_wheelhouse,
    image_tag,
)

COORDINATOR_REPOSITORY = "seedbed-coordinator"
WORKER_REPOSITORY = "seedbed-worker"
STORE_REPOSITORY = "seedbed-postgres"
SERVER_BASE_REPOSITORY = "seedbed-server-base"
STORE_BASE_REPOSITORY = "seedbed-postgres-base"
SERVER_MMDEBSTRAP_ARGS: tuple[str, ...] = (
    "--variant=minbase",
    "--include=python3,python3-venv,ca-certificates,tini",
    "bookworm",
)
STORE_MMDEBSTRAP_ARGS: tuple[str, ...] = (
    "--variant=minbase",
    "--include=postgresql-15,tini,ca-certificates",
    "bookworm",
)
SANDBOX_TARBALL = "sandbox-image.tar"
# Bump when the build recipe in this module changes in a way the hashed files do not show.
_RECIPE_VERSION = b"seedbed-server-image-recipe-1"
_STORE_RECIPE_VERSION = b"seedbed-store-image-recipe-1"
# The folders of the Seedbed distribution (pyproject.toml's wheel packages) and what is not a source.
_SOURCE_DIRS = ("proto", "coordinator", "worker", "client", "sandbox-images")
_SKIP_PARTS = {"__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache"}


@dataclass(frozen=True)
class ServerImages:
    """The tags of one release's images."""

    sandbox: str
    coordinator: str
    worker: str

    def all(self) -> list[str]:
        return [self.sandbox, self.coordinator, self.worker]


def source_root(start: Path | None = None) -> Path:
    """The Seedbed source tree (the folder with pyproject.toml and deploy/images/)."""
    here = Path(start) if start is not None else Path(__file__).resolve().parents[3]
    if (here / "pyproject.toml").is_file() and (here / "deploy" / "images" / "Dockerfile").is_file():
        return here
    raise ImageBuildError(
        "inputs",
        f"the coordinator and worker images are built from Seedbed's source tree, and {here} is not one "
        "(no pyproject.toml and deploy/images/Dockerfile): run from a clone of the repository",
    )


def _source_files(root: Path) -> list[Path]:
    files = [root / "pyproject.toml", root / "README.md"]
    for folder in _SOURCE_DIRS:
        files += [
            path
            for path in (root / folder).rglob("*")
            if path.is_file()
            and not _SKIP_PARTS.intersection(path.parts)
            and path.suffix != ".pyc"
            and not any(part.endswith(".egg-info") for part in path.parts)
        ]
    return sorted(files)


def server_tag(root: Path | None = None) -> str:
    """The version shared by the coordinator and worker images. Pure: hashes files only."""
    root = source_root(root)
    images = root / "deploy" / "images"
    parts = [
        _RECIPE_VERSION,
        (images / "Dockerfile").read_bytes(),
        (images / "entrypoint.sh").read_bytes(),
        (images / "requirements.txt").read_bytes(),
        base_tag(SERVER_MMDEBSTRAP_ARGS, SERVER_BASE_REPOSITORY).encode(),
        image_tag(root / "sandbox-images").encode(),
    ]
    for path in _source_files(root):
        parts.append(path.relative_to(root).as_posix().encode())
        parts.append(path.read_bytes())
    return _short_hash(*parts)


def server_images(root: Path | None = None) -> ServerImages:
    root = source_root(root)
    version = server_tag(root)
    return ServerImages(
        sandbox=image_tag(root / "sandbox-images"),
        coordinator=f"{COORDINATOR_REPOSITORY}:{version}",
        worker=f"{WORKER_REPOSITORY}:{version}",
    )


def store_tag(root: Path | None = None) -> str:
    folder = source_root(root) / "deploy" / "compose" / "postgres"
    parts = [
        _STORE_RECIPE_VERSION,
        base_tag(STORE_MMDEBSTRAP_ARGS, STORE_BASE_REPOSITORY).encode(),
        *(f.read_bytes() for f in sorted(folder.iterdir()) if f.is_file()),
    ]
    return f"{STORE_REPOSITORY}:{_short_hash(*parts)}"


def _seedbed_wheel(root: Path, into: Path, log: LogFn) -> Path:
    """Build Seedbed's wheel from the source tree (hatchling from this environment when it has it,
    else pip fetches it in an isolated build environment)."""
    try:
        import hatchling  # noqa: F401

        isolation = ["--no-build-isolation"]
    except ImportError:
        isolation = []
    argv = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--disable-pip-version-check", "-q"]
    _run_step("seedbed wheel", [*argv, *isolation, "-w", str(into), str(root)], log, 600)
    wheels = sorted(into.glob("seedbed-*.whl"))
    if len(wheels) != 1:
        raise ImageBuildError("seedbed wheel", f"expected one seedbed wheel in {into}, found {len(wheels)}")
    return wheels[0]


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _where(root: Path | None, cache_dir: Path | None) -> tuple[Path, Path]:
    """The source tree and the build cache a build uses."""
    return source_root(root), Path(cache_dir) if cache_dir is not None else _default_cache_dir()


def _save(client: docker.DockerClient, tags: Sequence[str], target: Path) -> None:
    """`docker save` of `tags` into one tarball (a layer two images share is written once)."""
    api = client.api
    try:
        # GET /images/get?names=…: the SDK's get_image takes one name; the endpoint takes several.
        response = api._get(api._url("/images/get"), params={"names": list(tags)}, stream=True)
        api._raise_for_status(response)
        with open(target, "wb") as out:
            for chunk in response.iter_content(chunk_size=2**20):
                out.write(chunk)
    except (docker.errors.DockerException, requests.exceptions.RequestException, OSError) as exc:
        target.unlink(missing_ok=True)
        raise ImageBuildError("docker save", f"cannot save {', '.join(tags)}: {exc}") from exc


def ensure_server_images(
    client: docker.DockerClient,
    *,
    root: Path | None = None,
    cache_dir: Path | None = None,
    log: LogFn | None = None,
) -> ServerImages:
    """Build the sandbox, coordinator and worker images that are missing; their tags."""
    emit = log or _stderr
    root, cache = _where(root, cache_dir)
    tags = server_images(root)
    ensure_image(client, context_dir=root / "sandbox-images", cache_dir=cache, log=emit)
    if _image_exists(client, tags.coordinator) and _image_exists(client, tags.worker):
        return tags
    with _build_lock(cache, on_wait=emit):
        started = time.monotonic()
        base = ensure_base(client, cache, emit, SERVER_MMDEBSTRAP_ARGS, SERVER_BASE_REPOSITORY)
        wheelhouse = ensure_wheelhouse(root / "deploy" / "images" / "requirements.txt", cache, emit)
        with tempfile.TemporaryDirectory(dir=cache, prefix="server-context-") as tmp:
            context = Path(tmp)
            for name in ("Dockerfile", "entrypoint.sh", "requirements.txt"):
                shutil.copy2(root / "deploy" / "images" / name, context / name)
            copy_wheelhouse(wheelhouse, context / "wheels")
            (context / "seedbed").mkdir()
            _seedbed_wheel(root, context / "seedbed", emit)
            for target, tag in (("coordinator", tags.coordinator), ("worker", tags.worker)):
                if _image_exists(client, tag):
                    continue
                if target == "worker":
                    emit(f"[docker save] {tags.sandbox} -> the worker image")
                    _save(client, [tags.sandbox], context / SANDBOX_TARBALL)
                emit(f"building {tag}")
                _docker_build(client, context, tag, base, emit, target=target)
        emit(f"built {tags.coordinator} and {tags.worker} in {time.monotonic() - started:.0f}s")
    return tags


def ensure_store_image(
    client: docker.DockerClient,
    *,
    root: Path | None = None,
    cache_dir: Path | None = None,
    log: LogFn | None = None,
) -> str:
    """Build the compose cluster's PostgreSQL image when missing; its tag."""
    emit = log or _stderr
    root, cache = _where(root, cache_dir)
    tag = store_tag(root)
    if _image_exists(client, tag):
        return tag
    with _build_lock(cache, on_wait=emit):
        if _image_exists(client, tag):
            return tag
        base = ensure_base(client, cache, emit, STORE_MMDEBSTRAP_ARGS, STORE_BASE_REPOSITORY)
        with tempfile.TemporaryDirectory(dir=cache, prefix="store-context-") as tmp:
            context = Path(tmp)
            for path in (root / "deploy" / "compose" / "postgres").iterdir():
                if path.is_file():
                    shutil.copy2(path, context / path.name)
            emit(f"building {tag}")
            _docker_build(client, context, tag, base, emit)
    return tag


def save_images(client: docker.DockerClient, tags: Sequence[str], target: Path) -> Path:
    """Write `tags` into one tarball for `docker load` (or `seedbed image load`)."""
    missing = [tag for tag in tags if not _image_exists(client, tag)]
    if missing:
        raise ImageBuildError("docker save", f"not built yet: {', '.join(missing)} (run seedbed image build)")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    _save(client, tags, partial)
    partial.replace(target)
    return target


def tarball_tags(tarball: Path) -> list[str]:
    """The image tags a `docker save` tarball holds (its manifest.json), without loading it."""
    try:
        with tarfile.open(tarball) as archive:
            manifests = [m for m in archive.getmembers() if m.name.lstrip("./") == "manifest.json"]
            if len(manifests) != 1:
                raise ImageBuildError(
                    "docker load",
                    f"{tarball} is not an image tarball (docker save): {len(manifests)} manifest.json",
                )
            member = archive.extractfile(manifests[0])
            if member is None or manifests[0].size > 2**20:
                raise ImageBuildError("docker load", f"{tarball}: its manifest.json is not a small file")
            manifest = json.load(io.TextIOWrapper(member, encoding="utf-8"))
    except (OSError, tarfile.TarError, ValueError) as exc:
        raise ImageBuildError(
            "docker load", f"{tarball} is not an image tarball (docker save): {exc}"
        ) from exc
    if not isinstance(manifest, list) or not all(isinstance(entry, dict) for entry in manifest):
        raise ImageBuildError("docker load", f"{tarball}: manifest.json is not a list of images")
    tags: list[str] = []
    for entry in manifest:
        repo_tags = entry.get("RepoTags") or []
        if not isinstance(repo_tags, list) or not all(isinstance(tag, str) for tag in repo_tags):
            raise ImageBuildError("docker load", f"{tarball}: an image's RepoTags is not a list of tags")
        tags += repo_tags
    return tags


def load_images(
    connect: Callable[[], docker.DockerClient],
    tarball: Path,
    *,
    if_missing: bool = False,
    wait_seconds: float = 0,
    log: LogFn | None = None,
) -> list[str]:
    """`docker load` a tarball into the engine `connect()` reaches, waiting up to `wait_seconds`
    for it to answer (a Docker daemon sidecar starting beside us may not yet); the tags now present.
    `if_missing`: skip the load when the engine already has every tag in the tarball."""
    emit = log or _stderr
    tags = tarball_tags(tarball)
    give_up = time.monotonic() + wait_seconds
    while True:
        try:
            client = connect()  # the SDK asks the engine its API version here
            client.ping()
            break
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            if time.monotonic() >= give_up:
                raise ImageBuildError(
                    "docker load", f"the Docker engine did not answer within {wait_seconds:g}s: {exc}"
                ) from exc
            time.sleep(1)
    if if_missing and tags and all(_image_exists(client, tag) for tag in tags):
        emit(f"the engine already has {', '.join(tags)}")
        return tags
    emit(f"loading {', '.join(tags) or tarball.name} into the engine")
    try:
        with open(tarball, "rb") as data:
            client.images.load(data)
    except docker.errors.DockerException as exc:
        raise ImageBuildError("docker load", f"cannot load {tarball}: {exc}") from exc
    return tags
