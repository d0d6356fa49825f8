"""The coordinator process: store, dispatch, supervisor and the gRPC server, started and closed in
order. ``Coordinator`` is what ``seedbed server`` runs and what tests start in-process."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import signal
import socket
import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from seedbed.api.v1 import (
    access_pb2,
    access_pb2_grpc,
    connection_pb2,
    connection_pb2_grpc,
    run_pb2,
    run_pb2_grpc,
    scenario_pb2,
    scenario_pb2_grpc,
    template_pb2,
    template_pb2_grpc,
    workspace_pb2,
    workspace_pb2_grpc,
)
from seedbed.coordinator.app import (
    AccessUseCases,
    ConnectionUseCases,
    RunUseCases,
    ScenarioUseCases,
    TemplateUseCases,
)
from seedbed.coordinator.app.callers import caller_of
from seedbed.coordinator.auth import bootstrap_admin
from seedbed.coordinator.cluster_watch import ClusterWatch
from seedbed.coordinator.errors import (
    FailedPreconditionError,
    SandboxRuntimeError,
    SecretKeyMismatchError,
    StoreUnavailableError,
)
from seedbed.coordinator.faces.console import Sessions
from seedbed.coordinator.faces.grpc import (
    AccessServicer,
    AuthInterceptor,
    ConnectionServicer,
    RunServicer,
    ScenarioServicer,
    TemplateServicer,
    WorkspaceServicer,
    server_credentials,
    server_interceptors,
)
from seedbed.coordinator.faces.mcp import mcp_http_app
from seedbed.coordinator.faces.rest import RestServer, build_app
from seedbed.coordinator.logs import LogHub
from seedbed.coordinator.observability.metrics import CoordinatorMetrics, MetricsEndpoint
from seedbed.coordinator.observability.tracing import RunTracing
from seedbed.coordinator.overlap import FireLauncher
from seedbed.coordinator.purge import RunPurger
from seedbed.coordinator.purge_pass import PurgePass
from seedbed.coordinator.ratelimits import RateLimiter
from seedbed.coordinator.reporting import ReportSender
from seedbed.coordinator.runs import Dispatcher
from seedbed.coordinator.scheduler import TriggerScheduler
from seedbed.coordinator.secrets import SecretBox
from seedbed.coordinator.settings import CoordinatorSettings
from seedbed.coordinator.store import Store
from seedbed.coordinator.supervisor import RunSupervisor
from seedbed.coordinator.tls import ServerTls, is_loopback

log = logging.getLogger(__name__)

SERVICE_NAMES = (
    scenario_pb2.DESCRIPTOR.services_by_name["ScenarioService"].full_name,
    run_pb2.DESCRIPTOR.services_by_name["RunService"].full_name,
    template_pb2.DESCRIPTOR.services_by_name["TemplateService"].full_name,
    connection_pb2.DESCRIPTOR.services_by_name["ConnectionService"].full_name,
    workspace_pb2.DESCRIPTOR.services_by_name["WorkspaceService"].full_name,
    access_pb2.DESCRIPTOR.services_by_name["AccessService"].full_name,
)


class Coordinator:
    """Owns every background part; ``start()`` then ``aclose()``."""

    def __init__(self, settings: CoordinatorSettings, dispatcher: Dispatcher | None = None) -> None:
        self.settings = settings
        # Checked before anything starts: bad TLS files refuse the start (TlsSettingsError).
        self.tls = ServerTls.from_settings(settings)
        self.store: Store | None = None
        if dispatcher is None:
            from seedbed.coordinator.dispatch import RayDispatcher  # ray is imported only when used

            dispatcher = RayDispatcher(settings)
        self.dispatcher: Dispatcher = dispatcher
        self.hub = LogHub()
        self.supervisor: RunSupervisor | None = None
        self.fires: FireLauncher | None = None
        self.scheduler: TriggerScheduler | None = None
        self.cluster_watch: ClusterWatch | None = None
        self.tracing: RunTracing | None = None
        self.metrics: CoordinatorMetrics | None = None
        self.purge_pass: PurgePass | None = None
        self.metrics_endpoint: MetricsEndpoint | None = None
        self.rest: RestServer | None = None
        # The web console's sessions (None: no console; set by start()).
        self.console_sessions: Sessions | None = None
        # The use cases every face calls (set by start()).
        self.scenarios: ScenarioUseCases | None = None
        self.runs: RunUseCases | None = None
        self.templates: TemplateUseCases | None = None
        self.connections: ConnectionUseCases | None = None
        self.access: AccessUseCases | None = None
        self.server: grpc.aio.Server | None = None
        self.port = 0
        self.engine_problem: str | None = None
        self.loop: asyncio.AbstractEventLoop | None = None

    @property
    def address(self) -> str:
        host = self.settings.listen.rpartition(":")[0]
        return f"{host}:{self.port}"

    @property
    def advertised_address(self) -> str:
        """Where the workers call this coordinator back (SEEDBED_ADVERTISE_ADDRESS, else `address`
        with this machine's host name in place of a wildcard host)."""
        if self.settings.advertise_address:
            return self.settings.advertise_address
        host = self.settings.listen.rpartition(":")[0]
        if host in ("0.0.0.0", "::", "[::]", ""):
            return f"{socket.gethostname()}:{self.port}"
        return self.address

    @property
    def rest_address(self) -> str:
        """host:port of the REST API ('' when SEEDBED_REST_LISTEN is empty or before start)."""
        return self.rest.address if self.rest is not None else ""

    @property
    def metrics_address(self) -> str:
        """host:port of GET /metrics ('' when SEEDBED_METRICS_LISTEN is empty or before start)."""
        return self.metrics_endpoint.address if self.metrics_endpoint is not None else ""

    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        # The data folder holds the secret key, the admin key and (by default) the store.
        self.settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.settings.data_dir.chmod(0o700)
        self.store = await Store.open(self.settings.resolved_store_url())
        self.metrics = CoordinatorMetrics(self.store)
        if self.settings.metrics_listen:  # bound before Ray starts: a port in use fails at once
            self.metrics_endpoint = MetricsEndpoint(self.settings.metrics_listen, self.metrics.registry)
            self.metrics_endpoint.start()
        # Checked before Ray starts: a wrong key refuses the start at once.
        secrets = SecretBox.from_key_or_file(self.settings.secret_key, self.settings.data_dir)
        await check_secret_key(self.store, secrets)
        if self.settings.console and self.settings.rest_listen:
            # From the secret key: a session outlives a restart and is read by every coordinator.
            self.console_sessions = Sessions(
                secrets.derive_key("seedbed console session"),
                secrets.derive_key("seedbed console csrf"),
                round(self.settings.console_session_seconds),
                self.settings.console_origin,
            )
        await self.dispatcher.start()
        self.engine_problem = await self.dispatcher.probe_engine()
        if self.engine_problem:
            log.error("%s", self.engine_problem)
        await bootstrap_admin(self.store, self.settings)
        self.tracing = RunTracing(self.settings, self.store)
        self.supervisor = RunSupervisor(
            self.store,
            self.dispatcher,
            self.hub,
            self.settings,
            secrets,
            tracing=self.tracing,
            metrics=self.metrics,
        )
        self.fires = FireLauncher(self.store, self.supervisor, self.hub, self.tracing)
        self.supervisor.add_listener(self.fires)
        self.supervisor.add_listener(self.tracing)
        self.supervisor.add_listener(self.metrics)
        self.scheduler = TriggerScheduler(self.store, self.fires, self.settings.trigger_interval_seconds)
        self.supervisor.add_listener(ReportSender(self.store, self.settings, self.metrics))
        limit = self.settings.max_message_bytes
        # Counted and traced first: a call the authentication refuses is counted and traced too.
        interceptors = server_interceptors(self.metrics, self.tracing, AuthInterceptor(self.store, secrets))
        self.server = grpc.aio.server(
            interceptors=interceptors,
            options=[
                ("grpc.max_receive_message_length", limit),
                ("grpc.max_send_message_length", limit),
            ],
        )
        limits = RateLimiter.from_settings(self.settings)  # per caller, shared by every face
        purger = RunPurger(
            self.store,
            self.dispatcher,
            self.hub,
            secrets,
            holder=self.settings.resolved_coordinator_id(),
            lease=timedelta(seconds=self.settings.purge_lease_seconds),
            registry=self.metrics.registry,
        )
        self.purge_pass = PurgePass(self.store, purger, interval_seconds=self.settings.purge_interval_seconds)
        self.scenarios = ScenarioUseCases(self.store, self.settings, limits)
        self.runs = RunUseCases(
            self.store,
            self.supervisor,
            self.hub,
            purger,
            self.fires,
            limits,
            self.tracing,
        )
        self.templates = TemplateUseCases(self.store, self.dispatcher, self.settings, limits)
        self.connections = ConnectionUseCases(
            self.store,
            self.dispatcher,
            secrets,
            self.settings.data_dir,
            secret_file_dir=self.settings.secret_file_dir,
        )
        self.access = AccessUseCases(self.store)
        template_pb2_grpc.add_TemplateServiceServicer_to_server(TemplateServicer(self.templates), self.server)
        connection_pb2_grpc.add_ConnectionServiceServicer_to_server(
            ConnectionServicer(self.connections), self.server
        )
        workspace_pb2_grpc.add_WorkspaceServiceServicer_to_server(
            WorkspaceServicer(self.store, self.settings, limits), self.server
        )
        scenario_pb2_grpc.add_ScenarioServiceServicer_to_server(ScenarioServicer(self.scenarios), self.server)
        run_pb2_grpc.add_RunServiceServicer_to_server(RunServicer(self.runs), self.server)
        access_pb2_grpc.add_AccessServiceServicer_to_server(
            AccessServicer(self.store, self.access), self.server
        )
        health_servicer = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, self.server)
        reflection.enable_server_reflection(
            (*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME), self.server
        )
        self.port = self._listen(self.server)
        if self.port == 0:
            raise OSError(f"cannot listen on {self.settings.listen}: address in use or not available")
        await self.server.start()
        if self.settings.rest_listen:
            await self._start_rest()
        self.supervisor.coordinator_address = self.advertised_address
        self.tracing.start()
        self.metrics.start()
        await self.supervisor.start()
        self.scheduler.start()
        self.purge_pass.start()
        cluster = getattr(self.dispatcher, "cluster", None)  # a Ray dispatcher's view of its nodes
        if cluster is not None:
            self.cluster_watch = ClusterWatch(cluster, self.metrics, on_join=self._probe_engine)
            self.cluster_watch.start()
        for name in ("", *SERVICE_NAMES):
            await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
        how = self.tls.describe() if self.tls else "in plaintext"
        log.info("coordinator listening on %s %s (store: %s)", self.address, how, self.store.dialect)

    async def _start_rest(self) -> None:
        assert self.store is not None and self.runs is not None and self.scenarios is not None
        assert self.templates is not None and self.connections is not None and self.access is not None
        closing = asyncio.Event()
        mcp = mcp_http_app(
            self.runs, self.scenarios, self.store, max_body_bytes=self.settings.max_message_bytes
        )
        app = build_app(
            self.runs,
            self.scenarios,
            functools.partial(caller_of, self.store, face="the REST API"),
            templates=self.templates,
            connections=self.connections,
            access=self.access,
            max_body_bytes=self.settings.max_message_bytes,
            closing=closing,
            count_call=self.metrics.api_call if self.metrics is not None else None,
            mounts={"/mcp": mcp.asgi_app},
            lifespan=lambda _app: mcp.lifespan(),
            console=self.console_sessions,
        )
        self.rest = RestServer(app, self.settings.rest_listen, closing)
        await self.rest.start()
        if not is_loopback(self.settings.rest_listen):
            log.warning(
                "the REST API listens on %s without TLS: put a TLS-terminating proxy in front",
                self.settings.rest_listen,
            )
        log.info(
            "REST API on http://%s/v1 (OpenAPI: /v1/openapi.json), MCP on http://%s/mcp%s",
            self.rest.address,
            self.rest.address,
            f", web console on http://{self.rest.address}/console/" if self.console_sessions else "",
        )

    async def _probe_engine(self) -> None:
        """Probe the Docker engine from a worker node that joined after the start."""
        try:
            self.engine_problem = await self.dispatcher.probe_engine()
        except SandboxRuntimeError as exc:
            self.engine_problem = str(exc)
        if self.engine_problem:
            log.error("%s", self.engine_problem)

    def _listen(self, server: grpc.aio.Server) -> int:
        listen = self.settings.listen
        if self.tls is not None:
            return int(server.add_secure_port(listen, server_credentials(self.tls)))
        if not is_loopback(listen):
            log.warning(
                "listening on %s without TLS: API keys and workspace tokens cross the network in clear "
                "text; set SEEDBED_TLS_CERT_FILE and SEEDBED_TLS_KEY_FILE, or keep a TLS-terminating "
                "proxy in front and this address unreachable from elsewhere",
                listen,
            )
        return int(server.add_insecure_port(listen))

    async def aclose(self, grace: float = 2.0) -> None:
        if self.rest is not None:
            await self.rest.aclose()
        if self.server is not None:
            await self.server.stop(grace)
        if self.scheduler is not None:
            await self.scheduler.aclose()
        if self.purge_pass is not None:
            await self.purge_pass.aclose()
        if self.cluster_watch is not None:
            await self.cluster_watch.aclose()
        if self.supervisor is not None:
            await self.supervisor.aclose()
        if self.fires is not None:
            await self.fires.aclose()
        if self.tracing is not None:
            await self.tracing.aclose()
        if self.metrics_endpoint is not None:
            await self.metrics_endpoint.aclose()
        if self.metrics is not None:
            await self.metrics.aclose()
        await self.dispatcher.aclose()
        if self.store is not None:
            await self.store.aclose()


