"""Use cases of templates: push, read, list, delete, preview, and their versions.

Like :mod:`.runs`: plain values and the contract's messages in, the contract's messages out,
:class:`~seedbed.coordinator.errors.CoordinatorError` for every refusal, the caller being the current
principal. Validation and previews run on a worker (``runs.ports.CatalogWorker``): the data plane
owns template semantics; the coordinator stores what it accepts.

Every change of a template is a new immutable version (see ``store.templates``); reading takes
``tmpl_x`` (the latest) or ``tmpl_x@N`` (version N) wherever a template id is accepted, or a
separate version number; both at once must agree. A version outlives its template: after a delete,
its versions are read with a role in the project they were pushed in. A worker reads the versions a
script pins with its attempt's token, only while the attempt lasts and only templates its run's
project may use. Diffs are the client's (two reads): rejected, a diff RPC, since the client must
colour and page it anyway and two sources are small.

``validate_only`` (a push) is the scenarios' (see :mod:`.scenarios`): every check, then the template
as it would be stored, built from the request and the current record instead of written. Unlike a
scenario's, it takes the pushes rate limit, since a worker validates the document.
"""

from __future__ import annotations

import json
import re
from typing import Any

from seedbed.api.v1 import attempt_pb2, template_pb2
from seedbed.coordinator import authz
from seedbed.coordinator._convert import ts
from seedbed.coordinator.access import Role, WorkerClaims, current_principal
from seedbed.coordinator.app.catalog import may_read, or_none, worker_run_project
from seedbed.coordinator.errors import (
    AlreadyExistsError,
    ConflictError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
)
from seedbed.coordinator.model import MAX_INT64, page_of, validate_page
from seedbed.coordinator.ratelimits import Limit, RateLimiter
from seedbed.coordinator.runs.ports import CatalogWorker
from seedbed.coordinator.settings import CoordinatorSettings
from seedbed.coordinator.store import Store, now
from seedbed.coordinator.store.catalog import CatalogScope, OtherProjectError
from seedbed.coordinator.store.templates import (
    TemplateRecord,
    TemplateVersionNotFound,
    TemplateVersionRecord,
    template_digest,
)

MAX_PREVIEW_ROWS = 100
DEFAULT_PREVIEW_ROWS = 5

_FORMATS = {template_pb2.TEMPLATE_FORMAT_YAML: "yaml", template_pb2.TEMPLATE_FORMAT_JSON: "json"}
_FORMATS_BACK = {v: k for k, v in _FORMATS.items()}
_TEMPLATE_ID = re.compile(r"^tmpl_[a-z0-9][a-z0-9_-]{0,62}$")
# The versions a NOT_FOUND of a missing version names at most (the newest).
_LISTED_VERSIONS = 50
_VERSION_HINT = "pin a version as 'tmpl_x@3' (versions count from 1; `seedbed template history` lists them)"


