"""One attempt as the coordinator sees it: its spec, its dispatch, its events written to the store.

``AttemptRunner.run`` builds the ``AttemptSpec``, hands it to the executor (``runs.ports``) and writes
what comes back: RUNNING on ``started`` (with node, container and worker pid), log lines renumbered per run,
write batches, run assets (``AssetReceiver``), and the attempt's end. It answers a ``RunEnd`` (what
the run would end as if no further attempt followed); whether one follows is the supervisor's decision.

Every write is fenced: the attempt's own rows by its token, log lines by the run's attempt count.
A write that finds the attempt superseded raises ``LeaseLost`` and the runner stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Sequence
from datetime import UTC
from typing import Any

from google.protobuf.json_format import MessageToDict

from seedbed.api.v1 import attempt_pb2, replay_pb2, run_pb2
from seedbed.coordinator.access import worker_token
from seedbed.coordinator.assets import AssetReceiver
from seedbed.coordinator.connections import run_snapshot
from seedbed.coordinator.errors import CoordinatorError, DispatchCancelled, DispatchError, LeaseLost
from seedbed.coordinator.logs import LogHub
from seedbed.coordinator.model import FailureReason, RunState
from seedbed.coordinator.observability.logs import bind_run
from seedbed.coordinator.observability.metrics import CoordinatorMetrics
from seedbed.coordinator.observability.tracing import RunTracing, attempt_span_ids
from seedbed.coordinator.runs.ports import AttemptExecutor
from seedbed.coordinator.secrets import SecretBox
from seedbed.coordinator.settings import CoordinatorSettings
from seedbed.coordinator.store import ErrorInfo, LogRecord, RunEnd, RunRecord, Store, WriteBatchRecord, now
from seedbed.coordinator.store.catalog import CatalogScope
from seedbed.coordinator.store.replays import ReplayPin
from seedbed.coordinator.tls import coordinator_tls

log = logging.getLogger(__name__)

# Template versions one run records as used (a worker's report is bounded like everything from it).
MAX_TEMPLATES_USED = 1000


def ledger_key(secrets: SecretBox, run_id: str) -> bytes:
    """The key of the MACs on run ``run_id``'s write-ledger rows: derived for that run alone, so a
    worker holds only the keys of the runs it executes or purges (and a script none). Per run id,
    not per run key: run keys come from callers' idempotency keys, and may repeat another run's."""
    return secrets.derive_key(f"seedbed write ledger\n{run_id}")


def derived_image_limits(cfg: CoordinatorSettings) -> attempt_pb2.DerivedImageLimits:
    """The operator's caps on the images derived for `# requirements:` headers, for the workers."""
    return attempt_pb2.DerivedImageLimits(
        max_image_bytes=cfg.max_derived_image_bytes,
        cache_bytes=cfg.derived_image_cache_bytes,
        max_unused_seconds=cfg.derived_image_unused_days * 86400,
    )


_STREAM_NAMES = {
    run_pb2.LOG_STREAM_STDOUT: "stdout",
    run_pb2.LOG_STREAM_STDERR: "stderr",
    run_pb2.LOG_STREAM_SYSTEM: "system",
}
_FAILURES = {
    attempt_pb2.ATTEMPT_OUTCOME_SCRIPT_ERROR: FailureReason.SCRIPT_ERROR,
    attempt_pb2.ATTEMPT_OUTCOME_TIMEOUT: FailureReason.TIMEOUT,
    attempt_pb2.ATTEMPT_OUTCOME_OOM: FailureReason.OOM,
    attempt_pb2.ATTEMPT_OUTCOME_KILLED: FailureReason.KILLED,
    attempt_pb2.ATTEMPT_OUTCOME_INFRASTRUCTURE: FailureReason.INFRASTRUCTURE,
    attempt_pb2.ATTEMPT_OUTCOME_NONDETERMINISTIC: FailureReason.NONDETERMINISTIC,
}
_BATCH_STATUS = {
    run_pb2.WRITE_BATCH_STATUS_APPLIED: "APPLIED",
    run_pb2.WRITE_BATCH_STATUS_REPLAYED: "REPLAYED",
}


