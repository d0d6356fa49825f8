"""The REST API: routes over the use cases (``seedbed.coordinator.app``), for CI pipelines and
anything that speaks HTTP.

Each route authenticates the caller (``Authorization: Bearer <API key>``, as gRPC), makes it the
current principal, calls one use case and answers the contract's message as JSON (``_json``). It
decides nothing itself: validation, roles, rate limits and idempotency are the use cases', so REST
and gRPC cannot disagree. Errors are one envelope (``_errors``).

Logs are Server-Sent Events: one ``log`` event per line (``id`` = its sequence number), then one
``end`` event; a client that reconnects with ``Last-Event-ID`` resumes after that line, with no gap
and no repeat. When the coordinator stops, open streams end with a ``shutdown`` event instead of being
cut, and clients resume against the next coordinator.

Rejected: FastAPI's generator-style SSE routes (errors found after the first ``yield`` could no
longer become a 404), and Swagger UI at ``/docs`` (it loads its scripts from a CDN; the document at
``/v1/openapi.json`` is what tools read).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Header, Path, Query, Request, Response
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from fastapi.sse import EventSourceResponse, format_sse_event
from google.protobuf import json_format
from pydantic import BaseModel, ConfigDict, Field
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from seedbed.api.v1 import run_pb2, scenario_pb2
from seedbed.coordinator.access import Principal, bearer_secret, set_principal
from seedbed.coordinator.app import RunFilter, RunUseCases, ScenarioUseCases
from seedbed.coordinator.errors import ConflictError, InvalidArgumentError, NotFoundError
from seedbed.coordinator.faces.rest import _errors
from seedbed.coordinator.faces.rest._json import message_schemas, ref, to_json
from seedbed.coordinator.model import RunState

API_TITLE = "Seedbed REST API"
API_VERSION = "v1"
DEFAULT_PROJECT = "default"
KEEPALIVE_SECONDS = 15.0
MAX_WAIT_SECONDS = 3600
Authenticate = Callable[[str], Any]  # async (secret) -> Principal

WAIT_QUERY = Query(description="answer when the run has ended (or timeout_seconds passed)")
TIMEOUT_QUERY = Query(gt=0, le=MAX_WAIT_SECONDS, description="how long wait=true waits")
IDEMPOTENCY_KEY_HEADER = Header(
    max_length=200,
    description="the same key with the same body answers the same fire and run (a retried CI "
    "step starts nothing twice); with another body: 409",
)


class RunRequest(BaseModel):
    """What to run with. Values may be strings, numbers or booleans; the scenario reads them as
    strings (numbers and booleans in their JSON spelling)."""

    model_config = ConfigDict(extra="forbid")
    params: dict[str, str | bool | int | float] = Field(default_factory=dict, description="the run's params")


class AbortRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field("", description="kept with the run; at most 1000 characters are kept")


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
    project_key: str = Field("", description="the project of a new scenario (empty: default)")
    expected_revision: int | None = Field(
        None,
        description="write only if the scenario is at this revision (0: only if it does not exist "
        "yet); otherwise 409 and nothing changes",
    )


def build_app(
    runs: RunUseCases,
    scenarios: ScenarioUseCases,
    authenticate: Authenticate,
    *,
    max_body_bytes: int,
    closing: asyncio.Event,
    mounts: Mapping[str, ASGIApp] | None = None,
    lifespan: Callable[[FastAPI], contextlib.AbstractAsyncContextManager[None]] | None = None,
) -> FastAPI:
    """The REST app. ``closing`` is set when the server stops (open log streams end);
    ``mounts`` are further ASGI apps by path (the MCP endpoint), ``lifespan`` theirs."""
    app = FastAPI(
        title=API_TITLE,
        version=API_VERSION,
        openapi_url="/v1/openapi.json",
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
        description="Run Seedbed scenarios from CI and scripts: the same use cases as the gRPC API. "
        "Authenticate with `Authorization: Bearer <API key>`. Errors are "
        '`{"error": {"code", "message", "details"}}`.',
    )
    _errors.install(app)

    async def caller(
        authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
    ) -> Principal:
        principal: Principal = await authenticate(bearer_secret(authorization))
        set_principal(principal)  # each request runs in its own task: nothing to reset
        return principal

    api = APIRouter(prefix="/v1", dependencies=[Depends(caller)])
    _run_routes(api, runs, closing)
    _scenario_routes(api, scenarios)
    app.include_router(api)

    @app.get("/v1/healthz", tags=["health"], summary="Whether the REST face answers (no key needed)")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    for path, mounted in (mounts or {}).items():
        # A route, not app.mount: a mount answers its bare path with a redirect to path + "/".
        app.router.routes.append(Route(path, endpoint=mounted))
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    app.add_middleware(BodyLimit, limit=max_body_bytes)
    return app


# --- runs -------------------------------------------------------------------------------------------


def _run_routes(api: APIRouter, runs: RunUseCases, closing: asyncio.Event) -> None:
    fire_and_run = {
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "fire": ref(run_pb2.TriggerFire.DESCRIPTOR),
                        "run": {"anyOf": [ref(run_pb2.Run.DESCRIPTOR), {"type": "null"}]},
                    },
                }
            }
        }
    }

    async def start(
        project: str,
        scenario_id: str,
        body: RunRequest,
        idempotency_key: str,
        wait: bool,
        timeout_seconds: float,
    ) -> JSONResponse:
        fire = await runs.run_scenario(
            scenario_id, _param_strings(body.params), idempotency_key, project_key=project
        )
        run = await runs.get_run(fire.run_id) if fire.run_id else None
        if wait:
            fire, run = await _wait(runs, fire, timeout_seconds)
        finished = run is not None and _terminal(run)
        headers = {"Location": f"/v1/runs/{run.id}"} if run is not None else {}
        return JSONResponse(
            {"fire": to_json(fire), "run": to_json(run) if run is not None else None},
            status_code=200 if finished or fire.state == run_pb2.TRIGGER_FIRE_STATE_CANCELLED else 202,
            headers=headers,
        )

    @api.post(
        "/projects/{project}/scenarios/{scenario_id}/run",
        tags=["runs"],
        summary="Run a scenario of a project",
        responses={200: fire_and_run, 202: fire_and_run},
        response_model=None,
    )
    async def run_in_project(
        project: Annotated[str, Path(max_length=100)],
        scenario_id: Annotated[str, Path(max_length=200)],
        body: RunRequest | None = None,
        idempotency_key: Annotated[str, IDEMPOTENCY_KEY_HEADER] = "",
        wait: Annotated[bool, WAIT_QUERY] = False,
        timeout_seconds: Annotated[float, TIMEOUT_QUERY] = 600.0,
    ) -> JSONResponse:
        """Fire the scenario: 202 with the fire (and its run, once it has one); with `wait=true`,
        200 once the run has ended. A fire cancelled by the overlap policy answers 200 with its
        reason."""
        return await start(project, scenario_id, body or RunRequest(), idempotency_key, wait, timeout_seconds)

    @api.post(
        "/scenarios/{scenario_id}/run",
        tags=["runs"],
        summary="Run a scenario of the default project",
        responses={200: fire_and_run, 202: fire_and_run},
        response_model=None,
    )
    async def run_default(
        scenario_id: Annotated[str, Path(max_length=200)],
        body: RunRequest | None = None,
        idempotency_key: Annotated[str, IDEMPOTENCY_KEY_HEADER] = "",
        wait: Annotated[bool, WAIT_QUERY] = False,
        timeout_seconds: Annotated[float, TIMEOUT_QUERY] = 600.0,
    ) -> JSONResponse:
        """The same as `/v1/projects/default/scenarios/{scenario_id}/run`."""
        return await start(
            DEFAULT_PROJECT, scenario_id, body or RunRequest(), idempotency_key, wait, timeout_seconds
        )

    @api.get("/runs/{run_id}", tags=["runs"], summary="Get a run", responses={200: _message(run_pb2.Run)})
    async def get_run(run_id: Annotated[str, Path(max_length=200)]) -> JSONResponse:
        return JSONResponse(to_json(await runs.get_run(run_id)))

    @api.get(
        "/fires/{fire_id}",
        tags=["runs"],
        summary="Get a trigger fire",
        responses={200: _message(run_pb2.TriggerFire)},
    )
    async def get_fire(fire_id: Annotated[str, Path(max_length=200)]) -> JSONResponse:
        return JSONResponse(to_json(await runs.get_fire(fire_id)))

    @api.get(
        "/runs", tags=["runs"], summary="List runs, newest first", responses={200: _page("runs", run_pb2.Run)}
    )
    async def list_runs(
        scenario_id: Annotated[str, Query(max_length=200)] = "",
        project_key: Annotated[str, Query(max_length=100)] = "",
        state: Annotated[list[str] | None, Query(description="SUCCESS, FAILED, … (repeatable)")] = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        page_size: Annotated[int, Query(ge=0, le=1000)] = 0,
        page_token: Annotated[str, Query(max_length=20)] = "",
    ) -> JSONResponse:
        where = RunFilter(
            scenario_id=scenario_id,
            project_key=project_key,
            states=_states(state or []),
            created_after=created_after,
            created_before=created_before,
        )
        page, token = await runs.list_runs(where, page_size, page_token)
        return JSONResponse({"runs": [to_json(r) for r in page], "next_page_token": token})

    @api.post(
        "/runs/{run_id}/abort",
        tags=["runs"],
        summary="Abort a run",
        responses={
            200: {
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "properties": {
                                "run": ref(run_pb2.Run.DESCRIPTOR),
                                "already_finished": {"type": "boolean"},
                            },
                        }
                    }
                }
            }
        },
    )
    async def abort_run(
        run_id: Annotated[str, Path(max_length=200)], body: AbortRequest | None = None
    ) -> JSONResponse:
        run, already = await runs.abort_run(run_id, (body or AbortRequest()).reason)
        return JSONResponse({"run": to_json(run), "already_finished": already})

    @api.get(
        "/runs/{run_id}/logs",
        tags=["runs"],
        summary="A run's log lines as Server-Sent Events",
        response_model=None,
        responses={
            200: {
                "description": "`log` events (data: a LogLine, id: its sequence number), then one `end` "
                "event (data: a StreamEnd); `shutdown` when the coordinator stops (reconnect with "
                "Last-Event-ID)",
                "content": {"text/event-stream": {"schema": {"type": "string"}}},
            }
        },
    )
    async def run_logs(
        request: Request,
        run_id: Annotated[str, Path(max_length=200)],
        follow: Annotated[bool, Query(description="keep the stream open until the run ends")] = False,
        after_sequence: Annotated[int, Query(ge=0, description="only lines after this sequence number")] = 0,
        step: Annotated[
            str, Query(max_length=200, description="only this step's lines (number or name)")
        ] = "",
        last_event_id: Annotated[str | None, Header(max_length=20)] = None,
    ) -> EventSourceResponse:
        after = max(after_sequence, _last_event_id(last_event_id))
        events = await runs.stream_logs(run_id, after_sequence=after, follow=follow, step=step)
        return EventSourceResponse(
            _sse(events, closing, request), headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
        )


async def _wait(
    runs: RunUseCases, fire: run_pb2.TriggerFire, timeout_seconds: float
) -> tuple[run_pb2.TriggerFire, run_pb2.Run | None]:
    run: run_pb2.Run | None = None
    events = await runs.watch_runs([fire.id], [])
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout_seconds):
            async for event in events:
                if event.HasField("fire"):
                    fire = event.fire
                elif event.HasField("run"):
                    run = event.run
                if event.done:
                    break
    with contextlib.suppress(Exception):
        await events.aclose()  # type: ignore[attr-defined]
    if run is None and fire.run_id:
        run = await runs.get_run(fire.run_id)
    return fire, run


async def _sse(
    events: AsyncIterator[run_pb2.StreamRunLogsResponse], closing: asyncio.Event, request: Request
) -> AsyncIterator[bytes]:
    """Encode the use case's events; a keep-alive comment after a quiet spell; a ``shutdown`` event
    when the server stops first."""
    stop: asyncio.Future[Any] = asyncio.ensure_future(closing.wait())
    pending: asyncio.Future[Any] | None = None
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(anext(events))
            done, _ = await asyncio.wait(
                {pending, stop}, timeout=KEEPALIVE_SECONDS, return_when=asyncio.FIRST_COMPLETED
            )
            if pending in done:
                try:
                    event = pending.result()
                except StopAsyncIteration:
                    return
                pending = None
                if event.HasField("line"):
                    yield format_sse_event(
                        data_str=json.dumps(to_json(event.line)), event="log", id=str(event.line.sequence)
                    )
                else:
                    yield format_sse_event(data_str=json.dumps(to_json(event.end)), event="end")
                    return
            elif stop in done:
                yield format_sse_event(
                    data_str=json.dumps(
                        {"message": "the coordinator is stopping; reconnect with Last-Event-ID"}
                    ),
                    event="shutdown",
                )
                return
            else:
                yield format_sse_event(comment="keep-alive")
    finally:
        stop.cancel()
        if pending is not None:
            pending.cancel()
        with contextlib.suppress(Exception):
            await events.aclose()  # type: ignore[attr-defined]


# --- scenarios --------------------------------------------------------------------------------------


def _scenario_routes(api: APIRouter, scenarios: ScenarioUseCases) -> None:
    @api.get(
        "/scenarios",
        tags=["scenarios"],
        summary="List scenarios",
        responses={200: _page("scenarios", scenario_pb2.Scenario)},
    )
    async def list_scenarios(
        project_key: Annotated[str, Query(max_length=100)] = "",
        page_size: Annotated[int, Query(ge=0, le=1000)] = 0,
        page_token: Annotated[str, Query(max_length=20)] = "",
    ) -> JSONResponse:
        page, token = await scenarios.list_scenarios(project_key, page_size, page_token)
        return JSONResponse({"scenarios": [to_json(s) for s in page], "next_page_token": token})

    @api.get(
        "/projects/{project}/scenarios",
        tags=["scenarios"],
        summary="List a project's scenarios",
        responses={200: _page("scenarios", scenario_pb2.Scenario)},
    )
    async def list_project_scenarios(
        project: Annotated[str, Path(max_length=100)],
        page_size: Annotated[int, Query(ge=0, le=1000)] = 0,
        page_token: Annotated[str, Query(max_length=20)] = "",
    ) -> JSONResponse:
        page, token = await scenarios.list_scenarios(project, page_size, page_token)
        return JSONResponse({"scenarios": [to_json(s) for s in page], "next_page_token": token})

    @api.get(
        "/scenarios/{scenario_id}",
        tags=["scenarios"],
        summary="Get a scenario (its definition)",
        responses={200: _message(scenario_pb2.Scenario)},
    )
    async def get_scenario(scenario_id: Annotated[str, Path(max_length=200)]) -> JSONResponse:
        scenario = await scenarios.get_scenario(scenario_id)
        return JSONResponse(to_json(scenario), headers={"ETag": f'"{scenario.revision}"'})

    @api.put(
        "/scenarios/{scenario_id}",
        tags=["scenarios"],
        summary="Create or change a scenario",
        responses={200: _message(scenario_pb2.Scenario), 201: _message(scenario_pb2.Scenario)},
        response_model=None,
    )
    async def put_scenario(
        scenario_id: Annotated[str, Path(max_length=200)], body: ScenarioDefinition, response: Response
    ) -> JSONResponse:
        """201 when created, 200 when changed (or unchanged). With `expected_revision`, a scenario
        changed by someone else since is 409 and nothing is written."""
        settings = _settings(body.settings) if body.settings is not None else None
        try:
            await scenarios.get_scenario(scenario_id)
            exists = True
        except NotFoundError:
            exists = False
        if exists:
            if body.expected_revision == 0:
                current = await scenarios.get_scenario(scenario_id)
                raise ConflictError("scenario", scenario_id, 0, current.revision)
            scenario = await scenarios.update_scenario(
                scenario_id,
                name=body.name,
                script=body.script,
                settings=settings,
                expected_revision=body.expected_revision,
            )
            status = 200
        else:
            if body.expected_revision:
                raise ConflictError("scenario", scenario_id, body.expected_revision, None)
            if body.script is None:
                raise InvalidArgumentError("script", "is required to create a scenario")
            scenario = await scenarios.create_scenario(
                scenario_id,
                body.name or "",
                body.script,
                settings or scenario_pb2.ScenarioSettings(),
                body.project_key,
            )
            status = 201
        return JSONResponse(to_json(scenario), status_code=status, headers={"ETag": f'"{scenario.revision}"'})

    @api.delete("/scenarios/{scenario_id}", tags=["scenarios"], summary="Delete a scenario", status_code=204)
    async def delete_scenario(scenario_id: Annotated[str, Path(max_length=200)]) -> Response:
        await scenarios.delete_scenario(scenario_id)
        return Response(status_code=204)


# --- helpers ----------------------------------------------------------------------------------------


def _param_strings(params: Mapping[str, str | bool | int | float]) -> dict[str, str]:
    return {key: value if isinstance(value, str) else json.dumps(value) for key, value in params.items()}


def _terminal(run: run_pb2.Run) -> bool:
    return run.state in (
        run_pb2.RUN_STATE_SUCCESS,
        run_pb2.RUN_STATE_WARNING,
        run_pb2.RUN_STATE_FAILED,
        run_pb2.RUN_STATE_ABORTED,
    )


def _states(names: Sequence[str]) -> list[RunState]:
    states = []
    for name in names:
        try:
            states.append(RunState(name.upper().removeprefix("RUN_STATE_")))
        except ValueError:
            known = ", ".join(s.value for s in RunState)
            raise InvalidArgumentError("state", f"{name[:40]!r} is not a run state ({known})") from None
    return states


def _last_event_id(value: str | None) -> int:
    if value is None or value == "":
        return 0
    if not value.isdigit():
        raise InvalidArgumentError("Last-Event-ID", "must be the id of a log event (a sequence number)")
    return int(value)


def _settings(value: dict[str, Any]) -> scenario_pb2.ScenarioSettings:
    try:
        return json_format.ParseDict(value, scenario_pb2.ScenarioSettings())
    except json_format.ParseError as exc:
        raise InvalidArgumentError("settings", str(exc)[:500]) from None


def _message(message: Any) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": ref(message.DESCRIPTOR)}}}


def _page(field: str, message: Any) -> dict[str, Any]:
    schema = {
        "type": "object",
        "properties": {
            field: {"type": "array", "items": ref(message.DESCRIPTOR)},
            "next_page_token": {"type": "string"},
        },
    }
    return {"content": {"application/json": {"schema": schema}}}


def _openapi(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema is None:
        doc = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        components = doc.setdefault("components", {})
        components.setdefault("schemas", {}).update(
            message_schemas(
                run_pb2.Run.DESCRIPTOR,
                run_pb2.TriggerFire.DESCRIPTOR,
                run_pb2.LogLine.DESCRIPTOR,
                run_pb2.StreamEnd.DESCRIPTOR,
                scenario_pb2.Scenario.DESCRIPTOR,
            )
        )
        components["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
        doc["security"] = [{"bearer": []}]
        app.openapi_schema = doc
    return app.openapi_schema


class BodyLimit:
    """Refuse a request body over the limit with 413 naming it, whether announced (Content-Length)
    or streamed: the body (a JSON document here) is read up to the limit before the app sees it,
    then replayed. Counting inside the app instead would not do: FastAPI turns any failure while
    reading a body into a generic 400."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for key, value in scope.get("headers", ()):
            if key == b"content-length" and value.isdigit() and int(value) > self.limit:
                await self._refuse(int(value), scope, receive, send)
                return
        chunks: list[bytes] = []
        seen = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunk = message.get("body", b"")
            seen += len(chunk)
            if seen > self.limit:
                await self._refuse(seen, scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: only http.disconnect

        await self.app(scope, replay, send)

    async def _refuse(self, size: int, scope: Scope, receive: Receive, send: Send) -> None:
        response = _errors.envelope(
            413,
            "payload_too_large",
            f"the request body is {size} bytes or more; the limit is {self.limit} bytes "
            "(SEEDBED_MAX_MESSAGE_BYTES): send less, e.g. fewer or smaller params",
            {"limit_bytes": self.limit},
        )
        await response(scope, receive, send)
