"""Replaying a run: a new run with the same inputs, its writes optionally sent to other connections.

    replays = ReplayUseCases(store, fires, tracing)
    fire = await replays.replay_run("run_…", {"shop": "shop_b"}, idempotency_key="ci-4711-b")

What decides a run's data, and where each piece is kept:

| input | recorded in |
|---|---|
| script | the run's snapshot (``runs.script``, with ``scenario_revision``) |
| params, run key | the run (every seed derives from the run key and the SDK call's number) |
| sandbox image | ``runs.image``, from every attempt's ``AttemptStarted.image`` |
| Faker and generation versions | ``runs.details.versions``, from the attempt's result |
| template versions | ``runs.details.templates``, from the attempt's result (``templates_used``) |

A replay copies the script, params and run key of the original, pins the image and the template
versions of the uses that named none (as ``runs.template_pins``: a plain ``tmpl_x`` generates from
the version the original's plain ``tmpl_x`` did, not the latest; a use of ``tmpl_x@1`` names its
own and pins nothing), and maps connections (``{old: new}``: the script's ``connection("old")``
writes to ``new``). Its ledger rows are signed for the original run (``ReplayPin.ledger_run_id``, the first
run of a chain of replays): a replay into the original's own targets finds every batch already
written and writes nothing; into fresh targets it writes the same rows.

The mapping is checked here, before anything starts (:func:`check_mapping`, pure): every old name is
one the original used (its write batches went through it, or its script passes it to
``connection("…")`` as a literal: a dry run writes no batches, a read-only use none either), every new
one exists for the scenario's project, has the old one's kind, and may be used by the caller and by
the runs' run_as. A replay needs the run's scenario (its project, run-as and settings): once it is
deleted (or its id given to a later scenario) a replay is refused, saying so. It acts as the
scenario's run-as now (:func:`replay_identity`): when that is not the run's own, the old script was
never approved to act as it, so only that user or a project ADMIN may replay it.
A worker whose Faker release differs from the recorded one refuses the attempt (the same seeds would
give other rows): refused, not warned, since a replay promises the same rows.

Rejected: any quoted string of the script as a used connection (a mapping key could then be an id
only mentioned in text); the agent reporting the connections an attempt opened (a change of the
attempt's contract for what batches and ``connection("…")`` calls already tell); replaying a run of a
deleted scenario with the run's own snapshot of its settings (its project and run-as would be taken
from a run, not from anything an admin still controls); a replay acting as the run's own run-as (an
identity an admin may have withdrawn since); warning on another Faker release (a replay
that silently writes other rows is worse than none); replaying only the scenario's current script
(the data would follow later edits); a replay signing its ledger rows for itself (a replay into the
same targets would find rows it cannot verify and fail instead of skipping them).
"""

from __future__ import annotations

import ast
import asyncio
from collections.abc import Mapping, Set
from dataclasses import dataclass

from seedbed.api.v1 import run_pb2
from seedbed.coordinator import _convert as cv
from seedbed.coordinator import authz
from seedbed.coordinator.access import Role, current_principal
from seedbed.coordinator.app.ids import required_id
from seedbed.coordinator.connections import normalize_connection_id, refusal
from seedbed.coordinator.errors import (
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
)
from seedbed.coordinator.model import validate_idempotency_key
from seedbed.coordinator.observability.tracing import RunTracing
from seedbed.coordinator.overlap import FireLauncher
from seedbed.coordinator.store import RunRecord, ScenarioRecord, Store
from seedbed.coordinator.store.catalog import CatalogScope, ConnectionRecord
from seedbed.coordinator.store.replays import ReplayPin, check_scenario_of

__all__ = ["MAX_MAPPED_CONNECTIONS", "ConnectionUse", "ReplayUseCases", "check_mapping", "replay_identity"]

MAX_MAPPED_CONNECTIONS = 100
_MAX_ID_CHARS = 100
_BATCH_PAGE = 1000


