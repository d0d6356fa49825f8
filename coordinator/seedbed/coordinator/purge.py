"""Purging a finished run: what it wrote is undone, connection by connection, and its assets go.

`RunPurger.purge` checks that the run has ended, finds the connections it wrote through (from the
write batches its attempts reported) and asks a worker to undo what it wrote through each
(`catalog.purge_run`): SQL rows by the keys the target's write ledger recorded (an upsert's rows
put back as they were, or left and listed when changed since), REST resources by the ids their
responses named through the connection's declared undo, files from the run's artifacts folder.
Connections go in the reverse order of the run's first write to each, as batches do within one:
what was written last may reference what was written first. The first failure stops the purge;
what was purged before it stays purged, and purging again resumes where it stopped. What cannot be
undone (a statement, a REST connection without an undo, a row changed since) is listed with why.
The run's assets (files it kept) are removed once every connection is done: a purge that stopped
at a failure keeps them, so they can still be downloaded until purging again completes it.

A purge that is not a dry run is recorded (`store.purges`): claimed with a lease before it starts,
so that one coordinator purges a run at a time, renewed while it runs, and ended DONE or FAILED
with what it did. Each claim has a holder of its own (`claimant`: the coordinator's id, what
started it, and a random tag), so a purge whose lease passed (its renewals failed) and was claimed
again, even by the same coordinator, can neither renew nor end the claim that replaced it. The
periodic pass (`seedbed.coordinator.purge_pass`) purges through the same claim; a purge asked for
while another holds the run is refused.

The ledger is kept per database, not per connection: a purge through one connection removes the
run's batches written through any connection to the same database. Connections whose URLs name the
same database (ignoring the user) are therefore purged once, through the first one, and the others
listed as skipped, so that a dry run does not count the same rows twice.

A replay signs its ledger rows for the run it replays (`RunRecord.ledger_run_id`), so the original
and its replays share one ledger identity in a target: the ledger cannot tell whose a batch is.
The coordinator can (`write_batches`: APPLIED by the run that wrote it, REPLAYED by one that found
it there), so a SQL purge deletes only the (call, batch) pairs the run APPLIED through the
database (every attempt, every connection to it), handed to the worker as `work["batches"]`; the
original also keeps the pairs it only found there (an attempt's report lost) that no other run of
its identity applied. The rest are listed as another run's. REST: a replay posts with the
original's Idempotency-Keys, so a target honouring them answers with the original's resources;
an id that an earlier run of the identity recorded for the same connection and path is that
run's, and is listed, not deleted. A DONE purge is never done again (`PurgeRepository.claim`): a
request for it answers its record.

Rejected: purging the connections concurrently (the order is what keeps foreign keys between
them satisfied); reading what to delete from the coordinator's store (it knows batches, not
rows; the ledger in the target commits with the rows it describes); calling REST targets from the
coordinator (a worker opens the connection, with its egress and credentials, as for SQL).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

from google.protobuf import json_format
from prometheus_client import CollectorRegistry, Counter
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
from seedbed.coordinator.store.purges import DONE, CreatedIds, PurgeRecord
from seedbed.coordinator.store.records import WriteBatchRecord

log = logging.getLogger(__name__)

_SQL_KINDS = ("postgresql", "sql")
_DEFAULT_PORTS = {"postgresql": 5432, "mysql": 3306, "mariadb": 3306}
# A failed purge is tried again by the periodic pass after this long.
RETRY_FAILED = timedelta(minutes=10)
_PAGE = 1000


class RunPurger:
    def __init__(
        self,
        store: Store,
        worker: RunPurgeWorker,
        hub: LogHub,
        secrets: SecretBox,
        *,
        holder: str = "coordinator",
        lease: timedelta = timedelta(seconds=120),
        registry: CollectorRegistry | None = None,
    ) -> None:
        self._store = store
        self._worker = worker
        self._hub = hub
        self._secrets = secrets
        self.holder = holder
        self.lease = lease
        self._ended = Counter(
            "seedbed_purges",
            "Run purges that ended (not dry runs), by what started them (ttl, request) and how",
            ["trigger", "outcome"],
            registry=registry,
        )

    def claimant(self, trigger: str) -> str:
        """The holder of one claim: this coordinator, what started the purge, a tag of its own."""
        return f"{self.holder} ({trigger} {uuid.uuid4().hex[:8]})"

    async def purge(self, run_id: str, *, dry_run: bool) -> run_pb2.PurgeRunResponse:
        """Purge (or with `dry_run` count) what run `run_id` wrote. Raises NotFoundError, and
        FailedPreconditionError while the run is active or another purge of it is under way."""
        run = await self._store.get_run(run_id)
        if not run.state.is_terminal:
            raise FailedPreconditionError(
                f"run {run_id} is {run.state.value}: abort it first or wait for it to end, then purge"
            )
        if dry_run:
            return await self.undo(run, dry_run=True)
        holder = self.claimant("request")
        claimed = await self._store.purges.claim(
            run.id,
            scenario_id=run.scenario_id,
            project_key=run.project_key,
            trigger="request",
            holder=holder,
            at=now(),
            lease=self.lease,
            again=True,
        )
        if not claimed:
            done = await self._store.purges.get(run.id)
            if done is not None and done.state == DONE:
                # Never purged twice: what the run wrote is gone, and what its targets hold under
                # its ledger identity now may be a replay's (README: replay after a purge).
                return _recorded(done)
            raise FailedPreconditionError(
                f"run {run_id} is being purged now (by the periodic purge pass, or another request): "
                f"wait for it to end (seedbed run purges {run_id}), then purge again if needed"
            )
        return await self.held(run, holder, trigger="request")

    async def held(self, run: RunRecord, holder: str, *, trigger: str) -> run_pb2.PurgeRunResponse:
        """Purge a run whose purge `holder` has claimed: its lease renewed meanwhile, its record
        ended DONE (or FAILED, with the first failure) with what was done."""
        async with self._renewing(run.id, holder):
            try:
                response = await self.undo(run, dry_run=False)
            except Exception as exc:
                await self._store.purges.finish(
                    run.id,
                    holder,
                    failed=True,
                    message=f"the purge failed: {exc}",
                    result="{}",
                    at=now(),
                    retry_after=RETRY_FAILED,
                )
                self._ended.labels(trigger, "failed").inc()
                raise
        finished = await self._store.purges.finish(
            run.id,
            holder,
            failed=bool(response.failures),
            message=describe(response),
            result=json_format.MessageToJson(response, indent=None),
            at=now(),
            retry_after=RETRY_FAILED,
        )
        self._ended.labels(trigger, "failed" if response.failures else "done").inc()
        if not finished:
            log.warning("run %s: the purge ended after its claim was taken over (lease passed)", run.id)
        return response

    @contextlib.asynccontextmanager
    async def _renewing(self, run_id: str, holder: str) -> AsyncIterator[None]:
        async def renew() -> None:
            while True:
                await asyncio.sleep(self.lease.total_seconds() / 3)
                try:
                    await self._store.purges.renew(run_id, holder, now() + self.lease)
                except SQLAlchemyError as exc:  # the next renewal may get through
                    log.warning("run %s: the purge's lease was not renewed: %s", run_id, exc)

        task = asyncio.create_task(renew(), name=f"purge lease {run_id}")
        try:
            yield
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def undo(self, run: RunRecord, *, dry_run: bool) -> run_pb2.PurgeRunResponse:
        """What the purge does, unrecorded: every connection, then the run's assets."""
        response = run_pb2.PurgeRunResponse(dry_run=dry_run)
        order = list(reversed(await self._store.purges.connections(run.id)))
        databases: dict[tuple[Any, ...], str] = {}
        scope = _Scope(self._store, run)
        for index, connection_id in enumerate(order):
            summary = await self._purge_one(run, connection_id, dry_run, response, databases, scope)
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
        # A purge that stopped keeps the run's assets: what explains the run stays downloadable
        # until purging again finishes the job, and removes them then.
        count, size = (0, 0) if response.failures else await self._assets(run.id, dry_run)
        response.assets_deleted, response.asset_bytes_deleted = count, size
        text = describe(response)
        log.info("run %s: %s", run.id, text)
        if not dry_run and (response.targets or response.failures or count):
            await self._log(run.id, text)
        return response

    async def _assets(self, run_id: str, dry_run: bool) -> tuple[int, int]:
        """(count, bytes) of the run's assets removed (with `dry_run`: there)."""
        if dry_run:
            return await self._store.assets.summary(run_id)
        return await self._store.assets.delete_run(run_id)

    async def _purge_one(
        self,
        run: RunRecord,
        connection_id: str,
        dry_run: bool,
        response: run_pb2.PurgeRunResponse,
        databases: dict[tuple[Any, ...], str],
        scope: _Scope,
    ) -> dict[str, Any] | None:
        """The worker's summary for one connection; None when it was skipped (and listed so).
        `databases`: the databases purged so far, and through which connection."""
        try:
            record = await self._store.connections.get(connection_id)
        except NotFoundError:
            again = (
                "create it again (same id, same target) before purging, to purge what the run wrote "
                "through it"
                if dry_run
                else "what the run wrote through it is left (a DONE purge is not done again: delete it "
                "by hand)"
            )
            response.skipped_connections.add(
                connection_id=connection_id, reason=f"deleted since the run: {again}"
            )
            return None
        if record.project_key != run.project_key and not record.shared:
            response.skipped_connections.add(
                connection_id=connection_id,
                reason=f"now a connection of another project than the run's ({run.project_key!r})",
            )
            return None
        work: dict[str, Any] = {}
        if record.kind == "rest":
            created = await self._store.purges.created(run.id, connection_id)
            if not created:
                response.skipped_connections.add(connection_id=connection_id, reason=_no_undo(record.rest))
                return None
            created = await self._others_rest(run, connection_id, created, response, scope)
            work["rest"] = [vars(c) for c in created]
        elif record.kind == "file":
            work["files"] = await self._store.purges.files(run.id, connection_id)
            if not work["files"]:
                return None  # nothing written through it
        elif record.kind in _SQL_KINDS:
            if run.ledger_run_id != run.id and not await self._store.purges.wrote_through(
                run.id, connection_id
            ):
                response.skipped_connections.add(
                    connection_id=connection_id,
                    reason=f"the replay wrote nothing through it: the rows there are run "
                    f"{run.ledger_run_id}'s (purge that run to remove them)",
                )
                return None
            database = _database(record.url)
            if database is not None:
                if database in databases:
                    response.skipped_connections.add(
                        connection_id=connection_id,
                        reason=f"same database as {databases[database]}: the run's batches written "
                        "through either are handled through that one (the write ledger is kept per "
                        "database)",
                    )
                    return None
                databases[database] = connection_id
            work["batches"] = sorted(await scope.own_batches(connection_id, database))
        else:
            response.skipped_connections.add(
                connection_id=connection_id, reason=f"a {record.kind} connection: nothing to undo through it"
            )
            return None
        try:
            connection = snapshot(record, self._secrets)
        except CoordinatorError as exc:  # its secret cannot be decrypted
            return _failed(f"cannot open connection {connection_id}: {exc}")
        # A replay's ledger rows are signed for the run it replays; its files are its own.
        signed_for = run.id if record.kind == "file" else run.ledger_run_id
        try:
            key = ledger_key(self._secrets, signed_for)
            return await self._worker.purge_run(connection, run.run_key, signed_for, key, dry_run, work)
        except DispatchError as exc:
            return _failed(f"no worker could purge through connection {connection_id}: {exc}")

    async def _others_rest(
        self,
        run: RunRecord,
        connection_id: str,
        created: list[CreatedIds],
        response: run_pb2.PurgeRunResponse,
        scope: _Scope,
    ) -> list[CreatedIds]:
        """`created` without the ids an earlier run of the same ledger identity recorded for the
        connection and path (a replay's Idempotency-Keys are the original's: a target honouring
        them answers with the original's resources), each listed in `rows_left`."""
        owners: dict[tuple[str, str], str] = {}
        for other in await scope.earlier():
            for batch in await self._store.purges.created(other.id, connection_id):
                for created_id in batch.ids:
                    if created_id:
                        owners.setdefault((batch.path, created_id), other.id)
        if not owners:
            return created
        kept: list[CreatedIds] = []
        for batch in created:
            ids: list[str] = []
            for created_id in batch.ids:
                owner = owners.get((batch.path, created_id)) if created_id else None
                if owner is None:
                    ids.append(created_id)
                    continue
                response.rows_left.add(
                    connection_id=connection_id,
                    table=batch.path,
                    call=batch.call,
                    batch=batch.batch,
                    key=created_id,
                    reason=f"created by run {owner}: the target answered this run's idempotency key "
                    f"with the original's resource; purge {owner}",
                )
            if ids:
                kept.append(CreatedIds(batch.call, batch.batch, batch.path, ids))
        return kept

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


