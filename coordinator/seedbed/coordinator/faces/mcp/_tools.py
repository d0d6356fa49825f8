"""The six tools, defined once over a backend: what each tool takes, checks, does and answers.

A backend (:class:`McpBackend`) does the calls and answers the contract's messages; the tools
turn arguments into those calls and the messages into ``_results`` models. Backends report a
refusal with :func:`refusal` (an MCP tool error whose text starts with the face-neutral error code,
``not_found: run 'run_x' not found``), so an agent sees the domain's message over either transport.
Arguments that do not fit the input schema are tool errors too (the SDK's), never a crash.

Every bound is in the input schema the agent reads (``maximum``, ``additionalProperties: false``),
so a call outside it is refused before it reaches a backend, naming the argument and the limit:

- an argument the tool does not take (``param`` for ``params``) is refused, naming it and the
  arguments the tool takes. The SDK builds each tool's argument model from its signature and
  ignores unknown keys, which would run a scenario without the params the agent meant to pass.
  :func:`_tool` builds the SDK's tool (``Tool.from_function``), then gives it the SDK's argument
  model with ``_KnownArgumentsOnly`` mixed in, and that model's schema; the server takes the tools
  in its constructor. Rejected: checking ``ctx``'s raw request in each tool (five copies of one
  rule, and the advertised schema would still allow anything); a ``**kwargs`` catch-all (the SDK
  makes it one argument named ``kwargs``); changing ``ArgModelBase``'s config (process-wide: every
  MCP server's tools).
- numbers have both ends: ``after_sequence`` 0..2**63-1 (a log sequence is an int64; a larger one
  would fail inside the backend as a crash), ``limit`` 1..1000, ``timeout_seconds`` up to 3600 (as
  REST's ``wait``).
- ``list_scenarios`` answers at most ``MAX_LISTED_SCENARIOS``, saying when more exist and how to
  narrow (``project_key``): a backend reads one page, not every scenario a caller may see.
"""

from __future__ import annotations

import codecs
import json
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Annotated, Any, Protocol

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.tools import Tool
from mcp.server.mcpserver.utilities.func_metadata import ArgModelBase
from mcp_types import ToolAnnotations
from pydantic import ConfigDict, Field, create_model, model_validator
from pydantic_core import PydanticCustomError

from seedbed.api.v1 import asset_pb2, run_pb2, scenario_pb2
from seedbed.coordinator.faces.mcp._results import (
    AbortResult,
    AssetContent,
    AssetInfo,
    AssetsResult,
    ExecuteResult,
    LogLineInfo,
    LogsResult,
    RunInfo,
    ScenarioInfo,
    ScenarioList,
    is_finished,
    run_state,
)
from seedbed.coordinator.model import (
    MAX_IDEMPOTENCY_KEY_CHARS,
    MAX_INT64,
    MAX_PARAM_VALUE_BYTES,
    MAX_PARAMS,
    MAX_PARAMS_BYTES,
)

SERVER_NAME = "seedbed"
MAX_WAIT_SECONDS = 3600
MAX_LOG_PAGE = 1000
# Log sequence numbers are int64 in the contract and the store.
MAX_SEQUENCE = MAX_INT64
# One page of the use case: an agent's answer stays readable, and a caller who sees thousands of
# scenarios does not make the coordinator read them all (with their scripts) for one call.
MAX_LISTED_SCENARIOS = 200
DEFAULT_ABORT_REASON = "aborted by an MCP client"
# What get_scenario_run_assets reads of one asset: an agent's answer stays small.
MAX_ASSET_READ_BYTES = 2**20
DEFAULT_ASSET_READ_BYTES = 64 * 1024
# Assets read as text (the types the SDK declares, and a file connection's JSON lines).
_TEXT_TYPES = ("text/", "application/json", "application/x-ndjson")
# While a wait lasts, a client that asked for progress hears from it at least this often (its HTTP
# read timeout must not run out on a long run).
HEARTBEAT_SECONDS = 15.0

INSTRUCTIONS = (
    "Seedbed runs scenarios: Python scripts that generate test data and seed it into databases, "
    "APIs and files. list_scenarios shows what you may run; execute_scenario starts one (wait=true "
    "answers when it has ended); get_scenario_run_logs reads its output page by page; "
    "abort_scenario_run stops it; get_scenario_run_assets lists the files a run kept and reads a "
    "text one. Every call acts as the API key's user: a role too low for a call "
    "is a permission_denied error naming the role needed."
)


