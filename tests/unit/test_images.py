"""`seedbed.worker.images`: the tag is a pure function of the inputs (no Docker needed here)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from seedbed.worker.images import (
    ImageBuildError,
    base_tag,
    image_tag,
    locate_sandbox_images,
)


@pytest.fixture
def context(tmp_path: Path) -> Path:
    copy = tmp_path / "sandbox-images"
    shutil.copytree(locate_sandbox_images(), copy, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return copy


def test_tag_is_stable_and_shaped(context: Path) -> None:
    tag = image_tag(context)
    assert tag == image_tag(context) == image_tag()  # same inputs as the repository's
    repository, _, digest = tag.partition(":")
    assert repository == "seedbed-python" and len(digest) == 16
    int(digest, 16)
    assert base_tag().startswith("seedbed-base:") and len(base_tag().split(":")[1]) == 16


@pytest.mark.parametrize(
    "relative",
    ["python/Dockerfile", "python/requirements.txt", "sdk/seedbed/sdk/_runtime.py"],
)
def test_tag_changes_with_every_input(context: Path, relative: str) -> None:
    before = image_tag(context)
    with (context / relative).open("a") as handle:
        handle.write("\n# changed\n")
    assert image_tag(context) != before


def test_tag_changes_when_an_sdk_file_is_added_and_ignores_bytecode(context: Path) -> None:
    before = image_tag(context)
    cache = context / "sdk" / "seedbed" / "sdk" / "__pycache__"
    cache.mkdir(exist_ok=True)
    (cache / "x.cpython-311.pyc").write_bytes(b"junk")
    assert image_tag(context) == before
    (context / "sdk" / "seedbed" / "sdk" / "_new.py").write_text("")
    assert image_tag(context) != before


def test_missing_context_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ImageBuildError, match="cannot find the sandbox-images folder") as info:
        image_tag(tmp_path)
    assert info.value.step == "inputs"
