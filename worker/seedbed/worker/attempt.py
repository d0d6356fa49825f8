"""The worker's single entry point: one attempt of one run, as Ray executes it.

``run_attempt`` takes a serialized ``AttemptSpec`` and yields serialized ``AttemptEvent`` messages
(started, output batches, write batches, run assets in pieces, result). The coordinator wraps it
as a streaming Ray task; nothing here imports the coordinator. Cancellation arrives as
``KeyboardInterrupt`` (Ray's ``cancel``): the sandbox driver's ``finally`` removes the container, then
the interrupt propagates so Ray reports the task as cancelled.

With ``AttemptSpec.trace`` set, the attempt's spans (see `seedbed.worker.tracing`) are recorded under
the coordinator's span for the attempt and go back as ``AttemptEvent.spans``: those finished so far
before each event, the rest before the result. Unset, nothing is recorded.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from google.protobuf.timestamp_pb2 import Timestamp

from seedbed.api.spans import QUEUE_WAIT
from seedbed.api.v1 import asset_pb2, attempt_pb2, run_pb2
from seedbed.worker import tracing
from seedbed.worker._image_cache import DEFAULT_MAX_IMAGE_BYTES, DEFAULT_MAX_UNUSED, DerivedImagePolicy
from seedbed.worker._replay import version_refusal
from seedbed.worker._sandbox_janitor import sweep_images
from seedbed.worker.agent import Agent
from seedbed.worker.sandbox import (
    DockerSandboxDriver,
    EngineUnavailableError,
    Finished,
    Outcome,
    Output,
    RuntimeUnavailableError,
    SandboxDriver,
    SandboxLimits,
    SandboxRequest,
    Started,
    remove_orphans,
)
from seedbed.worker.settings import worker_settings

log = logging.getLogger(__name__)

SANDBOX_RESOURCE = "seedbed_sandbox"
# Declared (plentifully) by every node that runs Seedbed's worker side and reaches a Docker engine:
# the coordinator's small tasks (engine probe, purges, janitor) ask for one unit, so that they never
# land on a node without an engine (the Ray head, the coordinator's own driver node).
WORKER_NODE_RESOURCE = "seedbed_worker_node"
WORKER_NODE_UNITS = 1000

_OUTCOMES = {
    Outcome.SUCCEEDED: attempt_pb2.ATTEMPT_OUTCOME_SUCCEEDED,
    Outcome.SCRIPT_ERROR: attempt_pb2.ATTEMPT_OUTCOME_SCRIPT_ERROR,
    Outcome.TIMEOUT: attempt_pb2.ATTEMPT_OUTCOME_TIMEOUT,
    Outcome.OOM: attempt_pb2.ATTEMPT_OUTCOME_OOM,
    Outcome.KILLED: attempt_pb2.ATTEMPT_OUTCOME_KILLED,
    Outcome.ABORTED: attempt_pb2.ATTEMPT_OUTCOME_ABORTED,
    Outcome.INFRASTRUCTURE: attempt_pb2.ATTEMPT_OUTCOME_INFRASTRUCTURE,
}
_REASONS = {
    Outcome.SCRIPT_ERROR: run_pb2.FAILURE_REASON_SCRIPT_ERROR,
    Outcome.TIMEOUT: run_pb2.FAILURE_REASON_TIMEOUT,
    Outcome.OOM: run_pb2.FAILURE_REASON_OOM,
    Outcome.KILLED: run_pb2.FAILURE_REASON_KILLED,
    Outcome.INFRASTRUCTURE: run_pb2.FAILURE_REASON_INFRASTRUCTURE,
}
_STREAMS = {
    "stdout": run_pb2.LOG_STREAM_STDOUT,
    "stderr": run_pb2.LOG_STREAM_STDERR,
    "system": run_pb2.LOG_STREAM_SYSTEM,
}


def _ts(value: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp


def request_from_spec(spec: attempt_pb2.AttemptSpec) -> SandboxRequest:
    lim = spec.limits
    defaults = SandboxLimits()
    limits = SandboxLimits(
        timeout=timedelta(seconds=lim.timeout_seconds) if lim.timeout_seconds else defaults.timeout,
        memory_bytes=lim.memory_bytes or defaults.memory_bytes,
        nano_cpus=lim.nano_cpus or defaults.nano_cpus,
        pids=lim.pids or defaults.pids,
        nofile=lim.nofile or defaults.nofile,
        tmpfs_bytes=lim.tmpfs_bytes or defaults.tmpfs_bytes,
        max_log_bytes=lim.max_log_bytes or defaults.max_log_bytes,
        max_line_bytes=lim.max_line_bytes or defaults.max_line_bytes,
        max_log_lines=lim.max_log_lines or defaults.max_log_lines,
    )
    # The time limit counts from the sandbox's start (the driver applies it), not from submission:
    # time spent waiting for a slot or creating the container is not the script's. The request's
    # own deadline is only an outer bound.
    deadline = datetime.now(UTC) + limits.timeout + timedelta(minutes=10)
    if spec.HasField("deadline"):
        deadline = min(deadline, spec.deadline.ToDatetime(tzinfo=UTC))
    return SandboxRequest(
        run_id=spec.run_id,
        attempt=spec.attempt,
        run_key=spec.run_key,
        script=spec.script,
        params=dict(spec.params),
        limits=limits,
        deadline=deadline,
        labels={"seedbed.scenario": spec.scenario_id, "seedbed.fencing": str(spec.fencing_token)},
        traceparent=spec.trace.traceparent if spec.HasField("trace") else "",
        image=spec.replay.image if spec.HasField("replay") else "",
    )


def translate(events: Iterator[object], task_id: str = "") -> Iterator[attempt_pb2.AttemptEvent]:
    """Driver events → contract messages, numbering lines per attempt."""
    seq = 0
    node = socket.gethostname()
    for event in events:
        if isinstance(event, Started):
            yield attempt_pb2.AttemptEvent(
                started=attempt_pb2.AttemptStarted(
                    container_id=event.container_id,
                    image=event.image,
                    time=_ts(event.time),
                    node=node,
                    worker_pid=os.getpid(),
                    task_id=task_id,
                )
            )
        elif isinstance(event, Output):
            lines = []
            for line in event.lines:
                seq += 1
                lines.append(
                    run_pb2.LogLine(
                        sequence=seq,
                        stream=_STREAMS.get(line.stream, run_pb2.LOG_STREAM_SYSTEM),
                        text=line.text,
                        time=_ts(line.time),
                        level=line.level,
                        fields=dict(line.fields),
                        trace_id=line.trace_id,
                        span_id=line.span_id,
                    )
                )
            yield attempt_pb2.AttemptEvent(output=attempt_pb2.AttemptOutput(lines=lines))
        elif isinstance(event, Finished):
            result = attempt_pb2.AttemptResult(
                outcome=_OUTCOMES[event.outcome],
                exit_code=event.exit_code if event.exit_code is not None else -1,
                logs_truncated=event.logs_truncated,
                dropped_lines=event.dropped_lines,
                warnings=event.warnings,
                time=_ts(event.time),
            )
            if event.error is not None:
                result.error.CopyFrom(
                    run_pb2.ErrorDetails(
                        reason=_REASONS.get(event.outcome, run_pb2.FAILURE_REASON_UNSPECIFIED),
                        type=event.error.type,
                        message=event.error.message,
                        traceback=event.error.traceback,
                        line=event.error.line or 0,
                    )
                )
            yield attempt_pb2.AttemptEvent(result=result)


def execute(
    spec: attempt_pb2.AttemptSpec, driver: SandboxDriver, *, artifacts_dir: Path, task_id: str = ""
) -> Iterator[attempt_pb2.AttemptEvent]:
    # Whatever fails from here on (a spec the request or the agent refuses, the sandbox, a cancel),
    # what was set up is undone in reverse: the agent settles and closes, then the recorder leaves
    # the process-wide router (a Ray worker runs many attempts; a recorder left registered would
    # keep recording spans of this trace for as long as the process lives).
    refusal = version_refusal(spec.replay) if spec.HasField("replay") else None
    if refusal is not None:
        # Before any sandbox: this worker would not give the replayed run's rows.
        log.warning("attempt %d of run %s: refused: %s", spec.attempt, spec.run_id, refusal)
        yield attempt_pb2.AttemptEvent(result=_refused(refusal))
        return
    with ExitStack() as cleanup:
        recorder = _recorder(spec, began=time.time_ns())
        if recorder is not None:
            cleanup.enter_context(recorder)
        request = request_from_spec(spec)
        if recorder is None:
            request = replace(request, traceparent="")
        log.info("attempt %d of run %s: starting, deadline %s", spec.attempt, spec.run_id, request.deadline)
        agent = Agent(spec, artifacts_dir=artifacts_dir / spec.run_id)
        if recorder is not None:
            # A target may echo a secret into an error, and so into a span's status: spans leave
            # scrubbed like everything else the agent hands out.
            recorder.scrub_with(agent.scrub)
        # Also when the attempt is cancelled (an abort: KeyboardInterrupt from Ray): the task ends,
        # and the run with it, only once no shard of a bulk insert can still commit.
        cleanup.callback(agent.close)
        cleanup.callback(agent.settle)
        spans = _SpanReports(recorder)
        for event in translate(iter(driver.run(request, on_call=agent)), task_id):
            # Batches the agent wrote (on its own thread) go out before the event that follows them,
            # and so do the spans finished meanwhile, now and then.
            for batch in agent.drain_batches():
                yield attempt_pb2.AttemptEvent(batch=batch)
            yield from _assets(agent.assets.drain())
            yield from spans.due()
            if event.HasField("result"):
                # The sandbox is gone: stop what its calls started (a bulk insert's shards, steps
                # left open) before the attempt's end is reported.
                agent.settle()
                for batch in agent.drain_batches():
                    yield attempt_pb2.AttemptEvent(batch=batch)
                # Every asset reaches the coordinator before the end it belongs to.
                yield from _assets(agent.assets.drain())
                unkept: list[str] = []
                yield from _assets(agent.assets.drain_files(unkept.append))
                if unkept:
                    yield _system_lines(unkept, "warning")
                yield from spans.due(final=True)
                event.result.versions.update(agent.versions)
                event.result.templates_used.extend(agent.templates_used())
                event.result.steps.extend(agent.step_records())
                if agent.dry_run is not None:
                    agent.dry_run.finish(event.result)
                if agent.nondeterministic is not None and event.result.outcome in _REPLAYABLE:
                    _fail_nondeterministic(event.result, agent.nondeterministic)
                if event.result.HasField("error") and not event.result.error.step:
                    event.result.error.step = agent.failing_step()
            yield event


def _assets(pieces: Iterator[asset_pb2.AttemptAsset]) -> Iterator[attempt_pb2.AttemptEvent]:
    for piece in pieces:
        yield attempt_pb2.AttemptEvent(asset=piece)


def _system_lines(texts: list[str], level: str) -> attempt_pb2.AttemptEvent:
    """Lines of the worker's own for the run's log, once the sandbox is gone (the coordinator
    numbers every line it stores)."""
    at = _ts(datetime.now(UTC))
    lines = [run_pb2.LogLine(stream=run_pb2.LOG_STREAM_SYSTEM, text=t, time=at, level=level) for t in texts]
    return attempt_pb2.AttemptEvent(output=attempt_pb2.AttemptOutput(lines=lines))


def _refused(message: str) -> attempt_pb2.AttemptResult:
    """The result of an attempt this worker refused before starting it (a replay it cannot give)."""
    return attempt_pb2.AttemptResult(
        outcome=attempt_pb2.ATTEMPT_OUTCOME_INFRASTRUCTURE,
        exit_code=-1,
        error=run_pb2.ErrorDetails(
            reason=run_pb2.FAILURE_REASON_INFRASTRUCTURE, type="ReplayRefused", message=message
        ),
        time=_ts(datetime.now(UTC)),
    )


def _recorder(spec: attempt_pb2.AttemptSpec, *, began: int) -> tracing.SpanRecorder | None:
    """The attempt's span recorder (None: not traced), with the wait in Ray's queue recorded:
    from the coordinator's dispatch to `began`, when this task started."""
    if not spec.HasField("trace"):
        return None
    trace = spec.trace
    try:
        recorder = tracing.SpanRecorder(
            trace.traceparent,
            max_spans=trace.max_spans or tracing.DEFAULT_MAX_SPANS,
            max_attribute_length=trace.max_attribute_length or tracing.DEFAULT_ATTRIBUTE_LENGTH,
        )
    except ValueError as exc:
        log.warning("attempt %d of run %s: not traced: %s", spec.attempt, spec.run_id, exc)
        return None
    if trace.HasField("dispatch_time"):
        tracing.record_span(
            QUEUE_WAIT,
            parent=recorder.context,
            start_time=min(trace.dispatch_time.ToNanoseconds(), began),
            end_time=began,
            attributes={"host.name": socket.gethostname(), "process.pid": os.getpid()},
            structural=True,
        )
    return recorder


