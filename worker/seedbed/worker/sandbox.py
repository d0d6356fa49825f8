"""The Docker sandbox driver: run one attempt of a scenario script in a hardened container.

    driver = DockerSandboxDriver()                      # or DockerSandboxDriver("unix:///…")
    for event in driver.run(request, cancel=stop_event):
        ...                                             # Started, Output…, then one Finished

Exceptions (raised by helpers such as `ensure_image` and `sweep`; `run()` never raises for a
per-run failure, it yields `Finished(outcome=INFRASTRUCTURE, error=…)` instead):

    SandboxError
    ├── ImageBuildError          building the sandbox image failed (`step`, `output`)
    ├── RequirementsError        (also a ValueError) the script's `# requirements:` header is
    │                            invalid or cannot be met (`line`, `package`): SCRIPT_ERROR
    ├── EngineUnavailableError   the Docker engine cannot be reached (`url`)
    ├── RuntimeUnavailableError  the engine lacks the runtime asked for (`runtime`, `available`):
    │                            INFRASTRUCTURE, and the coordinator refuses to start
    └── ProtocolError            a frame from the sandbox broke the channel protocol (internal)

How a run goes: resolve the container runtime (runc, runsc or auto; see `_sandbox_hardening`;
the first line after `Started` says which); pick the image — the sandbox image, or, when the
script has a `# requirements:` header, the image derived from it with those packages (both by
content hash, built on first use in a thread while `Output` lines of stream "system" report
progress; see `seedbed.worker.images`); a bad header ends the attempt as SCRIPT_ERROR with its line, a failed
build as INFRASTRUCTURE with the step and its output;
create the container with hardened defaults (non-root, no capabilities, no-new-privileges,
Seedbed's seccomp profile, read-only root with a size-capped noexec tmpfs, no core dumps,
pids/memory/CPU/nofile limits, no swap, no network, init, no log driver); attach to its
stdin/stdout/stderr *before* starting it (nothing is lost, and the HTTP client has no read-ahead
to steal); start it; send the start frame (script and params travel only over stdin); then
multiplex with `select`: container output → frames → `Output` batches, SDK calls → replies,
while enforcing the wall-clock deadline and the cancel event. The container is always killed
and removed in `finally`, also when the consumer stops iterating or a KeyboardInterrupt (Ray's
task cancellation) arrives while the generator waits. With `SandboxRequest.traceparent`, the phases
are spans and the container's environment holds TRACEPARENT (see `_sandbox_spans`).

Rejected: `container.logs(stream=True)` (can hang after exit, no stdin); `container.wait(timeout)`
as a deadline (it is an HTTP read timeout, not a kill timer); `tty=True` (merges streams and
mangles bytes); argv or environment for the script (visible in `docker inspect`).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import queue
import re
import select
import socket
import threading
import time
import uuid
from collections.abc import Callable, Generator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import docker
import docker.errors
import docker.types
import requests.exceptions

from seedbed.worker._channel import StreamDemuxer, encode_start
from seedbed.worker._replay import check_image
from seedbed.worker._requirements import HeaderRequirement, RequirementsError, header_requirements
from seedbed.worker._sandbox_errors import (
    EngineUnavailableError,
    ImageBuildError,
    ProtocolError,
    RuntimeUnavailableError,
    SandboxError,
)
from seedbed.worker._sandbox_fake import FakeSandboxDriver
from seedbed.worker._sandbox_hardening import (
    DEFAULT_RUNTIME,
    SandboxRuntime,
    container_options,
    resolve_runtime,
)
from seedbed.worker._sandbox_janitor import (
    LABEL_ATTEMPT,
    LABEL_DEADLINE,
    LABEL_MANAGED,
    LABEL_RUN,
    kill_quietly,
    remove_quietly,
    sweep_containers,
)
from seedbed.worker._sandbox_session import EndState, RunSession, classify, utcnow
from seedbed.worker._sandbox_spans import SandboxSpans
from seedbed.worker._sandbox_types import (
    CallHandler,
    Finished,
    Outcome,
    Output,
    OutputLine,
    SandboxDriver,
    SandboxEvent,
    SandboxLimits,
    SandboxRequest,
    ScriptError,
    Started,
)
from seedbed.worker.images import DerivedImagePolicy, ensure_derived_image, ensure_image, image_present

__all__ = [
    "DockerSandboxDriver",
    "EngineUnavailableError",
    "FakeSandboxDriver",
    "Finished",
    "ImageBuildError",
    "Outcome",
    "Output",
    "OutputLine",
    "ProtocolError",
    "RequirementsError",
    "RuntimeUnavailableError",
    "SandboxDriver",
    "SandboxError",
    "SandboxEvent",
    "SandboxLimits",
    "SandboxRequest",
    "SandboxRuntime",
    "ScriptError",
    "Started",
    "remove_orphans",
]

logger = logging.getLogger(__name__)

DEFAULT_DOCKER_URL = "unix:///var/run/docker.sock"
SANDBOX_USER = "10001:10001"
_BATCH_SECONDS = 0.05
_BATCH_LINES = 500
_RECV_BYTES = 256 * 2**10
# Replies the sandbox does not read pile up here; past the cap the sandbox is misbehaving.
_MAX_OUTBOUND_BYTES = 16 * 2**20
# After the output stream ends, how long a container may take to be reported as exited.
_EXIT_POLL_SECONDS = 0.25
_DRAIN_AFTER_KILL_SECONDS = 1.0
# How long a kill may take while the attach stream is drained (the engine's own API timeout is 60 s).
_KILL_DRAIN_SECONDS = 30.0
_NAME_UNSAFE = re.compile(r"[^a-zA-Z0-9_.-]+")
# How often the wait for an image build checks for progress, the cancel event and the deadline.
_BUILD_POLL_SECONDS = 0.1
# How long an attempt that ends during an image build waits for the build to stop.
_BUILD_STOP_SECONDS = 30.0


def _seconds_text(delta: timedelta) -> str:
    seconds = delta.total_seconds()
    return f"{seconds:g}s" if seconds < 120 else f"{seconds / 60:g} min"


class DockerSandboxDriver:
    """Runs attempts in containers of the local (or given) Docker engine.

    `docker_url` defaults to `DOCKER_HOST`, else the local socket; it is resolved once, here.
    `image` pins an image tag and skips `ensure_image` (tests, air-gapped deployments); a script
    with a `# requirements:` header then runs in an image derived from that one. `runtime` is
    "runc" (the default), "runsc" (gVisor; refused when the engine lacks it), "auto" (runsc when
    the engine has it), or another runtime name the engine has.
    """

    def __init__(
        self,
        docker_url: str | None = None,
        *,
        image: str | None = None,
        context_dir: Path | None = None,
        cache_dir: Path | None = None,
        runtime: str = DEFAULT_RUNTIME,
        image_policy: DerivedImagePolicy | None = None,
    ) -> None:
        self._url = docker_url or os.environ.get("DOCKER_HOST") or DEFAULT_DOCKER_URL
        # No URL given: the environment decides, TLS included (DOCKER_HOST, DOCKER_TLS_VERIFY and
        # DOCKER_CERT_PATH, as for the docker CLI: a Docker daemon sidecar speaking TLS).
        self._from_env = not docker_url
        self._runtime_choice = runtime or DEFAULT_RUNTIME
        self._image = image
        self._context_dir = context_dir
        self._cache_dir = cache_dir
        # Caps of the images derived for `# requirements:` headers (size, cache, age).
        self._image_policy = image_policy if image_policy is not None else DerivedImagePolicy()
        self._client: docker.DockerClient | None = None
        self._runtime: SandboxRuntime | None = None
        self._lock = threading.Lock()
        self._active: dict[tuple[str, int], threading.Event] = {}

    @property
    def docker_url(self) -> str:
        return self._url

    # -- engine ------------------------------------------------------------------------------

    def client(self) -> docker.DockerClient:
        """The shared Docker client, connected on first use; EngineUnavailableError if down."""
        with self._lock:
            if self._client is None:
                try:
                    if self._from_env and os.environ.get("DOCKER_HOST"):
                        client = docker.from_env(timeout=60)
                    else:
                        client = docker.DockerClient(base_url=self._url, timeout=60)
                    client.ping()
                except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
                    raise EngineUnavailableError(self._url, _short(exc)) from exc
                self._client = client
            return self._client

    def runtime(self) -> SandboxRuntime:
        """The container runtime sandboxes run under, resolved against the engine once.
        Raises EngineUnavailableError, or RuntimeUnavailableError if the engine lacks it."""
        client = self.client()
        with self._lock:
            if self._runtime is None:
                try:
                    runtimes = client.info().get("Runtimes") or {}
                except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
                    raise EngineUnavailableError(self._url, _short(exc)) from exc
                self._runtime = resolve_runtime(self._runtime_choice, runtimes)
            return self._runtime

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    def abort(self, run_id: str, attempt: int | None = None) -> bool:
        """Ask running attempts of `run_id` to stop; they end with Finished(ABORTED)."""
        found = False
        for (active_run, active_attempt), event in list(self._active.items()):
            if active_run == run_id and attempt in (None, active_attempt):
                event.set()
                found = True
        return found

    # -- one run -----------------------------------------------------------------------------

    def run(
        self,
        request: SandboxRequest,
        *,
        cancel: threading.Event | None = None,
        on_call: CallHandler | None = None,
    ) -> Iterator[SandboxEvent]:
        """Run one attempt; yield Started, Output batches and exactly one Finished. With a
        `request.traceparent`, its phases are spans (see `_sandbox_spans`), ended before Finished."""
        session = RunSession(request.limits, on_call, background_calls=True)
        spans = SandboxSpans(request.traceparent, session)
        events = self._run(request, cancel, session, spans)
        # `yield from`, by hand, to end the spans before Finished is handed out: what the consumer
        # throws in (Ray's cancel, a KeyboardInterrupt) reaches `_run`, which answers Finished.
        try:
            event = next(events)
            while True:
                if isinstance(event, Finished):
                    spans.finish(event)
                try:
                    yield event
                except GeneratorExit:
                    raise
                except BaseException as exc:  # noqa: BLE001 - thrown in by the consumer: handed on
                    event = events.throw(exc)
                else:
                    event = next(events)
        except StopIteration:
            return
        finally:
            events.close()  # the consumer stopped early: `_run`'s finally removes the container
            spans.finish(None)  # nothing left open when Finished came

    def _run(
        self,
        request: SandboxRequest,
        cancel: threading.Event | None,
        session: RunSession,
        spans: SandboxSpans,
    ) -> Generator[SandboxEvent, None, None]:
        cancel = cancel if cancel is not None else threading.Event()
        key = (request.run_id, request.attempt)
        self._active[key] = cancel
        client: docker.DockerClient | None = None
        container_id: str | None = None
        sock: Any = None
        waker: socket.socket | None = None
        woken: socket.socket | None = None
        began = time.monotonic()
        try:
            try:
                client = self.client()
                runtime = self.runtime()
                spans.image_check()
                picked = yield from self._pick_image(client, request, session, cancel)
                if isinstance(picked, Finished):
                    yield picked
                    return
                image = picked
                check_image(request.image, image)  # a replay's image, or PinnedImageError
                spans.image_picked(image)
                spans.sandbox(image, runtime)
                # The first line after Started (image builds report before it).
                session.system(runtime.describe(), "info")
                wall_deadline, deadline, limit_text = self._deadline(request)
                if deadline <= time.monotonic():
                    yield self._finish(
                        session,
                        Outcome.TIMEOUT,
                        None,
                        ScriptError("Timeout", f"{limit_text} had already passed before the sandbox started"),
                    )
                    return
                spans.creating()
                container_id = self._create(
                    client, image, request, wall_deadline, runtime, environment=spans.environment()
                )
                spans.created(container_id)
                spans.starting(container_id)
                sock = client.api.attach_socket(
                    container_id, params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1}
                )
                client.api.start(container_id)
                spans.started(container_id)
                # The script's time counts from its start, not from the image check and create.
                wall_deadline, deadline, limit_text = self._deadline(request)
            except RequirementsError as exc:
                # The script's fault (its header, or packages that cannot be had): not retried.
                yield from _pending(session)
                yield self._finish(
                    session,
                    Outcome.SCRIPT_ERROR,
                    None,
                    ScriptError("RequirementsError", str(exc), line=exc.line),
                )
                return
            except SandboxError as exc:
                yield from _pending(session)
                yield self._finish(
                    session,
                    Outcome.INFRASTRUCTURE,
                    None,
                    ScriptError(type(exc).__name__.removesuffix("Error") or "Sandbox", str(exc)),
                )
                return
            except (docker.errors.DockerException, requests.exceptions.RequestException, OSError) as exc:
                yield from _pending(session)
                yield self._engine_failure(session, "starting the sandbox", exc)
                return
            logger.info(
                "run %s attempt %d: container %s started in %.2fs",
                request.run_id,
                request.attempt,
                container_id[:12],
                time.monotonic() - began,
            )
            yield Started(container_id=container_id, image=image, time=utcnow())
            start = encode_start(
                script=request.script,
                params=request.params,
                run_id=request.run_id,
                attempt=request.attempt,
                run_key=request.run_key,
            )
            try:
                waker, woken = _wakeup_pair()
                session.on_reply(functools.partial(_poke, waker))
                end = yield from self._pump(
                    client, container_id, sock, woken, start, session, cancel, deadline, limit_text
                )
            except (docker.errors.DockerException, requests.exceptions.RequestException, OSError) as exc:
                yield self._engine_failure(session, "running the sandbox", exc)
                return
            outcome, error = classify(end, session, request.limits)
            logger.info(
                "run %s attempt %d: %s (exit %s) after %.2fs",
                request.run_id,
                request.attempt,
                outcome.name,
                end.exit_code,
                time.monotonic() - began,
            )
            yield self._finish(session, outcome, end.exit_code, error)
        except KeyboardInterrupt:
            # Ray cancels a task by raising KeyboardInterrupt in its main thread: stop the sandbox
            # now, hand Finished(ABORTED) to the consumer, and when it asks for more, let the
            # interrupt continue (Ray then reports the task as cancelled; a CLI stops on Ctrl-C).
            logger.info("run %s attempt %d: interrupted, aborting", request.run_id, request.attempt)
            self._remove(client, container_id)
            container_id = None
            yield self._finish(
                session, Outcome.ABORTED, None, ScriptError("Aborted", "the attempt was interrupted")
            )
            raise
        finally:
            self._active.pop(key, None)
            session.close()
            if sock is not None:
                _close_quietly(sock)
            for pair_end in (waker, woken):
                if pair_end is not None:
                    pair_end.close()
            self._remove(client, container_id)

    def _pick_image(
        self,
        client: docker.DockerClient,
        request: SandboxRequest,
        session: RunSession,
        cancel: threading.Event,
    ) -> Generator[Output, None, str | Finished]:
        """The image to run the script in: the sandbox image, or the one derived from it with the
        packages of the script's `# requirements:` header. A build runs in a thread while its
        progress is yielded as "system" lines; when the attempt ends meanwhile (aborted, past its
        deadline, interrupted) a derived image's build is stopped and leaves nothing, and the
        attempt waits up to `_BUILD_STOP_SECONDS` for it (the sandbox image's own build goes on
        and is cached: it is the operator's, not the script's). Returns the tag, or the Finished
        event that ends the attempt; raises RequirementsError (with the header's line), SandboxError, or the
        engine's errors."""
        header = header_requirements(request.script)
        pins = tuple(requirement.spec for requirement in header)
        if request.image and image_present(client, request.image, self._cache_dir):
            return request.image  # a replay's image, still here: nothing to build
        if self._image is not None and not pins:
            return self._image
        pinned = self._image
        stop = threading.Event()

        def build(progress: Callable[[str], None]) -> str:
            if pinned is not None:
                return ensure_derived_image(
                    client,
                    pinned,
                    pins,
                    cache_dir=self._cache_dir,
                    progress=progress,
                    policy=self._image_policy,
                    cancel=stop,
                )
            return ensure_image(
                client,
                context_dir=self._context_dir,
                cache_dir=self._cache_dir,
                requirements=pins,
                progress=progress,
                policy=self._image_policy,
                cancel=stop,
            )

        messages: queue.SimpleQueue[str] = queue.SimpleQueue()
        outcome: list[str | BaseException] = []
        done = threading.Event()

        def work() -> None:
            try:
                outcome.append(build(messages.put))
            except BaseException as exc:  # handed over to the attempt's thread below
                outcome.append(exc)
            finally:
                done.set()

        thread = threading.Thread(target=work, name=f"seedbed-image-{request.run_id}", daemon=True)
        thread.start()
        try:
            while True:
                finished = done.wait(_BUILD_POLL_SECONDS)
                while True:
                    try:
                        session.system(messages.get_nowait(), "info")
                    except queue.Empty:
                        break
                yield from _pending(session)
                if finished:
                    break
                if cancel.is_set():
                    return self._finish(
                        session,
                        Outcome.ABORTED,
                        None,
                        ScriptError(
                            "Aborted",
                            "the run was aborted while its image was being built (the build was stopped)",
                        ),
                    )
                if datetime.now(UTC) >= request.deadline:
                    return self._finish(
                        session,
                        Outcome.TIMEOUT,
                        None,
                        ScriptError(
                            "Timeout",
                            f"the attempt deadline {request.deadline.isoformat()} passed while its image "
                            "was being built (the build was stopped)",
                        ),
                    )
        finally:
            # However the attempt ends here (aborted, timed out, interrupted by Ray's cancel), the
            # build stops with it: pip is killed, the engine's build step too, nothing is tagged.
            if not done.is_set():
                stop.set()
                if not done.wait(_BUILD_STOP_SECONDS):
                    logger.warning(
                        "run %s attempt %d: the image build did not stop within %gs",
                        request.run_id,
                        request.attempt,
                        _BUILD_STOP_SECONDS,
                    )
        result = outcome[0]
        if isinstance(result, RequirementsError):
            raise _with_line(result, header) from result
        if isinstance(result, BaseException):
            raise result
        return result

    def _deadline(self, request: SandboxRequest) -> tuple[datetime, float, str]:
        """The effective wall-clock deadline, the same as a monotonic time, and a text naming
        the limit that sets it: the earlier of the request's deadline and now + timeout."""
        now = datetime.now(UTC)
        by_timeout = now + request.limits.timeout
        # A caller that derives the deadline from the timeout (a moment earlier) means the limit.
        if request.deadline < by_timeout - timedelta(seconds=1):
            when, text = request.deadline, f"the attempt deadline {request.deadline.isoformat()}"
        else:
            when = min(request.deadline, by_timeout)
            text = f"the time limit of {_seconds_text(request.limits.timeout)}"
        return when, time.monotonic() + (when - now).total_seconds(), text

    def _create(
        self,
        client: docker.DockerClient,
        image: str,
        request: SandboxRequest,
        deadline: datetime,
        runtime: SandboxRuntime,
        *,
        environment: dict[str, str],
    ) -> str:
        labels = {
            **request.labels,
            LABEL_MANAGED: "1",
            LABEL_RUN: request.run_id,
            LABEL_ATTEMPT: str(request.attempt),
            # The effective deadline: the janitor may remove the container once it (+ grace) passed.
            LABEL_DEADLINE: deadline.astimezone(UTC).isoformat(),
        }
        name = (
            f"seedbed-{_NAME_UNSAFE.sub('-', request.run_id)[:64]}-{request.attempt}-{uuid.uuid4().hex[:8]}"
        )
        container = client.containers.create(
            image=image,
            name=name,
            user=SANDBOX_USER,
            working_dir="/tmp",
            network_mode="none",
            init=True,
            # No log driver: output reaches the worker through the attach stream only. With json-file,
            # a script writing as fast as it can kept the engine so busy writing its logs that API
            # calls (the kill at the deadline among them) timed out for a minute.
            log_config=docker.types.LogConfig(type="none"),
            stdin_open=True,
            tty=False,
            labels=labels,
            # Only TRACEPARENT (when the run is traced): it names a span, carries no secret. The
            # script and its parameters never travel this way (see the module's doc).
            environment=environment or None,
            hostname="sandbox",
            # Runtime, seccomp, capabilities, read-only root, tmpfs and resource limits.
            **container_options(request.limits, runtime),
        )
        return str(container.id)

    def _pump(
        self,
        client: docker.DockerClient,
        container_id: str,
        sock: Any,
        woken: socket.socket,
        start_frame: bytes,
        session: RunSession,
        cancel: threading.Event,
        deadline: float,
        limit_text: str,
    ) -> Generator[Output, None, EndState]:
        """Move bytes both ways until the container's output ends or it must be stopped. The
        call thread pokes `woken` when a reply is ready: the script waits for that reply, so
        nothing else would end the wait on the socket before its timeout (50 ms per SDK call)."""
        raw: socket.socket = getattr(sock, "_sock", sock)
        raw.setblocking(False)
        outbound = bytearray(start_frame)
        demux = StreamDemuxer()
        last_flush = time.monotonic()
        stopped_by: str | None = None
        overflow_noted = False

        def queue_reply(reply: bytes) -> None:
            nonlocal overflow_noted
            if len(outbound) + len(reply) <= _MAX_OUTBOUND_BYTES:
                outbound.extend(reply)
            elif not overflow_noted:
                overflow_noted = True
                session.system("the sandbox does not read its replies; dropping them", "warning")

        while True:
            now = time.monotonic()
            while session.pending() >= _BATCH_LINES or (
                session.pending() and now - last_flush >= _BATCH_SECONDS
            ):
                batch = session.take_batch(_BATCH_LINES)
                if batch is not None:
                    yield batch
                now = last_flush = time.monotonic()
            if cancel.is_set():
                stopped_by = "abort"
                break
            if now >= deadline:
                stopped_by = "timeout"
                break
            for reply in session.completed_replies():
                queue_reply(reply)
            # While an SDK call is served on its own thread, look for its reply often.
            busy = session.pending() or session.calls_pending
            wait = min(deadline - now, _BATCH_SECONDS if busy else 0.25)
            readable, writable, _ = select.select([raw, woken], [raw] if outbound else [], [], wait)
            if woken in readable:
                _drain(woken)
            if writable:
                try:
                    sent = raw.send(outbound)
                    del outbound[:sent]
                except BlockingIOError:
                    pass
                except OSError:
                    outbound.clear()  # the container closed its stdin; replies are moot
            if raw not in readable:
                continue
            try:
                data = raw.recv(_RECV_BYTES)
            except BlockingIOError:
                continue
            except (ConnectionResetError, OSError):
                data = b""
            if not data:
                break
            for stream, piece in demux.feed(data):
                for reply in session.feed(stream, piece):
                    queue_reply(reply)
        # The attempt is over: no queued call runs now, and the one in flight is stopped.
        session.end_calls()
        if stopped_by is not None:
            # Kill, and collect what the script wrote before it died (bounded in time). Then close
            # the stream: until its last bytes are taken the engine holds the container (inspect,
            # wait and remove would hang on a script that flooded its output).
            _kill_draining(client, container_id, raw, demux, session)
            _close_quietly(sock)
        session.end_of_stream()  # replies to calls cut off by the end are moot
        end = self._await_exit(client, container_id, session, cancel, deadline, stopped_by, limit_text)
        while (batch := session.take_batch(_BATCH_LINES)) is not None:
            yield batch
        return end

    def _await_exit(
        self,
        client: docker.DockerClient,
        container_id: str,
        session: RunSession,
        cancel: threading.Event,
        deadline: float,
        stopped_by: str | None,
        limit_text: str,
    ) -> EndState:
        """Wait for the container to exit (killing it if it must stop) and read its state."""
        while stopped_by is None:
            state = client.api.inspect_container(container_id)["State"]
            if not state.get("Running"):
                break
            # The output ended but the container lives on (it closed its stdout): keep the
            # deadline and the cancel event in force while it finishes.
            if cancel.wait(_EXIT_POLL_SECONDS):
                stopped_by = "abort"
            elif time.monotonic() >= deadline:
                stopped_by = "timeout"
        message = ""
        if stopped_by is not None:
            kill_quietly(client, container_id)
            if stopped_by == "timeout":
                message = (
                    f"the script exceeded {limit_text} and was killed "
                    "(raise the scenario's timeout_seconds if it needs longer)"
                )
            else:
                message = "the run was aborted and its sandbox killed"
            session.system(message, "error" if stopped_by == "timeout" else "warning")
        result = client.api.wait(container_id, timeout=30)
        state = client.api.inspect_container(container_id)["State"]
        exit_code = state.get("ExitCode", result.get("StatusCode"))
        if state.get("OOMKilled"):
            session.system("the kernel killed a process of the sandbox for lack of memory (OOM)", "error")
        return EndState(
            exit_code=exit_code if isinstance(exit_code, int) else None,
            oom_killed=bool(state.get("OOMKilled")),
            stopped_by=stopped_by,  # type: ignore[arg-type]
            stop_message=message,
        )

    def _finish(
        self,
        session: RunSession,
        outcome: Outcome,
        exit_code: int | None,
        error: ScriptError | None,
    ) -> Finished:
        return Finished(
            outcome=outcome,
            exit_code=exit_code,
            error=error,
            logs_truncated=session.logs_truncated,
            dropped_lines=session.dropped_lines,
            warnings=session.warnings,
            time=utcnow(),
        )

    def _engine_failure(self, session: RunSession, doing: str, exc: BaseException) -> Finished:
        logger.warning("Docker engine error while %s: %s", doing, exc)
        if isinstance(exc, requests.exceptions.ConnectionError):
            error = ScriptError("EngineUnavailable", str(EngineUnavailableError(self._url, _short(exc))))
        else:
            error = ScriptError("EngineError", f"Docker engine error while {doing}: {_short(exc)}")
        return self._finish(session, Outcome.INFRASTRUCTURE, None, error)

    def _remove(self, client: docker.DockerClient | None, container_id: str | None) -> None:
        # If this fails, the janitor (sweep) removes the container later, by its labels.
        if client is not None and container_id is not None:
            remove_quietly(client, container_id)

    # -- janitor -----------------------------------------------------------------------------

    def sweep(
        self,
        *,
        older_than_deadline: bool = True,
        grace: timedelta = timedelta(minutes=1),
        now: datetime | None = None,
    ) -> list[str]:
        """Remove managed containers past their deadline + grace (all of them if not
        `older_than_deadline`); return their ids. Raises EngineUnavailableError if the engine
        is down. See `_sandbox_janitor.sweep_containers`."""
        return sweep_containers(self.client(), older_than_deadline=older_than_deadline, grace=grace, now=now)

    def probe(self) -> str | None:
        """None if the engine answers and has the runtime asked for, else what is wrong and what
        to do (for health checks)."""
        try:
            self.runtime()
        except (EngineUnavailableError, RuntimeUnavailableError) as exc:
            return str(exc)
        return None


def remove_orphans(
    docker_url: str | None = None,
    *,
    older_than_deadline: bool = True,
    grace: timedelta = timedelta(minutes=1),
) -> list[str]:
    """The janitor as a function: sweep managed containers of the given engine."""
    driver = DockerSandboxDriver(docker_url)
    try:
        return driver.sweep(older_than_deadline=older_than_deadline, grace=grace)
    finally:
        driver.close()


def _kill_draining(
    client: docker.DockerClient,
    container_id: str,
    raw: socket.socket,
    demux: StreamDemuxer,
    session: RunSession,
) -> None:
    """Kill the container while reading its attach stream until it ends.

    The engine completes a kill only once it has handed the container's last output to the attach
    client. A driver that stopped reading in order to kill a script flooding its output waited on
    the engine while the engine waited on it: the kill timed out, the attempt failed as
    INFRASTRUCTURE long after its deadline, and the container lived on. So the kill runs on a
    thread of its own while this one drains (the session drops what is over the output caps)."""
    killer = threading.Thread(
        target=kill_quietly, args=(client, container_id), name="seedbed-sandbox-kill", daemon=True
    )
    killer.start()
    until = time.monotonic() + _KILL_DRAIN_SECONDS
    tail_until: float | None = None
    while True:
        now = time.monotonic()
        if tail_until is None and not killer.is_alive():
            tail_until = now + _DRAIN_AFTER_KILL_SECONDS
        limit = until if tail_until is None else min(until, tail_until)
        if now >= limit:
            break
        readable, _, _ = select.select([raw], [], [], min(limit - now, 0.1))
        if not readable:
            continue
        try:
            data = raw.recv(_RECV_BYTES)
        except BlockingIOError:
            continue
        except OSError:
            break
        if not data:
            break
        for stream, piece in demux.feed(data):
            session.feed(stream, piece)
    killer.join(max(0.0, until - time.monotonic()))


def _wakeup_pair() -> tuple[socket.socket, socket.socket]:
    """A connected pair of non-blocking sockets: what is sent on the first wakes a select on the second."""
    pair = socket.socketpair()
    for end in pair:
        end.setblocking(False)
    return pair


def _poke(waker: socket.socket) -> None:
    # Failing: already poked (the buffer is full), or the attempt is over: nothing to wake.
    with contextlib.suppress(OSError):
        waker.send(b"!")


def _drain(woken: socket.socket) -> None:
    try:
        while woken.recv(4096):
            pass
    except OSError:  # BlockingIOError: drained
        pass


def _pending(session: RunSession) -> Iterator[Output]:
    """Every line the session still holds, in batches."""
    while (batch := session.take_batch(_BATCH_LINES)) is not None:
        yield batch


def _with_line(exc: RequirementsError, header: tuple[HeaderRequirement, ...]) -> RequirementsError:
    """The error with the header line of the package it names, when it lacks one."""
    if exc.line is not None or exc.package is None:
        return exc
    line = next((requirement.line for requirement in header if requirement.name == exc.package), None)
    return exc if line is None else RequirementsError(exc.reason, line=line, package=exc.package)


def _close_quietly(sock: Any) -> None:
    try:
        sock.close()
        raw = getattr(sock, "_sock", None)
        if raw is not None:
            raw.close()
    except OSError:
        pass


def _short(exc: BaseException, limit: int = 300) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= limit else text[:limit] + "…"
