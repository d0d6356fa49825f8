"""The operator's first key: ``bootstrap_admin`` makes sure someone can call a new coordinator.

How calls are authenticated is each face's part: it reads the key with ``access.bearer_secret``,
checks it with ``Store.access.authenticate`` and makes the caller the current
:class:`~seedbed.coordinator.access.Principal` (the gRPC face in its interceptor,
``faces.grpc.auth``). This module imports no protocol library.
"""

from __future__ import annotations

import logging
import os

from seedbed.coordinator.access import validate_chosen_key
from seedbed.coordinator.settings import CoordinatorSettings
from seedbed.coordinator.store import Store

__all__ = ["ADMIN_KEY_FILE", "bootstrap_admin"]

log = logging.getLogger(__name__)

ADMIN_KEY_FILE = "admin-api-key"


async def bootstrap_admin(store: Store, settings: CoordinatorSettings) -> None:
    """Make sure the operator can call the coordinator (see ``AccessRepository.bootstrap_admin``).

    A generated key is written to ``<data_dir>/admin-api-key``, readable by its owner only, and the
    log names the file, never the key.
    """
    configured = settings.admin_api_key
    if configured:
        validate_chosen_key(configured)
    secret = await store.access.bootstrap_admin(configured)
    if secret is None:
        return
    path = settings.data_dir / ADMIN_KEY_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)  # a file left from an earlier store holds a key this store lacks
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secret + "\n")
    log.warning(
        "created the superuser 'admin'; its API key is in %s (send it as 'authorization: Bearer <key>', "
        "e.g. SEEDBED_API_KEY=$(cat %s))",
        path,
        path,
    )
