"""Image tarballs for machines that cannot build, against the real engine: `seedbed image save`
writes images into one tarball, `seedbed image load` puts them back, `--if-missing` leaves an engine
that has them alone, and a tarball that is not one is refused by name."""

from __future__ import annotations

import contextlib
import io
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from seedbed.cli import main
from seedbed.worker.deploy_images import tarball_tags

pytestmark = pytest.mark.integration

Captured = pytest.CaptureFixture[str]


@pytest.fixture
def tiny_images() -> Iterator[list[str]]:
    """Two small images (a root filesystem of one file, imported), removed afterwards."""
    engine = docker.from_env()
    repository = f"seedbed-test-tiny-{uuid.uuid4().hex[:8]}"
    rootfs = io.BytesIO()
    with tarfile.open(fileobj=rootfs, mode="w") as archive:
        data = b"hello\n"
        info = tarfile.TarInfo("hello.txt")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    engine.api.import_image_from_data(rootfs.getvalue(), repository=repository, tag="a")
    engine.images.get(f"{repository}:a").tag(repository, "b")
    tags = [f"{repository}:a", f"{repository}:b"]
    try:
        yield tags
    finally:
        for tag in tags:
            with contextlib.suppress(docker.errors.ImageNotFound):
                engine.images.remove(tag, force=True)


def test_saved_images_load_back(
    tiny_images: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    engine = docker.from_env()
    tarball = tmp_path / "images.tar"
    assert main(["image", "save", str(tarball), *tiny_images]) == 0
    assert sorted(tarball_tags(tarball)) == sorted(tiny_images)

    assert main(["image", "load", "--if-missing", str(tarball)]) == 0
    assert "the engine already has" in capsys.readouterr().err

    for tag in tiny_images:
        engine.images.remove(tag, force=True)
    assert main(["image", "load", "--if-missing", "--wait", "5", str(tarball)]) == 0
    out, err = capsys.readouterr()
    assert sorted(out.split()) == sorted(tiny_images)
    assert "loading" in err
    for tag in tiny_images:
        engine.images.get(tag)  # back


def test_a_file_that_is_no_image_tarball_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bogus = tmp_path / "bogus.tar"
    bogus.write_bytes(b"\x00" * 1024)
    assert main(["image", "load", str(bogus)]) == 1
    assert "is not an image tarball" in capsys.readouterr().err


def test_saving_an_image_that_is_not_built_names_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["image", "save", str(tmp_path / "x.tar"), "seedbed-test-absent:nothing"]) == 1
    assert "not built yet: seedbed-test-absent:nothing" in capsys.readouterr().err
    assert not (tmp_path / "x.tar").exists()