class _Scope:
    """What one purge of `run` reads once: its write batches, the other runs of its ledger
    identity (the original and its replays) and theirs, the databases of their connections."""

    def __init__(self, store: Store, run: RunRecord) -> None:
        self._store = store
        self._run = run
        self._runs: list[RunRecord] | None = None
        self._batches: dict[str, list[WriteBatchRecord]] = {}
        self._databases: dict[str, tuple[Any, ...] | None] = {}

    async def others(self) -> list[RunRecord]:
        """The other runs signed for the same ledger run: replays are runs of the same scenario,
        created after the run they replay."""
        if self._runs is None:
            run, found = self._run, list[RunRecord]()
            try:
                first = await self._store.get_run(run.ledger_run_id)
                since = min(first.created_at, run.created_at)
            except NotFoundError:
                since = None
            offset = 0
            while True:
                page = await self._store.list_runs(run.scenario_id, _PAGE, offset, created_after=since)
                found.extend(r for r in page if r.id != run.id and r.ledger_run_id == run.ledger_run_id)
                if len(page) < _PAGE:
                    break
                offset += _PAGE
            self._runs = found
        return self._runs

    async def earlier(self) -> list[RunRecord]:
        """The other runs of the identity created before this one, oldest first."""
        run = self._run
        before = [r for r in await self.others() if (r.created_at, r.id) < (run.created_at, run.id)]
        return sorted(before, key=lambda r: (r.created_at, r.id))

    async def batches(self, run_id: str) -> list[WriteBatchRecord]:
        if run_id not in self._batches:
            found: list[WriteBatchRecord] = []
            while True:
                page = await self._store.attempts.list_batches(run_id, _PAGE, len(found))
                found.extend(page)
                if len(page) < _PAGE:
                    break
            self._batches[run_id] = found
        return self._batches[run_id]

    async def _database(self, connection_id: str) -> tuple[Any, ...] | None:
        if connection_id not in self._databases:
            try:
                record = await self._store.connections.get(connection_id)
            except NotFoundError:
                self._databases[connection_id] = None
            else:
                sql = record.kind in _SQL_KINDS
                self._databases[connection_id] = _database(record.url) if sql else None
        return self._databases[connection_id]

    async def _through(
        self, run_id: str, connection_id: str, database: tuple[Any, ...] | None
    ) -> set[tuple[int, int, str]]:
        """(call, batch, status) of the run's batches through the connection or any to `database`."""
        out: set[tuple[int, int, str]] = set()
        for b in await self.batches(run_id):
            if b.connection_id == connection_id or (
                database is not None and await self._database(b.connection_id) == database
            ):
                out.add((b.call, b.batch, b.status))
        return out

    async def own_batches(self, connection_id: str, database: tuple[Any, ...] | None) -> set[tuple[int, int]]:
        """The (call, batch) pairs this run wrote to the connection's database: those it APPLIED
        (any attempt); for the original, also those it only found there (an earlier attempt's
        report lost) that no other run of its identity applied there."""
        run = self._run
        mine = await self._through(run.id, connection_id, database)
        own = {(call, batch) for call, batch, status in mine if status == "APPLIED"}
        if run.id == run.ledger_run_id:
            found = {(call, batch) for call, batch, status in mine if status != "APPLIED"} - own
            for other in await self.others() if found else []:
                theirs = await self._through(other.id, connection_id, database)
                found -= {(call, batch) for call, batch, status in theirs if status == "APPLIED"}
            own |= found
        return own


