"""A fake dispatcher for fast unit tests of the coordinator's logic (never used by integration or
end-to-end tests, which run real Ray and Docker). It implements every port of ``runs.ports``.

It "runs" a tiny line language instead of Python, so tests can script what an attempt does:

    print TEXT          a stdout line
    stderr TEXT         a stderr line
    warn TEXT           an SDK warning (the run ends WARNING)
    sleep SECONDS       wait (abort lands here)
    fail TEXT           end with a script error
    oom                 end as out-of-memory
    kill                end as KILLED (the sandbox was killed from outside)
    nondeterministic TEXT
                        end as NONDETERMINISTIC (a replayed write differed from the ledger)
    lost TEXT           the worker dies: dispatch raises DispatchError
    batch CONN TARGET CALL BATCH ROWS [replayed]
                        report a write batch (an insert into TARGET), APPLIED unless "replayed";
                        its id "CONN/CALL/BATCH" goes to every open step
    asset NAME TEXT     keep run asset NAME holding TEXT (UTF-8), sent in pieces of 4 bytes as a
                        worker sends its pieces (see ``AttemptEvent.asset``)
    asset-cut NAME TEXT every piece of such an asset but its last (the attempt ends mid-asset)
    step NAME           open a step (steps nest); a failure inside it names the innermost one
    end                 close the innermost open step (SUCCESS)
    spans N [DROPPED]   report N worker spans "call K", children of the attempt's span (when the
                        attempt is traced), and DROPPED spans the worker did not record
    foreign-span        report a span of another trace (the coordinator must not keep it)

Every attempt runs as the fake worker task ``fake-task-<run id>-<attempt>``.

A line may be prefixed to apply to some attempts only: ``attempt<N: LINE`` (while the attempt's
number is below N), ``attempt>=N: LINE`` or ``attempt=N: LINE``. So ``attempt<2: lost gone`` loses
the worker on the first attempt and lets the second run on.

While an attempt runs it has a sandbox (``sandboxes``: the reports ``list_sandboxes`` returns, as
the workers' would); tests may add more, and see what the janitor removed in ``removed``.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
from collections.abc import AsyncGenerator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from seedbed.api.v1 import asset_pb2, attempt_pb2, run_pb2
from seedbed.coordinator.errors import DispatchCancelled, DispatchError

_PREFIX = re.compile(r"^attempt(<|>=|=)(\d+):\s*(.*)$")


def _now() -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(datetime.now(UTC))
    return stamp


def _applies(raw: str, attempt: int) -> str | None:
    """The line without its attempt prefix, or None when it does not apply to this attempt."""
    match = _PREFIX.match(raw)
    if match is None:
        return raw
    op, number, line = match.group(1), int(match.group(2)), match.group(3)
    ok = {"<": attempt < number, ">=": attempt >= number, "=": attempt == number}[op]
    return line if ok else None


class FakeDispatcher:
    def __init__(self) -> None:
        self._cancelled: set[str] = set()
        self.specs: list[attempt_pb2.AttemptSpec] = []
        self.sandboxes: list[dict[str, str]] = []
        self.removed: list[str] = []
        self.waiting: str | None = None  # what waiting_reason() answers

    async def start(self) -> None:
        return None

    async def aclose(self) -> None:
        return None

    async def probe_engine(self) -> str | None:
        return None

    async def sweep(self) -> list[str]:
        return []

    async def list_sandboxes(self) -> list[dict[str, str]]:
        return [dict(box) for box in self.sandboxes]

    async def remove_sandboxes(self, ids: Sequence[str]) -> list[str]:
        gone = [box["id"] for box in self.sandboxes if box["id"] in ids]
        self.sandboxes = [box for box in self.sandboxes if box["id"] not in ids]
        self.removed.extend(gone)
        return gone

    # Catalog calls run the worker's functions in-process: the fake replaces Ray, not the data plane.
    async def validate_template(
        self, source: str, fmt: str, limits: attempt_pb2.DataLimits
    ) -> dict[str, Any]:
        from seedbed.worker import catalog

        result: dict[str, Any] = catalog.validate_template_source(source, fmt, limits.SerializeToString())
        return result

    async def preview_template(
        self,
        template_id: str,
        templates: dict[str, Any],
        count: int,
        seed: int | None,
        limits: attempt_pb2.DataLimits,
    ) -> dict[str, Any]:
        from seedbed.worker import catalog

        return catalog.preview_rows(template_id, templates, count, seed, limits.SerializeToString())

    async def test_connection(self, connection: attempt_pb2.ConnectionSnapshot) -> tuple[bool, str, float]:
        from seedbed.worker import catalog

        return catalog.try_connection(connection.SerializeToString())

    async def purge_run(
        self,
        connection: attempt_pb2.ConnectionSnapshot,
        run_key: str,
        run_id: str,
        ledger_key: bytes,
        dry_run: bool,
        work: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        from seedbed.worker import catalog

        return await asyncio.to_thread(
            catalog.purge_run, connection.SerializeToString(), run_key, run_id, ledger_key, dry_run, work
        )

    async def waiting_reason(self) -> str | None:
        return self.waiting

    def cancel(self, run_id: str) -> None:
        self._cancelled.add(run_id)

    def _check(self, run_id: str) -> None:
        if run_id in self._cancelled:
            raise DispatchCancelled(f"run {run_id} cancelled")

    async def execute(self, spec: attempt_pb2.AttemptSpec) -> AsyncGenerator[attempt_pb2.AttemptEvent, None]:
        self.specs.append(spec)
        box = {
            "id": f"fake-{spec.run_id}-{spec.attempt}",
            "run": spec.run_id,
            "attempt": str(spec.attempt),
            "fencing": str(spec.fencing_token),
            "deadline": (datetime.now(UTC) + timedelta(hours=1)).isoformat(),
            "created": datetime.now(UTC).isoformat(),
            "state": "running",
        }
        self.sandboxes.append(box)
        try:
            self._check(spec.run_id)
            started = attempt_pb2.AttemptStarted(
                container_id=box["id"],
                image="fake",
                time=_now(),
                node="fake",
                worker_pid=os.getpid(),
                task_id=f"fake-task-{spec.run_id}-{spec.attempt}",
            )
            yield attempt_pb2.AttemptEvent(started=started)
            warnings = 0
            steps = _Steps()
            for raw in spec.script.splitlines():
                self._check(spec.run_id)
                line = _applies(raw.strip(), spec.attempt)
                if line is None:
                    continue
                op, _, arg = line.partition(" ")
                if op == "sleep":
                    for _ in range(int(float(arg) * 20)):
                        self._check(spec.run_id)
                        await asyncio.sleep(0.05)
                elif op == "lost":
                    raise DispatchError(f"the worker running attempt {spec.attempt} died: {arg or 'lost'}")
                elif op == "batch":
                    batch = _batch(arg)
                    steps.note_batch(f"{batch.connection_id}/{batch.call}/{batch.batch}")
                    yield attempt_pb2.AttemptEvent(batch=batch)
                elif op in ("asset", "asset-cut"):
                    pieces = _asset_pieces(arg)
                    for piece in pieces[:-1] if op == "asset-cut" else pieces:
                        yield attempt_pb2.AttemptEvent(asset=piece)
                elif op in ("spans", "foreign-span"):
                    if spec.HasField("trace"):
                        yield _spans(spec.trace.traceparent, op, arg)
                elif op == "step":
                    steps.open(arg)
                elif op == "end":
                    steps.close("SUCCESS")
                elif op in ("print", "stderr", "warn"):
                    warnings += op == "warn"
                    yield _output(op, arg)
                elif (end := _ending(op, arg)) is not None:
                    if end.result.HasField("error"):
                        end.result.error.step = steps.innermost()
                    steps.finish(end.result, "FAILED")
                    yield end
                    return
            end = _result(attempt_pb2.ATTEMPT_OUTCOME_SUCCEEDED, None, warnings=warnings)
            steps.finish(end.result, "SUCCESS")
            yield end
        finally:
            self._cancelled.discard(spec.run_id)
            self.sandboxes = [b for b in self.sandboxes if b["id"] != box["id"]]


class _Steps:
    """The steps of a fake attempt, as the worker's agent records them."""

    def __init__(self) -> None:
        self.steps: list[run_pb2.RunStep] = []

    def _open(self) -> list[run_pb2.RunStep]:
        return [s for s in self.steps if s.outcome == "RUNNING"]

    def open(self, name: str) -> None:
        self.steps.append(
            run_pb2.RunStep(name=name, number=len(self.steps) + 1, start_time=_now(), outcome="RUNNING")
        )

    def close(self, outcome: str) -> None:
        if opened := self._open():
            opened[-1].outcome = outcome
            opened[-1].end_time.CopyFrom(_now())

    def innermost(self) -> str:
        opened = self._open()
        return opened[-1].name if opened else ""

    def note_batch(self, batch_id: str) -> None:
        for step in self._open():
            step.batch_ids.append(batch_id)

    def finish(self, result: attempt_pb2.AttemptResult, outcome: str) -> None:
        while self._open():
            self.close(outcome)
        result.steps.extend(self.steps)


