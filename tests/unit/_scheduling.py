"""Raw-stub helpers of the scheduling tests (overlap policies, triggers, WatchRuns, status)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import grpc

from seedbed.api.v1 import run_pb2, run_pb2_grpc, scenario_pb2, scenario_pb2_grpc
from tests.conftest import auth_metadata, eventually

TERMINAL = {
    run_pb2.RUN_STATE_SUCCESS,
    run_pb2.RUN_STATE_WARNING,
    run_pb2.RUN_STATE_FAILED,
    run_pb2.RUN_STATE_ABORTED,
}


@dataclass
class Api:
    scenarios: scenario_pb2_grpc.ScenarioServiceStub
    runs: run_pb2_grpc.RunServiceStub

    def create(self, scenario_id: str, script: str, **settings: Any) -> scenario_pb2.Scenario:
        request = scenario_pb2.CreateScenarioRequest(
            scenario_id=scenario_id, script=script, settings=scenario_pb2.ScenarioSettings(**settings)
        )
        return self.scenarios.CreateScenario(request, metadata=auth_metadata()).scenario

    def fire(self, scenario_id: str, key: str = "", **params: str) -> run_pb2.TriggerFire:
        request = run_pb2.RunScenarioRequest(scenario_id=scenario_id, params=params, idempotency_key=key)
        return self.runs.RunScenario(request, metadata=auth_metadata()).fire

    def get_fire(self, fire_id: str) -> run_pb2.TriggerFire:
        return self.runs.GetTriggerFire(
            run_pb2.GetTriggerFireRequest(fire_id=fire_id), metadata=auth_metadata()
        ).fire

    def get_run(self, run_id: str) -> run_pb2.Run:
        return self.runs.GetRun(run_pb2.GetRunRequest(run_id=run_id), metadata=auth_metadata()).run

    def abort(self, run_id: str) -> run_pb2.Run:
        return self.runs.AbortRun(run_pb2.AbortRunRequest(run_id=run_id), metadata=auth_metadata()).run

    def status(self, scenario_id: str) -> scenario_pb2.GetScenarioStatusResponse:
        request = scenario_pb2.GetScenarioStatusRequest(scenario_id=scenario_id)
        return self.scenarios.GetScenarioStatus(request, metadata=auth_metadata())

    def list_runs(self, **fields: Any) -> list[run_pb2.Run]:
        return list(self.runs.ListRuns(run_pb2.ListRunsRequest(**fields), metadata=auth_metadata()).runs)

    def watch(self, fire_ids: list[str] = [], run_ids: list[str] = []) -> list[run_pb2.WatchRunsResponse]:  # noqa: B006
        request = run_pb2.WatchRunsRequest(fire_ids=fire_ids, run_ids=run_ids)
        return list(self.runs.WatchRuns(request, metadata=auth_metadata(), timeout=60))

    def ended(self, run_id: str) -> run_pb2.Run:
        return eventually(lambda: (run := self.get_run(run_id)).state in TERMINAL and run)

    def running(self, run_id: str) -> run_pb2.Run:
        return eventually(lambda: (run := self.get_run(run_id)).state == run_pb2.RUN_STATE_RUNNING and run)


@contextmanager
def api(address: str) -> Iterator[Api]:
    with grpc.insecure_channel(address) as channel:
        yield Api(scenario_pb2_grpc.ScenarioServiceStub(channel), run_pb2_grpc.RunServiceStub(channel))