class _SpanReports:
    """The attempt's finished spans as events: at most one a second while it runs, and all that is
    left before its result. Every event is an object Ray streams to the coordinator: one per line
    batch or per span would cost a short run a tenth of its time (measured by bench_runs)."""

    EVERY_SECONDS = 1.0

    def __init__(self, recorder: tracing.SpanRecorder | None) -> None:
        self._recorder = recorder
        self._last = time.monotonic()

    def due(self, *, final: bool = False) -> Iterator[attempt_pb2.AttemptEvent]:
        if self._recorder is None:
            return
        if not final and time.monotonic() - self._last < self.EVERY_SECONDS:
            return
        self._last = time.monotonic()
        spans, dropped = self._recorder.take()
        if spans or dropped:
            yield attempt_pb2.AttemptEvent(spans=attempt_pb2.AttemptSpans(spans=spans, dropped=dropped))


# Outcomes a detected nondeterministic write overrides: it is the reason the run cannot go on, even
# when the script caught the exception (or died of it).
_REPLAYABLE = frozenset({attempt_pb2.ATTEMPT_OUTCOME_SUCCEEDED, attempt_pb2.ATTEMPT_OUTCOME_SCRIPT_ERROR})


def _fail_nondeterministic(result: attempt_pb2.AttemptResult, message: str) -> None:
    line = result.error.line if result.HasField("error") else 0
    traceback = result.error.traceback if result.HasField("error") else ""
    result.outcome = attempt_pb2.ATTEMPT_OUTCOME_NONDETERMINISTIC
    result.error.CopyFrom(
        run_pb2.ErrorDetails(
            reason=run_pb2.FAILURE_REASON_NONDETERMINISTIC,
            type="NondeterministicWrite",
            message=message,
            traceback=traceback,
            line=line,
        )
    )


