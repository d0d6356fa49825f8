"""Buffers: how lists larger than one channel frame cross it, in chunks, both ways."""

from __future__ import annotations

import json
import secrets
from typing import Any

from seedbed.worker.agent._errors import InvalidArgument, LimitExceeded

# Keep every reply well under the channel's frame cap and the driver's outbound cap.
PAGE_BYTES = 2 * 2**20
MAX_BUFFERS = 64


class Buffers:
    def __init__(self, max_items: int) -> None:
        self._items: dict[str, list[Any]] = {}
        self._page_sizes: dict[str, int] = {}
        self._max_items = max_items

    def put(self, handle: Any, items: Any) -> dict[str, Any]:
        if not isinstance(items, list):
            raise InvalidArgument("buffer.put needs a list of items")
        if handle is None:
            if len(self._items) >= MAX_BUFFERS:
                raise LimitExceeded(f"more than {MAX_BUFFERS} open buffers")
            handle = f"buf_{secrets.token_hex(6)}"
            self._items[handle] = []
        buffer = self._get(handle)
        if len(buffer) + len(items) > self._max_items:
            raise LimitExceeded(f"a list of more than {self._max_items} items (SEEDBED_MAX_GENERATE_ROWS)")
        buffer.extend(items)
        return {"handle": handle}

    def _get(self, handle: Any) -> list[Any]:
        if not isinstance(handle, str) or handle not in self._items:
            raise InvalidArgument(f"unknown buffer {str(handle)[:40]!r}")
        return self._items[handle]

    def resolve(self, value: Any) -> Any:
        """A list argument: the list itself, or the contents of the buffer it names (consumed)."""
        if isinstance(value, dict) and "$buffer" in value:
            items = self._get(value["$buffer"])
            del self._items[value["$buffer"]]
            return items
        return value

    def reply(self, items: list[Any], meta: dict[str, Any] | None = None) -> Any:
        """``items`` as they are when they fit one page, else a buffer the SDK pages in."""
        encoded = len(json.dumps(items, separators=(",", ":"), default=str))
        if encoded <= PAGE_BYTES:
            return items if meta is None else {**meta, "rows": items}
        handle = f"buf_{secrets.token_hex(6)}"
        self._items[handle] = items
        # Rows of one reply are alike in size: the average sets how many fit a page.
        self._page_sizes[handle] = max(1, int(len(items) * PAGE_BYTES / encoded))
        out: dict[str, Any] = {"$buffer": handle, "count": len(items)}
        if meta is not None:
            out["meta"] = meta
        return out

    def take(self, handle: Any) -> dict[str, Any]:
        items = self._get(handle)
        size = self._page_sizes.get(handle, 1000)
        page, rest = items[:size], items[size:]
        if rest:
            self._items[handle] = rest
        else:
            del self._items[handle]
            self._page_sizes.pop(handle, None)
        return {"items": page, "done": not rest}
