"""The compose cluster (deploy/compose/), for real: PostgreSQL as the store, the coordinator, a Ray
head and two Ray worker nodes in containers, sandboxes on this machine's Docker engine.

Brought up once for the module with `seedbed deploy up` (images built offline when missing), then:
started twice is a no-op and the REST API answers on its published port; the classic scenario and a
sharded bulk seed run on both worker nodes; a worker node killed mid-run leaves every row written
once; a coordinator restarted mid-run loses nothing and a log follower resumes with no gap; a cluster
without worker nodes says why runs wait; and `seedbed deploy down` leaves no container, network or
volume behind.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import docker
import docker.models.containers
import httpx
import pytest

from seedbed.api.v1 import run_pb2, scenario_pb2
from seedbed.client import Client, LogEvent, RunEnded
from tests.cluster._compose import BULK, SHOP, Cluster, count, prepare_targets, running_cluster, tail

pytestmark = pytest.mark.integration

# Runs of one scenario may overlap here (several at once spread over the nodes); an attempt lost
# with its node is retried.
SETTINGS = scenario_pb2.ScenarioSettings(
    overlap_policy=scenario_pb2.OVERLAP_POLICY_ALLOW_CONCURRENT,
    retry_policy=scenario_pb2.RetryPolicy(maximum_attempts=4, initial_backoff_seconds=1),
)
NAP = "import time\nprint('napping', flush=True)\ntime.sleep(4)\n"
# Each line of this scenario is one write batch of its own, so a restart mid-run finds part of it
# written (the ledger must skip that part) and the log has lines on both sides of the restart.
STEADY = """
import time
from seedbed.sdk import Seedbed, params

dm = Seedbed()
db = dm.connection("conn_postgres")
customers = dm.template("tmpl_customer")
# One set continued round after round (one seed, the next start): its emails are unique across
# rounds. Forty sets of their own would each be unique only within itself, and the shop's email
# column is UNIQUE (about one run in four would collide).
for i in range(int(params.get("rounds", "40"))):
    db.insert(table="customers", rows=customers.rows(10, seed=11, start=i * 10))
    print(f"round {i} written")
    time.sleep(0.5)
