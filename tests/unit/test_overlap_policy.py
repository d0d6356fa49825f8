"""The overlap decision as a pure function: every policy, with and without active runs and waiting
fires. (What the store and the coordinator do with a decision: ``test_overlap.py``.)"""

from __future__ import annotations

import pytest

from seedbed.coordinator.model import OverlapPolicy
from seedbed.coordinator.runs import OverlapDecision, decide_overlap, superseded_reason

ACTIVE = ("run_a", "run_b")
WAITING = ("fire_1", "fire_2")
RUN_NOW = OverlapDecision()


@pytest.mark.parametrize("policy", list(OverlapPolicy))
def test_a_quiet_scenario_runs_the_fire_now_whatever_its_policy(policy: OverlapPolicy) -> None:
    decision = decide_overlap(policy, "scn_x", [], [])
    assert decision == RUN_NOW and decision.runs_now


def test_skip_cancels_the_fire_naming_the_oldest_active_run() -> None:
    decision = decide_overlap(OverlapPolicy.SKIP, "scn_x", ACTIVE, [])
    assert not decision.runs_now and decision.queue_reason is None and decision.supersede == ()
    assert decision.cancel_reason == (
        "already running: run run_a of scenario scn_x is still active (overlap policy SKIP)"
    )


def test_skip_runs_a_fire_when_only_fires_an_earlier_queue_policy_left_wait() -> None:
    assert decide_overlap(OverlapPolicy.SKIP, "scn_x", [], WAITING) == RUN_NOW


def test_allow_concurrent_runs_beside_active_runs_and_waiting_fires() -> None:
    assert decide_overlap(OverlapPolicy.ALLOW_CONCURRENT, "scn_x", ACTIVE, WAITING) == RUN_NOW


def test_cancel_running_runs_the_fire_and_supersedes_every_active_run() -> None:
    decision = decide_overlap(OverlapPolicy.CANCEL_RUNNING, "scn_x", ACTIVE, [])
    assert decision.runs_now and decision.supersede == ACTIVE


def test_cancel_running_with_only_waiting_fires_supersedes_nothing() -> None:
    assert decide_overlap(OverlapPolicy.CANCEL_RUNNING, "scn_x", [], WAITING) == RUN_NOW


def test_queue_one_queues_the_first_fire_behind_the_active_run() -> None:
    decision = decide_overlap(OverlapPolicy.QUEUE_ONE, "scn_x", ACTIVE, [])
    assert not decision.runs_now and decision.cancel_reason is None
    assert decision.queue_reason == "queued behind run run_a (overlap policy QUEUE_ONE)"


def test_queue_one_cancels_a_fire_when_one_already_waits() -> None:
    decision = decide_overlap(OverlapPolicy.QUEUE_ONE, "scn_x", ACTIVE, WAITING[:1])
    assert decision.queue_reason is None
    assert decision.cancel_reason == (
        "already queued: fire fire_1 waits behind run run_a (overlap policy QUEUE_ONE)"
    )


def test_queue_one_with_waiting_fires_and_no_active_run_names_the_fires_before_it() -> None:
    decision = decide_overlap(OverlapPolicy.QUEUE_ONE, "scn_x", [], WAITING)
    assert decision.cancel_reason == (
        "already queued: fire fire_1 waits behind the fires before it (overlap policy QUEUE_ONE)"
    )


def test_queue_all_queues_every_fire_and_counts_those_ahead() -> None:
    first = decide_overlap(OverlapPolicy.QUEUE_ALL, "scn_x", ACTIVE, [])
    assert first.queue_reason == "queued behind run run_a (overlap policy QUEUE_ALL)"
    later = decide_overlap(OverlapPolicy.QUEUE_ALL, "scn_x", ACTIVE, WAITING)
    assert later.cancel_reason is None and not later.runs_now
    assert later.queue_reason == "queued behind run run_a; 2 fire(s) ahead (overlap policy QUEUE_ALL)"


def test_queue_all_behind_waiting_fires_only_keeps_the_order() -> None:
    decision = decide_overlap(OverlapPolicy.QUEUE_ALL, "scn_x", [], WAITING[:1])
    assert decision.queue_reason == (
        "queued behind the fires before it; 1 fire(s) ahead (overlap policy QUEUE_ALL)"
    )


def test_the_superseded_reason_names_the_fire() -> None:
    assert superseded_reason("fire_9") == "cancelled by fire_9: overlap policy CANCEL_RUNNING"