@dataclass(frozen=True)
class LogPage:
    """What a backend's read of a run's log found."""

    lines: list[run_pb2.LogLine]
    # The stream's terminal event when every line written so far was read (None: more follow).
    end: run_pb2.StreamEnd | None


@dataclass(frozen=True)
class ScenarioPage:
    """What a backend's listing found: the first scenarios by id, and whether more exist."""

    scenarios: list[scenario_pb2.Scenario]
    more: bool


class McpBackend(Protocol):
    """Where the tools' calls go: the use cases in the coordinator, or a coordinator over gRPC.

    Every method answers the contract's messages and raises :func:`refusal` errors."""

    def as_caller(self, headers: Mapping[str, str] | None) -> AbstractAsyncContextManager[None]:
        """The identity of one tool call, entered around it: from the HTTP request's headers
        (``Authorization: Bearer``), or None over stdio (the backend's own key)."""
        ...

    async def run_scenario(
        self, scenario_id: str, params: Mapping[str, str], idempotency_key: str, *, dry_run: bool = False
    ) -> run_pb2.TriggerFire: ...

    async def watch_fire(self, fire_id: str) -> AsyncIterator[run_pb2.WatchRunsResponse]:
        """The fire's and its run's current state, then each change, until the fire is cancelled
        or its run ended (the last message has ``done``)."""
        ...

    async def get_run(self, run_id: str) -> run_pb2.Run: ...

    async def read_logs(self, run_id: str, after_sequence: int, limit: int) -> LogPage:
        """At most ``limit`` lines after ``after_sequence``, without following."""
        ...

    async def list_scenarios(self, project_key: str, limit: int) -> ScenarioPage:
        """The first ``limit`` scenarios (by id) the caller may see, in ``project_key`` if given."""
        ...

    async def abort_run(self, run_id: str, reason: str) -> tuple[run_pb2.Run, bool]:
        """(the run, whether it had already ended)."""
        ...

    async def list_assets(self, run_id: str) -> list[asset_pb2.RunAsset]:
        """The run's assets, by name."""
        ...

    async def read_asset(self, run_id: str, name: str, max_bytes: int) -> bytes:
        """The first ``max_bytes`` bytes of one asset (the rest is not read)."""
        ...


def refusal(code: str, message: str, retry_after_seconds: float | None = None) -> ToolError:
    """The tool error for a refused call: ``<code>: <message>`` (code: ``ErrorCode``'s value)."""
    text = f"{code}: {message}"
    if retry_after_seconds:
        text += f" (retry after {max(1, math.ceil(retry_after_seconds))} s)"
    return ToolError(text)


def param_text(value: str | bool | int | float) -> str:
    """A param as the scenario reads it: strings as they are, numbers and booleans in JSON."""
    return value if isinstance(value, str) else json.dumps(value)


def _headers(ctx: Context) -> Mapping[str, str] | None:
    """The headers of the HTTP request that carried the call (None over stdio): the SDK hands each
    message's Starlette request to the tool, so the identity is the request's, not a contextvar's
    that a middleware set in another task."""
    request = ctx.request_context.request
    headers = getattr(request, "headers", None)
    return headers if isinstance(headers, Mapping) else None


