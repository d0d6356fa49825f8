"""What ``seedbed`` exits with, so scripts can branch on it.

=====  =========================================================================================
code   meaning
=====  =========================================================================================
0      success: the command did what it was asked; a run it waited for ended SUCCESS
1      a run it waited for ended FAILED, or the work itself failed (a purge stopped at a failure,
       a connection test that could not connect)
2      usage: an unknown command or option, a missing or malformed argument, a file that cannot
       be read; nothing was sent
3      a run it waited for ended ABORTED
4      a run it waited for ended WARNING
5      not found: the coordinator knows no such run, scenario, template, connection, file, user…
6      permission denied: no API key, a key the coordinator does not accept, or a role that does
       not allow the call
7      the coordinator is unreachable: nothing answers at the address, TLS failed, it is stopping
8      refused: the coordinator checked the request and said no (a bad value, a limit, a conflict
       with someone else's change, already exists, not in a state that allows it)
9      the coordinator failed the call (an internal error: its log says more)
130    interrupted (Ctrl-C) while waiting; the run was left running unless you chose to abort it
=====  =========================================================================================

When several fires are waited for (``seedbed scenario fire A B --wait``), the worst outcome
decides: FAILED (1) over a cancelled fire (8) over ABORTED (3) over WARNING (4) over SUCCESS (0).
"""

from __future__ import annotations

import enum

import grpc

from seedbed.api.v1 import run_pb2


class ExitCode(enum.IntEnum):
    SUCCESS = 0
    FAILED = 1
    USAGE = 2
    ABORTED = 3
    WARNING = 4
    NOT_FOUND = 5
    PERMISSION_DENIED = 6
    UNREACHABLE = 7
    REFUSED = 8
    INTERNAL = 9
    INTERRUPTED = 130


_RUN_STATES: dict[int, ExitCode] = {
    run_pb2.RUN_STATE_SUCCESS: ExitCode.SUCCESS,
    run_pb2.RUN_STATE_FAILED: ExitCode.FAILED,
    run_pb2.RUN_STATE_ABORTED: ExitCode.ABORTED,
    run_pb2.RUN_STATE_WARNING: ExitCode.WARNING,
}
# Worst first: the exit code of several fires is the worst of theirs (a cancelled fire is REFUSED).
_SEVERITY = (ExitCode.FAILED, ExitCode.REFUSED, ExitCode.ABORTED, ExitCode.WARNING, ExitCode.SUCCESS)

_STATUS = {
    grpc.StatusCode.NOT_FOUND: ExitCode.NOT_FOUND,
    grpc.StatusCode.PERMISSION_DENIED: ExitCode.PERMISSION_DENIED,
    grpc.StatusCode.UNAUTHENTICATED: ExitCode.PERMISSION_DENIED,
    grpc.StatusCode.UNAVAILABLE: ExitCode.UNREACHABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED: ExitCode.UNREACHABLE,
    grpc.StatusCode.INVALID_ARGUMENT: ExitCode.REFUSED,
    grpc.StatusCode.ALREADY_EXISTS: ExitCode.REFUSED,
    grpc.StatusCode.FAILED_PRECONDITION: ExitCode.REFUSED,
    grpc.StatusCode.ABORTED: ExitCode.REFUSED,
    grpc.StatusCode.OUT_OF_RANGE: ExitCode.REFUSED,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ExitCode.REFUSED,
    grpc.StatusCode.CANCELLED: ExitCode.INTERRUPTED,
}


def for_run_state(state: int) -> ExitCode:
    """The exit code of a run that ended in ``state`` (a run not ended: FAILED, as nothing
    succeeded yet)."""
    return _RUN_STATES.get(state, ExitCode.FAILED)


def worst(codes: list[ExitCode]) -> ExitCode:
    """The exit code of several fires: the worst outcome among them (see the module's note)."""
    for code in _SEVERITY:
        if code in codes:
            return code
    return ExitCode.SUCCESS


def for_status(code: grpc.StatusCode) -> ExitCode:
    """The exit code of a call the coordinator refused or failed with ``code``."""
    return _STATUS.get(code, ExitCode.INTERNAL)
