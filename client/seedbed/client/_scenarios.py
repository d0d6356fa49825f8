"""Scenarios as objects: fire them, read their history and status, reach their settings."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, overload

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from seedbed.api.v1 import run_pb2, scenario_pb2
from seedbed.client._client import ClientError
from seedbed.client._errors import NoRunError
from seedbed.client._runs import ScenarioRun, TriggerFire, stamp, state_name
from seedbed.client._settings import ScenarioSettings

if TYPE_CHECKING:
    from seedbed.client._client import Client

_FINISHED = [
    run_pb2.RUN_STATE_SUCCESS,
    run_pb2.RUN_STATE_WARNING,
    run_pb2.RUN_STATE_FAILED,
    run_pb2.RUN_STATE_ABORTED,
]
_ACTIVE = [run_pb2.RUN_STATE_QUEUED, run_pb2.RUN_STATE_RUNNING]
_MAX_PAGE = 1000


def _aware(name: str, value: datetime) -> Timestamp:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(
            f"{name} is a naive datetime ({value.isoformat()}): give it a time zone, e.g. "
            "datetime(2026, 1, 31, tzinfo=timezone.utc), so the range means the same on every machine"
        )
    out = Timestamp()
    out.FromDatetime(value.astimezone(UTC))
    return out


@dataclass(frozen=True)
class ScenarioStatus:
    """Where a scenario stands: running or not, the next scheduled run, the last outcome."""

    scenario_id: str
    running: bool
    current_run_ids: list[str]
    queued_fire_ids: list[str]
    next_run: datetime | None  # None: no active trigger, or the scenario is inactive
    next_run_trigger_id: str
    last_run_id: str | None
    last_outcome: str | None  # SUCCESS, WARNING, FAILED, ABORTED; None before any run ended
    last_end_time: datetime | None


@dataclass(frozen=True)
class ScenarioListItem:
    """A scenario as a listing shows it (``list_scenarios(as_type="listitems")``)."""

    id: str
    name: str
    project_key: str
    active: bool
    run_as: str
    effective_run_as: str
    last_modified_by: str
    trigger_count: int
    reporter_count: int
    revision: int
    update_time: datetime | None

    @classmethod
    def of(cls, s: scenario_pb2.Scenario) -> ScenarioListItem:
        return cls(
            id=s.id,
            name=s.name,
            project_key=s.project_key,
            active=not s.settings.HasField("active") or s.settings.active,
            run_as=s.settings.run_as,
            effective_run_as=s.effective_run_as,
            last_modified_by=s.last_modified_by,
            trigger_count=len(s.settings.triggers),
            reporter_count=len(s.settings.reporters),
            revision=s.revision,
            update_time=stamp(s, "update_time"),
        )


class Scenario:
    """A scenario of a project. ``raw`` is the definition last fetched (``refresh()`` again)."""

    def __init__(self, client: Client, scenario: scenario_pb2.Scenario) -> None:
        self._client = client
        self.raw = scenario

    def __repr__(self) -> str:
        return f"Scenario({self.id!r})"

    @property
    def id(self) -> str:
        return self.raw.id

    @property
    def name(self) -> str:
        return self.raw.name

    @property
    def project_key(self) -> str:
        return self.raw.project_key

    def refresh(self) -> Scenario:
        self.raw = self._client.get_scenario(self.id)
        return self

    def delete(self) -> None:
        self._client.delete_scenario(self.id)

    def get_payload(self, extension: str = "py") -> str:
        """The scenario's Python script (Dataiku calls a script scenario's code its payload)."""
        _python(extension)
        return self.refresh().raw.script

    def set_payload(self, script: str, extension: str = "py") -> None:
        """Replace the scenario's Python script; its runs then act as you unless ``run_as`` is set.
        Saved over the revision read just before, so a change someone makes in between is refused
        (ClientError ABORTED) rather than lost; a scenario deleted meanwhile is NOT_FOUND."""
        _python(extension)
        revision = self.refresh().raw.revision
        self.raw = self._client.put_scenario(self.id, script=script, expected_revision=revision)

    # -- firing ------------------------------------------------------------------------------------

    def run(
        self,
        params: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
        *,
        dry_run: bool = False,
    ) -> TriggerFire:
        """Fire the scenario; the fire answers at once (``wait_for_scenario_run()`` for its run).
        The same ``idempotency_key`` with the same params answers the same fire. ``dry_run``: write
        nothing, check every write against the targets (the run's ``dry_run_report``)."""
        fire = self._client.run(self.id, params, idempotency_key=idempotency_key or "", dry_run=dry_run)
        return TriggerFire(self._client, fire)

    def run_and_wait(
        self, params: Mapping[str, str] | None = None, no_fail: bool = False
    ) -> ScenarioRun | None:
        """Fire and wait until the run ends. Raises FireCancelledError when the fire was refused
        and RunFailedError unless the run ends SUCCESS (WARNING included); with ``no_fail``,
        returns the run whatever its outcome, or None for a cancelled fire."""
        run = self.run(params).wait_for_scenario_run(no_fail=no_fail)
        return None if run is None else run.wait_for_completion(no_fail=no_fail)

    # -- history -----------------------------------------------------------------------------------

    def _runs(self, request: run_pb2.ListRunsRequest, limit: int | None) -> list[ScenarioRun]:
        request.scenario_id = self.id
        if limit is not None:
            if limit < 1:
                raise ValueError(f"limit must be at least 1, got {limit}")
            request.page_size = min(limit, _MAX_PAGE)
        else:
            request.page_size = _MAX_PAGE
        out: list[ScenarioRun] = []
        while True:
            response = self._client._call(self._client._runs.ListRuns, request)
            out.extend(ScenarioRun(self._client, r) for r in response.runs)  # type: ignore[attr-defined]
            token = response.next_page_token  # type: ignore[attr-defined]
            if not token or (limit is not None and len(out) >= limit):
                return out[:limit] if limit is not None else out
            request.page_token = token

    def get_last_runs(
        self, limit: int = 10, only_finished_runs: bool = False, *, outcomes: Sequence[str] = ()
    ) -> list[ScenarioRun]:
        """The latest runs, newest first; with ``only_finished_runs``, only the ones that ended;
        with ``outcomes`` (e.g. ["FAILED", "ABORTED"]), only the ones that ended so."""
        states: list[Any] = list(_FINISHED) if only_finished_runs else []
        if outcomes:
            unknown = [o for o in outcomes if o not in ("SUCCESS", "WARNING", "FAILED", "ABORTED")]
            if unknown:
                raise ValueError(f"unknown outcome(s) {unknown}: use SUCCESS, WARNING, FAILED or ABORTED")
            states = [run_pb2.RunState.Value(f"RUN_STATE_{o}") for o in outcomes]
        return self._runs(run_pb2.ListRunsRequest(states=states), limit)

    @overload
    def get_last_finished_run(self, no_fail: Literal[False] = False) -> ScenarioRun: ...

    @overload
    def get_last_finished_run(self, no_fail: bool) -> ScenarioRun | None: ...

    def get_last_finished_run(self, no_fail: bool = False) -> ScenarioRun | None:
        """The newest run that ended, whatever its outcome. None ever ended: NoRunError (a
        ValueError, as Dataiku raises), or None with ``no_fail``."""
        return self._last(_FINISHED, "finished", no_fail)

    @overload
    def get_last_successful_run(self, no_fail: Literal[False] = False) -> ScenarioRun: ...

    @overload
    def get_last_successful_run(self, no_fail: bool) -> ScenarioRun | None: ...

    def get_last_successful_run(self, no_fail: bool = False) -> ScenarioRun | None:
        """The newest run that ended SUCCESS. None did: NoRunError, or None with ``no_fail``."""
        return self._last([run_pb2.RUN_STATE_SUCCESS], "successful", no_fail)

    def _last(self, states: Sequence[Any], which: str, no_fail: bool) -> ScenarioRun | None:
        runs = self._runs(run_pb2.ListRunsRequest(states=states), 1)
        if runs:
            return runs[0]
        if no_fail:
            return None
        raise NoRunError(self.id, which)

    def get_average_duration(self, limit: int = 3) -> float | None:
        """The mean duration in seconds (as Dataiku's) of the last ``limit`` runs that ended SUCCESS
        or WARNING; None while fewer than ``limit`` such runs exist."""
        states = [run_pb2.RUN_STATE_SUCCESS, run_pb2.RUN_STATE_WARNING]
        runs = self._runs(run_pb2.ListRunsRequest(states=states), limit)
        durations = [run.duration for run in runs]
        if len(runs) < limit or None in durations:
            return None
        return sum(d.total_seconds() for d in durations if d is not None) / len(durations)

    def get_current_run(self) -> ScenarioRun | None:
        """The newest run still queued or running; None when the scenario is idle."""
        runs = self._runs(run_pb2.ListRunsRequest(states=_ACTIVE), 1)
        return runs[0] if runs else None

    def get_run(self, run_id: str) -> ScenarioRun:
        run = self._client.get_run(run_id)
        if run.scenario_id != self.id:
            raise ClientError(grpc.StatusCode.NOT_FOUND, f"run {run_id} is not a run of scenario {self.id}")
        return ScenarioRun(self._client, run)

    def get_runs_by_date(self, from_date: datetime, to_date: datetime | None = None) -> list[ScenarioRun]:
        """Every run created in [from_date, to_date), newest first; ``to_date`` defaults to the
        moment of the call. Both must be timezone-aware (a naive datetime raises ValueError)."""
        request = run_pb2.ListRunsRequest()
        request.created_after.CopyFrom(_aware("from_date", from_date))
        request.created_before.CopyFrom(_aware("to_date", to_date or datetime.now(UTC)))
        return self._runs(request, None)

    # -- settings and status -----------------------------------------------------------------------

    def get_settings(self) -> ScenarioSettings:
        """The settings as they are now; change them and ``save()``."""
        return ScenarioSettings(self._client, self.refresh().raw)

    def get_status(self) -> ScenarioStatus:
        status = self._client.get_scenario_status(self.id)
        last = state_name(status.last_outcome) if status.last_outcome else None
        return ScenarioStatus(
            scenario_id=self.id,
            running=status.running,
            current_run_ids=list(status.current_run_ids),
            queued_fire_ids=list(status.queued_fire_ids),
            next_run=stamp(status, "next_run_time"),
            next_run_trigger_id=status.next_run_trigger_id,
            last_run_id=status.last_run_id or None,
            last_outcome=last,
            last_end_time=stamp(status, "last_end_time"),
        )


def _python(extension: str) -> None:
    if extension != "py":
        raise ValueError(f"extension {extension!r}: Seedbed scenarios are Python scripts ('py')")


def to_listitems(scenarios: Sequence[scenario_pb2.Scenario]) -> list[ScenarioListItem]:
    return [ScenarioListItem.of(s) for s in scenarios]
