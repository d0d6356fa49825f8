"""Undoing an upsert on PostgreSQL: what each row was before the batch, and what the batch made it.

An upsert (`on_conflict="update"` or `"ignore"`) may change rows that existed before the run, so
deleting its rows by key would delete data the run did not create. In the batch's own transaction,
before the rows are written, the ledger locks and reads the rows the batch names by its identity
columns (the upsert's `key`, else the table's primary key), each as PostgreSQL's own JSON of the
whole row (`row_to_json`), or NULL when there is none; after the write it reads them again and keeps
a SHA-256 of each. Both go into the entry's `row_keys` (so the ledger's MAC covers them):

    {"columns": [...], "values": [[...], ...],
     "upsert": {"prior": [row JSON or null, ...], "after": [sha256 hex or null, ...]}}

A purge then, per row and in the batch's transaction: a row that is no longer exactly as the batch
left it (its hash differs, or it is gone while a prior row existed) was changed since by someone
else and is left alone, listed with why; a row the batch created is deleted; a row it changed is
put back as it was (`UPDATE … SET (columns) = (SELECT … FROM json_populate_record(NULL::table,
prior))`, every value converted by PostgreSQL from its own JSON, so numerics, dates, bytea and
arrays come back exactly); a row an `ignore` left as it was needs nothing.

Rejected: prior rows as Python values (decimals, bytea, arrays do not survive a JSON round trip in
Python unchanged); DELETE then INSERT of the prior row (an ON DELETE CASCADE would take the rows
that reference it); a side table of prior rows (a second thing to seal and to keep in step with
the ledger, when the ledger row already commits with the batch).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from seedbed.worker.ledger._keys import _TYPES, _key_value
from seedbed.worker.sinks import PostgresSink, TargetError
from seedbed.worker.sinks._rows import split_table

__all__ = ["PostgresUpserts", "UpsertUndo", "UpsertUndone", "row_hash"]

# Rows a purge lists by key when they were changed since (the rest are counted).
LISTED_ROWS = 20
_GENERATED = (
    "SELECT a.attname FROM pg_attribute a WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0"
    " AND NOT a.attisdropped AND a.attgenerated = '' AND a.attidentity <> 'a'"
)


def row_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class UpsertUndo:
    """What an upsert batch recorded: identity columns, each row's key, prior JSON, hash after."""

    columns: list[str]
    values: list[list[Any]]
    prior: list[str | None]
    after: list[str | None]

    def encode(self) -> str:
        return json.dumps(
            {
                "columns": self.columns,
                "values": self.values,
                "upsert": {"prior": self.prior, "after": self.after},
            },
            separators=(",", ":"),
            default=_key_value,
        )

    @classmethod
    def decode(cls, recorded: Mapping[str, Any]) -> UpsertUndo:
        """From the parsed `row_keys`; ValueError when its shape is not an upsert's."""
        upsert = recorded.get("upsert")
        columns, values = recorded.get("columns"), recorded.get("values")
        if not isinstance(upsert, Mapping) or not isinstance(columns, list) or not isinstance(values, list):
            raise ValueError("not an upsert's record")
        prior, after = upsert.get("prior"), upsert.get("after")
        if not isinstance(prior, list) or not isinstance(after, list):
            raise ValueError("an upsert's record without its prior and after lists")
        if not len(prior) == len(after) == len(values):
            raise ValueError("an upsert's record whose lists do not match")
        return cls(columns, values, prior, after)


@dataclass
class UpsertUndone:
    """One upsert batch purged (or, in a dry run, looked at): rows deleted, restored, left as the
    batch found them, already gone, and those changed since (`changed`, the first few listed)."""

    deleted: int = 0
    restored: int = 0
    untouched: int = 0
    gone: int = 0
    changed: int = 0
    listed: list[tuple[str, str]] = field(default_factory=list)  # (key as JSON, reason)


