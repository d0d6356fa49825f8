"""gRPC servicers of the v1 contract. Validation happens here; domain errors become status codes
through the one table in ``faces.grpc_status``."""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC
from typing import Any, TypeVar

import grpc

from seedbed.api.v1 import run_pb2, run_pb2_grpc, scenario_pb2, scenario_pb2_grpc
from seedbed.coordinator import _convert as cv
from seedbed.coordinator import authz
from seedbed.coordinator.access import Role, current_principal
from seedbed.coordinator.egress import EgressPolicy
from seedbed.coordinator.errors import (
    CoordinatorError,
    DispatchError,
    InvalidArgumentError,
    NotFoundError,
    ResourceExhaustedError,
)
from seedbed.coordinator.faces import grpc_status
from seedbed.coordinator.logs import LogHub, step_filter
from seedbed.coordinator.model import (
    RunState,
    new_id,
    normalize_scenario_id,
    page_of,
    validate_idempotency_key,
    validate_name,
    validate_page,
    validate_params,
    validate_script,
)
from seedbed.coordinator.observability.tracing import RunTracing
from seedbed.coordinator.overlap import FireLauncher
from seedbed.coordinator.purge import RunPurger
from seedbed.coordinator.ratelimits import Limit, RateLimiter
from seedbed.coordinator.reporters import hide_reporter_secrets, validate_reporters
from seedbed.coordinator.settings import CoordinatorSettings
from seedbed.coordinator.status import scenario_status
from seedbed.coordinator.store import RunRecord, ScenarioRecord, ScenarioSettingsValue, Store
from seedbed.coordinator.supervisor import RunSupervisor
from seedbed.coordinator.triggers import validate_triggers
from seedbed.coordinator.watch import RunWatch

log = logging.getLogger(__name__)

R = TypeVar("R")
_POLL_SECONDS = 1.0
_LOG_PAGE = 500


def guard(method: Callable[..., Awaitable[R]]) -> Callable[..., Awaitable[R]]:
    """Turn domain errors into their status code; anything else into INTERNAL, logged."""

    @functools.wraps(method)
    async def wrapper(self: Any, request: Any, context: grpc.aio.ServicerContext) -> R:
        try:
            return await method(self, request, context)
        except CoordinatorError as exc:
            await grpc_status.abort(context, exc)
        except DispatchError as exc:
            await context.abort(grpc.StatusCode.UNAVAILABLE, f"no worker could serve the call: {exc}")
        except (grpc.aio.AbortError, grpc.aio.UsageError):
            raise
        except Exception:
            log.exception("%s failed", method.__name__)
            await context.abort(
                grpc.StatusCode.INTERNAL, f"internal error in {method.__name__}; see server log"
            )
        raise AssertionError("unreachable")  # context.abort always raises

    return wrapper


