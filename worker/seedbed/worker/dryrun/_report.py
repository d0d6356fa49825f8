"""The dry run's report as it grows: one entry per target (connection, operation, table/path/file),
rows counted, problems listed up to a cap and counted past it, what was not checked noted once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from seedbed.api.v1 import dryrun_pb2
from seedbed.worker.dryrun._values import shown

__all__ = ["MAX_PROBLEMS", "MAX_TARGETS", "ReportBuilder"]

MAX_PROBLEMS = 20  # listed per target; more are counted
MAX_TARGETS = 200
MAX_UNCHECKED = 20
MAX_MESSAGE = 500


class ReportBuilder:
    def __init__(self, scrub: Callable[[str], str] = lambda text: text) -> None:
        self._scrub = scrub
        self._targets: dict[tuple[str, str, str], dryrun_pb2.DryRunTarget] = {}
        self._dropped = 0

    def target(self, connection_id: str, operation: str, name: str) -> dryrun_pb2.DryRunTarget:
        key = (connection_id, operation, name)
        found = self._targets.get(key)
        if found is None:
            if len(self._targets) >= MAX_TARGETS:
                # Past the cap, the last target holds the rest's counts (the report says how many).
                self._dropped += 1
                return list(self._targets.values())[-1]
            found = self._targets[key] = dryrun_pb2.DryRunTarget(
                connection_id=connection_id, operation=operation, target=name[:300]
            )
        return found

    def problem(
        self,
        target: dryrun_pb2.DryRunTarget,
        kind: dryrun_pb2.DryRunProblemKind,
        *,
        row: int,
        field: str = "",
        value: Any = None,
        message: str,
        call: int = 0,
    ) -> None:
        target.problem_count += 1
        if len(target.problems) >= MAX_PROBLEMS:
            return
        target.problems.append(
            dryrun_pb2.DryRunProblem(
                kind=kind,
                row=row,
                field=field,
                value=self._scrub(shown(value)) if value is not None else "",
                message=self._scrub(message)[:MAX_MESSAGE],
                call=call,
            )
        )

    def unchecked(self, target: dryrun_pb2.DryRunTarget, note: str) -> None:
        note = self._scrub(note)[:MAX_MESSAGE]
        if note not in target.unchecked and len(target.unchecked) < MAX_UNCHECKED:
            target.unchecked.append(note)

    def to_proto(self) -> dryrun_pb2.DryRunReport:
        targets = list(self._targets.values())
        return dryrun_pb2.DryRunReport(
            targets=targets,
            problem_count=sum(t.problem_count for t in targets),
            dropped_targets=self._dropped,
        )