async def check_secret_key(store: Store, secrets: SecretBox) -> None:
    """Raise SecretKeyMismatchError when the store keeps secrets this key cannot open (a cluster
    whose coordinators were given another SEEDBED_SECRET_KEY than the one that sealed them)."""
    sealed = await store.connections.a_sealed_secret()
    if sealed is None:
        return
    try:
        secrets.open(sealed[1])
    except FailedPreconditionError:
        raise SecretKeyMismatchError(
            f"SEEDBED_SECRET_KEY does not open the secrets in the store (connection {sealed[0]!r} was "
            "sealed with another key): give this coordinator the key the others use"
        ) from None


async def migrate_only(settings: CoordinatorSettings) -> bool:
    """`seedbed server --migrate-only`: bring the store's schema up to date and check the secret key
    against it; one clear log line and False when either fails."""
    try:
        store = await Store.open(settings.resolved_store_url())
    except StoreUnavailableError as exc:
        log.error("the store is not usable: %s", exc)
        return False
    try:
        if not settings.secret_key and not (settings.data_dir / "secret.key").is_file():
            log.info("the store is up to date (%s); no secret key given, none checked", store.dialect)
            return True
        try:
            secrets = SecretBox.from_key_or_file(settings.secret_key, settings.data_dir)
            await check_secret_key(store, secrets)
        except (ValueError, SecretKeyMismatchError) as exc:
            log.error("%s", exc)
            return False
        log.info("the store is up to date (%s) and the secret key opens its secrets", store.dialect)
        return True
    finally:
        await store.aclose()


