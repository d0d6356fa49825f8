"""The coordinator's Prometheus metrics, and the endpoint that serves them (``GET /metrics``).

    metrics = CoordinatorMetrics(store)      # its own registry: several coordinators share a process
    metrics.start()                          # the store's gauges refreshed in the background
    endpoint = MetricsEndpoint(settings.metrics_listen, metrics.registry)
    endpoint.start()                         # MetricsEndpointError: the address cannot be used
    server = grpc.aio.server(interceptors=server_interceptors(metrics, ...))  # the gRPC face
    supervisor.add_listener(metrics)         # finished runs by outcome
    ...
    await endpoint.aclose(); await metrics.aclose()

What is measured, and where:

==========================================  =========  ========================  ==========================
name                                        type       labels                    recorded by
==========================================  =========  ========================  ==========================
seedbed_runs                                gauge      state                     the store, every few s
seedbed_runs_active                         gauge                                the store (RUNNING)
seedbed_runs_queued                         gauge                                the store (QUEUED + PENDING
                                                                                 fires behind a run)
seedbed_runs_finished_total                 counter    outcome                   the run listener
seedbed_attempt_duration_seconds            histogram  outcome                   the attempt runner
seedbed_attempt_start_seconds               histogram                            the attempt runner
seedbed_attempt_queue_wait_seconds          histogram                            the attempt runner
seedbed_sandbox_start_seconds               histogram                            the attempt runner
seedbed_write_batches_total                 counter    connection, ledger        the attempt runner
seedbed_write_rows_total                    counter    connection, ledger        the attempt runner
seedbed_log_lines_dropped_total             counter                              the attempt runner
seedbed_reporter_deliveries_total           counter    kind, event, status       the report sender
seedbed_api_calls_total                     counter    method, code              the gRPC and REST faces
==========================================  =========  ========================  ==========================

Design.

- One ``CollectorRegistry`` per ``CoordinatorMetrics``, never prometheus_client's global one: tests
  run many coordinators in one process, and two registrations of one name in one registry fail.
- Events are counted where they happen, on the coordinator's event loop (prometheus_client's
  metrics are thread-safe; a scrape reads them from the HTTP server's thread).
- The gauges of the store (runs by state, active, queued) come from the store, not from counting
  transitions in memory: several coordinators may share a PostgreSQL store and a restart would begin
  from zero. The store is async and bound to the coordinator's loop, so a scrape (on another thread)
  never reads it: a background task reads it every ``refresh_seconds``; a scrape that finds the last
  read older than a second asks the loop for a new one and waits for it at most
  ``_SCRAPE_WAIT_SECONDS``, then answers with the newest values it has (a busy loop or a slow store
  delays a scrape by that much at most). Concurrent reads are merged into one. Rejected: a second,
  synchronous engine for the scrape thread (twice the connections, and its own pool to size).
- ``seedbed_runs_finished_total`` counts the runs this coordinator finalized; with several
  coordinators, sum over them.
- Where an attempt's time before its script goes. The coordinator sees one span on its own clock:
  dispatch → the worker's ``started`` event (``seedbed_attempt_start_seconds``, always recorded).
  It splits it with the worker's structural spans (tracing on): the worker's "queue wait" span ends
  when its task began, and ``AttemptStarted.time`` is when the sandbox started, both on the worker's
  clock, so their difference is the sandbox's start (image check, container create and start:
  ``seedbed_sandbox_start_seconds``) free of clock skew between hosts, and the rest is the wait for
  a slot in Ray, the events' travel included (``seedbed_attempt_queue_wait_seconds``). With tracing
  off there is no task-began time and these two are not recorded. Rejected: the worker's
  ``AttemptStarted`` time minus the dispatch time (two clocks, and the same interval as the first).
- API calls are counted through :meth:`CoordinatorMetrics.api_call` by the gRPC face's interceptor
  (``faces.grpc.interceptors``), placed first, so it sees every call the server answers: rejected by
  authentication, aborted by a servicer, streaming, cancelled. ``method`` is the short RPC name of a
  registered method (a bounded set); a method no service has counts as ``unknown`` with
  UNIMPLEMENTED. This module imports no protocol library: the use cases import it.
- The endpoint is prometheus_client's own WSGI server on a daemon thread (``start_http_server``,
  which answers its server so it can be shut down). Rejected: serving it on the gRPC port (another
  protocol on that listener) or through an asyncio HTTP server (a scrape would compete with the RPCs
  on the loop).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily, Metric

from seedbed.api.spans import QUEUE_WAIT
from seedbed.api.v1 import attempt_pb2, run_pb2
from seedbed.coordinator.model import TERMINAL_STATES, RunState
from seedbed.coordinator.periodic import PeriodicTask
from seedbed.coordinator.store import RunRecord, Store
from seedbed.coordinator.store.metrics import MetricsRepository, RunCounts

__all__ = [
    "AttemptTimer",
    "CoordinatorMetrics",
    "MetricsEndpoint",
    "MetricsEndpointError",
]

log = logging.getLogger(__name__)

# Attempts last seconds to hours; the wait before a script, milliseconds to minutes.
DURATION_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200)
WAIT_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
# The worker's span from the dispatch to the moment its attempt task began.
QUEUE_WAIT_SPAN = QUEUE_WAIT
_FRESH_SECONDS = 1.0
_SCRAPE_WAIT_SECONDS = 0.5
_LEDGER = {run_pb2.WRITE_BATCH_STATUS_REPLAYED: "skipped"}


class MetricsEndpointError(Exception):
    """The metrics endpoint cannot listen where ``setting`` says."""

    def __init__(self, setting: str, message: str) -> None:
        super().__init__(f"{setting}: {message}")
        self.setting = setting


class CoordinatorMetrics:
    """The coordinator's metrics in a registry of their own; a ``RunListener`` for finished runs.

    ``store`` None: the store's gauges are absent (an attempt runner or report sender built without
    metrics records into one of these, which nobody serves)."""

    def __init__(self, store: Store | None = None, *, refresh_seconds: float = 5.0) -> None:
        self.registry = CollectorRegistry()
        self._counts_repository = MetricsRepository(store) if store is not None else None
        self._counts: RunCounts | None = None
        self._read_at = float("-inf")
        self._reading: asyncio.Future[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0
        self._refresh = PeriodicTask("metrics-refresh", self.refresh, refresh_seconds)
        r = self.registry
        self.runs_finished = Counter(
            "seedbed_runs_finished", "Runs finalized here, by how they ended", ["outcome"], registry=r
        )
        for state in sorted(TERMINAL_STATES):
            self.runs_finished.labels(state.value)
        self.attempt_duration = Histogram(
            "seedbed_attempt_duration_seconds",
            "Attempts from their dispatch to their end, by outcome",
            ["outcome"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.attempt_start = Histogram(
            "seedbed_attempt_start_seconds",
            "From an attempt's dispatch to its sandbox's start, as the coordinator sees it",
            buckets=WAIT_BUCKETS,
            registry=r,
        )
        self.queue_wait = Histogram(
            "seedbed_attempt_queue_wait_seconds",
            "From an attempt's dispatch to its worker task's start: the wait for a slot in Ray "
            "(recorded when the worker traces the attempt)",
            buckets=WAIT_BUCKETS,
            registry=r,
        )
        self.sandbox_start = Histogram(
            "seedbed_sandbox_start_seconds",
            "From a worker task's start to its sandbox's start: image check, container create and "
            "start (recorded when the worker traces the attempt)",
            buckets=WAIT_BUCKETS,
            registry=r,
        )
        self.batches = Counter(
            "seedbed_write_batches",
            "Write batches reported, by connection; ledger=skipped: already written by an earlier attempt",
            ["connection", "ledger"],
            registry=r,
        )
        self.rows = Counter(
            "seedbed_write_rows",
            "Rows in the write batches reported, by connection and ledger decision",
            ["connection", "ledger"],
            registry=r,
        )
        self.log_lines_dropped = Counter(
            "seedbed_log_lines_dropped", "Log lines of attempts dropped past their limits", registry=r
        )
        self.deliveries = Counter(
            "seedbed_reporter_deliveries",
            "Report deliveries that ended, by reporter kind, event and status",
            ["kind", "event", "status"],
            registry=r,
        )
        self.api_calls = Counter(
            "seedbed_api_calls",
            "gRPC calls answered, by method and status code",
            ["method", "code"],
            registry=r,
        )
        self.worker_nodes = Gauge(
            "seedbed_ray_worker_nodes", "Live Ray nodes that offer sandbox slots", registry=r
        )
        self.sandbox_slots = Gauge(
            "seedbed_sandbox_slots", "Sandbox slots of the live worker nodes, by use", ["state"], registry=r
        )
        r.register(_StoreGauges(self._fresh_counts))
        ProcessCollector(registry=r)

    # -- the store's gauges ------------------------------------------------------------------------

    def start(self) -> None:
        """Begin refreshing the store's gauges (on the running loop)."""
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        if self._counts_repository is not None:
            self._refresh.start()

    async def aclose(self) -> None:
        self._loop = None  # scrapes from now on answer the last counts
        await self._refresh.aclose()
        if self._reading is not None and not self._reading.done():
            self._reading.cancel()  # the store closes next
            await asyncio.gather(self._reading, return_exceptions=True)

    async def refresh(self) -> None:
        """Read the store's counts now (a read already under way is joined, not repeated)."""
        if self._counts_repository is None:
            return
        if self._reading is None or self._reading.done():
            self._reading = asyncio.ensure_future(self._read(self._counts_repository))
        await asyncio.shield(self._reading)

    async def _read(self, repository: MetricsRepository) -> None:
        self._counts = await repository.counts()
        self._read_at = time.monotonic()

    def _fresh_counts(self) -> RunCounts | None:
        """On a scrape's thread: the newest counts, read again first when they are over a second old
        (waiting a bounded time for the loop)."""
        loop = self._loop
        stale = time.monotonic() - self._read_at > _FRESH_SECONDS
        if loop is None or not stale or threading.get_ident() == self._loop_thread:
            return self._counts
        try:
            asyncio.run_coroutine_threadsafe(self.refresh(), loop).result(_SCRAPE_WAIT_SECONDS)
        except concurrent.futures.TimeoutError:
            log.debug(
                "metrics: the store's counts took over %.1fs; answering the last ones", _SCRAPE_WAIT_SECONDS
            )
        except RuntimeError:
            pass  # the loop is closing
        except Exception as exc:
            log.warning("metrics: could not read the store's counts: %s", exc)
        return self._counts

    # -- events ------------------------------------------------------------------------------------

    def cluster_seen(self, worker_nodes: int, slots: float, free: float) -> None:
        self.worker_nodes.set(worker_nodes)
        self.sandbox_slots.labels("free").set(free)
        self.sandbox_slots.labels("busy").set(max(slots - free, 0))

    async def run_started(self, run: RunRecord) -> None:
        return None

    async def run_finished(self, run: RunRecord) -> None:
        self.runs_finished.labels(run.state.value).inc()

    def attempt_dispatched(self) -> AttemptTimer:
        """The clock of an attempt being handed to the dispatcher now."""
        return AttemptTimer(self)

    def batch_written(self, batch: run_pb2.WriteBatch) -> None:
        ledger = _LEDGER.get(batch.status, "written")
        self.batches.labels(batch.connection_id, ledger).inc()
        self.rows.labels(batch.connection_id, ledger).inc(max(batch.rows, 0))

    def lines_dropped(self, count: int) -> None:
        if count > 0:
            self.log_lines_dropped.inc(count)

    def report_delivered(self, kind: str, event: str, status: str) -> None:
        self.deliveries.labels(kind, event, status).inc()

    def api_call(self, method: str, code: str) -> None:
        """Count a call a face answered: its short method name and its status code's name (the gRPC
        face's interceptor, ``faces.grpc.interceptors``, calls this for every call)."""
        self.api_calls.labels(method, code).inc()


