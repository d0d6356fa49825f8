"""gRPC servicers of the Run and Scenario services: thin adapters over the use cases
(``seedbed.coordinator.app``). Domain errors become status codes through ``guard`` and the
one table in ``faces.grpc.status``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC

import grpc

from seedbed.api.v1 import asset_pb2, run_pb2, run_pb2_grpc, scenario_pb2, scenario_pb2_grpc
from seedbed.coordinator.app import RunFilter, RunUseCases, ScenarioUseCases
from seedbed.coordinator.errors import CoordinatorError, InvalidArgumentError
from seedbed.coordinator.faces.grpc import status
from seedbed.coordinator.faces.grpc.status import guard
from seedbed.coordinator.model import RunState


class ScenarioServicer(scenario_pb2_grpc.ScenarioServiceServicer):
    def __init__(self, scenarios: ScenarioUseCases) -> None:
        self._app = scenarios

    @guard
    async def CreateScenario(
        self, request: scenario_pb2.CreateScenarioRequest, context: grpc.aio.ServicerContext
    ) -> scenario_pb2.CreateScenarioResponse:
        scenario = await self._app.create_scenario(
            request.scenario_id,
            request.name,
            request.script,
            request.settings,
            request.project_key,
            validate_only=request.validate_only,
        )
        return scenario_pb2.CreateScenarioResponse(scenario=scenario)

    @guard
    async def UpdateScenario(
        self, request: scenario_pb2.UpdateScenarioRequest, context: grpc.aio.ServicerContext
    ) -> scenario_pb2.UpdateScenarioResponse:
        scenario = await self._app.update_scenario(
            request.scenario_id,
            name=request.name if request.HasField("name") else None,
            script=request.script if request.HasField("script") else None,
            settings=request.settings if request.HasField("settings") else None,
            expected_revision=(request.expected_revision if request.HasField("expected_revision") else None),
            validate_only=request.validate_only,
        )
        return scenario_pb2.UpdateScenarioResponse(scenario=scenario)

    @guard
    async def GetScenario(
        self, request: scenario_pb2.GetScenarioRequest, context: grpc.aio.ServicerContext
    ) -> scenario_pb2.GetScenarioResponse:
        return scenario_pb2.GetScenarioResponse(scenario=await self._app.get_scenario(request.scenario_id))

    @guard
    async def ListScenarios(
        self, request: scenario_pb2.ListScenariosRequest, context: grpc.aio.ServicerContext
    ) -> scenario_pb2.ListScenariosResponse:
        page, token = await self._app.list_scenarios(
            request.project_key, request.page_size, request.page_token
        )
        return scenario_pb2.ListScenariosResponse(scenarios=page, next_page_token=token)

    @guard
    async def GetScenarioStatus(
        self, request: scenario_pb2.GetScenarioStatusRequest, context: grpc.aio.ServicerContext
    ) -> scenario_pb2.GetScenarioStatusResponse:
        return await self._app.scenario_status(request.scenario_id)

    @guard
    async def DeleteScenario(
        self, request: scenario_pb2.DeleteScenarioRequest, context: grpc.aio.ServicerContext
    ) -> scenario_pb2.DeleteScenarioResponse:
        await self._app.delete_scenario(request.scenario_id)
        return scenario_pb2.DeleteScenarioResponse()


class RunServicer(run_pb2_grpc.RunServiceServicer):
    def __init__(self, runs: RunUseCases) -> None:
        self._app = runs

    @guard
    async def RunScenario(
        self, request: run_pb2.RunScenarioRequest, context: grpc.aio.ServicerContext
    ) -> run_pb2.RunScenarioResponse:
        fire = await self._app.run_scenario(
            request.scenario_id, request.params, request.idempotency_key, dry_run=request.dry_run
        )
        return run_pb2.RunScenarioResponse(fire=fire)

    @guard
    async def ReplayRun(
        self, request: run_pb2.ReplayRunRequest, context: grpc.aio.ServicerContext
    ) -> run_pb2.ReplayRunResponse:
        fire = await self._app.replay_run(request.run_id, request.connections, request.idempotency_key)
        return run_pb2.ReplayRunResponse(fire=fire)

    @guard
    async def GetTriggerFire(
        self, request: run_pb2.GetTriggerFireRequest, context: grpc.aio.ServicerContext
    ) -> run_pb2.GetTriggerFireResponse:
        return run_pb2.GetTriggerFireResponse(fire=await self._app.get_fire(request.fire_id))

    @guard
    async def GetRun(
        self, request: run_pb2.GetRunRequest, context: grpc.aio.ServicerContext
    ) -> run_pb2.GetRunResponse:
        return run_pb2.GetRunResponse(run=await self._app.get_run(request.run_id))

    @guard
    async def ListRuns(
        self, request: run_pb2.ListRunsRequest, context: grpc.aio.ServicerContext
    ) -> run_pb2.ListRunsResponse:
        runs, token = await self._app.list_runs(_run_filter(request), request.page_size, request.page_token)
        return run_pb2.ListRunsResponse(runs=runs, next_page_token=token)

    @guard
    async def ListWriteBatches(
        self, request: run_pb2.ListWriteBatchesRequest, context: grpc.aio.ServicerContext
    ) -> run_pb2.ListWriteBatchesResponse:
        batches, token = await self._app.list_write_batches(
            request.run_id, request.page_size, request.page_token
        )
        return run_pb2.ListWriteBatchesResponse(batches=batches, next_page_token=token)

    @guard
    async def PurgeRun(
        self, request: run_pb2.PurgeRunRequest, context: grpc.aio.ServicerContext
    ) -> run_pb2.PurgeRunResponse:
        return await self._app.purge_run(request.run_id, dry_run=request.dry_run)

    @guard
    async def ListPurges(
        self, request: run_pb2.ListPurgesRequest, context: grpc.aio.ServicerContext
    ) -> run_pb2.ListPurgesResponse:
        return run_pb2.ListPurgesResponse(purges=await self._app.list_purges(request.run_id, request.limit))

    @guard
    async def GetRunTrace(
        self, request: run_pb2.GetRunTraceRequest, context: grpc.aio.ServicerContext
    ) -> run_pb2.GetRunTraceResponse:
        return await self._app.get_run_trace(request.run_id)

    @guard
    async def AbortRun(
        self, request: run_pb2.AbortRunRequest, context: grpc.aio.ServicerContext
    ) -> run_pb2.AbortRunResponse:
        run, already = await self._app.abort_run(request.run_id, request.reason)
        return run_pb2.AbortRunResponse(run=run, already_finished=already)

    @guard
    async def ListRunAssets(
        self, request: asset_pb2.ListRunAssetsRequest, context: grpc.aio.ServicerContext
    ) -> asset_pb2.ListRunAssetsResponse:
        return asset_pb2.ListRunAssetsResponse(assets=await self._app.assets.list_assets(request.run_id))

    async def DownloadRunAsset(
        self, request: asset_pb2.DownloadRunAssetRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[asset_pb2.DownloadRunAssetResponse]:
        try:
            asset, chunks = await self._app.assets.download(request.run_id, request.name)
        except CoordinatorError as exc:
            await status.abort(context, exc)
        yield asset_pb2.DownloadRunAssetResponse(asset=asset)
        try:
            async for chunk in chunks:
                yield asset_pb2.DownloadRunAssetResponse(chunk=chunk)
        except CoordinatorError as exc:  # DATA_LOSS: removed while it streamed
            await status.abort(context, exc)

    async def WatchRuns(
        self, request: run_pb2.WatchRunsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[run_pb2.WatchRunsResponse]:
        try:
            events = await self._app.watch_runs(request.fire_ids, request.run_ids)
        except CoordinatorError as exc:
            await status.abort(context, exc)
        async for event in events:
            yield event

    async def StreamRunLogs(
        self, request: run_pb2.StreamRunLogsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[run_pb2.StreamRunLogsResponse]:
        try:
            events = await self._app.stream_logs(
                request.run_id,
                after_sequence=request.after_sequence,
                follow=request.follow,
                step=request.step,
            )
        except CoordinatorError as exc:
            await status.abort(context, exc)
        async for event in events:
            yield event


def _run_filter(request: run_pb2.ListRunsRequest) -> RunFilter:
    """ListRuns' filters; INVALID_ARGUMENT for unknown states."""
    states = []
    for number in request.states:
        name = run_pb2.RunState.Name(number) if number in run_pb2.RunState.values() else ""
        if not name or number == run_pb2.RUN_STATE_UNSPECIFIED:
            raise InvalidArgumentError("states", f"{number} is not a run state (RUN_STATE_QUEUED..ABORTED)")
        states.append(RunState(name.removeprefix("RUN_STATE_")))
    return RunFilter(
        scenario_id=request.scenario_id,
        project_key=request.project_key,
        states=states,
        created_after=request.created_after.ToDatetime(UTC) if request.HasField("created_after") else None,
        created_before=(
            request.created_before.ToDatetime(UTC) if request.HasField("created_before") else None
        ),
    )
