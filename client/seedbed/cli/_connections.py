"""``seedbed connection``: the targets scenarios write to (PostgreSQL, any SQLAlchemy database, REST
APIs, files).

A connection's secret (a database password, an API token) goes to the coordinator once, read
without echo or from a pipe, an environment variable or a file on the workers, and is never printed
again: the coordinator answers only where it lives ("stored", "env:NAME", "file:PATH"), and these
commands print nothing else of it.
"""

from __future__ import annotations

import getpass
import sys

import click
from rich.console import RenderableType

from seedbed.api.v1 import connection_pb2
from seedbed.cli._catalog_options import owner, ownership, project_filter, tell
from seedbed.cli._context import CliError, SeedbedGroup, state
from seedbed.cli._exits import ExitCode
from seedbed.cli._input import key_values
from seedbed.cli._output import Column, fields, table

_KINDS = {
    "postgresql": connection_pb2.CONNECTION_KIND_POSTGRESQL,
    "sql": connection_pb2.CONNECTION_KIND_SQL,
    "rest": connection_pb2.CONNECTION_KIND_REST,
    "file": connection_pb2.CONNECTION_KIND_FILE,
}
# BulkOptions fields, given as --writers, --shard-rows, --max-writers.
_BULK_OPTIONS = ("writers", "shard_rows", "max_writers")


def _kind(value: int) -> str:
    return connection_pb2.ConnectionKind.Name(value).removeprefix("CONNECTION_KIND_").lower()


def _bulk(found: connection_pb2.Connection) -> str:
    return " ".join(
        f"{name}={getattr(found.bulk, name)}" for name in _BULK_OPTIONS if found.bulk.HasField(name)
    )


@click.group(cls=SeedbedGroup, aliases={"rm": "delete"})
def connection() -> None:
    """Connections to the targets scenarios write to; their secrets are never shown.

    \b
    Examples:
      seedbed connection create conn_postgres --kind postgresql --url postgresql://app@db/shop --secret-stdin
      seedbed connection test conn_postgres
      seedbed connection list --project shop
    """


@connection.command("list")
@project_filter("connections")
def connection_list(project_key: str) -> None:
    """The connections you may read, or those a project's runs may use.

    \b
    Examples:
      seedbed connection list
      seedbed connection list --project shop -o json
    """
    g = state()
    found = g.client().list_connections(project_key)
    columns = (
        Column("CONNECTION", lambda c: c.id),
        Column("PROJECT", lambda c: owner(c.project_key, c.shared)),
        Column("KIND", lambda c: _kind(c.kind)),
        Column("SECRET", lambda c: c.secret),
        Column("TARGET", lambda c: c.url or c.rest.base_url, overflow="ellipsis"),
    )
    g.emit(found, lambda: table(found, columns))


@connection.command("show")
@click.argument("connection_id", metavar="CONNECTION")
def connection_show(connection_id: str) -> None:
    """Show connection CONNECTION: its target, options, who may use it and where its secret lives
    (never the secret). -o json prints the Connection.

    \b
    Examples:
      seedbed connection show conn_postgres
      seedbed connection show conn_postgres -o json
    """
    g = state()
    found = g.client().get_connection(connection_id)
    g.emit(found, lambda: _fields(found))


def _fields(c: connection_pb2.Connection) -> RenderableType:
    rows: list[tuple[str, object]] = [
        ("connection", c.id),
        ("kind", _kind(c.kind)),
        ("project", owner(c.project_key, c.shared)),
        ("description", c.description),
    ]
    if c.url:
        rows.append(("url", c.url))
    if c.kind == connection_pb2.CONNECTION_KIND_REST:
        rest = c.rest
        rows += [
            ("base url", rest.base_url),
            ("headers", ", ".join(f"{k}={v}" for k, v in sorted(rest.headers.items()))),
            ("auth header", rest.auth_header),
            ("batch size", rest.batch_size or ""),
            ("timeout", f"{rest.timeout_seconds} s" if rest.timeout_seconds else ""),
            ("idempotent", rest.idempotent),
            (
                "undo",
                f"{rest.undo} (id: {rest.undo_id_field or 'id'})" if rest.undo else "none: purge lists posts",
            ),
        ]
    rows += [
        ("secret", c.secret),
        ("runs acting as", ", ".join(c.allowed_users) or "every user"),
        ("bulk", _bulk(c)),
        ("created", c.create_time),
        ("updated", c.update_time),
    ]
    return fields(rows)