def _output(op: str, text: str) -> attempt_pb2.AttemptEvent:
    stream = {"print": run_pb2.LOG_STREAM_STDOUT, "stderr": run_pb2.LOG_STREAM_STDERR}.get(
        op, run_pb2.LOG_STREAM_SYSTEM
    )
    line = run_pb2.LogLine(
        sequence=1, stream=stream, text=text, time=_now(), level="warning" if op == "warn" else ""
    )
    return attempt_pb2.AttemptEvent(output=attempt_pb2.AttemptOutput(lines=[line]))


def _spans(traceparent: str, op: str, arg: str) -> attempt_pb2.AttemptEvent:
    """Worker spans under the attempt's span (see the module's doc)."""
    _version, trace_id, parent, _flags = traceparent.split("-")
    count, _, dropped = arg.partition(" ")
    if op == "foreign-span":
        trace_id, count = "f" * 32, "1"
    spans = [
        run_pb2.Span(
            trace_id=trace_id,
            span_id=hashlib.sha256(f"{traceparent}/{op}/{k}".encode()).hexdigest()[:16],
            parent_span_id=parent,
            name=f"call {k}",
            kind=run_pb2.SPAN_KIND_INTERNAL,
            start_time=_now(),
            end_time=_now(),
            service="seedbed-worker",
        )
        for k in range(int(count))
    ]
    return attempt_pb2.AttemptEvent(spans=attempt_pb2.AttemptSpans(spans=spans, dropped=int(dropped or 0)))