class LogWriter:
    """Appends a run's log lines for one attempt, numbering them after the last stored one."""

    def __init__(self, store: Store, hub: LogHub, run: RunRecord, attempt: int) -> None:
        self._store = store
        self._hub = hub
        self._run_id = run.id
        self._attempt = attempt
        self.seq = run.last_sequence  # read after the attempt began: nothing else appends past it
        # The coordinator's own lines about the attempt belong to the attempt's span.
        self._trace_id, self._span_id = attempt_span_ids(run, attempt)
        # Lines are numbered and stored under one lock: two writers (the attempt's events and the
        # note on why it waits) must not commit sequence numbers out of order.
        self._lock = asyncio.Lock()

    async def system(self, text: str) -> None:
        async with self._lock:
            self.seq += 1
            line = LogRecord(
                self.seq, self._attempt, "system", text, now(), trace_id=self._trace_id, span_id=self._span_id
            )
            await self._append([line])

    async def output(self, lines: Sequence[run_pb2.LogLine]) -> None:
        async with self._lock:
            await self._output(lines)

    async def _output(self, lines: Sequence[run_pb2.LogLine]) -> None:
        records = []
        for line in lines:
            self.seq += 1
            records.append(
                LogRecord(
                    seq=self.seq,
                    attempt=self._attempt,
                    stream=_STREAM_NAMES.get(line.stream, "system"),
                    text=line.text,
                    at=line.time.ToDatetime(tzinfo=UTC) if line.HasField("time") else now(),
                    level=line.level,
                    fields=dict(line.fields) or None,
                    trace_id=line.trace_id,
                    span_id=line.span_id,
                )
            )
        await self._append(records)

    async def _append(self, records: list[LogRecord]) -> None:
        if not await self._store.append_logs(self._run_id, records, attempt=self._attempt):
            raise LeaseLost(self._run_id, f"attempt {self._attempt} was superseded while writing its logs")
        self._hub.notify(self._run_id)


