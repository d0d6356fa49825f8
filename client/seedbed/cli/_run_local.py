"""``seedbed run submit FILE --local``: an embedded coordinator (SQLite store, local Ray, local
Docker) for one command.

It needs the server's libraries (``seedbed[server]``): ``require_extra`` refuses clearly before
anything of the server is imported. The client of the command is pointed at it by setting the
command's global options (address and key), never the process environment: the key is the one
given (``--api-key``, ``SEEDBED_API_KEY``), else the admin key the embedded coordinator uses
(``SEEDBED_ADMIN_API_KEY``, else the file it wrote in its data folder at its first start), so a
first ``--local`` run needs no set-up. A profile's key is for its own coordinator and is not sent.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path

from seedbed.cli._context import ENV_API_KEY, CliError, Globals
from seedbed.cli._exits import ExitCode
from seedbed.cli._output import say

FEATURE = "seedbed run submit --local"


@contextlib.contextmanager
def local_coordinator(g: Globals) -> Iterator[None]:
    """Run an embedded coordinator while the block runs, with ``g`` pointing at it."""
    from seedbed.cli._extras import require_extra

    require_extra("server", feature=FEATURE)
    from seedbed.coordinator import CoordinatorSettings, running_in_thread
    from seedbed.coordinator.tls import TlsSettingsError

    logging.basicConfig(level=logging.WARNING, format="[seedbed %(levelname)s] %(message)s")
    # One command's coordinator serves no metrics and no REST API (nobody else calls it; the ports
    # may be taken).
    settings = CoordinatorSettings(listen="127.0.0.1:0", metrics_listen="", rest_listen="")
    with contextlib.ExitStack() as stack:
        try:
            coordinator = stack.enter_context(running_in_thread(settings))
        except (OSError, TlsSettingsError) as exc:
            raise CliError(f"the embedded coordinator did not start: {exc}") from None
        if coordinator.engine_problem:
            say(f"seedbed: {coordinator.engine_problem}", err=True)
        key = g.api_key or os.environ.get(ENV_API_KEY, "")
        g.api_key = key or _admin_key(settings.admin_api_key, settings.data_dir)
        # The scheme says how to reach it, whatever TLS variables the shell has for others.
        g.address = ("https://" if coordinator.tls else "http://") + coordinator.address
        yield


def _admin_key(configured: str, data_dir: Path) -> str:
    if configured:
        return configured
    path = data_dir / "admin-api-key"
    try:
        return path.read_text().strip()
    except OSError:
        raise CliError(
            f"no API key: set {ENV_API_KEY} or --api-key ({path} is missing; the store in that folder "
            "already has users)",
            ExitCode.PERMISSION_DENIED,
        ) from None