class TemplateUseCases:
    def __init__(
        self, store: Store, worker: CatalogWorker, settings: CoordinatorSettings, limits: RateLimiter
    ) -> None:
        self._store = store
        self._worker = worker
        self._settings = settings
        self._rates = limits

    async def put_template(
        self,
        source: str,
        fmt: template_pb2.TemplateFormat = template_pb2.TEMPLATE_FORMAT_UNSPECIFIED,
        *,
        project_key: str = "",
        allow_update: bool = False,
        shared: bool | None = None,
        expected_revision: int | None = None,
        validate_only: bool = False,
    ) -> tuple[template_pb2.Template, bool]:
        """Store the document (its id is the one it names); (the template, whether it was created).
        ``shared`` None keeps the current value; ``expected_revision`` makes the put conditional (0:
        only if it does not exist yet). ``validate_only``: check, answer it as it would be stored,
        write nothing (see the module docstring)."""
        project = await authz.project_for_new(self._store, project_key, Role.EDITOR)
        self._rates.take(Limit.TEMPLATE_PUSHES, current_principal().user_id)
        result = await self._validate(source, fmt)
        template_id = result["id"]
        existing = await or_none(self._store.templates.get(template_id))
        if existing is not None and existing.project_key != project:
            raise authz.clash("template", template_id, existing.project_key)
        shared = authz.check_sharing(
            "template", template_id, project, shared, existing.shared if existing else False
        )
        if validate_only:
            # A template deleted then pushed again numbers on from its last version (kept).
            last = await self._store.templates.versions(template_id, limit=1) if existing is None else []
            first = last[0].version + 1 if last else 1
            rec, created = _would_put(
                existing, source, project, shared, result, allow_update, expected_revision, first
            )
            return _template_to_proto(rec), created
        try:
            rec, created = await self._store.templates.put(
                template_id,
                project_key=project,
                shared=shared,
                source=source,
                fmt=result["format"],
                canonical=result["canonical"],
                description=result["description"],
                field_names=result["field_names"],
                allow_update=allow_update,
                at=now(),
                expected_revision=expected_revision,
                created_by=current_principal().user_id,
            )
        except OtherProjectError as exc:  # created in another project meanwhile
            raise authz.clash("template", template_id, exc.project_key) from None
        return _template_to_proto(rec), created

    async def get_template(self, template_id: str, version: int = 0) -> template_pb2.Template:
        """The template (``tmpl_x``: its latest version), or one version (``tmpl_x@N`` or
        ``version``). A worker token reads for its attempt (see the module docstring)."""
        ident, number = parse_template_ref(template_id, version)
        worker = current_principal().worker
        if worker is not None:
            return await self._for_worker(worker, ident, number)
        if number is None:
            return _template_to_proto(await self._template(ident, Role.VIEWER))
        current, found = await self._version(ident, number)
        return _version_to_proto(found, current)

    async def list_template_versions(
        self, template_id: str, page_size: int = 0, page_token: str = ""
    ) -> tuple[list[template_pb2.TemplateVersion], str]:
        """A page of the template's versions, newest first, and the next page's token ('' on the
        last). A deleted template's versions too (a role in the project of its latest version).
        Only the versions pushed in that project: an id reused by another project after a delete
        does not open the earlier owner's history."""
        ident, number = parse_template_ref(template_id)
        if number is not None:
            raise InvalidArgumentError("template_id", f"name the template without a version ('{ident}')")
        limit, offset = validate_page(page_size, page_token)
        current = await or_none(self._store.templates.get(ident))
        if current is not None:
            authz.catalog_object("template", ident, current.project_key, current.shared, Role.VIEWER)
            project = current.project_key
        else:
            latest = await self._store.templates.versions(ident, limit=1)
            if not latest:
                raise NotFoundError("template", ident)
            project = latest[0].project_key
            authz.catalog_object("template", ident, project, False, Role.VIEWER)
        recs = await self._store.templates.versions(
            ident, limit=limit + 1, offset=offset, project_key=project
        )
        page, token = page_of(recs, limit, offset)
        return [_version_summary(r) for r in page], token

    async def list_templates(
        self, project_key: str = "", page_size: int = 0, page_token: str = ""
    ) -> tuple[list[template_pb2.Template], str]:
        """A page of the templates the caller may read (with ``project_key``: those that project's
        runs may use), and the next page's token ('' on the last)."""
        may_read("listing templates")
        scope = authz.catalog_scope(project_key)
        limit, offset = validate_page(page_size, page_token)
        recs = await self._store.templates.page(limit + 1, offset, scope)
        page, token = page_of(recs, limit, offset)
        return [_template_to_proto(r) for r in page], token

    async def delete_template(self, template_id: str) -> None:
        rec = await self._template(template_id, Role.EDITOR)
        await self._store.templates.delete(rec.id, rec.project_key)

    async def preview_template(
        self,
        template_id: str,
        *,
        count: int = DEFAULT_PREVIEW_ROWS,
        seed: int | None = None,
        version: int = 0,
    ) -> template_pb2.PreviewTemplateResponse:
        """``count`` rows of a stored template (of one version with ``tmpl_x@N`` or ``version``),
        generated as a run of its project would (the same ``seed`` gives the same rows)."""
        ident, number = parse_template_ref(template_id, version)
        if number is None:
            stored = await self._template(ident, Role.VIEWER)
            _check_preview(count, seed)
            return await self._preview(stored.id, stored.canonical, stored.project_key, count, seed)
        current, found = await self._version(ident, number)
        _check_preview(count, seed)
        project = current.project_key if current is not None else found.project_key
        return await self._preview(ident, found.canonical, project, count, seed)

    async def preview_draft(
        self,
        source: str,
        fmt: template_pb2.TemplateFormat = template_pb2.TEMPLATE_FORMAT_UNSPECIFIED,
        *,
        project_key: str = "",
        count: int = DEFAULT_PREVIEW_ROWS,
        seed: int | None = None,
    ) -> template_pb2.PreviewTemplateResponse:
        """``count`` rows of an unsaved document, in the project whose templates it may refer to.
        That is template authoring: it needs what a push needs (EDITOR there, the pushes rate
        limit, the validating worker), and stores nothing."""
        project = await authz.project_for_new(self._store, project_key, Role.EDITOR)
        _check_preview(count, seed)
        self._rates.take(Limit.TEMPLATE_PUSHES, current_principal().user_id)
        result = await self._validate(source, fmt)
        return await self._preview(result["id"], result["canonical"], project, count, seed)

    async def _preview(
        self, template_id: str, canonical: Any, project: str, count: int, seed: int | None
    ) -> template_pb2.PreviewTemplateResponse:
        # What a run of that project would see, the previewed document over a stored one of its id.
        stored = await self._store.templates.all(CatalogScope.of_project(project))
        templates = {r.id: r.canonical for r in stored}
        templates[template_id] = canonical
        result = await self._worker.preview_template(template_id, templates, count, seed, self._limits())
        if not result["ok"]:
            raise FailedPreconditionError(f"template {template_id!r} cannot produce rows: {result['error']}")
        return template_pb2.PreviewTemplateResponse(
            rows_json=[json.dumps(row) for row in result["rows"]], faker_version=result["faker_version"]
        )

    async def _version(
        self, template_id: str, version: int
    ) -> tuple[TemplateRecord | None, TemplateVersionRecord]:
        """(the template now, or None when the version is not one of it: deleted, or pushed in
        another project before the id was reused; version ``version``), for a reader: a role in
        the template's project (or it is shared), else a role in the project the version was
        pushed in. A template's sharing never opens the versions an earlier owner pushed."""
        current = await or_none(self._store.templates.get(template_id))
        if current is not None:
            authz.catalog_object("template", template_id, current.project_key, current.shared, Role.VIEWER)
        try:
            found = await self._store.templates.version(template_id, version)
        except TemplateVersionNotFound:
            # The role comes before the versions are named: a caller without one in the project
            # of the template (or, deleted, of its latest version) learns nothing of them.
            raise await self._missing_version(template_id, version, current) from None
        if current is not None and found.project_key == current.project_key:
            return current, found
        authz.catalog_object("template", template_id, found.project_key, False, Role.VIEWER)
        return None, found

    async def _missing_version(
        self, template_id: str, version: int, current: TemplateRecord | None
    ) -> NotFoundError:
        """NOT_FOUND for a version that does not exist, naming the versions the caller may see:
        those pushed in the project the caller was checked against (the template's, or for a
        deleted one its latest version's, checked here); an unknown id is a plain NOT_FOUND."""
        if current is not None:
            project = current.project_key
        else:
            latest = await self._store.templates.versions(template_id, limit=1)
            if not latest:
                return NotFoundError("template", template_id)
            project = latest[0].project_key
            authz.catalog_object("template", template_id, project, False, Role.VIEWER)
        numbers = await self._store.templates.versions(
            template_id, limit=_LISTED_VERSIONS, project_key=project
        )
        return TemplateVersionNotFound(template_id, version, sorted(v.version for v in numbers))

    async def _for_worker(
        self, claims: WorkerClaims, template_id: str, version: int | None
    ) -> template_pb2.Template:
        """What a worker reads for its attempt: a version of a template its run's project may use
        now (its own or shared), while the attempt lasts."""
        if version is None:
            raise InvalidArgumentError("version", "a worker reads template versions only")
        project = await worker_run_project(self._store, claims)
        current = await or_none(self._store.templates.get(template_id))
        if current is None or not (current.project_key == project or current.shared):
            raise NotFoundError("template", template_id)  # unknown to the run, as a missing one is
        try:
            found = await self._store.templates.version(template_id, version)
        except TemplateVersionNotFound:
            raise await self._missing_version(template_id, version, current) from None
        if found.project_key != current.project_key:
            # Pushed in another project before the id was reused: not a version of this template.
            raise NotFoundError("template version", f"{template_id}@{version}")
        return _version_to_proto(found, current)

    async def _template(self, raw_id: str, role: Role) -> TemplateRecord:
        template_id = _known_template_id(raw_id)
        rec = await self._store.templates.get(template_id)
        authz.catalog_object("template", template_id, rec.project_key, rec.shared, role)
        return rec

    async def _validate(self, source: str, fmt: template_pb2.TemplateFormat) -> dict[str, Any]:
        """The worker's reading of the document; INVALID_ARGUMENT on ``source`` listing every
        problem with the path of the field it concerns."""
        size = len(source.encode())
        if not source.strip():
            raise InvalidArgumentError("source", "must not be empty")
        if size > self._settings.max_template_bytes:
            raise InvalidArgumentError(
                "source",
                f"is {size} bytes; the limit is {self._settings.max_template_bytes} bytes "
                "(SEEDBED_MAX_TEMPLATE_BYTES)",
            )
        result = await self._worker.validate_template(source, _FORMATS.get(fmt, "auto"), self._limits())
        if not result["ok"]:
            issues = result["issues"]
            lines = "\n".join(f"  {i['path'] or '(document)'}: {i['message']}" for i in issues)
            raise InvalidArgumentError(
                "source", f"the template is invalid ({len(issues)} problem(s)):\n{lines}"
            )
        return result

    def _limits(self) -> attempt_pb2.DataLimits:
        """The caps a template's estimated and rendered sizes must respect."""
        return attempt_pb2.DataLimits(
            max_template_field_bytes=self._settings.max_template_field_bytes,
            max_template_row_bytes=self._settings.max_template_row_bytes,
        )


