"""Rules for connection definitions: ids, kinds, URLs, REST options and secret sources.

A password written into a SQL URL is moved into the connection's secret, so the stored URL, the
API's answers and the logs never carry it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from seedbed.api.v1 import attempt_pb2, connection_pb2
from seedbed.coordinator.errors import InvalidArgumentError
from seedbed.coordinator.secrets import SecretBox
from seedbed.coordinator.store.catalog import ConnectionRecord

KINDS = ("postgresql", "sql", "rest", "file")
KIND_NUMBERS = {k: getattr(connection_pb2, f"CONNECTION_KIND_{k.upper()}") for k in KINDS}
_ID = re.compile(r"^conn_[a-z0-9][a-z0-9_-]{0,62}$")
_ENV = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
_HEADER = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,100}$")
MAX_SECRET_BYTES = 16 * 1024


def normalize_connection_id(raw: str) -> str:
    ident = raw if raw.startswith("conn_") else f"conn_{raw}"
    if not _ID.match(ident):
        raise InvalidArgumentError(
            "connection_id",
            f"{raw!r} is not a valid id: use 1-63 lower-case letters, digits, '_' or '-' after 'conn_'",
        )
    return ident


@dataclass(frozen=True)
class SecretChoice:
    kind: str  # none | stored | env | file
    ref: str = ""
    value: str | None = None  # plain text, only for "stored", never persisted as is


def split_sql_url(kind: str, raw: str, private_dir: Path | None = None) -> tuple[str, str | None]:
    """Validate a SQL URL; return it without its password, and the password if it had one.

    A SQLite file inside ``private_dir`` (the coordinator's data folder: its store, secret key and
    admin key) is refused: a scenario must never be handed the coordinator's own files."""
    if not raw:
        raise InvalidArgumentError("url", f"a {kind} connection needs a URL")
    if len(raw) > 2048:
        raise InvalidArgumentError("url", "is longer than 2048 characters")
    try:
        url = make_url(raw)
    except ArgumentError as exc:
        raise InvalidArgumentError("url", f"is not a database URL: {exc}") from None
    driver = url.drivername.split("+")[0]
    if kind == "postgresql" and driver not in ("postgresql", "postgres"):
        raise InvalidArgumentError(
            "url", f"a postgresql connection needs a postgresql:// URL, not {driver}://"
        )
    if driver == "sqlite" and private_dir is not None:
        _refuse_private_sqlite(url.database or "", private_dir)
    password = url.password
    # URL.set(password=None) keeps the password ("None" means "unchanged"): build it anew.
    url = URL.create(url.drivername, url.username, None, url.host, url.port, url.database, url.query)
    if kind == "postgresql":
        url = url.set(drivername="postgresql")
    return url.render_as_string(hide_password=False), (str(password) if password else None)


def _refuse_private_sqlite(database: str, private_dir: Path) -> None:
    if database in ("", ":memory:"):
        return
    # URI filenames (sqlite:///file:/path?mode=ro&uri=true) name the file between 'file:' and '?'.
    path = database.removeprefix("file:").split("?", 1)[0] if database.startswith("file:") else database
    private = private_dir.resolve()
    target = Path(path).resolve()
    if target == private or private in target.parents:
        raise InvalidArgumentError(
            "url",
            "names a SQLite file inside the coordinator's data folder, where its store and keys live: "
            "put the target database in another folder",
        )


