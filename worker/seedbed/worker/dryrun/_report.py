"""The dry run's report as it grows: one entry per target (connection, operation, table/path/file),
rows counted, problems listed up to a cap and counted past it, what was not checked noted once.

Everything the script chose (a value, a field name, a path or file name) is masked before it is cut
short: a secret cut in two would no longer match its masks. The whole report stays under
`MAX_REPORT_BYTES` (the coordinator keeps none larger): past it, the last targets keep only their
first problem and note, their counts intact."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from seedbed.api.v1 import dryrun_pb2

__all__ = ["MAX_PROBLEMS", "MAX_TARGETS", "ReportBuilder"]

MAX_PROBLEMS = 20  # listed per target; more are counted
MAX_TARGETS = 200
MAX_UNCHECKED = 20
MAX_MESSAGE = 500
VALUE_CHARS = 200  # of a problem's value
MAX_NAME = 300  # a target's name, a problem's field
# A quarter of what the coordinator keeps (store.dryruns.MAX_REPORT_BYTES, 4 MiB).
MAX_REPORT_BYTES = 2**20
# Masked before cutting to VALUE_CHARS: room for a secret that starts just before the cut.
_SCRUB_CHARS = VALUE_CHARS + 4096


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
                connection_id=connection_id, operation=operation, target=self._scrub(name)[:MAX_NAME]
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
                field=self._scrub(field)[:MAX_NAME],
                value=self._shown(value) if value is not None else "",
                message=self._scrub(message)[:MAX_MESSAGE],
                call=call,
            )
        )

    def _shown(self, value: Any) -> str:
        """A value as the report shows it: text, masked, then at most VALUE_CHARS characters."""
        text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
        text = self._scrub(text[:_SCRUB_CHARS])
        return text if len(text) <= VALUE_CHARS else text[: VALUE_CHARS - 1] + "…"

    def unchecked(self, target: dryrun_pb2.DryRunTarget, note: str) -> None:
        note = self._scrub(note)[:MAX_MESSAGE]
        if note not in target.unchecked and len(target.unchecked) < MAX_UNCHECKED:
            target.unchecked.append(note)

    def to_proto(self) -> dryrun_pb2.DryRunReport:
        targets = list(self._targets.values())
        report = dryrun_pb2.DryRunReport(  # copies the targets: trimming leaves the builder whole
            targets=targets,
            problem_count=sum(t.problem_count for t in targets),
            dropped_targets=self._dropped,
        )
        _fit(report.targets, MAX_REPORT_BYTES)
        return report


def _fit(targets: Any, limit: int) -> None:
    """Trim the listed problems and notes of the last targets until the report fits `limit`."""
    size = sum(t.ByteSize() for t in targets)
    for target in reversed(targets):
        if size <= limit:
            return
        before = target.ByteSize()
        del target.problems[1:]
        del target.unchecked[1:]
        size -= before - target.ByteSize()
