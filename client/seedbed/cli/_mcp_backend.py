"""The MCP tools' backend for ``seedbed mcp``: a coordinator over gRPC, with the Python client.

A refused call (ClientError) becomes a tool error with the text the coordinator's HTTP endpoint
gives (``not_found: run 'run_x' not found``), so an agent cannot tell the transports apart.

The client is synchronous: each call runs in a worker thread. A wait follows the fire by asking for
it, then its run, once a second. Rejected: the client's WatchRuns stream, which blocks its thread
until the next event and so could not end at the wait's deadline, nor when the agent cancels.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncIterator, Callable, Generator, Mapping
from typing import Any, TypeVar, cast

import anyio
import anyio.to_thread

from seedbed.api.v1 import asset_pb2, run_pb2
from seedbed.client import Client, ClientError, LogEvent, RunEnded
from seedbed.coordinator.faces.mcp import DEFAULT_ABORT_REASON, LogPage, ScenarioPage, is_finished, refusal

T = TypeVar("T")
POLL_SECONDS = 1.0


class ClientBackend:
    """Implements ``McpBackend`` with the client's calls, each in a worker thread."""

    def __init__(self, client: Client) -> None:
        self._client = client

    @contextlib.asynccontextmanager
    async def as_caller(self, headers: Mapping[str, str] | None) -> AsyncIterator[None]:
        # The client sends its own key with every call; the coordinator decides.
        try:
            yield
        except ClientError as exc:
            raise refusal(exc.code.name.lower(), exc.details, exc.retry_after_seconds) from exc
        except ValueError as exc:  # a value the client checks itself
            raise refusal("invalid_argument", str(exc)) from exc

    async def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await anyio.to_thread.run_sync(functools.partial(fn, *args, **kwargs))

    async def run_scenario(
        self, scenario_id: str, params: Mapping[str, str], idempotency_key: str, *, dry_run: bool = False
    ) -> run_pb2.TriggerFire:
        return await self._call(
            self._client.run, scenario_id, params, idempotency_key=idempotency_key, dry_run=dry_run
        )

    async def watch_fire(self, fire_id: str) -> AsyncIterator[run_pb2.WatchRunsResponse]:
        fire = await self._call(self._client.get_fire, fire_id)  # errors surface here
        return self._follow(fire)

    async def _follow(self, fire: run_pb2.TriggerFire) -> AsyncIterator[run_pb2.WatchRunsResponse]:
        yield run_pb2.WatchRunsResponse(fire=fire)
        while not fire.run_id and fire.state != run_pb2.TRIGGER_FIRE_STATE_CANCELLED:
            await anyio.sleep(POLL_SECONDS)
            fire = await self._call(self._client.get_fire, fire.id)
            yield run_pb2.WatchRunsResponse(fire=fire)
        if not fire.run_id:
            yield run_pb2.WatchRunsResponse(done=True)
            return
        seen = -1
        while True:
            run = await self._call(self._client.get_run, fire.run_id)
            ended = is_finished(run)
            if run.state != seen or ended:
                yield run_pb2.WatchRunsResponse(run=run, done=ended)
                seen = run.state
            if ended:
                return
            await anyio.sleep(POLL_SECONDS)

    async def get_run(self, run_id: str) -> run_pb2.Run:
        return await self._call(self._client.get_run, run_id)

    async def read_logs(self, run_id: str, after_sequence: int, limit: int) -> LogPage:
        def read() -> LogPage:
            lines: list[run_pb2.LogLine] = []
            # A generator: closing it ends the call when the page is full.
            events = cast(
                "Generator[LogEvent | RunEnded, None, None]",
                self._client.stream_logs(run_id, after=after_sequence, follow=False),
            )
            with contextlib.closing(events):
                for event in events:
                    if isinstance(event, RunEnded):
                        return LogPage(lines, event.end)
                    if len(lines) == limit:
                        break
                    lines.append(event.line)
            return LogPage(lines, None)

        return await anyio.to_thread.run_sync(read)

    async def list_scenarios(self, project_key: str, limit: int) -> ScenarioPage:
        # The client reads every page (of at most 1000) into this process, the caller's own; the
        # agent's answer is bounded here, and the coordinator serves each page bounded too.
        found = await self._call(self._client.list_scenarios, project_key)
        return ScenarioPage(found[:limit], more=len(found) > limit)

    async def abort_run(self, run_id: str, reason: str) -> tuple[run_pb2.Run, bool]:
        response = await self._call(self._client.abort, run_id, reason or DEFAULT_ABORT_REASON)
        return response.run, response.already_finished

    async def list_assets(self, run_id: str) -> list[asset_pb2.RunAsset]:
        return await self._call(self._client.run_assets, run_id)

    async def read_asset(self, run_id: str, name: str, max_bytes: int) -> bytes:
        def read() -> bytes:
            _, chunks = self._client.download_run_asset(run_id, name)
            data = bytearray()
            # Closing the chunks cancels the download once enough has come.
            with contextlib.closing(chunks):
                for chunk in chunks:
                    data += chunk[: max_bytes - len(data)]
                    if len(data) >= max_bytes:
                        break
            return bytes(data)

        return await anyio.to_thread.run_sync(read)
