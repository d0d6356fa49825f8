"""Templates in the store: the catalog's current view and every version ever pushed.

Every change of a template is a new immutable version, numbered from 1 per id
(``template_versions``); ``templates`` holds the latest one (its ``revision`` is that version's
number) with what belongs to the template rather than to a document: its project, whether it is
shared, when it was first created. A push whose source and canonical document are those of the
latest version makes no new version (a re-push from CI is not a change; a change of ``shared``
alone applies without one).

Deleting a template removes it from the catalog (no new run sees it, it is no longer listed) but
keeps its versions: runs that used ``tmpl_x@2`` stay explainable, ``show``/``history`` still read
them, and a template created again under the same id goes on numbering after the last one, so
``tmpl_x@2`` always names one document. Rejected: deleting the versions with the template (a run's
record would then name documents nobody can read), and a tombstone row in ``templates`` (every
catalog query would have to skip it).

A run uses versions fixed when it was created, whatever happens to the templates until its last
attempt: for each template in its project's scope, the version pinned on the run (a replay's
``runs.template_pins``) or else the latest version created at or before the run. The run's first
dispatch writes that choice into ``runs.template_pins`` (one conditional UPDATE, see
``fix_for_run``) and later attempts read it back: a push dates its version before it commits, so
the creation time alone could give a retry a version its first attempt did not see. Rejected:
copying the version map into every run at creation (a write on the fire's path, for runs that may
never start); the creation time alone (the race above).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, NoReturn

from sqlalchemy import func, select, update

from seedbed.coordinator.errors import AlreadyExistsError, ConflictError, NotFoundError
from seedbed.coordinator.store import _schema as t
from seedbed.coordinator.store.records import as_utc

if TYPE_CHECKING:
    from seedbed.coordinator.store.catalog import CatalogScope
    from seedbed.coordinator.store.store import Store


@dataclass(frozen=True)
class TemplateRecord:
    id: str
    source: str
    format: str
    canonical: dict[str, Any]
    digest: str
    description: str
    field_names: list[str]
    revision: int  # the number of the latest version
    created_at: datetime
    updated_at: datetime
    project_key: str = "default"
    shared: bool = False


@dataclass(frozen=True)
class TemplateVersionRecord:
    """One immutable version of a template: the document as pushed, in the project it was pushed in."""

    template_id: str
    version: int
    project_key: str
    source: str
    format: str
    canonical: dict[str, Any]
    digest: str
    description: str
    field_names: list[str]
    created_at: datetime
    created_by: str = ""


class TemplateVersionNotFound(NotFoundError):
    """``template_id@version`` does not exist; ``versions`` are those that do (none: no such
    template), for the message to name."""

    def __init__(self, template_id: str, version: int, versions: list[int]) -> None:
        super().__init__("template version", f"{template_id}@{version}")
        have = ", ".join(str(v) for v in versions) if versions else "none"
        self.args = (
            f"template version {template_id}@{version} not found (versions of {template_id}: {have}); "
            f"see `seedbed template history {template_id}`",
        )
        self.template_id = template_id
        self.version = version
        self.versions = versions


class TemplateRepository:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def put(
        self,
        template_id: str,
        *,
        project_key: str,
        shared: bool | None,
        source: str,
        fmt: str,
        canonical: dict[str, Any],
        description: str,
        field_names: list[str],
        allow_update: bool,
        at: datetime,
        expected_revision: int | None = None,
        created_by: str = "",
    ) -> tuple[TemplateRecord, bool]:
        """Create the template in ``project_key`` or update it there (``shared`` None: unchanged),
        keeping the document as a new version unless it is the latest one's. OtherProjectError
        when another project holds the id.

        ``expected_revision``: 0 creates it only if the id is free (a template created meanwhile
        in the same project is ConflictError, not ALREADY_EXISTS: the caller read it as absent);
        another number updates it only if its revision is still that one, a condition of the
        UPDATE itself, and never creates it (gone: ConflictError without a revision)."""
        from seedbed.coordinator.store.catalog import _same_project  # one helper for the catalog

        digest = template_digest(canonical)
        values = {
            "source": source,
            "format": fmt,
            "canonical": _canonical_body(canonical),
            "digest": digest,
            "description": description,
            "field_names": json.dumps(field_names),
            "updated_at": at,
        }
        by_id = t.templates.c.id == template_id
        async with self._store._write() as conn:
            created = False
            version: int | None = None
            if expected_revision is None or expected_revision == 0:
                # Numbering goes on after the versions of a deleted template of the same id.
                version = await _last_version(conn, template_id) + 1
                inserted = await conn.execute(
                    self._store._insert(t.templates)
                    .values(
                        id=template_id,
                        revision=version,
                        created_at=at,
                        project_key=project_key,
                        shared=bool(shared),
                        **values,
                    )
                    .on_conflict_do_nothing(index_elements=["id"])
                    .returning(t.templates.c.id)
                )
                created = inserted.scalar_one_or_none() is not None
            if not created:
                owner = await _same_project(conn, t.templates, by_id, "template", template_id, project_key)
                if expected_revision == 0 or (expected_revision is not None and owner is None):
                    await _conflict(conn, template_id, expected_revision)
                if not allow_update:
                    raise AlreadyExistsError(
                        f"template {template_id!r} already exists: push it with update allowed to replace it"
                    )
                condition = by_id & (t.templates.c.project_key == project_key)
                if expected_revision is not None:
                    condition = condition & (t.templates.c.revision == expected_revision)
                changed = (t.templates.c.digest != digest) | (t.templates.c.source != source)
                result = await conn.execute(
                    update(t.templates)
                    .where(condition & changed)
                    .values(revision=t.templates.c.revision + 1, **values, **_shared(shared))
                    .returning(t.templates.c.revision)
                )
                version = result.scalar_one_or_none()
                if version is None:
                    # The same document again (only `shared` may change), or the condition failed.
                    if shared is not None:
                        hit = await conn.execute(update(t.templates).where(condition).values(shared=shared))
                        matched = hit.rowcount > 0
                    else:
                        matched = (
                            await conn.execute(select(t.templates.c.id).where(condition))
                        ).first() is not None
                    if not matched and expected_revision is not None:
                        await _conflict(conn, template_id, expected_revision)
            if version is not None:
                await conn.execute(
                    t.template_versions.insert().values(
                        template_id=template_id,
                        version=version,
                        project_key=project_key,
                        created_at=at,
                        created_by=created_by[:100],
                        **{k: v for k, v in values.items() if k != "updated_at"},
                    )
                )
            row = (await conn.execute(select(t.templates).where(by_id))).first()
        if row is None:
            raise NotFoundError("template", template_id)  # deleted meanwhile
        return _template(row._mapping), created

    async def get(self, template_id: str) -> TemplateRecord:
        async with self._store._engine.connect() as conn:
            row = (await conn.execute(select(t.templates).where(t.templates.c.id == template_id))).first()
        if row is None:
            raise NotFoundError("template", template_id)
        return _template(row._mapping)

    async def page(self, limit: int, offset: int, scope: CatalogScope) -> list[TemplateRecord]:
        query = (
            select(t.templates)
            .where(scope.where(t.templates))
            .order_by(t.templates.c.id)
            .limit(limit)
            .offset(offset)
        )
        async with self._store._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [_template(r._mapping) for r in rows]

    async def all(self, scope: CatalogScope) -> list[TemplateRecord]:
        query = select(t.templates).where(scope.where(t.templates)).order_by(t.templates.c.id)
        async with self._store._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [_template(r._mapping) for r in rows]

    async def delete(self, template_id: str, project_key: str) -> None:
        """Delete the template if it (still) belongs to ``project_key``; its versions stay (see the
        module docstring)."""
        async with self._store._write() as conn:
            result = await conn.execute(
                t.templates.delete().where(
                    t.templates.c.id == template_id, t.templates.c.project_key == project_key
                )
            )
            if result.rowcount == 0:
                raise NotFoundError("template", template_id)

    # -- versions ----------------------------------------------------------------------------------

    async def version(self, template_id: str, version: int) -> TemplateVersionRecord:
        """Version ``version`` of the template (kept after a delete); TemplateVersionNotFound naming
        the versions that exist."""
        tv = t.template_versions
        async with self._store._engine.connect() as conn:
            row = (
                await conn.execute(select(tv).where(tv.c.template_id == template_id, tv.c.version == version))
            ).first()
            if row is None:
                numbers = await conn.execute(
                    select(tv.c.version).where(tv.c.template_id == template_id).order_by(tv.c.version)
                )
                raise TemplateVersionNotFound(template_id, version, [int(v) for v in numbers.scalars()])
        return _version(row._mapping)

    async def versions(
        self, template_id: str, *, limit: int, offset: int = 0, project_key: str | None = None
    ) -> list[TemplateVersionRecord]:
        """The template's versions, newest first (empty: it never existed); with ``project_key``
        only those pushed in that project."""
        tv = t.template_versions
        where = tv.c.template_id == template_id
        if project_key is not None:
            where = where & (tv.c.project_key == project_key)
        query = select(tv).where(where).order_by(tv.c.version.desc()).limit(limit).offset(offset)
        async with self._store._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [_version(r._mapping) for r in rows]

    async def run_pins(self, run_id: str) -> dict[str, int]:
        """The versions run ``run_id`` was asked to use or was fixed to (``runs.template_pins``;
        empty: none)."""
        return _pins(await self._raw_pins(run_id))[0]

    async def _raw_pins(self, run_id: str) -> str | None:
        query = select(t.runs.c.template_pins).where(t.runs.c.id == run_id)
        async with self._store._engine.connect() as conn:
            return (await conn.execute(query)).scalar_one_or_none()

    async def fix_for_run(
        self, run_id: str, scope: CatalogScope, created_at: datetime
    ) -> list[TemplateVersionRecord]:
        """The versions every attempt of run ``run_id`` generates from: on its first dispatch
        those of :meth:`for_run` (its pins, else the latest at its creation), written into
        ``runs.template_pins`` as fixed by one conditional UPDATE; on later ones exactly the
        fixed ones. A version committed after the run's creation with an earlier date (a push
        takes its time before its transaction commits) is then either every attempt's or none's."""
        for _ in range(2):
            raw = await self._raw_pins(run_id)
            pins, fixed = _pins(raw)
            if fixed:
                return await self.for_run(scope, created_at, pins, only_pins=True)
            versions = await self.for_run(scope, created_at, pins)
            body = json.dumps({_FIXED: {v.template_id: v.version for v in versions}}, sort_keys=True)
            unchanged = t.runs.c.template_pins.is_(None) if raw is None else t.runs.c.template_pins == raw
            async with self._store._write() as conn:
                hit = await conn.execute(
                    update(t.runs).where(t.runs.c.id == run_id, unchanged).values(template_pins=body)
                )
            if hit.rowcount:
                return versions
            # Another dispatch fixed them first (or the run is gone): read what it fixed.
        return versions

    async def for_run(
        self,
        scope: CatalogScope,
        created_at: datetime,
        pins: Mapping[str, int],
        *,
        only_pins: bool = False,
    ) -> list[TemplateVersionRecord]:
        """The version of each template in ``scope`` a run created at ``created_at`` uses: its pin,
        else (unless ``only_pins``) the latest version created at or before the run. A template
        created after the run is not the run's; one whose versions before the run were
        overwritten before versions were kept uses its oldest kept version; the versions of an
        earlier, deleted template of the same id (maybe another project's) are never the current
        one's. A pin counts only for a version pushed in the project that holds the template now
        (a replay never reaches another project's document); a pin of a version that does not
        exist, or of another project's, leaves the template out (the script's use of it then
        fails, naming it)."""
        tv = t.template_versions
        async with self._store._engine.connect() as conn:
            current = (
                await conn.execute(
                    select(t.templates.c.id, t.templates.c.created_at, t.templates.c.project_key).where(
                        scope.where(t.templates)
                    )
                )
            ).all()
            born = {r.id: as_utc(r.created_at) for r in current}
            owner = {r.id: r.project_key for r in current}
            if not born:
                return []
            dated = (
                await conn.execute(
                    select(tv.c.template_id, tv.c.version, tv.c.created_at, tv.c.project_key).where(
                        tv.c.template_id.in_(sorted(born))
                    )
                )
            ).all()
            chosen: dict[str, int] = {}
            oldest: dict[str, int] = {}
            pinnable: set[tuple[str, int]] = set()
            for row in dated:
                tid, number, at = row.template_id, int(row.version), as_utc(row.created_at)
                if row.project_key == owner[tid]:
                    pinnable.add((tid, number))
                if only_pins or at < born[tid]:
                    # A version of an earlier template of this id (deleted, maybe in another
                    # project): never the current one's, whatever its date.
                    continue
                oldest[tid] = min(oldest.get(tid, number), number)
                if at <= created_at and number > chosen.get(tid, 0):
                    chosen[tid] = number
            for tid, first in oldest.items():
                if tid not in chosen and born[tid] <= created_at:
                    chosen[tid] = first
            for tid, number in pins.items():
                if tid not in born:
                    continue
                if (tid, number) in pinnable:
                    chosen[tid] = number
                else:
                    chosen.pop(tid, None)
            if not chosen:
                return []
            wanted = [(tid, n) for tid, n in chosen.items()]
            rows: list[Any] = []
            for start in range(0, len(wanted), 200):  # bounded IN lists
                part = wanted[start : start + 200]
                rows += (
                    await conn.execute(
                        select(tv).where(
                            tv.c.template_id.in_([p[0] for p in part]),
                            tv.c.version.in_(sorted({p[1] for p in part})),
                        )
                    )
                ).all()
        found = [_version(r._mapping) for r in rows]
        return sorted(
            (v for v in found if chosen.get(v.template_id) == v.version), key=lambda v: v.template_id
        )


# ``runs.template_pins`` holds a replay's pins as {id: version}; once the run's first dispatch fixed
# its versions, {"fixed": {id: version}} (no template id is "fixed": ids start with "tmpl_").
_FIXED = "fixed"


def _pins(raw: str | None) -> tuple[dict[str, int], bool]:
    """(the pins in ``runs.template_pins``, whether they are the run's fixed versions)."""
    try:
        pins = json.loads(raw) if raw else {}
    except ValueError:
        return {}, False
    if not isinstance(pins, dict):
        return {}, False
    fixed = isinstance(pins.get(_FIXED), dict)
    if fixed:
        pins = pins[_FIXED]
    return {str(k): int(v) for k, v in pins.items() if isinstance(v, int)}, fixed


async def _last_version(conn: Any, template_id: str) -> int:
    tv = t.template_versions
    query = select(func.coalesce(func.max(tv.c.version), 0)).where(tv.c.template_id == template_id)
    return int((await conn.execute(query)).scalar_one())


async def _conflict(conn: Any, template_id: str, expected: int) -> NoReturn:
    """Raise ConflictError for a put conditioned on ``expected``, naming the revision found now
    (None: the template is gone). Read only to say why; nothing was written."""
    found = select(t.templates.c.revision).where(t.templates.c.id == template_id)
    actual = (await conn.execute(found)).scalar_one_or_none()
    raise ConflictError("template", template_id, expected, actual)


def _canonical_body(canonical: dict[str, Any]) -> str:
    # Field order is part of a template (it is the rows' column order): keep it.
    return json.dumps(canonical, separators=(",", ":"))


def template_digest(canonical: dict[str, Any]) -> str:
    """The digest a template with this canonical document is stored with."""
    return hashlib.sha256(_canonical_body(canonical).encode()).hexdigest()


def _shared(shared: bool | None) -> dict[str, bool]:
    """The ``shared`` value an update sets: none when unchanged."""
    return {} if shared is None else {"shared": shared}


def _template(row: Any) -> TemplateRecord:
    return TemplateRecord(
        id=row["id"],
        source=row["source"],
        format=row["format"],
        canonical=json.loads(row["canonical"]),
        digest=row["digest"],
        description=row["description"],
        field_names=json.loads(row["field_names"]),
        revision=row["revision"],
        created_at=as_utc(row["created_at"]),
        updated_at=as_utc(row["updated_at"]),
        project_key=row["project_key"],
        shared=bool(row["shared"]),
    )


def _version(row: Any) -> TemplateVersionRecord:
    return TemplateVersionRecord(
        template_id=row["template_id"],
        version=int(row["version"]),
        project_key=row["project_key"],
        source=row["source"],
        format=row["format"],
        canonical=json.loads(row["canonical"]),
        digest=row["digest"],
        description=row["description"],
        field_names=json.loads(row["field_names"]),
        created_at=as_utc(row["created_at"]),
        created_by=row["created_by"] or "",
    )
