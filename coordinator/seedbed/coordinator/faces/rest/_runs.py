"""The REST routes of runs: run a scenario (and optionally wait), read, list and abort runs, follow
a run's logs as Server-Sent Events, list its write batches, purge what it wrote, read its trace.

Logs: one ``log`` event per line (``id`` = its sequence number), then one ``end`` event; a client that
reconnects with ``Last-Event-ID`` resumes after that line, with no gap and no repeat. When the
coordinator stops, open streams end with a ``shutdown`` event instead of being cut. A client that
goes away ends its stream (and a ``wait=true`` call) at once: nothing keeps polling for it.

Rejected: FastAPI's generator-style SSE routes (errors found after the first ``yield`` could no
longer become a 404).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse
from fastapi.sse import EventSourceResponse, format_sse_event
from pydantic import BaseModel, ConfigDict, Field

from seedbed.api.v1 import run_pb2
from seedbed.coordinator.app import RunFilter, RunUseCases
from seedbed.coordinator.errors import InvalidArgumentError
from seedbed.coordinator.faces.rest._json import message_response, page_response, ref, to_json
from seedbed.coordinator.model import MAX_INT64, RunState

DEFAULT_PROJECT = "default"
KEEPALIVE_SECONDS = 15.0
DISCONNECT_CHECK_SECONDS = 1.0
MAX_WAIT_SECONDS = 3600
MAX_SEQUENCE = MAX_INT64
T = TypeVar("T")


class RunRequest(BaseModel):
    """What to run with. Values may be strings, numbers or booleans; the scenario reads them as
    strings (numbers and booleans in their JSON spelling)."""

    model_config = ConfigDict(extra="forbid")
    params: dict[str, str | bool | int | float] = Field(default_factory=dict, description="the run's params")
    dry_run: bool = Field(
        False,
        description="check every write against the targets' live schema and write nothing; the run's "
        "dry_run_report says what it would have written and the problems found",
    )


class ReplayRequest(BaseModel):
    """How to replay a run: the script's connection ids mapped to the ones to write to instead."""

    model_config = ConfigDict(extra="forbid")
    connections: dict[str, str] = Field(
        default_factory=dict, description="old connection id -> new connection id (same kind)"
    )


class AbortRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field("", description="kept with the run; at most 1000 characters are kept")


