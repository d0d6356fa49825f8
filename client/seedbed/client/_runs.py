"""Trigger fires and runs as objects: wait for them, read their outcome, steps, errors and logs.

Waiting rides ``RunService.WatchRuns``, a server stream that sends the current state of each fire
and run, then one message per change, and ends once every one is resolved. Rejected: polling
``GetRun`` (latency against load), and riding ``StreamRunLogs`` (one stream per run, and it cannot
follow a fire that has no run yet). A dropped stream is opened again with the same ids: it starts
with the current states, so nothing is missed.

Times are timezone-aware UTC datetimes, None when unset. Outcomes and states are the names of the
contract's enums without their prefix: "SUCCESS", "WARNING", "FAILED", "ABORTED"; "QUEUED",
"RUNNING"; fires "PENDING", "RUN_CREATED", "CANCELLED".
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import grpc

from seedbed.api.v1 import dryrun_pb2, run_pb2
from seedbed.client._assets import RunAsset
from seedbed.client._client import _RETRYABLE, ClientError, _wrap
from seedbed.client._errors import FireCancelledError, RunFailedError
from seedbed.client._logs import LogEvent, RunEnded
from seedbed.client._traces import RunTrace

if TYPE_CHECKING:
    from seedbed.client._client import Client

log = logging.getLogger(__name__)

TERMINAL_STATES = ("SUCCESS", "WARNING", "FAILED", "ABORTED")
_RECONNECT_SECONDS = 60.0

UpdateCallback = Callable[[int, "TriggerFire | ScenarioRun"], None]


def state_name(value: int) -> str:
    return run_pb2.RunState.Name(value).removeprefix("RUN_STATE_")


def fire_state_name(value: int) -> str:
    return run_pb2.TriggerFireState.Name(value).removeprefix("TRIGGER_FIRE_STATE_")


def stamp(message: Any, name: str) -> datetime | None:
    """The Timestamp field ``name`` of ``message`` as an aware UTC datetime; None when unset."""
    if not message.HasField(name):
        return None
    value: datetime = getattr(message, name).ToDatetime(tzinfo=UTC)
    return value


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


@dataclass(frozen=True)
class ErrorInfo:
    """Why a run failed (or, for ABORTED, who asked and why)."""

    reason: str  # SCRIPT_ERROR, TIMEOUT, OOM, KILLED, INFRASTRUCTURE, NONDETERMINISTIC, or ""
    type: str
    message: str
    traceback: str
    line: int
    step: str  # the step open when it happened; "" outside any step

    @classmethod
    def of(cls, error: run_pb2.ErrorDetails) -> ErrorInfo:
        reason = run_pb2.FailureReason.Name(error.reason).removeprefix("FAILURE_REASON_")
        return cls(
            reason="" if reason == "UNSPECIFIED" else reason,
            type=error.type,
            message=error.message,
            traceback=error.traceback,
            line=error.line,
            step=error.step,
        )


@dataclass(frozen=True)
class StepDetails:
    """One step of a run (the SDK's ``step("name")``) and the jobs it ran."""

    number: int
    name: str
    outcome: str  # SUCCESS, FAILED, or RUNNING (the attempt ended inside it)
    start_time: datetime | None
    end_time: datetime | None
    task_ids: list[str]  # worker tasks (the Ray tasks of the attempts that ran the step)
    batch_ids: list[str]  # write batches, "connection/call/batch" (see Client.write_batches)
    rows_generated: int
    rows_written: int

    @property
    def job_ids(self) -> list[str]:
        """The jobs the step ran, as Dataiku's ``job_ids``: its worker tasks, then its write
        batches."""
        return [*self.task_ids, *self.batch_ids]

    @classmethod
    def of(cls, step: run_pb2.RunStep) -> StepDetails:
        return cls(
            number=step.number,
            name=step.name,
            outcome=step.outcome,
            start_time=stamp(step, "start_time"),
            end_time=stamp(step, "end_time"),
            task_ids=list(step.task_ids),
            batch_ids=list(step.batch_ids),
            rows_generated=step.rows_generated,
            rows_written=step.rows_written,
        )


@dataclass(frozen=True)
class RunDetails:
    """A run's steps and first error, as ``ScenarioRun.get_details()`` read them."""

    run: ScenarioRun
    steps: list[StepDetails]
    first_error_details: ErrorInfo | None
    # The worker tasks of every attempt, oldest first (a step lists the ones that ran it).
    task_ids: list[str] = field(default_factory=list)


class TriggerFire:
    """A request to run a scenario. It resolves into a run, or is cancelled with a reason (the
    scenario is inactive, or the overlap policy refused it)."""

    def __init__(self, client: Client, fire: run_pb2.TriggerFire) -> None:
        self._client = client
        self.raw = fire

    def __repr__(self) -> str:
        return f"TriggerFire({self.id!r}, {self.state})"

    @property
    def id(self) -> str:
        return self.raw.id

    @property
    def scenario_id(self) -> str:
        return self.raw.scenario_id

    @property
    def state(self) -> str:
        return fire_state_name(self.raw.state)

    @property
    def run_id(self) -> str | None:
        return self.raw.run_id or None

    @property
    def cancel_reason(self) -> str:
        return self.raw.cancel_reason

    @property
    def queue_reason(self) -> str:
        return self.raw.queue_reason

    @property
    def cancelled(self) -> bool:
        return self.raw.state == run_pb2.TRIGGER_FIRE_STATE_CANCELLED

    @property
    def create_time(self) -> datetime | None:
        return stamp(self.raw, "create_time")

    def refresh(self) -> TriggerFire:
        self.raw = self._client.get_fire(self.id)
        return self

    def is_cancelled(self, refresh: bool = False) -> bool:
        """Whether the fire was cancelled (it then never makes a run); with ``refresh``, as the
        coordinator says now rather than as last read."""
        if refresh:
            self.refresh()
        return self.cancelled

    def get_scenario_run(self) -> ScenarioRun | None:
        """The run this fire made, without waiting: None while the fire waits its turn (or when it
        was cancelled). Asks the coordinator again while the fire last read had no run."""
        if not self.raw.run_id and self.raw.state == run_pb2.TRIGGER_FIRE_STATE_PENDING:
            self.refresh()
        if not self.raw.run_id:
            return None
        return ScenarioRun(self._client, self._client.get_run(self.raw.run_id))

    def wait_for_scenario_run(self, no_fail: bool = False) -> ScenarioRun | None:
        """The run this fire started, as soon as it exists (the run may still be going: call its
        ``wait_for_completion()``). A cancelled fire raises FireCancelledError, or with
        ``no_fail`` returns None."""
        if self.raw.state == run_pb2.TRIGGER_FIRE_STATE_PENDING:
            with contextlib.closing(watch(self._client, fire_ids=[self.id])) as stream:
                for message in stream:
                    if message.HasField("fire") and message.fire.id == self.id:
                        self.raw = message.fire
                        if self.raw.state != run_pb2.TRIGGER_FIRE_STATE_PENDING:
                            break
                else:
                    self.refresh()
        if self.cancelled:
            if no_fail:
                return None
            raise FireCancelledError(self, self.cancel_reason)
        if not self.raw.run_id:
            raise ClientError(grpc.StatusCode.UNKNOWN, f"fire {self.id} ended its watch unresolved")
        return ScenarioRun(self._client, self._client.get_run(self.raw.run_id))


class ScenarioRun:
    """One run of a scenario. Its properties read the state last fetched: ``refresh()`` fetches
    it again, the waits keep it current."""

    def __init__(self, client: Client, run: run_pb2.Run) -> None:
        self._client = client
        self.raw = run

    def __repr__(self) -> str:
        return f"ScenarioRun({self.id!r}, {self.state})"

    @property
    def id(self) -> str:
        return self.raw.id

    @property
    def scenario_id(self) -> str:
        return self.raw.scenario_id

    @property
    def fire_id(self) -> str:
        return self.raw.fire_id

    @property
    def params(self) -> dict[str, str]:
        return dict(self.raw.params)

    @property
    def state(self) -> str:
        return state_name(self.raw.state)

    @property
    def running(self) -> bool:
        return self.state not in TERMINAL_STATES

    @property
    def outcome(self) -> str | None:
        """SUCCESS, WARNING, FAILED or ABORTED; None while the run is queued or running."""
        state = self.state
        return state if state in TERMINAL_STATES else None

    @property
    def start_time(self) -> datetime | None:
        return stamp(self.raw, "start_time")

    @property
    def end_time(self) -> datetime | None:
        return stamp(self.raw, "end_time")

    @property
    def create_time(self) -> datetime | None:
        return stamp(self.raw, "create_time")

    @property
    def duration(self) -> timedelta | None:
        """From start to end; while running, up to now; None before the run started."""
        start = self.start_time
        if start is None:
            return None
        return (self.end_time or datetime.now(UTC)) - start

    @property
    def first_error(self) -> ErrorInfo | None:
        if self.raw.HasField("first_error") and self.raw.first_error.type:
            return ErrorInfo.of(self.raw.first_error)
        return None

    @property
    def dry_run(self) -> bool:
        """Whether the run was a dry run (it wrote nothing)."""
        return bool(self.raw.dry_run)

    @property
    def dry_run_report(self) -> dryrun_pb2.DryRunReport | None:
        """A dry run's report (rows per target, problems found), once its attempt brought one."""
        return self.raw.dry_run_report if self.raw.HasField("dry_run_report") else None

    def refresh(self) -> ScenarioRun:
        self.raw = self._client.get_run(self.id)
        return self

    def wait_for_completion(self, no_fail: bool = False) -> ScenarioRun:
        """Block until the run ends. Unless it ends SUCCESS, raise RunFailedError (carrying this
        run); with ``no_fail``, return it whatever its outcome."""
        if self.running:
            wait_all(self._client, [self], no_fail=True)
        if not no_fail and self.outcome != "SUCCESS":
            raise RunFailedError(self)
        return self

    def abort(self, reason: str = "") -> bool:
        """Ask the run to stop (it ends ABORTED). True when it had already finished: nothing was
        done, and that is not an error."""
        response = self._client.abort(self.id, reason or "aborted from the Python client")
        self.raw = response.run
        return bool(response.already_finished)

    def replay(
        self, connections: Mapping[str, str] | None = None, *, idempotency_key: str = ""
    ) -> TriggerFire:
        """Start a new run with this run's recorded inputs (script, params, run key, template
        versions, image), its connections mapped ``{old: new}`` (same kind); the fire answers at
        once (``wait_for_scenario_run()`` for its run). Into the same connections nothing is
        written again: their write ledger already holds every batch."""
        fire = self._client.replay_run(self.id, connections or {}, idempotency_key=idempotency_key)
        return TriggerFire(self._client, fire)

    def get_details(self) -> RunDetails:
        """The run fetched again, with its steps (and the job ids each ran) and its first error."""
        self.refresh()
        return RunDetails(
            run=self,
            steps=[StepDetails.of(step) for step in self.raw.steps],
            first_error_details=self.first_error,
            task_ids=[a.task_id for a in self.raw.attempts if a.task_id],
        )

    def get_log(self, step_id: str | int | None = None) -> str:
        """The run's log as it is now (stdout, stderr, and Seedbed's own lines marked
        ``[seedbed]``); with ``step_id`` (a step's number or name), only that step's lines."""
        step = "" if step_id is None else str(step_id)
        lines = [
            format_line(event.line)
            for event in self._client.stream_logs(self.id, follow=False, step=step)
            if isinstance(event, LogEvent)
        ]
        return "\n".join(lines) + ("\n" if lines else "")

    def get_trace(self) -> RunTrace:
        """The run's trace: the spans kept from the RunScenario call through each attempt, its
        steps, every SDK call and every batch written (empty when tracing was off)."""
        return self._client.get_run_trace(self.id)

    def assets(self) -> list[RunAsset]:
        """The files the run kept (``dm.assets.write_*`` and its file connections' files), by
        name; each downloads itself (``asset.download(path)``, ``asset.read()``)."""
        return [RunAsset(self._client, self.id, raw) for raw in self._client.run_assets(self.id)]

    def stream_logs(self, follow: bool = True) -> Iterator[LogEvent]:
        """Log lines as they come (resuming after a dropped connection); with ``follow``, until
        the run ends, after which this run's state is the final one."""
        for event in self._client.stream_logs(self.id, follow=follow):
            if isinstance(event, RunEnded):
                self.raw = event.run
            else:
                yield event

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready document of the run: ids, outcome, times (ISO 8601, UTC), steps, error."""
        error = self.first_error
        duration = self.duration
        return {
            "id": self.id,
            "scenario_id": self.scenario_id,
            "project_key": self.raw.project_key,
            "fire_id": self.fire_id,
            "state": self.state,
            "outcome": self.outcome,
            "create_time": iso(self.create_time),
            "start_time": iso(self.start_time),
            "end_time": iso(self.end_time),
            "duration_seconds": duration.total_seconds() if duration is not None else None,
            "params": self.params,
            "run_as": self.raw.run_as,
            "triggered_by": self.raw.triggered_by,
            "trigger_id": self.raw.trigger_id,
            "attempt_count": self.raw.attempt_count,
            "warning_count": self.raw.warning_count,
            "first_error": None if error is None else asdict(error),
            "steps": [
                {
                    **asdict(step),
                    "start_time": iso(step.start_time),
                    "end_time": iso(step.end_time),
                }
                for step in (StepDetails.of(s) for s in self.raw.steps)
            ],
        }


def format_line(line: run_pb2.LogLine) -> str:
    if line.stream == run_pb2.LOG_STREAM_SYSTEM:
        level = f" {line.level.upper()}" if line.level else ""
        return f"[seedbed{level}] {line.text}"
    return line.text


def watch(
    client: Client, *, fire_ids: Sequence[str] = (), run_ids: Sequence[str] = ()
) -> Generator[run_pb2.WatchRunsResponse, None, None]:
    """The messages of a WatchRuns stream over these ids, until it ends (or the caller stops
    iterating, which cancels the call). A dropped connection is opened again for a minute."""
    request = run_pb2.WatchRunsRequest(fire_ids=list(fire_ids), run_ids=list(run_ids))
    gave_up_at: float | None = None
    while True:
        call = client._runs.WatchRuns(request)
        try:
            for message in call:
                gave_up_at = None
                yield message
                if message.done:
                    return
            return
        except grpc.RpcError as exc:
            if exc.code() not in _RETRYABLE:
                raise _wrap(exc, client._transport) from None
            gave_up_at = gave_up_at or time.monotonic() + _RECONNECT_SECONDS
            if time.monotonic() > gave_up_at:
                raise _wrap(exc, client._transport) from None
            log.info("watch of %d fire(s) and %d run(s) dropped; reconnecting", len(fire_ids), len(run_ids))
            time.sleep(0.5)
        finally:
            call.cancel()


class _Slot:
    """One thing being waited for: a fire (until it has a run that ended, or is cancelled) or a run."""

    def __init__(self, item: TriggerFire | ScenarioRun) -> None:
        self.fire = item if isinstance(item, TriggerFire) else None
        self.run = item if isinstance(item, ScenarioRun) else None

    @property
    def done(self) -> bool:
        if self.run is not None:
            return not self.run.running
        return self.fire is not None and self.fire.cancelled


def wait_all(
    client: Client,
    items: Sequence[TriggerFire | ScenarioRun],
    *,
    no_fail: bool = True,
    on_update: UpdateCallback | None = None,
) -> list[ScenarioRun | None]:
    """Wait until every fire is cancelled or its run ended, and every run ended, on one stream.

    Returns the runs in the order of ``items`` (None for a cancelled fire). Without ``no_fail``,
    once everything ended, raise for the first item (in order) that was cancelled or did not end
    SUCCESS. ``on_update(position, fire_or_run)`` is called for each change seen.
    """
    slots = [_Slot(item) for item in items]
    by_fire = {s.fire.id: i for i, s in enumerate(slots) if s.fire is not None}
    by_run = {s.run.id: i for i, s in enumerate(slots) if s.run is not None}
    if any(not s.done for s in slots):
        with contextlib.closing(watch(client, fire_ids=list(by_fire), run_ids=list(by_run))) as stream:
            _follow(client, stream, slots, by_fire, by_run, on_update)
    for slot in slots:
        # A fire whose run the stream did not show (or a stream that ended early): ask once.
        if slot.run is None and slot.fire is not None and not slot.fire.cancelled:
            slot.fire.refresh()
            if slot.fire.run_id:
                slot.run = ScenarioRun(client, client.get_run(slot.fire.run_id))
        elif slot.run is not None and slot.run.running:
            slot.run.refresh()
        if not slot.done:
            what = slot.run.id if slot.run is not None else slot.fire.id if slot.fire else "?"
            raise ClientError(grpc.StatusCode.UNKNOWN, f"the watch stream ended before {what} did")
    if not no_fail:
        for slot in slots:
            if slot.fire is not None and slot.fire.cancelled:
                raise FireCancelledError(slot.fire, slot.fire.cancel_reason)
            if slot.run is not None and slot.run.outcome != "SUCCESS":
                raise RunFailedError(slot.run)
    return [slot.run for slot in slots]


def _follow(
    client: Client,
    stream: Iterable[run_pb2.WatchRunsResponse],
    slots: list[_Slot],
    by_fire: dict[str, int],
    by_run: dict[str, int],
    on_update: UpdateCallback | None,
) -> None:
    """Apply the stream's messages to the slots until every one is done."""
    for message in stream:
        if message.HasField("fire") and message.fire.id in by_fire:
            index = by_fire[message.fire.id]
            fire = slots[index].fire
            if fire is None:
                continue
            fire.raw = message.fire
            if on_update is not None:
                on_update(index, fire)
        elif message.HasField("run"):
            run_msg = message.run
            found = by_run.get(run_msg.id, by_fire.get(run_msg.fire_id))
            if found is None:
                continue
            index = found
            slot = slots[index]
            if slot.run is None:
                slot.run = ScenarioRun(client, run_msg)
                by_run[run_msg.id] = index
            else:
                slot.run.raw = run_msg
            if on_update is not None:
                on_update(index, slot.run)
        if all(s.done for s in slots):
            break