def _recorded(record: PurgeRecord) -> run_pb2.PurgeRunResponse:
    """A DONE purge's answer, from its record."""
    response = run_pb2.PurgeRunResponse()
    if record.result:
        json_format.Parse(record.result, response, ignore_unknown_fields=True)
    return response


def _no_undo(rest: dict[str, Any]) -> str:
    """Why what a run posted through a REST connection cannot be undone."""
    if not rest.get("undo"):
        return (
            "what the run posted cannot be undone: the connection declares no undo (create it with "
            "--rest-undo 'DELETE {path}/{id}', or delete the resources by hand)"
        )
    return (
        "what the run posted cannot be undone: no ids were recorded (the undo was declared after "
        "the run, or the responses named none at the undo's id field)"
    )


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
            rows_restored=table.get("rows_restored", 0),
            rows_changed=table.get("rows_changed", 0),
        )
    for batch in summary["skipped"]:
        response.skipped.add(connection_id=connection_id, **batch)
    for error in summary["errors"]:
        response.failures.add(connection_id=connection_id, **error)
    for row in summary.get("changed", []):
        response.rows_left.add(connection_id=connection_id, **row)


def describe(response: run_pb2.PurgeRunResponse) -> str:
    """The purge in one line: rows per table, rows put back and left, what was skipped, where it
    stopped."""
    verb = "would delete" if response.dry_run else "purged"
    total = sum(t.rows_deleted for t in response.targets)
    if response.targets:
        parts = ", ".join(f"{t.rows_deleted} from {t.table} ({t.connection_id})" for t in response.targets)
        text = f"{verb} {total} row{'s' if total != 1 else ''}: {parts}"
    else:
        text = f"{verb} nothing: no batch of the run is left to purge"
    restored = sum(t.rows_restored for t in response.targets)
    if restored:
        put = "would put" if response.dry_run else "put"
        text += f"; {put} back {restored} row{'s' if restored != 1 else ''} an upsert changed"
    changed = sum(t.rows_changed for t in response.targets)
    if changed:
        text += f"; {changed} row{'s' if changed != 1 else ''} left as they are (changed since the run)"
    if response.assets_deleted:
        text += f"; {response.assets_deleted} asset{'s' if response.assets_deleted != 1 else ''}"
    if response.skipped:
        count = len(response.skipped)
        text += f"; {count} batch{'es' if count != 1 else ''} skipped (not purgeable)"
    if response.skipped_connections:
        text += "; connections skipped: " + ", ".join(c.connection_id for c in response.skipped_connections)
    if response.failures:
        text += (
            f"; stopped: {response.failures[0].message}; the run's assets are kept until a purge completes"
        )
    return text


_STATES = {
    "RUNNING": run_pb2.PURGE_STATE_RUNNING,
    "DONE": run_pb2.PURGE_STATE_DONE,
    "FAILED": run_pb2.PURGE_STATE_FAILED,
}


def record_to_proto(record: PurgeRecord) -> run_pb2.PurgeRecord:
    msg = run_pb2.PurgeRecord(
        run_id=record.run_id,
        scenario_id=record.scenario_id,
        trigger=record.trigger,
        state=_STATES.get(record.state, run_pb2.PURGE_STATE_UNSPECIFIED),
        attempts=record.attempts,
        message=record.message,
    )
    msg.start_time.FromDatetime(record.started_at)
    if record.ended_at is not None:
        msg.end_time.FromDatetime(record.ended_at)
    if record.result:
        json_format.Parse(record.result, msg.result, ignore_unknown_fields=True)
    return msg
