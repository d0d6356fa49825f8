"""The coordinator's store: the truth about scenarios, fires, runs, attempts and log lines.

This module holds scenarios, runs and log lines. Fires, their overlap resolution, the fires queued
behind a run and the cron triggers' states live in ``fires`` (``Store.fires``); attempts, their
leases and the write batches they report in ``attempts`` (``Store.attempts``); templates,
connections and workspace files in ``catalog``; users, projects and API keys in ``access``; report
deliveries in ``reports``; the files runs kept in ``assets``.

SQLAlchemy 2 (async) over a SQLite file by default or PostgreSQL through psycopg 3. Every state
transition is one conditional ``UPDATE … WHERE state IN (…)``; a transition that finds the row in
another state reports it instead of overwriting it.

SQLite allows one writer at a time and upgrades read locks lazily, which makes concurrent
read-then-write transactions fail with "database is locked" instead of waiting; writes are
therefore serialized in-process with a lock (one coordinator per SQLite file). PostgreSQL takes row
locks (``SELECT … FOR UPDATE`` on the scenario) so several coordinators could share it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections.abc import AsyncIterator, Collection, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, and_, case, event, func, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from seedbed.coordinator.errors import (
    AlreadyExistsError,
    ConflictError,
    FailedPreconditionError,
    NotFoundError,
    StoreUnavailableError,
)
from seedbed.coordinator.model import ACTIVE_STATES, RunState, folded_scenario_id
from seedbed.coordinator.store import _rows
from seedbed.coordinator.store import _schema as t
from seedbed.coordinator.store.access import AccessRepository
from seedbed.coordinator.store.assets import AssetRepository
from seedbed.coordinator.store.attempts import AttemptRepository
from seedbed.coordinator.store.catalog import ConnectionRepository, WorkspaceRepository
from seedbed.coordinator.store.dryruns import DryRunRepository
from seedbed.coordinator.store.fires import FireRepository
from seedbed.coordinator.store.purges import PurgeRepository
from seedbed.coordinator.store.records import (
    LogRecord,
    RunEnd,
    RunRecord,
    ScenarioRecord,
    ScenarioSettingsValue,
    as_utc,
    now,
)
from seedbed.coordinator.store.replays import ReplayRepository
from seedbed.coordinator.store.reports import ReportRepository
from seedbed.coordinator.store.spans import SpanRepository
from seedbed.coordinator.store.templates import TemplateRepository

__all__ = ["Store", "normalize_url", "now"]

log = logging.getLogger(__name__)

_MIGRATIONS = Path(__file__).parent / "migrations"
# The advisory lock key migrations hold on PostgreSQL (any constant of this application's own).
_MIGRATION_LOCK = 0x5EEDBED


def _without(message: str, url: str) -> str:
    """`message` with `url` (and its password, when one can be found) replaced."""
    message = message.replace(url, "<the URL>")
    password = url.partition("://")[2].rpartition("@")[0].partition(":")[2]
    return message.replace(password, "***") if len(password) >= 6 else message


def normalize_url(url: str) -> str:
    """Pick the async driver for a plain URL: ``postgresql://`` → psycopg, ``sqlite://`` → aiosqlite."""
    parsed = make_url(url)
    driver = parsed.drivername
    if driver in ("postgresql", "postgres", "postgresql+psycopg2"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    elif driver == "sqlite":
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    return parsed.render_as_string(hide_password=False)


class Store:
    """Async access to the store. Create with :meth:`open`; close with :meth:`aclose`."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._is_sqlite = engine.dialect.name == "sqlite"
        self._write_lock = asyncio.Lock()
        self.templates = TemplateRepository(self)
        self.connections = ConnectionRepository(self)
        self.workspace = WorkspaceRepository(self)
        self.attempts = AttemptRepository(self)
        self.reports = ReportRepository(self)
        self.spans = SpanRepository(self)
        self.access = AccessRepository(self)
        self.fires = FireRepository(self)
        self.purges = PurgeRepository(engine, self._write, self._insert)
        self.dry_runs = DryRunRepository(self._write)
        self.assets = AssetRepository(engine, self._write)
        self.replays = ReplayRepository(self)

    @classmethod
    async def open(cls, url: str) -> Store:
        if url.partition("://")[2].partition("/")[0].count("@") > 1:
            raise StoreUnavailableError(
                "SEEDBED_STORE_URL has more than one '@' before its host: %-encode an '@' of the "
                "password as %40 (and ':' as %3A, '/' as %2F)"
            )
        try:
            url = normalize_url(url)
            parsed = make_url(url)
            if parsed.drivername.startswith("sqlite") and parsed.database not in (None, "", ":memory:"):
                _private_file(Path(parsed.database))
            connect_args: dict[str, Any] = {}
            if parsed.drivername.startswith("sqlite"):
                connect_args["timeout"] = 30
            engine = create_async_engine(url, connect_args=connect_args, pool_pre_ping=True)
        except (ArgumentError, ValueError, ImportError) as exc:
            # A URL SQLAlchemy cannot read or has no driver for: said without the URL itself (its
            # password may sit anywhere in a malformed one).
            raise StoreUnavailableError(
                f"SEEDBED_STORE_URL is not a store URL this coordinator can use ({type(exc).__name__}: "
                f"{_without(str(exc), url)}); expected postgresql://user:password@host:port/database "
                "(special characters in the password %-encoded) or sqlite:///path"
            ) from None
        if engine.dialect.name == "sqlite":
            event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        store = cls(engine)
        try:
            await store.migrate()
        except (DBAPIError, OSError) as exc:
            await engine.dispose()
            raise StoreUnavailableError(
                f"cannot open the store at {parsed.render_as_string(hide_password=True)}: {exc}"
            ) from exc
        return store

    async def migrate(self) -> None:
        def upgrade(sync_conn: Connection) -> None:
            cfg = Config()
            cfg.set_main_option("script_location", str(_MIGRATIONS))
            cfg.attributes["connection"] = sync_conn
            command.upgrade(cfg, "head")

        async with self._engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                # Coordinators starting together (replicas, each with its migration step) take turns:
                # the first migrates, the others find the schema current. Released at commit.
                await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
            await conn.run_sync(upgrade)

    async def aclose(self) -> None:
        await self._engine.dispose()

    @property
    def dialect(self) -> str:
        return self._engine.dialect.name

    @contextlib.asynccontextmanager
    async def _write(self) -> AsyncIterator[AsyncConnection]:
        if self._is_sqlite:
            async with self._write_lock, self._engine.begin() as conn:
                yield conn
        else:
            async with self._engine.begin() as conn:
                yield conn

    def _insert(self, table: Any) -> Any:
        return (postgresql.insert if self.dialect == "postgresql" else sqlite.insert)(table)

    # -- scenarios ---------------------------------------------------------------------------------

    async def create_scenario(
        self,
        scenario_id: str,
        name: str,
        script: str,
        settings: ScenarioSettingsValue,
        *,
        project_key: str = "default",
        modified_by: str = "",
    ) -> ScenarioRecord:
        at = now()
        values = {
            "id": scenario_id,
            "name": name,
            "script": script,
            "settings": json.dumps(settings.to_json()),
            "revision": 1,
            "created_at": at,
            "updated_at": at,
            "project_key": project_key,
            "last_modified_by": modified_by,
            "script_modified_by": modified_by,
        }
        async with self._write() as conn:
            # rowcount is unreliable for INSERT … ON CONFLICT through psycopg: ask for the row back.
            # No conflict target: the id and its lower-cased form (ux_scenarios_id_folded) are both
            # unique, and either taken means nothing is inserted.
            result = await conn.execute(
                self._insert(t.scenarios)
                .values(**values)
                .on_conflict_do_nothing()
                .returning(t.scenarios.c.id)
            )
            if result.scalar_one_or_none() is None:
                raise _taken(scenario_id, await self._folded_scenario_id(conn, scenario_id))
        return _rows.to_scenario(values)

    async def scenario_id_taken(self, scenario_id: str) -> None:
        """AlreadyExistsError when creating ``scenario_id`` would be refused: the id, or one that
        differs from it only by case, exists (what ``create_scenario`` decides atomically)."""
        async with self._engine.connect() as conn:
            existing = await self._folded_scenario_id(conn, scenario_id)
        if existing is not None:
            raise _taken(scenario_id, existing)

    async def _folded_scenario_id(self, conn: AsyncConnection, scenario_id: str) -> str | None:
        folded = func.lower(t.scenarios.c.id) == folded_scenario_id(scenario_id)
        query = select(t.scenarios.c.id).where(folded)
        return (await conn.execute(query)).scalar_one_or_none()

    async def update_scenario(
        self,
        scenario_id: str,
        *,
        name: str | None = None,
        script: str | None = None,
        settings: ScenarioSettingsValue | None = None,
        modified_by: str | None = None,
        expected_revision: int | None = None,
    ) -> ScenarioRecord:
        """Change what is given. ``modified_by`` becomes the last modifier; it becomes the script's
        author (whom the runs act as without run_as) only when ``script`` differs from the stored
        one, compared in the same UPDATE so a concurrent change cannot slip between.

        ``expected_revision``: change it only if its revision is still this one, a condition of the
        same UPDATE (never read, then write); otherwise ConflictError naming the revision found
        (none: it was deleted) and nothing changes. Without it, NotFoundError for an unknown id."""
        changes: dict[str, Any] = {"updated_at": now(), "revision": t.scenarios.c.revision + 1}
        if modified_by is not None:
            changes["last_modified_by"] = modified_by
        if name is not None:
            changes["name"] = name
        if script is not None:
            changes["script"] = script
            if modified_by is not None:
                changes["script_modified_by"] = case(
                    (t.scenarios.c.script == script, t.scenarios.c.script_modified_by), else_=modified_by
                )
        if settings is not None:
            changes["settings"] = json.dumps(settings.to_json())
        by_id = t.scenarios.c.id == scenario_id
        condition = (
            by_id if expected_revision is None else by_id & (t.scenarios.c.revision == expected_revision)
        )
        async with self._write() as conn:
            result = await conn.execute(update(t.scenarios).where(condition).values(**changes))
            row = (await conn.execute(select(t.scenarios).where(by_id))).first()
        if result.rowcount == 0 or row is None:
            # Read after the refused UPDATE, only to say why: nothing was written.
            if expected_revision is None:
                raise NotFoundError("scenario", scenario_id)
            actual = None if row is None else int(row.revision)
            raise ConflictError("scenario", scenario_id, expected_revision, actual)
        return _rows.to_scenario(row._mapping)

    async def get_scenario(self, scenario_id: str) -> ScenarioRecord:
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(t.scenarios).where(t.scenarios.c.id == scenario_id))).first()
        if row is None:
            raise NotFoundError("scenario", scenario_id)
        return _rows.to_scenario(row._mapping)

    async def list_scenarios(
        self, limit: int, offset: int, *, project_key: str = "", projects: Collection[str] | None = None
    ) -> list[ScenarioRecord]:
        """Scenarios by id. ``projects`` None: every project, else only these (the caller's)."""
        query = select(t.scenarios).order_by(t.scenarios.c.id).limit(limit).offset(offset)
        if project_key:
            query = query.where(t.scenarios.c.project_key == project_key)
        if projects is not None:
            query = query.where(t.scenarios.c.project_key.in_(list(projects)))
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [_rows.to_scenario(r._mapping) for r in rows]

    async def delete_scenario(self, scenario_id: str) -> None:
        async with self._write() as conn:
            await self._lock_scenario(conn, scenario_id)
            active = await self._active_run(conn, scenario_id)
            if active is not None:
                raise FailedPreconditionError(
                    f"scenario {scenario_id!r} has an active run {active!r}: abort it or wait for it to end"
                )
            await conn.execute(t.scenarios.delete().where(t.scenarios.c.id == scenario_id))

    async def _lock_scenario(self, conn: AsyncConnection, scenario_id: str) -> ScenarioRecord:
        query = select(t.scenarios).where(t.scenarios.c.id == scenario_id)
        if self.dialect == "postgresql":
            query = query.with_for_update()
        row = (await conn.execute(query)).first()
        if row is None:
            raise NotFoundError("scenario", scenario_id)
        return _rows.to_scenario(row._mapping)

    async def _active_run(self, conn: AsyncConnection, scenario_id: str) -> str | None:
        query = (
            select(t.runs.c.id)
            .where(t.runs.c.scenario_id == scenario_id, t.runs.c.state.in_([s.value for s in ACTIVE_STATES]))
            .limit(1)
        )
        return (await conn.execute(query)).scalar_one_or_none()

    # -- runs --------------------------------------------------------------------------------------

    async def get_runs(self, run_ids: Collection[str]) -> dict[str, RunRecord]:
        """The runs among these ids that exist, by id."""
        async with self._engine.connect() as conn:
            rows = (await conn.execute(select(t.runs).where(t.runs.c.id.in_(list(run_ids))))).all()
        return {r.id: _rows.to_run(r._mapping) for r in rows}

    async def get_run(self, run_id: str) -> RunRecord:
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(t.runs).where(t.runs.c.id == run_id))).first()
        if row is None:
            raise NotFoundError("run", run_id)
        return _rows.to_run(row._mapping)

    async def list_runs(
        self,
        scenario_id: str,
        limit: int,
        offset: int,
        *,
        states: Collection[RunState] = (),
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        project_key: str = "",
        projects: Collection[str] | None = None,
    ) -> list[RunRecord]:
        """Runs, newest first. ``states`` empty: any; created in [created_after, created_before);
        ``projects`` None: every project, else only runs of these (the caller's) projects."""
        query = select(t.runs).order_by(t.runs.c.created_at.desc(), t.runs.c.id.desc())
        if scenario_id:
            query = query.where(t.runs.c.scenario_id == scenario_id)
        if states:
            query = query.where(t.runs.c.state.in_([s.value for s in states]))
        if created_after is not None:
            query = query.where(t.runs.c.created_at >= created_after)
        if created_before is not None:
            query = query.where(t.runs.c.created_at < created_before)
        if project_key:
            query = query.where(t.runs.c.project_key == project_key)
        if projects is not None:
            query = query.where(t.runs.c.project_key.in_(list(projects)))
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query.limit(limit).offset(offset))).all()
        return [_rows.to_run(r._mapping) for r in rows]

    async def append_logs(
        self, run_id: str, lines: Sequence[LogRecord], *, attempt: int | None = None
    ) -> bool:
        """Append numbered lines. With ``attempt``: only while it is the run's latest attempt (False,
        nothing written, once another driver began a newer one)."""
        if not lines:
            return True
        async with self._write() as conn:
            # The run row first: on PostgreSQL its lock orders this against a takeover's begin.
            guard = update(t.runs).where(t.runs.c.id == run_id)
            if attempt is not None:
                guard = guard.where(t.runs.c.attempt_count == attempt)
            result = await conn.execute(guard.values(last_sequence=lines[-1].seq))
            if not result.rowcount:
                return False
            await conn.execute(
                t.log_lines.insert(),
                [
                    {
                        "run_id": run_id,
                        "seq": line.seq,
                        "attempt": line.attempt,
                        "stream": line.stream,
                        "level": line.level,
                        "text": line.text,
                        "at": line.at,
                        "fields": json.dumps(line.fields) if line.fields else None,
                        "trace_id": line.trace_id or None,
                        "span_id": line.span_id or None,
                    }
                    for line in lines
                ],
            )
        return True

    async def read_logs(self, run_id: str, after: int, limit: int) -> list[LogRecord]:
        query = (
            select(t.log_lines)
            .where(t.log_lines.c.run_id == run_id, t.log_lines.c.seq > after)
            .order_by(t.log_lines.c.seq)
            .limit(limit)
        )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [
            LogRecord(
                seq=r.seq,
                attempt=r.attempt,
                stream=r.stream,
                text=r.text,
                at=as_utc(r.at) or now(),
                level=r.level,
                fields=json.loads(r.fields) if r.fields else None,
                trace_id=r.trace_id or "",
                span_id=r.span_id or "",
            )
            for r in rows
        ]

    async def finish_run(self, run_id: str, end: RunEnd, *, attempt: int | None = None) -> bool:
        """Active → terminal. False (and nothing written) when the run had already ended, or, with
        ``attempt``, when a newer attempt has begun (the caller was superseded)."""
        if not end.state.is_terminal:
            raise ValueError(f"{end.state} is not terminal")
        query = update(t.runs).where(
            t.runs.c.id == run_id, t.runs.c.state.in_([s.value for s in ACTIVE_STATES])
        )
        if attempt is not None:
            query = query.where(t.runs.c.attempt_count == attempt)
        async with self._write() as conn:
            result = await conn.execute(
                query.values(
                    state=end.state.value,
                    ended_at=now(),
                    error=json.dumps(end.error.to_json()) if end.error else None,
                    exit_code=end.exit_code,
                    logs_truncated=end.logs_truncated,
                    dropped_log_lines=end.dropped_log_lines,
                    warning_count=end.warning_count,
                    details=json.dumps(end.details) if end.details else None,
                    next_attempt_at=None,
                )
            )
        return bool(result.rowcount)

    async def request_abort(self, run_id: str, reason: str) -> RunRecord:
        async with self._write() as conn:
            await conn.execute(
                update(t.runs)
                .where(
                    and_(t.runs.c.id == run_id, t.runs.c.state.in_([s.value for s in ACTIVE_STATES])),
                    t.runs.c.abort_reason.is_(None),
                )
                .values(abort_reason=reason)
            )
        return await self.get_run(run_id)


def _taken(scenario_id: str, existing: str | None) -> AlreadyExistsError:
    if existing is None or existing == scenario_id:
        return AlreadyExistsError(f"scenario {scenario_id!r} already exists")
    # Ids are unique across projects: the other one is not named, its project may be hidden.
    return AlreadyExistsError(
        f"scenario id {scenario_id!r} differs only by case from an existing scenario's id: ids are "
        "matched exactly, but two that differ only by case would be one file on a case-insensitive "
        "file system and are easily confused; choose another id"
    )


def _private_file(path: Path) -> None:
    """Create the store's file readable and writable by its owner only (SQLite gives its -wal and
    -shm files the same mode), in a folder only its owner may enter when the folder is new."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    os.chmod(path, 0o600)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
