"""From a connection snapshot (the coordinator's view) to a sink's spec, resolving the secret here,
on the worker: a stored secret arrives decrypted, an ``env`` or ``file`` reference is read now."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from seedbed.api.v1 import attempt_pb2, connection_pb2
from seedbed.worker.agent._errors import UnknownConnection
from seedbed.worker.sinks import ConnectionSpec

_KINDS = {
    connection_pb2.CONNECTION_KIND_POSTGRESQL: "postgresql",
    connection_pb2.CONNECTION_KIND_SQL: "sql",
    connection_pb2.CONNECTION_KIND_REST: "rest",
    connection_pb2.CONNECTION_KIND_FILE: "file",
}
MAX_SECRET_FILE_BYTES = 64 * 1024


def resolve_secret(snapshot: attempt_pb2.ConnectionSnapshot) -> str | None:
    source = snapshot.secret.WhichOneof("source")
    if source == "value":
        return snapshot.secret.value
    if source == "env":
        value = os.environ.get(snapshot.secret.env)
        if value is None:
            raise UnknownConnection(
                f"connection {snapshot.id}: its secret comes from the environment variable "
                f"{snapshot.secret.env}, which is not set on this worker"
            )
        return value
    if source == "file":
        path = Path(snapshot.secret.file)
        try:
            with path.open("rb") as handle:
                data = handle.read(MAX_SECRET_FILE_BYTES + 1)
        except OSError as exc:
            raise UnknownConnection(
                f"connection {snapshot.id}: its secret file {path} cannot be read on this worker: "
                f"{exc.strerror}"
            ) from None
        if len(data) > MAX_SECRET_FILE_BYTES:
            raise UnknownConnection(
                f"connection {snapshot.id}: its secret file is over {MAX_SECRET_FILE_BYTES} bytes"
            )
        return data.decode().strip()
    return None


def to_spec(
    snapshot: attempt_pb2.ConnectionSnapshot,
    *,
    fetch_max_rows: int | None = None,
    statement_timeout_seconds: int | None = None,
) -> tuple[ConnectionSpec, str | None]:
    """The sink spec, and the secret (so errors can be scrubbed of it)."""
    if snapshot.refused_reason:
        # The run's run_as may not use it: the coordinator sent no URL or secret, only the reason.
        raise UnknownConnection(snapshot.refused_reason)
    kind = _KINDS.get(snapshot.kind)
    if kind is None:
        raise UnknownConnection(f"connection {snapshot.id} has an unknown kind {snapshot.kind}")
    secret = resolve_secret(snapshot)
    options: dict[str, Any] = {}
    if kind in ("postgresql", "sql"):
        url = make_url(snapshot.url)
        if secret is not None:
            url = url.set(password=secret)
        options["url"] = url.render_as_string(hide_password=False)
        if fetch_max_rows:
            options["fetch_max_rows"] = fetch_max_rows
        # SDK calls are served while the sandbox waits: a statement must not outlive the attempt.
        if statement_timeout_seconds and kind == "postgresql":
            options["statement_timeout_seconds"] = statement_timeout_seconds
    elif kind == "rest":
        rest = snapshot.rest
        headers = dict(rest.headers)
        if rest.auth_header and secret is not None:
            headers[rest.auth_header] = secret
        options.update(
            base_url=rest.base_url,
            headers=headers,
            batch_size=rest.batch_size or 100,
            timeout_seconds=rest.timeout_seconds or 30,
            idempotent=rest.idempotent,
        )
    return ConnectionSpec(id=snapshot.id, kind=kind, options=options), secret  # type: ignore[arg-type]
