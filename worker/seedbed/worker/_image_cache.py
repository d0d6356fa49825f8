"""The image cache of a worker node: derived images bounded in size and age, least recently used
first out.

Every `# requirements:` header a tenant writes leaves an image (`seedbed-python-x:<hash>`), and
every change of the sandbox image's inputs leaves the old `seedbed-python:<hash>` behind. Both are
removed here when they pass `DerivedImagePolicy`:

- images not used for `max_unused` go;
- then, while the images together take more than `cache_bytes`, the least recently used go.

An image is never removed while a container (running or stopped) uses it, when it is the current
sandbox image or the one an attempt is about to start, or when it was used moments ago
(`RECENT_USE_GRACE`: an attempt picked it and is creating its container). The size counted for an
image is what it adds to the image it was built from (for a derived image its `seedbed.base`,
for an old sandbox image the base root filesystem): their shared layers are stored once.

Use is recorded in a small JSON index in the image cache folder (`image-use.json`, tag → last
use), written under an `fcntl` lock (`image-use.lock`) since the Ray workers of a node share it;
an image the index does not know counts as last used when it was created.

Rejected alternatives: a label with the last use (an image's labels cannot change once built);
the engine's `LastTagTime` or creation time alone (tagging is not using; a popular image built
long ago would go first); `docker image prune` (it knows dangling and unused images, not the least
recently used, and not which sandbox image is current).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

__all__ = [
    "DEFAULT_CACHE_BYTES",
    "DEFAULT_MAX_IMAGE_BYTES",
    "DEFAULT_MAX_UNUSED",
    "RECENT_USE_GRACE",
    "CachedImage",
    "DerivedImagePolicy",
    "ImageUseIndex",
    "plan_pruning",
    "size_text",
]

logger = logging.getLogger(__name__)

GiB = 2**30
DEFAULT_MAX_IMAGE_BYTES = 1 * GiB
DEFAULT_CACHE_BYTES = 10 * GiB
DEFAULT_MAX_UNUSED = timedelta(days=30)
# An attempt records the use of its image before it creates its container: a pruning that runs
# in between must not take the image away.
RECENT_USE_GRACE = timedelta(seconds=10)

_INDEX_FILE = "image-use.json"
_INDEX_LOCK = "image-use.lock"
_INDEX_VERSION = 1


def size_text(size: int) -> str:
    """Bytes in words: `1 GiB`, `1.17 MiB`, `512 KiB`, `10 bytes`."""
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if size >= scale:
            return f"{size / scale:.3g} {unit}"
    return f"{size} bytes"


@dataclass(frozen=True)
class DerivedImagePolicy:
    """How large one derived image may be, and how much disk the derived images may hold.

    `max_image_bytes`: what one `# requirements:` header may add (the wheels downloaded, then the
    installed layer); `cache_bytes`: all derived and superseded sandbox images together;
    `max_unused`: how long an image is kept without use. Set by the coordinator
    (SEEDBED_MAX_DERIVED_IMAGE_BYTES, SEEDBED_DERIVED_IMAGE_CACHE_BYTES,
    SEEDBED_DERIVED_IMAGE_UNUSED_DAYS).
    """

    max_image_bytes: int = DEFAULT_MAX_IMAGE_BYTES
    cache_bytes: int = DEFAULT_CACHE_BYTES
    max_unused: timedelta = DEFAULT_MAX_UNUSED

    def __post_init__(self) -> None:
        if self.max_image_bytes < 1 or self.cache_bytes < 0 or self.max_unused <= timedelta(0):
            raise ValueError(f"invalid derived image policy: {self}")


@dataclass(frozen=True)
class CachedImage:
    """One image that pruning may remove: its tags, its id, the bytes it adds, its last use, and
    why it must stay (empty: it may go)."""

    tags: tuple[str, ...]
    image_id: str
    size: int
    last_used: datetime
    kept_because: str = ""


def plan_pruning(
    images: Sequence[CachedImage], policy: DerivedImagePolicy, now: datetime
) -> list[tuple[CachedImage, str]]:
    """The images to remove, least recently used first, each with the reason. Pure.

    Kept images (`kept_because`) and images used within `RECENT_USE_GRACE` count toward the
    total but are never chosen."""
    total = sum(image.size for image in images)
    chosen: list[tuple[CachedImage, str]] = []
    for image in sorted(images, key=lambda item: (item.last_used, item.image_id)):
        if image.kept_because or now - image.last_used < RECENT_USE_GRACE:
            continue
        if now - image.last_used > policy.max_unused:
            reason = (
                f"unused since {image.last_used.astimezone(UTC):%Y-%m-%d %H:%M} UTC, longer than "
                f"{policy.max_unused.days} days"
            )
        elif total > policy.cache_bytes:
            reason = (
                f"the derived and superseded images take {size_text(total)}, over the cache cap of "
                f"{size_text(policy.cache_bytes)}; this one was the least recently used"
            )
        else:
            continue
        chosen.append((image, reason))
        total -= image.size
    return chosen


class ImageUseIndex:
    """`image-use.json` in the image cache folder: tag → last use, shared by the node's processes."""

    def __init__(self, cache_dir: Path) -> None:
        self._dir = Path(cache_dir)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[dict[str, datetime]]:
        self._dir.mkdir(parents=True, exist_ok=True)
        with open(self._dir / _INDEX_LOCK, "a+b") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            try:
                uses = self._load()
                before = dict(uses)
                yield uses
                if uses != before:
                    self._store(uses)
            finally:
                fcntl.flock(lock.fileno(), fcntl.LOCK_UN)

    def _load(self) -> dict[str, datetime]:
        try:
            data = json.loads((self._dir / _INDEX_FILE).read_text(encoding="utf-8"))
            images = data["images"] if data.get("version") == _INDEX_VERSION else {}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            # Missing or unreadable: start again; unknown images count from their creation.
            return {}
        uses: dict[str, datetime] = {}
        for tag, text in images.items() if isinstance(images, dict) else ():
            with contextlib.suppress(TypeError, ValueError):
                when = datetime.fromisoformat(str(text))
                uses[str(tag)] = when if when.tzinfo else when.replace(tzinfo=UTC)
        return uses

    def _store(self, uses: dict[str, datetime]) -> None:
        payload = {
            "version": _INDEX_VERSION,
            "images": {tag: when.astimezone(UTC).isoformat() for tag, when in sorted(uses.items())},
        }
        # Written aside and renamed: a reader never sees half a file.
        fd, name = tempfile.mkstemp(dir=self._dir, prefix=".image-use-", suffix=".json")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(payload, out, indent=1)
            os.replace(name, self._dir / _INDEX_FILE)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(name)
            raise

    def record(self, tag: str, when: datetime | None = None) -> None:
        """Note that `tag` was used (now, or `when`)."""
        moment = when or datetime.now(UTC)
        with self._locked() as uses:
            uses[tag] = moment

    def read(self) -> dict[str, datetime]:
        with self._locked() as uses:
            return dict(uses)

    def forget(self, tags: Iterable[str]) -> None:
        """Drop the entries of `tags` (images removed, or gone from the engine)."""
        gone = set(tags)
        if not gone:
            return
        with self._locked() as uses:
            for tag in gone:
                uses.pop(tag, None)

    def record_safely(self, tag: str) -> None:
        """`record`, logging instead of raising: a failed note of use must not fail an attempt."""
        try:
            self.record(tag)
        except OSError as exc:
            logger.warning("could not record the use of image %s: %s", tag, exc)
