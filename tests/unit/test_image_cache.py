"""The image cache's pruning plan (least recently used first, within size and age) and its use
index (a JSON file shared by the processes of a node)."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from seedbed.worker._image_cache import (
    RECENT_USE_GRACE,
    CachedImage,
    DerivedImagePolicy,
    ImageUseIndex,
    plan_pruning,
    size_text,
)

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
MiB = 2**20


def image(name: str, size_mib: int, used_hours_ago: float, kept: str = "") -> CachedImage:
    return CachedImage(
        tags=(f"seedbed-python-x:{name}",),
        image_id=f"sha256:{name}",
        size=size_mib * MiB,
        last_used=NOW - timedelta(hours=used_hours_ago),
        kept_because=kept,
    )


def names(plan: list[tuple[CachedImage, str]]) -> list[str]:
    return [chosen.tags[0].partition(":")[2] for chosen, _ in plan]


def test_nothing_goes_under_the_cap_and_within_the_age() -> None:
    images = [image("a", 100, 5), image("b", 100, 1)]
    assert plan_pruning(images, DerivedImagePolicy(cache_bytes=300 * MiB), NOW) == []


def test_least_recently_used_go_first_until_under_the_cap() -> None:
    images = [image("new", 100, 1), image("old", 100, 30), image("mid", 100, 10), image("newer", 100, 0.5)]
    plan = plan_pruning(images, DerivedImagePolicy(cache_bytes=250 * MiB), NOW)
    assert names(plan) == ["old", "mid"]
    assert "over the cache cap of 250 MiB" in plan[0][1] and "least recently used" in plan[0][1]


def test_kept_images_count_but_are_never_chosen() -> None:
    images = [image("in-use", 500, 100, kept="a container uses it"), image("a", 100, 50), image("b", 100, 1)]
    plan = plan_pruning(images, DerivedImagePolicy(cache_bytes=550 * MiB), NOW)
    # 700 MiB in all; the kept 500 stay, so both others go to reach 550.
    assert names(plan) == ["a", "b"]


def test_images_used_moments_ago_stay_even_over_the_cap() -> None:
    just = CachedImage(
        tags=("seedbed-python-x:just",),
        image_id="sha256:just",
        size=100 * MiB,
        last_used=NOW - RECENT_USE_GRACE / 2,
    )
    plan = plan_pruning([just, image("a", 100, 2)], DerivedImagePolicy(cache_bytes=0), NOW)
    assert names(plan) == ["a"]


def test_images_unused_too_long_go_whatever_the_size() -> None:
    images = [image("ancient", 1, 24 * 40), image("recent", 1, 24 * 2)]
    plan = plan_pruning(images, DerivedImagePolicy(max_unused=timedelta(days=30)), NOW)
    assert names(plan) == ["ancient"]
    assert "longer than 30 days" in plan[0][1]


def test_ties_are_broken_by_id_so_the_plan_is_stable() -> None:
    images = [image("b", 100, 3), image("a", 100, 3)]
    assert names(plan_pruning(images, DerivedImagePolicy(cache_bytes=100 * MiB), NOW)) == ["a"]


def test_policy_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="invalid derived image policy"):
        DerivedImagePolicy(max_image_bytes=0)
    with pytest.raises(ValueError, match="invalid derived image policy"):
        DerivedImagePolicy(max_unused=timedelta(0))


def test_size_text() -> None:
    assert size_text(2**30) == "1 GiB"
    assert size_text(2**20) == "1 MiB"
    assert size_text(int(1.17 * 2**20)) == "1.17 MiB"
    assert size_text(10) == "10 bytes"


def test_index_records_reads_and_forgets(tmp_path: Path) -> None:
    index = ImageUseIndex(tmp_path)
    assert index.read() == {}
    index.record("seedbed-python-x:a", NOW)
    index.record("seedbed-python-x:b", NOW - timedelta(days=1))
    index.record("seedbed-python-x:a", NOW + timedelta(hours=1))
    assert index.read() == {
        "seedbed-python-x:a": NOW + timedelta(hours=1),
        "seedbed-python-x:b": NOW - timedelta(days=1),
    }
    index.forget(["seedbed-python-x:b", "seedbed-python-x:unknown"])
    assert list(ImageUseIndex(tmp_path).read()) == ["seedbed-python-x:a"]
    data = json.loads((tmp_path / "image-use.json").read_text())
    assert data["version"] == 1 and set(data["images"]) == {"seedbed-python-x:a"}


def test_an_unreadable_index_starts_again(tmp_path: Path) -> None:
    (tmp_path / "image-use.json").write_text("{not json")
    index = ImageUseIndex(tmp_path)
    assert index.read() == {}
    index.record("seedbed-python-x:a", NOW)
    assert index.read() == {"seedbed-python-x:a": NOW}


def test_concurrent_records_are_all_kept(tmp_path: Path) -> None:
    # Threads stand in for the node's processes: each opens the lock file itself.
    def record(n: int) -> None:
        ImageUseIndex(tmp_path).record(f"seedbed-python-x:{n}", NOW)

    threads = [threading.Thread(target=record, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(ImageUseIndex(tmp_path).read()) == 20
