"""``AsyncClient``: the sync ``Client``, each call awaited from a thread of its own executor."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any, ClassVar, Concatenate, ParamSpec, TypeVar

import grpc

from seedbed.client._client import Client
from seedbed.client.aio._facade import Bridge, Facade, attribute, streamed
from seedbed.client.aio._objects import AsyncScenarioRun, AsyncTriggerFire, threaded
from seedbed.client.aio._threads import Runner, ScopedChannel

P = ParamSpec("P")
S = TypeVar("S")


class _ScopedClient(Client):
    """The sync client under an AsyncClient: its calls can be cancelled per awaited call."""

    def _open_channel(self, options: list[tuple[str, int]]) -> grpc.Channel:
        return ScopedChannel(super()._open_channel(options))


def _takes_arguments_of(
    _: Callable[P, object],
) -> Callable[[Callable[Concatenate[S, ...], None]], Callable[Concatenate[S, P], None]]:
    """Type ``__init__`` with the parameters of another callable (the sync Client's), kept in one
    place."""

    def declare(init: Callable[Concatenate[S, ...], None]) -> Callable[Concatenate[S, P], None]:
        return init

    return declare


class AsyncClient(Facade[Client]):
    """A Seedbed client for asyncio: the sync ``Client``'s calls and objects, awaited.

    Takes the sync ``Client``'s arguments (address, ``api_key``, TLS…). Close it with ``async
    with`` or ``await client.aclose()``, which cancels what is still running. ``max_threads``
    bounds the sync calls running at once (see ``seedbed.client.aio``)."""

    max_threads: ClassVar[int] = 64

    @_takes_arguments_of(Client)
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(_ScopedClient(*args, **kwargs), Bridge(Runner(self.max_threads)))

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Cancel the calls still running, wait for their threads, close the channel. Calls made
        afterwards raise RuntimeError."""
        await self._bridge.runner.aclose()
        self._target.close()

    close = aclose

    @property
    def busy(self) -> int:
        """How many calls and streams of this client are running or waiting for a thread."""
        return self._bridge.runner.busy

    address: str
    tls = attribute(Client.tls)

    async def wait_for_runs(
        self,
        fires_or_runs: Sequence[AsyncTriggerFire | AsyncScenarioRun],
        *,
        no_fail: bool = True,
        on_update: Callable[[int, AsyncTriggerFire | AsyncScenarioRun], object] | None = None,
    ) -> list[AsyncScenarioRun | None]:
        """Wait for several fires and runs at once, on one stream and one thread (see
        ``Client.wait_for_runs``). ``on_update`` is called on the event loop (a coroutine
        function's result is awaited there), and the wait goes on once it returned."""
        # Written out: the sync parameters name the sync objects.
        runs: list[AsyncScenarioRun | None] = await self._call(
            "wait_for_runs", fires_or_runs, no_fail=no_fail, on_update=on_update
        )
        return runs

    # The scenario API.
    get_project = threaded(Client.get_project)
    get_default_project = threaded(Client.get_default_project)
    list_projects = threaded(Client.list_projects)

    # The contract's calls (see Client).
    wait_until_ready = threaded(Client.wait_until_ready)
    whoami = threaded(Client.whoami)
    put_scenario = threaded(Client.put_scenario)
    get_scenario = threaded(Client.get_scenario)
    list_scenarios = threaded(Client.list_scenarios)
    delete_scenario = threaded(Client.delete_scenario)
    update_scenario_settings = threaded(Client.update_scenario_settings)
    get_scenario_status = threaded(Client.get_scenario_status)
    run = threaded(Client.run)
    get_fire = threaded(Client.get_fire)
    get_run = threaded(Client.get_run)
    list_runs = threaded(Client.list_runs)
    write_batches = threaded(Client.write_batches)
    purge_run = threaded(Client.purge_run)
    list_purges = threaded(Client.list_purges)
    get_run_trace = threaded(Client.get_run_trace)
    run_assets = threaded(Client.run_assets)
    abort = threaded(Client.abort)
    stream_logs = streamed(Client.stream_logs)
    wait = threaded(Client.wait)
    put_template = threaded(Client.put_template)
    get_template = threaded(Client.get_template)
    list_templates = threaded(Client.list_templates)
    delete_template = threaded(Client.delete_template)
    preview_template = threaded(Client.preview_template)
    create_connection = threaded(Client.create_connection)
    get_connection = threaded(Client.get_connection)
    list_connections = threaded(Client.list_connections)
    delete_connection = threaded(Client.delete_connection)
    test_connection = threaded(Client.test_connection)
    upload_file = threaded(Client.upload_file)
    download_file = threaded(Client.download_file)
    list_files = threaded(Client.list_files)
    delete_file = threaded(Client.delete_file)
    create_project = threaded(Client.create_project)
    describe_project = threaded(Client.describe_project)
    create_user = threaded(Client.create_user)
    get_user = threaded(Client.get_user)
    list_users = threaded(Client.list_users)
    set_membership = threaded(Client.set_membership)
    create_api_key = threaded(Client.create_api_key)
    list_api_keys = threaded(Client.list_api_keys)
    revoke_api_key = threaded(Client.revoke_api_key)
