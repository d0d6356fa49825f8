"""``seedbed server``: run the coordinator in this process until SIGINT or SIGTERM.

Every option is also a ``SEEDBED_…`` variable (the coordinator's settings, ``CoordinatorSettings``);
an option given wins over its variable. The coordinator's modules are imported in the command's body,
after ``require_extra`` has checked that the server's libraries are installed, so the rest of the
command line never pays for them.
"""

from __future__ import annotations

import asyncio
from typing import Any

import click

from seedbed.cli._context import CliError, SeedbedCommand
from seedbed.cli._exits import ExitCode


@click.command(cls=SeedbedCommand)
@click.option("--listen", metavar="HOST:PORT", help="host:port the gRPC API binds (SEEDBED_LISTEN)")
@click.option("--store-url", metavar="URL", help="SQLAlchemy URL of the store (SEEDBED_STORE_URL)")
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    help="the coordinator's own log lines: text, or one JSON object per line with run id, attempt "
    "and trace id (SEEDBED_LOG_FORMAT; default text)",
)
@click.option(
    "--metrics-listen",
    metavar="HOST:PORT",
    help="where GET /metrics serves Prometheus metrics; an empty value serves none "
    "(SEEDBED_METRICS_LISTEN; default 127.0.0.1:9464)",
)
@click.option(
    "--rest-listen",
    metavar="HOST:PORT",
    help="where the REST API (/v1/…) and the MCP endpoint (/mcp) listen; an empty value serves "
    "neither (SEEDBED_REST_LISTEN; default 127.0.0.1:8080)",
)
@click.option(
    "--migrate-only",
    is_flag=True,
    help="bring the store's schema up to date, check the secret key against the store, and exit "
    "(0 when both are fine, 1 otherwise): a deployment's step before the coordinators start",
)
def server(
    listen: str | None,
    store_url: str | None,
    log_format: str | None,
    metrics_listen: str | None,
    rest_listen: str | None,
    migrate_only: bool,
) -> int:
    """Run the coordinator (embedded defaults: a SQLite store, a local Ray, the local Docker engine).

    It serves the gRPC API, the REST API and MCP endpoint, and Prometheus metrics, until SIGINT or
    SIGTERM; runs in flight are taken over by the next coordinator on the same store. Its log goes
    to stderr; -o has nothing to format here (nothing is printed on stdout).

    Exit codes: 0 stopped on a signal (or, with --migrate-only, the store is up to date and the key
    opens it); 1 the store could not be opened or used (not reachable, a URL it cannot read; with
    --migrate-only, a key that does not open it either); 2 the coordinator did not start because
    of its other settings (a TLS file, an address in use, a secret key that does not open the
    store's secrets, a value a setting cannot take). Either is said in one line.

    \b
    Examples:
      seedbed server
      seedbed server --listen 0.0.0.0:50051 --store-url postgresql+psycopg://seedbed@db/seedbed
      SEEDBED_LOG_FORMAT=json seedbed server --metrics-listen ""
      seedbed server --migrate-only --store-url postgresql+psycopg://seedbed@db/seedbed
    """
    from seedbed.cli._extras import require_extra

    require_extra("server", feature="seedbed server")
    from pydantic import ValidationError

    from seedbed.coordinator import CoordinatorSettings, serve
    from seedbed.coordinator.errors import SecretKeyMismatchError, StoreUnavailableError
    from seedbed.coordinator.observability.logs import configure_logging
    from seedbed.coordinator.observability.metrics import MetricsEndpointError
    from seedbed.coordinator.tls import TlsSettingsError

    given: dict[str, Any] = {
        "listen": listen,
        "store_url": store_url,
        "log_format": log_format,
        "metrics_listen": metrics_listen,
        "rest_listen": rest_listen,
    }
    try:
        settings = CoordinatorSettings(**{k: v for k, v in given.items() if v is not None})
    except ValidationError as exc:  # a SEEDBED_… variable or an option with a value it cannot take
        raise CliError(f"the coordinator did not start: {exc}") from None
    configure_logging(settings.log_format)
    if migrate_only:
        from seedbed.coordinator.server import migrate_only as migrate

        return ExitCode.SUCCESS if asyncio.run(migrate(settings)) else ExitCode.FAILED
    try:
        asyncio.run(serve(settings))
    except StoreUnavailableError as exc:  # the store's fault (down, unreachable), as --migrate-only
        click.echo(f"seedbed: the coordinator did not start: {exc}", err=True)
        return ExitCode.FAILED
    except (
        TlsSettingsError,
        MetricsEndpointError,
        SecretKeyMismatchError,
        OSError,  # a listen address in use or not available (names its setting)
    ) as exc:
        click.echo(f"seedbed: the coordinator did not start: {exc}", err=True)
        return ExitCode.USAGE
    return ExitCode.SUCCESS
