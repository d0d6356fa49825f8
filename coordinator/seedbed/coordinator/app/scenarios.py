"""Use cases of scenarios: create, change, read, list, status, delete.

Like :mod:`.runs`: plain values and the contract's messages in, the contract's messages out,
:class:`~seedbed.coordinator.errors.CoordinatorError` for every refusal. Settings arrive as the
contract's ``ScenarioSettings`` (the REST and MCP faces parse their JSON into it), so there is one
validation of limits, triggers, reporters and ``run_as``.

``validate_only`` (creation and update): every check of the call, then the scenario as it would be
stored, built from the request (and, for an update, the current record) instead of written. The
conditions the store's write decides (an id already taken, ``expected_revision``) are read here
instead, so they hold when checked and may no longer hold at the real call, which decides them
again atomically; what the store or validation generates (an id, a signing secret) is generated
anew by the real call. Rejected: the store's write in a transaction rolled back (a write lock and a
revision bump taken for nothing, and the write path would grow a mode only validation uses). A
validation takes nothing of the scenario puts rate limit: that limit protects the store's writes.
"""

from __future__ import annotations

import dataclasses

from seedbed.api.v1 import scenario_pb2
from seedbed.coordinator import _convert as cv
from seedbed.coordinator import authz
from seedbed.coordinator.access import Role, current_principal
from seedbed.coordinator.app.ids import known_scenario_id
from seedbed.coordinator.egress import EgressPolicy
from seedbed.coordinator.errors import (
    ConflictError,
    InvalidArgumentError,
)
from seedbed.coordinator.model import (
    new_id,
    normalize_scenario_id,
    page_of,
    validate_name,
    validate_page,
    validate_script,
)
from seedbed.coordinator.ratelimits import Limit, RateLimiter
from seedbed.coordinator.reporters import hide_reporter_secrets, validate_reporters
from seedbed.coordinator.settings import CoordinatorSettings
from seedbed.coordinator.status import scenario_status
from seedbed.coordinator.store import ScenarioRecord, ScenarioSettingsValue, Store, now
from seedbed.coordinator.triggers import validate_triggers


