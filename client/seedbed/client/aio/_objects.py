"""The async faces of the scenario API's objects, declared member by member from the sync ones.

Each line names the sync member it serves, and its kind: ``threaded`` (awaitable), ``streamed``
(an async iterator), ``local`` (computes only), ``attribute``/``editable`` (read, or read and set,
as they are). ``threaded`` maps what the sync method returns to the facades (a ``Scenario`` is an
``AsyncScenario``, a ``list[ScenarioRun]`` a ``list[AsyncScenarioRun]``…) for the type checker; at
run time the bridge wraps whatever comes back.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Concatenate, Literal, ParamSpec, TypeVar, overload

from seedbed.api.v1 import access_pb2, run_pb2, scenario_pb2
from seedbed.client._projects import Project
from seedbed.client._runs import ErrorInfo, RunDetails, ScenarioRun, StepDetails, TriggerFire
from seedbed.client._scenarios import Scenario, ScenarioListItem
from seedbed.client._settings import ScenarioSettings
from seedbed.client.aio._facade import Facade, Threaded, attribute, editable, local, streamed

P = ParamSpec("P")
R = TypeVar("R")
F = TypeVar("F", bound=Facade[Any])


# fmt: off
# The type checker's table from what a sync method returns to what its facade returns. None comes
# first: a method returning None would match "X | None" too.
@overload
def threaded(method: Callable[Concatenate[Any, P], None]) -> Threaded[P, None]: ...
@overload
def threaded(method: Callable[Concatenate[Any, P], Project]) -> Threaded[P, AsyncProject]: ...
@overload
def threaded(method: Callable[Concatenate[Any, P], Project | None]) -> Threaded[P, AsyncProject | None]: ...
@overload
def threaded(method: Callable[Concatenate[Any, P], list[Project]]) -> Threaded[P, list[AsyncProject]]: ...
@overload
def threaded(method: Callable[Concatenate[Any, P], Scenario]) -> Threaded[P, AsyncScenario]: ...
@overload
def threaded(method: Callable[Concatenate[Any, P], Scenario | None]) -> Threaded[P, AsyncScenario | None]: ...
@overload
def threaded(method: Callable[Concatenate[Any, P], list[Scenario]]) -> Threaded[P, list[AsyncScenario]]: ...
@overload
def threaded(method: Callable[Concatenate[Any, P], TriggerFire]) -> Threaded[P, AsyncTriggerFire]: ...
@overload
def threaded(
    method: Callable[Concatenate[Any, P], TriggerFire | None],
) -> Threaded[P, AsyncTriggerFire | None]: ...
@overload
def threaded(
    method: Callable[Concatenate[Any, P], list[TriggerFire]],
) -> Threaded[P, list[AsyncTriggerFire]]: ...
@overload
def threaded(method: Callable[Concatenate[Any, P], ScenarioRun]) -> Threaded[P, AsyncScenarioRun]: ...
@overload
def threaded(
    method: Callable[Concatenate[Any, P], ScenarioRun | None],
) -> Threaded[P, AsyncScenarioRun | None]: ...
@overload
def threaded(
    method: Callable[Concatenate[Any, P], list[ScenarioRun]],
) -> Threaded[P, list[AsyncScenarioRun]]: ...
@overload
def threaded(
    method: Callable[Concatenate[Any, P], list[ScenarioRun | None]],
) -> Threaded[P, list[AsyncScenarioRun | None]]: ...
@overload
def threaded(
    method: Callable[Concatenate[Any, P], ScenarioSettings],
) -> Threaded[P, AsyncScenarioSettings]: ...
@overload
def threaded(method: Callable[Concatenate[Any, P], RunDetails]) -> Threaded[P, AsyncRunDetails]: ...
@overload
def threaded(method: Callable[Concatenate[Any, P], R]) -> Threaded[P, R]: ...
# fmt: on
def threaded(method: Callable[..., Any]) -> Threaded[Any, Any]:
    """Declare a method that calls the coordinator: awaitable, run in a thread of the client."""
    return Threaded(method)


def threaded_as(face: type[F], method: Callable[Concatenate[Any, P], object]) -> Threaded[P, F]:
    """``threaded``, the facade it returns named: for a method with ``Any`` among its parameters'
    types, where mypy does not choose among ``threaded``'s signatures (and would type it Any)."""
    return Threaded(method, face)


