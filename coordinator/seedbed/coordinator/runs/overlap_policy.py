"""The overlap policy's decision on a new fire, as a pure function of what the scenario is doing.

``decide_overlap`` takes the scenario's policy, its active runs and the fires already waiting
(oldest first, as the store read them under the scenario's lock) and answers what becomes of the
new fire: it gets a run now (and, with CANCEL_RUNNING, the active runs are superseded), it waits
(QUEUE_ONE, QUEUE_ALL), or it is cancelled (SKIP, or QUEUE_ONE with a fire already waiting). The
store reads the inputs and writes the decision in one transaction (``store.fires``); the reasons
returned here are what callers see on the fire.

Rejected: keeping the decision inside the SQL repository, where it sat between two reads and the
inserts. Every policy could only be checked through a database, and the rule of the product was
hidden in storage code; here it is one function a unit test calls with plain ids.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from seedbed.coordinator.model import OverlapPolicy

__all__ = ["OverlapDecision", "decide_overlap", "superseded_reason"]


@dataclass(frozen=True)
class OverlapDecision:
    """What becomes of a new fire: cancelled (``cancel_reason``), queued (``queue_reason``), or given
    a run now, superseding the active runs in ``supersede`` (CANCEL_RUNNING)."""

    cancel_reason: str | None = None
    queue_reason: str | None = None
    supersede: tuple[str, ...] = ()

    @property
    def runs_now(self) -> bool:
        """Whether the fire gets its run at once."""
        return self.cancel_reason is None and self.queue_reason is None


def decide_overlap(
    policy: OverlapPolicy,
    scenario_id: str,
    active_run_ids: Sequence[str],
    pending_fire_ids: Sequence[str],
) -> OverlapDecision:
    """The policy's decision on a new fire of ``scenario_id``, given the scenario's active runs and
    its waiting fires (both oldest first)."""
    active, pending = tuple(active_run_ids), tuple(pending_fire_ids)
    behind = f"run {active[0]}" if active else "the fires before it"
    if policy is OverlapPolicy.ALLOW_CONCURRENT or (not active and not pending):
        return OverlapDecision()
    if policy is OverlapPolicy.CANCEL_RUNNING:
        return OverlapDecision(supersede=active)
    if policy is OverlapPolicy.QUEUE_ONE:
        if pending:
            return OverlapDecision(
                cancel_reason=f"already queued: fire {pending[0]} waits behind {behind} "
                "(overlap policy QUEUE_ONE)"
            )
        return OverlapDecision(queue_reason=f"queued behind {behind} (overlap policy QUEUE_ONE)")
    if policy is OverlapPolicy.QUEUE_ALL:
        ahead = f"; {len(pending)} fire(s) ahead" if pending else ""
        return OverlapDecision(queue_reason=f"queued behind {behind}{ahead} (overlap policy QUEUE_ALL)")
    if not active:
        return OverlapDecision()  # SKIP with fires left waiting by an earlier QUEUE policy: run now
    return OverlapDecision(
        cancel_reason=f"already running: run {active[0]} of scenario {scenario_id} is still active "
        "(overlap policy SKIP)"
    )


def superseded_reason(fire_id: str) -> str:
    """The abort reason of a run that a CANCEL_RUNNING fire supersedes; it names the fire."""
    return f"cancelled by {fire_id}: overlap policy CANCEL_RUNNING"