class ScenarioUseCases:
    def __init__(self, store: Store, settings: CoordinatorSettings, limits: RateLimiter) -> None:
        self._store = store
        self._settings = settings
        self._rates = limits
        # Parsed once: every scenario save checks its webhook URLs against it.
        self._egress = EgressPolicy.parse(settings.webhook_allowed_hosts)

    async def create_scenario(
        self,
        scenario_id: str,
        name: str,
        script: str,
        settings: scenario_pb2.ScenarioSettings,
        project_key: str = "",
        *,
        validate_only: bool = False,
    ) -> scenario_pb2.Scenario:
        """Create the scenario. ``validate_only``: check, answer it as it would be stored, write
        nothing (see the module docstring)."""
        scenario_id = normalize_scenario_id(scenario_id) if scenario_id else new_id("scn")
        project = await authz.project_for_new_scenario(self._store, project_key)
        value = self._settings_value(settings)
        await authz.check_run_as(self._store, project, value.run_as, "")
        checked_name = validate_name(name or scenario_id)
        checked_script = validate_script(script, self._settings.max_script_bytes)
        user = current_principal().user_id
        if validate_only:
            await self._store.scenario_id_taken(scenario_id)
            at = now()
            return cv.scenario_to_proto(
                ScenarioRecord(
                    id=scenario_id,
                    name=checked_name,
                    script=checked_script,
                    settings=value,
                    revision=1,
                    created_at=at,
                    updated_at=at,
                    project_key=project,
                    last_modified_by=user,
                    script_modified_by=user,
                )
            )
        self._rates.take(Limit.SCENARIO_PUTS, user)
        rec = await self._store.create_scenario(
            scenario_id, checked_name, checked_script, value, project_key=project, modified_by=user
        )
        return cv.scenario_to_proto(rec)

    async def update_scenario(
        self,
        scenario_id: str,
        *,
        name: str | None = None,
        script: str | None = None,
        settings: scenario_pb2.ScenarioSettings | None = None,
        expected_revision: int | None = None,
        validate_only: bool = False,
    ) -> scenario_pb2.Scenario:
        """Change what is given (``settings`` replaces them whole). With ``expected_revision``, only
        if the scenario is still at that revision (else ConflictError, nothing changed).
        ``validate_only``: check, answer it as it would be stored, write nothing (see the module
        docstring)."""
        scenario_id = normalize_scenario_id(scenario_id)
        current = await authz.scenario_for(self._store, scenario_id, Role.EDITOR)
        checked_script = (
            validate_script(script, self._settings.max_script_bytes) if script is not None else None
        )
        # The runs act as run_as, else as the script's author: only a script that differs makes the
        # caller its author (the store decides the same way, atomically).
        author = (
            current_principal().user_id
            if checked_script not in (None, current.script)
            else current.script_modified_by
        )
        if settings is not None:
            await authz.check_run_as(
                self._store, current.project_key, settings.run_as, current.settings.run_as
            )
            if not settings.run_as:
                authz.check_run_as_cleared(current.project_key, current.settings.run_as, author)
        if checked_script is not None:
            run_as = settings.run_as if settings is not None else current.settings.run_as
            authz.check_script_change(current.project_key, run_as)
        checked_name = validate_name(name) if name is not None else None
        value = self._settings_value(settings, current.settings) if settings is not None else None
        user = current_principal().user_id
        if validate_only:
            if expected_revision is not None and expected_revision != current.revision:
                raise ConflictError("scenario", scenario_id, expected_revision, current.revision)
            would_be = dataclasses.replace(
                current,
                name=current.name if checked_name is None else checked_name,
                script=current.script if checked_script is None else checked_script,
                settings=current.settings if value is None else value,
                revision=current.revision + 1,
                updated_at=now(),
                last_modified_by=user,
                script_modified_by=author,
            )
            return cv.scenario_to_proto(would_be)
        self._rates.take(Limit.SCENARIO_PUTS, user)
        rec = await self._store.update_scenario(
            scenario_id,
            name=checked_name,
            script=checked_script,
            settings=value,
            modified_by=user,
            expected_revision=expected_revision,
        )
        return cv.scenario_to_proto(rec)

    async def get_scenario(self, scenario_id: str) -> scenario_pb2.Scenario:
        rec = await authz.scenario_for(self._store, known_scenario_id(scenario_id), Role.VIEWER)
        return _scenario_for_caller(rec)

    async def list_scenarios(
        self, project_key: str = "", page_size: int = 0, page_token: str = ""
    ) -> tuple[list[scenario_pb2.Scenario], str]:
        limit, offset = validate_page(page_size, page_token)
        recs = await self._store.list_scenarios(
            limit + 1,
            offset,
            project_key=authz.project_filter(project_key),
            projects=authz.visible_projects(),
        )
        page, token = page_of(recs, limit, offset)
        return [_scenario_for_caller(r) for r in page], token

    async def scenario_status(self, scenario_id: str) -> scenario_pb2.GetScenarioStatusResponse:
        scenario_id = known_scenario_id(scenario_id)
        await authz.scenario_for(self._store, scenario_id, Role.VIEWER)
        return await scenario_status(self._store, scenario_id)

    async def delete_scenario(self, scenario_id: str) -> None:
        scenario_id = known_scenario_id(scenario_id)
        await authz.scenario_for(self._store, scenario_id, Role.EDITOR)
        await self._store.delete_scenario(scenario_id)

    def _settings_value(
        self, msg: scenario_pb2.ScenarioSettings, base: ScenarioSettingsValue | None = None
    ) -> ScenarioSettingsValue:
        cfg = self._settings
        base = base or ScenarioSettingsValue()
        if msg.timeout_seconds > cfg.max_timeout_seconds:
            raise InvalidArgumentError(
                "settings.timeout_seconds",
                f"{msg.timeout_seconds} exceeds the operator's ceiling of {cfg.max_timeout_seconds} "
                "(SEEDBED_MAX_TIMEOUT_SECONDS)",
            )
        if msg.memory_limit_bytes and not 16 * 2**20 <= msg.memory_limit_bytes <= cfg.max_memory_bytes:
            raise InvalidArgumentError(
                "settings.memory_limit_bytes",
                f"{msg.memory_limit_bytes} is outside 16 MiB..{cfg.max_memory_bytes} bytes "
                "(SEEDBED_MAX_MEMORY_BYTES)",
            )
        if msg.purge_after_seconds > MAX_PURGE_AFTER_SECONDS:
            raise InvalidArgumentError(
                "settings.purge_after_seconds",
                f"{msg.purge_after_seconds} is over {MAX_PURGE_AFTER_SECONDS} (10 years); 0: never purge",
            )
        try:
            overlap = cv.overlap_from_proto(msg.overlap_policy)
        except KeyError:
            raise InvalidArgumentError(
                "settings.overlap_policy", f"{msg.overlap_policy} is not a known policy"
            ) from None
        return ScenarioSettingsValue(
            active=msg.active if msg.HasField("active") else base.active,
            timeout_seconds=msg.timeout_seconds,
            memory_limit_bytes=msg.memory_limit_bytes,
            overlap_policy=overlap or base.overlap_policy,
            retry_policy=(
                cv.retry_policy_from_proto(msg.retry_policy)
                if msg.HasField("retry_policy")
                else base.retry_policy
            ),
            triggers=validate_triggers(msg.triggers),
            reporters=validate_reporters(msg.reporters, self._egress, current=base.reporters),
            run_as=msg.run_as,
            refuse_runs_when_inactive=msg.refuse_runs_when_inactive,
            purge_after_seconds=msg.purge_after_seconds,
        )


# A scenario's runs' time to live (settings.purge_after_seconds), at most.
MAX_PURGE_AFTER_SECONDS = 10 * 366 * 86_400


def _scenario_for_caller(rec: ScenarioRecord) -> scenario_pb2.Scenario:
    """The scenario as the caller may see it: below EDITOR, webhook URLs, header values and signing
    secrets are hidden, since they often carry a token (a chat hook's path, an Authorization
    header)."""
    msg = cv.scenario_to_proto(rec)
    held = current_principal().role_in(rec.project_key)
    if held is None or held < Role.EDITOR:
        hide_reporter_secrets(msg.settings.reporters)
    return msg