def _template_to_proto(rec: TemplateRecord) -> template_pb2.Template:
    return template_pb2.Template(
        id=rec.id,
        source=rec.source,
        format=_FORMATS_BACK.get(rec.format, template_pb2.TEMPLATE_FORMAT_UNSPECIFIED),
        canonical_json=json.dumps(rec.canonical),
        revision=rec.revision,
        digest=rec.digest,
        description=rec.description,
        field_names=rec.field_names,
        create_time=ts(rec.created_at),
        update_time=ts(rec.updated_at),
        project_key=rec.project_key,
        shared=rec.shared,
    )


def _version_to_proto(rec: TemplateVersionRecord, current: TemplateRecord | None) -> template_pb2.Template:
    """One version as a Template (``revision``: its number); sharing and the first creation come
    from the template now (``current``; None once deleted)."""
    return template_pb2.Template(
        id=rec.template_id,
        source=rec.source,
        format=_FORMATS_BACK.get(rec.format, template_pb2.TEMPLATE_FORMAT_UNSPECIFIED),
        canonical_json=json.dumps(rec.canonical),
        revision=rec.version,
        digest=rec.digest,
        description=rec.description,
        field_names=rec.field_names,
        create_time=ts(current.created_at if current is not None else rec.created_at),
        update_time=ts(rec.created_at),
        project_key=current.project_key if current is not None else rec.project_key,
        shared=current.shared if current is not None else False,
    )


