"""Fault tests of exactly-once seeding, against the real coordinator, Ray, Docker, PostgreSQL and a
loopback REST target. Each breaks a seeding run in one place, then checks that every expected row
is present exactly once, that the write ledger agrees with the tables, and that no container is
left (`SeedingHarness.check_exactly_once`)."""

from __future__ import annotations

import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import grpc
import psycopg
import pytest
import sqlalchemy as sa

from seedbed.api.v1 import run_pb2
from seedbed.client import Client, ClientError, LogEvent, RunEnded
from seedbed.coordinator import running_in_thread
from tests.conftest import eventually, settings_for
from tests.faults.proxy import TcpProxy
from tests.faults.rest_target import RestTarget
from tests.faults.seeding import SeedingHarness, settle
from tests.faults.server_process import CoordinatorProcess

pytestmark = pytest.mark.integration

SUCCESS = run_pb2.RUN_STATE_SUCCESS


@pytest.fixture
def harness(
    ray_session: None, docker_client: docker.DockerClient, pg_database: str, tmp_path: Path
) -> Iterator[SeedingHarness]:
    # The coordinator's store is SQLite: the PostgreSQL server is the target, and gets restarted.
    settings = settings_for(
        f"sqlite+aiosqlite:///{tmp_path / 'seedbed.db'}",
        tmp_path,
        janitor_interval_seconds=1,
        abort_grace_seconds=20,
    )
    url = sa.make_url(pg_database)
    plain = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with (
        running_in_thread(settings) as coordinator,
        Client(coordinator.address) as client,
        RestTarget() as api,
        TcpProxy(url.host or "127.0.0.1", url.port or 5432) as proxy,
    ):
        h = SeedingHarness(client=client, docker=docker_client, pg_url=plain, api=api, proxy=proxy)
        h.set_up()
        yield h


def attempts(run: run_pb2.Run) -> list[str]:
    return [a.outcome for a in run.attempts]


def test_a_fault_free_run_writes_everything_once(harness: SeedingHarness) -> None:
    ns = harness.new_namespace()
    run = harness.wait(harness.start(ns, rest_path="/orders").run_id)
    assert run.state == SUCCESS, harness.logs(run.id)
    assert attempts(run) == ["SUCCEEDED"]
    harness.check_exactly_once(run, ns, customers=120, rest_path="/orders")
    batches = harness.client.write_batches(run.id)
    inserts = [b for b in batches if b.operation == "insert"]
    assert [(b.target, b.batch) for b in inserts] == [
        (f"{ns}.customers", 0),
        (f"{ns}.customers", 0),
        (f"{ns}.customers", 0),
        (f"{ns}.orders", 0),
    ]
    assert {b.operation for b in batches} == {"execute", "insert", "post", "write"}
    assert all(b.status == run_pb2.WRITE_BATCH_STATUS_APPLIED for b in batches)


def test_worker_killed_before_commit(harness: SeedingHarness) -> None:
    ns = harness.new_namespace()
    with harness.table_locked(f"{ns}.customers"):
        fire = harness.start(ns)
        eventually(harness.waiting_backends, timeout=60)  # the first batch waits, uncommitted
        harness.kill_worker(fire.run_id)
        settle(0.5)
    run = harness.wait(fire.run_id)
    assert run.state == SUCCESS, harness.logs(run.id)
    assert attempts(run) == ["INFRASTRUCTURE", "SUCCEEDED"]
    harness.check_exactly_once(run, ns, customers=120)


def test_worker_killed_after_commit(harness: SeedingHarness) -> None:
    ns = harness.new_namespace()
    fire = harness.start(ns, pause="1.5")
    run_key = harness.client.get_run(fire.run_id).run_key
    harness.wait_for_ledger(run_key, f"{ns}.customers")  # round 1 committed, now pausing
    harness.kill_worker(fire.run_id)
    run = harness.wait(fire.run_id)
    assert run.state == SUCCESS, harness.logs(run.id)
    assert attempts(run) == ["INFRASTRUCTURE", "SUCCEEDED"]
    harness.check_exactly_once(run, ns, customers=120)
    replayed = [
        b
        for b in harness.client.write_batches(run.id)
        if b.status == run_pb2.WRITE_BATCH_STATUS_REPLAYED and b.target == f"{ns}.customers"
    ]
    assert replayed and all(b.attempt == 2 for b in replayed)