ScenarioIdArg = Annotated[
    str,
    Field(description="the scenario's id, as list_scenarios shows it (with or without 'scn_')"),
]
ParamsArg = Annotated[
    dict[str, str | bool | int | float] | None,
    Field(
        description="the run's params (the script reads them as strings; numbers and booleans are "
        f"passed in their JSON spelling). At most {MAX_PARAMS} entries, {MAX_PARAM_VALUE_BYTES // 1024} "
        f"KiB per value, {MAX_PARAMS_BYTES // 1024} KiB in all"
    ),
]
WaitArg = Annotated[bool, Field(description="answer only once the run has ended (or timeout_seconds passed)")]
TimeoutArg = Annotated[
    float,
    Field(
        gt=0,
        le=MAX_WAIT_SECONDS,
        description=f"how long wait=true waits, in seconds (more than 0, at most {MAX_WAIT_SECONDS})",
    ),
]
KeyArg = Annotated[
    str,
    Field(
        description=f"optional, at most {MAX_IDEMPOTENCY_KEY_CHARS} characters: the same key with the "
        "same request answers the same fire and run instead of starting another (a retried call "
        "starts nothing twice; with another request it is an already_exists error)",
    ),
]
RunIdArg = Annotated[str, Field(description="the run's id ('run_…'), as execute_scenario answered it")]
AfterArg = Annotated[
    int,
    Field(
        ge=0,
        le=MAX_SEQUENCE,
        description="answer lines after this sequence number (0: from the start; at most 2**63-1)",
    ),
]
LimitArg = Annotated[
    int, Field(ge=1, le=MAX_LOG_PAGE, description=f"at most this many lines (1..{MAX_LOG_PAGE})")
]
ProjectArg = Annotated[
    str,
    Field(
        description="only the scenarios of this project (empty: every project you can see, the "
        f"first {MAX_LISTED_SCENARIOS} by id)"
    ),
]
ReasonArg = Annotated[str, Field(description="kept with the run (its first 1000 characters)")]
AssetNameArg = Annotated[
    str,
    Field(
        max_length=512,
        description="also read this asset (a name as listed): its start as text, when it is text",
    ),
]
MaxBytesArg = Annotated[
    int,
    Field(
        ge=1,
        le=MAX_ASSET_READ_BYTES,
        description=f"read at most this many bytes of the asset (1..{MAX_ASSET_READ_BYTES})",
    ),
]
DryRunArg = Annotated[
    bool,
    Field(
        description="write nothing: check every write against the targets' live schema; the run's "
        "dry_run_report (get_scenario_run) lists rows per target and the problems found"
    ),
]