def _version_summary(rec: TemplateVersionRecord) -> template_pb2.TemplateVersion:
    return template_pb2.TemplateVersion(
        template_id=rec.template_id,
        version=rec.version,
        digest=rec.digest,
        description=rec.description,
        field_names=rec.field_names,
        create_time=ts(rec.created_at),
        created_by=rec.created_by,
        project_key=rec.project_key,
    )


def parse_template_ref(raw: str, version: int = 0) -> tuple[str, int | None]:
    """(template id, version or None for the latest) from ``tmpl_x`` or ``tmpl_x@N`` and a separate
    ``version`` (0: none). A malformed version is INVALID_ARGUMENT saying what a version looks
    like; an id that cannot exist is NOT_FOUND (see ``_known_template_id``)."""
    ident, at, pinned = raw.partition("@")
    number: int | None = None
    if at:
        shown = raw[:120]
        if not pinned:
            raise InvalidArgumentError(
                "template_id", f"{shown!r}: a version number must follow '@'; {_VERSION_HINT}"
            )
        if not (pinned.isascii() and pinned.isdigit()):
            raise InvalidArgumentError(
                "template_id",
                f"{shown!r}: version {pinned[:40]!r} is not a whole number from 1; {_VERSION_HINT}",
            )
        if len(pinned) > 19 or int(pinned) > MAX_INT64:
            raise InvalidArgumentError(
                "template_id", f"{shown!r}: version {pinned[:40]} is past the largest possible version"
            )
        number = int(pinned)
        if number < 1:
            raise InvalidArgumentError("template_id", f"{shown!r}: versions count from 1; {_VERSION_HINT}")
    if version < 0:
        raise InvalidArgumentError("version", f"{version}: versions count from 1 (0: the latest)")
    if version:
        if number is not None and number != version:
            raise InvalidArgumentError(
                "version", f"{version} differs from the version {raw[:120]!r} names: give one of them"
            )
        number = version
    return _known_template_id(ident), number


