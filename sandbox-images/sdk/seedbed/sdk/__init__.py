"""The Seedbed SDK, imported by scenario scripts running inside a sandbox.

    from seedbed.sdk import params, log, run_id

    log.info("seeding customers", count=int(params.get("count", "100")))

`params` is a read-only mapping of the run's parameters, `log` sends structured log lines to the
worker, `run_id` is the id of the current run. Every SDK call travels over the agent channel to
the trusted worker; the sandbox has no network.
"""

from __future__ import annotations

from typing import Any

from seedbed.sdk import _context
from seedbed.sdk._errors import CallError, ChannelClosedError, SeedbedError
from seedbed.sdk._log import Log

__all__ = ["CallError", "ChannelClosedError", "SeedbedError", "log", "params", "run_id"]

params = _context.current.params
log = Log()


def __getattr__(name: str) -> Any:
    # run_id is bound by the runtime after this package is imported, so it is read lazily.
    if name == "run_id":
        return _context.current.run_id
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