@dataclass(frozen=True)
class ConnectionUse:
    """What a mapping is checked against: the connection names the original's script used, the
    connections its project may use now (by id), who asks, and whom the runs act as."""

    used: Set[str]
    catalog: Mapping[str, ConnectionRecord]
    caller: str
    run_as: str


def check_mapping(mapping: Mapping[str, str], use: ConnectionUse) -> dict[str, str]:
    """The mapping, checked; raises InvalidArgumentError naming the first bad entry and what to do."""
    if len(mapping) > MAX_MAPPED_CONNECTIONS:
        raise InvalidArgumentError(
            "connections",
            f"{len(mapping)} entries: at most {MAX_MAPPED_CONNECTIONS} connections can be mapped",
        )
    used = ", ".join(sorted(use.used)) or "none"
    checked: dict[str, str] = {}
    for old, new in mapping.items():
        where = f"connections[{old[:_MAX_ID_CHARS]!r}]"
        if not old or not new:
            raise InvalidArgumentError("connections", "each entry maps a connection id to another: old=new")
        if len(old) > _MAX_ID_CHARS or len(new) > _MAX_ID_CHARS:
            raise InvalidArgumentError(where, f"connection ids have at most {_MAX_ID_CHARS} characters")
        try:  # "shop" is conn_shop, as everywhere a connection id is taken
            old, new = normalize_connection_id(old), normalize_connection_id(new)
        except InvalidArgumentError as exc:
            raise InvalidArgumentError(where, str(exc)) from None
        if old not in use.used:
            raise InvalidArgumentError(
                where, f"the run never used a connection {old!r} (it used: {used}): map one of those"
            )
        target = use.catalog.get(new)
        if target is None:
            raise InvalidArgumentError(
                where, f"connection {new!r} does not exist for this scenario's project: create it first"
            )
        source = use.catalog.get(old)
        kind = source.kind if source is not None else ""  # deleted since: nothing to compare with
        if kind and target.kind != kind:
            raise InvalidArgumentError(
                where,
                f"{old!r} is a {kind} connection and {new!r} a {target.kind} one: map to a {kind} connection",
            )
        for who in dict.fromkeys((use.caller, use.run_as)):
            reason = refusal(target, who)
            if reason:
                raise InvalidArgumentError(where, reason)
        checked[old] = new
    return checked


def replay_identity(run: RunRecord, scenario: ScenarioRecord) -> str:
    """Whom a replay of ``run`` acts as: the scenario's run-as now (the store checks it again under
    the scenario's lock). A replay runs the run's own script, which was approved to act as the run's
    ``run_as`` only; acting as another user needs the caller to be that user or an ADMIN of the
    project (who could set run_as anyway). Else PermissionDeniedError naming both identities."""
    now_as = scenario.effective_run_as
    principal = current_principal()
    if now_as in (run.run_as, principal.user_id):
        return now_as  # the identity the script already ran as, or the caller's own
    held = principal.role_in(scenario.project_key)
    if held is not None and held >= Role.ADMIN:
        return now_as
    project = scenario.project_key
    raise PermissionDeniedError(
        f"run {run.id} acted as {run.run_as!r} and scenario {scenario.id!r} now acts as {now_as!r}: a "
        f"replay runs the run's own script, which was never approved to act as {now_as!r}, so it needs "
        f"role ADMIN in project {project!r} ({principal.user_id!r} has {held.name if held else 'none'}); "
        f"ask an admin of project {project!r} to replay it, or run the scenario anew"
    )


def _used_names(script_names: Set[str], written: Set[str], aliases: Mapping[str, str]) -> set[str]:
    """The connection names the original's script used: those its batches went through (for a
    replay, the script's names for them), the names it maps already, and ``script_names``."""
    names = {old for old, new in aliases.items() if new in written}
    names |= {c for c in written if c not in aliases.values()}
    names |= set(aliases)
    return names | set(script_names)