def run_attempt(spec_bytes: bytes) -> Iterator[bytes]:
    """Ray entry point (a streaming generator): bytes in, bytes out, so no pickled classes cross."""
    spec = attempt_pb2.AttemptSpec.FromString(spec_bytes)
    driver = DockerSandboxDriver(
        docker_url=spec.docker_url or None,
        runtime=spec.sandbox_runtime or "runc",
        image_policy=_image_policy(spec.derived_images if spec.HasField("derived_images") else None),
    )
    task_id = _ray_task_id()
    for event in execute(spec, driver, artifacts_dir=worker_settings().artifacts_dir, task_id=task_id):
        yield event.SerializeToString()


def _ray_task_id() -> str:
    """The Ray task running this attempt (what the run's steps name as their job); empty when
    not run by Ray (tests that call ``execute`` directly)."""
    try:
        import ray

        return str(ray.get_runtime_context().get_task_id() or "")
    except Exception:  # noqa: BLE001 - no Ray, or not inside a task: no task id, nothing else changes
        return ""


@dataclass(frozen=True)
class EngineProbe:
    """What a worker found out about its Docker engine (`probe_engine`)."""

    problem: str | None  # the engine cannot be reached: what is wrong and what to do
    runtime: str | None = None  # the sandboxes' runtime in words, when the engine has it
    refusal: str | None = None  # the engine lacks the runtime asked for: sandboxes cannot run