WAIT_QUERY = Query(description="answer when the run has ended (or timeout_seconds passed)")
TIMEOUT_QUERY = Query(gt=0, le=MAX_WAIT_SECONDS, description="how long wait=true waits, in seconds")
IDEMPOTENCY_KEY_HEADER = Header(
    description="the same key with the same body answers the same fire and run (a retried CI step "
    "starts nothing twice); with another body: 409",
)
FIRE_AND_RUN = {
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


def run_routes(api: APIRouter, runs: RunUseCases, closing: asyncio.Event) -> None:
    async def start(
        request: Request,
        project: str,
        scenario_id: str,
        body: RunRequest,
        idempotency_key: str,
        wait: bool,
        timeout_seconds: float,
    ) -> JSONResponse:
        fire = await runs.run_scenario(
            scenario_id,
            _param_strings(body.params),
            idempotency_key,
            project_key=project,
            dry_run=body.dry_run,
        )
        return await answer(request, fire, wait, timeout_seconds)

    async def answer(
        request: Request, fire: run_pb2.TriggerFire, wait: bool, timeout_seconds: float
    ) -> JSONResponse:
        """202 with the fire (and its run); with ``wait``, 200 once the run has ended."""
        run = await runs.get_run(fire.run_id) if fire.run_id else None
        if wait:
            waited = await _unless_gone(request, _wait(runs, fire, timeout_seconds))
            if waited is None:  # the client went away: nobody reads the answer
                return JSONResponse({}, status_code=499)
            fire, run = waited
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
        responses={200: FIRE_AND_RUN, 202: FIRE_AND_RUN},
        response_model=None,
    )
    async def run_in_project(
        request: Request,
        project: str,
        scenario_id: str,
        body: RunRequest | None = None,
        idempotency_key: Annotated[str, IDEMPOTENCY_KEY_HEADER] = "",
        wait: Annotated[bool, WAIT_QUERY] = False,
        timeout_seconds: Annotated[float, TIMEOUT_QUERY] = 600.0,
    ) -> JSONResponse:
        """Fire the scenario: 202 with the fire (and its run, once it has one); with `wait=true`,
        200 once the run has ended. A fire cancelled by the overlap policy answers 200 with its
        reason."""
        return await start(
            request, project, scenario_id, body or RunRequest(), idempotency_key, wait, timeout_seconds
        )

    @api.post(
        "/scenarios/{scenario_id}/run",
        tags=["runs"],
        summary="Run a scenario of the default project",
        responses={200: FIRE_AND_RUN, 202: FIRE_AND_RUN},
        response_model=None,
    )
    async def run_default(
        request: Request,
        scenario_id: str,
        body: RunRequest | None = None,
        idempotency_key: Annotated[str, IDEMPOTENCY_KEY_HEADER] = "",
        wait: Annotated[bool, WAIT_QUERY] = False,
        timeout_seconds: Annotated[float, TIMEOUT_QUERY] = 600.0,
    ) -> JSONResponse:
        """The same as `/v1/projects/default/scenarios/{scenario_id}/run`."""
        return await run_in_project(
            request, DEFAULT_PROJECT, scenario_id, body, idempotency_key, wait, timeout_seconds
        )

    @api.post(
        "/runs/{run_id}/replay",
        tags=["runs"],
        summary="Replay a finished run: the same inputs, optionally into other connections",
        responses={200: FIRE_AND_RUN, 202: FIRE_AND_RUN},
        response_model=None,
    )
    async def replay_run(
        request: Request,
        run_id: str,
        body: ReplayRequest | None = None,
        idempotency_key: Annotated[str, IDEMPOTENCY_KEY_HEADER] = "",
        wait: Annotated[bool, WAIT_QUERY] = False,
        timeout_seconds: Annotated[float, TIMEOUT_QUERY] = 600.0,
    ) -> JSONResponse:
        """Needs RUNNER on the run's project. A new run with the run's recorded script, params, run
        key, template versions and image; `connections` maps the script's connection ids to others
        (same kind). Unmapped targets already hold the run's batches: nothing is written to them
        again. 202 with the fire and its run; with `wait=true`, 200 once the run has ended."""
        fire = await runs.replay_run(run_id, (body or ReplayRequest()).connections, idempotency_key)
        return await answer(request, fire, wait, timeout_seconds)

    @api.get(
        "/runs/{run_id}", tags=["runs"], summary="Get a run", responses={200: message_response(run_pb2.Run)}
    )
    async def get_run(run_id: str) -> JSONResponse:
        return JSONResponse(to_json(await runs.get_run(run_id)))

    @api.get(
        "/fires/{fire_id}",
        tags=["runs"],
        summary="Get a trigger fire",
        responses={200: message_response(run_pb2.TriggerFire)},
    )
    async def get_fire(fire_id: str) -> JSONResponse:
        return JSONResponse(to_json(await runs.get_fire(fire_id)))

    @api.get(
        "/runs",
        tags=["runs"],
        summary="List runs, newest first",
        responses={200: page_response("runs", run_pb2.Run)},
    )
    async def list_runs(
        scenario_id: Annotated[str, Query(max_length=200)] = "",
        project_key: Annotated[str, Query(max_length=100)] = "",
        state: Annotated[list[str] | None, Query(description="SUCCESS, FAILED, … (repeatable)")] = None,
        created_after: Annotated[
            datetime | None, Query(description="RFC 3339; without an offset: UTC")
        ] = None,
        created_before: Annotated[
            datetime | None, Query(description="RFC 3339; without an offset: UTC")
        ] = None,
        page_size: Annotated[int, Query(ge=0, le=1000)] = 0,
        page_token: Annotated[str, Query(max_length=20)] = "",
    ) -> JSONResponse:
        where = RunFilter(
            scenario_id=scenario_id,
            project_key=project_key,
            states=_states(state or []),
            created_after=_utc(created_after),
            created_before=_utc(created_before),
        )
        page, token = await runs.list_runs(where, page_size, page_token)
        return JSONResponse({"runs": [to_json(r) for r in page], "next_page_token": token})

    abort_answer = {
        "type": "object",
        "properties": {"run": ref(run_pb2.Run.DESCRIPTOR), "already_finished": {"type": "boolean"}},
    }

    @api.post(
        "/runs/{run_id}/abort",
        tags=["runs"],
        summary="Abort a run",
        responses={200: {"content": {"application/json": {"schema": abort_answer}}}},
    )
    async def abort_run(run_id: str, body: AbortRequest | None = None) -> JSONResponse:
        run, already = await runs.abort_run(run_id, (body or AbortRequest()).reason)
        return JSONResponse({"run": to_json(run), "already_finished": already})

    @api.get(
        "/runs/{run_id}/batches",
        tags=["runs"],
        summary="List a run's write batches, in the order they were written",
        responses={200: page_response("batches", run_pb2.WriteBatch)},
    )
    async def list_write_batches(
        run_id: str,
        page_size: Annotated[int, Query(ge=0, le=1000, description="at most 1000; 0: 100")] = 0,
        page_token: Annotated[str, Query(max_length=20)] = "",
    ) -> JSONResponse:
        page, token = await runs.list_write_batches(run_id, page_size, page_token)
        return JSONResponse({"batches": [to_json(b) for b in page], "next_page_token": token})

    @api.post(
        "/runs/{run_id}/purge",
        tags=["runs"],
        summary="Undo what a finished run wrote: rows, upserts, REST resources, files, assets",
        responses={200: message_response(run_pb2.PurgeRunResponse)},
    )
    async def purge_run(
        run_id: str,
        dry_run: Annotated[bool, Query(description="count what would be deleted; delete nothing")] = False,
    ) -> JSONResponse:
        """Needs EDITOR. A run still going, or being purged, is 409. Inserted rows are deleted,
        rows an upsert changed put back (unless changed since: `rows_left`), REST resources
        deleted through the connection's undo, files and assets removed; what cannot be undone is
        listed in `skipped` and `skipped_connections` with why. A failure on one target stops the
        purge and is listed in `failures`; purging again resumes."""
        return JSONResponse(to_json(await runs.purge_run(run_id, dry_run=dry_run)))

    @api.get(
        "/purges",
        tags=["runs"],
        summary="The purges of runs, newest first (periodic and asked for)",
        responses={200: message_response(run_pb2.ListPurgesResponse)},
    )
    async def list_purges(
        run_id: Annotated[str, Query(max_length=40, description="only this run's")] = "",
        limit: Annotated[int, Query(ge=0, le=500, description="at most 500; 0: 50")] = 0,
    ) -> JSONResponse:
        """Each run's purge: its trigger (ttl: the scenario's purge_after_seconds; request), state,
        attempts (more than 1: resumed), and what it did (`result`)."""
        answer = run_pb2.ListPurgesResponse(purges=await runs.list_purges(run_id, limit))
        return JSONResponse(to_json(answer))

    @api.get(
        "/runs/{run_id}/trace",
        tags=["runs"],
        summary="A run's trace: its spans, by start time",
        responses={200: message_response(run_pb2.GetRunTraceResponse)},
    )
    async def get_run_trace(run_id: str) -> JSONResponse:
        return JSONResponse(to_json(await runs.get_run_trace(run_id)))

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
        run_id: str,
        follow: Annotated[bool, Query(description="keep the stream open until the run ends")] = False,
        after_sequence: Annotated[
            int, Query(ge=0, le=MAX_SEQUENCE, description="only lines after this sequence number")
        ] = 0,
        step: Annotated[
            str, Query(max_length=200, description="only this step's lines (number or name)")
        ] = "",
        last_event_id: Annotated[str | None, Header(description="resume after this line (SSE)")] = None,
    ) -> EventSourceResponse:
        after = max(after_sequence, _last_event_id(last_event_id))
        events = await runs.stream_logs(run_id, after_sequence=after, follow=follow, step=step)
        return EventSourceResponse(
            _sse(events, closing), headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
        )


