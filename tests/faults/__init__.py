"""Fault injection for the exactly-once tests: real processes and sockets, broken on cue.

- ``TcpProxy``: a loopback proxy in front of PostgreSQL; ``cut_after_commit`` applies a COMMIT and
  breaks the connection before its reply (an ambiguous commit), ``cut_all`` drops every connection.
- ``RestTarget``: a loopback idempotent HTTP API (dedupes by ``Idempotency-Key``) with programmed
  failures, throttling and "applied, then timed out" answers per path.
- ``CoordinatorProcess``: the real coordinator in a subprocess, to SIGKILL and restart on the same
  port and data dir.
- ``tests.faults.seeding.SeedingHarness``: the seeding run the fault tests break (a scenario over
  PostgreSQL, REST and file targets) and their verdict, ``check_exactly_once``.

Each is a context manager; the tools' own tests are in ``tests/integration/test_fault_tools.py``.
"""

from tests.faults.proxy import TcpProxy
from tests.faults.rest_target import RestTarget, SeenRequest
from tests.faults.server_process import CoordinatorProcess, CoordinatorStartError

__all__ = [
    "CoordinatorProcess",
    "CoordinatorStartError",
    "RestTarget",
    "SeenRequest",
    "TcpProxy",
]