"""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    # Never skipped: CI has Docker and Debian's docker-compose; a machine without them fails here.
    with running_cluster(tmp_path_factory.mktemp("cluster"), "seedbedci", janitor_seconds=5) as cluster:
        prepare_targets(cluster)
        yield cluster


def _state(run: run_pb2.Run) -> str:
    return run_pb2.RunState.Name(run.state)


def _run(client: Client, scenario: str, script: str, params: dict[str, str] | None = None) -> str:
    client.put_scenario(scenario, script=script, settings=SETTINGS)
    fire = client.run(scenario, params or {})
    assert fire.run_id, fire
    return str(fire.run_id)


def test_up_again_changes_nothing(cluster: Cluster) -> None:
    before = {c.id for c in cluster.containers()}
    again = cluster.deploy("up", "--wait", "300")
    assert again.returncode == 0, tail(again)
    after = {c.id for c in cluster.containers()}
    assert before == after and len(after) == 5, (before, after)  # store, coordinator, head, 2 workers
    endpoints = cluster.endpoints
    for url in (endpoints.grpc, endpoints.rest, endpoints.mcp, endpoints.metrics):
        assert url in again.stdout, again.stdout
    # The REST face on its published port: health needs no key, the API takes the admin key.
    assert httpx.get(f"{endpoints.rest}/healthz", timeout=10).json() == {"status": "ok"}
    admin = {"Authorization": f"Bearer {cluster.values['SEEDBED_ADMIN_API_KEY']}"}
    runs = httpx.get(f"{endpoints.rest}/runs", params={"page_size": 1}, headers=admin, timeout=30)
    assert runs.status_code == 200 and "runs" in runs.json(), runs.text
    status = cluster.deploy("status")
    assert status.returncode == 0, tail(status)
    assert endpoints.rest in status.stdout and endpoints.mcp in status.stdout, tail(status)


def test_classic_and_bulk_runs_spread_over_both_worker_nodes(cluster: Cluster) -> None:
    with cluster.client() as client:
        # The classic scenario, next to five runs that hold a sandbox for a few seconds: six at once
        # on 2 x 2 slots cannot all run on one node.
        runs = [_run(client, "classic", (SHOP / "classic.py").read_text())]
        runs += [_run(client, "nap", NAP) for _ in range(5)]
        ended = [_wait(client, run_id) for run_id in runs]
        assert [_state(r) for r in ended] == ["RUN_STATE_SUCCESS"] * 6, [r.first_error for r in ended]
        nodes = {client.get_run(run_id).attempts[-1].node for run_id in runs}
        assert len(nodes) == 2, f"the runs' attempts ran on {nodes}"

        sizes = {"customers": "100000", "orders": "200000"}
        bulk = _run(client, "bulk", (BULK / "seed.py").read_text(), sizes)
        assert _state(_wait(client, bulk)) == "RUN_STATE_SUCCESS"
        trace = client.get_run_trace(bulk)
    shards = [span for span in trace.spans if span.name.startswith("shard ")]
    assert len(shards) == 30, [span.name for span in trace.spans]  # 10 + 20 shards of 10,000 rows
    ray_nodes = {span.attributes.get("seedbed.ray.node_id") for span in shards}
    assert len(ray_nodes) == 2 and None not in ray_nodes, ray_nodes
    assert count(cluster, "shop", "SELECT count(*) FROM customers") == 100
    assert count(cluster, "shop", "SELECT count(*) FROM orders") == 500
    assert count(cluster, "warehouse", "SELECT count(*) FROM customers") == 100_000
    assert count(cluster, "warehouse", "SELECT count(*) FROM orders") == 200_000
    orphans = "SELECT count(*) FROM orders o LEFT JOIN customers c ON c.id = o.customer_id WHERE c.id IS NULL"
    assert count(cluster, "warehouse", orphans) == 0


def _until(check: Callable[[], object], seconds: float, what: str) -> None:
    give_up = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < give_up, f"waited {seconds:g}s for {what}"
        time.sleep(0.2)


def _wait(client: Client, run_id: str, seconds: float = 600) -> run_pb2.Run:
    """The run once it ended; fails past `seconds` instead of waiting for ever."""
    box: list[run_pb2.Run] = []
    waiter = threading.Thread(target=lambda: box.append(client.wait(run_id)), daemon=True)
    waiter.start()
    waiter.join(seconds)
    assert box, f"run {run_id} did not end within {seconds:g}s: {client.get_run(run_id)}"
    return box[0]


def _node_container(cluster: Cluster, hostname: str) -> docker.models.containers.Container:
    for container in cluster.containers("ray-worker"):
        if container.attrs["Config"]["Hostname"] == hostname:
            return container
    raise AssertionError(f"no worker container has the host name {hostname!r}")


def _why(run: run_pb2.Run) -> str:
    """A run's own account of how it ended: its first error, then every attempt with its outcome,
    node, fencing token and error (what a failed assertion needs to tell a flaky failure's cause)."""

    def error(details: run_pb2.ErrorDetails) -> str:
        reason = run_pb2.FailureReason.Name(details.reason)
        return f"{reason} {details.type or '-'}: {details.message or '-'}"

    lines = [f"run {run.id} ended {_state(run)}; first error {error(run.first_error)}"]
    lines += [
        f"  attempt {a.number} {a.state} {a.outcome or '-'} on {a.node or '?'} "
        f"(token {a.fencing_token}, task {a.task_id or '?'}): {error(a.error)}"
        for a in run.attempts
    ]
    return "\n".join(lines)


def _wait_for_attempt(client: Client, run_id: str, seconds: float = 120) -> run_pb2.Attempt:
    give_up = time.monotonic() + seconds
    while True:
        run = client.get_run(run_id)
        if run.attempts and run.attempts[-1].node:
            return run.attempts[-1]
        assert time.monotonic() < give_up, f"run {run_id} has not started: {run}"
        time.sleep(0.5)


def test_a_worker_node_killed_mid_run_leaves_every_row_once(cluster: Cluster) -> None:
    with cluster.store("warehouse") as conn:
        conn.execute("TRUNCATE orders, customers")
    with cluster.client() as client:
        run_id = _run(
            client, "bulk", (BULK / "seed.py").read_text(), {"customers": "200000", "orders": "600000"}
        )
        attempt = _wait_for_attempt(client, run_id)
        time.sleep(3)  # into the shards
        victim = _node_container(cluster, attempt.node)
        victim.kill()
        try:
            run = _wait(client, run_id)
        finally:
            victim.start()
        assert _state(run) == "RUN_STATE_SUCCESS", run.first_error
        assert len(run.attempts) >= 2, "the killed node's attempt should have been retried"
    assert count(cluster, "warehouse", "SELECT count(*) FROM customers") == 200_000
    assert count(cluster, "warehouse", "SELECT count(*) FROM orders") == 600_000
    cluster.wait_for_workers(2)


def test_a_coordinator_restarted_mid_run_loses_nothing(cluster: Cluster) -> None:
    with cluster.store("shop") as conn:
        conn.execute("TRUNCATE orders, customers")
    seen: list[int] = []
    ended: list[run_pb2.Run] = []
    with cluster.client() as client:
        run_id = _run(client, "steady", STEADY, {"rounds": "40"})

        def follow() -> None:
            with cluster.client() as follower:
                for event in follower.stream_logs(run_id, reconnect_seconds=300):
                    if isinstance(event, LogEvent):
                        seen.append(event.line.sequence)
                    elif isinstance(event, RunEnded):
                        ended.append(event.run)

        follower = threading.Thread(target=follow, daemon=True)
        follower.start()
        _wait_for_attempt(client, run_id)
        _until(lambda: len(seen) >= 10 or ended, 120, "ten log lines of the steady run")
        assert not ended, f"the run ended before the restart: {ended}"
        (coordinator,) = cluster.containers("coordinator")
        coordinator.restart(timeout=10)
        follower.join(timeout=300)
        assert not follower.is_alive(), "the log follower never saw the run end"
        # The stream's terminal event may carry less than the stored run: read it back in full.
        final = client.get_run(run_id)
    assert ended and _state(ended[0]) == "RUN_STATE_SUCCESS", _why(final)
    assert seen == list(range(1, len(seen) + 1)), f"gaps or repeats in the log: {seen}"
    assert count(cluster, "shop", "SELECT count(*) FROM customers") == 400


def test_without_worker_nodes_a_run_says_why_it_waits(cluster: Cluster) -> None:
    for container in cluster.containers("ray-worker"):
        container.stop(timeout=20)
    cluster.wait_for_workers(0)
    with cluster.client() as client:
        run_id = _run(client, "nap", NAP)
        texts: list[str] = []

        def follow() -> None:
            with cluster.client() as follower:
                for event in follower.stream_logs(run_id, reconnect_seconds=300):
                    if isinstance(event, LogEvent):
                        texts.append(event.line.text)

        threading.Thread(target=follow, daemon=True).start()
        _until(lambda: any("waiting for a worker" in t for t in texts), 120, "the run to say why it waits")
        reason = next(t for t in texts if "waiting for a worker" in t)
        assert "no Ray worker node with sandbox slots has joined" in reason, reason
        for container in cluster.containers("ray-worker", all_states=True):
            container.start()
        assert _state(_wait(client, run_id)) == "RUN_STATE_SUCCESS"


def test_down_leaves_nothing_behind(cluster: Cluster) -> None:
    with cluster.client() as client:
        run_ids = {run.id for run in client.list_runs("", 100)}
    down = cluster.deploy("down")
    assert down.returncode == 0, tail(down)
    engine = docker.from_env()
    label = {"label": [f"com.docker.compose.project={cluster.project}"]}
    assert engine.containers.list(all=True, filters=label) == []
    assert engine.networks.list(filters=label) == []
    assert engine.volumes.list(filters=label) == []
    sandboxes = [
        c for c in engine.containers.list(all=True, filters={"label": "seedbed.run"})
        if c.labels.get("seedbed.run") in run_ids
    ]  # fmt: skip
    assert sandboxes == [], [c.name for c in sandboxes]
