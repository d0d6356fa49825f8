"""Running the shards of one insert: as Ray tasks across the cluster, or on threads without Ray.

`RayShardRunner` keeps at most `parallel` shard tasks in flight (the insert's `writers`), starts the
next as one ends, and hands each result over as it arrives (progress). A shard task holds one CPU,
so Ray spreads shards over the nodes that have room; it is retried by Ray when its worker dies
(`max_retries`), and a retried shard skips the batches its ledger already has. What every shard
shares (the sources of `ref` and `pick_from` values, which may be a million keys) is put into the
object store once per insert, not once per shard. On a stop (the attempt ended: aborted, timed out),
tasks in flight are cancelled with `force=True`: their worker process dies, the database rolls back
its open transaction, and no shard keeps writing.

After the first failure no new shard starts; those in flight finish (what they commit is in the
ledger, so purgeable), then the runner returns.

`ThreadShardRunner` does the same on threads of this process (no Ray: tests that run an attempt
directly, or a worker used without a cluster).

Rejected: one streaming task per insert that writes everything (no parallelism across nodes);
Ray actors per writer (a dead actor loses its shard, and actors outlive the attempt unless reaped).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import replace
from typing import Any, Protocol

from seedbed.worker.bulk._shard import FrozenRefs, ShardFailure, ShardJob, ShardResult, write_shard

__all__ = ["RayShardRunner", "ShardRunner", "ThreadShardRunner", "default_runner"]

log = logging.getLogger(__name__)

# Ray retries a shard whose worker died this many times (each retry skips what is committed).
SHARD_RETRIES = 3
_POLL_SECONDS = 0.2
# How long a stop waits for cancelled shard tasks to be gone.
STOP_WAIT_SECONDS = 20.0
_EMPTY_REFS = FrozenRefs({})


class ShardRunner(Protocol):
    def run(
        self,
        jobs: Sequence[ShardJob],
        parallel: int,
        *,
        on_result: Callable[[ShardResult], None],
        stop: threading.Event,
    ) -> None:
        """Run `jobs`, at most `parallel` at once, calling `on_result` as each ends. Returns when all
        ended, when the running ones ended after a failure, or at once after `stop` is set."""
        ...


def _run_in_task(job: ShardJob, shared: tuple[FrozenRefs, dict[str, Any]]) -> ShardResult:
    """The Ray task: the job, with the sources every shard shares put back in."""
    return write_shard(replace(job, refs=shared[0], overrides=shared[1]))


class RayShardRunner:
    def __init__(self) -> None:
        import ray

        self._ray = ray
        self._task = ray.remote(num_cpus=1, max_retries=SHARD_RETRIES, retry_exceptions=False)(_run_in_task)

    def run(
        self,
        jobs: Sequence[ShardJob],
        parallel: int,
        *,
        on_result: Callable[[ShardResult], None],
        stop: threading.Event,
    ) -> None:
        if not jobs:
            return
        ray = self._ray
        first = jobs[0]
        shared = ray.put((first.refs, dict(first.overrides)))
        todo = list(jobs)
        running: dict[Any, ShardJob] = {}
        failed = False
        try:
            while todo or running:
                while todo and not failed and len(running) < parallel and not stop.is_set():
                    job = todo.pop(0)
                    light = replace(job, refs=_EMPTY_REFS, overrides={})
                    ref = self._task.options(
                        name=f"seedbed-shard-{job.stamp.run_id}-{job.call}-{job.index}"
                    ).remote(light, shared)
                    running[ref] = job
                if stop.is_set():
                    return
                if not running:
                    return  # failed: nothing more starts
                done, _ = ray.wait(list(running), num_returns=1, timeout=_POLL_SECONDS)
                for ref in done:
                    job = running.pop(ref)
                    result = self._result(ref, job)
                    failed = failed or result.failure is not None
                    on_result(result)
        finally:
            self._stop_all(running, on_result)

    def _stop_all(self, running: dict[Any, ShardJob], on_result: Callable[[ShardResult], None]) -> None:
        """The attempt ended (or the caller failed): kill the shard tasks still running, and wait
        until they are gone, so that no shard commits once the attempt has reported its end (a
        killed task's connection drops: its open transaction rolls back). A shard that finished
        meanwhile is reported: what it committed is the run's."""
        if not running:
            return
        ray = self._ray
        refs = list(running)
        for ref in refs:
            try:
                ray.cancel(ref, force=True)
            except Exception as exc:  # noqa: BLE001 - best effort; the task may have ended
                log.info("cancelling shard task: %s", exc)
        done, left = ray.wait(refs, num_returns=len(refs), timeout=STOP_WAIT_SECONDS)
        for ref in done:
            try:
                result = ray.get(ref, timeout=0)
            except Exception:  # noqa: BLE001 - cancelled: it committed nothing it did not report
                continue
            on_result(result)
        if left:
            log.warning(
                "%d shard tasks were still running %ss after they were cancelled",
                len(left),
                STOP_WAIT_SECONDS,
            )

    def _result(self, ref: Any, job: ShardJob) -> ShardResult:
        try:
            result: ShardResult = self._ray.get(ref)
            return result
        except Exception as exc:  # the task died past its retries, or Ray failed
            return ShardResult(
                job.index,
                failure=ShardFailure(
                    "internal",
                    f"shard {job.index + 1} of {job.shards} (rows {job.first}-{job.last - 1}) could not "
                    f"run: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
                ),
            )


class ThreadShardRunner:
    def run(
        self,
        jobs: Sequence[ShardJob],
        parallel: int,
        *,
        on_result: Callable[[ShardResult], None],
        stop: threading.Event,
    ) -> None:
        todo = list(jobs)
        failed = False
        with ThreadPoolExecutor(max_workers=max(1, parallel), thread_name_prefix="seedbed-shard") as pool:
            running: set[Future[ShardResult]] = set()
            while todo or running:
                while todo and not failed and len(running) < parallel and not stop.is_set():
                    running.add(pool.submit(write_shard, todo.pop(0), stop=stop))
                if not running:
                    return
                done, running = wait(running, timeout=_POLL_SECONDS, return_when=FIRST_COMPLETED)
                for future in done:
                    result = future.result()
                    failed = failed or result.failure is not None
                    on_result(result)


def default_runner() -> ShardRunner:
    """Ray's when this process is part of a Ray cluster (a worker), else threads."""
    try:
        import ray
    except ImportError:  # pragma: no cover - Ray is a dependency of the worker
        return ThreadShardRunner()
    return RayShardRunner() if ray.is_initialized() else ThreadShardRunner()