class AttemptRunner:
    def __init__(
        self,
        store: Store,
        executor: AttemptExecutor,
        hub: LogHub,
        settings: CoordinatorSettings,
        secrets: SecretBox | None,
        tracing: RunTracing | None = None,
        metrics: CoordinatorMetrics | None = None,
    ) -> None:
        self._store = store
        self._tracing = tracing
        self._metrics = metrics or CoordinatorMetrics()  # without one: recorded, served nowhere
        self._executor = executor
        self._hub = hub
        self._settings = settings
        self._secrets = secrets
        # Read once: how workers verify this coordinator when they call it back (None: plaintext).
        self._coordinator_tls = coordinator_tls(settings)

    async def run(self, run_id: str, attempt: int, token: int, coordinator_address: str) -> RunEnd:
        """Execute attempt ``attempt`` (already begun with ``token``). Raises LeaseLost."""
        # Read after the attempt began: no superseded driver can append lines past this point.
        run = await self._store.get_run(run_id)
        bind_run(run.id, attempt, *attempt_span_ids(run, attempt))  # its log lines say so
        if self._tracing is None:
            return await self._run(run, attempt, token, coordinator_address, None)
        began = now()
        seen: dict[str, Any] = {}
        end: RunEnd | None = None
        try:
            end = await self._run(run, attempt, token, coordinator_address, seen)
            return end
        finally:
            try:
                outcome = str(seen.pop("outcome", None) or _outcome_without_result(end))
                failed = end is not None and end.state is RunState.FAILED and end.error is not None
                error = f"{end.error.type}: {end.error.message}" if failed and end and end.error else ""
                self._tracing.record_attempt(run, attempt, began, outcome, seen, error)
            except Exception:  # noqa: BLE001 - a trace must never change how an attempt ends
                log.exception("run %s attempt %d: could not record its span", run.id, attempt)

    async def _run(
        self,
        run: RunRecord,
        attempt: int,
        token: int,
        coordinator_address: str,
        seen: dict[str, Any] | None,
    ) -> RunEnd:
        """What ``run`` does; ``seen`` (when tracing) collects what the attempt's span says."""
        run_id = run.id
        # The attempt is begun: the listing shows its assets only (runs.attempt_count), so earlier
        # attempts' go now, whether or not this one ever starts (a lost worker, an abort, a bad spec).
        await self._store.assets.begin_attempt(run_id, attempt)
        try:
            spec = await self._spec(run, attempt, token, coordinator_address)
        except CoordinatorError as exc:
            return await self._failed(run_id, attempt, token, "INFRASTRUCTURE", type(exc).__name__, str(exc))
        where = self._tracing.attempt_trace(run, attempt) if self._tracing is not None else None
        if where is not None:
            spec.trace.CopyFrom(where)
        logs = LogWriter(self._store, self._hub, run, attempt)
        await logs.system(f"attempt {attempt} dispatched")
        assets = AssetReceiver(
            self._store.assets,
            run_id,
            attempt,
            max_asset_bytes=self._settings.max_asset_bytes,
            max_run_bytes=self._settings.max_run_asset_bytes,
            say=logs.system,
        )
        result: attempt_pb2.AttemptResult | None = None
        task_id = ""
        timer = self._metrics.attempt_dispatched()
        notice = asyncio.create_task(self._tell_why_waiting(logs), name=f"waiting-{run_id}")
        try:
            async with contextlib.aclosing(self._executor.execute(spec)) as events:
                async for event in events:
                    notice.cancel()  # the worker has the attempt: it waits for nothing any more
                    kind = event.WhichOneof("event")
                    if kind == "started":
                        task_id = event.started.task_id
                        timer.started(event.started)
                        await self._started(run_id, attempt, token, event.started)
                        # What a replay of the run will ask for (store.replays).
                        await self._store.replays.record_image(run_id, event.started.image)
                        if seen is not None:
                            seen.update(_started_attributes(event.started))
                    elif kind == "output":
                        await logs.output(event.output.lines)
                    elif kind == "batch":
                        await self._store.attempts.add_batches(run_id, [_batch(attempt, event.batch)])
                        if event.batch.created_ids:  # what a purge deletes (RestOptions.undo)
                            await self._store.purges.add_created(
                                run_id,
                                attempt,
                                event.batch.connection_id,
                                event.batch.call,
                                event.batch.batch,
                                event.batch.target,
                                list(event.batch.created_ids),
                            )
                        self._metrics.batch_written(event.batch)
                    elif kind == "asset":
                        await assets.piece(event.asset)
                    elif kind == "spans":
                        timer.spans(event.spans.spans)
                        if self._tracing is not None:
                            self._tracing.keep_worker_spans(run, attempt, event.spans)
                    elif kind == "result":
                        result = event.result
                        await assets.end()  # an asset without its last piece by now never gets it
                        if run.dry_run and result.HasField("dry_run_report"):
                            report = result.dry_run_report.SerializeToString()
                            await self._store.dry_runs.keep_report(run_id, attempt, report)
                        self._metrics.lines_dropped(result.dropped_lines)
        except DispatchCancelled:
            notice.cancel()
            latest = await self._store.get_run(run_id)
            reason = latest.abort_reason or "cancelled"
            await assets.end("the attempt was aborted before its last piece")
            await self._end(run_id, attempt, token, "ABORTED", None)
            timer.ended("ABORTED")
            await logs.system(f"aborted: {reason}")
            return RunEnd(RunState.ABORTED, aborted(reason))
        except DispatchError as exc:
            timer.ended("INFRASTRUCTURE")
            await assets.end("the worker was lost before its last piece")
            return await self._failed(run_id, attempt, token, "INFRASTRUCTURE", "WorkerLost", str(exc))
        finally:
            notice.cancel()
            await asyncio.gather(notice, return_exceptions=True)
        # Also an asset begun after the result (a broken worker): nothing is left half kept.
        await assets.end("the worker ended before its last piece")
        if result is None:
            timer.ended("INFRASTRUCTURE")
            message = "the worker ended without a result"
            return await self._failed(run_id, attempt, token, "INFRASTRUCTURE", "WorkerLost", message)
        end = _end_from_result(result, task_id)
        outcome = attempt_pb2.AttemptOutcome.Name(result.outcome).removeprefix("ATTEMPT_OUTCOME_")
        if seen is not None:
            seen["outcome"] = outcome
        await self._end(run_id, attempt, token, outcome, end.error)
        timer.ended(outcome)
        return end

    async def _tell_why_waiting(self, logs: LogWriter) -> None:
        """Until the worker starts the attempt: every few seconds, say in the run's log why it waits
        (no worker node has joined, every slot is busy), each reason once while it holds."""
        said: str | None = None
        while True:
            await asyncio.sleep(self._settings.dispatch_notice_seconds)
            try:
                reason = await self._executor.waiting_reason()
            except Exception as exc:  # a notice must never fail the attempt
                log.debug("waiting reason: %s", exc)
                continue
            if reason is not None and reason != said:
                await logs.system(f"waiting for a worker: {reason}")
            said = reason

    async def _started(
        self, run_id: str, attempt: int, token: int, started: attempt_pb2.AttemptStarted
    ) -> None:
        marked = await self._store.attempts.mark_running(
            run_id,
            attempt,
            token,
            container_id=started.container_id,
            node=started.node,
            worker_pid=started.worker_pid or None,
            at=started.time.ToDatetime(tzinfo=UTC),
            task_id=started.task_id or None,
        )
        if not marked:
            raise LeaseLost(run_id, f"attempt {attempt} was superseded before its sandbox started")
        self._hub.notify(run_id)
        log.info(
            "run %s attempt %d: RUNNING in %s on %s (worker pid %d)",
            run_id,
            attempt,
            started.container_id[:12],
            started.node,
            started.worker_pid,
        )

    async def _end(
        self, run_id: str, attempt: int, token: int, outcome: str, error: ErrorInfo | None
    ) -> None:
        if not await self._store.attempts.end(run_id, attempt, token, outcome, error):
            raise LeaseLost(run_id, f"attempt {attempt} was superseded before it ended")

    async def _failed(
        self, run_id: str, attempt: int, token: int, outcome: str, kind: str, message: str
    ) -> RunEnd:
        error = ErrorInfo(FailureReason.INFRASTRUCTURE, kind, message)
        await self._end(run_id, attempt, token, outcome, error)
        return RunEnd(RunState.FAILED, error)

    async def _spec(
        self, run: RunRecord, attempt: int, token: int, coordinator_address: str
    ) -> attempt_pb2.AttemptSpec:
        cfg = self._settings
        timeout = run.settings.timeout_seconds or cfg.default_timeout_seconds
        memory = run.settings.memory_limit_bytes or cfg.default_memory_bytes
        # Only what the run's project may use (its own and shared objects): another project's
        # connection is not even named, so a script using it fails as with an unknown id.
        scope = CatalogScope.of_project(run.project_key)
        # The versions fixed for the run (its pins, else the latest when it was created), written
        # down on its first dispatch: every attempt generates from the same documents.
        templates = [
            attempt_pb2.TemplateSnapshot(
                id=v.template_id, canonical_json=json.dumps(v.canonical), revision=v.version
            )
            for v in await self._store.templates.fix_for_run(run.id, scope, run.created_at)
        ]
        connections = []
        if self._secrets is not None:
            connections = [
                run_snapshot(c, self._secrets, run.run_as) for c in await self._store.connections.all(scope)
            ]
        return attempt_pb2.AttemptSpec(
            templates=templates,
            connections=connections,
            coordinator_address=coordinator_address,
            coordinator_tls=self._coordinator_tls,
            coordinator_token=worker_token(
                self._secrets, run.id, attempt=attempt, timeout_seconds=min(timeout, cfg.max_timeout_seconds)
            )
            if self._secrets is not None
            else "",
            data_limits=attempt_pb2.DataLimits(
                max_generate_rows=cfg.max_generate_rows,
                max_fetch_rows=cfg.max_fetch_rows,
                max_reply_bytes=cfg.max_reply_bytes,
                max_workspace_read_bytes=cfg.max_workspace_file_bytes,
                max_template_field_bytes=cfg.max_template_field_bytes,
                max_template_row_bytes=cfg.max_template_row_bytes,
                max_file_sink_bytes=cfg.max_file_sink_bytes,
                agent_memory_bytes=cfg.agent_memory_bytes,
                max_rowset_rows=cfg.max_rowset_rows,
            ),
            run_id=run.id,
            attempt=attempt,
            run_key=run.run_key,
            dry_run=run.dry_run,
            scenario_id=run.scenario_id,
            script=run.script,
            params=run.params,
            docker_url=cfg.docker_url,
            sandbox_runtime=cfg.sandbox_runtime,
            derived_images=derived_image_limits(cfg),
            max_asset_bytes=cfg.max_asset_bytes,
            max_run_asset_bytes=cfg.max_run_asset_bytes,
            fencing_token=token,
            ledger_key=ledger_key(self._secrets, run.ledger_run_id) if self._secrets is not None else b"",
            # A replay: what its attempts reproduce (its ledger rows are signed for run.ledger_run_id).
            replay=_replay_pin(run.replay) if run.replay is not None else None,
            limits=attempt_pb2.SandboxLimits(
                # Ceilings may have been lowered since the scenario was saved: they still win.
                timeout_seconds=min(timeout, cfg.max_timeout_seconds),
                memory_bytes=min(memory, cfg.max_memory_bytes),
                nano_cpus=cfg.nano_cpus,
                pids=cfg.pids_limit,
                nofile=cfg.nofile_limit,
                tmpfs_bytes=cfg.tmpfs_bytes,
                max_log_bytes=cfg.max_log_bytes,
                max_line_bytes=cfg.max_line_bytes,
                max_log_lines=cfg.max_log_lines,
            ),
        )


