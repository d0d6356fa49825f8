"""The domain core of runs: decisions about runs and fires that need no storage, no protocol and
no executor, and the ports through which the coordinator uses its workers.

    decision = decide_overlap(OverlapPolicy.QUEUE_ONE, "scn_orders", active_runs, waiting_fires)
    if decision.runs_now: ...

What lives here is pure: given plain values it answers a decision, and the rooms around it (the
store, the supervisor, the faces) read the inputs and carry the decision out. The ports
(``runs.ports``) are protocols, one per party that uses the workers; ``dispatch.RayDispatcher`` and
``fakes.FakeDispatcher`` implement them. Nothing here imports anything heavy (no SQLAlchemy, Ray,
Docker, grpc or web library); ``[tool.importlinter]`` in pyproject.toml keeps it so. Run and fire
states, the retry policy and the failure reasons still live in ``seedbed.coordinator.model`` and
``seedbed.coordinator.retry``, under the same rule.
"""

from seedbed.coordinator.runs.overlap_policy import OverlapDecision, decide_overlap, superseded_reason
from seedbed.coordinator.runs.ports import (
    AttemptExecutor,
    CatalogWorker,
    Dispatcher,
    RunPurgeWorker,
    RunWorkers,
    SandboxFleet,
)

__all__ = [
    "AttemptExecutor",
    "CatalogWorker",
    "Dispatcher",
    "OverlapDecision",
    "RunPurgeWorker",
    "RunWorkers",
    "SandboxFleet",
    "decide_overlap",
    "superseded_reason",
]
