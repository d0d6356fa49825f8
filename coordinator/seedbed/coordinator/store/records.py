"""Plain records the store returns; the servicers turn them into contract messages."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, overload

from seedbed.coordinator.model import FailureReason, FireState, OverlapPolicy, RunState
from seedbed.coordinator.retry import RetryPolicy


def now() -> datetime:
    return datetime.now(UTC)


@overload
def as_utc(value: datetime) -> datetime: ...
@overload
def as_utc(value: None) -> None: ...
def as_utc(value: datetime | None) -> datetime | None:
    """SQLite hands timestamps back naive; they were written in UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


@dataclass(frozen=True)
class ScenarioSettingsValue:
    active: bool = True
    timeout_seconds: int = 0
    memory_limit_bytes: int = 0
    overlap_policy: OverlapPolicy = OverlapPolicy.SKIP
    retry_policy: RetryPolicy = field(default_factory=RetryPolicy)
    # Validated Trigger and Reporter messages, as proto JSON (field names as in the .proto).
    triggers: tuple[dict[str, Any], ...] = ()
    reporters: tuple[dict[str, Any], ...] = ()
    run_as: str = ""
    # Inactive stops the triggers only (as in Dataiku); with this set, explicit runs are refused too.
    refuse_runs_when_inactive: bool = False
    # Runs are purged this long after they ended (the periodic purge pass); 0: never.
    purge_after_seconds: int = 0

    def refuses_fire(self, *, from_trigger: bool) -> bool:
        """Whether a fire is refused now: a trigger's while the scenario is inactive, an explicit one
        only when ``refuse_runs_when_inactive`` is set too."""
        return not self.active and (from_trigger or self.refuse_runs_when_inactive)

    def to_json(self) -> dict[str, Any]:
        return {
            "active": self.active,
            "timeout_seconds": self.timeout_seconds,
            "memory_limit_bytes": self.memory_limit_bytes,
            "overlap_policy": self.overlap_policy.value,
            "retry_policy": self.retry_policy.to_json(),
            "triggers": list(self.triggers),
            "reporters": list(self.reporters),
            "run_as": self.run_as,
            "refuse_runs_when_inactive": self.refuse_runs_when_inactive,
            "purge_after_seconds": self.purge_after_seconds,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ScenarioSettingsValue:
        return cls(
            active=bool(data.get("active", True)),
            timeout_seconds=int(data.get("timeout_seconds", 0)),
            memory_limit_bytes=int(data.get("memory_limit_bytes", 0)),
            overlap_policy=OverlapPolicy(data.get("overlap_policy", OverlapPolicy.SKIP.value)),
            # Settings saved before retries existed have none: the default policy.
            retry_policy=RetryPolicy.from_json(data.get("retry_policy")),
            triggers=tuple(data.get("triggers") or ()),
            reporters=tuple(data.get("reporters") or ()),
            run_as=str(data.get("run_as") or ""),
            refuse_runs_when_inactive=bool(data.get("refuse_runs_when_inactive", False)),
            purge_after_seconds=int(data.get("purge_after_seconds", 0)),
        )


@dataclass(frozen=True)
class ErrorInfo:
    reason: FailureReason | None
    type: str
    message: str
    traceback: str = ""
    line: int = 0
    # The step (SDK step("name")) open when it happened; empty outside any step.
    step: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "reason": self.reason.value if self.reason else None,
            "type": self.type,
            "message": self.message,
            "traceback": self.traceback,
            "line": self.line,
            "step": self.step,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ErrorInfo:
        reason = data.get("reason")
        return cls(
            reason=FailureReason(reason) if reason else None,
            type=str(data.get("type", "")),
            message=str(data.get("message", "")),
            traceback=str(data.get("traceback", "")),
            line=int(data.get("line") or 0),
            step=str(data.get("step") or ""),
        )


@dataclass(frozen=True)
class ScenarioRecord:
    id: str
    name: str
    script: str
    settings: ScenarioSettingsValue
    revision: int
    created_at: datetime
    updated_at: datetime
    project_key: str = "default"
    # The user who created or last changed it, in any way (shown; lends no identity).
    last_modified_by: str = ""
    # The user who created it or last changed its script: whose code it is.
    script_modified_by: str = ""

    @property
    def effective_run_as(self) -> str:
        """The user the scenario's runs act as: settings.run_as, else the author of its script.

        Not the last modifier: a rename, a pause or a new trigger must neither hand another user's
        script the editor's rights nor give the editor the rights of the script's author."""
        return self.settings.run_as or self.script_modified_by


@dataclass(frozen=True)
class FireRecord:
    id: str
    scenario_id: str
    state: FireState
    run_id: str | None
    cancel_reason: str | None
    params: dict[str, str]
    idempotency_key: str | None
    created_at: datetime
    trigger_id: str | None = None  # None: an explicit RunScenario call
    triggered_by: str = ""
    scheduled_at: datetime | None = None
    queue_reason: str | None = None  # set while the fire waits behind an active run
    resolved_at: datetime | None = None
    traceparent: str = ""  # the fire's span (W3C traceparent); empty when tracing is off
    dry_run: bool = False  # its run checks every write against the targets and writes nothing


@dataclass(frozen=True)
class ReplayPin:
    """What the attempts of a replay reproduce (AttemptSpec.replay; ``runs.replay`` as JSON): the
    run it replays, the run its ledger rows are signed for, the image, the connection mapping, the
    library versions and template versions the original used."""

    replayed_from: str
    ledger_run_id: str
    image: str
    connection_aliases: dict[str, str] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    template_versions: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(
            {
                "replayed_from": self.replayed_from,
                "ledger_run_id": self.ledger_run_id,
                "image": self.image,
                "connection_aliases": self.connection_aliases,
                "versions": self.versions,
                "template_versions": self.template_versions,
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> ReplayPin:
        doc = json.loads(text)
        return cls(
            replayed_from=str(doc.get("replayed_from") or ""),
            ledger_run_id=str(doc.get("ledger_run_id") or ""),
            image=str(doc.get("image") or ""),
            connection_aliases={str(k): str(v) for k, v in (doc.get("connection_aliases") or {}).items()},
            versions={str(k): str(v) for k, v in (doc.get("versions") or {}).items()},
            template_versions={str(k): int(v) for k, v in (doc.get("template_versions") or {}).items()},
        )


@dataclass(frozen=True)
class RunRecord:
    id: str
    scenario_id: str
    fire_id: str
    run_key: str
    state: RunState
    params: dict[str, str]
    script: str
    settings: ScenarioSettingsValue
    scenario_revision: int
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    error: ErrorInfo | None
    attempt_count: int
    logs_truncated: bool
    dropped_log_lines: int
    warning_count: int
    exit_code: int | None
    last_sequence: int
    abort_reason: str | None
    details: dict[str, Any] | None = None
    # Set while a retry waits for its backoff.
    next_attempt_at: datetime | None = None
    project_key: str = "default"
    run_as: str = ""
    triggered_by: str = ""
    trigger_id: str | None = None
    traceparent: str = ""  # the fire's span, the parent of the run's; empty when tracing is off
    dropped_spans: int = 0  # spans of the run not kept (past the cap, or lost with a worker)
    image: str = ""  # the sandbox image its script ran in (the latest attempt's); empty before one
    replayed_from: str = ""  # the run it replays (RunService.ReplayRun); empty: not a replay
    replay: ReplayPin | None = None  # what a replay's attempts reproduce
    dry_run: bool = False  # nothing written: every write was checked against the live schema
    dry_run_report: bytes | None = None  # a serialized DryRunReport, once an attempt brought one

    @property
    def ledger_run_id(self) -> str:
        """The run id its write-ledger rows are signed for (and the key derived for): its own, or for
        a replay the run first replayed, so that a replay into the same targets finds every batch
        already written. A purge of the run reads its rows with this id too."""
        return self.replay.ledger_run_id if self.replay is not None and self.replay.ledger_run_id else self.id

    @property
    def trace_id(self) -> str:
        """The run's trace (32 hex digits), empty when it has none."""
        parts = self.traceparent.split("-")
        return parts[1] if len(parts) == 4 else ""


@dataclass(frozen=True)
class AttemptRecord:
    run_id: str
    number: int
    fencing_token: int
    state: str  # DISPATCHED, RUNNING, ENDED
    outcome: str | None
    error: ErrorInfo | None
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    node: str | None
    container_id: str | None
    worker_pid: int | None
    lease_expires_at: datetime | None
    holder: str | None
    task_id: str | None = None  # the Ray task that ran it


@dataclass(frozen=True)
class StaleRun:
    """An active run whose driver seems gone: the lease of its latest attempt has expired (or it
    has no attempt yet)."""

    run_id: str
    attempt: int
    lease_expires_at: datetime | None


@dataclass(frozen=True)
class WriteBatchRecord:
    """One batch an attempt wrote (APPLIED) or found in the write ledger already (REPLAYED)."""

    attempt: int
    connection_id: str
    operation: str
    target: str
    call: int
    batch: int
    rows: int
    content_hash: str
    status: str  # APPLIED | REPLAYED
    at: datetime


@dataclass(frozen=True)
class LogRecord:
    seq: int
    attempt: int
    stream: str  # stdout | stderr | system
    text: str
    at: datetime
    level: str = ""
    fields: dict[str, str] | None = None  # an SDK log call's fields, each value as JSON text
    trace_id: str = ""
    span_id: str = ""


@dataclass(frozen=True)
class RunEnd:
    """What finalizing a run writes."""

    state: RunState
    error: ErrorInfo | None = None
    exit_code: int | None = None
    logs_truncated: bool = False
    dropped_log_lines: int = 0
    warning_count: int = 0
    details: dict[str, Any] | None = None