class ScenarioServicer(scenario_pb2_grpc.ScenarioServiceServicer):
    def __init__(self, store: Store, settings: CoordinatorSettings, limits: RateLimiter) -> None:
        self._store = store
        self._settings = settings
        self._rates = limits
        # Parsed once: every scenario save checks its webhook URLs against it.
        self._egress = EgressPolicy.parse(settings.webhook_allowed_hosts)

    def _settings_value(
        self, msg: scenario_pb2.ScenarioSettings, base: ScenarioSettingsValue | None = None
    ) -> ScenarioSettingsValue:
        cfg = self._settings
        base = base or ScenarioSettingsValue()
        if msg.timeout_seconds > cfg.max_timeout_seconds:
            raise InvalidArgumentError(
                "settings.timeout_seconds",
                f"{msg.timeout_seconds} exceeds the operator's ceiling of {cfg.max_timeout_seconds} "
                "(SEEDBED_MAX_TIMEOUT_SECONDS)",
            )
        if msg.memory_limit_bytes and not 16 * 2**20 <= msg.memory_limit_bytes <= cfg.max_memory_bytes:
            raise InvalidArgumentError(
                "settings.memory_limit_bytes",
                f"{msg.memory_limit_bytes} is outside 16 MiB..{cfg.max_memory_bytes} bytes "
                "(SEEDBED_MAX_MEMORY_BYTES)",
            )
        try:
            overlap = cv.overlap_from_proto(msg.overlap_policy)
        except KeyError:
            raise InvalidArgumentError(
                "settings.overlap_policy", f"{msg.overlap_policy} is not a known policy"
            ) from None
        return ScenarioSettingsValue(
            active=msg.active if msg.HasField("active") else base.active,
            timeout_seconds=msg.timeout_seconds,
            memory_limit_bytes=msg.memory_limit_bytes,
            overlap_policy=overlap or base.overlap_policy,
            retry_policy=(
                cv.retry_policy_from_proto(msg.retry_policy)
                if msg.HasField("retry_policy")
                else base.retry_policy
            ),
            triggers=validate_triggers(msg.triggers),
            reporters=validate_reporters(msg.reporters, self._egress),
            run_as=msg.run_as,
        )

    @guard
    async def CreateScenario(
        self, request: scenario_pb2.CreateScenarioRequest, context: grpc.aio.ServicerContext
    ) -> scenario_pb2.CreateScenarioResponse:
        scenario_id = normalize_scenario_id(request.scenario_id) if request.scenario_id else new_id("scn")
        project = await authz.project_for_new_scenario(self._store, request.project_key)
        settings = self._settings_value(request.settings)
        await authz.check_run_as(self._store, project, settings.run_as, "")
        self._rates.take(Limit.SCENARIO_PUTS, current_principal().user_id)
        rec = await self._store.create_scenario(
            scenario_id,
            validate_name(request.name or scenario_id),
            validate_script(request.script, self._settings.max_script_bytes),
            settings,
            project_key=project,
            modified_by=current_principal().user_id,
        )
        return scenario_pb2.CreateScenarioResponse(scenario=cv.scenario_to_proto(rec))

    @guard
    async def UpdateScenario(
        self, request: scenario_pb2.UpdateScenarioRequest, context: grpc.aio.ServicerContext
    ) -> scenario_pb2.UpdateScenarioResponse:
        scenario_id = normalize_scenario_id(request.scenario_id)
        current = await authz.scenario_for(self._store, scenario_id, Role.EDITOR)
        script = (
            validate_script(request.script, self._settings.max_script_bytes)
            if request.HasField("script")
            else None
        )
        # The runs act as run_as, else as the script's author: only a script that differs makes the
        # caller its author (the store decides the same way, atomically).
        author = (
            current_principal().user_id
            if script not in (None, current.script)
            else current.script_modified_by
        )
        if request.HasField("settings"):
            await authz.check_run_as(
                self._store, current.project_key, request.settings.run_as, current.settings.run_as
            )
            if not request.settings.run_as:
                authz.check_run_as_cleared(current.project_key, current.settings.run_as, author)
        if script is not None:
            run_as = request.settings.run_as if request.HasField("settings") else current.settings.run_as
            authz.check_script_change(current.project_key, run_as)
        self._rates.take(Limit.SCENARIO_PUTS, current_principal().user_id)
        rec = await self._store.update_scenario(
            scenario_id,
            name=validate_name(request.name) if request.HasField("name") else None,
            script=script,
            settings=self._settings_value(request.settings, current.settings)
            if request.HasField("settings")
            else None,
            modified_by=current_principal().user_id,
        )
        return scenario_pb2.UpdateScenarioResponse(scenario=cv.scenario_to_proto(rec))

    @guard
    async def GetScenario(
        self, request: scenario_pb2.GetScenarioRequest, context: grpc.aio.ServicerContext
    ) -> scenario_pb2.GetScenarioResponse:
        rec = await authz.scenario_for(self._store, _known_scenario_id(request.scenario_id), Role.VIEWER)
        return scenario_pb2.GetScenarioResponse(scenario=_scenario_for_caller(rec))

    @guard
    async def ListScenarios(
        self, request: scenario_pb2.ListScenariosRequest, context: grpc.aio.ServicerContext
    ) -> scenario_pb2.ListScenariosResponse:
        limit, offset = validate_page(request.page_size, request.page_token)
        recs = await self._store.list_scenarios(
            limit + 1,
            offset,
            project_key=authz.project_filter(request.project_key),
            projects=authz.visible_projects(),
        )
        page, token = page_of(recs, limit, offset)
        return scenario_pb2.ListScenariosResponse(
            scenarios=[_scenario_for_caller(r) for r in page], next_page_token=token
        )

    @guard
    async def GetScenarioStatus(
        self, request: scenario_pb2.GetScenarioStatusRequest, context: grpc.aio.ServicerContext
    ) -> scenario_pb2.GetScenarioStatusResponse:
        scenario_id = _known_scenario_id(request.scenario_id)
        await authz.scenario_for(self._store, scenario_id, Role.VIEWER)
        return await scenario_status(self._store, scenario_id)

    @guard
    async def DeleteScenario(
        self, request: scenario_pb2.DeleteScenarioRequest, context: grpc.aio.ServicerContext
    ) -> scenario_pb2.DeleteScenarioResponse:
        scenario_id = _known_scenario_id(request.scenario_id)
        await authz.scenario_for(self._store, scenario_id, Role.EDITOR)
        await self._store.delete_scenario(scenario_id)
        return scenario_pb2.DeleteScenarioResponse()


