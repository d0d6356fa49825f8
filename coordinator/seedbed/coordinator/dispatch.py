"""Dispatch of attempts to Ray: the only coordinator module that imports ``ray``. ``RayDispatcher``
implements every port of ``runs.ports`` (attempts, sandboxes, catalog tasks, purges).

Ray is an at-least-once executor here; the coordinator owns run state and retries, so tasks are
submitted with ``max_retries=0``. Each attempt is a streaming-generator task: the worker yields
serialized ``AttemptEvent`` messages (started, output batches, result) that arrive before the task
ends, which is what makes live logs possible without a callback channel.

Catalog tasks (template validation and previews, connection tests) are bounded twice: each holds one
``CATALOG_RESOURCE`` slot (a local instance declares ``catalog_slots`` of them), and this coordinator
runs at most ``catalog_slots`` at once; so a flood of previews queues instead of taking every Ray
worker process (a task with ``num_cpus=0`` alone would not be bounded by Ray at all).

Where tasks run. Attempts hold a ``SANDBOX_RESOURCE`` slot, catalog tasks a ``CATALOG_RESOURCE``
slot, and the coordinator's other small tasks (engine probe, purges, the janitor's sweeps) one unit
of ``WORKER_NODE_RESOURCE``: all three are declared only by worker nodes (nodes with a Docker
engine), so nothing lands on the Ray head or on the coordinator's own node, which declare none and
no CPUs. ``cluster()`` tells how many worker nodes have joined and how many slots are free: the
metrics show it, and an attempt that waits for a slot says why in its run's log.

Rejected alternatives: an actor per worker node pulling from a queue (a second scheduler next to
Ray's), Ray Jobs (a driver process per run, seconds of overhead, logs through files), and Ray Client
(no streaming generators over it, so no live events).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import ray
from ray.exceptions import RayError, TaskCancelledError

from seedbed.api.v1 import attempt_pb2
from seedbed.coordinator.attempt import derived_image_limits
from seedbed.coordinator.errors import DispatchCancelled, DispatchError, SandboxRuntimeError
from seedbed.coordinator.observability.logs import adopt_logger
from seedbed.coordinator.settings import CoordinatorSettings
from seedbed.worker import catalog
from seedbed.worker.attempt import (
    SANDBOX_RESOURCE,
    WORKER_NODE_RESOURCE,
    WORKER_NODE_UNITS,
    EngineProbe,
    list_sandboxes,
    probe_engine,
    remove_sandboxes,
    run_attempt,
    sweep_sandboxes,
)
from seedbed.worker.catalog import CATALOG_RESOURCE

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClusterView:
    """The Ray cluster as the coordinator sees it (live nodes only)."""

    nodes: int  # every live node: the head, this coordinator's, the worker nodes
    worker_nodes: int  # nodes that offer sandbox slots
    sandbox_slots: float  # their slots in all
    free_slots: float  # of those, free now

    def waiting_reason(self) -> str | None:
        """Why an attempt dispatched now would wait for a slot, in words; None when it need not."""
        if self.worker_nodes == 0:
            return (
                f"no Ray worker node with sandbox slots has joined the cluster ({self.nodes} live node(s), "
                f"none declaring {SANDBOX_RESOURCE!r}): the run starts when one joins; check the worker "
                "nodes' logs"
            )
        if self.free_slots < 1:
            return (
                f"every sandbox slot is busy ({self.sandbox_slots:g} on {self.worker_nodes} worker "
                "node(s)): the run starts when one frees up"
            )
        return None


# How long a cluster view is reused (ray.nodes() asks the GCS).
_CLUSTER_VIEW_SECONDS = 2.0


# A purge deletes a batch per transaction and may take long on a large run; cut off past this (a
# cut purge is rolled back to its last committed batch, and purging again resumes from there).
_PURGE_SECONDS = 3600.0


class RayDispatcher:
    """Submits attempts to a Ray cluster; starts a local instance when none is given."""

    def __init__(self, settings: CoordinatorSettings) -> None:
        self._settings = settings
        self._started_ray = False
        self._refs: dict[str, Any] = {}
        self._cancelled: set[str] = set()
        self._resources: dict[str, float] = {}
        self._catalog_resources: dict[str, float] = {}
        self._catalog_slots = asyncio.Semaphore(settings.catalog_slots)
        self._node_resources: dict[str, float] = {}
        self._remote = ray.remote(run_attempt)
        self._view: tuple[float, ClusterView] | None = None
        self._view_lock = asyncio.Lock()

    async def start(self) -> None:
        await asyncio.to_thread(self._init)

    def _init(self) -> None:
        address = self._settings.ray_address or os.environ.get("RAY_ADDRESS", "")
        adopt_logger("ray")  # its lines in the coordinator's own format (JSON for collectors)
        if not ray.is_initialized():
            if address:
                ray.init(address=address, namespace="seedbed", log_to_driver=False)
            else:
                ray.init(
                    resources={
                        SANDBOX_RESOURCE: float(self._settings.sandbox_slots),
                        CATALOG_RESOURCE: float(self._settings.catalog_slots),
                        WORKER_NODE_RESOURCE: float(WORKER_NODE_UNITS),
                    },
                    include_dashboard=False,
                    namespace="seedbed",
                    log_to_driver=False,
                )
                self._started_ray = True
        # A cluster (an address given) is one whose worker nodes declare Seedbed's resources (the
        # images' entry point does): require them even before any worker node has joined, or the
        # first attempts would be placed by CPU alone, anywhere. A Ray this process did not start
        # and was not pointed at (an embedding program's) is taken as it is.
        declared = ray.cluster_resources()
        cluster = bool(address)
        if cluster or SANDBOX_RESOURCE in declared:
            self._resources = {SANDBOX_RESOURCE: 1.0}
        else:
            log.warning(
                "this Ray declares no %r resource: attempts fall back to one CPU each; declare "
                "resources={'%s': N} to bound sandboxes per node",
                SANDBOX_RESOURCE,
                SANDBOX_RESOURCE,
            )
        if cluster or CATALOG_RESOURCE in declared:
            self._catalog_resources = {CATALOG_RESOURCE: 1.0}
        if cluster or WORKER_NODE_RESOURCE in declared:
            self._node_resources = {WORKER_NODE_RESOURCE: 1.0}
        if cluster and SANDBOX_RESOURCE not in declared:
            log.warning(
                "no Ray worker node has joined the cluster yet (none declares %r): runs wait for one",
                SANDBOX_RESOURCE,
            )
        log.info("ray ready (%s), cluster resources %s", address or "local", ray.cluster_resources())

    def _cluster_now(self) -> ClusterView:
        nodes = [node for node in ray.nodes() if node.get("Alive")]
        workers = [node for node in nodes if node.get("Resources", {}).get(SANDBOX_RESOURCE, 0) > 0]
        free = ray.available_resources().get(SANDBOX_RESOURCE, 0.0) if workers else 0.0
        return ClusterView(
            nodes=len(nodes),
            worker_nodes=len(workers),
            sandbox_slots=sum(node["Resources"][SANDBOX_RESOURCE] for node in workers),
            free_slots=free,
        )

    async def cluster(self) -> ClusterView:
        """Live nodes and sandbox slots (cached for a moment: it asks Ray's GCS)."""
        async with self._view_lock:  # one question to the GCS at a time; the others take its answer
            cached = self._view
            if cached is not None and time.monotonic() - cached[0] < _CLUSTER_VIEW_SECONDS:
                return cached[1]
            view = await asyncio.to_thread(self._cluster_now)
            self._view = (time.monotonic(), view)
            return view

    async def waiting_reason(self) -> str | None:
        """Why an attempt waits for a worker now, or None (see ``ClusterView.waiting_reason``)."""
        try:
            return (await self.cluster()).waiting_reason()
        except RayError as exc:
            return f"the Ray cluster does not answer: {exc}"

    async def probe_engine(self) -> str | None:
        """Ask a worker whether it reaches the Docker engine; the problem in words, or None.
        Logs the sandboxes' container runtime; raises SandboxRuntimeError when the engine lacks
        the one SEEDBED_SANDBOX_RUNTIME asks for (no sandbox could run: the coordinator must not
        start)."""
        if self._node_resources and (await self.cluster()).worker_nodes == 0:
            # Nobody to ask yet (the probe would wait for a worker node): the coordinator starts,
            # and its cluster watch probes when the first worker node joins.
            log.info("no worker node to probe the Docker engine from yet: probed when one joins")
            return None
        task = ray.remote(probe_engine).options(num_cpus=0, max_retries=0, resources=self._node_resources)
        runtime = self._settings.sandbox_runtime
        try:
            probe: EngineProbe = await asyncio.wait_for(task.remote(self._settings.docker_url, runtime), 60)
        except (RayError, TimeoutError) as exc:
            return f"could not probe the Docker engine from a Ray worker: {exc}"
        if probe.refusal:
            raise SandboxRuntimeError(f"SEEDBED_SANDBOX_RUNTIME={runtime}: {probe.refusal}")
        if probe.runtime:
            log.info("%s (SEEDBED_SANDBOX_RUNTIME=%s)", probe.runtime, runtime)
        return probe.problem

    async def _call(
        self, function: Any, *args: Any, timeout: float = 60, resources: dict[str, float] | None = None
    ) -> Any:
        """Run a small worker function as a Ray task (template semantics and target drivers live
        on the workers, where the data plane is)."""
        task = ray.remote(function).options(
            num_cpus=0, max_retries=0, resources=resources or self._node_resources
        )
        ref = task.remote(*args)
        try:
            return await asyncio.wait_for(ref, timeout)
        except TimeoutError as exc:
            ray.cancel(ref, force=True)
            raise DispatchError(f"{function.__name__} did not answer within {timeout:g}s") from exc
        except asyncio.CancelledError:
            ray.cancel(ref)  # the caller went away (an RPC past its deadline): drop the queued task
            raise
        except RayError as exc:
            raise DispatchError(f"{function.__name__} failed on the worker: {exc}") from exc

    async def _catalog_call(self, function: Any, *args: Any, timeout: float = 60) -> Any:
        """`_call` for a catalog task: it waits for one of this coordinator's catalog slots, then holds
        a Ray catalog slot (the RPC's deadline bounds the wait)."""
        async with self._catalog_slots:
            return await self._call(function, *args, timeout=timeout, resources=self._catalog_resources)

    async def validate_template(
        self, source: str, fmt: str, limits: attempt_pb2.DataLimits
    ) -> dict[str, Any]:
        result: dict[str, Any] = await self._catalog_call(
            catalog.validate_template_source, source, fmt, limits.SerializeToString()
        )
        return result

    async def preview_template(
        self,
        template_id: str,
        templates: dict[str, Any],
        count: int,
        seed: int | None,
        limits: attempt_pb2.DataLimits,
    ) -> dict[str, Any]:
        result: dict[str, Any] = await self._catalog_call(
            catalog.preview_rows, template_id, templates, count, seed, limits.SerializeToString()
        )
        return result

    async def test_connection(self, connection: attempt_pb2.ConnectionSnapshot) -> tuple[bool, str, float]:
        ok, message, latency = await self._catalog_call(
            catalog.try_connection, connection.SerializeToString(), timeout=120
        )
        return ok, message, latency

    async def purge_run(
        self,
        connection: attempt_pb2.ConnectionSnapshot,
        run_key: str,
        run_id: str,
        ledger_key: bytes,
        dry_run: bool,
        work: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Undo what a run wrote through one connection (see `catalog.purge_run`)."""
        result: dict[str, Any] = await self._call(
            catalog.purge_run,
            connection.SerializeToString(),
            run_key,
            run_id,
            ledger_key,
            dry_run,
            dict(work or {}),
            timeout=_PURGE_SECONDS,
        )
        return result

    async def _on_every_node(self, function: Any, *args: Any) -> list[Any]:
        """Run a small worker function once on every live worker node (every live node when the
        cluster declares no worker nodes); the answers of those that gave one."""
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        task = ray.remote(function)
        nodes = [node for node in ray.nodes() if node.get("Alive")]
        if self._node_resources:
            nodes = [node for node in nodes if node.get("Resources", {}).get(WORKER_NODE_RESOURCE, 0) > 0]
        refs = [
            task.options(
                num_cpus=0,
                max_retries=0,
                scheduling_strategy=NodeAffinitySchedulingStrategy(node["NodeID"], soft=False),
            ).remote(*args)
            for node in nodes
        ]
        answers = []
        for ref in refs:
            try:
                answers.append(await asyncio.wait_for(ref, 120))
            except (RayError, TimeoutError) as exc:
                log.warning("%s failed on a node: %s", function.__name__, exc)
        return answers

    async def sweep(self) -> list[str]:
        """Run the deadline janitor once on every live node; the ids of the containers it removed."""
        return [
            cid
            for removed in await self._on_every_node(
                sweep_sandboxes,
                self._settings.docker_url,
                # Bytes in, bytes out: the image caps travel as the spec's message does.
                derived_image_limits(self._settings).SerializeToString(),
            )
            for cid in removed
        ]

    async def list_sandboxes(self) -> list[dict[str, str]]:
        """Every Seedbed container on every live node, as its labels describe it."""
        found = await self._on_every_node(list_sandboxes, self._settings.docker_url)
        # Nodes sharing one engine report the same containers: each once.
        unique = {box["id"]: box for boxes in found for box in boxes}
        return list(unique.values())

    async def remove_sandboxes(self, ids: Sequence[str]) -> list[str]:
        """Remove these containers wherever they are (each node removes those it has)."""
        if not ids:
            return []
        removed = await self._on_every_node(remove_sandboxes, self._settings.docker_url, list(ids))
        return sorted({cid for gone in removed for cid in gone})

    async def aclose(self) -> None:
        for run_id in list(self._refs):
            self.cancel(run_id)
        if self._started_ray:
            await asyncio.to_thread(ray.shutdown)

    async def execute(self, spec: attempt_pb2.AttemptSpec) -> AsyncGenerator[attempt_pb2.AttemptEvent, None]:
        """Run one attempt; yield its events. Raises DispatchCancelled or DispatchError."""
        run_id = spec.run_id
        if run_id in self._cancelled:
            self._cancelled.discard(run_id)
            raise DispatchCancelled(f"run {run_id} was aborted before dispatch")
        task = self._remote.options(
            num_returns="streaming",
            max_retries=0,
            num_cpus=0 if self._resources else 1,
            resources=self._resources,
            name=f"seedbed-attempt-{run_id}-{spec.attempt}",
        )
        generator: Any = task.remote(spec.SerializeToString())  # an ObjectRefGenerator
        self._refs[run_id] = generator
        drained = False
        try:
            async for ref in generator:
                data = await ref
                yield attempt_pb2.AttemptEvent.FromString(data)
            drained = True
        except TaskCancelledError as exc:
            raise DispatchCancelled(f"attempt {spec.attempt} of run {run_id} was cancelled") from exc
        except RayError as exc:
            if run_id in self._cancelled:
                raise DispatchCancelled(f"attempt {spec.attempt} of run {run_id} was cancelled") from exc
            raise DispatchError(
                f"Ray could not execute attempt {spec.attempt} of run {run_id}: {exc}"
            ) from exc
        finally:
            if not drained:
                # The consumer went away (coordinator shutting down, error): stop the attempt too,
                # or its sandbox would run on with nobody reading it.
                self.cancel(run_id)
            self._refs.pop(run_id, None)
            self._cancelled.discard(run_id)

    def cancel(self, run_id: str) -> None:
        """Ask Ray to stop the attempt: the worker gets KeyboardInterrupt and removes its sandbox."""
        self._cancelled.add(run_id)
        generator = self._refs.get(run_id)
        if generator is not None:
            try:
                ray.cancel(generator, force=False)
            except (RayError, TypeError, ValueError) as exc:  # already finished, or not cancellable
                log.info("cancel of run %s: %s", run_id, exc)