class AsyncScenario(Facade[Scenario], wraps=Scenario):
    """``Scenario``, async: ``run = await scenario.run_and_wait()``."""

    raw: scenario_pb2.Scenario
    id = attribute(Scenario.id)
    name = attribute(Scenario.name)
    project_key = attribute(Scenario.project_key)

    refresh = threaded(Scenario.refresh)
    delete = threaded(Scenario.delete)
    get_payload = threaded(Scenario.get_payload)
    set_payload = threaded(Scenario.set_payload)
    run = threaded(Scenario.run)
    run_and_wait = threaded(Scenario.run_and_wait)
    get_last_runs = threaded(Scenario.get_last_runs)
    get_current_run = threaded(Scenario.get_current_run)
    get_average_duration = threaded(Scenario.get_average_duration)
    get_run = threaded(Scenario.get_run)
    get_runs_by_date = threaded(Scenario.get_runs_by_date)
    get_settings = threaded(Scenario.get_settings)
    get_status = threaded(Scenario.get_status)

    # Written out: the sync methods are overloaded (no_fail=True may answer None), which a
    # ParamSpec cannot carry.
    @overload
    async def get_last_finished_run(self, no_fail: Literal[False] = False) -> AsyncScenarioRun: ...
    @overload
    async def get_last_finished_run(self, no_fail: bool) -> AsyncScenarioRun | None: ...
    async def get_last_finished_run(self, no_fail: bool = False) -> AsyncScenarioRun | None:
        """The newest run that ended; none: NoRunError, or None with ``no_fail``."""
        run: AsyncScenarioRun | None = await self._call("get_last_finished_run", no_fail)
        return run

    @overload
    async def get_last_successful_run(self, no_fail: Literal[False] = False) -> AsyncScenarioRun: ...
    @overload
    async def get_last_successful_run(self, no_fail: bool) -> AsyncScenarioRun | None: ...
    async def get_last_successful_run(self, no_fail: bool = False) -> AsyncScenarioRun | None:
        """The newest run that ended SUCCESS; none: NoRunError, or None with ``no_fail``."""
        run: AsyncScenarioRun | None = await self._call("get_last_successful_run", no_fail)
        return run


class AsyncTriggerFire(Facade[TriggerFire], wraps=TriggerFire):
    """``TriggerFire``, async: ``run = await fire.wait_for_scenario_run()``."""

    raw: run_pb2.TriggerFire
    id = attribute(TriggerFire.id)
    scenario_id = attribute(TriggerFire.scenario_id)
    state = attribute(TriggerFire.state)
    run_id = attribute(TriggerFire.run_id)
    cancel_reason = attribute(TriggerFire.cancel_reason)
    queue_reason = attribute(TriggerFire.queue_reason)
    cancelled = attribute(TriggerFire.cancelled)
    create_time = attribute(TriggerFire.create_time)

    refresh = threaded(TriggerFire.refresh)
    is_cancelled = threaded(TriggerFire.is_cancelled)  # with refresh=True it asks the coordinator
    get_scenario_run = threaded(TriggerFire.get_scenario_run)
    wait_for_scenario_run = threaded(TriggerFire.wait_for_scenario_run)


class AsyncScenarioRun(Facade[ScenarioRun], wraps=ScenarioRun):
    """``ScenarioRun``, async: ``await run.wait_for_completion()``; ``run.outcome`` is read as is,
    from the state last fetched (a wait or ``refresh()`` fetches it)."""

    raw: run_pb2.Run
    id = attribute(ScenarioRun.id)
    scenario_id = attribute(ScenarioRun.scenario_id)
    fire_id = attribute(ScenarioRun.fire_id)
    params = attribute(ScenarioRun.params)
    state = attribute(ScenarioRun.state)
    running = attribute(ScenarioRun.running)
    outcome = attribute(ScenarioRun.outcome)
    start_time = attribute(ScenarioRun.start_time)
    end_time = attribute(ScenarioRun.end_time)
    create_time = attribute(ScenarioRun.create_time)
    duration = attribute(ScenarioRun.duration)
    first_error = attribute(ScenarioRun.first_error)

    refresh = threaded(ScenarioRun.refresh)
    wait_for_completion = threaded(ScenarioRun.wait_for_completion)
    abort = threaded(ScenarioRun.abort)
    get_details = threaded(ScenarioRun.get_details)
    get_log = threaded(ScenarioRun.get_log)
    get_trace = threaded(ScenarioRun.get_trace)
    stream_logs = streamed(ScenarioRun.stream_logs)
    to_dict = local(ScenarioRun.to_dict)


