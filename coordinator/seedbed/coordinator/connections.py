"""Rules for connection definitions: ids, kinds, URLs, REST and bulk options, secret sources.

A password written into a SQL URL is moved into the connection's secret, so the stored URL, the
API's answers and the logs never carry it. So are the URL's secret-like query parameters
(`?password=`, `?sslpassword=`, `?token=`, `?api_key=`… — see `SECRET_QUERY_WORDS`, any case): the
secret then holds a small document, ``seedbed-secret-v1:{"password": …, "query": {name: value}}``,
which the worker reads back (``seedbed.worker.agent._connections``) to rebuild the URL just before it
connects. A secret given besides them (``secret.value``, ``env``, ``file``) is refused as ambiguous.

A ``file`` secret must lie inside ``SEEDBED_SECRET_FILE_DIR`` (symlinks resolved); with no folder set,
file secrets are refused: the worker checks again when it reads one.

Bulk options (``BulkOptions``: ``writers``, ``shard_rows``, ``max_writers``) belong to PostgreSQL
connections only, the one kind whose sink writes generated row sets in parallel shards. Only the
options given are stored (a JSON object, ``{}`` when none): an unset option keeps following the
worker's default, so a later change of a default reaches existing connections, and a worker that
predates an option never receives it. ``shard_rows`` is rounded up to a multiple of the ledger's
batch here, at create, so that the API answers the value the worker will use (refusing other values
was rejected: rounding up is harmless, and it is what the contract documents). 0 and negative values
are refused rather than read as "unset": presence (the fields are ``optional``) says "not given".
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
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
# Environment variables no connection secret may name (the worker refuses them too).
RESERVED_ENV_PREFIXES = ("SEEDBED_", "RAY_")
# The same prefix as the worker's `agent._connections.SECRET_DOCUMENT_PREFIX` (a test pins both).
SECRET_DOCUMENT_PREFIX = "seedbed-secret-v1:"
# A query parameter whose name (lower-cased, '-' read as '_') contains one of these is a secret.
SECRET_QUERY_WORDS = ("password", "passwd", "pwd", "secret", "token", "api_key", "apikey", "access_key")
# Bulk options: the allowed range of each (inclusive). shard_rows is rounded up to a multiple of
# LEDGER_BATCH_ROWS, the rows the worker's write ledger records per batch.
BULK_RANGES = {"writers": (1, 64), "shard_rows": (10_000, 10_000_000), "max_writers": (1, 1024)}
LEDGER_BATCH_ROWS = 10_000


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


@dataclass(frozen=True)
class UrlSecrets:
    """What ``split_sql_url`` took out of a URL: its password and its secret query parameters."""

    password: str | None = None
    query: dict[str, str | list[str]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return self.password is not None or bool(self.query)

    def stored_value(self) -> str:
        """The plain password, or the document that carries the query parameters too."""
        if not self.query:
            return self.password or ""
        doc = {"password": self.password, "query": self.query}
        return SECRET_DOCUMENT_PREFIX + json.dumps(doc, separators=(",", ":"), sort_keys=True)


def is_secret_query_name(name: str) -> bool:
    folded = name.lower().replace("-", "_")
    return any(word in folded for word in SECRET_QUERY_WORDS)


def split_sql_url(kind: str, raw: str, private_dir: Path | None = None) -> tuple[str, UrlSecrets]:
    """Validate a SQL URL; return it without its password and secret query parameters, and them.

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
    moved = {
        k: (list(v) if isinstance(v, tuple) else v) for k, v in url.query.items() if is_secret_query_name(k)
    }
    query = {k: v for k, v in url.query.items() if k not in moved}
    # URL.set(password=None) keeps the password ("None" means "unchanged"): build it anew.
    url = URL.create(url.drivername, url.username, None, url.host, url.port, url.database, query)
    if kind == "postgresql":
        url = url.set(drivername="postgresql")
    secrets = UrlSecrets(str(password) if password else None, moved)
    if len(secrets.stored_value().encode()) > MAX_SECRET_BYTES:
        raise InvalidArgumentError(
            "url", f"its password and secret parameters are over {MAX_SECRET_BYTES} bytes"
        )
    return url.render_as_string(hide_password=False), secrets


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
    undo, undo_id_field = validate_rest_undo(
        str(options.get("undo", "")), str(options.get("undo_id_field", ""))
    )
    return {
        "base_url": base.rstrip("/"),
        "headers": headers,
        "auth_header": auth,
        "batch_size": batch,
        "timeout_seconds": timeout,
        "idempotent": bool(options.get("idempotent", False)),
        "undo": undo,
        "undo_id_field": undo_id_field,
    }


_UNDO_TOKEN = r"(?:[A-Za-z0-9._~%!$&'()*+,=:@-]|\{id\}|\{path\})+"
_UNDO_PATH = re.compile(f"/?{_UNDO_TOKEN}(?:/{_UNDO_TOKEN})*")
_ID_FIELD = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,63}(?:\.[A-Za-z_][A-Za-z0-9_-]{0,63}){0,7}")


