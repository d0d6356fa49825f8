"""Soak: many seeding runs, each broken by a random fault from the fault tests' list, then zero
duplicated and zero lost rows over every target. The faults are drawn from a seeded generator;
set SEEDBED_SOAK_SEED to replay a sequence, SEEDBED_SOAK_RUNS to change the count (default 50)."""

from __future__ import annotations

import os
import random
import secrets
from collections import Counter
from collections.abc import Callable

import psycopg
import pytest

from seedbed.api.v1 import run_pb2
from tests.conftest import eventually
from tests.faults.seeding import SeedingHarness
from tests.integration.test_faults import harness  # noqa: F401 - the fixture

pytestmark = pytest.mark.integration

CUSTOMERS = 40  # 2 rounds of 20


def _after_first_commit(h: SeedingHarness, run_id: str, ns: str, act: Callable[[str], object]) -> None:
    h.wait_for_ledger(h.client.get_run(run_id).run_key, f"{ns}.customers")
    act(run_id)


FAULTS = [
    "none",
    "worker killed after commit",
    "sandbox killed",
    "connection terminated mid-batch",
    "connection cut after commit",
    "REST 500",
    "REST 429",
    "REST applied then timed out",
]


def test_soak_every_row_once(harness: SeedingHarness) -> None:  # noqa: F811 - the fixture
    seed = int(os.environ.get("SEEDBED_SOAK_SEED") or secrets.randbelow(2**31))
    runs = int(os.environ.get("SEEDBED_SOAK_RUNS", "50"))
    rng = random.Random(seed)
    h = harness
    seen: Counter[str] = Counter()
    duplicated = lost = 0
    problems: list[str] = []
    for index in range(runs):
        fault = rng.choice(FAULTS)
        seen[fault] += 1
        ns = h.new_namespace()
        path = f"/soak-{index}"
        params = {"rounds": "2", "size": "20", "pause": "0.6", "rest_path": path}
        if fault == "connection cut after commit":
            params["conn"] = "conn_pg_proxy"
        if fault == "REST 500":
            h.api.fail(path, status=500, times=2)
        elif fault == "REST 429":
            h.api.throttle(path, retry_after_seconds=1)
        elif fault == "REST applied then timed out":
            h.api.apply_then_hang(path, seconds=2)
        if fault == "connection terminated mid-batch":
            with h.table_locked(f"{ns}.customers"):
                fire = h.start(ns, **params)
                waiting = eventually(h.waiting_backends, timeout=60)
                with psycopg.connect(h.pg_url, autocommit=True) as admin:
                    admin.execute("SELECT pg_terminate_backend(%s)", [waiting[0]])
        else:
            fire = h.start(ns, **params)
        if fault == "worker killed after commit":
            _after_first_commit(h, fire.run_id, ns, h.kill_worker)
        elif fault == "sandbox killed":
            _after_first_commit(h, fire.run_id, ns, h.kill_container)
        elif fault == "connection cut after commit":
            _after_first_commit(h, fire.run_id, ns, lambda _run_id: h.proxy.cut_after_commit(times=1))
        run = h.wait(fire.run_id)
        if run.state != run_pb2.RUN_STATE_SUCCESS:
            problems.append(
                f"run {index} ({fault}): {run_pb2.RunState.Name(run.state)} {run.first_error.message}"
            )
            continue
        dup, missing = h.tally(run, ns, customers=CUSTOMERS, rest_path=path)
        duplicated += dup
        lost += missing
        if dup or missing:
            problems.append(f"run {index} ({fault}): {dup} duplicated, {missing} lost")
        h.check_exactly_once(run, ns, customers=CUSTOMERS, rest_path=path)
    summary = ", ".join(f"{name}: {count}" for name, count in sorted(seen.items()))
    print(f"\nsoak seed {seed}: {runs} runs ({summary}); {duplicated} duplicated, {lost} lost rows")
    assert not problems, f"seed {seed}: " + "; ".join(problems)
    assert duplicated == 0 and lost == 0
