"""A fake dispatcher for fast unit tests of the coordinator's logic (never used by integration or
end-to-end tests, which run real Ray and Docker).

It "runs" a tiny line language instead of Python, so tests can script what an attempt does:

    print TEXT      a stdout line
    stderr TEXT     a stderr line
    warn TEXT       an SDK warning (the run ends WARNING)
    sleep SECONDS   wait (abort lands here)
    fail TEXT       end with a script error
    oom             end as out-of-memory
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from seedbed.api.v1 import attempt_pb2, run_pb2
from seedbed.coordinator.errors import DispatchCancelled


def _now() -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(datetime.now(UTC))
    return stamp


class FakeDispatcher:
    def __init__(self) -> None:
        self._cancelled: set[str] = set()
        self.specs: list[attempt_pb2.AttemptSpec] = []

    async def start(self) -> None:
        return None

    async def aclose(self) -> None:
        return None

    async def probe_engine(self) -> str | None:
        return None

    async def sweep(self) -> list[str]:
        return []

    # Catalog calls run the worker's functions in-process: the fake replaces Ray, not the data plane.
    async def validate_template(self, source: str, fmt: str) -> dict[str, Any]:
        from seedbed.worker import catalog

        result: dict[str, Any] = catalog.validate_template_source(source, fmt)
        return result

    async def preview_template(
        self, template_id: str, templates: dict[str, Any], count: int, seed: int | None
    ) -> dict[str, Any]:
        from seedbed.worker import catalog

        return catalog.preview_rows(template_id, templates, count, seed)

    async def test_connection(self, connection: attempt_pb2.ConnectionSnapshot) -> tuple[bool, str, float]:
        from seedbed.worker import catalog

        return catalog.try_connection(connection.SerializeToString())

    def cancel(self, run_id: str) -> None:
        self._cancelled.add(run_id)

    async def execute(self, spec: attempt_pb2.AttemptSpec) -> AsyncIterator[attempt_pb2.AttemptEvent]:
        self.specs.append(spec)
        seq = 0
        warnings = 0
        yield attempt_pb2.AttemptEvent(
            started=attempt_pb2.AttemptStarted(container_id="fake", image="fake", time=_now(), node="fake")
        )
        for raw in spec.script.splitlines():
            if spec.run_id in self._cancelled:
                raise DispatchCancelled(f"run {spec.run_id} cancelled")
            op, _, arg = raw.strip().partition(" ")
            if op in ("print", "stderr", "warn"):
                seq += 1
                stream = {"print": run_pb2.LOG_STREAM_STDOUT, "stderr": run_pb2.LOG_STREAM_STDERR}.get(
                    op, run_pb2.LOG_STREAM_SYSTEM
                )
                warnings += op == "warn"
                line = run_pb2.LogLine(
                    sequence=seq,
                    stream=stream,
                    text=arg,
                    time=_now(),
                    level="warning" if op == "warn" else "",
                )
                yield attempt_pb2.AttemptEvent(output=attempt_pb2.AttemptOutput(lines=[line]))
            elif op == "sleep":
                for _ in range(int(float(arg) * 20)):
                    if spec.run_id in self._cancelled:
                        raise DispatchCancelled(f"run {spec.run_id} cancelled")
                    await asyncio.sleep(0.05)
            elif op == "fail":
                yield _result(
                    attempt_pb2.ATTEMPT_OUTCOME_SCRIPT_ERROR,
                    run_pb2.ErrorDetails(
                        reason=run_pb2.FAILURE_REASON_SCRIPT_ERROR, type="RuntimeError", message=arg, line=1
                    ),
                    exit_code=1,
                )
                return
            elif op == "oom":
                yield _result(
                    attempt_pb2.ATTEMPT_OUTCOME_OOM,
                    run_pb2.ErrorDetails(
                        reason=run_pb2.FAILURE_REASON_OOM, type="OutOfMemory", message="oom"
                    ),
                    exit_code=137,
                )
                return
        yield _result(attempt_pb2.ATTEMPT_OUTCOME_SUCCEEDED, None, warnings=warnings)


def _result(
    outcome: int, error: run_pb2.ErrorDetails | None, exit_code: int = 0, warnings: int = 0
) -> attempt_pb2.AttemptEvent:
    result = attempt_pb2.AttemptResult(outcome=outcome, exit_code=exit_code, warnings=warnings, time=_now())  # type: ignore[arg-type]
    if error is not None:
        result.error.CopyFrom(error)
    return attempt_pb2.AttemptEvent(result=result)
