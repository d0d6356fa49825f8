"""The writer gate's book: leases, the FIFO queue of waiters and the limit in force, on a fake clock."""

from __future__ import annotations

import pytest

from seedbed.worker.bulk._gate import (
    Admission,
    SlotTable,
    WriterSlotTimeout,
    check_limit,
    writer_slot,
)

TTL = 30.0


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def table(clock: FakeClock) -> SlotTable:
    return SlotTable(waiter_ttl=5.0, clock=clock)


def test_admits_up_to_the_limit_then_queues(table: SlotTable) -> None:
    assert table.admit("k", "a", 2, TTL) == Admission(True, 2, 1)
    assert table.admit("k", "b", 2, TTL) == Admission(True, 2, 2)
    assert table.admit("k", "c", 2, TTL) == Admission(False, 2, 2, ahead=0)
    assert table.admit("k", "d", 2, TTL) == Admission(False, 2, 2, ahead=1)
    assert table.busy("k") == 2
    # Keys are independent.
    assert table.admit("other", "c", 1, TTL).granted


def test_asking_again_while_holding_takes_no_second_slot(table: SlotTable) -> None:
    assert table.admit("k", "a", 2, TTL).granted
    assert table.admit("k", "a", 2, TTL) == Admission(True, 2, 1)
    assert table.busy("k") == 1


def test_waiters_are_admitted_in_arrival_order(table: SlotTable) -> None:
    table.admit("k", "a", 1, TTL)
    assert not table.admit("k", "b", 1, TTL).granted
    assert not table.admit("k", "c", 1, TTL).granted
    table.release("k", "a")
    # The slot is free, but b arrived first: c, asking first, still waits behind it.
    assert table.admit("k", "c", 1, TTL) == Admission(False, 1, 0, ahead=1)
    assert table.admit("k", "b", 1, TTL).granted
    assert not table.admit("k", "c", 1, TTL).granted
    table.release("k", "b")
    assert table.admit("k", "c", 1, TTL).granted


def test_a_lease_not_renewed_within_its_ttl_frees_the_slot(table: SlotTable, clock: FakeClock) -> None:
    table.admit("k", "dead", 2, lease_ttl=10.0)
    table.admit("k", "alive", 2, lease_ttl=10.0)
    assert not table.admit("k", "waiter", 2, TTL).granted
    for _ in range(4):  # alive renews every 3 s; dead never does
        clock.now += 3.0
        assert table.renew("k", "alive", 2, 10.0) is True
        assert table.admit("k", "waiter", 2, TTL).granted is (clock.now >= 1010.0)
    assert table.busy("k") == 2


def test_a_lapsed_lease_is_taken_back_on_renewal_even_over_the_limit(
    table: SlotTable, clock: FakeClock
) -> None:
    table.admit("k", "slow", 1, lease_ttl=2.0)
    clock.now += 3.0  # the holder stalled past its TTL
    assert table.admit("k", "next", 1, TTL).granted
    assert table.renew("k", "slow", 1, 2.0) is False
    assert table.busy("k") == 2  # both are writing: later writers wait for both
    assert not table.admit("k", "third", 1, TTL).granted


def test_a_waiter_that_stops_asking_loses_its_place(table: SlotTable, clock: FakeClock) -> None:
    table.admit("k", "a", 1, TTL)
    table.admit("k", "gone", 1, TTL)  # killed while waiting: never asks again
    for _ in range(3):
        clock.now += 2.0
        answer = table.admit("k", "b", 1, TTL)
    assert answer == Admission(False, 1, 1, ahead=0)
    table.release("k", "a")
    assert table.admit("k", "b", 1, TTL).granted


def test_the_smallest_limit_in_use_wins(table: SlotTable) -> None:
    # Runs under the old limit (1) are writing when the connection is edited to allow 3.
    assert table.admit("k", "old", 1, TTL).granted
    assert table.admit("k", "new1", 3, TTL) == Admission(False, 1, 1, ahead=0)
    table.release("k", "old")
    assert table.admit("k", "new1", 3, TTL) == Admission(True, 3, 1)
    assert table.admit("k", "new2", 3, TTL).granted
    # Lowered back to 1: nobody new gets in while two are writing, nor after one of them leaves.
    assert table.admit("k", "low", 1, TTL) == Admission(False, 1, 2, ahead=0)
    table.release("k", "new1")
    assert not table.admit("k", "low", 1, TTL).granted
    table.release("k", "new2")
    assert table.admit("k", "low", 1, TTL).granted


def test_release_is_idempotent_and_leaves_the_queue(table: SlotTable) -> None:
    table.admit("k", "a", 1, TTL)
    table.admit("k", "quitter", 1, TTL)
    table.admit("k", "b", 1, TTL)
    table.release("k", "quitter")  # gave up waiting: b moves up
    assert table.admit("k", "b", 1, TTL).ahead == 0
    table.release("k", "a")
    table.release("k", "a")
    table.release("never-used", "x")
    assert table.admit("k", "b", 1, TTL).granted
    assert table.busy("k") == 1


@pytest.mark.parametrize("bad", [0, -1, 1.5, "2", None, True])
def test_a_limit_must_be_an_integer_of_at_least_one(table: SlotTable, bad: object) -> None:
    with pytest.raises(ValueError, match="max_writers must be an integer of at least 1"):
        check_limit(bad)
    with pytest.raises(ValueError, match="max_writers"):
        table.admit("k", "a", bad, TTL)  # type: ignore[arg-type]
    # Refused before the gate is asked anything (no Ray needed here).
    with pytest.raises(ValueError, match="max_writers"), writer_slot("k", bad, holder="h"):  # type: ignore[arg-type]
        pass
    assert check_limit(1) == 1


def test_a_timeout_says_where_it_waited_and_behind_whom() -> None:
    error = WriterSlotTimeout(key="p/conn_1/ab12", waited_seconds=12.04, limit=4, busy=4, ahead=3)
    assert str(error).startswith(
        "no writer slot on 'p/conn_1/ab12' within 12.0 s: 4 of 4 busy, 3 waiting ahead"
    )
    assert (error.key, error.limit, error.busy, error.ahead) == ("p/conn_1/ab12", 4, 4, 3)
