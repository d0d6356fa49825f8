"""The janitor: remove sandbox containers that outlived their attempt.

Every sandbox carries labels (`seedbed.managed=1`, `seedbed.run`, `seedbed.attempt`,
`seedbed.deadline`, `seedbed.fencing`). The driver removes its containers in `finally`; this sweep
catches the rest (a worker process killed with SIGKILL, a lost engine connection during cleanup).

Two ways in: `sweep_containers` decides alone, by deadline; `list_containers` and
`remove_containers` let the coordinator decide with the store (runs that ended, attempts that were
superseded), since only it knows which attempt of a run is the current one.

The sweep also prunes the node's image cache (`sweep_images`): derived and superseded sandbox
images past the operator's caps, least recently used first (see `seedbed.worker._image_cache`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import docker
import docker.errors
import requests.exceptions

from seedbed.worker._image_cache import DerivedImagePolicy
from seedbed.worker._sandbox_errors import EngineUnavailableError

__all__ = [
    "LABEL_ATTEMPT",
    "LABEL_DEADLINE",
    "LABEL_FENCING",
    "LABEL_MANAGED",
    "LABEL_RUN",
    "kill_quietly",
    "list_containers",
    "remove_containers",
    "remove_quietly",
    "sweep_containers",
    "sweep_images",
]

logger = logging.getLogger(__name__)

LABEL_MANAGED = "seedbed.managed"
LABEL_RUN = "seedbed.run"
LABEL_ATTEMPT = "seedbed.attempt"
LABEL_DEADLINE = "seedbed.deadline"
LABEL_FENCING = "seedbed.fencing"


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


def _managed(client: docker.DockerClient) -> list[dict[str, Any]]:
    """The engine's summaries of every managed container (one call; no inspect per container)."""
    try:
        summaries: list[dict[str, Any]] = client.api.containers(
            all=True, filters={"label": f"{LABEL_MANAGED}=1"}
        )
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        raise EngineUnavailableError(str(client.api.base_url), str(exc)[:300]) from exc
    return summaries


def list_containers(client: docker.DockerClient) -> list[dict[str, str]]:
    """Every managed container as its labels describe it: id, run, attempt, fencing (token),
    deadline; and from the engine: state (running, exited, …) and created (ISO 8601, UTC).
    Raises EngineUnavailableError."""
    out = []
    for summary in _managed(client):
        labels = summary.get("Labels") or {}
        created = summary.get("Created")
        out.append(
            {
                "id": str(summary.get("Id", "")),
                "run": labels.get(LABEL_RUN, ""),
                "attempt": labels.get(LABEL_ATTEMPT, ""),
                "fencing": labels.get(LABEL_FENCING, ""),
                "deadline": labels.get(LABEL_DEADLINE, ""),
                "state": str(summary.get("State", "")),
                "created": datetime.fromtimestamp(created, UTC).isoformat()
                if isinstance(created, int)
                else "",
            }
        )
    return out


def remove_containers(client: docker.DockerClient, ids: Iterable[str]) -> list[str]:
    """Force-remove the managed containers among `ids`; return the ids removed. Ids of containers
    that are not here, or not Seedbed's, are left alone. Raises EngineUnavailableError."""
    wanted = set(ids)
    removed = []
    for summary in _managed(client):
        container_id = str(summary.get("Id", ""))
        if container_id not in wanted or not remove_quietly(client, container_id):
            continue
        labels = summary.get("Labels") or {}
        removed.append(container_id)
        logger.info(
            "janitor removed container %s of run %s attempt %s",
            container_id[:12],
            labels.get(LABEL_RUN, "?"),
            labels.get(LABEL_ATTEMPT, "?"),
        )
    return removed


def sweep_images(client: docker.DockerClient, policy: DerivedImagePolicy) -> list[str]:
    """Prune the node's derived and superseded sandbox images past `policy`; the tags removed.
    Skipped while an image build runs (it takes its turn at the next sweep); engine trouble is
    logged, not raised: the container sweep matters more."""
    # Imported here: the image module is heavy, and the container sweep does not need it.
    from seedbed.worker.images import prune_images

    try:
        removed = prune_images(client, policy)
    except (EngineUnavailableError, OSError) as exc:
        logger.warning("janitor: pruning images: %s", exc)
        return []
    for tag in removed:
        logger.info("janitor removed image %s", tag)
    return removed