async def serve(settings: CoordinatorSettings) -> None:
    """Run until SIGINT or SIGTERM."""
    coordinator = Coordinator(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await coordinator.start()
    try:
        await stop.wait()
    finally:
        await coordinator.aclose()


@contextlib.contextmanager
def running_in_thread(
    settings: CoordinatorSettings, dispatcher: Dispatcher | None = None
) -> Iterator[Coordinator]:
    """Run a coordinator on its own event loop in a background thread (``seedbed run submit --local``, tests).

    Yields the started coordinator (``.address`` is where it listens); stops it on exit.
    """
    ready = threading.Event()
    box: dict[str, Any] = {}

    async def main() -> None:
        coordinator = Coordinator(settings, dispatcher)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        box["stop"] = lambda: loop.call_soon_threadsafe(stop.set)
        try:
            await coordinator.start()
        except BaseException:
            await coordinator.aclose()
            raise
        box["coordinator"] = coordinator
        ready.set()
        try:
            await stop.wait()
        finally:
            await coordinator.aclose()

    def thread_main() -> None:
        try:
            asyncio.run(main())
        except BaseException as exc:  # re-raised in the caller's thread
            box["error"] = exc
        finally:
            ready.set()

    thread = threading.Thread(target=thread_main, name="seedbed-coordinator", daemon=True)
    thread.start()
    ready.wait()
    if "error" in box:
        raise box["error"]
    try:
        yield box["coordinator"]
    finally:
        box["stop"]()
        thread.join(timeout=60)