@connection.command("create")
@click.argument("connection_id", metavar="CONNECTION")
@click.option("--kind", type=click.Choice(sorted(_KINDS)), required=True, help="what the target is")
@click.option("--url", default="", help="SQL kinds: the database URL (a password in it is stored encrypted)")
@click.option("--description", default="", help="what the connection is for")
@click.option("--base-url", default="", help="rest: the base URL (requests may go only under it)")
@click.option(
    "--header",
    "headers",
    multiple=True,
    metavar="NAME=VALUE",
    callback=key_values,
    help="rest: a non-secret header (repeat)",
)
@click.option(
    "--auth-header", default="", help="rest: the header whose value is the secret, e.g. Authorization"
)
@click.option(
    "--batch-size", type=int, default=0, help="rows per request or statement (default: the target's)"
)
@click.option("--timeout", type=int, default=0, help="rest: seconds per request")
@click.option(
    "--idempotent", is_flag=True, help="rest: the target honours Idempotency-Key (retries are safe)"
)
@click.option(
    "--rest-undo",
    default="",
    metavar="'DELETE PATH'",
    help="rest: how a purge undoes a post, e.g. 'DELETE {path}/{id}' ({id}: the id each response names, "
    "{path}: the path posted to); without it, what runs post is listed as not undoable",
)
@click.option(
    "--rest-undo-id-field",
    default="",
    metavar="FIELD",
    help="rest: where a response names the created id, a field or dotted path (default: id)",
)
@click.option(
    "--writers",
    type=int,
    metavar="N",
    help="postgresql: shards of one bulk insert written at once, each with its own connection "
    "(1-64, default 2)",
)
@click.option(
    "--shard-rows",
    type=int,
    metavar="N",
    help="postgresql: rows per shard of a bulk insert, rounded up to a multiple of 10000 "
    "(10000-10000000, default 100000)",
)
@click.option(
    "--max-writers",
    type=int,
    metavar="N",
    help="postgresql: shard writers on this target at once across all runs (1-1024, default: no bound "
    "but --writers)",
)
@click.option(
    "--secret-env", default="", metavar="NAME", help="the workers read the secret from this variable"
)
@click.option("--secret-file", default="", metavar="PATH", help="the workers read the secret from this file")
@click.option(
    "--secret-stdin",
    is_flag=True,
    help="read the secret from standard input (without echo on a terminal) and store it encrypted",
)
@click.option("--update", is_flag=True, help="replace a connection that exists instead of refusing")
@click.option(
    "--allowed-user",
    "allowed_users",
    multiple=True,
    metavar="USER",
    help="only runs acting as this user may use it (repeat for several; default: every user)",
)
@ownership("the connection (whose runs may use it)")
def connection_create(
    connection_id: str,
    kind: str,
    url: str,
    description: str,
    base_url: str,
    headers: dict[str, str],
    auth_header: str,
    batch_size: int,
    timeout: int,
    idempotent: bool,
    rest_undo: str,
    rest_undo_id_field: str,
    writers: int | None,
    shard_rows: int | None,
    max_writers: int | None,
    secret_env: str,
    secret_file: str,
    secret_stdin: bool,
    update: bool,
    allowed_users: tuple[str, ...],
    project_key: str,
    shared: bool | None,
) -> None:
    """Create connection CONNECTION (or replace it with --update). The secret comes from one of
    --secret-env, --secret-file (read by the workers) or --secret-stdin (stored encrypted); a
    password in --url is stored encrypted too. -o json prints the Connection as saved.

    \b
    Examples:
      seedbed connection create conn_postgres --kind postgresql --url postgresql://app@db:5432/shop \\
          --secret-stdin --writers 4 < password.txt
      seedbed connection create conn_api --kind rest --base-url https://api.example/v1 \\
          --auth-header Authorization --secret-env API_TOKEN --idempotent \\
          --rest-undo 'DELETE {path}/{id}'
    """
    request = connection_pb2.CreateConnectionRequest(
        connection_id=connection_id,
        kind=_KINDS[kind],
        description=description,
        url=url,
        allow_update=update,
        allowed_users=allowed_users,
        project_key=project_key,
        shared=shared,
    )
    if kind == "rest":
        request.rest.CopyFrom(
            connection_pb2.RestOptions(
                base_url=base_url,
                headers=headers,
                auth_header=auth_header,
                batch_size=batch_size,
                timeout_seconds=timeout,
                idempotent=idempotent,
                undo=rest_undo,
                undo_id_field=rest_undo_id_field,
            )
        )
    for name, value in zip(_BULK_OPTIONS, (writers, shard_rows, max_writers), strict=True):
        if value is not None:
            try:
                setattr(request.bulk, name, value)
            except ValueError:  # beyond the field's integer type; the coordinator checks the range
                raise CliError(f"--{name.replace('_', '-')} {value} is out of range") from None
    _secret(request, secret_env, secret_file, secret_stdin)
    g = state()
    made = g.client().create_connection(request)
    users = ", ".join(made.allowed_users) or "every user"
    projects = made.project_key + (" and every other project (shared)" if made.shared else "")
    bulk = _bulk(made)
    tell(
        made,
        f"{made.id} ({kind}) secret: {made.secret}; runs acting as: {users}; runs of: {projects}"
        + (f"; bulk: {bulk}" if bulk else ""),
    )


