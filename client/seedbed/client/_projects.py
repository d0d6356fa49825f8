"""Projects: where scenarios and their runs live. The project "default" always exists."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Literal, overload

import grpc

from seedbed.api.v1 import access_pb2, access_pb2_grpc, scenario_pb2
from seedbed.client._client import ClientError
from seedbed.client._runs import stamp
from seedbed.client._scenarios import Scenario, ScenarioListItem

if TYPE_CHECKING:
    from seedbed.client._client import Client

DEFAULT_PROJECT = "default"


def access_stub(client: Client) -> access_pb2_grpc.AccessServiceStub:
    return access_pb2_grpc.AccessServiceStub(client._channel)


class Project:
    """A project, as the caller sees it (``role``: the caller's role in it)."""

    def __init__(self, client: Client, project: access_pb2.Project, role: int = 0) -> None:
        self._client = client
        self.raw = project
        self._role = role

    def __repr__(self) -> str:
        return f"Project({self.key!r})"

    @property
    def key(self) -> str:
        return self.raw.key

    @property
    def name(self) -> str:
        return self.raw.name

    @property
    def description(self) -> str:
        return self.raw.description

    @property
    def create_time(self) -> datetime | None:
        return stamp(self.raw, "create_time")

    @property
    def role(self) -> str | None:
        """VIEWER, RUNNER, EDITOR or ADMIN; None when not known (listed, not fetched)."""
        return access_pb2.Role.Name(self._role).removeprefix("ROLE_") if self._role else None

    def _scenarios(self) -> list[scenario_pb2.Scenario]:
        request = scenario_pb2.ListScenariosRequest(project_key=self.key, page_size=1000)
        return self._client._every(self._client._scenarios.ListScenarios, request, "scenarios")

    @overload
    def list_scenarios(self, as_type: Literal["listitems"] = "listitems") -> list[ScenarioListItem]: ...

    @overload
    def list_scenarios(self, as_type: Literal["objects"]) -> list[Scenario]: ...

    def list_scenarios(self, as_type: str = "listitems") -> list[ScenarioListItem] | list[Scenario]:
        """Every scenario of the project: light ``ScenarioListItem``s (id, name, active,
        effective run-as…) or, with ``as_type="objects"``, ``Scenario`` objects."""
        if as_type == "listitems":
            return [ScenarioListItem.of(s) for s in self._scenarios()]
        if as_type == "objects":
            return [Scenario(self._client, s) for s in self._scenarios()]
        raise ValueError(f'as_type must be "listitems" or "objects", got {as_type!r}')

    def get_scenario(self, scenario_id: str) -> Scenario:
        """The scenario; NOT_FOUND (ClientError) when the project has no such scenario."""
        scenario = self._client.get_scenario(scenario_id)
        if scenario.project_key and scenario.project_key != self.key:
            raise ClientError(grpc.StatusCode.NOT_FOUND, f"project {self.key} has no scenario {scenario_id}")
        return Scenario(self._client, scenario)

    def create_scenario(
        self,
        scenario_id: str,
        name: str,
        script: str,
        settings: scenario_pb2.ScenarioSettings | None = None,
    ) -> Scenario:
        """Create a scenario in this project (ALREADY_EXISTS when the id is taken)."""
        request = scenario_pb2.CreateScenarioRequest(
            scenario_id=scenario_id, name=name, script=script, settings=settings, project_key=self.key
        )
        response = self._client._call(self._client._scenarios.CreateScenario, request)
        return Scenario(self._client, response.scenario)  # type: ignore[attr-defined]


def get_project(client: Client, key: str) -> Project:
    response = client._call(access_stub(client).GetProject, access_pb2.GetProjectRequest(key=key))
    return Project(client, response.project, response.role)  # type: ignore[attr-defined]


def list_projects(client: Client) -> list[Project]:
    response = client._call(access_stub(client).ListProjects, access_pb2.ListProjectsRequest())
    return [Project(client, p) for p in response.projects]  # type: ignore[attr-defined]