class _StoreGauges:
    """The gauges read from the store, produced at each scrape from the newest counts."""

    def __init__(self, counts: Callable[[], RunCounts | None]) -> None:
        self._counts = counts

    def describe(self) -> Iterator[Metric]:
        return iter(_gauge_families(None))

    def collect(self) -> Iterator[Metric]:
        return iter(_gauge_families(self._counts()))


def _gauge_families(counts: RunCounts | None) -> list[Metric]:
    by_state = GaugeMetricFamily("seedbed_runs", "Runs in the store, by state", labels=["state"])
    active = GaugeMetricFamily("seedbed_runs_active", "Runs whose attempt is under way (RUNNING)")
    queued = GaugeMetricFamily(
        "seedbed_runs_queued", "Runs waiting to run: QUEUED runs and fires queued behind an active run"
    )
    if counts is not None:  # not read yet: no sample rather than a false zero
        for state in RunState:
            by_state.add_metric([state.value], counts.by_state[state])
        active.add_metric([], counts.active)
        queued.add_metric([], counts.queued)
    return [by_state, active, queued]


class AttemptTimer:
    """One attempt's clock, from its dispatch (see the module's notes on the split)."""

    def __init__(self, metrics: CoordinatorMetrics) -> None:
        self._metrics = metrics
        self._dispatched = time.monotonic()
        self._before_start: float | None = None
        self._sandbox_started: datetime | None = None
        self._task_began: datetime | None = None
        self._split = False
        self._ended = False

    def started(self, started: attempt_pb2.AttemptStarted) -> None:
        """The attempt's ``AttemptStarted`` arrived (its time: when the sandbox started)."""
        if self._before_start is not None:
            return
        self._before_start = time.monotonic() - self._dispatched
        self._metrics.attempt_start.observe(self._before_start)
        if started.HasField("time"):
            self._sandbox_started = started.time.ToDatetime(tzinfo=UTC)
        self._split_wait()

    def spans(self, spans: Iterable[run_pb2.Span]) -> None:
        """Spans the worker reported: its "queue wait" span ends when its task began."""
        if self._task_began is not None:
            return
        for span in spans:
            if span.name == QUEUE_WAIT_SPAN and span.HasField("end_time"):
                self._task_began = span.end_time.ToDatetime(tzinfo=UTC)
                self._split_wait()
                return

    def _split_wait(self) -> None:
        before, began, sandbox_started = self._before_start, self._task_began, self._sandbox_started
        if self._split or before is None or began is None or sandbox_started is None:
            return
        self._split = True
        # Both times on the worker's clock; bounded by what the coordinator saw on its own.
        sandbox = min(max((sandbox_started - began).total_seconds(), 0.0), before)
        self._metrics.sandbox_start.observe(sandbox)
        self._metrics.queue_wait.observe(before - sandbox)

    def ended(self, outcome: str) -> None:
        """The attempt ended with ``outcome`` (the attempts table's word: SUCCEEDED, ABORTED, …)."""
        if not self._ended:
            self._ended = True
            self._metrics.attempt_duration.labels(outcome).observe(time.monotonic() - self._dispatched)


