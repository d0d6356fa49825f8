"""The REST routes of scenarios: list, read, create or change (PUT, with revisions), delete.

``PUT /v1/scenarios/{id}`` is "make it so": 201 when it created the scenario, 200 when it changed
(or re-stated) it. ``expected_revision`` (or ``If-Match: "N"``, the revision GET's ``ETag`` carries)
makes it conditional: a scenario changed by someone else since is 409 ``aborted`` and nothing is
written; 0 means "only if it does not exist yet". Two unconditional PUTs of a new id racing each
other both succeed (the later one updates what the earlier created).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Response
from fastapi.responses import JSONResponse
from google.protobuf import json_format
from pydantic import BaseModel, ConfigDict, Field

from seedbed.api.v1 import scenario_pb2
from seedbed.coordinator.app import ScenarioUseCases
from seedbed.coordinator.errors import AlreadyExistsError, ConflictError, InvalidArgumentError, NotFoundError
from seedbed.coordinator.faces.rest._json import message_response, page_response, to_json
from seedbed.coordinator.faces.rest._runs import MAX_SEQUENCE

MAX_SCENARIO_PAGE = 100  # scenarios carry their scripts (up to SEEDBED_MAX_SCRIPT_BYTES each)
PAGE_SIZE_QUERY = Query(ge=0, le=MAX_SCENARIO_PAGE, description=f"at most {MAX_SCENARIO_PAGE}; 0: 20")


class ScenarioDefinition(BaseModel):
    """A scenario as PUT writes it. Absent fields stay as they are on an update."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(None, description="shown in lists; the id when absent on create")
    script: str | None = Field(None, description="the scenario's Python source; required on create")
    settings: dict[str, Any] | None = Field(
        None,
        description="the contract's ScenarioSettings in its JSON form (snake_case names, enums by "
        "name); replaces the settings whole",
    )
    project_key: str = Field(
        "", description="the project of a new scenario (empty: default); an existing one's cannot change"
    )
    expected_revision: int | None = Field(
        None,
        ge=0,
        le=MAX_SEQUENCE,
        description="write only if the scenario is at this revision (0: only if it does not exist "
        'yet); otherwise 409 and nothing changes. Also accepted as If-Match: "N"',
    )


