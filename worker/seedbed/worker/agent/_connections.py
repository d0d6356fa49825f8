"""From a connection snapshot (the coordinator's view) to a sink's spec, resolving the secret here,
on the worker: a stored secret arrives decrypted, an ``env`` or ``file`` reference is read now.

A stored secret is either the password (or header value) itself, or — when the coordinator moved
secret-like query parameters out of a SQL URL (``?password=``, ``?sslpassword=``, ``?token=``…) — a
small document: ``seedbed-secret-v1:`` followed by JSON ``{"password": str | null, "query": {name:
value or [values]}}``. The query parameters are put back into the URL here, just before connecting.

A replay maps the script's connection names to others (``AttemptSpec.replay.connection_aliases``,
checked by the coordinator): :func:`aliased_connections` makes ``connection("old")`` resolve to the
snapshot of ``new``, so the sink, its ledger and every batch it reports carry ``new``'s id (what
the run's purge and its write batches must name), while the script keeps the names it was written
with. An alias whose target the attempt was not given (deleted, another project's) resolves to a
refusal naming both, never to the old connection.

A ``file`` secret is read only from inside ``SEEDBED_SECRET_FILE_DIR`` (symlinks resolved first); with
no folder set, file secrets are refused: otherwise a connection could name any file the worker can
read (the coordinator's keys) and send it to a REST target.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from seedbed.api.v1 import attempt_pb2, connection_pb2
from seedbed.worker.agent._errors import UnknownConnection
from seedbed.worker.agent._scrub import Scrubber
from seedbed.worker.settings import worker_settings
from seedbed.worker.sinks import ConnectionSpec

_KINDS = {
    connection_pb2.CONNECTION_KIND_POSTGRESQL: "postgresql",
    connection_pb2.CONNECTION_KIND_SQL: "sql",
    connection_pb2.CONNECTION_KIND_REST: "rest",
    connection_pb2.CONNECTION_KIND_FILE: "file",
}
MAX_SECRET_FILE_BYTES = 64 * 1024
# The same prefix as the coordinator's `connections.SECRET_DOCUMENT_PREFIX` (a test pins both).
SECRET_DOCUMENT_PREFIX = "seedbed-secret-v1:"
# BulkOptions fields, passed to the PostgreSQL sink as options of the same names when present.
BULK_OPTIONS = ("writers", "shard_rows", "max_writers")


@dataclass(frozen=True)
class Secret:
    """A resolved secret: the password (or header value), and query parameters for a SQL URL."""

    password: str | None = None
    query: dict[str, str | list[str]] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str | None) -> Secret:
        if text is None or not text.startswith(SECRET_DOCUMENT_PREFIX):
            return cls(password=text)
        try:
            doc = json.loads(text.removeprefix(SECRET_DOCUMENT_PREFIX))
            password, query = doc.get("password"), doc.get("query") or {}
            if not (password is None or isinstance(password, str)) or not isinstance(query, dict):
                raise ValueError
        except (ValueError, AttributeError):
            raise UnknownConnection(
                "the connection's stored secret is not readable: store it again"
            ) from None
        return cls(password=password, query=query)

    def values(self) -> list[str]:
        out = [self.password] if self.password else []
        for value in self.query.values():
            out.extend([value] if isinstance(value, str) else value)
        return out


# Variables that configure Seedbed and Ray on the worker (which a local coordinator's workers share
# with it): never read as a connection's secret, whatever the stored connection says.
RESERVED_ENV_PREFIXES = ("SEEDBED_", "RAY_")


def _secret_file(connection_id: str, name: str, folder: Path | None) -> str:
    if folder is None:
        raise UnknownConnection(
            f"connection {connection_id}: its secret is a file, and file secrets are disabled on this worker "
            "(set SEEDBED_SECRET_FILE_DIR to the folder that holds them)"
        )
    try:
        root = folder.resolve(strict=True)
        path = Path(name).resolve(strict=True)
    except OSError as exc:
        raise UnknownConnection(
            f"connection {connection_id}: its secret file cannot be read on this worker: {exc.strerror}"
        ) from None
    if root not in path.parents:
        raise UnknownConnection(
            f"connection {connection_id}: its secret file is outside {root} (SEEDBED_SECRET_FILE_DIR), "
            "symlinks resolved: refused"
        )
    try:
        # Not a FIFO or device that would block or never end; no symlink swapped in since resolving.
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        raise UnknownConnection(
            f"connection {connection_id}: its secret file cannot be read on this worker: {exc.strerror}"
        ) from None
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise UnknownConnection(f"connection {connection_id}: its secret file is not a regular file")
        data = handle.read(MAX_SECRET_FILE_BYTES + 1)
    if len(data) > MAX_SECRET_FILE_BYTES:
        raise UnknownConnection(
            f"connection {connection_id}: its secret file is over {MAX_SECRET_FILE_BYTES} bytes"
        )
    return data.decode().strip()


def resolve_secret(
    snapshot: attempt_pb2.ConnectionSnapshot, *, secret_file_dir: Path | None = None
) -> Secret:
    """The connection's secret; ``secret_file_dir`` defaults to the worker's setting."""
    source = snapshot.secret.WhichOneof("source")
    if source == "value":
        return Secret.parse(snapshot.secret.value)
    if source == "env":
        if snapshot.secret.env.upper().startswith(RESERVED_ENV_PREFIXES):
            raise UnknownConnection(
                f"connection {snapshot.id}: its secret names the environment variable "
                f"{snapshot.secret.env}, which configures Seedbed or Ray and is never a connection's secret"
            )
        value = os.environ.get(snapshot.secret.env)
        if value is None:
            raise UnknownConnection(
                f"connection {snapshot.id}: its secret comes from the environment variable "
                f"{snapshot.secret.env}, which is not set on this worker"
            )
        return Secret(password=value)
    if source == "file":
        folder = secret_file_dir if secret_file_dir is not None else worker_settings().secret_file_dir
        return Secret(password=_secret_file(snapshot.id, snapshot.secret.file, folder))
    return Secret()


def aliased_connections(
    snapshots: Iterable[attempt_pb2.ConnectionSnapshot], aliases: Mapping[str, str]
) -> dict[str, attempt_pb2.ConnectionSnapshot]:
    """The attempt's connections by the names the script uses: each id, and each alias ``old`` as
    the snapshot of its ``new``."""
    found = {c.id: c for c in snapshots}
    named = dict(found)
    for old, new in aliases.items():
        target = found.get(new)
        if target is None:
            target = attempt_pb2.ConnectionSnapshot(
                id=new,
                refused_reason=f"connection {old!r} is replayed into {new!r}, which this run may not use "
                "or which no longer exists",
            )
        named[old] = target
    return named


def to_spec(
    snapshot: attempt_pb2.ConnectionSnapshot,
    *,
    fetch_max_rows: int | None = None,
    statement_timeout_seconds: int | None = None,
    secret_file_dir: Path | None = None,
) -> tuple[ConnectionSpec, Scrubber]:
    """The sink spec, and a scrubber of its secrets (for errors and replies)."""
    if snapshot.refused_reason:
        # The run's run_as may not use it: the coordinator sent no URL or secret, only the reason.
        raise UnknownConnection(snapshot.refused_reason)
    kind = _KINDS.get(snapshot.kind)
    if kind is None:
        raise UnknownConnection(f"connection {snapshot.id} has an unknown kind {snapshot.kind}")
    secret = resolve_secret(snapshot, secret_file_dir=secret_file_dir)
    scrubber = Scrubber()
    options: dict[str, Any] = {}
    if kind in ("postgresql", "sql"):
        url = make_url(snapshot.url)
        for value in secret.values():
            scrubber.add(value, username=url.username)
        if secret.password is not None:
            url = url.set(password=secret.password)
        if secret.query:
            url = url.update_query_dict(secret.query)
        options["url"] = url.render_as_string(hide_password=False)
        if fetch_max_rows:
            options["fetch_max_rows"] = fetch_max_rows
        # SDK calls are served while the sandbox waits: a statement must not outlive the attempt.
        if statement_timeout_seconds and kind == "postgresql":
            options["statement_timeout_seconds"] = statement_timeout_seconds
        if kind == "postgresql":
            # Only the bulk options the connection was given: absent ones keep the sink's defaults.
            options.update(
                {
                    name: int(getattr(snapshot.bulk, name))
                    for name in BULK_OPTIONS
                    if snapshot.bulk.HasField(name)
                }
            )
    elif kind == "rest":
        rest = snapshot.rest
        headers = dict(rest.headers)
        if rest.auth_header and secret.password is not None:
            headers[rest.auth_header] = secret.password
        scrubber.add(secret.password)
        options.update(
            base_url=rest.base_url,
            headers=headers,
            batch_size=rest.batch_size or 100,
            timeout_seconds=rest.timeout_seconds or 30,
            idempotent=rest.idempotent,
        )
        if rest.undo:  # how a purge undoes what the run posts
            options.update(undo=rest.undo, undo_id_field=rest.undo_id_field or "id")
    return ConnectionSpec(id=snapshot.id, kind=kind, options=options), scrubber  # type: ignore[arg-type]
