"""The client's implementation: a thin, typed layer over the generated stubs.

Every call that creates something carries an idempotency key, generated when the caller gives
none and reused when the call is retried, so a retry after a lost answer never starts a second run.
The coordinator keeps a key as long as the fire it answered: at least 24 hours, and currently for
the life of the store (fires are never pruned). Reusing a key later than that may start a new run.
"""

from __future__ import annotations

import collections
import json
import os
import time
import uuid
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any

import grpc

from seedbed.api.v1 import (
    access_pb2,
    access_pb2_grpc,
    asset_pb2,
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
from seedbed.client._logs import LogEvent, RunEnded
from seedbed.client._traces import RunTrace
from seedbed.client._transport import Transport, explain, is_handshake_failure, resolve

if TYPE_CHECKING:
    from seedbed.client._projects import Project
    from seedbed.client._runs import ScenarioRun, TriggerFire

_CHUNK = 1 * 2**20
_RETRYABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


class ClientError(Exception):
    """A call failed; ``code`` is the gRPC status code, the message the server's explanation.

    ``retry_after_seconds``: when the server said how long to wait before trying again (a rate
    limit's RESOURCE_EXHAUSTED, with its ``retry-after`` trailer), else None. The client never
    retries such a refusal itself: the caller decides whether the work is worth the wait."""

    def __init__(self, code: grpc.StatusCode, message: str, retry_after_seconds: int | None = None) -> None:
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.details = message
        self.retry_after_seconds = retry_after_seconds


def _wrap(exc: grpc.RpcError, transport: Transport | None = None) -> ClientError:
    code = exc.code() if hasattr(exc, "code") else grpc.StatusCode.UNKNOWN
    details = (exc.details() if hasattr(exc, "details") else str(exc)) or ""
    if code == grpc.StatusCode.UNAVAILABLE and transport is not None:
        hint = explain(transport, details)
        details = f"{details}\n  {hint}" if hint else details
    return ClientError(code, details, _retry_after(exc))


def _retry_after(exc: grpc.RpcError) -> int | None:
    """The ``retry-after`` trailer (whole seconds), if the server sent one."""
    trailers = exc.trailing_metadata() if hasattr(exc, "trailing_metadata") else None
    for key, value in trailers or ():
        text = value.decode() if isinstance(value, bytes) else str(value)
        if key == "retry-after" and text.isdigit():
            return int(text)
    return None


class _CallDetails(
    collections.namedtuple(
        "_CallDetails", ("method", "timeout", "metadata", "credentials", "wait_for_ready", "compression")
    ),
    grpc.ClientCallDetails,  # type: ignore[misc]
):
    pass


class _BearerAuth(
    grpc.UnaryUnaryClientInterceptor,  # type: ignore[misc]
    grpc.UnaryStreamClientInterceptor,  # type: ignore[misc]
    grpc.StreamUnaryClientInterceptor,  # type: ignore[misc]
    grpc.StreamStreamClientInterceptor,  # type: ignore[misc]
):
    """Adds ``authorization: Bearer <key>`` to every call, whatever its kind."""

    def __init__(self, key: str) -> None:
        self._header = ("authorization", f"Bearer {key}")

    def _details(self, details: Any) -> _CallDetails:
        metadata = [*(details.metadata or ()), self._header]
        return _CallDetails(
            details.method,
            details.timeout,
            metadata,
            details.credentials,
            getattr(details, "wait_for_ready", None),
            getattr(details, "compression", None),
        )

    def intercept_unary_unary(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        return continuation(self._details(client_call_details), request)

    def intercept_unary_stream(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        return continuation(self._details(client_call_details), request)

    def intercept_stream_unary(
        self, continuation: Any, client_call_details: Any, request_iterator: Any
    ) -> Any:
        return continuation(self._details(client_call_details), request_iterator)

    def intercept_stream_stream(
        self, continuation: Any, client_call_details: Any, request_iterator: Any
    ) -> Any:
        return continuation(self._details(client_call_details), request_iterator)


class Client:
    def __init__(
        self,
        address: str,
        *,
        api_key: str | None = None,
        timeout: float = 30.0,
        retries: int = 5,
        tls: bool | None = None,
        ca_file: str | os.PathLike[str] | None = None,
        client_cert_file: str | os.PathLike[str] | None = None,
        client_key_file: str | os.PathLike[str] | None = None,
        credentials: grpc.ChannelCredentials | None = None,
    ) -> None:
        """``api_key``: sent as ``authorization: Bearer <key>`` on every call; None reads
        SEEDBED_API_KEY (empty: no key, and the coordinator answers UNAUTHENTICATED).

        TLS: ``https://host:port`` or ``tls=True`` speaks TLS, verified with ``ca_file`` (else the
        system's roots), presenting ``client_cert_file``/``client_key_file`` when the coordinator
        requires a client certificate; or pass ready ``credentials``. The files default to
        SEEDBED_TLS_CA_FILE, SEEDBED_TLS_CLIENT_CERT_FILE and SEEDBED_TLS_CLIENT_KEY_FILE, and any of
        them set means TLS; ``http://host:port`` or ``tls=False`` means plaintext. ValueError for
        contradictions and unreadable files (see ``seedbed.client._transport`` for the rule)."""
        self.address = address
        self._timeout = timeout
        self._retries = retries
        self._transport = resolve(
            address,
            tls=tls,
            ca_file=ca_file,
            client_cert_file=client_cert_file,
            client_key_file=client_key_file,
            credentials=credentials,
        )
        key = os.environ.get("SEEDBED_API_KEY", "") if api_key is None else api_key
        channel = self._open_channel([("grpc.max_receive_message_length", 64 * 2**20)])
        self._channel = grpc.intercept_channel(channel, _BearerAuth(key)) if key else channel
        self._access = access_pb2_grpc.AccessServiceStub(self._channel)
        self._scenarios = scenario_pb2_grpc.ScenarioServiceStub(self._channel)
        self._runs = run_pb2_grpc.RunServiceStub(self._channel)
        self._templates = template_pb2_grpc.TemplateServiceStub(self._channel)
        self._connections = connection_pb2_grpc.ConnectionServiceStub(self._channel)
        self._workspace = workspace_pb2_grpc.WorkspaceServiceStub(self._channel)

    def _open_channel(self, options: list[tuple[str, int]]) -> grpc.Channel:
        """The channel under every call (the API key's interceptor goes on top). A subclass may wrap
        it: ``seedbed.client.aio`` adds a way to cancel the calls one awaited task made."""
        return self._transport.open(options)

    @property
    def tls(self) -> bool:
        """Whether this client speaks TLS to the coordinator."""
        return self._transport.tls

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object | type[BaseException] | TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._channel.close()

    def wait_until_ready(self, timeout: float) -> ClientError | None:
        """None when the coordinator's address accepts a connection within ``timeout`` seconds (the
        TLS handshake included); otherwise the UNAVAILABLE error a call gets there, with gRPC's
        reason and what to check (a TLS mismatch, an untrusted certificate), all within
        ``timeout``. Calls need not wait for this: it lets a caller say "unreachable" at once
        instead of after its retries."""
        # Most of the time a call waits for the connection; the rest asks a call why there is
        # none. Calls rather than channel_ready_future: its connectivity subscription leaves a
        # polling thread whose lock a Ctrl-C could leave close() waiting on at exit.
        probe = min(0.5, timeout / 4)
        request = access_pb2.WhoAmIRequest()
        try:
            self._access.WhoAmI(request, timeout=timeout - probe, wait_for_ready=True)
            return None
        except grpc.RpcError as exc:
            if exc.code() not in _RETRYABLE:
                return None  # it answered (a refusal is an answer)
        try:
            self._access.WhoAmI(request, timeout=probe)
        except grpc.RpcError as exc:
            if exc.code() in _RETRYABLE:
                return _wrap(exc, self._transport)
        return None

    def _call(
        self, method: object, request: object, *, retry: bool = True, timeout: float | None = None
    ) -> object:
        """Call with bounded retries on UNAVAILABLE (safe: every mutating call is idempotent)."""
        delay = 0.2
        for attempt in range(self._retries + 1):
            try:
                return method(request, timeout=timeout or self._timeout)  # type: ignore[operator]
            except grpc.RpcError as exc:
                final = attempt == self._retries or is_handshake_failure(self._transport, exc.details() or "")
                if not retry or exc.code() not in _RETRYABLE or final:
                    raise _wrap(exc, self._transport) from None
                time.sleep(delay)
                delay = min(delay * 2, 3.0)
        raise AssertionError("unreachable")

    def whoami(self) -> access_pb2.WhoAmIResponse:
        """Who the coordinator takes this client for: the user of its API key, and the key's id."""
        response = self._call(self._access.WhoAmI, access_pb2.WhoAmIRequest())
        return response  # type: ignore[return-value]

    # -- scenarios -----------------------------------------------------------------------------

    def put_scenario(
        self,
        scenario_id: str,
        *,
        script: str,
        name: str = "",
        settings: scenario_pb2.ScenarioSettings | None = None,
        project_key: str = "",
        expected_revision: int | None = None,
        validate_only: bool = False,
    ) -> scenario_pb2.Scenario:
        """Create the scenario (in ``project_key``; empty: "default"), or update its script (and
        settings when given, which replace the stored ones whole) when it exists.

        ``expected_revision``: the revision the caller read, so that a change made by someone else
        since is not overwritten. 0 only creates (a scenario created meanwhile is refused); another
        number only updates, and only while the scenario is still at that revision. A refusal is
        ClientError ABORTED and nothing changes: read it again, merge, retry.

        ``validate_only``: the coordinator makes every check of the call (fields, limits, roles,
        run_as, expected_revision) and answers the scenario as it would store it, writing nothing."""
        if expected_revision is None or expected_revision == 0:
            try:
                response = self._call(
                    self._scenarios.CreateScenario,
                    scenario_pb2.CreateScenarioRequest(
                        scenario_id=scenario_id,
                        name=name or scenario_id,
                        script=script,
                        settings=settings,
                        project_key=project_key,
                        validate_only=validate_only,
                    ),
                )
                return response.scenario  # type: ignore[attr-defined,no-any-return]
            except ClientError as exc:
                if exc.code != grpc.StatusCode.ALREADY_EXISTS:
                    raise
                if expected_revision == 0:
                    raise ClientError(
                        grpc.StatusCode.ABORTED,
                        f"scenario {scenario_id!r} changed since it was read: expected revision 0 (absent), "
                        f"but it already exists ({exc.details}); read it again, merge, and retry",
                    ) from None
        request = scenario_pb2.UpdateScenarioRequest(
            scenario_id=scenario_id,
            script=script,
            expected_revision=expected_revision,
            validate_only=validate_only,
        )
        if name:
            request.name = name
        if settings is not None:
            request.settings.CopyFrom(settings)
        return self._call(self._scenarios.UpdateScenario, request).scenario  # type: ignore[attr-defined,no-any-return]

    def get_scenario(self, scenario_id: str) -> scenario_pb2.Scenario:
        response = self._call(
            self._scenarios.GetScenario, scenario_pb2.GetScenarioRequest(scenario_id=scenario_id)
        )
        return response.scenario  # type: ignore[attr-defined,no-any-return]

    def _every(self, method: object, request: Any, field: str) -> list[Any]:
        """Follow page tokens until the last page; every item of ``field``."""
        out: list[Any] = []
        while True:
            response: Any = self._call(method, request)
            out.extend(getattr(response, field))
            if not response.next_page_token:
                return out
            request.page_token = response.next_page_token

    def list_scenarios(self, project_key: str = "") -> list[scenario_pb2.Scenario]:
        """Every scenario the caller may read; with ``project_key``, those of that project."""
        request = scenario_pb2.ListScenariosRequest(project_key=project_key, page_size=1000)
        return self._every(self._scenarios.ListScenarios, request, "scenarios")

    def delete_scenario(self, scenario_id: str) -> None:
        self._call(
            self._scenarios.DeleteScenario, scenario_pb2.DeleteScenarioRequest(scenario_id=scenario_id)
        )

    # -- runs ----------------------------------------------------------------------------------

    def run(
        self,
        scenario_id: str,
        params: Mapping[str, str] | None = None,
        *,
        idempotency_key: str = "",
        dry_run: bool = False,
    ) -> run_pb2.TriggerFire:
        """Fire the scenario; the fire (with its run id, unless it was cancelled).

        Without ``idempotency_key`` one is generated for this call. Either way the same key goes
        with every retry of the call (after UNAVAILABLE or a deadline), so a lost answer never
        starts two runs. The coordinator remembers a key at least 24 hours (currently for the life
        of its store): the same key with the same request answers the first fire; with another
        request, ALREADY_EXISTS.

        ``dry_run``: the run checks every write against the targets' live schema and writes nothing;
        its ``dry_run_report`` says what it would have written and the problems found.
        """
        request = run_pb2.RunScenarioRequest(
            scenario_id=scenario_id,
            params=dict(params or {}),
            idempotency_key=idempotency_key or f"cli-{uuid.uuid4()}",
            dry_run=dry_run,
        )
        return self._call(self._runs.RunScenario, request).fire  # type: ignore[attr-defined,no-any-return]

    def replay_run(
        self, run_id: str, connections: Mapping[str, str] | None = None, *, idempotency_key: str = ""
    ) -> run_pb2.TriggerFire:
        """Replay a finished run (RunService.ReplayRun); the key goes with every retry of the call,
        as for :meth:`run`."""
        request = run_pb2.ReplayRunRequest(
            run_id=run_id,
            connections=dict(connections or {}),
            idempotency_key=idempotency_key or f"cli-{uuid.uuid4()}",
        )
        return self._call(self._runs.ReplayRun, request).fire  # type: ignore[attr-defined,no-any-return]

    def get_fire(self, fire_id: str) -> run_pb2.TriggerFire:
        response = self._call(self._runs.GetTriggerFire, run_pb2.GetTriggerFireRequest(fire_id=fire_id))
        return response.fire  # type: ignore[attr-defined,no-any-return]

    def get_run(self, run_id: str) -> run_pb2.Run:
        return self._call(self._runs.GetRun, run_pb2.GetRunRequest(run_id=run_id)).run  # type: ignore[attr-defined,no-any-return]

    def list_runs(
        self,
        scenario_id: str = "",
        limit: int = 20,
        *,
        project_key: str = "",
        states: Sequence[run_pb2.RunState] = (),
    ) -> list[run_pb2.Run]:
        """The newest runs first, at most ``limit``: of ``scenario_id`` (empty: every scenario the
        caller may read), of ``project_key`` (empty: every project), in one of ``states`` (the
        contract's RunState values; empty: any)."""
        request = run_pb2.ListRunsRequest(
            scenario_id=scenario_id, page_size=limit, project_key=project_key, states=list(states)
        )
        response = self._call(self._runs.ListRuns, request)
        return list(response.runs)  # type: ignore[attr-defined]

    def write_batches(self, run_id: str) -> list[run_pb2.WriteBatch]:
        """Every batch the run wrote (or replayed from its write ledger), every page, in order."""
        request = run_pb2.ListWriteBatchesRequest(run_id=run_id, page_size=1000)
        return self._every(self._runs.ListWriteBatches, request, "batches")

    def purge_run(self, run_id: str, *, dry_run: bool = False) -> run_pb2.PurgeRunResponse:
        """Undo what a finished run wrote, newest first (with ``dry_run``: count it): rows it
        inserted deleted, rows its upserts changed put back (``rows_left``: changed since, left
        alone), REST resources deleted through the connection's declared undo, files and assets
        removed. What cannot be undone (statements, a REST connection without an undo) is listed
        in ``skipped`` and ``skipped_connections``; ``failures`` is empty when everything undoable
        was undone. A purge cut short resumes when called again."""
        request = run_pb2.PurgeRunRequest(run_id=run_id, dry_run=dry_run)
        # A large run takes a while; a retry after a lost answer only finds less to purge.
        return self._call(self._runs.PurgeRun, request, timeout=max(self._timeout, 3600))  # type: ignore[return-value]

    def list_purges(self, run_id: str = "", *, limit: int = 0) -> list[run_pb2.PurgeRecord]:
        """The purges of runs, newest first (the periodic pass's and those asked for); with
        ``run_id``, that run's. ``limit``: at most 500 (0: 50)."""
        request = run_pb2.ListPurgesRequest(run_id=run_id, limit=limit)
        return list(self._call(self._runs.ListPurges, request).purges)  # type: ignore[attr-defined]

    def get_run_trace(self, run_id: str) -> RunTrace:
        """The spans kept for the run (see ``RunTrace``): empty when tracing was off. NOT_FOUND for
        an unknown run, PERMISSION_DENIED as for ``get_run``."""
        response = self._call(self._runs.GetRunTrace, run_pb2.GetRunTraceRequest(run_id=run_id))
        return RunTrace(run_id, response)  # type: ignore[arg-type]

    def run_assets(self, run_id: str) -> list[asset_pb2.RunAsset]:
        """The files run ``run_id`` kept (its assets), by name; empty when it kept none."""
        response = self._call(self._runs.ListRunAssets, asset_pb2.ListRunAssetsRequest(run_id=run_id))
        return list(response.assets)  # type: ignore[attr-defined]

    def download_run_asset(
        self, run_id: str, name: str
    ) -> tuple[asset_pb2.RunAsset, Generator[bytes, None, None]]:
        """One asset's metadata and its content in chunks (read the chunks before the next call;
        ``close()`` them to stop early: that cancels the call, which would otherwise stay open
        until the generator is collected). NOT_FOUND (ClientError) for an unknown run or name,
        raised here, before any chunk."""
        request = asset_pb2.DownloadRunAssetRequest(run_id=run_id, name=name)
        try:
            stream = self._runs.DownloadRunAsset(request, timeout=max(self._timeout, 600))
            first = next(stream)
        except grpc.RpcError as exc:
            raise _wrap(exc, self._transport) from None
        except StopIteration:
            message = f"the download of {name!r} ended before it began"
            raise ClientError(grpc.StatusCode.UNKNOWN, message) from None

        def chunks() -> Generator[bytes, None, None]:
            try:
                if first.chunk:
                    yield first.chunk
                for message in stream:
                    yield message.chunk
            except grpc.RpcError as exc:
                raise _wrap(exc, self._transport) from None
            finally:
                stream.cancel()  # a no-op once the stream has ended

        return first.asset, chunks()

    def abort(self, run_id: str, reason: str = "") -> run_pb2.AbortRunResponse:
        return self._call(self._runs.AbortRun, run_pb2.AbortRunRequest(run_id=run_id, reason=reason))  # type: ignore[return-value]

    def stream_logs(
        self,
        run_id: str,
        *,
        after: int = 0,
        follow: bool = True,
        reconnect_seconds: float = 60.0,
        step: str = "",
    ) -> Iterator[LogEvent | RunEnded]:
        """Log lines, then one RunEnded. Resumes after the last line seen when the connection
        drops, so a follower sees every line once, in order. ``step`` (a step's number or name):
        only the lines written while that step was open."""
        last = after
        gave_up_at: float | None = None
        while True:
            request = run_pb2.StreamRunLogsRequest(
                run_id=run_id, after_sequence=last, follow=follow, step=step
            )
            try:
                for message in self._runs.StreamRunLogs(request):
                    gave_up_at = None
                    if message.HasField("line"):
                        if message.line.sequence <= last:
                            continue
                        last = message.line.sequence
                        yield LogEvent(message.line)
                    else:
                        yield RunEnded(message.end)
                        return
            except grpc.RpcError as exc:
                if exc.code() not in _RETRYABLE or is_handshake_failure(self._transport, exc.details() or ""):
                    raise _wrap(exc, self._transport) from None
                gave_up_at = gave_up_at or time.monotonic() + reconnect_seconds
                if time.monotonic() > gave_up_at:
                    raise _wrap(exc, self._transport) from None
                time.sleep(0.5)
                continue
            raise ClientError(grpc.StatusCode.UNKNOWN, "the log stream ended without a terminal event")

    def wait(self, run_id: str) -> run_pb2.Run:
        """Block until the run ends (rides the log stream, no polling); return it."""
        # An "after" past any line asks for the terminal event alone.
        for event in self.stream_logs(run_id, after=2**62, follow=True):
            if isinstance(event, RunEnded):
                return event.run
        raise AssertionError("unreachable")

    # -- templates -----------------------------------------------------------------------------

    def put_template(
        self,
        source: str,
        *,
        allow_update: bool = True,
        project_key: str = "default",
        shared: bool | None = None,
        expected_revision: int | None = None,
        validate_only: bool = False,
    ) -> template_pb2.Template:
        """Create or update a template of ``project_key`` (``shared``: share it with every project,
        which needs ADMIN there; None leaves it as it is).

        ``expected_revision``: put it only if the template is still at the revision the caller read
        (0: only if it does not exist yet); otherwise ClientError ABORTED and nothing changes.

        ``validate_only``: the coordinator makes every check of the put (the document, limits,
        roles, sharing, expected_revision) and answers the template as it would store it, writing
        nothing; it counts as a push for the coordinator's rate limit."""
        request = template_pb2.PutTemplateRequest(
            source=source,
            allow_update=allow_update,
            project_key=project_key,
            shared=shared,
            expected_revision=expected_revision,
            validate_only=validate_only,
        )
        return self._call(self._templates.PutTemplate, request).template  # type: ignore[attr-defined,no-any-return]

    def get_template(self, template_id: str, version: int = 0) -> template_pb2.Template:
        """The template's latest version, or version ``version`` (or the one ``tmpl_x@N`` names):
        ``revision`` is its number."""
        request = template_pb2.GetTemplateRequest(template_id=template_id, version=version)
        return self._call(self._templates.GetTemplate, request).template  # type: ignore[attr-defined,no-any-return]

    def list_template_versions(self, template_id: str) -> list[template_pb2.TemplateVersion]:
        """Every version of the template, newest first (a deleted template's too)."""
        request = template_pb2.ListTemplateVersionsRequest(template_id=template_id)
        return self._every(self._templates.ListTemplateVersions, request, "versions")

    def list_templates(self, project_key: str = "") -> list[template_pb2.Template]:
        """Every template the caller may read; with ``project_key``, those its runs may use."""
        request = template_pb2.ListTemplatesRequest(project_key=project_key)
        return self._every(self._templates.ListTemplates, request, "templates")

    def delete_template(self, template_id: str) -> None:
        self._call(
            self._templates.DeleteTemplate, template_pb2.DeleteTemplateRequest(template_id=template_id)
        )

    def preview_template(
        self,
        template_id: str = "",
        *,
        source: str = "",
        count: int = 5,
        seed: int | None = None,
        project_key: str = "",
        version: int = 0,
    ) -> list[dict[str, object]]:
        """Sample rows of a stored template (of one version with ``version`` or ``tmpl_x@N``), or of
        ``source`` as a run of ``project_key`` (empty: "default") would generate them."""
        request = template_pb2.PreviewTemplateRequest(
            template_id=template_id, source=source, count=count, project_key=project_key, version=version
        )
        if seed is not None:
            request.seed = seed
        response = self._call(self._templates.PreviewTemplate, request)
        return [json.loads(row) for row in response.rows_json]  # type: ignore[attr-defined]

    # -- connections ---------------------------------------------------------------------------

    def create_connection(self, request: connection_pb2.CreateConnectionRequest) -> connection_pb2.Connection:
        return self._call(self._connections.CreateConnection, request).connection  # type: ignore[attr-defined,no-any-return]

    def get_connection(self, connection_id: str) -> connection_pb2.Connection:
        request = connection_pb2.GetConnectionRequest(connection_id=connection_id)
        return self._call(self._connections.GetConnection, request).connection  # type: ignore[attr-defined,no-any-return]

    def list_connections(self, project_key: str = "") -> list[connection_pb2.Connection]:
        """Every connection the caller may read; with ``project_key``, those its runs may use."""
        request = connection_pb2.ListConnectionsRequest(project_key=project_key)
        return self._every(self._connections.ListConnections, request, "connections")

    def delete_connection(self, connection_id: str) -> None:
        request = connection_pb2.DeleteConnectionRequest(connection_id=connection_id)
        self._call(self._connections.DeleteConnection, request)

    def test_connection(self, connection_id: str) -> connection_pb2.TestConnectionResponse:
        request = connection_pb2.TestConnectionRequest(connection_id=connection_id)
        return self._call(self._connections.TestConnection, request)  # type: ignore[return-value]

    # -- workspace -----------------------------------------------------------------------------

    def upload_file(
        self,
        path: str,
        data: bytes,
        *,
        overwrite: bool = False,
        project_key: str = "default",
        shared: bool | None = None,
    ) -> workspace_pb2.WorkspaceFile:
        """Store ``data`` as workspace file ``path`` of ``project_key`` (streamed in 1 MiB chunks;
        ``shared``: share it with every project, which needs ADMIN there; None: as it is)."""

        def messages() -> Iterator[workspace_pb2.UploadFileRequest]:
            header = workspace_pb2.UploadHeader(
                path=path, size_bytes=len(data), overwrite=overwrite, project_key=project_key, shared=shared
            )
            yield workspace_pb2.UploadFileRequest(header=header)
            for start in range(0, len(data), _CHUNK):
                yield workspace_pb2.UploadFileRequest(chunk=data[start : start + _CHUNK])

        try:
            return self._workspace.UploadFile(messages(), timeout=max(self._timeout, 300)).file  # type: ignore[no-any-return]
        except grpc.RpcError as exc:
            raise _wrap(exc, self._transport) from None

    def download_file(self, path: str) -> tuple[workspace_pb2.WorkspaceFile, bytes]:
        meta = workspace_pb2.WorkspaceFile()
        parts: list[bytes] = []
        try:
            for message in self._workspace.DownloadFile(workspace_pb2.DownloadFileRequest(path=path)):
                if message.HasField("file"):
                    meta = message.file
                parts.append(message.chunk)
        except grpc.RpcError as exc:
            raise _wrap(exc, self._transport) from None
        return meta, b"".join(parts)

    def list_files(self, prefix: str = "", project_key: str = "") -> list[workspace_pb2.WorkspaceFile]:
        """Every file the caller may read; with ``project_key``, those its runs may read."""
        request = workspace_pb2.ListFilesRequest(prefix=prefix, project_key=project_key)
        return self._every(self._workspace.ListFiles, request, "files")

    def delete_file(self, path: str) -> None:
        self._call(self._workspace.DeleteFile, workspace_pb2.DeleteFileRequest(path=path))

    # -- the scenario API: projects, scenario objects, waits (see _projects, _scenarios, _runs) ----

    def get_project(self, key: str) -> Project:
        """The project (NOT_FOUND when it does not exist or the caller has no role in it)."""
        from seedbed.client._projects import get_project

        return get_project(self, key)

    def get_default_project(self) -> Project:
        """The project "default", which always exists."""
        from seedbed.client._projects import DEFAULT_PROJECT

        return self.get_project(DEFAULT_PROJECT)

    def list_projects(self) -> list[Project]:
        """The projects the caller has a role in (every project for a superuser)."""
        from seedbed.client._projects import list_projects

        return list_projects(self)

    def wait_for_runs(
        self,
        fires_or_runs: Sequence[TriggerFire | ScenarioRun],
        *,
        no_fail: bool = True,
        on_update: Callable[[int, TriggerFire | ScenarioRun], None] | None = None,
    ) -> list[ScenarioRun | None]:
        """Wait for several fires and runs at once, on one WatchRuns stream: the runs in the same
        order, each with its outcome (None for a fire that was cancelled). Without ``no_fail``,
        once all ended, raise for the first one cancelled or not SUCCESS. ``on_update(position,
        fire_or_run)`` sees every change, e.g. to draw a live table."""
        from seedbed.client._runs import wait_all

        return wait_all(self, fires_or_runs, no_fail=no_fail, on_update=on_update)

    def update_scenario_settings(
        self, scenario_id: str, settings: scenario_pb2.ScenarioSettings
    ) -> scenario_pb2.Scenario:
        """Replace the scenario's settings whole; the scenario as saved."""
        request = scenario_pb2.UpdateScenarioRequest(scenario_id=scenario_id, settings=settings)
        return self._call(self._scenarios.UpdateScenario, request).scenario  # type: ignore[attr-defined,no-any-return]

    # -- scenario status (the `seedbed scenario` commands) ----------------------------------------

    def get_scenario_status(self, scenario_id: str) -> scenario_pb2.GetScenarioStatusResponse:
        """Where the scenario stands, as the contract says it: running or not (its current runs,
        its queued fires), the next scheduled run and its trigger, the last outcome. NOT_FOUND for
        an unknown scenario. ``Scenario.get_status()`` answers the same as a dataclass."""
        request = scenario_pb2.GetScenarioStatusRequest(scenario_id=scenario_id)
        return self._call(self._scenarios.GetScenarioStatus, request)  # type: ignore[return-value]

    # -- access: projects, users, roles, API keys ------------------------------------------------

    def create_project(self, key: str, *, name: str = "", description: str = "") -> access_pb2.Project:
        """Create project ``key`` (superuser; ``name`` defaults to the key)."""
        request = access_pb2.CreateProjectRequest(key=key, name=name, description=description)
        return self._call(self._access.CreateProject, request).project  # type: ignore[attr-defined,no-any-return]

    def describe_project(self, key: str) -> access_pb2.GetProjectResponse:
        """The project and the caller's role in it, as contract messages (``get_project`` answers
        the scenario API's object); NOT_FOUND when it does not exist or the caller has no role."""
        request = access_pb2.GetProjectRequest(key=key)
        return self._call(self._access.GetProject, request)  # type: ignore[return-value]

    def create_user(
        self, user_id: str, *, display_name: str = "", email: str = "", superuser: bool = False
    ) -> access_pb2.User:
        """Create a user (superuser); they have no role anywhere until ``set_membership``."""
        request = access_pb2.CreateUserRequest(
            user_id=user_id, display_name=display_name, email=email, superuser=superuser
        )
        return self._call(self._access.CreateUser, request).user  # type: ignore[attr-defined,no-any-return]

    def get_user(self, user_id: str) -> access_pb2.User:
        """A user and their roles (yourself, or anyone for a superuser)."""
        request = access_pb2.GetUserRequest(user_id=user_id)
        return self._call(self._access.GetUser, request).user  # type: ignore[attr-defined,no-any-return]

    def list_users(self) -> list[access_pb2.User]:
        """Every user (superuser)."""
        response = self._call(self._access.ListUsers, access_pb2.ListUsersRequest())
        return list(response.users)  # type: ignore[attr-defined]

    def set_membership(self, user_id: str, project_key: str, role: access_pb2.Role) -> access_pb2.User:
        """Give ``user_id`` ``role`` in ``project_key`` (ROLE_UNSPECIFIED removes them from it);
        the user as saved."""
        request = access_pb2.SetMembershipRequest(user_id=user_id, project_key=project_key, role=role)
        return self._call(self._access.SetMembership, request).user  # type: ignore[attr-defined,no-any-return]

    def create_api_key(self, *, user_id: str = "", description: str = "") -> access_pb2.CreateApiKeyResponse:
        """A new API key for ``user_id`` (another user: superuser; empty: the caller). The answer
        carries the secret, which the coordinator never shows again."""
        request = access_pb2.CreateApiKeyRequest(user_id=user_id, description=description)
        return self._call(self._access.CreateApiKey, request)  # type: ignore[return-value]

    def list_api_keys(self, user_id: str = "") -> list[access_pb2.ApiKey]:
        """The caller's API keys, or ``user_id``'s (superuser); revoked ones included."""
        response = self._call(self._access.ListApiKeys, access_pb2.ListApiKeysRequest(user_id=user_id))
        return list(response.api_keys)  # type: ignore[attr-defined]

    def revoke_api_key(self, api_key_id: str) -> access_pb2.ApiKey:
        """Revoke an API key for good (its owner, or a superuser); the key as revoked."""
        request = access_pb2.RevokeApiKeyRequest(api_key_id=api_key_id)
        return self._call(self._access.RevokeApiKey, request).api_key  # type: ignore[attr-defined,no-any-return]
