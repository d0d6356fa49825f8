"""Buffers: how lists larger than one channel frame cross it, in chunks, both ways.

What a buffer holds counts against the attempt's memory budget (`MemoryBudget`) from the moment it
is filled until it is consumed (`resolve`) or paged out (`take`): a script that parks lists and
never uses them runs into the budget instead of the worker's memory.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from seedbed.worker.agent._budget import MemoryBudget, resident_estimate
from seedbed.worker.agent._errors import InvalidArgument, LimitExceeded

# Keep every reply well under the channel's frame cap and the driver's outbound cap.
PAGE_BYTES = 2 * 2**20
MAX_BUFFERS = 64


def encode(items: list[Any]) -> str:
    """The JSON text of a reply's items, as the channel will (about) send it."""
    return json.dumps(items, separators=(",", ":"), default=str)


class Buffers:
    def __init__(self, max_items: int, budget: MemoryBudget | None = None) -> None:
        self._items: dict[str, list[Any]] = {}
        self._page_sizes: dict[str, int] = {}
        # Bytes each buffer holds against the budget.
        self._held: dict[str, int] = {}
        self._max_items = max_items
        self._budget = budget if budget is not None else MemoryBudget()

    def put(self, handle: Any, items: Any) -> dict[str, Any]:
        if not isinstance(items, list):
            raise InvalidArgument("buffer.put needs a list of items")
        if handle is None and len(self._items) >= MAX_BUFFERS:
            raise LimitExceeded(f"more than {MAX_BUFFERS} open buffers")
        existing = 0 if handle is None else len(self._get(handle))
        if existing + len(items) > self._max_items:
            raise LimitExceeded(f"a list of more than {self._max_items} items (SEEDBED_MAX_GENERATE_ROWS)")
        size = resident_estimate(encode(items))
        self._budget.hold(size, "list uploaded into a buffer")
        if handle is None:
            handle = f"buf_{secrets.token_hex(6)}"
            self._items[handle] = []
        self._items[handle].extend(items)
        self._held[handle] = self._held.get(handle, 0) + size
        return {"handle": handle}

    def _get(self, handle: Any) -> list[Any]:
        if not isinstance(handle, str) or handle not in self._items:
            raise InvalidArgument(f"unknown buffer {str(handle)[:40]!r}")
        return self._items[handle]

    def _drop(self, handle: str) -> None:
        del self._items[handle]
        self._page_sizes.pop(handle, None)
        self._budget.release(self._held.pop(handle, 0))

    def resolve(self, value: Any) -> Any:
        """A list argument: the list itself, or the contents of the buffer it names (consumed)."""
        if isinstance(value, dict) and "$buffer" in value:
            items = self._get(value["$buffer"])
            self._drop(value["$buffer"])
            return items
        return value

    def reply(
        self, items: list[Any], meta: dict[str, Any] | None = None, *, encoded: str | None = None
    ) -> Any:
        """``items`` as they are when they fit one page, else a buffer the SDK pages in (held
        against the budget until taken). ``encoded``: the items' JSON text, when the caller has it."""
        text = encoded if encoded is not None else encode(items)
        if len(text) <= PAGE_BYTES:
            return items if meta is None else {**meta, "rows": items}
        size = resident_estimate(text)
        self._budget.hold(size, "reply waiting to be paged in")
        handle = f"buf_{secrets.token_hex(6)}"
        self._items[handle] = items
        self._held[handle] = size
        # Rows of one reply are alike in size: the average sets how many fit a page.
        self._page_sizes[handle] = max(1, int(len(items) * PAGE_BYTES / len(text)))
        out: dict[str, Any] = {"$buffer": handle, "count": len(items)}
        if meta is not None:
            out["meta"] = meta
        return out

    def take(self, handle: Any) -> dict[str, Any]:
        items = self._get(handle)
        size = self._page_sizes.get(handle, 1000)
        page, rest = items[:size], items[size:]
        if rest:
            # What leaves with the page is no longer held here.
            held = self._held.get(handle, 0)
            freed = held * len(page) // max(1, len(items))
            self._held[handle] = held - freed
            self._budget.release(freed)
            self._items[handle] = rest
        else:
            self._drop(handle)
        return {"items": page, "done": not rest}

    def clear(self) -> None:
        """Drop every buffer (the attempt ended)."""
        for handle in list(self._items):
            self._drop(handle)
