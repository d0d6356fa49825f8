"""Connections a dry run reads through are read-only in the database itself, so that what a
script sends through `fetch` (DDL included) and the dry run's own catalog reads change nothing.

- PostgreSQL: the sink's `fetch` runs `SET TRANSACTION READ ONLY` itself, and the catalog connects
  with `default_transaction_read_only=on` (see `SqlCatalog`).
- MySQL and MariaDB: DDL commits implicitly, so the sink's rollback after a `fetch` undoes none of
  it. Every connection is set `SET SESSION TRANSACTION READ ONLY` each time it is checked out of its
  pool: a script that sets its session back to READ WRITE in one `fetch` is read-only again in the
  next (one call is one statement; the driver sends no multi-statements).
- SQLite: DDL outside a transaction is committed by Python's driver. `PRAGMA query_only = ON` on
  every new connection; the sink's authorizer then refuses a script's `PRAGMA query_only = OFF`
  (it refuses every PRAGMA that sets something), so the pragma is set before it is installed.

Rejected: editing the sinks (a dry run is the agent's concern, and the sinks serve real runs); a
read-only database user per connection (the operator's to create, and a dry run must work with the
connection as it is).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

__all__ = ["read_only"]

_DONE = "_seedbed_dry_run_read_only"


def read_only(engine: sa.Engine) -> None:
    """Make every connection of `engine` read-only from its next checkout on (once per engine)."""
    if getattr(engine, _DONE, False):
        return
    name = engine.dialect.name
    if name in ("mysql", "mariadb"):
        sa.event.listen(engine, "checkout", _mysql_read_only)
    elif name == "sqlite":
        # Before the sink's own `connect` listeners: its authorizer refuses the pragma.
        sa.event.listen(engine, "connect", _sqlite_query_only, insert=True)
    else:
        return
    setattr(engine, _DONE, True)
    # Connections made before the listener was there are closed, not handed out as they are.
    engine.dispose()


def _mysql_read_only(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("SET SESSION TRANSACTION READ ONLY")
    finally:
        cursor.close()


def _sqlite_query_only(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.execute("PRAGMA query_only = ON")
