"""Purging what a run wrote outside SQL: the resources its REST posts created, the files it wrote.

    summary = purge_rest(sink, created, dry_run=False)   # created: [{call, batch, path, ids}], newest first
    summary = purge_files(folder, names, dry_run=False)  # the connection's folder, the names written

REST: a connection declares how a post is undone (`RestOptions.undo`, "DELETE /things/{id}"); the
coordinator keeps the ids each response named (see `RestSink.created_ids`) and hands them back here,
newest batch first. Each is deleted newest first through the sink (so its base URL stays the
allow-list, and its retries and deadlines apply), a 404 or 410 counting as already gone: a purge
interrupted and run again deletes nothing twice. An id the response did not name, or one whose path
the sink refuses, is listed (`changed`) with why; so is a request whose response named what it
cannot have created (more ids than rows posted, an id twice or not an id, an id another request
of the post named, one object for a batch of several rows: `RestSink.unrecorded`), for which no id
was recorded at all. An id that two posts of the run named (one resource for both: a target
answering every post with the same one) is listed, deleted by neither. The first failure stops
the purge, like a SQL one; what was deleted before it stays deleted.

Files: a `file` connection writes into its own folder in the run's folder of the worker's artifacts
directory (`sinks.connection_folder`), flat names only. Each name the run wrote is removed if it is
a regular file directly in that folder: a name with a separator, a symlink, a folder, anything the
folder's real path does not contain is left and listed. The folder goes too once empty.

Rejected: the coordinator calling REST targets itself (its network is not the workers', and the
connection's credentials are opened only where a sink runs); DELETE by the posted body's content
(a target owns its ids).
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from seedbed.worker.ledger._purge import ChangedRow, PurgedTable, PurgeFailure, PurgeSummary
from seedbed.worker.sinks import InvalidRequestError, RestError, RestSink

__all__ = ["purge_files", "purge_rest"]


def purge_rest(sink: RestSink, created: Sequence[Mapping[str, Any]], *, dry_run: bool) -> PurgeSummary:
    summary = PurgeSummary(dry_run)
    totals: dict[str, PurgedTable] = {}
    shared = _shared_targets(sink, created)
    for batch in created:
        call, number, path = int(batch["call"]), int(batch["batch"]), str(batch["path"])
        ids = [str(i) for i in batch["ids"]]
        total = totals.get(path)
        if total is None:
            total = totals[path] = PurgedTable(path)
            summary.tables.append(total)
        total.batches += 1
        for created_id in reversed(ids):
            unrecorded = sink.unrecorded(created_id)
            if unrecorded is not None:  # the response named what the request cannot have created
                rows, why = unrecorded
                total.rows_recorded += rows
                total.rows_changed += rows
                summary.changed.append(ChangedRow(path, call, number, "", why))
                continue
            total.rows_recorded += 1
            if not created_id:
                total.rows_changed += 1
                summary.changed.append(
                    ChangedRow(path, call, number, "", "the response named no id: cannot be deleted")
                )
                continue
            try:
                target = sink.undo_path(path, created_id)
            except InvalidRequestError as exc:
                total.rows_changed += 1
                summary.changed.append(ChangedRow(path, call, number, created_id, f"not deleted: {exc}"))
                continue
            others = shared.get(target, set()) - {(call, number)}
            if others:
                other_call, other_batch = min(others)
                total.rows_changed += 1
                summary.changed.append(
                    ChangedRow(
                        path,
                        call,
                        number,
                        created_id,
                        f"cannot undo: call {other_call} (batch {other_batch}) named it too (the target "
                        "answers several posts with one resource?): delete it by hand",
                    )
                )
                continue
            if dry_run:
                total.rows_deleted += 1
                continue
            try:
                if sink.delete(target):
                    total.rows_deleted += 1
            except RestError as exc:
                done = sum(t.rows_deleted for t in totals.values())
                summary.failure = PurgeFailure(
                    path,
                    call,
                    number,
                    f"undoing the post of {created_id!r} ({sink.settings.undo.split(' ')[0]} {target}) "
                    f"failed: {exc}; the {done} resource{'s' if done != 1 else ''} deleted before it "
                    "stay deleted: fix the target and purge again",
                )
                return summary
    return summary


def _shared_targets(sink: RestSink, created: Sequence[Mapping[str, Any]]) -> dict[str, set[tuple[int, int]]]:
    """The undo paths that more than one batch (call, batch) named, and which: two posts cannot
    both have created one resource, so neither is trusted with it."""
    named: dict[str, set[tuple[int, int]]] = {}
    for batch in created:
        key = (int(batch["call"]), int(batch["batch"]))
        for created_id in batch["ids"]:
            created_id = str(created_id)
            if not created_id or sink.unrecorded(created_id) is not None:
                continue
            with contextlib.suppress(InvalidRequestError):  # listed as not deleted, on its own
                named.setdefault(sink.undo_path(str(batch["path"]), created_id), set()).add(key)
    return {target: batches for target, batches in named.items() if len(batches) > 1}


def purge_files(folder: Path, names: Sequence[str], *, dry_run: bool) -> PurgeSummary:
    """Remove the files `names` from `folder` (the connection's folder of the run's artifacts
    folder), never following a symlink and never leaving the folder."""
    summary = PurgeSummary(dry_run)
    if not names:
        return summary
    try:
        real: Path | None = folder if stat.S_ISDIR(folder.lstat().st_mode) else None  # never a symlink
    except OSError:
        real = None  # gone, its files with it
    for name in dict.fromkeys(reversed(names)):  # newest first, each once
        table = PurgedTable(name, rows_recorded=1, batches=1)
        summary.tables.append(table)
        if not name or "/" in name or "\\" in name or name in (".", "..") or "\x00" in name:
            table.rows_changed = 1
            summary.changed.append(ChangedRow(name, 0, 0, name, "not a plain file name: left alone"))
            continue
        if real is None:
            continue  # the folder is gone, its files with it
        path = real / name
        try:
            info = path.lstat()
        except FileNotFoundError:
            continue  # already gone
        except OSError as exc:
            summary.failure = PurgeFailure(name, 0, 0, f"cannot look at file {name}: {exc.strerror}")
            return summary
        if not stat.S_ISREG(info.st_mode):
            table.rows_changed = 1
            summary.changed.append(
                ChangedRow(name, 0, 0, name, "no longer a regular file (a symlink or a folder): left alone")
            )
            continue
        if not dry_run:
            try:
                path.unlink()
            except FileNotFoundError:
                continue
            except OSError as exc:
                summary.failure = PurgeFailure(name, 0, 0, f"cannot remove file {name}: {exc.strerror}")
                return summary
        table.rows_deleted = 1
    if real is not None and not dry_run:
        with contextlib.suppress(OSError):  # other files in it: they stay
            os.rmdir(real)  # only when empty
    return summary
