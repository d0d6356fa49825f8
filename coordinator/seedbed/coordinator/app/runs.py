"""Use cases of runs: start a scenario, read runs and fires, follow logs, abort, purge, trace.

Every face (gRPC, REST, MCP) calls these and nothing else, so the three cannot disagree on
validation, authorisation, rate limits or idempotency. They take plain values, answer the contract's
messages (``seedbed.api.v1``: the one vocabulary every face already speaks) and raise
:class:`~seedbed.coordinator.errors.CoordinatorError`; each face maps those errors once. The caller is
the current principal, which the face authenticated (``access.set_principal``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from seedbed.api.v1 import run_pb2
from seedbed.coordinator import _convert as cv
from seedbed.coordinator import authz
from seedbed.coordinator.access import Role, current_principal
from seedbed.coordinator.app.assets import RunAssetUseCases
from seedbed.coordinator.app.ids import known_scenario_id, required_id
from seedbed.coordinator.app.replay import ReplayUseCases
from seedbed.coordinator.errors import (
    InvalidArgumentError,
    NotFoundError,
    ResourceExhaustedError,
)
from seedbed.coordinator.logs import LogHub, StepFilter, step_filter
from seedbed.coordinator.model import (
    RunState,
    page_of,
    validate_idempotency_key,
    validate_page,
    validate_params,
)
from seedbed.coordinator.observability.tracing import RunTracing
from seedbed.coordinator.overlap import FireLauncher
from seedbed.coordinator.purge import RunPurger
from seedbed.coordinator.purge import record_to_proto as purge_record_to_proto
from seedbed.coordinator.ratelimits import Limit, RateLimiter
from seedbed.coordinator.store import RunRecord, Store
from seedbed.coordinator.supervisor import RunSupervisor
from seedbed.coordinator.watch import RunWatch

_POLL_SECONDS = 1.0
_LOG_PAGE = 500


@dataclass(frozen=True)
class RunFilter:
    """Which runs ``list_runs`` answers; every field narrows."""

    scenario_id: str = ""
    project_key: str = ""
    states: Sequence[RunState] = field(default_factory=tuple)
    created_after: datetime | None = None
    created_before: datetime | None = None


class RunUseCases:
    def __init__(
        self,
        store: Store,
        supervisor: RunSupervisor,
        hub: LogHub,
        purger: RunPurger,
        fires: FireLauncher,
        limits: RateLimiter,
        tracing: RunTracing,
    ) -> None:
        self._store = store
        self._fires = fires
        self._tracing = tracing
        self._rates = limits
        self._supervisor = supervisor
        self._hub = hub
        self._purger = purger
        # The files runs kept (their own use cases; the faces reach them as ``runs.assets``).
        self.assets = RunAssetUseCases(store)
        self._replays = ReplayUseCases(store, fires, tracing)

    async def run_scenario(
        self,
        scenario_id: str,
        params: Mapping[str, str],
        idempotency_key: str = "",
        *,
        project_key: str = "",
        dry_run: bool = False,
    ) -> run_pb2.TriggerFire:
        """Fire the scenario (of ``project_key`` when given: another project's is NOT_FOUND). The
        same key with the same request answers the same fire; with another request it is
        ALREADY_EXISTS. A dry run checks every write against the targets and writes nothing (the
        flag is part of what the key identifies)."""
        scenario_id = known_scenario_id(scenario_id)
        checked = validate_params(params)
        key = validate_idempotency_key(idempotency_key)
        scenario = await authz.scenario_for(self._store, scenario_id, Role.RUNNER)
        if project_key and scenario.project_key != project_key:
            raise NotFoundError("scenario", f"{project_key[:100]}/{scenario_id}")
        caller = current_principal().user_id
        try:
            charge = self._rates.take(Limit.FIRES, caller)
        except ResourceExhaustedError:
            # A retry of a fire already made starts nothing: it is answered past the limit too.
            if not key or not await self._store.fires.key_used(key):
                raise
            charge = None
        fire, _run, created = await self._fires.fire(
            scenario_id, checked, key, triggered_by=caller, dry_run=dry_run
        )
        if charge is not None and not created:
            charge.refund()
        return cv.fire_to_proto(fire)

    async def replay_run(
        self, run_id: str, connections: Mapping[str, str], idempotency_key: str = ""
    ) -> run_pb2.TriggerFire:
        """Fire a new run with a finished run's recorded inputs (see ``app.replay``)."""
        return await self._replays.replay_run(run_id, connections, idempotency_key)

    async def get_fire(self, fire_id: str) -> run_pb2.TriggerFire:
        fire = await authz.fire_for(self._store, required_id("fire_id", fire_id), Role.VIEWER)
        return cv.fire_to_proto(fire)

    async def get_run(self, run_id: str) -> run_pb2.Run:
        run = await authz.run_for(self._store, required_id("run_id", run_id), Role.VIEWER)
        found = await self._run(run)
        found.assets.CopyFrom(await self.assets.summary(run.id))
        return found

    async def list_runs(
        self, where: RunFilter, page_size: int = 0, page_token: str = ""
    ) -> tuple[list[run_pb2.Run], str]:
        """A page of runs, newest first, and the next page's token ('' on the last)."""
        limit, offset = validate_page(page_size, page_token)
        scenario_id = known_scenario_id(where.scenario_id) if where.scenario_id else ""
        if scenario_id:
            await authz.scenario_for(self._store, scenario_id, Role.VIEWER)
        if where.created_after and where.created_before and where.created_after >= where.created_before:
            raise InvalidArgumentError(
                "created_after",
                f"{where.created_after.isoformat()} is not before created_before "
                f"{where.created_before.isoformat()}",
            )
        recs = await self._store.list_runs(
            scenario_id,
            limit + 1,
            offset,
            projects=authz.visible_projects(),
            states=list(where.states),
            created_after=where.created_after,
            created_before=where.created_before,
            project_key=authz.project_filter(where.project_key),
        )
        page, token = page_of(recs, limit, offset)
        attempts = await self._store.attempts.for_runs([r.id for r in page])
        reports = await self._store.reports.for_runs([r.id for r in page])
        return [cv.run_to_proto(r, attempts.get(r.id, ()), reports.get(r.id, ())) for r in page], token

    async def list_write_batches(
        self, run_id: str, page_size: int = 0, page_token: str = ""
    ) -> tuple[list[run_pb2.WriteBatch], str]:
        run_id = required_id("run_id", run_id)
        limit, offset = validate_page(page_size, page_token)
        await authz.run_for(self._store, run_id, Role.VIEWER)
        recs = await self._store.attempts.list_batches(run_id, limit + 1, offset)
        page, token = page_of(recs, limit, offset)
        return [cv.batch_to_proto(b) for b in page], token

    async def purge_run(self, run_id: str, *, dry_run: bool = False) -> run_pb2.PurgeRunResponse:
        """A dry run too: it wrote no batch, and its purge removes the assets it kept (as the
        periodic pass does once its scenario's time to live passes)."""
        run_id = required_id("run_id", run_id)
        await authz.run_for(self._store, run_id, Role.EDITOR)
        return await self._purger.purge(run_id, dry_run=dry_run)

    async def list_purges(self, run_id: str, limit: int) -> list[run_pb2.PurgeRecord]:
        """The purges of runs (periodic and asked for), newest first, of the caller's projects; of
        one run with ``run_id``."""
        if run_id:
            run_id = (await authz.run_for(self._store, required_id("run_id", run_id), Role.VIEWER)).id
        if limit > 500:
            raise InvalidArgumentError("limit", f"{limit} is over 500")
        found = await self._store.purges.list(
            run_id=run_id, project_keys=authz.visible_projects(), limit=limit or 50
        )
        return [purge_record_to_proto(r) for r in found]

    async def get_run_trace(self, run_id: str) -> run_pb2.GetRunTraceResponse:
        run = await authz.run_for(self._store, required_id("run_id", run_id), Role.VIEWER)
        return await self._tracing.trace_of(run)

    async def abort_run(self, run_id: str, reason: str = "") -> tuple[run_pb2.Run, bool]:
        """Abort the run; (the run, whether it had already finished)."""
        reason = (reason or "aborted by request")[:1000]
        run_id = required_id("run_id", run_id)
        await authz.run_for(self._store, run_id, Role.RUNNER)
        run, already = await self._supervisor.abort(run_id, reason)
        return await self._run(run), already

    async def watch_runs(
        self, fire_ids: Sequence[str], run_ids: Sequence[str]
    ) -> AsyncIterator[run_pb2.WatchRunsResponse]:
        """Open the watch (errors surface here, before the first event), then answer its events."""
        watch = RunWatch(self._store, self._hub, fire_ids, run_ids)
        await watch.open(hidden=await authz.hidden_ids(self._store, fire_ids, run_ids))
        return watch.events()

    async def stream_logs(
        self, run_id: str, *, after_sequence: int = 0, follow: bool = False, step: str = ""
    ) -> AsyncIterator[run_pb2.StreamRunLogsResponse]:
        """Check the request (errors surface here), then answer the run's log lines after
        ``after_sequence`` and one terminal ``end`` event: RUN_FINISHED, or CAUGHT_UP when not
        following."""
        run_id = required_id("run_id", run_id)
        if after_sequence < 0:
            raise InvalidArgumentError("after_sequence", "must be ≥ 0")
        found = await authz.run_for(self._store, run_id, Role.VIEWER)
        only = step_filter(found, step[:200]) if step else None
        return self._log_lines(run_id, after_sequence, follow, only)

    async def _log_lines(
        self, run_id: str, after: int, follow: bool, only: StepFilter | None
    ) -> AsyncIterator[run_pb2.StreamRunLogsResponse]:
        while True:
            wake = self._hub.waiter(run_id)
            lines = await self._store.read_logs(run_id, after, _LOG_PAGE)
            for line in lines:
                if only is None or only.holds(line):
                    yield run_pb2.StreamRunLogsResponse(line=cv.log_to_proto(line))
                after = line.seq
            if len(lines) == _LOG_PAGE:
                continue
            run = await self._store.get_run(run_id)
            if run.state.is_terminal:
                # Lines written just before the run ended may have landed after the read above.
                if await self._store.read_logs(run_id, after, 1):
                    continue
                yield _end(run_pb2.STREAM_END_REASON_RUN_FINISHED, await self._run(run), after)
                return
            if not follow:
                yield _end(run_pb2.STREAM_END_REASON_CAUGHT_UP, await self._run(run), after)
                return
            await self._hub.wait(wake, _POLL_SECONDS)

    async def _run(self, run: RunRecord) -> run_pb2.Run:
        """The run with its attempts and reports."""
        return cv.run_to_proto(
            run, await self._store.attempts.for_run(run.id), await self._store.reports.for_run(run.id)
        )


def _end(reason: run_pb2.StreamEndReason, run: run_pb2.Run, last: int) -> run_pb2.StreamRunLogsResponse:
    return run_pb2.StreamRunLogsResponse(
        end=run_pb2.StreamEnd(reason=reason, run=run, last_sequence=max(last, 0))
    )