def _replay_pin(pin: ReplayPin) -> replay_pb2.ReplayPin:
    return replay_pb2.ReplayPin(
        connection_aliases=pin.connection_aliases,
        ledger_run_id=pin.ledger_run_id,
        image=pin.image,
        versions=pin.versions,
        replayed_from=pin.replayed_from,
    )


def _outcome_without_result(end: RunEnd | None) -> str:
    """The attempt's outcome (AttemptOutcome's names) when the worker sent no result: aborted, the
    worker lost (INFRASTRUCTURE), or no end seen here (superseded, or the coordinator closing)."""
    if end is None:
        return "UNSPECIFIED"
    return "ABORTED" if end.state is RunState.ABORTED else "INFRASTRUCTURE"


def _started_attributes(started: attempt_pb2.AttemptStarted) -> dict[str, Any]:
    """What the attempt's span says of where it ran."""
    return {
        "host.name": started.node,
        "container.id": started.container_id,
        "container.image.name": started.image,
        "process.pid": started.worker_pid,
        "seedbed.ray.task_id": started.task_id,
    }


def aborted(reason: str) -> ErrorInfo:
    return ErrorInfo(None, "Aborted", reason)


def _batch(attempt: int, msg: run_pb2.WriteBatch) -> WriteBatchRecord:
    return WriteBatchRecord(
        attempt=attempt,
        connection_id=msg.connection_id,
        operation=msg.operation,
        target=msg.target,
        call=msg.call,
        batch=msg.batch,
        rows=msg.rows,
        content_hash=msg.content_hash,
        status=_BATCH_STATUS.get(msg.status, "APPLIED"),
        at=msg.time.ToDatetime(tzinfo=UTC) if msg.HasField("time") else now(),
    )


