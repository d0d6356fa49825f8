"""The Seedbed SDK, imported by scenario scripts running inside a sandbox.

    from seedbed.sdk import Seedbed

    dm = Seedbed()
    customers = dm.generate(template_id="tmpl_customer", count=100)
    dm.connection("conn_postgres").insert(table="customers", rows=customers)
    orders = dm.generate(
        template_id="tmpl_order", count=500,
        overrides={"customer_id": dm.pick_from(customers.column("id"))},
    )
    dm.connection("conn_postgres").insert(table="orders", rows=orders)

`generate` answers a `RowSet`: the rows stay on the worker until the script reads them (iterating,
indexing, `list(...)`), so inserting a million rows never ships them through the sandbox; into
PostgreSQL they are written in shards, in parallel. `insert` also takes a list or any iterable of
dicts (a generator is sent in pieces).

Also at module level: `params` (a read-only mapping of the run's parameters), `log`
(`log.info/warning/error(message, **fields)`; a warning makes the run's outcome WARNING),
`run_id`, and `pick_from`. `dm.assets.write_text/json/csv/bytes(name, …)` keeps a file with the
run (see `Assets`). Every call travels over the agent channel to the trusted worker, which
generates the rows and writes them; the sandbox has no network and never sees a credential.
"""

from __future__ import annotations

from typing import Any

from seedbed.sdk import _context
from seedbed.sdk._assets import Assets
from seedbed.sdk._data import Connection, Pick, Seedbed, Template, Workspace, pick_from
from seedbed.sdk._errors import (
    CallError,
    ChannelClosedError,
    InvalidArgument,
    LimitExceeded,
    NondeterministicWrite,
    RestError,
    SeedbedError,
    SerializationError,
    TargetError,
    TemplateError,
    UnknownConnection,
    UnknownTemplate,
    WorkspaceError,
)
from seedbed.sdk._log import Log
from seedbed.sdk._rows import Column, RowSet

__all__ = [
    "Assets",
    "CallError",
    "ChannelClosedError",
    "Column",
    "Connection",
    "InvalidArgument",
    "LimitExceeded",
    "NondeterministicWrite",
    "Pick",
    "RestError",
    "RowSet",
    "Seedbed",
    "SeedbedError",
    "SerializationError",
    "TargetError",
    "Template",
    "TemplateError",
    "UnknownConnection",
    "UnknownTemplate",
    "Workspace",
    "WorkspaceError",
    "log",
    "params",
    "pick_from",
    "run_id",
]

params = _context.current.params
log = Log()


def __getattr__(name: str) -> Any:
    # run_id is bound by the runtime after this package is imported, so it is read lazily.
    if name == "run_id":
        return _context.current.run_id
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