def _asset_pieces(arg: str) -> list[asset_pb2.AttemptAsset]:
    name, _, text = arg.partition(" ")
    data = text.encode()
    pieces = []
    for offset in range(0, max(len(data), 1), 4):
        pieces.append(asset_pb2.AttemptAsset(name=name, offset=offset, chunk=data[offset : offset + 4]))
    pieces[0].content_type = "text/plain; charset=utf-8"
    pieces[-1].last = True
    pieces[-1].size_bytes = len(data)
    pieces[-1].sha256 = hashlib.sha256(data).hexdigest()
    return pieces


def _batch(arg: str) -> run_pb2.WriteBatch:
    conn, target, call, batch, rows, *rest = arg.split()
    replayed = rest[:1] == ["replayed"]
    return run_pb2.WriteBatch(
        connection_id=conn,
        operation="insert",
        target=target,
        call=int(call),
        batch=int(batch),
        rows=int(rows),
        content_hash=hashlib.sha256(f"{conn}/{target}/{call}/{batch}/{rows}".encode()).hexdigest(),
        status=run_pb2.WRITE_BATCH_STATUS_REPLAYED if replayed else run_pb2.WRITE_BATCH_STATUS_APPLIED,
        time=_now(),
    )


def _ending(op: str, arg: str) -> attempt_pb2.AttemptEvent | None:
    """The result event of a line that ends the attempt, or None for an unknown line (ignored)."""
    if op == "fail":
        error = run_pb2.ErrorDetails(
            reason=run_pb2.FAILURE_REASON_SCRIPT_ERROR, type="RuntimeError", message=arg, line=1
        )
        return _result(attempt_pb2.ATTEMPT_OUTCOME_SCRIPT_ERROR, error, exit_code=1)
    if op == "oom":
        error = run_pb2.ErrorDetails(reason=run_pb2.FAILURE_REASON_OOM, type="OutOfMemory", message="oom")
        return _result(attempt_pb2.ATTEMPT_OUTCOME_OOM, error, exit_code=137)
    if op == "kill":
        error = run_pb2.ErrorDetails(
            reason=run_pb2.FAILURE_REASON_KILLED, type="Killed", message="the sandbox was killed"
        )
        return _result(attempt_pb2.ATTEMPT_OUTCOME_KILLED, error, exit_code=137)
    if op == "nondeterministic":
        error = run_pb2.ErrorDetails(
            reason=run_pb2.FAILURE_REASON_NONDETERMINISTIC,
            type="NondeterministicWrite",
            message=arg or "a replayed batch differs from the ledger",
        )
        return _result(attempt_pb2.ATTEMPT_OUTCOME_NONDETERMINISTIC, error, exit_code=1)
    return None


def _result(
    outcome: int, error: run_pb2.ErrorDetails | None, exit_code: int = 0, warnings: int = 0
) -> attempt_pb2.AttemptEvent:
    result = attempt_pb2.AttemptResult(outcome=outcome, exit_code=exit_code, warnings=warnings, time=_now())  # type: ignore[arg-type]
    if error is not None:
        result.error.CopyFrom(error)
    return attempt_pb2.AttemptEvent(result=result)
