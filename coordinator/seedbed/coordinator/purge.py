"""Purging a finished run: what it inserted into its SQL targets is deleted, target by target.

`RunPurger.purge` checks that the run has ended, finds the SQL connections it wrote through (from
the write batches its attempts reported) and asks a worker to purge each (`catalog.purge_run`: the
worker opens the connection and deletes by the row keys the target's write ledger recorded, newest
batch first). Connections go in the reverse order of the run's first write to each, as batches do
within one: what was written last may reference what was written first. The first failure stops
the purge; what was purged before it stays purged, and purging again resumes where it stopped.

The ledger is kept per database, not per connection: a purge through one connection removes the
run's batches written through any connection to the same database. Connections whose URLs name the
same database (ignoring the user) are therefore purged once, through the first one, and the others
listed as skipped, so that a dry run does not count the same rows twice.

Rejected: purging the connections concurrently (the order is what keeps foreign keys between
them satisfied), and reading what to delete from the coordinator's store (it knows batches, not
rows; the ledger in the target commits with the rows it describes).
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from seedbed.api.v1 import run_pb2
from seedbed.coordinator.attempt import ledger_key
from seedbed.coordinator.connections import snapshot
from seedbed.coordinator.errors import CoordinatorError, DispatchError, FailedPreconditionError, NotFoundError
from seedbed.coordinator.logs import LogHub
from seedbed.coordinator.runs.ports import RunPurgeWorker
from seedbed.coordinator.secrets import SecretBox
from seedbed.coordinator.store import LogRecord, RunRecord, Store, now

log = logging.getLogger(__name__)

_SQL_KINDS = ("postgresql", "sql")
_DEFAULT_PORTS = {"postgresql": 5432, "mysql": 3306, "mariadb": 3306}


class RunPurger:
    def __init__(self, store: Store, worker: RunPurgeWorker, hub: LogHub, secrets: SecretBox) -> None:
        self._store = store
        self._worker = worker
        self._hub = hub
        self._secrets = secrets

    async def purge(self, run_id: str, *, dry_run: bool) -> run_pb2.PurgeRunResponse:
        """Purge (or with `dry_run` count) what run `run_id` inserted. Raises NotFoundError, and
        FailedPreconditionError while the run is active."""
        run = await self._store.get_run(run_id)
        if not run.state.is_terminal:
            raise FailedPreconditionError(
                f"run {run_id} is {run.state.value}: abort it first or wait for it to end, then purge"
            )
        response = run_pb2.PurgeRunResponse(dry_run=dry_run)
        order = list(reversed(await self._store.attempts.sql_connections(run_id)))
        databases: dict[tuple[Any, ...], str] = {}
        for index, connection_id in enumerate(order):
            summary = await self._purge_one(run, connection_id, dry_run, response, databases)
            if summary is None:
                continue
            _add(response, connection_id, summary)
            if response.failures:
                for rest in order[index + 1 :]:
                    response.skipped_connections.add(
                        connection_id=rest,
                        reason=f"not reached: the purge stopped at a failure on {connection_id}",
                    )
                break
        text = describe(response)
        log.info("run %s: %s", run_id, text)
        if not dry_run and (response.targets or response.failures):
            await self._log(run_id, text)
        return response

    async def _purge_one(
        self,
        run: RunRecord,
        connection_id: str,
        dry_run: bool,
        response: run_pb2.PurgeRunResponse,
        databases: dict[tuple[Any, ...], str],
    ) -> dict[str, Any] | None:
        """The worker's summary for one connection; None when it was skipped (and listed so).
        `databases`: the databases purged so far, and through which connection."""
        try:
            record = await self._store.connections.get(connection_id)
        except NotFoundError:
            response.skipped_connections.add(
                connection_id=connection_id,
                reason="deleted since the run: create it again (same id, same database) to purge "
                "what the run wrote through it",
            )
            return None
        if record.project_key != run.project_key and not record.shared:
            response.skipped_connections.add(
                connection_id=connection_id,
                reason=f"now a connection of another project than the run's ({run.project_key!r})",
            )
            return None
        if record.kind not in _SQL_KINDS:
            response.skipped_connections.add(
                connection_id=connection_id,
                reason=f"now a {record.kind} connection: the run wrote through it as a SQL one",
            )
            return None
        database = _database(record.url)
        if database is not None:
            if database in databases:
                response.skipped_connections.add(
                    connection_id=connection_id,
                    reason=f"same database as {databases[database]}: the run's batches written through "
                    "either are handled through that one (the write ledger is kept per database)",
                )
                return None
            databases[database] = connection_id
        try:
            connection = snapshot(record, self._secrets)
        except CoordinatorError as exc:  # its secret cannot be decrypted
            return _failed(f"cannot open connection {connection_id}: {exc}")
        try:
            key = ledger_key(self._secrets, run.id)
            return await self._worker.purge_run(connection, run.run_key, run.id, key, dry_run)
        except DispatchError as exc:
            return _failed(f"no worker could purge through connection {connection_id}: {exc}")

    async def _log(self, run_id: str, text: str) -> None:
        """One system line in the run's log, after its last line."""
        latest = await self._store.get_run(run_id)
        line = LogRecord(latest.last_sequence + 1, latest.attempt_count, "system", text, now())
        try:
            await self._store.append_logs(run_id, [line])
        except SQLAlchemyError as exc:  # a concurrent purge took the same line number
            log.warning("run %s: the purge's log line was not written: %s", run_id, exc)
            return
        self._hub.notify(run_id)


def _database(url: str) -> tuple[Any, ...] | None:
    """What names a connection's database, whoever connects: backend, host, port, database."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return None
    backend = parsed.get_backend_name()
    return (backend, parsed.host, parsed.port or _DEFAULT_PORTS.get(backend), parsed.database)


def _failed(message: str) -> dict[str, Any]:
    """A connection's summary when no worker could answer for it."""
    return {"tables": [], "skipped": [], "errors": [{"table": "", "call": 0, "batch": 0, "message": message}]}


def _add(response: run_pb2.PurgeRunResponse, connection_id: str, summary: dict[str, Any]) -> None:
    for table in summary["tables"]:
        response.targets.add(
            connection_id=connection_id,
            table=table["table"],
            rows_deleted=table["rows_deleted"],
            rows_recorded=table["rows_recorded"],
            batches=table["batches"],
        )
    for batch in summary["skipped"]:
        response.skipped.add(connection_id=connection_id, **batch)
    for error in summary["errors"]:
        response.failures.add(connection_id=connection_id, **error)


def describe(response: run_pb2.PurgeRunResponse) -> str:
    """The purge in one line: rows per table, batches skipped, where it stopped."""
    verb = "would delete" if response.dry_run else "purged"
    total = sum(t.rows_deleted for t in response.targets)
    if response.targets:
        parts = ", ".join(f"{t.rows_deleted} from {t.table} ({t.connection_id})" for t in response.targets)
        text = f"{verb} {total} row{'s' if total != 1 else ''}: {parts}"
    else:
        text = f"{verb} nothing: no batch of the run is left to purge"
    if response.skipped:
        count = len(response.skipped)
        text += f"; {count} batch{'es' if count != 1 else ''} skipped (not purgeable)"
    if response.skipped_connections:
        text += "; connections skipped: " + ", ".join(c.connection_id for c in response.skipped_connections)
    if response.failures:
        text += f"; stopped: {response.failures[0].message}"
    return text
