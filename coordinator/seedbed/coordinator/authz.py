"""Authorisation of scenario, run and catalog RPCs: find the object's project, then ask the
caller's role.

Every lookup goes through here so the rule holds everywhere: an object in a project the caller has
no role in is NOT_FOUND (as if it did not exist), a role too low is PERMISSION_DENIED. Catalog
objects (templates, connections, workspace files) may also be shared by an admin of their project:
any caller with a role somewhere then reads them, and changing them still needs a role in their
own project (PERMISSION_DENIED, since the caller sees them).
"""

from __future__ import annotations

from collections.abc import Collection

from seedbed.coordinator.access import (
    Principal,
    Role,
    current_principal,
    validate_project_key,
    validate_user_id,
)
from seedbed.coordinator.errors import (
    AlreadyExistsError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
)
from seedbed.coordinator.store import FireRecord, RunRecord, ScenarioRecord, Store
from seedbed.coordinator.store.catalog import CatalogScope

__all__ = [
    "catalog_object",
    "catalog_scope",
    "check_run_as",
    "check_run_as_cleared",
    "check_sharing",
    "clash",
    "fire_for",
    "project_for_new_scenario",
    "project_filter",
    "run_for",
    "scenario_for",
    "check_script_change",
    "hidden_ids",
    "project_for_new",
    "visible_projects",
]


async def scenario_for(store: Store, scenario_id: str, role: Role) -> ScenarioRecord:
    rec = await store.get_scenario(scenario_id)
    current_principal().require(rec.project_key, role, "scenario", scenario_id)
    return rec


async def run_for(store: Store, run_id: str, role: Role) -> RunRecord:
    rec = await store.get_run(run_id)
    current_principal().require(rec.project_key, role, "run", run_id)
    return rec


async def _fire_project(store: Store, fire: FireRecord) -> str | None:
    if fire.run_id:
        try:
            return (await store.get_run(fire.run_id)).project_key
        except NotFoundError:
            pass
    try:
        return (await store.get_scenario(fire.scenario_id)).project_key
    except NotFoundError:
        return None  # its scenario was deleted: only a superuser still sees it


async def fire_for(store: Store, fire_id: str, role: Role) -> FireRecord:
    fire = await store.fires.get_fire(fire_id)
    principal = current_principal()
    project = await _fire_project(store, fire)
    if project is None:
        if not principal.superuser:
            raise NotFoundError("trigger fire", fire_id)
        return fire
    principal.require(project, role, "trigger fire", fire_id)
    return fire


async def hidden_ids(store: Store, fire_ids: Collection[str], run_ids: Collection[str]) -> set[str]:
    """The fires and runs the caller may not see (no role in their project). The caller names them
    with the unknown ones in one NOT_FOUND, so an answer never tells a hidden id from a missing one."""
    principal = current_principal()
    if principal.superuser:
        return set()
    hidden: set[str] = set()
    runs = await store.get_runs(list(run_ids))
    hidden |= {r.id for r in runs.values() if principal.role_in(r.project_key) is None}
    for fire in (await store.fires.get_fires(list(fire_ids))).values():
        project = await _fire_project(store, fire)
        if project is None or principal.role_in(project) is None:
            hidden.add(fire.id)
    return hidden


def visible_projects() -> Collection[str] | None:
    """The caller's projects for list filters; None: every project (a superuser)."""
    return current_principal().projects()


def project_filter(raw: str) -> str:
    """A ``project_key`` list filter: empty, or a project the caller has a role in (else NOT_FOUND)."""
    if not raw:
        return ""
    try:
        key = validate_project_key(raw)
    except InvalidArgumentError:
        raise NotFoundError("project", raw[:100]) from None
    if current_principal().role_in(key) is None:
        raise NotFoundError("project", key)
    return key


async def project_for_new_scenario(store: Store, raw: str) -> str:
    """The project a new scenario goes to ("default" when empty): it must exist and the caller must
    be an EDITOR there."""
    return await project_for_new(store, raw, Role.EDITOR)


async def project_for_new(store: Store, raw: str, role: Role) -> str:
    """The project a new object goes to ("default" when empty): it must exist and the caller must
    hold ``role`` there (NOT_FOUND without any role)."""
    key = validate_project_key(raw or "default")
    current_principal().require(key, role, "project", key)
    await store.access.get_project(key)
    return key


