"""What the scenario API raises, and why.

    Exception
     ├── ClientError            the coordinator refused or failed a call: ``code`` (gRPC status),
     │                          ``details`` (its explanation). Unknown ids are NOT_FOUND, a missing
     │                          role PERMISSION_DENIED, a bad value INVALID_ARGUMENT.
     ├── OutcomeError           a call worked, but a fire or a run did not end the way asked
     │    ├── FireCancelledError  the fire made no run: ``fire``, ``reason`` (e.g. "already running")
     │    └── RunFailedError      the run ended, but not in SUCCESS: ``run`` (a ScenarioRun),
     │                            ``outcome`` ("WARNING", "FAILED" or "ABORTED")
     └── ValueError             a value the client can check before calling: a naive datetime, a
          │                     period cron cannot express, an unknown overlap policy, a raw
          │                     trigger or reporter dict it cannot map…
          └── NoRunError        ``get_last_finished_run()`` or ``get_last_successful_run()`` found
                                no such run: ``scenario_id``, ``which`` ("finished", "successful").
                                A ValueError because Dataiku raises one there, so code written for
                                it catches it unchanged.

``ClientError`` lives in ``_client``; it is re-exported with the rest from ``seedbed.client``.
Waits and the last-run lookups take ``no_fail=True`` to get the outcome (or None) back instead of
an ``OutcomeError`` or a ``NoRunError``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from seedbed.client._runs import ScenarioRun, TriggerFire


class OutcomeError(Exception):
    """A fire or a run did not end the way the caller asked for."""


class FireCancelledError(OutcomeError):
    """The fire was cancelled, so no run was created; ``reason`` says why."""

    def __init__(self, fire: TriggerFire, reason: str) -> None:
        super().__init__(
            f"fire {fire.id} of scenario {fire.scenario_id} was cancelled: {reason or 'no reason given'}"
        )
        self.fire = fire
        self.reason = reason


class RunFailedError(OutcomeError):
    """The run ended in another state than SUCCESS; ``run`` is the run, ``outcome`` its state."""

    def __init__(self, run: ScenarioRun) -> None:
        outcome = run.outcome or run.state
        text = f"run {run.id} of scenario {run.scenario_id} ended {outcome}"
        error = run.first_error
        if error is not None:
            where = f" in step {error.step!r}" if error.step else ""
            text += f"{where}: {error.type}: {error.message}"
        if outcome == "WARNING":
            text += " (pass no_fail=True to accept warnings)"
        super().__init__(text)
        self.run = run
        self.outcome = outcome


class NoRunError(ValueError):
    """The scenario has no run of the kind asked for (yet): ``which`` is "finished" or "successful"."""

    def __init__(self, scenario_id: str, which: str) -> None:
        super().__init__(
            f"scenario {scenario_id} has no {which} run yet (pass no_fail=True to get None instead)"
        )
        self.scenario_id = scenario_id
        self.which = which
