"""Projects: where scenarios and their runs live. The project "default" always exists."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, overload

import grpc

from seedbed.api.v1 import access_pb2, access_pb2_grpc, scenario_pb2
from seedbed.client._client import ClientError
from seedbed.client._runs import stamp
from seedbed.client._scenarios import Scenario, ScenarioListItem
from seedbed.client._settings import settings_from_definition

if TYPE_CHECKING:
    from seedbed.client._client import Client

DEFAULT_PROJECT = "default"
# Dataiku's scenario types; Seedbed has the Python one ("custom_python").
SCENARIO_TYPES = ("custom_python", "step_based")
# An id made from a name: room for "_NN" within the 63 characters an id may have.
_ID_ROOM = 59
_ID_TRIES = 20


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
        name: str | None = None,
        script: str | Mapping[str, Any] | None = None,
        settings: scenario_pb2.ScenarioSettings | None = None,
        *,
        type: str | None = None,  # Dataiku's parameter name
        definition: Mapping[str, Any] | None = None,
    ) -> Scenario:
        """Create a scenario in this project (ALREADY_EXISTS when the id is taken), in either form:

        - Seedbed's: ``create_scenario("nightly", "Nightly", script, settings=None)``;
        - Dataiku's: ``create_scenario("Nightly customers", type="custom_python", definition=None)``
          (also positionally: ``create_scenario(name, "custom_python", definition)``). The first
          argument is then the name; the id is made from it as Dataiku does (its letters and digits,
          upper-cased: ``NIGHTLYCUSTOMERS``), with ``_2``, ``_3``… when taken. ``definition`` takes
          ``script`` (the Python source; a placeholder comment when absent: set it with
          ``set_payload()``), ``active``, ``runAsUser``, ``triggers`` and ``reporters`` (the dicts of
          ``raw_triggers`` and ``raw_reporters``), and an empty ``params``; anything else is a
          ValueError. Seedbed scenarios are Python scripts: the type is "custom_python".
        """
        dataiku_form = type is not None or definition is not None or isinstance(script, Mapping)
        if not dataiku_form and script is None and name in SCENARIO_TYPES:
            dataiku_form = True
        if dataiku_form:
            if isinstance(script, Mapping):
                if definition is not None:
                    raise TypeError("create_scenario() got a definition twice (positional and keyword)")
                definition = script
            kind = type if type is not None else name
            return self._create_from_definition(scenario_id, kind, definition or {}, settings)
        if script is None or isinstance(script, Mapping):
            raise TypeError(
                "create_scenario() needs the scenario's script: create_scenario(scenario_id, name, script), "
                'or Dataiku\'s form create_scenario(name, type="custom_python", definition=...)'
            )
        return self._create(scenario_id, name or scenario_id, script, settings)

    def _create(
        self, scenario_id: str, name: str, script: str, settings: scenario_pb2.ScenarioSettings | None
    ) -> Scenario:
        request = scenario_pb2.CreateScenarioRequest(
            scenario_id=scenario_id, name=name, script=script, settings=settings, project_key=self.key
        )
        response = self._client._call(self._client._scenarios.CreateScenario, request)
        return Scenario(self._client, response.scenario)  # type: ignore[attr-defined]

    def _create_from_definition(
        self,
        name: str,
        kind: str | None,
        definition: Mapping[str, Any],
        settings: scenario_pb2.ScenarioSettings | None,
    ) -> Scenario:
        if kind != "custom_python":
            raise ValueError(
                f"scenario type {kind!r} is not one Seedbed has: its scenarios are Python scripts "
                '(type="custom_python"); a step-based scenario becomes a script with a '
                'dm.step("name") block per step'
            )
        script, from_definition = settings_from_definition(definition)
        if settings is not None:
            raise TypeError("create_scenario() in Dataiku's form takes its settings in definition")
        base = "".join(ch for ch in name if ch.isascii() and ch.isalnum()).upper()[:_ID_ROOM]
        for attempt in range(1, _ID_TRIES + 1):
            candidate = base if attempt == 1 else f"{base}_{attempt}"
            try:
                # An empty id (a name without letters or digits): the coordinator makes one.
                return self._create(candidate if base else "", name, script, from_definition)
            except ClientError as exc:
                if exc.code != grpc.StatusCode.ALREADY_EXISTS or not base:
                    raise
        raise ClientError(
            grpc.StatusCode.ALREADY_EXISTS,
            f"the ids {base} to {base}_{_ID_TRIES} are all taken: name the scenario differently, or "
            "create it with an id of your own (create_scenario(scenario_id, name, script))",
        )


def get_project(client: Client, key: str) -> Project:
    response = client._call(access_stub(client).GetProject, access_pb2.GetProjectRequest(key=key))
    return Project(client, response.project, response.role)  # type: ignore[attr-defined]


def list_projects(client: Client) -> list[Project]:
    response = client._call(access_stub(client).ListProjects, access_pb2.ListProjectsRequest())
    return [Project(client, p) for p in response.projects]  # type: ignore[attr-defined]