def test_sandbox_killed_mid_run(harness: SeedingHarness) -> None:
    ns = harness.new_namespace()
    fire = harness.start(ns, pause="1.5")
    run_key = harness.client.get_run(fire.run_id).run_key
    harness.wait_for_ledger(run_key, f"{ns}.customers")
    harness.kill_container(fire.run_id)
    run = harness.wait(fire.run_id)
    assert run.state == SUCCESS, harness.logs(run.id)
    assert attempts(run) == ["KILLED", "SUCCEEDED"]
    harness.check_exactly_once(run, ns, customers=120)


def test_postgres_connection_terminated_mid_batch(harness: SeedingHarness) -> None:
    ns = harness.new_namespace()
    with harness.table_locked(f"{ns}.customers"):
        fire = harness.start(ns)
        waiting = eventually(harness.waiting_backends, timeout=60)
        with psycopg.connect(harness.pg_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", [waiting[0]])
    run = harness.wait(fire.run_id)
    assert run.state == SUCCESS, harness.logs(run.id)
    assert attempts(run) == ["SUCCEEDED"]  # the ledger wrote the batch again, in the same attempt
    harness.check_exactly_once(run, ns, customers=120)


def test_connection_cut_right_after_commit(harness: SeedingHarness) -> None:
    ns = harness.new_namespace()
    fire = harness.start(ns, conn="conn_pg_proxy", pause="1")
    run_key = harness.client.get_run(fire.run_id).run_key
    harness.wait_for_ledger(run_key, f"{ns}.customers")
    harness.proxy.cut_after_commit(times=1)  # the next COMMIT lands, its answer never arrives
    run = harness.wait(fire.run_id)
    assert run.state == SUCCESS, harness.logs(run.id)
    assert harness.proxy.cuts == 1
    assert attempts(run) == ["SUCCEEDED"]
    harness.check_exactly_once(run, ns, customers=120)


@pytest.mark.serial  # every other test's databases live in this server: they must not be running
def test_postgres_restarted_mid_run(harness: SeedingHarness) -> None:
    ctl, cluster = _local_cluster()
    ns = harness.new_namespace()
    fire = harness.start(ns, pause="1.5")
    run_key = harness.client.get_run(fire.run_id).run_key
    harness.wait_for_ledger(run_key, f"{ns}.customers")
    subprocess.run([ctl, *cluster, "restart", "-m", "fast"], check=True, capture_output=True, timeout=120)
    run = harness.wait(fire.run_id)
    assert run.state == SUCCESS, harness.logs(run.id)
    harness.check_exactly_once(run, ns, customers=120)


def _local_cluster() -> tuple[str, list[str]]:
    ctl, listing = shutil.which("pg_ctlcluster"), shutil.which("pg_lsclusters")
    if not ctl or not listing:
        pytest.fail("restarting PostgreSQL needs Debian's pg_ctlcluster (scripts/postgres-up installs it)")
    fields = subprocess.run([listing, "-h"], check=True, capture_output=True, text=True).stdout.split()
    return ctl, fields[:2]  # version, cluster name


@pytest.mark.parametrize(
    ("fault", "seen"),
    [
        ("fail", lambda keys: max(keys.values()) >= 1),
        ("throttle", lambda keys: max(keys.values()) >= 1),
        ("apply_then_hang", lambda keys: max(keys.values()) == 2),  # applied, timed out, sent again
    ],
)
def test_rest_target_faults(harness: SeedingHarness, fault: str, seen: Any) -> None:
    ns = harness.new_namespace()
    path = f"/orders-{fault}"
    if fault == "fail":
        harness.api.fail(path, status=500, times=2)
    elif fault == "throttle":
        harness.api.throttle(path, retry_after_seconds=1, times=1)
    else:
        harness.api.apply_then_hang(path, seconds=2.5, times=1)
    run = harness.wait(harness.start(ns, rest_path=path, rounds="1").run_id)
    assert run.state == SUCCESS, harness.logs(run.id)
    assert harness.api.pending_faults(path) == 0
    assert len(harness.api.requests(path)) > 2  # 2 batches of 10, and the faulted tries
    assert seen(harness.api.keys_seen(path))
    harness.check_exactly_once(run, ns, customers=40, rest_path=path)


def test_a_nondeterministic_script_fails_on_retry_naming_the_call(harness: SeedingHarness) -> None:
    ns = harness.new_namespace()
    fire = harness.start(ns, nondeterministic="1", pause="1.5")
    run_key = harness.client.get_run(fire.run_id).run_key
    harness.wait_for_ledger(run_key, f"{ns}.customers")
    harness.kill_container(fire.run_id)
    run = harness.wait(fire.run_id)
    assert run.state == run_pb2.RUN_STATE_FAILED
    assert run.first_error.reason == run_pb2.FAILURE_REASON_NONDETERMINISTIC
    assert run.first_error.type == "NondeterministicWrite"
    assert f"(insert into {ns}.customers on connection 'conn_pg'), batch 0" in run.first_error.message
    assert attempts(run) == ["KILLED", "NONDETERMINISTIC"]  # and not retried again
    harness.check_exactly_once(run, ns, customers=40, complete=False)


def test_abort_in_the_middle_of_a_batch(harness: SeedingHarness) -> None:
    ns = harness.new_namespace()
    with harness.table_locked(f"{ns}.customers"):
        fire = harness.start(ns)
        eventually(harness.waiting_backends, timeout=60)
        response = harness.client.abort(fire.run_id, "changed my mind")
    run = harness.wait(fire.run_id)
    assert run.state == run_pb2.RUN_STATE_ABORTED, harness.logs(run.id)
    assert response.run.state in (run_pb2.RUN_STATE_ABORTED, run_pb2.RUN_STATE_RUNNING)
    harness.check_exactly_once(run, ns, customers=0, complete=False)
    with psycopg.connect(harness.pg_url) as conn:
        assert conn.execute(f"SELECT count(*) FROM {ns}.customers").fetchone() == (0,)


def test_the_same_key_twice_and_fifty_times_at_once_seed_once(harness: SeedingHarness) -> None:
    ns = harness.new_namespace()
    params = {"ns": ns, "rounds": "1"}
    first = harness.client.run("faults", params, idempotency_key="seed-once")
    again = harness.client.run("faults", params, idempotency_key="seed-once")
    assert (again.id, again.run_id) == (first.id, first.run_id)

    ns2 = harness.new_namespace()
    results: list[str] = []
    lock = threading.Lock()

    def fire() -> None:
        got = harness.client.run("faults", {"ns": ns2, "rounds": "1"}, idempotency_key="fifty").run_id
        with lock:
            results.append(got)

    threads = [threading.Thread(target=fire) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(results) == 50 and len(set(results)) == 1

    with pytest.raises(ClientError) as caught:
        harness.client.run("faults", {"ns": ns, "rounds": "2"}, idempotency_key="seed-once")
    assert caught.value.code == grpc.StatusCode.ALREADY_EXISTS
    assert "seed-once" in caught.value.details

    for run_id, namespace in ((first.run_id, ns), (results[0], ns2)):
        run = harness.wait(run_id)
        assert run.state == SUCCESS, harness.logs(run.id)
        harness.check_exactly_once(run, namespace, customers=40)


def test_coordinator_killed_and_restarted_mid_run(
    docker_client: docker.DockerClient, pg_database: str, tmp_path: Path
) -> None:
    url = sa.make_url(pg_database)
    plain = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with (
        CoordinatorProcess(tmp_path / "coordinator") as coordinator,
        Client(coordinator.address) as client,
        RestTarget() as api,
        TcpProxy(url.host or "127.0.0.1", url.port or 5432) as proxy,
    ):
        h = SeedingHarness(client=client, docker=docker_client, pg_url=plain, api=api, proxy=proxy)
        h.set_up()
        ns = h.new_namespace()
        fire = h.start(ns, pause="1.5")
        run_key = client.get_run(fire.run_id).run_key

        # A follower streams the logs throughout; it must come out with every line once, in order.
        lines: list[int] = []
        ends: list[RunEnded] = []

        def follow() -> None:
            for event in client.stream_logs(fire.run_id, reconnect_seconds=120):
                if isinstance(event, LogEvent):
                    lines.append(event.line.sequence)
                else:
                    ends.append(event)

        follower = threading.Thread(target=follow, daemon=True)
        follower.start()
        h.wait_for_ledger(run_key, f"{ns}.customers")
        eventually(lambda: len(lines) >= 2)
        coordinator.kill()
        coordinator.start()
        run = h.wait(fire.run_id)
        follower.join(60)
        assert run.state == SUCCESS, h.logs(run.id)
        assert len(run.attempts) >= 2
        assert ends and ends[0].run.state == SUCCESS
        assert lines == list(range(1, len(lines) + 1)) and lines[-1] == ends[0].end.last_sequence
        h.check_exactly_once(run, ns, customers=120)