async def _unless_gone(request: Request, work: Awaitable[T]) -> T | None:
    """``work``'s answer, or None (``work`` cancelled) once the client has disconnected."""
    task = asyncio.ensure_future(work)
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=DISCONNECT_CHECK_SECONDS)
            if done:
                return task.result()
            if await request.is_disconnected():
                return None
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


async def _wait(
    runs: RunUseCases, fire: run_pb2.TriggerFire, timeout_seconds: float
) -> tuple[run_pb2.TriggerFire, run_pb2.Run | None]:
    run: run_pb2.Run | None = None
    events = await runs.watch_runs([fire.id], [])
    try:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_seconds):
                async for event in events:
                    if event.HasField("fire"):
                        fire = event.fire
                    elif event.HasField("run"):
                        run = event.run
                    if event.done:
                        break
    finally:
        await _close(events)
    if run is None and fire.run_id:
        run = await runs.get_run(fire.run_id)
    return fire, run


async def _sse(
    events: AsyncIterator[run_pb2.StreamRunLogsResponse], closing: asyncio.Event
) -> AsyncIterator[bytes]:
    """Encode the use case's events; a keep-alive comment after a quiet spell; a ``shutdown`` event
    when the server stops first. Starlette cancels this generator when the client disconnects."""
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
        await _close(events)


async def _close(events: Any) -> None:
    with contextlib.suppress(Exception):
        await events.aclose()


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
    for name in names[:20]:
        try:
            states.append(RunState(name.upper().removeprefix("RUN_STATE_")))
        except ValueError:
            known = ", ".join(s.value for s in RunState)
            raise InvalidArgumentError("state", f"{name[:40]!r} is not a run state ({known})") from None
    return states


def _utc(value: datetime | None) -> datetime | None:
    """In UTC, as the store compares them (a time without an offset is UTC)."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _last_event_id(value: str | None) -> int:
    if value is None or value == "":
        return 0
    if not (value.isascii() and value.isdigit()) or len(value) > 19 or int(value) > MAX_SEQUENCE:
        raise InvalidArgumentError(
            "Last-Event-ID", f"must be the id of a log event (a sequence number, 0..{MAX_SEQUENCE})"
        )
    return int(value)