def _scenario_for_caller(rec: ScenarioRecord) -> scenario_pb2.Scenario:
    """The scenario as the caller may see it: below EDITOR, webhook URLs and header values are
    hidden, since they often carry a token (a chat hook's path, an Authorization header)."""
    msg = cv.scenario_to_proto(rec)
    held = current_principal().role_in(rec.project_key)
    if held is None or held < Role.EDITOR:
        hide_reporter_secrets(msg.settings.reporters)
    return msg


def _known_scenario_id(raw: str) -> str:
    """Ids that cannot exist are NOT_FOUND, not INVALID_ARGUMENT: a lookup never tells them apart."""
    if not raw:
        raise InvalidArgumentError("scenario_id", "is required")
    try:
        return normalize_scenario_id(raw)
    except InvalidArgumentError:
        raise NotFoundError("scenario", raw[:100]) from None


def _required(field: str, value: str) -> str:
    if not value:
        raise InvalidArgumentError(field, "is required")
    if len(value) > 100:
        raise NotFoundError(field.removesuffix("_id"), value[:100] + "…")
    return value


class RunServicer(run_pb2_grpc.RunServiceServicer):
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

    @guard
    async def RunScenario(
        self, request: run_pb2.RunScenarioRequest, context: grpc.aio.ServicerContext
    ) -> run_pb2.RunScenarioResponse:
        scenario_id = _known_scenario_id(request.scenario_id)
        params = validate_params(request.params)
        key = validate_idempotency_key(request.idempotency_key)
        await authz.scenario_for(self._store, scenario_id, Role.RUNNER)
        caller = current_principal().user_id
        try:
            charge = self._rates.take(Limit.FIRES, caller)
        except ResourceExhaustedError:
            # A retry of a fire already made starts nothing: it is answered past the limit too.
            if not key or not await self._store.fires.key_used(key):
                raise
            charge = None
        fire, _run, created = await self._fires.fire(scenario_id, params, key, triggered_by=caller)
        if charge is not None and not created:
            charge.refund()
        return run_pb2.RunScenarioResponse(fire=cv.fire_to_proto(fire))

    @guard
    async def GetTriggerFire(
        self, request: run_pb2.GetTriggerFireRequest, context: grpc.aio.ServicerContext
    ) -> run_pb2.GetTriggerFireResponse:
        fire = await authz.fire_for(self._store, _required("fire_id", request.fire_id), Role.VIEWER)
        return run_pb2.GetTriggerFireResponse(fire=cv.fire_to_proto(fire))

    @guard
    async def GetRun(
        self, request: run_pb2.GetRunRequest, context: grpc.aio.ServicerContext
    ) -> run_pb2.GetRunResponse:
        run = await authz.run_for(self._store, _required("run_id", request.run_id), Role.VIEWER)
        return run_pb2.GetRunResponse(run=await self._run(run))

    @guard
    async def ListRuns(
        self, request: run_pb2.ListRunsRequest, context: grpc.aio.ServicerContext
    ) -> run_pb2.ListRunsResponse:
        limit, offset = validate_page(request.page_size, request.page_token)
        scenario_id = _known_scenario_id(request.scenario_id) if request.scenario_id else ""
        if scenario_id:
            await authz.scenario_for(self._store, scenario_id, Role.VIEWER)
        filters = _run_filters(request)
        filters["project_key"] = authz.project_filter(request.project_key)
        recs = await self._store.list_runs(
            scenario_id, limit + 1, offset, projects=authz.visible_projects(), **filters
        )
        page, token = page_of(recs, limit, offset)
        attempts = await self._store.attempts.for_runs([r.id for r in page])
        reports = await self._store.reports.for_runs([r.id for r in page])
        return run_pb2.ListRunsResponse(
            runs=[cv.run_to_proto(r, attempts.get(r.id, ()), reports.get(r.id, ())) for r in page],
            next_page_token=token,
        )

    @guard
    async def ListWriteBatches(
        self, request: run_pb2.ListWriteBatchesRequest, context: grpc.aio.ServicerContext
    ) -> run_pb2.ListWriteBatchesResponse:
        run_id = _required("run_id", request.run_id)
        limit, offset = validate_page(request.page_size, request.page_token)
        await authz.run_for(self._store, run_id, Role.VIEWER)
        recs = await self._store.attempts.list_batches(run_id, limit + 1, offset)
        page, token = page_of(recs, limit, offset)
        return run_pb2.ListWriteBatchesResponse(
            batches=[cv.batch_to_proto(b) for b in page], next_page_token=token
        )

    @guard
    async def PurgeRun(
        self, request: run_pb2.PurgeRunRequest, context: grpc.aio.ServicerContext
    ) -> run_pb2.PurgeRunResponse:
        run_id = _required("run_id", request.run_id)
        await authz.run_for(self._store, run_id, Role.EDITOR)
        return await self._purger.purge(run_id, dry_run=request.dry_run)

    @guard
    async def GetRunTrace(
        self, request: run_pb2.GetRunTraceRequest, context: grpc.aio.ServicerContext
    ) -> run_pb2.GetRunTraceResponse:
        run = await authz.run_for(self._store, _required("run_id", request.run_id), Role.VIEWER)
        return await self._tracing.trace_of(run)

    async def _run(self, run: RunRecord) -> run_pb2.Run:
        """The run with its attempts and reports."""
        return cv.run_to_proto(
            run, await self._store.attempts.for_run(run.id), await self._store.reports.for_run(run.id)
        )

    @guard
    async def AbortRun(
        self, request: run_pb2.AbortRunRequest, context: grpc.aio.ServicerContext
    ) -> run_pb2.AbortRunResponse:
        reason = (request.reason or "aborted by request")[:1000]
        run_id = _required("run_id", request.run_id)
        await authz.run_for(self._store, run_id, Role.RUNNER)
        run, already = await self._supervisor.abort(run_id, reason)
        return run_pb2.AbortRunResponse(run=await self._run(run), already_finished=already)

    async def WatchRuns(
        self, request: run_pb2.WatchRunsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[run_pb2.WatchRunsResponse]:
        try:
            watch = RunWatch(self._store, self._hub, request.fire_ids, request.run_ids)
            await watch.open(hidden=await authz.hidden_ids(self._store, request.fire_ids, request.run_ids))
        except CoordinatorError as exc:
            await grpc_status.abort(context, exc)
        async for event in watch.events():
            yield event

    async def StreamRunLogs(
        self, request: run_pb2.StreamRunLogsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[run_pb2.StreamRunLogsResponse]:
        try:
            run_id = _required("run_id", request.run_id)
            if request.after_sequence < 0:
                raise InvalidArgumentError("after_sequence", "must be ≥ 0")
            found = await authz.run_for(self._store, run_id, Role.VIEWER)
            only = step_filter(found, request.step[:200]) if request.step else None
        except CoordinatorError as exc:
            await grpc_status.abort(context, exc)
        after = request.after_sequence
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
            if not request.follow:
                yield _end(run_pb2.STREAM_END_REASON_CAUGHT_UP, await self._run(run), after)
                return
            await self._hub.wait(wake, _POLL_SECONDS)


def _run_filters(request: run_pb2.ListRunsRequest) -> dict[str, Any]:
    """ListRuns' filters as ``Store.list_runs`` keywords; INVALID_ARGUMENT for unknown states and an
    empty time range."""
    states = []
    for number in request.states:
        name = run_pb2.RunState.Name(number) if number in run_pb2.RunState.values() else ""
        if not name or number == run_pb2.RUN_STATE_UNSPECIFIED:
            raise InvalidArgumentError("states", f"{number} is not a run state (RUN_STATE_QUEUED..ABORTED)")
        states.append(RunState(name.removeprefix("RUN_STATE_")))
    after = request.created_after.ToDatetime(UTC) if request.HasField("created_after") else None
    before = request.created_before.ToDatetime(UTC) if request.HasField("created_before") else None
    if after is not None and before is not None and after >= before:
        raise InvalidArgumentError(
            "created_after", f"{after.isoformat()} is not before created_before {before.isoformat()}"
        )
    return {
        "states": states,
        "created_after": after,
        "created_before": before,
        "project_key": request.project_key,
    }


def _end(reason: run_pb2.StreamEndReason, run: run_pb2.Run, last: int) -> run_pb2.StreamRunLogsResponse:
    return run_pb2.StreamRunLogsResponse(
        end=run_pb2.StreamEnd(reason=reason, run=run, last_sequence=max(last, 0))
    )
