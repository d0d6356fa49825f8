"""The janitor: remove sandbox containers that outlived their attempt.

Every sandbox carries labels (`seedbed.managed=1`, `seedbed.run`, `seedbed.attempt`,
`seedbed.deadline`). The driver removes its containers in `finally`; this sweep catches the rest
(a worker process killed with SIGKILL, a lost engine connection during cleanup).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import docker
import docker.errors
import requests.exceptions

__all__ = [
    "LABEL_ATTEMPT",
    "LABEL_DEADLINE",
    "LABEL_MANAGED",
    "LABEL_RUN",
    "kill_quietly",
    "remove_quietly",
    "sweep_containers",
]

logger = logging.getLogger(__name__)

LABEL_MANAGED = "seedbed.managed"
LABEL_RUN = "seedbed.run"
LABEL_ATTEMPT = "seedbed.attempt"
LABEL_DEADLINE = "seedbed.deadline"


def kill_quietly(client: docker.DockerClient, container_id: str) -> None:
    try:
        client.api.kill(container_id)
    except docker.errors.APIError as exc:
        # 409: it is not running any more, which is what we wanted.
        logger.debug("kill %s: %s", container_id[:12], exc)


def remove_quietly(client: docker.DockerClient, container_id: str) -> bool:
    """Force-remove a container; False (and a warning) if the engine refused."""
    try:
        client.api.remove_container(container_id, force=True, v=True)
    except docker.errors.NotFound:
        return True
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        logger.warning("could not remove container %s: %s", container_id[:12], exc)
        return False
    return True


def _expired(label: str | None, cutoff: datetime) -> bool:
    try:
        deadline = datetime.fromisoformat(label or "")
    except ValueError:
        return True  # unreadable: nobody can tell when it should end, so it is an orphan
    if deadline.tzinfo is None:
        deadline = deadline.replace(tzinfo=UTC)
    return deadline < cutoff


def sweep_containers(
    client: docker.DockerClient,
    *,
    older_than_deadline: bool = True,
    grace: timedelta = timedelta(minutes=1),
    now: datetime | None = None,
) -> list[str]:
    """Remove managed containers whose deadline + grace has passed (or all managed containers
    when `older_than_deadline` is False); return the ids removed."""
    cutoff = (now or datetime.now(UTC)) - grace
    removed = []
    for container in client.containers.list(all=True, filters={"label": f"{LABEL_MANAGED}=1"}):
        labels = container.labels or {}
        if older_than_deadline and not _expired(labels.get(LABEL_DEADLINE), cutoff):
            continue
        if remove_quietly(client, str(container.id)):
            removed.append(str(container.id))
            logger.info(
                "janitor removed container %s of run %s attempt %s",
                container.short_id,
                labels.get(LABEL_RUN, "?"),
                labels.get(LABEL_ATTEMPT, "?"),
            )
    return removed
