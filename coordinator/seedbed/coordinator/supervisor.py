"""Drives runs: one asyncio task per active run takes it from QUEUED to a terminal state.

The task begins an attempt in the store, hands it to the dispatcher, writes the events it yields
(RUNNING on start, log lines renumbered per run, the result), then finalizes the run with a
conditional update. On start-up every run the store still holds as QUEUED or RUNNING is driven
again: a coordinator restart loses no accepted run.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterable
from datetime import UTC
from typing import Any, Protocol

from google.protobuf.json_format import MessageToDict

from seedbed.api.v1 import attempt_pb2, run_pb2
from seedbed.coordinator.connections import snapshot
from seedbed.coordinator.errors import CoordinatorError, DispatchCancelled, DispatchError
from seedbed.coordinator.logs import LogHub
from seedbed.coordinator.model import ACTIVE_STATES, FailureReason, RunState
from seedbed.coordinator.secrets import SecretBox
from seedbed.coordinator.settings import CoordinatorSettings
from seedbed.coordinator.store import ErrorInfo, LogRecord, RunEnd, RunRecord, Store, now

log = logging.getLogger(__name__)


class Dispatcher(Protocol):
    async def start(self) -> None: ...
    async def aclose(self) -> None: ...
    async def probe_engine(self) -> str | None: ...
    async def sweep(self) -> list[str]: ...
    async def validate_template(self, source: str, fmt: str) -> dict[str, Any]: ...
    async def preview_template(
        self, template_id: str, templates: dict[str, Any], count: int, seed: int | None
    ) -> dict[str, Any]: ...
    async def test_connection(
        self, connection: attempt_pb2.ConnectionSnapshot
    ) -> tuple[bool, str, float]: ...
    def execute(self, spec: attempt_pb2.AttemptSpec) -> AsyncIterable[attempt_pb2.AttemptEvent]: ...
    def cancel(self, run_id: str) -> None: ...


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
}


class RunSupervisor:
    """Owns one task per active run. ``start()`` recovers, ``aclose()`` stops the tasks (the runs
    stay active in the store and are driven again by the next coordinator)."""

    def __init__(
        self,
        store: Store,
        dispatcher: Dispatcher,
        hub: LogHub,
        settings: CoordinatorSettings,
        secrets: SecretBox | None = None,
    ) -> None:
        self._secrets = secrets
        # Where workers reach this coordinator (workspace downloads); set once the server listens.
        self.coordinator_address = ""
        self._store = store
        self._dispatcher = dispatcher
        self._hub = hub
        self._settings = settings
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._closing = False
        self._janitor: asyncio.Task[None] | None = None

    async def start(self) -> None:
        for run in await self._store.runs_in_states(ACTIVE_STATES):
            log.info("recovering run %s (%s, %d attempts so far)", run.id, run.state, run.attempt_count)
            self.launch(run.id)
        self._janitor = asyncio.create_task(self._janitor_loop(), name="janitor")

    async def _janitor_loop(self) -> None:
        """Every run ends: containers whose worker died are removed once past deadline + grace."""
        while True:
            try:
                removed = await self._dispatcher.sweep()
                if removed:
                    log.warning("janitor removed %d orphaned sandbox(es): %s", len(removed), removed)
            except Exception:
                log.exception("janitor sweep failed")
            await asyncio.sleep(self._settings.janitor_interval_seconds)

    async def aclose(self) -> None:
        self._closing = True
        if self._janitor is not None:
            self._janitor.cancel()
            await asyncio.gather(self._janitor, return_exceptions=True)
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def launch(self, run_id: str) -> None:
        if run_id in self._tasks or self._closing:
            return
        task = asyncio.create_task(self._drive(run_id), name=f"drive-{run_id}")
        self._tasks[run_id] = task
        task.add_done_callback(lambda _t: self._tasks.pop(run_id, None))

    # -- one run -----------------------------------------------------------------------------------

    async def _drive(self, run_id: str) -> None:
        started = time.monotonic()
        try:
            run = await self._store.get_run(run_id)
            if run.abort_reason:
                await self._finish(run_id, RunEnd(RunState.ABORTED, _aborted(run.abort_reason)))
                return
            attempt, token = await self._store.begin_attempt(run_id)
            end = await self._attempt(run, attempt, token)
            if end.state is not RunState.ABORTED:
                latest = await self._store.get_run(run_id)
                if latest.abort_reason and end.state is RunState.FAILED:
                    end = RunEnd(RunState.ABORTED, _aborted(latest.abort_reason), end.exit_code)
            await self._finish(run_id, end)
            log.info(
                "run %s attempt %d: %s after %.2fs", run_id, attempt, end.state, time.monotonic() - started
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the store itself failed: record it if we still can
            log.exception("run %s: supervisor failure", run_id)
            error = ErrorInfo(FailureReason.INFRASTRUCTURE, type(exc).__name__, f"coordinator error: {exc}")
            with contextlib.suppress(Exception):
                await self._finish(run_id, RunEnd(RunState.FAILED, error))

    async def _attempt(self, run: RunRecord, attempt: int, token: int) -> RunEnd:
        try:
            spec = await self._spec(run, attempt, token)
        except CoordinatorError as exc:
            error = ErrorInfo(FailureReason.INFRASTRUCTURE, type(exc).__name__, str(exc))
            await self._store.end_attempt(run.id, attempt, "INFRASTRUCTURE", error)
            return RunEnd(RunState.FAILED, error)
        seq = run.last_sequence
        await self._system_line(run.id, attempt, seq := seq + 1, f"attempt {attempt} dispatched")
        result: attempt_pb2.AttemptResult | None = None
        try:
            async for event in self._dispatcher.execute(spec):
                kind = event.WhichOneof("event")
                if kind == "started":
                    started_at = event.started.time.ToDatetime(tzinfo=UTC)
                    await self._store.mark_running(
                        run.id, attempt, event.started.container_id, event.started.node, started_at
                    )
                    self._hub.notify(run.id)
                    log.info(
                        "run %s attempt %d: RUNNING in %s on %s",
                        run.id,
                        attempt,
                        event.started.container_id[:12],
                        event.started.node,
                    )
                elif kind == "output":
                    records = []
                    for line in event.output.lines:
                        seq += 1
                        records.append(
                            LogRecord(
                                seq=seq,
                                attempt=attempt,
                                stream=_STREAM_NAMES.get(line.stream, "system"),
                                text=line.text,
                                at=line.time.ToDatetime(tzinfo=UTC) if line.HasField("time") else now(),
                                level=line.level,
                            )
                        )
                    await self._store.append_logs(run.id, records)
                    self._hub.notify(run.id)
                elif kind == "result":
                    result = event.result
        except DispatchCancelled:
            latest = await self._store.get_run(run.id)
            reason = latest.abort_reason or "cancelled"
            await self._store.end_attempt(run.id, attempt, "ABORTED", None)
            await self._system_line(run.id, attempt, seq + 1, f"aborted: {reason}")
            return RunEnd(RunState.ABORTED, _aborted(reason))
        except DispatchError as exc:
            error = ErrorInfo(FailureReason.INFRASTRUCTURE, "WorkerLost", str(exc))
            await self._store.end_attempt(run.id, attempt, "INFRASTRUCTURE", error)
            await self._system_line(run.id, attempt, seq + 1, f"attempt {attempt} failed: {exc}")
            return RunEnd(RunState.FAILED, error)
        if result is None:
            error = ErrorInfo(FailureReason.INFRASTRUCTURE, "WorkerLost", "the worker ended without a result")
            await self._store.end_attempt(run.id, attempt, "INFRASTRUCTURE", error)
            return RunEnd(RunState.FAILED, error)
        end = _end_from_result(result)
        await self._store.end_attempt(
            run.id,
            attempt,
            attempt_pb2.AttemptOutcome.Name(result.outcome).removeprefix("ATTEMPT_OUTCOME_"),
            end.error,
        )
        summary = f"run ended: {end.state}"
        if end.error is not None:
            summary += f" ({end.error.type}: {end.error.message})"
        await self._system_line(run.id, attempt, seq + 1, summary)
        return end

    async def _spec(self, run: RunRecord, attempt: int, token: int) -> attempt_pb2.AttemptSpec:
        cfg = self._settings
        timeout = run.settings.timeout_seconds or cfg.default_timeout_seconds
        memory = run.settings.memory_limit_bytes or cfg.default_memory_bytes
        templates = [
            attempt_pb2.TemplateSnapshot(id=t.id, canonical_json=json.dumps(t.canonical), revision=t.revision)
            for t in await self._store.templates.all()
        ]
        connections = []
        if self._secrets is not None:
            connections = [snapshot(c, self._secrets) for c in await self._store.connections.all()]
        return attempt_pb2.AttemptSpec(
            templates=templates,
            connections=connections,
            coordinator_address=self.coordinator_address,
            data_limits=attempt_pb2.DataLimits(
                max_generate_rows=cfg.max_generate_rows,
                max_fetch_rows=cfg.max_fetch_rows,
                max_reply_bytes=cfg.max_reply_bytes,
                max_workspace_read_bytes=cfg.max_workspace_file_bytes,
            ),
            run_id=run.id,
            attempt=attempt,
            run_key=run.run_key,
            scenario_id=run.scenario_id,
            script=run.script,
            params=run.params,
            docker_url=cfg.docker_url,
            fencing_token=token,
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
            ),
        )

    async def _system_line(self, run_id: str, attempt: int, seq: int, text: str) -> None:
        await self._store.append_logs(run_id, [LogRecord(seq, attempt, "system", text, now())])
        self._hub.notify(run_id)

    async def _finish(self, run_id: str, end: RunEnd) -> bool:
        changed = await self._store.finish_run(run_id, end)
        self._hub.notify(run_id)
        return changed

    # -- abort -------------------------------------------------------------------------------------

    async def abort(self, run_id: str, reason: str) -> tuple[RunRecord, bool]:
        """Stop a run. Returns (run, already_finished). ABORTED is not FAILED."""
        run = await self._store.get_run(run_id)
        if run.state.is_terminal:
            return run, True
        run = await self._store.request_abort(run_id, reason)
        task = self._tasks.get(run_id)
        self._dispatcher.cancel(run_id)
        if task is None:
            # Nobody drives it (e.g. between a restart and recovery): end it here.
            await self._finish(run_id, RunEnd(RunState.ABORTED, _aborted(run.abort_reason or reason)))
        else:
            done, _ = await asyncio.wait({task}, timeout=self._settings.abort_grace_seconds)
            if not done:
                log.warning("run %s did not stop within the abort grace; forcing ABORTED", run_id)
                task.cancel()
                await self._finish(run_id, RunEnd(RunState.ABORTED, _aborted(run.abort_reason or reason)))
        return await self._store.get_run(run_id), False


def _aborted(reason: str) -> ErrorInfo:
    return ErrorInfo(None, "Aborted", reason)


def _details(result: attempt_pb2.AttemptResult) -> dict[str, Any] | None:
    if not result.versions and not result.steps:
        return None
    return {
        "versions": dict(result.versions),
        "steps": [MessageToDict(step, preserving_proto_field_name=True) for step in result.steps],
    }


def _end_from_result(result: attempt_pb2.AttemptResult) -> RunEnd:
    common = {
        "details": _details(result),
        "exit_code": result.exit_code,
        "logs_truncated": result.logs_truncated,
        "dropped_log_lines": result.dropped_lines,
        "warning_count": result.warnings,
    }
    if result.outcome == attempt_pb2.ATTEMPT_OUTCOME_SUCCEEDED:
        state = RunState.WARNING if result.warnings > 0 else RunState.SUCCESS
        return RunEnd(state, None, **common)  # type: ignore[arg-type]
    if result.outcome == attempt_pb2.ATTEMPT_OUTCOME_ABORTED:
        return RunEnd(RunState.ABORTED, _aborted(result.error.message or "aborted"), **common)  # type: ignore[arg-type]
    reason = _FAILURES.get(result.outcome, FailureReason.INFRASTRUCTURE)
    error = ErrorInfo(
        reason,
        result.error.type or reason.value.title(),
        result.error.message or f"attempt ended with {attempt_pb2.AttemptOutcome.Name(result.outcome)}",
        result.error.traceback,
        result.error.line,
    )
    return RunEnd(RunState.FAILED, error, **common)  # type: ignore[arg-type]
