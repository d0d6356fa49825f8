"""SQLite targets reach their own database file and nothing else.

A SQLite connection can name other files in SQL: `ATTACH` opens any database file the worker can
read (the coordinator's store included, when it is a SQLite file on the same machine),
`VACUUM INTO` writes a copy anywhere the worker can write, `load_extension` runs native code, and
some PRAGMAs change where and how files are written (`temp_store_directory`, `journal_mode = OFF`,
`writable_schema`). The statements come from scripts, which are untrusted, so every SQLite
connection the agent opens is hardened when it is made:

- an authorizer (`sqlite3.Connection.set_authorizer`) denies `ATTACH`/`DETACH` (which also covers
  `VACUUM` and `VACUUM INTO`: SQLite authorizes them as an attach of the target file), the SQL
  functions `load_extension` and `fts3_tokenizer`, and every PRAGMA except reads of the schema,
  reads of settings, and the connection-local `foreign_keys`/`defer_foreign_keys` switches;
- the limit of attached databases is 0 (`SQLITE_LIMIT_ATTACHED`), so an attach the authorizer
  missed still fails;
- extension loading is off at the C level.

The authorizer runs while a statement is prepared, in the thread that prepares it; it notes what it
refused in a thread-local, so the sink's error can say *what* was refused instead of SQLite's bare
"not authorized". Rejected alternative: parsing the statement text ourselves (comments, quoting and
`pragma_*` table-valued functions make that a losing game; SQLite's own parser decides here).

A statement must also not outlive the attempt that sent it (a recursive query can count for hours):
`abort_when` installs a progress handler that SQLite calls every few thousand steps of every
statement, and that aborts it once the sink says the attempt ended. Unlike
`sqlite3.Connection.interrupt`, which stops only what runs at that instant, it also stops a
statement that starts a moment later.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["REFUSED", "abort_when", "harden_sqlite_connection", "take_refusal"]

# SQLite's virtual machine steps between two calls of the progress handler: a few microseconds.
PROGRESS_STEPS = 10_000

REFUSED = "not allowed on SQLite targets"

# PRAGMAs that read the schema; their argument names a table or an index.
_SCHEMA_PRAGMAS = frozenset(
    {
        "table_info",
        "table_xinfo",
        "table_list",
        "index_list",
        "index_info",
        "index_xinfo",
        "foreign_key_list",
        "foreign_key_check",
        "integrity_check",
        "quick_check",
    }
)
# Settings a script may read (a PRAGMA with no argument).
_READABLE_PRAGMAS = frozenset(
    {
        "application_id",
        "auto_vacuum",
        "busy_timeout",
        "cache_size",
        "collation_list",
        "compile_options",
        "data_version",
        "database_list",
        "encoding",
        "freelist_count",
        "function_list",
        "journal_mode",
        "legacy_alter_table",
        "locking_mode",
        "max_page_count",
        "module_list",
        "page_count",
        "page_size",
        "pragma_list",
        "query_only",
        "read_uncommitted",
        "recursive_triggers",
        "schema_version",
        "secure_delete",
        "synchronous",
        "temp_store",
        "user_version",
    }
)
# Settings that only change how this connection checks constraints; a script may set them.
_CONNECTION_PRAGMAS = frozenset({"foreign_keys", "defer_foreign_keys", "read_uncommitted"})
_REFUSED_FUNCTIONS = frozenset({"load_extension", "fts3_tokenizer"})

_last = threading.local()


def _refuse(what: str) -> int:
    _last.refusal = what
    return sqlite3.SQLITE_DENY


def _authorize(action: int, arg1: str | None, arg2: str | None, _db: str | None, _source: str | None) -> int:
    if action in (sqlite3.SQLITE_ATTACH, sqlite3.SQLITE_DETACH):
        return _refuse("ATTACH, DETACH and VACUUM (VACUUM INTO included) are")
    if action == sqlite3.SQLITE_PRAGMA:
        name = (arg1 or "").lower()
        if (
            name in _SCHEMA_PRAGMAS
            or name in _CONNECTION_PRAGMAS
            or (arg2 is None and name in _READABLE_PRAGMAS)
        ):
            return sqlite3.SQLITE_OK
        return _refuse(f"PRAGMA {name}{'' if arg2 is None else ' = …'} is")
    if action == sqlite3.SQLITE_FUNCTION and (arg2 or "").lower() in _REFUSED_FUNCTIONS:
        return _refuse(f"the function {(arg2 or '').lower()} is")
    return sqlite3.SQLITE_OK


def harden_sqlite_connection(dbapi_connection: Any, _record: Any = None) -> None:
    """SQLAlchemy `connect` listener (also callable on a bare `sqlite3.Connection`)."""
    if not isinstance(dbapi_connection, sqlite3.Connection):
        # Only Python's sqlite3 driver offers an authorizer; the sink refuses other drivers first.
        raise TypeError(f"not a sqlite3 connection: {type(dbapi_connection).__name__}")
    dbapi_connection.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)
    if hasattr(dbapi_connection, "enable_load_extension"):
        dbapi_connection.enable_load_extension(False)
    dbapi_connection.set_authorizer(_authorize)


def abort_when(dbapi_connection: Any, interrupted: Callable[[], bool]) -> None:
    """Abort every statement of this connection (SQLite's "interrupted" error) once `interrupted()`
    is true. Only Python's sqlite3 connections (the SQL sink refuses other SQLite drivers)."""
    if isinstance(dbapi_connection, sqlite3.Connection):
        dbapi_connection.set_progress_handler(lambda: 1 if interrupted() else 0, PROGRESS_STEPS)


def take_refusal() -> str | None:
    """What the authorizer last refused in this thread (cleared), as a sentence; None if nothing."""
    what = getattr(_last, "refusal", None)
    _last.refusal = None
    if what is None:
        return None
    return (
        f"{what} {REFUSED}: a scenario reads and writes its target database only "
        "(refused: ATTACH, DETACH, VACUUM, load_extension and PRAGMAs that change settings)"
    )
