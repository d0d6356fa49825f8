"""``seedbed run purge RUN``: delete what a finished run inserted into its SQL targets."""

from __future__ import annotations

import json

from google.protobuf.json_format import MessageToDict

from seedbed.api.v1 import run_pb2
from seedbed.client import Client


def render(run_id: str, response: run_pb2.PurgeRunResponse) -> str:
    total = sum(t.rows_deleted for t in response.targets)
    if response.dry_run:
        head = f"run {run_id}: dry run, nothing deleted; a purge would delete {total} row(s)"
    else:
        head = f"run {run_id}: purged {total} row(s)"
    lines = [head]
    if response.targets:
        deleted = "WOULD DELETE" if response.dry_run else "DELETED"
        lines += ["", f"{'CONNECTION':<24} {'TABLE':<30} {deleted:>12} {'RECORDED':>9} {'BATCHES':>8}"]
        for t in response.targets:
            lines.append(
                f"{t.connection_id[:24]:<24} {t.table[:30]:<30} {t.rows_deleted:>12} "
                f"{t.rows_recorded:>9} {t.batches:>8}"
            )
        gone = sum(t.rows_recorded - t.rows_deleted for t in response.targets)
        if gone > 0:
            lines.append(f"{gone} recorded row(s) were not found: deleted since the run, not an error")
    elif not response.failures:
        lines.append("nothing to purge: no batch of the run is left in its targets' write ledgers")
    if response.skipped:
        lines += ["", f"skipped, not purgeable ({len(response.skipped)} batch(es)):"]
        lines.append(
            f"  {'CONNECTION':<24} {'OPERATION':<10} {'TARGET':<30} {'CALL':>5} {'BATCHES':>9}  REASON"
        )
        # The batches of one call share their reason: one line per call.
        calls: dict[tuple[str, str, str, int, str], list[int]] = {}
        for s in response.skipped:
            calls.setdefault((s.connection_id, s.operation, s.target, s.call, s.reason), []).append(s.batch)
        for (connection_id, operation, target, call, reason), batches in calls.items():
            span = f"{min(batches)}-{max(batches)}" if len(batches) > 1 else str(batches[0])
            lines.append(
                f"  {connection_id[:24]:<24} {operation:<10} {target[:30]:<30} {call:>5} {span:>9}  {reason}"
            )
    if response.skipped_connections:
        lines += ["", "connections skipped:"]
        lines += [f"  {c.connection_id}: {c.reason}" for c in response.skipped_connections]
    for f in response.failures:
        where = f", table {f.table}, call {f.call} batch {f.batch}" if f.table else ""
        lines += ["", f"FAILED on {f.connection_id}{where}:", f"  {f.message}"]
    return "\n".join(lines)


def purge_run(client: Client, run_id: str, *, dry_run: bool, as_json: bool) -> int:
    """Exit code 0 when everything purgeable was purged (or would be), 1 when the purge failed."""
    response = client.purge_run(run_id, dry_run=dry_run)
    if as_json:
        # As `run show --json` (protobuf's JSON mapping: int64 as strings), zeros and empty lists
        # included: a script reads `failures` without guessing.
        document = MessageToDict(response, always_print_fields_with_no_presence=True)
        print(json.dumps({"runId": run_id, **document}, indent=2))
    else:
        print(render(run_id, response))
    return 1 if response.failures else 0
