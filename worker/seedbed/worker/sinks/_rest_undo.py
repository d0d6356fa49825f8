"""How a purge undoes a REST connection's posts (its declared `undo`, "DELETE {path}/{id}"): the
check of that declaration, the ids a post's responses name (what a purge may delete), the entries
that stand for a request whose ids were not recorded, and the path an undo requests. `RestSink`'s
`created_ids`, `unrecorded` and `undo_path` are these, with the connection's settings.

A response can only name what its request created. A target answering with more than that (its
whole collection, a list endpoint reused for creation) must not make a purge delete the rest, so
a request whose response names more ids than rows posted, an id twice, or an id that is not a
non-empty string or integer of at most 200 characters without control characters records no id:
one entry stands for it instead, which a purge lists as "cannot undo" with why. So does a batch
request of several rows answered with one object (it names a batch job or a summary, not a row),
and every request of a post whose response names an id another request of that post named too
(a target answering every post with the same resource).

Rejected: a separate list of the unrecorded requests beside the ids (the coordinator keeps one JSON
list per batch, and a purge must meet them in the order they were posted, newest first).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from seedbed.worker.sinks._errors import ConfigurationError

if TYPE_CHECKING:
    from seedbed.worker.sinks._rest import PostMode, RestSettings

__all__ = ["check_undo", "created_ids", "undo_target", "unrecorded"]

_ID_CHARS = 200
# Starts an entry of created_ids that stands for a request whose ids were not recorded: an id never
# holds a control character, so no id reads as one.
_UNRECORDED = "\x00"


def check_undo(undo: str, connection_id: str) -> str:
    """A declared undo, "METHOD /path with {id}": only DELETE, with {id} in the path."""
    if not undo:
        return ""
    method, _, path = undo.partition(" ")
    if method != "DELETE" or "{id}" not in path or " " in path.strip():
        raise ConfigurationError(
            f"option 'undo' must read 'DELETE /path/{{id}}' (may use {{path}}), not {undo[:100]!r}",
            connection_id=connection_id,
        )
    return undo


def created_ids(
    settings: RestSettings, responses: Sequence[Any], *, rows: int, mode: PostMode
) -> list[str] | None:
    """See `RestSink.created_ids`."""
    if not settings.undo:
        return None
    size = 1 if mode == "single" else settings.batch_size
    posted = [min(size, rows - start) for start in range(0, rows, size)]
    answers = list(responses[: len(posted)])
    answers += [None] * (len(posted) - len(answers))  # an answer missing names no id
    named = [
        _named_ids(response, count, settings.undo_id_field, batch=mode == "batch")
        for count, response in zip(posted, answers, strict=True)
    ]
    named = _refuse_shared(named)
    ids: list[str] = []
    for count, (found, why) in zip(posted, named, strict=True):
        if why is not None:
            ids.append(f"{_UNRECORDED}{count}{_UNRECORDED}cannot undo: the response {why}")
        else:
            ids.extend(found + [""] * (count - len(found)))
    return ids


def unrecorded(entry: str) -> tuple[int, str] | None:
    """See `RestSink.unrecorded`."""
    if not entry.startswith(_UNRECORDED):
        return None
    count, _, why = entry[1:].partition(_UNRECORDED)
    return (int(count) if count.isdigit() else 1), why


def undo_target(undo: str, posted_to: str, created_id: str) -> str:
    """The path of `undo` for `created_id` posted to `posted_to`, unchecked: the id percent-encoded
    whole, so an id holding '/' or '..' cannot leave the resource."""
    _, _, template = undo.partition(" ")
    return template.replace("{path}", posted_to.strip("/")).replace("{id}", quote(created_id, safe=""))


def _refuse_shared(named: list[tuple[list[str], str | None]]) -> list[tuple[list[str], str | None]]:
    """`named` (per request: its ids, or why none) with every request that names an id another
    request of the same post named too refused, the first one included: two requests cannot
    both have created one resource (a target answering every post with the same one)."""
    first: dict[str, int] = {}
    shared: dict[int, tuple[str, int]] = {}  # request -> (an id it shares, the other request)
    for index, (ids, why) in enumerate(named):
        if why is not None:
            continue
        for created in ids:
            if not created:
                continue
            other = first.setdefault(created, index)
            if other != index:
                shared.setdefault(index, (created, other))
                shared.setdefault(other, (created, index))
    out = list(named)
    for index, (created, other) in shared.items():
        out[index] = (
            [],
            (
                f"named id {created!r}, as request {other} of the same post did (the target answers "
                "several posts with one resource?): delete the resources it created by hand"
            ),
        )
    return out


def _named_ids(response: Any, rows: int, id_field: str, *, batch: bool) -> tuple[list[str], str | None]:
    """The ids one response names (one per element of an array answer, "" where an element
    names none), or why they cannot be the `rows` rows its request posted. In batch mode only an
    array names ids, unless the request posted one row: an object answering several rows names
    something else (a batch job, a summary), not one of them."""
    if batch and rows > 1 and isinstance(response, Mapping):
        return [], (
            f"named one object for {rows} rows posted (a batch job or a summary, not the rows?): "
            "delete those resources by hand"
        )
    items = response if isinstance(response, list) else [response]
    if len(items) > rows:
        return [], (
            f"named {len(items)} ids for {rows} row{'s' if rows != 1 else ''} posted (the target "
            "answered with more than it created?): delete those resources by hand"
        )
    ids: list[str] = []
    seen: set[str] = set()
    for item in items:
        found, why = _field_at(item, id_field)
        if why is not None:
            return [], f"named {why}: delete the resources it created by hand"
        if found in seen:
            return [], f"named id {found!r} twice: delete the resources it created by hand"
        if found:
            seen.add(found)
        ids.append(found)
    return ids, None


def _field_at(item: Any, dotted: str) -> tuple[str, str | None]:
    """The id at a dotted path of a JSON object, as text ("" when absent or null), or why what is
    there is not an id."""
    for name in dotted.split("."):
        if not isinstance(item, Mapping) or name not in item:
            return "", None
        item = item[name]
    if item is None:
        return "", None
    if isinstance(item, bool) or not isinstance(item, str | int):
        return "", "an id that is not a string or an integer"
    text = str(item)
    if not text:
        return "", "an empty id"
    if len(text) > _ID_CHARS:
        return "", f"an id longer than {_ID_CHARS} characters"
    if any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in text):
        return "", "an id holding a control character"
    return text, None
