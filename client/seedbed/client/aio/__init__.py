"""The Python client for asyncio: the same calls and objects as ``seedbed.client``, awaited.

For services and notebooks (it works in a loop that is already running, as Jupyter's)::

    from seedbed.client import LogEvent
    from seedbed.client.aio import AsyncClient

    async with AsyncClient("127.0.0.1:50051", api_key="sbk_…") as client:
        project = await client.get_default_project()
        scenario = await project.get_scenario("nightly-customers")
        run = await scenario.run_and_wait(params={"rows": "1000"})   # raises unless SUCCESS
        print(run.outcome, run.duration)                              # attributes: no await
        async for event in client.stream_logs(run.id):                # an async iterator
            print(event.text if isinstance(event, LogEvent) else "end")

Every method of the sync objects is a coroutine here, their properties are read as they are, and
what they return comes back as the async objects (``AsyncProject``, ``AsyncScenario``,
``AsyncTriggerFire``, ``AsyncScenarioRun``, ``AsyncRunDetails``, ``AsyncScenarioSettings``);
values (messages, ``LogEvent``, ``RunTrace``, ``ScenarioStatus``…) are the sync client's own.
Settings are changed without await (``settings.active = False``, ``settings.add_daily_trigger()``)
and saved with ``await settings.save()``; ``run.to_dict()`` needs no await either.

Errors are the sync client's (see ``seedbed.client``): ``ClientError`` for refused calls,
``RunFailedError``/``FireCancelledError`` for outcomes. Their ``run``/``fire`` is the sync object:
read it, or fetch an async one (``await scenario.get_run(error.run.id)``).

Cancelling a task that awaits a call (``task.cancel()``, ``asyncio.timeout``) cancels the call's
gRPC requests, and the task ends once the thread that ran it has returned: a cancelled wait leaves
no stream open and no thread behind. The run itself goes on; ``await run.abort()`` stops it.

Design. The sync client is the one implementation; this package adds no second copy of its
objects. ``AsyncClient`` wraps a ``Client`` and runs each call in a thread of its own bounded
executor (``AsyncClient.max_threads``, 64; a wait holds a thread for its length, so wait for many
runs with one ``wait_for_runs``). Each object is a facade generic over the members of the sync one
(``_facade``), declared a line per member from the sync member itself (``_objects``), so the
signatures cannot drift; a member added to the sync objects and not declared yet is served all the
same, by its kind, and typed ``Any``. Cancellation rides a channel whose calls join the awaiting
call's scope (``_threads``): the sync client opens its channel through a hook this package
overrides.

Rejected: grpc.aio stubs under a shared object layer, which would need every object method (the
waits, the paging, the retries) written once per transport or turned into a protocol both could
drive: the objects are sync code through and through, and the duplicated logic is what this shape
avoids. ``asyncio.to_thread`` (the loop's shared default executor) and threads abandoned on
cancellation: see ``_threads``. A facade class per object written out method by method: see
``_facade``.
"""

from seedbed.client.aio._client import AsyncClient
from seedbed.client.aio._objects import (
    AsyncProject,
    AsyncRunDetails,
    AsyncScenario,
    AsyncScenarioRun,
    AsyncScenarioSettings,
    AsyncTriggerFire,
)

__all__ = [
    "AsyncClient",
    "AsyncProject",
    "AsyncRunDetails",
    "AsyncScenario",
    "AsyncScenarioRun",
    "AsyncScenarioSettings",
    "AsyncTriggerFire",
]
