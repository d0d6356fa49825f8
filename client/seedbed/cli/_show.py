"""``seedbed run show RUN``: a run, its attempts, and what it wrote to each target."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

from google.protobuf.json_format import MessageToDict
from google.protobuf.timestamp_pb2 import Timestamp

from seedbed.api.v1 import run_pb2
from seedbed.client import Client


@dataclass
class TargetTotals:
    connection_id: str
    operation: str
    target: str
    applied: int = 0
    replayed: int = 0
    rows: int = 0  # rows of the applied batches: what the target received


def per_target(batches: Iterable[run_pb2.WriteBatch]) -> list[TargetTotals]:
    totals: dict[tuple[str, str, str], TargetTotals] = {}
    for b in batches:
        key = (b.connection_id, b.operation, b.target)
        entry = totals.setdefault(key, TargetTotals(*key))
        if b.status == run_pb2.WRITE_BATCH_STATUS_REPLAYED:
            entry.replayed += 1
        else:
            entry.applied += 1
            entry.rows += max(b.rows, 0)  # -1: the driver did not say (DDL)
    return list(totals.values())


def _when(stamp: Timestamp, present: bool) -> str:
    return stamp.ToDatetime().strftime("%Y-%m-%d %H:%M:%S") if present else "-"


def _state(value: int) -> str:
    return run_pb2.RunState.Name(value).removeprefix("RUN_STATE_")


def render(run: run_pb2.Run, batches: list[run_pb2.WriteBatch]) -> str:
    lines = [f"run {run.id}  {_state(run.state)}"]
    lines.append(
        f"  scenario {run.scenario_id} (revision {run.scenario_revision}), fire {run.fire_id}, "
        f"{run.attempt_count} attempt(s)"
    )
    lines.append(f"  created {_when(run.create_time, run.HasField('create_time'))} UTC")
    if run.HasField("next_attempt_time"):
        lines.append(f"  next attempt at {_when(run.next_attempt_time, True)} UTC")
    if run.HasField("first_error") and run.first_error.type:
        lines.append(f"  error: {run.first_error.type}: {run.first_error.message}")
    lines.append("")
    lines.append(
        f"{'ATTEMPT':<8} {'OUTCOME':<17} {'NODE':<20} {'PID':>7}  {'STARTED':<19}  {'ENDED':<19}  ERROR"
    )
    for a in run.attempts:
        error = f"{a.error.type}: {a.error.message}" if a.HasField("error") and a.error.type else ""
        lines.append(
            f"{a.number:<8} {(a.outcome or a.state):<17} {a.node[:20] or '-':<20} {a.worker_pid or '-':>7}  "
            f"{_when(a.start_time, a.HasField('start_time')):<19}  "
            f"{_when(a.end_time, a.HasField('end_time')):<19}  {error[:80]}".rstrip()
        )
    lines.append("")
    if run.reports:
        lines.append(f"{'REPORTER':<24} {'EVENT':<13} {'STATUS':<10} {'TRIES':>5}  ERROR")
        for r in run.reports:
            lines.append(
                f"{r.reporter_id[:24]:<24} {r.event:<13} {r.status:<10} {r.tries:>5}  {r.error}".rstrip()
            )
        lines.append("")
    if not batches:
        lines.append("no write batches reported")
        return "\n".join(lines)
    lines.append(
        f"{'CONNECTION':<24} {'OPERATION':<10} {'TARGET':<30} {'APPLIED':>8} {'REPLAYED':>9} {'ROWS':>10}"
    )
    for t in per_target(batches):
        lines.append(
            f"{t.connection_id[:24]:<24} {t.operation:<10} {t.target[:30]:<30} "
            f"{t.applied:>8} {t.replayed:>9} {t.rows:>10}"
        )
    return "\n".join(lines)


def show_run(client: Client, run_id: str, as_json: bool) -> int:
    run = client.get_run(run_id)
    batches = client.write_batches(run_id)
    if as_json:
        document = {
            "run": MessageToDict(run),
            "write_batches": [MessageToDict(b) for b in batches],
        }
        print(json.dumps(document, indent=2))
    else:
        print(render(run, batches))
    return 0