def validate_rest(options: dict[str, Any]) -> dict[str, Any]:
    base = str(options.get("base_url", ""))
    parts = urlsplit(base)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidArgumentError("rest.base_url", f"{base!r} is not an absolute http(s) URL")
    if parts.username or parts.password:
        raise InvalidArgumentError(
            "rest.base_url", "must not carry credentials: use the secret with auth_header"
        )
    if parts.query or parts.fragment:
        raise InvalidArgumentError("rest.base_url", "must not have a query or fragment")
    headers = dict(options.get("headers", {}))
    for name, value in headers.items():
        if not _HEADER.match(name) or any(c in str(value) for c in "\r\n\0"):
            raise InvalidArgumentError(f"rest.headers[{name[:40]!r}]", "is not a valid header")
    auth = str(options.get("auth_header", ""))
    if auth and not _HEADER.match(auth):
        raise InvalidArgumentError("rest.auth_header", f"{auth[:40]!r} is not a valid header name")
    batch = int(options.get("batch_size", 0) or 100)
    timeout = int(options.get("timeout_seconds", 0) or 30)
    if not 1 <= batch <= 10_000:
        raise InvalidArgumentError("rest.batch_size", f"{batch} is outside 1..10000")
    if not 1 <= timeout <= 300:
        raise InvalidArgumentError("rest.timeout_seconds", f"{timeout} is outside 1..300")
    return {
        "base_url": base.rstrip("/"),
        "headers": headers,
        "auth_header": auth,
        "batch_size": batch,
        "timeout_seconds": timeout,
        "idempotent": bool(options.get("idempotent", False)),
    }


def choose_secret(source: str, value: str, url_password: str | None) -> SecretChoice:
    """source is the oneof case of SecretSource ('' when unset)."""
    if source and url_password:
        raise InvalidArgumentError("secret", "give the password either in the URL or as the secret, not both")
    if url_password:
        return SecretChoice("stored", value=url_password)
    if source == "value":
        if not value:
            raise InvalidArgumentError("secret.value", "is empty")
        if len(value.encode()) > MAX_SECRET_BYTES:
            raise InvalidArgumentError("secret.value", f"is longer than {MAX_SECRET_BYTES} bytes")
        return SecretChoice("stored", value=value)
    if source == "env":
        if not _ENV.match(value):
            raise InvalidArgumentError("secret.env", f"{value[:60]!r} is not an environment variable name")
        return SecretChoice("env", ref=value)
    if source == "file":
        if not value.startswith("/") or "\0" in value or len(value) > 1024:
            raise InvalidArgumentError("secret.file", "must be an absolute path on the workers")
        return SecretChoice("file", ref=value)
    return SecretChoice("none")


def snapshot(rec: ConnectionRecord, secrets: SecretBox) -> attempt_pb2.ConnectionSnapshot:
    """What a worker needs to open the connection: the secret decrypted, or its reference."""
    msg = attempt_pb2.ConnectionSnapshot(id=rec.id, kind=KIND_NUMBERS[rec.kind], url=rec.url)
    if rec.kind == "rest":
        msg.rest.CopyFrom(connection_pb2.RestOptions(**rec.rest))
    if rec.secret_kind == "stored" and rec.secret_cipher:
        msg.secret.value = secrets.open(rec.secret_cipher)
    elif rec.secret_kind == "env":
        msg.secret.env = rec.secret_ref
    elif rec.secret_kind == "file":
        msg.secret.file = rec.secret_ref
    return msg


def refusal(rec: ConnectionRecord, run_as: str) -> str:
    """Why a run acting as ``run_as`` may not use the connection; empty when it may."""
    if not rec.allowed_users or run_as in rec.allowed_users:
        return ""
    return (
        f"connection {rec.id!r} may not be used by runs acting as {run_as or '(nobody)'!r} "
        f"(allowed: {', '.join(rec.allowed_users)}); ask an admin to add the user or change the "
        "scenario's run_as"
    )


def run_snapshot(rec: ConnectionRecord, secrets: SecretBox, run_as: str) -> attempt_pb2.ConnectionSnapshot:
    """The snapshot an attempt gets: the full one, or, for a connection the run may not use, only
    its id, kind and the reason (no URL, options or secret reach the worker)."""
    reason = refusal(rec, run_as)
    if reason:
        return attempt_pb2.ConnectionSnapshot(id=rec.id, kind=KIND_NUMBERS[rec.kind], refused_reason=reason)
    return snapshot(rec, secrets)