def _would_put(
    existing: TemplateRecord | None,
    source: str,
    project: str,
    shared: bool | None,
    result: dict[str, Any],
    allow_update: bool,
    expected: int | None,
    first: int = 1,
) -> tuple[TemplateRecord, bool]:
    """A validate-only put: the template ``TemplateRepository.put`` would store over ``existing``
    (as read just before) and whether it would create it, with the refusals it would make. The
    real put decides them again, atomically. ``first``: the version a create would get (after
    the last version of a deleted template of the same id)."""
    template_id: str = result["id"]
    found = existing.revision if existing is not None else None
    if expected is not None and (found is not None if expected == 0 else found != expected):
        raise ConflictError("template", template_id, expected, found)
    if existing is not None and not allow_update:
        raise AlreadyExistsError(
            f"template {template_id!r} already exists: push it with update allowed to replace it"
        )
    at = now()
    unchanged = (
        existing is not None
        and existing.source == source
        and existing.digest == template_digest(result["canonical"])
    )
    return (
        TemplateRecord(
            id=template_id,
            source=source,
            format=result["format"],
            canonical=result["canonical"],
            digest=template_digest(result["canonical"]),
            description=result["description"],
            field_names=result["field_names"],
            revision=first if existing is None else existing.revision + (0 if unchanged else 1),
            created_at=at if existing is None else existing.created_at,
            updated_at=at,
            project_key=project,
            shared=bool(shared) if shared is not None or existing is None else existing.shared,
        ),
        existing is None,
    )


def _check_preview(count: int, seed: int | None) -> None:
    if not 1 <= count <= MAX_PREVIEW_ROWS:
        raise InvalidArgumentError("count", f"{count} is outside 1..{MAX_PREVIEW_ROWS}")
    if seed is not None and not -MAX_INT64 - 1 <= seed <= MAX_INT64:
        raise InvalidArgumentError("seed", "must fit in a signed 64-bit integer")


def _known_template_id(raw: str) -> str:
    """Ids that cannot exist are NOT_FOUND, not INVALID_ARGUMENT: a lookup never tells them apart.
    The ``tmpl_`` prefix may be left out."""
    if not raw:
        raise InvalidArgumentError("template_id", "is required")
    ident = raw if raw.startswith("tmpl_") else "tmpl_" + raw
    if not _TEMPLATE_ID.match(ident):
        raise NotFoundError("template", raw[:100])
    return ident