# -- the endpoint -----------------------------------------------------------------------------------


class MetricsEndpoint:
    """Serves a registry as ``GET /metrics`` on ``listen`` (host:port; port 0: a free one).
    ``start()`` binds at once (MetricsEndpointError when it cannot); ``aclose()`` stops serving."""

    SETTING = "SEEDBED_METRICS_LISTEN"

    def __init__(self, listen: str, registry: CollectorRegistry) -> None:
        self._listen = listen
        self._registry = registry
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self.port = 0

    @property
    def address(self) -> str:
        """host:port where it listens (the port bound, when the setting asked for 0)."""
        return f"{self._listen.rpartition(':')[0]}:{self.port}"

    def start(self) -> None:
        host, _, port = self._listen.rpartition(":")
        try:
            self._server, self._thread = start_http_server(
                int(port), addr=host.strip("[]"), registry=self._registry
            )
        except OSError as exc:
            raise MetricsEndpointError(
                self.SETTING,
                f"cannot serve metrics on {self._listen}: {exc.strerror or exc}; choose a free address "
                "(port 0 picks one) or set it empty to turn the endpoint off",
            ) from exc
        self.port = int(self._server.server_address[1])
        log.info("metrics on http://%s/metrics", self.address)

    async def aclose(self) -> None:
        if self._server is not None:
            server, thread = self._server, self._thread
            self._server = self._thread = None
            await asyncio.to_thread(_stop, server, thread)


def _stop(server: Any, thread: threading.Thread | None) -> None:
    server.shutdown()  # waits for serve_forever to return (it polls every 0.5 s)
    server.server_close()
    if thread is not None:
        thread.join()