class AsyncRunDetails(Facade[RunDetails], wraps=RunDetails):
    """``RunDetails``: its ``run`` is the ``AsyncScenarioRun`` it describes."""

    run: AsyncScenarioRun
    steps: list[StepDetails]
    first_error_details: ErrorInfo | None
    task_ids: list[str]


class AsyncScenarioSettings(Facade[ScenarioSettings], wraps=ScenarioSettings):
    """``ScenarioSettings``: change them as they are (no await), then ``await settings.save()``."""

    raw: scenario_pb2.ScenarioSettings
    scenario_id = attribute(ScenarioSettings.scenario_id)
    effective_run_as = attribute(ScenarioSettings.effective_run_as)
    last_modified_by = attribute(ScenarioSettings.last_modified_by)
    script_modified_by = attribute(ScenarioSettings.script_modified_by)
    raw_triggers = attribute(ScenarioSettings.raw_triggers)
    raw_reporters = attribute(ScenarioSettings.raw_reporters)
    triggers = attribute(ScenarioSettings.triggers)
    reporters = attribute(ScenarioSettings.reporters)
    active = editable(ScenarioSettings.active)
    refuse_runs_when_inactive = editable(ScenarioSettings.refuse_runs_when_inactive)
    purge_after = editable(ScenarioSettings.purge_after)
    run_as = editable(ScenarioSettings.run_as)
    overlap_policy = editable(ScenarioSettings.overlap_policy)
    retry_policy = editable(ScenarioSettings.retry_policy)
    timeout_seconds = editable(ScenarioSettings.timeout_seconds)
    memory_limit_bytes = editable(ScenarioSettings.memory_limit_bytes)

    add_cron_trigger = local(ScenarioSettings.add_cron_trigger)
    add_periodic_trigger = local(ScenarioSettings.add_periodic_trigger)
    add_hourly_trigger = local(ScenarioSettings.add_hourly_trigger)
    add_daily_trigger = local(ScenarioSettings.add_daily_trigger)
    add_monthly_trigger = local(ScenarioSettings.add_monthly_trigger)
    remove_trigger = local(ScenarioSettings.remove_trigger)
    add_webhook_reporter = local(ScenarioSettings.add_webhook_reporter)
    add_email_reporter = local(ScenarioSettings.add_email_reporter)
    set_email_sender = local(ScenarioSettings.set_email_sender)
    remove_reporter = local(ScenarioSettings.remove_reporter)
    save = threaded(ScenarioSettings.save)


class AsyncProject(Facade[Project], wraps=Project):
    """``Project``, async: ``await project.get_scenario("x")``."""

    raw: access_pb2.Project
    key = attribute(Project.key)
    name = attribute(Project.name)
    description = attribute(Project.description)
    create_time = attribute(Project.create_time)
    role = attribute(Project.role)

    get_scenario = threaded(Project.get_scenario)
    create_scenario = threaded_as(AsyncScenario, Project.create_scenario)

    # Written out: the sync method is overloaded, which a ParamSpec cannot carry.
    @overload
    async def list_scenarios(self, as_type: Literal["listitems"] = "listitems") -> list[ScenarioListItem]: ...
    @overload
    async def list_scenarios(self, as_type: Literal["objects"]) -> list[AsyncScenario]: ...
    async def list_scenarios(
        self, as_type: str = "listitems"
    ) -> list[ScenarioListItem] | list[AsyncScenario]:
        """Every scenario of the project: ``ScenarioListItem`` values, or with
        ``as_type="objects"``, ``AsyncScenario`` objects."""
        scenarios: list[ScenarioListItem] | list[AsyncScenario] = await self._call("list_scenarios", as_type)
        return scenarios
