"""Row → record conversions shared by the store's repositories (``store`` and ``fires``)."""

from __future__ import annotations

import json
from typing import Any

from seedbed.coordinator.model import FireState, RunState
from seedbed.coordinator.store.records import (
    ErrorInfo,
    FireRecord,
    ReplayPin,
    RunRecord,
    ScenarioRecord,
    ScenarioSettingsValue,
    as_utc,
    now,
)


def to_scenario(row: Any) -> ScenarioRecord:
    return ScenarioRecord(
        id=row["id"],
        name=row["name"],
        script=row["script"],
        settings=ScenarioSettingsValue.from_json(json.loads(row["settings"])),
        revision=row["revision"],
        created_at=as_utc(row["created_at"]) or now(),
        updated_at=as_utc(row["updated_at"]) or now(),
        project_key=row.get("project_key") or "default",
        last_modified_by=row.get("last_modified_by") or "",
        script_modified_by=row.get("script_modified_by") or "",
    )


def to_fire(row: Any) -> FireRecord:
    return FireRecord(
        id=row["id"],
        scenario_id=row["scenario_id"],
        state=FireState(row["state"]),
        run_id=row["run_id"],
        cancel_reason=row["cancel_reason"],
        params=json.loads(row["params"]),
        idempotency_key=row["idempotency_key"],
        created_at=as_utc(row["created_at"]) or now(),
        trigger_id=row.get("trigger_id"),
        triggered_by=row.get("triggered_by") or "",
        scheduled_at=as_utc(row.get("scheduled_at")),
        queue_reason=row.get("queue_reason"),
        resolved_at=as_utc(row.get("resolved_at")),
        traceparent=row.get("traceparent") or "",
        dry_run=bool(row.get("dry_run")),
    )


def to_run(row: Any) -> RunRecord:
    return RunRecord(
        id=row["id"],
        scenario_id=row["scenario_id"],
        fire_id=row["fire_id"],
        run_key=row["run_key"],
        state=RunState(row["state"]),
        params=json.loads(row["params"]),
        script=row["script"],
        settings=ScenarioSettingsValue.from_json(json.loads(row["settings"])),
        scenario_revision=row["scenario_revision"],
        created_at=as_utc(row["created_at"]) or now(),
        started_at=as_utc(row["started_at"]),
        ended_at=as_utc(row["ended_at"]),
        error=ErrorInfo.from_json(json.loads(row["error"])) if row["error"] else None,
        attempt_count=row["attempt_count"],
        logs_truncated=bool(row["logs_truncated"]),
        dropped_log_lines=row["dropped_log_lines"],
        warning_count=row["warning_count"],
        exit_code=row["exit_code"],
        last_sequence=row["last_sequence"],
        abort_reason=row["abort_reason"],
        details=json.loads(row["details"]) if row.get("details") else None,
        next_attempt_at=as_utc(row.get("next_attempt_at")),
        project_key=row.get("project_key") or "default",
        run_as=row.get("run_as") or "",
        triggered_by=row.get("triggered_by") or "",
        trigger_id=row.get("trigger_id"),
        traceparent=row.get("traceparent") or "",
        dropped_spans=row.get("dropped_spans") or 0,
        image=row.get("image") or "",
        replayed_from=row.get("replayed_from") or "",
        replay=ReplayPin.from_json(row["replay"]) if row.get("replay") else None,
        dry_run=bool(row.get("dry_run")),
        dry_run_report=row.get("dry_run_report"),
    )