class PostgresUpserts:
    """The reads before and after an upsert batch, and its undo, on one PostgreSQL sink."""

    def __init__(self, sink: PostgresSink) -> None:
        self._sink = sink

    def _regclass(self, conn: psycopg.Connection[Any], table: str) -> str:
        schema, name = split_table(table, self._sink.connection_id)
        return (sql.Identifier(schema, name) if schema else sql.Identifier(name)).as_string(conn)

    def rows(
        self, conn: psycopg.Connection[Any], table: str, columns: list[str], values: Sequence[Sequence[Any]]
    ) -> list[str | None]:
        """Each keyed row as JSON (None: there is none), in the order of `values`, locked for the
        rest of the transaction."""
        if not values:
            return []
        regclass = self._regclass(conn, table)
        types = dict(conn.execute(_TYPES, [regclass, columns]).fetchall())
        missing = [c for c in columns if c not in types]
        if missing:
            raise TargetError(
                connection_id=self._sink.connection_id,
                operation="upsert",
                table=table,
                db_message=f"table {table} has no column {missing[0]!r} (a key of the upsert)",
            )
        arrays = sql.SQL(", ").join(sql.SQL("%s::{}[]").format(sql.SQL(types[c])) for c in columns)
        names = sql.SQL(", ").join(map(sql.Identifier, columns))
        target = sql.SQL(regclass)
        params = [list(column) for column in zip(*values, strict=True)]
        conn.execute(
            sql.SQL("SELECT 1 FROM {} WHERE ({}) IN (SELECT * FROM unnest({})) FOR UPDATE").format(
                target, names, arrays
            ),
            params,
        )
        joined = sql.SQL(" AND ").join(sql.SQL("t.{0} = u.{0}").format(sql.Identifier(c)) for c in columns)
        statement = sql.SQL(
            "SELECT CASE WHEN t.{first} IS NULL THEN NULL ELSE row_to_json(t)::text END"
            " FROM unnest({arrays}) WITH ORDINALITY AS u({names}, seedbed_ord)"
            " LEFT JOIN {target} t ON {joined} ORDER BY u.seedbed_ord"
        ).format(first=sql.Identifier(columns[0]), arrays=arrays, names=names, target=target, joined=joined)
        return [r[0] for r in conn.execute(statement, params).fetchall()]

    def undo(
        self,
        conn: psycopg.Connection[Any],
        table: str,
        undo: UpsertUndo,
        *,
        dry_run: bool,
        simulated: dict[tuple[str, str], str | None] | None = None,
    ) -> UpsertUndone:
        """Put the batch's rows back as they were, newest row first, in the caller's transaction.
        A dry run changes nothing and keeps in `simulated` what each row would be after the
        batches it looked at, so that older batches of the run see what a purge would leave."""
        done = UpsertUndone()
        found = conn.execute("SELECT to_regclass(%s)", [self._regclass(conn, table)]).fetchone()
        if found is None or found[0] is None:
            done.gone = len(undo.values)  # the table is gone, its rows with it
            return done
        now = self.rows(conn, table, undo.columns, undo.values)
        regclass = self._regclass(conn, table)
        settable = {str(r[0]) for r in conn.execute(_GENERATED, [regclass]).fetchall()}
        where = sql.SQL(" AND ").join(sql.SQL("{} = %s").format(sql.Identifier(c)) for c in undo.columns)
        for index in reversed(range(len(undo.values))):
            key, prior, after, current = undo.values[index], undo.prior[index], undo.after[index], now[index]
            name = (table, json.dumps(key, default=_key_value))
            if simulated is not None and name in simulated:
                current = simulated[name]
            if current is None:
                if prior is None:
                    done.gone += 1
                else:
                    _changed(done, key, "deleted since the run wrote it: not put back")
                continue
            if after is None or row_hash(current) != after:
                _changed(
                    done,
                    key,
                    "changed since the run wrote it (by someone else, or the table's columns changed): "
                    "left as it is, not overwritten",
                )
                continue
            if prior is not None and row_hash(prior) == after:
                done.untouched += 1  # the batch left it as it was (on_conflict="ignore")
                continue
            if dry_run:
                done.deleted += prior is None
                done.restored += prior is not None
                if simulated is not None:
                    simulated[name] = prior
                continue
            if prior is None:
                conn.execute(sql.SQL("DELETE FROM {} WHERE {}").format(sql.SQL(regclass), where), key)
                done.deleted += 1
                continue
            columns = [c for c in json.loads(prior) if c in settable]
            names = sql.SQL(", ").join(map(sql.Identifier, columns))
            conn.execute(
                sql.SQL(
                    "UPDATE {target} SET ({names}) = (SELECT {names} FROM"
                    " json_populate_record(NULL::{target}, %s::json)) WHERE {where}"
                ).format(target=sql.SQL(regclass), names=names, where=where),
                [prior, *key],
            )
            done.restored += 1
        return done


def _changed(done: UpsertUndone, key: list[Any], reason: str) -> None:
    done.changed += 1
    if len(done.listed) < LISTED_ROWS:
        done.listed.append((json.dumps(key, default=_key_value), reason))
