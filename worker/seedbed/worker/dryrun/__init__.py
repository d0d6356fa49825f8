"""Dry runs against the live schema: what a run's writes would do to each SQL target, checked
without writing anything.

    catalog = SqlCatalog(url)                       # read-only; one connection for the attempt
    report = ReportBuilder(scrub)
    checks = SqlChecks("conn_pg", catalog, report)
    checks.check(call, "orders", rows)              # problems land in the report
    report.to_proto()                               # a seedbed.api.v1.DryRunReport

Each table is introspected once (SQLAlchemy's inspector: columns, types, nullability, defaults,
primary key, unique constraints and unique indexes, foreign keys, check constraints where the
dialect exposes them). Every row handed to `check` is checked in full:

- a field the table has no column for (MISSING_COLUMN, once per field and call);
- a value not convertible to its column's type, text longer than varchar(n), an integer or a
  numeric out of range (TYPE_MISMATCH);
- NULL into a NOT NULL column, or a NOT NULL column without a default the rows leave out (NOT_NULL);
- check constraints made of comparisons with literals, IN lists, `length(col)` and AND (CHECK);
  any other constraint is listed under the target's `unchecked`;
- a primary or unique key repeated within the run's rows, or already in the table (DUPLICATE_KEY).
  An upsert (`Upsert`) meets keys as its database does: on MySQL and MariaDB every unique key's
  conflict is the upsert's; on PostgreSQL and SQLite only its conflict key's (`key` must be exactly
  a unique key of the table), so a row with a new conflict key is an insert whose other unique keys
  are checked, and on PostgreSQL a key twice in one `DO UPDATE` statement is a problem. The other
  unique keys of a row an upsert updates are not checked;
- a foreign key whose value neither the run's earlier rows nor the referenced table hold
  (FOREIGN_KEY). Keys compare as the database stores them (after conversion).

The first 20 problems per target are listed with their row, field, value (200 characters at most,
secrets masked) and message (saying what to do); the rest are counted. The schemas read and the
keys remembered are held against the attempt's memory budget. The agent decides what reaches `check` (a sample
of a large row set: see `seedbed.worker.agent._dryrun`).

Rejected: checking by writing in a transaction rolled back at the end (it takes the locks, fires
triggers and advances sequences of the real target, and COPY of a 5M-row set costs what the insert
costs); PostgreSQL-only catalog queries (the inspector reads the same catalogs, and MariaDB and SQLite
come free).
"""

from seedbed.worker.dryrun._checker import SqlChecks, Upsert
from seedbed.worker.dryrun._readonly import read_only
from seedbed.worker.dryrun._report import MAX_PROBLEMS, MAX_TARGETS, ReportBuilder
from seedbed.worker.dryrun._schema import Catalog, ColumnInfo, ForeignKeyInfo, SqlCatalog, TableSchema
from seedbed.worker.dryrun._values import Mismatch, compile_check, convert

__all__ = [
    "MAX_PROBLEMS",
    "MAX_TARGETS",
    "Catalog",
    "ColumnInfo",
    "ForeignKeyInfo",
    "Mismatch",
    "ReportBuilder",
    "SqlCatalog",
    "SqlChecks",
    "TableSchema",
    "Upsert",
    "compile_check",
    "convert",
    "read_only",
]
