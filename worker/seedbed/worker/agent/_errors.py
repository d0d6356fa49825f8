"""Errors the agent answers SDK calls with. The class name is the wire type; the SDK raises an
exception of the same name in the script, so the run's first error says what went wrong.

    AgentError
    ├── UnknownTemplate      no template with that id (the message lists the known ones)
    ├── UnknownConnection    no connection with that id
    ├── InvalidArgument      a call's argument is wrong
    ├── LimitExceeded        more than the operator allows (names the limit)
    ├── TemplateError        the template cannot produce the rows asked for
    ├── TargetError          the database refused (its message, the table, the batch)
    ├── RestError            the REST target answered an error or did not answer
    ├── SerializationError   a value cannot be sent or stored
    ├── WorkspaceError       a workspace file cannot be read
    ├── AttemptEnded         the attempt ended (deadline, abort, the sandbox exited): no call runs
    └── NondeterministicWrite  a replayed write differs from the ledger's (the run fails)
"""

from __future__ import annotations


class AgentError(Exception):
    """Base of the agent's answers to failed calls."""


class UnknownTemplate(AgentError):
    pass


class UnknownConnection(AgentError):
    pass


class InvalidArgument(AgentError):
    pass


class LimitExceeded(AgentError):
    pass


class TemplateError(AgentError):
    pass


class TargetError(AgentError):
    pass


class RestError(AgentError):
    pass


class SerializationError(AgentError):
    pass


class WorkspaceError(AgentError):
    pass


class AttemptEnded(AgentError):
    pass


class NondeterministicWrite(AgentError):
    pass