def _details(result: attempt_pb2.AttemptResult, task_id: str) -> dict[str, Any] | None:
    if not result.versions and not result.steps and not result.templates_used:
        return None
    steps = []
    for number, step in enumerate(result.steps, start=1):
        step.number = step.number or number
        if task_id and task_id not in step.task_ids:
            step.task_ids.append(task_id)  # the worker task of the attempt that ran the step
        steps.append(MessageToDict(step, preserving_proto_field_name=True))
    # The template versions the attempt generated from ("templates"): Run.templates_used, read by
    # _convert.template_uses; "pinned": the script named the version (a replay does not pin it).
    used = [
        {"id": u.template_id[:80], "version": u.version, "pinned": u.pinned}
        for u in result.templates_used[:MAX_TEMPLATES_USED]
    ]
    return {"versions": dict(result.versions), "steps": steps, "templates": used}


def _end_from_result(result: attempt_pb2.AttemptResult, task_id: str = "") -> RunEnd:
    common = {
        "details": _details(result, task_id),
        "exit_code": result.exit_code,
        "logs_truncated": result.logs_truncated,
        "dropped_log_lines": result.dropped_lines,
        "warning_count": result.warnings,
    }
    if result.outcome == attempt_pb2.ATTEMPT_OUTCOME_SUCCEEDED:
        state = RunState.WARNING if result.warnings > 0 else RunState.SUCCESS
        return RunEnd(state, None, **common)  # type: ignore[arg-type]
    if result.outcome == attempt_pb2.ATTEMPT_OUTCOME_ABORTED:
        return RunEnd(RunState.ABORTED, aborted(result.error.message or "aborted"), **common)  # type: ignore[arg-type]
    reason = _FAILURES.get(result.outcome, FailureReason.INFRASTRUCTURE)
    error = ErrorInfo(
        reason,
        result.error.type or reason.value.title(),
        result.error.message or f"attempt ended with {attempt_pb2.AttemptOutcome.Name(result.outcome)}",
        result.error.traceback,
        result.error.line,
        result.error.step,
    )
    return RunEnd(RunState.FAILED, error, **common)  # type: ignore[arg-type]
