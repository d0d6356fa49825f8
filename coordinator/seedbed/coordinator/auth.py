"""API keys as every face reads them, and the operator's first key.

- ``bearer`` takes the key out of ``authorization: Bearer <key>`` in a call's metadata or a
  request's headers (pairs of name and value); UNAUTHENTICATED, with how to get a key, otherwise.
- ``bootstrap_admin`` makes sure someone can call a new coordinator.

Each face authenticates its calls with these and ``Store.access.authenticate`` and makes the caller
the current :class:`~seedbed.coordinator.access.Principal`: the gRPC face in its interceptor
(``faces.grpc_auth``), the HTTP faces in theirs. This module imports no protocol library.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from seedbed.coordinator.access import HOW_TO_GET_A_KEY, validate_chosen_key
from seedbed.coordinator.errors import UnauthenticatedError
from seedbed.coordinator.settings import CoordinatorSettings
from seedbed.coordinator.store import Store

__all__ = ["ADMIN_KEY_FILE", "MAX_KEY_CHARS", "bearer", "bootstrap_admin"]

log = logging.getLogger(__name__)

ADMIN_KEY_FILE = "admin-api-key"
MAX_KEY_CHARS = 4096


def bearer(metadata: Any) -> str:
    """The key from ``authorization: Bearer <key>``. UnauthenticatedError when absent or malformed."""
    for key, value in metadata or ():
        if key.lower() != "authorization":
            continue
        text = value.decode() if isinstance(value, bytes) else str(value)
        scheme, _, secret = text.strip().partition(" ")
        if scheme.lower() != "bearer" or not secret.strip() or len(secret) > MAX_KEY_CHARS:
            raise UnauthenticatedError(f"authorization must read 'Bearer <API key>': {HOW_TO_GET_A_KEY}")
        return secret.strip()
    raise UnauthenticatedError(f"this call needs an API key: {HOW_TO_GET_A_KEY}")


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
