"""The ports through which the coordinator uses its workers, one per party that needs them.

- ``AttemptExecutor``: run an attempt, cancel it, say why it waits for a worker. The attempt runner
  and the run supervisor.
- ``SandboxFleet``: sweep, list and remove sandbox containers on every worker node. The janitor.
- ``CatalogWorker``: validate and preview templates, test connections. The template and connection
  services.
- ``RunPurgeWorker``: delete what a run inserted through a connection. The run purger.
- ``RunWorkers``: an executor and a fleet, for the run supervisor (it owns the janitor).
- ``Dispatcher``: every port, started and closed, and the Docker engine probed. The coordinator
  process (``server``), which hands each consumer its port.

Each consumer's constructor takes the narrowest port it uses, so a test (or a second executor)
provides only that, and what a part of the coordinator can do to the workers is visible in its
signature. ``dispatch.RayDispatcher`` (Ray) and ``fakes.FakeDispatcher`` (unit tests) implement
them all. The ports speak the contract's messages (``seedbed.api.v1.attempt_pb2``), never Ray's.

Rejected: one ``Dispatcher`` protocol of eleven methods taken by everyone (the supervisor could
purge, the catalog services could cancel attempts, and a fake had to implement everything for any
test), and abstract base classes (the Ray dispatcher and the fake would have to inherit them, and a
test double would too).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping, Sequence
from typing import Any, Protocol

from seedbed.api.v1 import attempt_pb2

__all__ = ["AttemptExecutor", "CatalogWorker", "Dispatcher", "RunPurgeWorker", "RunWorkers", "SandboxFleet"]


class AttemptExecutor(Protocol):
    """Runs attempts on the workers."""

    def execute(self, spec: attempt_pb2.AttemptSpec) -> AsyncGenerator[attempt_pb2.AttemptEvent, None]:
        """The attempt's events as the worker sends them (started, output, batches, spans, result).
        Raises ``DispatchCancelled`` after :meth:`cancel`, ``DispatchError`` when the worker is lost;
        closing the generator cancels the attempt on its worker."""
        ...

    def cancel(self, run_id: str) -> None:
        """Stop the run's attempt (its sandbox is stopped; ``execute`` raises DispatchCancelled)."""
        ...

    async def waiting_reason(self) -> str | None:
        """Why an attempt dispatched now would wait for a worker, in words; None when it need not."""
        ...


class SandboxFleet(Protocol):
    """The sandbox containers on every worker node."""

    async def sweep(self) -> list[str]:
        """Remove the containers past their deadline plus a grace, on every node; their ids."""
        ...

    async def list_sandboxes(self) -> list[dict[str, str]]:
        """Every Seedbed container as its node reports it (id, run, attempt, created, state, node)."""
        ...

    async def remove_sandboxes(self, ids: Sequence[str]) -> list[str]:
        """Remove these containers wherever they are; the ids of those removed."""
        ...


class CatalogWorker(Protocol):
    """The data plane's judgement on catalog objects (template semantics, target drivers)."""

    async def validate_template(
        self, source: str, fmt: str, limits: attempt_pb2.DataLimits
    ) -> dict[str, Any]: ...

    async def preview_template(
        self,
        template_id: str,
        templates: dict[str, Any],
        count: int,
        seed: int | None,
        limits: attempt_pb2.DataLimits,
    ) -> dict[str, Any]: ...

    async def test_connection(self, connection: attempt_pb2.ConnectionSnapshot) -> tuple[bool, str, float]:
        """(reachable, what was found or what went wrong, the check's duration in seconds)."""
        ...


class RunPurgeWorker(Protocol):
    """Undoes what a run wrote through one connection: SQL by its write ledger, REST by the ids in
    ``work["rest"]``, files by the names in ``work["files"]`` (see ``catalog.purge_run``)."""

    async def purge_run(
        self,
        connection: attempt_pb2.ConnectionSnapshot,
        run_key: str,
        run_id: str,
        ledger_key: bytes,
        dry_run: bool,
        work: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]: ...


class RunWorkers(AttemptExecutor, SandboxFleet, Protocol):
    """What the run supervisor needs: attempts run (its drives) and the sandboxes they leave behind
    (the janitor it owns)."""


class Dispatcher(AttemptExecutor, SandboxFleet, CatalogWorker, RunPurgeWorker, Protocol):
    """Every port, and the lifecycle the coordinator process owns (Ray in production,
    ``fakes.FakeDispatcher`` in unit tests)."""

    async def start(self) -> None: ...

    async def aclose(self) -> None: ...

    async def probe_engine(self) -> str | None:
        """What is wrong with the workers' Docker engine, in words; None when it serves."""
        ...