def probe_engine(docker_url: str, runtime: str) -> EngineProbe:
    """Whether this worker reaches its Docker engine, and which runtime its sandboxes run under."""
    driver = DockerSandboxDriver(docker_url=docker_url or None, runtime=runtime or "runc")
    try:
        return EngineProbe(problem=None, runtime=driver.runtime().describe())
    except RuntimeUnavailableError as exc:
        return EngineProbe(problem=None, refusal=str(exc))
    except EngineUnavailableError as exc:
        return EngineProbe(problem=str(exc))
    finally:
        driver.close()


def _image_policy(limits: attempt_pb2.DerivedImageLimits | None) -> DerivedImagePolicy:
    """The operator's caps on derived images (the defaults when the coordinator sent none)."""
    if limits is None:
        return DerivedImagePolicy()
    unused = timedelta(seconds=limits.max_unused_seconds) if limits.max_unused_seconds else DEFAULT_MAX_UNUSED
    return DerivedImagePolicy(
        max_image_bytes=limits.max_image_bytes or DEFAULT_MAX_IMAGE_BYTES,
        cache_bytes=limits.cache_bytes,
        max_unused=unused,
    )


def sweep_sandboxes(docker_url: str, image_limits: bytes = b"") -> list[str]:
    """The janitor on this node: remove Seedbed containers past their deadline plus grace (left
    behind by a worker that died), then prune the image cache past `image_limits` (a serialized
    DerivedImageLimits; empty: the defaults). Returns the removed container ids."""
    try:
        removed = remove_orphans(docker_url or None)
    except EngineUnavailableError as exc:
        log.warning("janitor: %s", exc)
        return []
    limits = attempt_pb2.DerivedImageLimits.FromString(image_limits) if image_limits else None
    driver = DockerSandboxDriver(docker_url=docker_url or None)
    try:
        sweep_images(driver.client(), _image_policy(limits))
    except EngineUnavailableError as exc:
        log.warning("janitor: %s", exc)
    finally:
        driver.close()
    return removed


def list_sandboxes(docker_url: str) -> list[dict[str, str]]:
    """The janitor's view of this node: every Seedbed container with its run, attempt, fencing
    token, deadline, state and creation time (see `_sandbox_janitor.list_containers`). Empty when
    the engine is unreachable."""
    from seedbed.worker._sandbox_janitor import list_containers

    driver = DockerSandboxDriver(docker_url=docker_url or None)
    try:
        return list_containers(driver.client())
    except EngineUnavailableError as exc:
        log.warning("janitor: %s", exc)
        return []
    finally:
        driver.close()


def remove_sandboxes(docker_url: str, ids: list[str]) -> list[str]:
    """Remove the Seedbed containers among `ids` that this node's engine has; the ids removed."""
    from seedbed.worker._sandbox_janitor import remove_containers

    driver = DockerSandboxDriver(docker_url=docker_url or None)
    try:
        return remove_containers(driver.client(), ids)
    except EngineUnavailableError as exc:
        log.warning("janitor: %s", exc)
        return []
    finally:
        driver.close()
