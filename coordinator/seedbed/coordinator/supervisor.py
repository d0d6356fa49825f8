"""Drives runs: one asyncio task per active run takes it from QUEUED to a terminal state.

A drive begins an attempt (a conditional takeover in the store), runs it (``attempt.AttemptRunner``)
and, when it failed in a way the run's retry policy retries, records when the next attempt starts,
waits for it and begins it; at last it finalizes the run with a conditional update. An abort cuts a
backoff wait short.

Leases. Next to each drive, a lease keeper renews the lease of the run's latest attempt every third
of ``lease_seconds``, fenced by the attempt's token. A renewal that finds the attempt superseded
(another coordinator took the run over) or the run ended elsewhere stops the drive at once: the
dispatch is closed, which cancels the attempt on its worker, and nothing more is written. The
recovery loop, every ``recovery_interval_seconds``, drives the active runs that no task here drives
and whose lease has lapsed. At start it takes, without waiting, every run this coordinator (by
``coordinator_id``) was driving in its previous process and every run without an attempt.

Rejected: one lease per coordinator instead of per run (a takeover would be all or nothing), and
retries by Ray (``max_retries``): Ray cannot tell a script error from a lost worker, and the
attempts would not be in the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from seedbed.coordinator.attempt import AttemptRunner, LogWriter, aborted
from seedbed.coordinator.errors import LeaseLost
from seedbed.coordinator.janitor import SandboxJanitor
from seedbed.coordinator.logs import LogHub
from seedbed.coordinator.model import FailureReason, RunState
from seedbed.coordinator.observability.logs import bind_run
from seedbed.coordinator.observability.metrics import CoordinatorMetrics
from seedbed.coordinator.observability.tracing import RunTracing
from seedbed.coordinator.periodic import PeriodicTask
from seedbed.coordinator.retry import RetryPolicy
from seedbed.coordinator.runs.ports import RunWorkers
from seedbed.coordinator.secrets import SecretBox
from seedbed.coordinator.settings import CoordinatorSettings
from seedbed.coordinator.store import ErrorInfo, RunEnd, RunRecord, StaleRun, Store, now

log = logging.getLogger(__name__)

# How often a backoff wait looks for an abort requested through another coordinator.
_ABORT_POLL_SECONDS = 1.0


@dataclass
class _Lease:
    """The attempt whose lease a drive holds (none before its first attempt begins)."""

    run_id: str
    attempt: int = 0
    token: int = 0
    # Set before the drive finalizes the run itself: a failed renewal then means nothing.
    finishing: bool = False


class RunListener(Protocol):
    """Told when a run starts its first attempt and when it ends (reporters, queued fires).

    Called in a task of its own after the store has the new state; an exception is logged and
    changes nothing about the run.
    """

    async def run_started(self, run: RunRecord) -> None: ...

    async def run_finished(self, run: RunRecord) -> None: ...


class RunSupervisor:
    """Owns one task per driven run, the recovery loop and the janitor. ``start()`` recovers,
    ``aclose()`` stops the tasks and lets their leases lapse (the runs stay active in the store and
    are driven again by the next coordinator)."""

    def __init__(
        self,
        store: Store,
        workers: RunWorkers,
        hub: LogHub,
        settings: CoordinatorSettings,
        secrets: SecretBox | None = None,
        *,
        tracing: RunTracing | None = None,
        metrics: CoordinatorMetrics | None = None,
    ) -> None:
        # Where workers reach this coordinator (workspace downloads); set once the server listens.
        self.coordinator_address = ""
        self._store = store
        self._workers = workers
        self._hub = hub
        self._settings = settings
        self._holder = settings.resolved_coordinator_id()
        self._lease = timedelta(seconds=settings.lease_seconds)
        self._runner = AttemptRunner(store, workers, hub, settings, secrets, tracing, metrics)
        self._janitor = SandboxJanitor(store, workers, settings)
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._leases: dict[str, _Lease] = {}
        self._wakeups: dict[str, asyncio.Event] = {}
        self._recovery = PeriodicTask(
            "recovery", self._recover, settings.recovery_interval_seconds, first_wait=True
        )
        self._rng = random.Random()
        self._closing = False
        self._listeners: list[RunListener] = []
        self._notices: set[asyncio.Task[None]] = set()

    def add_listener(self, listener: RunListener) -> None:
        self._listeners.append(listener)

    def _notify(self, run_id: str, started: bool) -> None:
        if self._listeners:
            task = asyncio.create_task(self._tell(run_id, started), name=f"notify-{run_id}")
            self._notices.add(task)
            task.add_done_callback(self._notices.discard)

    async def _tell(self, run_id: str, started: bool) -> None:
        try:
            run = await self._store.get_run(run_id)
        except Exception:
            log.exception("run %s: could not read it to notify its listeners", run_id)
            return
        for listener in self._listeners:
            try:
                await (listener.run_started(run) if started else listener.run_finished(run))
            except Exception:
                log.exception("run %s: listener %s failed", run_id, type(listener).__name__)

    async def start(self) -> None:
        for stale in await self._store.attempts.stale(now(), self._lease, holder=self._holder):
            log.info("recovering run %s (%d attempts so far)", stale.run_id, stale.attempt)
            self.launch(stale.run_id)
        self._recovery.start()
        self._janitor.start()

    async def _recover(self) -> None:
        for stale in await self._store.attempts.stale(now(), self._lease):
            if stale.run_id not in self._tasks:
                self._take_over(stale)

    def _take_over(self, stale: StaleRun) -> None:
        if stale.attempt == 0:
            log.warning("run %s: queued for longer than a lease with no attempt; driving it", stale.run_id)
        else:
            expired = stale.lease_expires_at.isoformat() if stale.lease_expires_at else "unset"
            log.warning(
                "run %s: nobody renewed the lease of attempt %d (expired %s); taking the run over",
                stale.run_id,
                stale.attempt,
                expired,
            )
        self.launch(stale.run_id)

    async def aclose(self) -> None:
        self._closing = True
        await self._recovery.aclose()
        await self._janitor.aclose()
        if self._notices:
            # Reports and queued fires of runs that just ended: give them a moment, then stop.
            await asyncio.wait(set(self._notices), timeout=self._settings.abort_grace_seconds)
            for notice in list(self._notices):
                notice.cancel()
            await asyncio.gather(*self._notices, return_exceptions=True)
        leases = [lease for lease in self._leases.values() if lease.token and not lease.finishing]
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for lease in leases:
            # Let another coordinator take over now rather than when the lease would have lapsed.
            with contextlib.suppress(Exception):
                await self._store.attempts.release(lease.run_id, lease.attempt, lease.token)

    def launch(self, run_id: str) -> None:
        if run_id in self._tasks or self._closing:
            return
        task = asyncio.create_task(self._drive(run_id), name=f"drive-{run_id}")
        self._tasks[run_id] = task
        task.add_done_callback(lambda _t: self._tasks.pop(run_id, None))

    # -- one run -----------------------------------------------------------------------------------

    async def _drive(self, run_id: str) -> None:
        """The run's body and its lease keeper; whichever ends first ends the other."""
        bind_run(run_id)  # this task's log lines (and its children's) concern the run
        lease = self._leases[run_id] = _Lease(run_id)
        body = asyncio.create_task(self._drive_run(lease), name=f"run-{run_id}")
        keeper = asyncio.create_task(self._keep_lease(lease), name=f"lease-{run_id}")
        try:
            await asyncio.wait({body, keeper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            lost = keeper.done() and not body.done()
            keeper.cancel()
            body.cancel()  # closes the dispatch, which cancels the attempt on its worker
            await asyncio.gather(body, keeper, return_exceptions=True)
            self._leases.pop(run_id, None)
            self._wakeups.pop(run_id, None)
        if lost:
            log.warning(
                "run %s: attempt %d lost its lease (fencing token %d superseded, or the run ended "
                "elsewhere); stopped driving it",
                run_id,
                lease.attempt,
                lease.token,
            )

    async def _keep_lease(self, lease: _Lease) -> None:
        """Renew until a renewal is refused (then return: the drive stops)."""
        while True:
            await asyncio.sleep(self._settings.lease_seconds / 3)
            if not lease.token or lease.finishing:
                continue
            try:
                if await self._store.attempts.renew(lease.run_id, lease.attempt, lease.token, self._lease):
                    continue
            except Exception as exc:
                log.warning("run %s: lease renewal failed, trying again: %s", lease.run_id, exc)
                continue
            if not lease.finishing:
                return

    async def _drive_run(self, lease: _Lease) -> None:
        run_id = lease.run_id
        started = time.monotonic()
        try:
            end = await self._attempts(lease)
            lease.finishing = True
            if await self._finish(run_id, end, attempt=lease.attempt):
                log.info(
                    "run %s: %s after %d attempt(s) in %.2fs",
                    run_id,
                    end.state,
                    lease.attempt,
                    time.monotonic() - started,
                )
            else:
                log.warning(
                    "run %s: not finalized here: it ended elsewhere or moved past attempt %d",
                    run_id,
                    lease.attempt,
                )
        except LeaseLost as exc:
            log.warning("run %s: stopped driving it: %s", run_id, exc.detail)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the store itself failed: record it if we still can
            log.exception("run %s: supervisor failure", run_id)
            lease.finishing = True
            error = ErrorInfo(FailureReason.INFRASTRUCTURE, type(exc).__name__, f"coordinator error: {exc}")
            with contextlib.suppress(Exception):
                await self._finish(run_id, RunEnd(RunState.FAILED, error), attempt=lease.attempt)

    async def _attempts(self, lease: _Lease) -> RunEnd:
        """Attempt after attempt until one ends the run; how the run ends. Raises LeaseLost."""
        run_id = lease.run_id
        while True:
            run = await self._store.get_run(run_id)
            if not lease.token:
                # Nothing begun here yet (a recovered run): finishing is fenced by the count seen.
                lease.attempt = run.attempt_count
            if run.abort_reason:
                return RunEnd(RunState.ABORTED, aborted(run.abort_reason))
            if run.next_attempt_at is not None and not await self._wait_until(run_id, run.next_attempt_at):
                continue  # woken by an abort
            number, token = await self._store.attempts.begin(
                run_id, seen_attempts=run.attempt_count, holder=self._holder, lease=self._lease
            )
            lease.attempt, lease.token = number, token
            if number == 1:
                self._notify(run_id, started=True)
            end = await self._runner.run(run_id, number, token, self.coordinator_address)
            if end.state is RunState.ABORTED:
                return end  # the runner said so in the log
            latest = await self._store.get_run(run_id)
            logs = LogWriter(self._store, self._hub, latest, number)
            if end.state is RunState.FAILED and latest.abort_reason:
                await logs.system(f"aborted: {latest.abort_reason}")
                return RunEnd(RunState.ABORTED, aborted(latest.abort_reason), end.exit_code)
            policy = latest.settings.retry_policy
            reason = end.error.reason if end.error is not None else None
            if end.state is not RunState.FAILED or not policy.should_retry(number, reason):
                await logs.system(_summary(end, number, policy))
                return end
            delay = policy.backoff(number, self._rng)
            if not await self._store.attempts.schedule_next(run_id, number, now() + delay):
                raise LeaseLost(run_id, f"the run moved past attempt {number} while scheduling a retry")
            await logs.system(_retry_line(end, number, delay, policy))
            log.info(
                "run %s attempt %d: %s; attempt %d in %.1fs",
                run_id,
                number,
                reason,
                number + 1,
                delay.total_seconds(),
            )

    async def _wait_until(self, run_id: str, at: datetime) -> bool:
        """Sleep until ``at``; False as soon as an abort is requested."""
        wake = self._wakeups.setdefault(run_id, asyncio.Event())
        while (left := (at - now()).total_seconds()) > 0:
            try:
                await asyncio.wait_for(wake.wait(), timeout=min(left, _ABORT_POLL_SECONDS))
            except TimeoutError:
                if (await self._store.get_run(run_id)).abort_reason:
                    return False
            else:
                wake.clear()
                return False
        return True

    async def _finish(self, run_id: str, end: RunEnd, *, attempt: int | None = None) -> bool:
        changed = await self._store.finish_run(run_id, end, attempt=attempt)
        self._hub.notify(run_id)
        if changed:
            self._notify(run_id, started=False)
        return changed

    # -- abort -------------------------------------------------------------------------------------

    async def abort(self, run_id: str, reason: str) -> tuple[RunRecord, bool]:
        """Stop a run. Returns (run, already_finished). ABORTED is not FAILED."""
        run = await self._store.get_run(run_id)
        if run.state.is_terminal:
            return run, True
        run = await self._store.request_abort(run_id, reason)
        task = self._tasks.get(run_id)
        self._workers.cancel(run_id)
        if task is None:
            # Nobody drives it here (another coordinator's keeper sees the run ended and stops).
            await self._finish(run_id, RunEnd(RunState.ABORTED, aborted(run.abort_reason or reason)))
        else:
            self._wakeups.setdefault(run_id, asyncio.Event()).set()  # cuts a backoff wait short
            done, _ = await asyncio.wait({task}, timeout=self._settings.abort_grace_seconds)
            if not done:
                log.warning("run %s did not stop within the abort grace; forcing ABORTED", run_id)
                task.cancel()
                await self._finish(run_id, RunEnd(RunState.ABORTED, aborted(run.abort_reason or reason)))
        return await self._store.get_run(run_id), False


def _failure(end: RunEnd) -> str:
    if end.error is None:
        return str(end.state)
    reason = end.error.reason.value if end.error.reason else end.state.value
    return f"{reason}: {end.error.type}: {end.error.message}"


def _summary(end: RunEnd, attempt: int, policy: RetryPolicy) -> str:
    text = f"run ended: {end.state}"
    if end.error is not None:
        text += f" ({end.error.type}: {end.error.message})"
    if end.state is RunState.FAILED and attempt > 1:
        text += f" after {attempt} attempts ({policy.describe()})"
    return text


def _retry_line(end: RunEnd, attempt: int, delay: timedelta, policy: RetryPolicy) -> str:
    seconds = delay.total_seconds()
    return (
        f"attempt {attempt} failed ({_failure(end)}); attempt {attempt + 1} in "
        f"{seconds:.{2 if seconds < 1 else 1}f}s ({policy.describe()})"
    )