async def check_run_as(store: Store, project_key: str, new: str, current: str) -> None:
    """Setting ``run_as`` to another user than the caller needs ADMIN in the project (keeping the
    current value does not), and that user must have a role in the project."""
    principal: Principal = current_principal()
    if not new or new == current:
        return
    validate_user_id(new, "settings.run_as")
    if new == principal.user_id:
        return  # acting as yourself lends nobody else's rights
    if new != principal.user_id:
        held = principal.role_in(project_key)
        if held is None or held < Role.ADMIN:
            raise PermissionDeniedError(
                f"setting settings.run_as to {new!r} (another user than you) needs role ADMIN in "
                f"project {project_key!r}; {principal.user_id!r} has {held.name if held else 'none'}"
            )
    try:
        user = await store.access.get_user(new)
    except NotFoundError:
        raise InvalidArgumentError("settings.run_as", f"user {new!r} does not exist") from None
    # A superuser too: runs act with the rights of members only, so connections granted to a
    # superuser are not lent to a project they were never added to.
    if project_key not in user.memberships:
        raise InvalidArgumentError(
            "settings.run_as",
            f"user {new!r} has no role in project {project_key!r}: give them one first "
            "(`seedbed member set`)",
        )


def check_script_change(project_key: str, run_as: str) -> None:
    """Changing the script of a scenario that runs as another user needs ADMIN: otherwise an editor
    could have code of their own run with that user's rights (their connections)."""
    principal = current_principal()
    if not run_as or run_as == principal.user_id:
        return
    held = principal.role_in(project_key)
    if held is None or held < Role.ADMIN:
        raise PermissionDeniedError(
            f"changing the script of a scenario that runs as {run_as!r} needs role ADMIN in project "
            f"{project_key!r} ({principal.user_id!r} has {held.name if held else 'none'}): its runs would "
            "act as that user; ask an admin, or set settings.run_as to yourself or empty in the same change"
        )


def check_run_as_cleared(project_key: str, current: str, script_author: str) -> None:
    """Clearing ``run_as`` hands the runs to the script's author: when that is another user than
    the caller (and than the user they act as now), it chooses that user's identity, which needs
    ADMIN as setting run_as to them does."""
    principal = current_principal()
    if not current or script_author in ("", current, principal.user_id):
        return
    held = principal.role_in(project_key)
    if held is None or held < Role.ADMIN:
        raise PermissionDeniedError(
            f"clearing settings.run_as ({current!r}) would make the runs act as {script_author!r}, who "
            f"last changed the script; choosing another user than you needs role ADMIN in project "
            f"{project_key!r} ({principal.user_id!r} has {held.name if held else 'none'}): keep run_as, "
            "set it to yourself, or change the script in the same update (the runs then act as you)"
        )


# -- the catalog -----------------------------------------------------------------------------------


def _reads_shared(principal: Principal) -> bool:
    """Shared objects are read by anyone with a role in some project (a worker token has none)."""
    return principal.superuser or bool(principal.roles)


def catalog_object(kind: str, ident: str, project_key: str, shared: bool, role: Role) -> None:
    """Raise unless the caller may act with ``role`` on catalog object ``kind`` ``ident``.

    Reading (VIEWER) needs a role in its project, or the object is shared. More needs ``role`` in its
    project: without any role there it is NOT_FOUND unless shared, then PERMISSION_DENIED."""
    principal = current_principal()
    if role == Role.VIEWER and shared and _reads_shared(principal):
        return
    if shared and _reads_shared(principal) and principal.role_in(project_key) is None:
        raise PermissionDeniedError(
            f"{kind} {ident!r} belongs to project {project_key!r} and is shared with every project to "
            f"read and use only: changing it needs role {role.name} in {project_key!r}, which "
            f"{principal.user_id!r} does not have"
        )
    principal.require(project_key, role, kind, ident)


def catalog_scope(raw_project: str) -> CatalogScope:
    """What a catalog list shows: with ``raw_project`` what that project's runs may use (its own and
    the shared objects; NOT_FOUND for a project the caller has no role in), else everything the
    caller may read."""
    key = project_filter(raw_project)
    if key:
        return CatalogScope.of_project(key)
    principal = current_principal()
    projects = principal.projects()
    return CatalogScope(projects, shared=_reads_shared(principal))


def clash(kind: str, ident: str, owner: str) -> AlreadyExistsError:
    """The id of a new object is held by another project's: named only to a caller with a role there."""
    if current_principal().role_in(owner) is None:
        return AlreadyExistsError(
            f"{kind} {ident!r} already exists in another project (ids are unique across the "
            "installation): choose another id"
        )
    return AlreadyExistsError(
        f"{kind} {ident!r} already exists in project {owner!r}: give that project_key (--project {owner}) "
        "to change it, or choose another id"
    )


def check_sharing(kind: str, ident: str, project_key: str, wanted: bool | None, current: bool) -> bool | None:
    """The ``shared`` value to write: None when it stays as it is. Changing it needs ADMIN in the
    object's project (or a superuser)."""
    if wanted is None or wanted == current:
        return None
    principal = current_principal()
    held = principal.role_in(project_key)
    if held is None or held < Role.ADMIN:
        verb = "sharing" if wanted else "unsharing"
        raise PermissionDeniedError(
            f"{verb} {kind} {ident!r} with every project needs role ADMIN in project {project_key!r} "
            f"({principal.user_id!r} has {held.name if held else 'none'}): ask an admin of the project"
        )
    return wanted