def _secret(request: connection_pb2.CreateConnectionRequest, env: str, file: str, stdin: bool) -> None:
    given = [
        flag for flag, on in (("--secret-env", env), ("--secret-file", file), ("--secret-stdin", stdin)) if on
    ]
    if len(given) > 1:
        raise CliError(f"give the secret one way: {' and '.join(given)} were both given")
    if env:
        request.secret.env = env
    elif file:
        request.secret.file = file
    elif stdin:
        # Without echo on a terminal, or from a pipe: the secret never appears in argv or history.
        secret = getpass.getpass("secret: ") if sys.stdin.isatty() else sys.stdin.readline().rstrip("\n")
        request.secret.value = secret


@connection.command("test")
@click.argument("connection_id", metavar="CONNECTION")
def connection_test(connection_id: str) -> int:
    """Open connection CONNECTION from a worker and try it; exit 1 when it cannot connect.

    -o json prints the contract's TestConnectionResponse: {"ok", "message", "latency_seconds"}.

    \b
    Examples:
      seedbed connection test conn_postgres
      seedbed connection test conn_api -o json
    """
    g = state()
    result = g.client().test_connection(connection_id)
    status = "ok" if result.ok else "FAILED"
    tell(result, f"{connection_id}: {status} in {result.latency_seconds:.3f}s: {result.message}")
    return ExitCode.SUCCESS if result.ok else ExitCode.FAILED


@connection.command("delete")
@click.argument("connection_id", metavar="CONNECTION")
def connection_delete(connection_id: str) -> None:
    """Delete connection CONNECTION (scenarios that use it fail at their next run).

    -o json prints {"deleted": CONNECTION}.

    \b
    Examples:
      seedbed connection delete conn_postgres
    """
    g = state()
    g.client().delete_connection(connection_id)
    tell({"deleted": connection_id}, f"deleted {connection_id}")
