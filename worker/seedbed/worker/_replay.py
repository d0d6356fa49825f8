"""What a replay's attempt must reproduce, checked on the worker: the data libraries' releases and
the sandbox image the original ran in (``AttemptSpec.replay``, see ``replay.proto``).

Every seed derives from the run key, so the same script, params, templates and run key give the
same rows only with the same Faker release and generation version (Faker is deterministic per
``seed_instance`` for one patch version alone) and the same image (the SDK and the packages a
``# requirements:`` header added). A worker that differs refuses the attempt, naming both sides.

The image: the recorded tag is used when the engine has it; otherwise the worker builds the image
its current inputs give (the tag is the hash of those inputs), and if that is the recorded tag the
image was rebuilt; if not, the attempt fails naming the recorded tag and the one this worker's
inputs give (its Dockerfile, requirements or SDK changed since the original ran). An INFRASTRUCTURE
failure, so another worker (one with the old image) may take the retry.

Rejected: warning instead of refusing (a replay promises the same rows); running in whatever image
the worker has (a changed SDK may generate other data).
"""

from __future__ import annotations

from seedbed.api.v1 import replay_pb2
from seedbed.worker import templates
from seedbed.worker._sandbox_errors import SandboxError

__all__ = ["PinnedImageError", "check_image", "version_refusal"]


class PinnedImageError(SandboxError):
    """The replayed run's image is not on this worker and cannot be rebuilt from its inputs."""

    def __init__(self, recorded: str, current: str, replayed_from: str = "") -> None:
        self.recorded = recorded
        self.current = current
        run = f"run {replayed_from}" if replayed_from else "the replayed run"
        super().__init__(
            f"{run} ran in image {recorded}, which this worker does not have and cannot rebuild: its "
            f"sandbox inputs now give {current} (the image's Dockerfile, requirements, SDK or the script's "
            "`# requirements:` packages changed since). Restore that image on a worker (docker load), or "
            "run the scenario anew instead of replaying"
        )


def check_image(recorded: str, picked: str, replayed_from: str = "") -> None:
    """Raise PinnedImageError when the image picked for the attempt is not the recorded one."""
    if recorded and picked != recorded:
        raise PinnedImageError(recorded, picked, replayed_from)


def version_refusal(replay: replay_pb2.ReplayPin) -> str | None:
    """Why this worker cannot replay the run with the same rows (another Faker release or generation
    version than the original's); None when it can."""
    here = {"faker": templates.FAKER_VERSION, "generation": str(templates.GENERATION_VERSION)}
    run = f"run {replay.replayed_from}" if replay.replayed_from else "the replayed run"
    for name, current in here.items():
        recorded = replay.versions.get(name, "")
        if recorded and recorded != current:
            what = "Faker release" if name == "faker" else "generation version"
            return (
                f"{run} was generated with {what} {recorded}; this worker has {current}: the same seeds "
                f"would give other rows, so the replay is refused. Run it on a worker with {what} "
                f"{recorded}, or run the scenario anew"
            )
    return None