def validate_rest_undo(undo: str, id_field: str) -> tuple[str, str]:
    """A REST connection's declared undo: "" (none), or "DELETE /path" relative to the base URL with
    ``{id}`` (the created resource's id) and optionally ``{path}`` (the path the run posted to);
    and the response field naming the id (a dotted path; empty: "id")."""
    if id_field and not _ID_FIELD.fullmatch(id_field):
        raise InvalidArgumentError(
            "rest.undo_id_field", f"{id_field[:80]!r} is not a field name or dotted path such as 'data.id'"
        )
    if not undo:
        if id_field:
            raise InvalidArgumentError("rest.undo_id_field", "is set without rest.undo: declare the undo too")
        return "", ""
    method, _, path = undo.partition(" ")
    example = "e.g. 'DELETE {path}/{id}' or 'DELETE /things/{id}'"
    if method != "DELETE":
        raise InvalidArgumentError("rest.undo", f"must start with DELETE ({example}), not {undo[:80]!r}")
    if len(path) > 500 or "{id}" not in path or not _UNDO_PATH.fullmatch(path):
        raise InvalidArgumentError(
            "rest.undo",
            f"{path[:80]!r} is not a path relative to the base URL holding {{id}} ({example}); "
            "no scheme, host, query, spaces or other placeholders",
        )
    if any(segment in (".", "..") for segment in path.split("/")) or "//" in path:
        raise InvalidArgumentError("rest.undo", f"{path[:80]!r} has an empty, '.' or '..' segment")
    return undo, id_field or "id"


def validate_bulk(kind: str, options: connection_pb2.BulkOptions) -> dict[str, int]:
    """The bulk options given (absent fields left out), checked against ``BULK_RANGES``."""
    given = {name: int(getattr(options, name)) for name in BULK_RANGES if options.HasField(name)}
    if given and kind != "postgresql":
        names = ", ".join(f"bulk.{name}" for name in given)
        raise InvalidArgumentError(
            "bulk", f"{names}: bulk options apply to postgresql connections only, not to {kind}"
        )
    for name, value in given.items():
        low, high = BULK_RANGES[name]
        if not low <= value <= high:
            raise InvalidArgumentError(f"bulk.{name}", f"{value} is outside {low:,}..{high:,}")
    if "shard_rows" in given:
        given["shard_rows"] = -(-given["shard_rows"] // LEDGER_BATCH_ROWS) * LEDGER_BATCH_ROWS
    return given


def choose_secret(
    source: str, value: str, from_url: UrlSecrets | None = None, *, secret_file_dir: Path | None = None
) -> SecretChoice:
    """source is the oneof case of SecretSource ('' when unset); ``from_url`` what the URL held."""
    if source and from_url:
        where = ", ".join(
            (["its password"] if from_url.password else [])
            + [f"query parameter {k!r}" for k in sorted(from_url.query)]
        )
        raise InvalidArgumentError(
            "secret",
            f"the URL carries a secret ({where}) and secret.{source} is set too: give it in one place only "
            "(the URL's secrets are stored encrypted, as secret.value would be)",
        )
    if from_url:
        return SecretChoice("stored", value=from_url.stored_value())
    if source == "value":
        if not value:
            raise InvalidArgumentError("secret.value", "is empty")
        if value.startswith(SECRET_DOCUMENT_PREFIX):
            raise InvalidArgumentError(
                "secret.value", f"must not start with {SECRET_DOCUMENT_PREFIX!r} (reserved)"
            )
        if len(value.encode()) > MAX_SECRET_BYTES:
            raise InvalidArgumentError("secret.value", f"is longer than {MAX_SECRET_BYTES} bytes")
        return SecretChoice("stored", value=value)
    if source == "env":
        if not _ENV.match(value):
            raise InvalidArgumentError("secret.env", f"{value[:60]!r} is not an environment variable name")
        if value.upper().startswith(RESERVED_ENV_PREFIXES):
            # Workers started by a local coordinator inherit its environment: its secret key, store
            # URL and admin key must not become a connection's secret sent to a target.
            raise InvalidArgumentError(
                "secret.env",
                f"variables starting with {' or '.join(RESERVED_ENV_PREFIXES)} configure Seedbed and Ray "
                "and cannot be connection secrets: choose another variable",
            )
        return SecretChoice("env", ref=value)
    if source == "file":
        if not value.startswith("/") or "\0" in value or len(value) > 1024:
            raise InvalidArgumentError("secret.file", "must be an absolute path on the workers")
        _check_secret_file(value, secret_file_dir)
        return SecretChoice("file", ref=value)
    return SecretChoice("none")


def _check_secret_file(value: str, folder: Path | None) -> None:
    """The file must resolve (symlinks followed, here as on the workers) to a path inside ``folder``."""
    if folder is None:
        raise InvalidArgumentError(
            "secret.file",
            "file secrets are disabled: set SEEDBED_SECRET_FILE_DIR (on the coordinator and the workers) to "
            "the folder that holds them, or use secret.value or secret.env",
        )
    root = folder.resolve()
    target = Path(value).resolve()
    if root not in target.parents:
        raise InvalidArgumentError(
            "secret.file",
            f"{value[:200]!r} resolves outside {root} (SEEDBED_SECRET_FILE_DIR), symlinks followed: put the "
            "secret file in that folder",
        )


def snapshot(rec: ConnectionRecord, secrets: SecretBox) -> attempt_pb2.ConnectionSnapshot:
    """What a worker needs to open the connection: the secret decrypted, or its reference."""
    msg = attempt_pb2.ConnectionSnapshot(id=rec.id, kind=KIND_NUMBERS[rec.kind], url=rec.url)
    if rec.kind == "rest":
        msg.rest.CopyFrom(connection_pb2.RestOptions(**rec.rest))
    if rec.bulk:
        msg.bulk.CopyFrom(connection_pb2.BulkOptions(**rec.bulk))
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