def build_mcp_server(backend: McpBackend) -> MCPServer:
    """The MCP server with the six tools over ``backend``. Configure logging before calling it:
    the SDK's constructor calls ``logging.basicConfig`` (a no-op once logging has handlers)."""

    async def execute_scenario(
        scenario_id: ScenarioIdArg,
        ctx: Context,
        params: ParamsArg = None,
        wait: WaitArg = False,
        timeout_seconds: TimeoutArg = 300.0,
        idempotency_key: KeyArg = "",
        dry_run: DryRunArg = False,
    ) -> ExecuteResult:
        """Run a scenario with params. Answers at once with the fire and its run id (state QUEUED),
        or with wait=true once the run has ended: its outcome (SUCCESS, WARNING, FAILED or ABORTED)
        and, when it failed, its first error. A fire can be refused (fire_state CANCELLED, with a
        cancel_reason: the scenario is inactive, or another run of it is active). Read the output
        with get_scenario_run_logs. Needs the RUNNER role in the scenario's project."""
        async with backend.as_caller(_headers(ctx)):
            values = {k: param_text(v) for k, v in (params or {}).items()}
            fire = await backend.run_scenario(scenario_id, values, idempotency_key, dry_run=dry_run)
            if wait:
                fire, run, timed_out = await _wait(backend, fire, timeout_seconds, ctx)
                return ExecuteResult.of(fire, run, waited=True, timed_out=timed_out)
            run = await backend.get_run(fire.run_id) if fire.run_id else None
            return ExecuteResult.of(fire, run, waited=False, timed_out=False)

    async def get_scenario_run(run_id: RunIdArg, ctx: Context) -> RunInfo:
        """A run of a scenario: its state (QUEUED, RUNNING, SUCCESS, WARNING, FAILED, ABORTED),
        params, times, attempts, steps and, when it failed, its first error with the script's
        traceback. Needs the VIEWER role."""
        async with backend.as_caller(_headers(ctx)):
            return RunInfo.of(await backend.get_run(run_id))

    async def get_scenario_run_logs(
        run_id: RunIdArg, ctx: Context, after_sequence: AfterArg = 0, limit: LimitArg = 200
    ) -> LogsResult:
        """A page of a run's log: the script's stdout and stderr and Seedbed's own lines, each
        with its sequence number. Call again with after_sequence=next_after_sequence for what
        follows; once run_finished is true, nothing more will come (while caught_up is true but the
        run still runs, new lines appear later). Needs the VIEWER role."""
        async with backend.as_caller(_headers(ctx)):
            page = await backend.read_logs(run_id, after_sequence, limit)
        last = page.lines[-1].sequence if page.lines else after_sequence
        if page.end is not None:
            last = max(last, page.end.last_sequence)
        return LogsResult(
            run_id=run_id,
            lines=[LogLineInfo.of(line) for line in page.lines],
            next_after_sequence=last,
            caught_up=page.end is not None,
            run_finished=page.end is not None and page.end.reason == run_pb2.STREAM_END_REASON_RUN_FINISHED,
            run_state=run_state(page.end.run) if page.end is not None else None,
        )

    async def list_scenarios(ctx: Context, project_key: ProjectArg = "") -> ScenarioList:
        """The scenarios you may see (in every project you have a role in), with their ids to pass
        to execute_scenario: the first 200 by id; truncated=true says more exist (pass project_key
        to list one project's)."""
        async with backend.as_caller(_headers(ctx)):
            found = await backend.list_scenarios(project_key, MAX_LISTED_SCENARIOS)
        return ScenarioList.of([ScenarioInfo.of(s) for s in found.scenarios], found.more, project_key)

    async def abort_scenario_run(run_id: RunIdArg, ctx: Context, reason: ReasonArg = "") -> AbortResult:
        """Stop a run: its sandbox gets a signal, then is killed after a grace period; the run ends
        ABORTED (not FAILED). A run that had already ended is left as it is (already_finished).
        Needs the RUNNER role."""
        async with backend.as_caller(_headers(ctx)):
            run, already = await backend.abort_run(run_id, reason)
        return AbortResult(already_finished=already, run=RunInfo.of(run))

    async def get_scenario_run_assets(
        run_id: RunIdArg,
        ctx: Context,
        name: AssetNameArg = "",
        max_bytes: MaxBytesArg = DEFAULT_ASSET_READ_BYTES,
    ) -> AssetsResult:
        """The files a run kept (its assets: what the script wrote with dm.assets and its file
        connections' files), those of its latest attempt: name, size, SHA-256, content type. With
        name, also that asset's first max_bytes bytes as text (text, CSV, JSON); a binary asset is
        not read. Needs the VIEWER role."""
        async with backend.as_caller(_headers(ctx)):
            assets = [AssetInfo.of(a) for a in await backend.list_assets(run_id)]
            content = None
            if name:
                asset = next((a for a in assets if a.name == name), None)
                if asset is None:
                    raise refusal(
                        "not_found", f"run asset {run_id}/{name!r} not found (see the assets listed)"
                    )
                content = await _read_text(backend, run_id, asset, max_bytes)
        return AssetsResult(run_id=run_id, assets=assets, content=content)

    tools = [
        _tool(execute_scenario, ToolAnnotations(title="Run a scenario", open_world_hint=True)),
        _tool(get_scenario_run, ToolAnnotations(title="Show a run", read_only_hint=True)),
        _tool(get_scenario_run_logs, ToolAnnotations(title="Read a run's log", read_only_hint=True)),
        _tool(list_scenarios, ToolAnnotations(title="List scenarios", read_only_hint=True)),
        _tool(get_scenario_run_assets, ToolAnnotations(title="A run's files", read_only_hint=True)),
        _tool(
            abort_scenario_run,
            ToolAnnotations(
                title="Abort a run", destructive_hint=True, idempotent_hint=True, open_world_hint=False
            ),
        ),
    ]
    # The SDK configures the root logger when nothing has yet (an embedding process, a test):
    # WARNING keeps its per-request INFO lines out of the host's output.
    return MCPServer(SERVER_NAME, instructions=INSTRUCTIONS, log_level="WARNING", tools=tools)


async def _read_text(backend: McpBackend, run_id: str, asset: AssetInfo, max_bytes: int) -> AssetContent:
    """The start of ``asset`` decoded with the charset it declares (a character cut at the end is
    left out), or why it is not read."""
    whole = (
        f"for the whole asset: seedbed run download {run_id} {asset.name} "
        f"(or REST: GET /v1/runs/{run_id}/assets/{asset.name})"
    )
    if not asset.content_type.startswith(_TEXT_TYPES):
        why = f"not text ({asset.content_type}): {whole}"
        return AssetContent(name=asset.name, text=None, truncated=asset.size_bytes > 0, note=why)
    charset = asset.content_type.partition("charset=")[2].strip() or "utf-8"
    try:
        decoder = codecs.getincrementaldecoder(charset)(errors="replace")
    except LookupError:
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    data = await backend.read_asset(run_id, asset.name, max_bytes)
    truncated = asset.size_bytes > len(data)
    text = decoder.decode(data, final=not truncated)
    note = f"the first {len(data)} of {asset.size_bytes} bytes; {whole}" if truncated else None
    return AssetContent(name=asset.name, text=text, truncated=truncated, note=note)