def script_connections(script: str) -> set[str]:
    """The ids a script passes to ``connection(...)`` (``dm.connection``, a bare ``connection``)
    as a literal string, positional or ``connection_id=``. A script that does not parse (or is
    not Python) names none: its batches still count."""
    try:
        tree = ast.parse(script)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return set()
    names: set[str] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        callee = node.func
        name = callee.attr if isinstance(callee, ast.Attribute) else getattr(callee, "id", None)
        if name != "connection":
            continue
        args = [*node.args[:1], *(k.value for k in node.keywords if k.arg == "connection_id")]
        names |= {
            a.value
            for a in args
            if isinstance(a, ast.Constant) and isinstance(a.value, str) and 0 < len(a.value) <= _MAX_ID_CHARS
        }
    return names


class ReplayUseCases:
    def __init__(self, store: Store, fires: FireLauncher, tracing: RunTracing) -> None:
        self._store = store
        self._fires = fires
        self._tracing = tracing

    async def replay_run(
        self, run_id: str, connections: Mapping[str, str], idempotency_key: str = ""
    ) -> run_pb2.TriggerFire:
        """Fire a replay of a finished run. Needs the runner role on its project."""
        run_id = required_id("run_id", run_id)
        key = validate_idempotency_key(idempotency_key)
        original = await authz.run_for(self._store, run_id, Role.RUNNER)
        scenario = await self._scenario_of(original)
        if not original.state.is_terminal:
            raise FailedPreconditionError(
                f"run {run_id} is {original.state.value}: a run can be replayed once it has ended"
            )
        if not original.image:
            raise FailedPreconditionError(
                f"run {run_id} recorded no sandbox image (no attempt of it started, or it ran before runs "
                "recorded their inputs): it cannot be replayed"
            )
        run_as = replay_identity(original, scenario)
        earlier = original.replay  # a replay of a replay keeps the first run's ledger identity and mapping
        previous = earlier.connection_aliases if earlier is not None else {}
        written = await self._written(run_id)
        # Parsed off the event loop: a script may be megabytes.
        in_script = await asyncio.to_thread(script_connections, original.script)
        caller = current_principal().user_id
        use = ConnectionUse(
            used=_used_names(in_script, written, previous),
            catalog={
                c.id: c
                for c in await self._store.connections.all(CatalogScope.of_project(original.project_key))
            },
            caller=caller,
            run_as=run_as,
        )
        mapping = check_mapping(connections, use)
        versions = (original.details or {}).get("versions") or {}
        pin = ReplayPin(
            replayed_from=original.id,
            ledger_run_id=earlier.ledger_run_id if earlier is not None else original.id,
            image=original.image,
            connection_aliases={**previous, **mapping},
            versions={str(k): str(v) for k, v in versions.items()} if isinstance(versions, dict) else {},
            template_versions=cv.replay_template_pins(original),
        )
        with self._tracing.fire_span(original.scenario_id, None) as span:
            fire, run, created = await self._store.replays.replay(
                original,
                pin,
                key,
                run_as=run_as,
                triggered_by=caller,
                traceparent=self._tracing.traceparent(span),
            )
            if created:
                self._tracing.name_fire(span, fire.id, fire.run_id)
        if created:
            self._tracing.name_call(fire.id, fire.run_id)
            await self._fires.launch(fire, run)
        return cv.fire_to_proto(fire)

    async def _scenario_of(self, run: RunRecord) -> ScenarioRecord:
        """The run's scenario (the caller holds RUNNER in the run's project, hence in its own);
        FailedPreconditionError once it was deleted, or its id names a later scenario."""
        try:
            found = await self._store.get_scenario(run.scenario_id)
        except NotFoundError:
            found = None
        scenario = check_scenario_of(run, found)
        current_principal().require(scenario.project_key, Role.RUNNER, "scenario", scenario.id)
        return scenario

    async def _written(self, run_id: str) -> set[str]:
        """The connections the run's batches went through."""
        seen: set[str] = set()
        offset = 0
        while True:
            page = await self._store.attempts.list_batches(run_id, _BATCH_PAGE, offset)
            seen.update(b.connection_id for b in page)
            if len(page) < _BATCH_PAGE:
                return seen
            offset += len(page)
