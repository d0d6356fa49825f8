"""The writer gate on a real local Ray: a bound across concurrent tasks, a killed holder's slot coming
back after its lease's TTL, and a waiter that times out or is cancelled leaving the queue."""

from __future__ import annotations

import os
import threading
import time
import uuid
from pathlib import Path

import pytest
import ray

from seedbed.worker.bulk._gate import WriterSlotCancelled, WriterSlotTimeout, gate_actor, writer_slot


def _key() -> str:
    return f"proj_test/conn_{uuid.uuid4().hex[:8]}/url"


def _write_shard(key: str, shard: int, hold: float) -> tuple[float, float, float]:
    arrived = time.time()
    with writer_slot(key, 2, holder=f"shard {shard}", wait_timeout=120):
        entered = time.time()
        time.sleep(hold)
        left = time.time()
    return arrived, entered, left


def _die_holding(key: str, marker: str) -> None:
    with writer_slot(key, 1, holder="doomed", wait_timeout=60, lease_ttl=2.0):
        Path(marker).write_text(repr(time.time()))
        os._exit(1)  # no release, no more renewals: only the TTL frees the slot


def _peak(intervals: list[tuple[float, float]]) -> int:
    # An exit at the same instant as an enter counts first: the slot was handed over, not shared.
    events = sorted(
        [(t, 1) for t, _ in intervals] + [(t, -1) for _, t in intervals], key=lambda e: (e[0], e[1])
    )
    inside = peak = 0
    for _, step in events:
        inside += step
        peak = max(peak, inside)
    return peak


def test_six_tasks_with_limit_two_never_write_three_at_once(ray_session: None) -> None:
    key, hold = _key(), 1.5
    shard = ray.remote(num_cpus=0, max_retries=0)(_write_shard)
    results = ray.get([shard.remote(key, i, hold) for i in range(6)], timeout=120)
    first_exit = min(left for _, _, left in results)
    # The tasks ran side by side, so the gate had something to hold back...
    assert sum(arrived < first_exit for arrived, _, _ in results) >= 3, results
    # ...and it held them to two at once, while using both slots.
    assert _peak([(entered, left) for _, entered, left in results]) == 2, results
    assert max(left for _, _, left in results) - min(entered for _, entered, _ in results) >= 3 * hold
    assert ray.get(gate_actor().busy.remote(key)) == 0


def test_a_holder_killed_in_its_slot_frees_it_after_the_lease_ttl(ray_session: None, tmp_path: Path) -> None:
    key, marker = _key(), tmp_path / "entered"
    doomed = ray.remote(num_cpus=0, max_retries=0)(_die_holding)
    with pytest.raises(ray.exceptions.WorkerCrashedError):
        ray.get(doomed.remote(key, str(marker)), timeout=60)
    entered = float(marker.read_text())
    with writer_slot(key, 1, holder="survivor", wait_timeout=30, lease_ttl=2.0):
        got_it = time.time()
    # Not released by the dead process (it held on until its lease ran out), then free within ~TTL.
    assert 1.5 <= got_it - entered <= 2.0 + 2.5, got_it - entered


def test_a_waiter_times_out_or_is_cancelled_and_leaves_the_queue(ray_session: None) -> None:
    key = _key()
    with writer_slot(key, 1, holder="holder"):
        waits: list[float] = []
        with (
            pytest.raises(WriterSlotTimeout) as timed_out,
            writer_slot(key, 1, holder="impatient", wait_timeout=5.6, on_wait=waits.append),
        ):
            pytest.fail("entered a full gate")
        assert (timed_out.value.busy, timed_out.value.limit, timed_out.value.ahead) == (1, 1, 0)
        assert timed_out.value.waited_seconds >= 5.6
        assert len(waits) == 1 and 5.0 <= waits[0] < 5.6, waits

        stop = threading.Event()
        threading.Timer(0.3, stop.set).start()
        started = time.monotonic()
        with pytest.raises(WriterSlotCancelled), writer_slot(key, 1, holder="stopped", cancelled=stop.is_set):
            pytest.fail("entered a full gate")
        assert 0.3 <= time.monotonic() - started < 2.0
    # Neither left a place in the queue behind: the next writer gets in at once.
    with writer_slot(key, 1, holder="next", wait_timeout=0):
        assert ray.get(gate_actor().busy.remote(key)) == 1