def scenario_routes(api: APIRouter, scenarios: ScenarioUseCases) -> None:
    @api.get(
        "/scenarios",
        tags=["scenarios"],
        summary="List scenarios",
        responses={200: page_response("scenarios", scenario_pb2.Scenario)},
    )
    async def list_scenarios(
        project_key: Annotated[str, Query(max_length=100)] = "",
        page_size: Annotated[int, PAGE_SIZE_QUERY] = 0,
        page_token: Annotated[str, Query(max_length=20)] = "",
    ) -> JSONResponse:
        page, token = await scenarios.list_scenarios(project_key, page_size or 20, page_token)
        return JSONResponse({"scenarios": [to_json(s) for s in page], "next_page_token": token})

    @api.get(
        "/projects/{project}/scenarios",
        tags=["scenarios"],
        summary="List a project's scenarios",
        responses={200: page_response("scenarios", scenario_pb2.Scenario)},
    )
    async def list_project_scenarios(
        project: str,
        page_size: Annotated[int, PAGE_SIZE_QUERY] = 0,
        page_token: Annotated[str, Query(max_length=20)] = "",
    ) -> JSONResponse:
        return await list_scenarios(project, page_size, page_token)

    @api.get(
        "/scenarios/{scenario_id}",
        tags=["scenarios"],
        summary="Get a scenario (its definition)",
        responses={200: message_response(scenario_pb2.Scenario)},
    )
    async def get_scenario(scenario_id: str) -> JSONResponse:
        scenario = await scenarios.get_scenario(scenario_id)
        return JSONResponse(to_json(scenario), headers={"ETag": f'"{scenario.revision}"'})

    @api.get(
        "/scenarios/{scenario_id}/status",
        tags=["scenarios"],
        summary="Whether a scenario runs now, its last outcome and its next run",
        responses={200: message_response(scenario_pb2.GetScenarioStatusResponse)},
    )
    async def scenario_status(scenario_id: str) -> JSONResponse:
        return JSONResponse(to_json(await scenarios.scenario_status(scenario_id)))

    @api.put(
        "/scenarios/{scenario_id}",
        tags=["scenarios"],
        summary="Create or change a scenario",
        responses={
            200: message_response(scenario_pb2.Scenario),
            201: message_response(scenario_pb2.Scenario),
        },
        response_model=None,
    )
    async def put_scenario(
        scenario_id: str,
        body: ScenarioDefinition,
        if_match: Annotated[str | None, Header(description='"N": the same as expected_revision N')] = None,
        validate_only: Annotated[
            bool, Query(description="check everything, answer the scenario as it would be; write nothing")
        ] = False,
    ) -> JSONResponse:
        """201 when created, 200 when changed (or unchanged). With `expected_revision`, a scenario
        changed by someone else since is 409 and nothing is written. With `validate_only=true`, the
        same checks and answer (200), and nothing is written."""
        expected = body.expected_revision
        matched = _if_match(if_match)
        if matched is not None and expected is not None and matched != expected:
            raise InvalidArgumentError(
                "If-Match", f"names revision {matched} but expected_revision is {expected}: send one"
            )
        expected = matched if expected is None else expected
        settings = _settings(body.settings) if body.settings is not None else None
        scenario, created = None, False
        try:
            scenario = await _update(scenarios, scenario_id, body, settings, expected, validate_only)
        except NotFoundError:
            if expected:  # it was expected to exist
                raise ConflictError("scenario", scenario_id, expected, None) from None
        if scenario is None:
            if body.script is None:
                raise InvalidArgumentError("script", "is required to create a scenario")
            try:
                scenario = await scenarios.create_scenario(
                    scenario_id,
                    body.name or "",
                    body.script,
                    settings or scenario_pb2.ScenarioSettings(),
                    body.project_key,
                    validate_only=validate_only,
                )
                created = not validate_only
            except AlreadyExistsError:
                if expected == 0:  # created by someone else since: the condition failed
                    current = await scenarios.get_scenario(scenario_id)
                    raise ConflictError("scenario", scenario_id, 0, current.revision) from None
                # Created by a concurrent PUT since: this one changes it, as if it came second.
                scenario = await _update(scenarios, scenario_id, body, settings, expected, validate_only)
        # A validation's answer is not stored: no ETag to send back.
        headers = {} if validate_only else {"ETag": f'"{scenario.revision}"'}
        return JSONResponse(to_json(scenario), status_code=201 if created else 200, headers=headers)

    @api.delete("/scenarios/{scenario_id}", tags=["scenarios"], summary="Delete a scenario", status_code=204)
    async def delete_scenario(scenario_id: str) -> Response:
        await scenarios.delete_scenario(scenario_id)
        return Response(status_code=204)


async def _update(
    scenarios: ScenarioUseCases,
    scenario_id: str,
    body: ScenarioDefinition,
    settings: scenario_pb2.ScenarioSettings | None,
    expected: int | None,
    validate_only: bool,
) -> scenario_pb2.Scenario:
    """Change the scenario (NotFoundError when it does not exist). The roles are checked first; a
    project_key other than the scenario's is refused, since a scenario never moves."""
    if body.project_key:
        current = await scenarios.get_scenario(scenario_id)
        if current.project_key != body.project_key:
            raise InvalidArgumentError(
                "project_key",
                f"scenario {scenario_id!r} belongs to project {current.project_key!r}; a scenario "
                "cannot move (leave project_key out, or create a scenario with another id there)",
            )
    return await scenarios.update_scenario(
        scenario_id,
        name=body.name,
        script=body.script,
        settings=settings,
        expected_revision=expected,
        validate_only=validate_only,
    )


def _if_match(value: str | None) -> int | None:
    if value is None:
        return None
    text = value.strip()
    if not (text.startswith('"') and text.endswith('"')):
        raise InvalidArgumentError("If-Match", 'must be one revision as GET\'s ETag gives it, e.g. "3"')
    text = text[1:-1]
    if not (text.isascii() and text.isdigit()) or len(text) > 19:
        raise InvalidArgumentError("If-Match", 'must be one revision as GET\'s ETag gives it, e.g. "3"')
    return int(text)


def _settings(value: dict[str, Any]) -> scenario_pb2.ScenarioSettings:
    try:
        return json_format.ParseDict(value, scenario_pb2.ScenarioSettings())
    except json_format.ParseError as exc:
        raise InvalidArgumentError("settings", str(exc)[:500]) from None