def _tool(fn: Callable[..., Awaitable[Any]], annotations: ToolAnnotations) -> Tool:
    """``fn`` as a tool whose arguments outside its signature are refused (see the module's
    docstring): the SDK's tool, with an argument model derived from the SDK's that forbids them
    and the input schema that model gives (``additionalProperties: false``)."""
    tool = Tool.from_function(fn, annotations=annotations)
    known = _known_arguments_only(tool.fn_metadata.arg_model)
    return tool.model_copy(
        update={
            "fn_metadata": tool.fn_metadata.model_copy(update={"arg_model": known}),
            "parameters": known.model_json_schema(by_alias=True),
        }
    )


class _KnownArgumentsOnly(ArgModelBase):
    """Mixed into a tool's argument model (the SDK's): arguments it has no field for are refused,
    named with the arguments the tool takes; ``extra="forbid"`` also puts ``additionalProperties:
    false`` in the input schema."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _refuse_unknown(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        accepted = [field.alias or name for name, field in cls.model_fields.items()]
        unknown = [str(key) for key in data if key not in accepted]
        if unknown:
            names = ", ".join(repr(name) for name in unknown)
            takes = ", ".join(accepted) if accepted else "none"
            # Without a context the text is used as it is (an argument's name may hold braces).
            raise PydanticCustomError(
                "unknown_argument",
                f"unknown argument{'s' if len(unknown) > 1 else ''} {names} (the tool's arguments: {takes})",
            )
        return data


def _known_arguments_only(loose: type[ArgModelBase]) -> type[ArgModelBase]:
    """``loose`` refusing arguments it has no field for (its fields, names and schema unchanged)."""
    return create_model(loose.__name__, __base__=(loose, _KnownArgumentsOnly), __module__=loose.__module__)


async def _wait(
    backend: McpBackend, fire: run_pb2.TriggerFire, timeout: float, ctx: Context
) -> tuple[run_pb2.TriggerFire, run_pb2.Run | None, bool]:
    """Follow the fire until it is cancelled or its run ended, or ``timeout`` seconds passed:
    (the fire, its run, whether the time ran out). A client that asked for progress hears of each
    change of the run, and every HEARTBEAT_SECONDS in between."""
    seen = _Seen(fire)
    started = time.monotonic()

    async def progress() -> None:
        await ctx.report_progress(min(time.monotonic() - started, timeout), timeout, seen.note())

    async def heartbeat() -> None:
        while True:
            await anyio.sleep(HEARTBEAT_SECONDS)
            await progress()

    failure: Exception | None = None
    with anyio.move_on_after(timeout) as deadline:
        async with anyio.create_task_group() as beats:
            beats.start_soon(heartbeat)
            try:
                await _follow(backend, seen, progress)
            except Exception as exc:
                # Raised outside the task group, which would wrap it in an ExceptionGroup (that the
                # SDK would report as a crash instead of the refusal it is).
                failure = exc
            beats.cancel_scope.cancel()
    if failure is not None:
        raise failure
    fire, run = seen.fire, seen.run
    if fire.run_id and (run is None or not is_finished(run)):
        run = await backend.get_run(fire.run_id)  # the latest, whatever the watch saw last
    return fire, run, deadline.cancelled_caught


@dataclass
class _Seen:
    """The latest fire and run a wait saw."""

    fire: run_pb2.TriggerFire
    run: run_pb2.Run | None = None

    def note(self) -> str:
        return f"run {self.run.id} {run_state(self.run)}" if self.run else f"fire {self.fire.id}"


async def _follow(backend: McpBackend, seen: _Seen, changed: Callable[[], Awaitable[None]]) -> None:
    events = await backend.watch_fire(seen.fire.id)
    try:
        async for event in events:
            if event.HasField("fire"):
                seen.fire = event.fire
            elif event.HasField("run"):
                seen.run = event.run
                await changed()
            if event.done:
                return
    finally:
        closing = getattr(events, "aclose", None)
        if closing is not None:
            await closing()
