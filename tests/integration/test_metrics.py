"""The coordinator's metrics scraped over HTTP (``GET /metrics``) while real runs move them: finished
runs by outcome, the attempt histograms, API calls by method and code, queued and active runs from
the store, reporter deliveries, a scrape during a burst of 50 runs, and, on the real stack (Ray,
Docker, a PostgreSQL target), rows and batches per connection, dropped log lines and the wait before
a script."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import grpc
import httpx
import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from seedbed.api.v1 import connection_pb2, run_pb2, run_pb2_grpc, scenario_pb2
from seedbed.client import Client, ClientError
from seedbed.coordinator import running_in_thread
from seedbed.coordinator.fakes import FakeDispatcher
from tests.conftest import auth_metadata, eventually, scratch_pg, settings_for

pytestmark = pytest.mark.integration

# A scrape answers within this or fails the test: the store's counts are waited for 0.5 s at most.
SCRAPE_TIMEOUT = httpx.Timeout(10.0)
CONCURRENT = scenario_pb2.ScenarioSettings(overlap_policy=scenario_pb2.OVERLAP_POLICY_ALLOW_CONCURRENT)


class Scrape:
    """One answer of GET /metrics, parsed."""

    def __init__(self, coordinator: Any) -> None:
        answer = httpx.get(f"http://{coordinator.metrics_address}/metrics", timeout=SCRAPE_TIMEOUT)
        answer.raise_for_status()
        self.samples: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
        for family in text_string_to_metric_families(answer.text):
            for sample in family.samples:
                self.samples[(sample.name, frozenset(sample.labels.items()))] = sample.value

    def __call__(self, name: str, **labels: str) -> float:
        """The sample's value; 0 when the series does not exist (yet)."""
        return self.samples.get((name, frozenset(labels.items())), 0.0)


def _run(client: Client, scenario: str, script: str, settings: Any = CONCURRENT) -> str:
    client.put_scenario(scenario, script=script, settings=settings)
    return client.run(scenario).run_id


def test_runs_attempts_batches_and_api_calls_move_the_metrics(fake_coordinator: tuple[Any, Client]) -> None:
    coord, client = fake_coordinator
    assert coord.metrics_address.startswith("127.0.0.1:")
    script = "print hi\nbatch conn_a items 1 1 100\nbatch conn_a items 1 2 40 replayed\nbatch conn_b t 2 1 7"
    ok = client.wait(_run(client, "metrics-ok", script))
    failed = client.wait(_run(client, "metrics-fail", "print before\nfail boom"))
    assert ok.state == run_pb2.RUN_STATE_SUCCESS and failed.state == run_pb2.RUN_STATE_FAILED
    with pytest.raises(ClientError) as missing:
        client.get_run("run_0000000000000000")
    assert missing.value.code == grpc.StatusCode.NOT_FOUND

    def moved() -> Scrape:
        scrape = Scrape(coord)
        assert scrape("seedbed_runs_finished_total", outcome="SUCCESS") == 1
        assert scrape("seedbed_runs_finished_total", outcome="FAILED") == 1
        assert scrape("seedbed_runs", state="SUCCESS") == 1
        assert scrape("seedbed_runs", state="FAILED") == 1
        assert scrape("seedbed_runs_active") == 0 and scrape("seedbed_runs_queued") == 0
        return scrape

    scrape = eventually(moved)
    assert scrape("seedbed_attempt_duration_seconds_count", outcome="SUCCEEDED") == 1
    assert scrape("seedbed_attempt_duration_seconds_count", outcome="SCRIPT_ERROR") == 1
    assert scrape("seedbed_attempt_start_seconds_count") == 2
    assert scrape("seedbed_write_batches_total", connection="conn_a", ledger="written") == 1
    assert scrape("seedbed_write_rows_total", connection="conn_a", ledger="written") == 100
    assert scrape("seedbed_write_batches_total", connection="conn_a", ledger="skipped") == 1
    assert scrape("seedbed_write_rows_total", connection="conn_a", ledger="skipped") == 40
    assert scrape("seedbed_write_rows_total", connection="conn_b", ledger="written") == 7
    assert scrape("seedbed_api_calls_total", method="RunScenario", code="OK") == 2
    assert scrape("seedbed_api_calls_total", method="CreateScenario", code="OK") == 2
    assert scrape("seedbed_api_calls_total", method="GetRun", code="NOT_FOUND") == 1


def test_refused_and_unknown_calls_are_counted(fake_coordinator: tuple[Any, Client]) -> None:
    coord, _client = fake_coordinator
    with grpc.insecure_channel(coord.address) as channel:
        runs = run_pb2_grpc.RunServiceStub(channel)
        with pytest.raises(grpc.RpcError) as refused:
            runs.GetRun(run_pb2.GetRunRequest(run_id="run_x"))  # no API key
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
        unknown = channel.unary_unary("/seedbed.api.v1.RunService/NoSuchMethod")
        with pytest.raises(grpc.RpcError) as unimplemented:
            unknown(b"", metadata=auth_metadata())
        assert unimplemented.value.code() == grpc.StatusCode.UNIMPLEMENTED

    def counted() -> bool:
        scrape = Scrape(coord)
        assert scrape("seedbed_api_calls_total", method="GetRun", code="UNAUTHENTICATED") == 1
        assert scrape("seedbed_api_calls_total", method="unknown", code="UNIMPLEMENTED") == 1
        return True

    eventually(counted)


def test_queued_and_active_runs_come_from_the_store(fake_coordinator: tuple[Any, Client]) -> None:
    coord, client = fake_coordinator
    one_at_a_time = scenario_pb2.ScenarioSettings(overlap_policy=scenario_pb2.OVERLAP_POLICY_QUEUE_ALL)
    client.put_scenario("metrics-queue", script="sleep 60", settings=one_at_a_time)
    fires = [client.run("metrics-queue") for _ in range(3)]
    running = fires[0].run_id
    eventually(lambda: client.get_run(running).state == run_pb2.RUN_STATE_RUNNING)

    def gauges() -> bool:
        scrape = Scrape(coord)
        assert scrape("seedbed_runs_active") == 1
        assert scrape("seedbed_runs", state="RUNNING") == 1
        assert scrape("seedbed_runs_queued") == 2  # two fires waiting behind the running run
        return True

    eventually(gauges)
    client.abort(running, "metrics test done")


@pytest.fixture
def webhook() -> Iterator[str]:
    """A local receiver: /ok answers 200, anything else 500."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            self.send_response(200 if self.path == "/ok" else 500)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_reporter_deliveries_are_counted_by_kind_event_and_status(
    store_url: str, tmp_path: Path, webhook: str
) -> None:
    settings = settings_for(
        store_url,
        tmp_path,
        reporter_initial_backoff_seconds=0.01,
        reporter_max_tries=2,
        webhook_allowed_hosts=["127.0.0.1"],  # the local receiver: internal, so listed
    )
    reporters = [
        scenario_pb2.Reporter(webhook=scenario_pb2.WebhookTarget(url=f"{webhook}/ok")),
        scenario_pb2.Reporter(webhook=scenario_pb2.WebhookTarget(url=f"{webhook}/down")),
    ]
    with running_in_thread(settings, FakeDispatcher()) as coord, Client(coord.address) as client:
        client.put_scenario(
            "metrics-reports", script="print hi", settings=scenario_pb2.ScenarioSettings(reporters=reporters)
        )
        client.wait(client.run("metrics-reports").run_id)

        def counted() -> bool:
            scrape = Scrape(coord)
            for status in ("DELIVERED", "FAILED"):
                labels = {"kind": "webhook", "event": "RUN_FINISHED", "status": status}
                assert scrape("seedbed_reporter_deliveries_total", **labels) == 1
            return True

        eventually(counted)


def test_a_scrape_during_a_burst_of_50_runs_answers_each_time(fake_coordinator: tuple[Any, Client]) -> None:
    coord, client = fake_coordinator
    client.put_scenario("metrics-burst", script="sleep 0.5\nbatch conn_burst t 1 1 10", settings=CONCURRENT)
    done = threading.Event()
    scrapes: list[Scrape] = []

    def scrape_until_done() -> None:
        while not done.is_set():
            scrapes.append(Scrape(coord))  # raises (and fails the test) past SCRAPE_TIMEOUT

    with ThreadPoolExecutor(max_workers=17) as pool:
        scraper = pool.submit(scrape_until_done)
        fires = list(pool.map(lambda _n: client.run("metrics-burst"), range(50)))
        runs = [client.wait(fire.run_id) for fire in fires]
        done.set()
        scraper.result()
    assert all(run.state == run_pb2.RUN_STATE_SUCCESS for run in runs)
    assert len(scrapes) > 1

    def totals() -> Scrape:
        scrape = Scrape(coord)
        assert scrape("seedbed_runs_finished_total", outcome="SUCCESS") == 50
        assert scrape("seedbed_runs", state="SUCCESS") == 50
        assert scrape("seedbed_runs_active") == 0 and scrape("seedbed_runs_queued") == 0
        return scrape

    scrape = eventually(totals)
    assert scrape("seedbed_attempt_duration_seconds_count", outcome="SUCCEEDED") == 50
    assert scrape("seedbed_attempt_start_seconds_count") == 50
    assert scrape("seedbed_write_batches_total", connection="conn_burst", ledger="written") == 50
    assert scrape("seedbed_write_rows_total", connection="conn_burst", ledger="written") == 500
    assert scrape("seedbed_api_calls_total", method="RunScenario", code="OK") == 50
    # What the scrapes saw never went backwards while the runs finished.
    finished = [s("seedbed_runs_finished_total", outcome="SUCCESS") for s in scrapes]
    assert finished == sorted(finished)


# -- the real stack ---------------------------------------------------------------------------------

ITEMS = "CREATE TABLE items (id integer PRIMARY KEY, name text NOT NULL)"
ROWS = 2500
SCRIPT = f"""
from seedbed.sdk import Seedbed

db = Seedbed().connection("conn_items")
db.insert("items", [{{"id": n, "name": f"item {{n}}"}} for n in range({ROWS})])
for n in range(150):
    print("line", n)
"""


def _has_queue_wait_span(address: str, run_id: str) -> bool:
    with grpc.insecure_channel(address) as channel:
        trace = run_pb2_grpc.RunServiceStub(channel).GetRunTrace(
            run_pb2.GetRunTraceRequest(run_id=run_id), metadata=auth_metadata()
        )
    return any(span.name == "queue wait" for span in trace.spans)


def test_the_real_stack_counts_rows_batches_dropped_lines_and_the_wait(
    ray_session: None, store_url: str, tmp_path: Path
) -> None:
    settings = settings_for(store_url, tmp_path, abort_grace_seconds=20, max_log_lines=100)
    with (
        scratch_pg(ITEMS) as target,
        running_in_thread(settings) as coord,
        Client(coord.address) as client,
    ):
        client.create_connection(
            connection_pb2.CreateConnectionRequest(
                connection_id="conn_items", kind=connection_pb2.CONNECTION_KIND_POSTGRESQL, url=target
            )
        )
        run = client.wait(_run(client, "metrics-items", SCRIPT))
        assert run.state == run_pb2.RUN_STATE_SUCCESS, run.first_error
        assert run.dropped_log_lines > 0
        with psycopg.connect(target) as conn:
            assert conn.execute("SELECT count(*) FROM items").fetchone() == (ROWS,)
        batches = [b for b in client.write_batches(run.id) if b.connection_id == "conn_items"]

        def moved() -> Scrape:
            scrape = Scrape(coord)
            assert scrape("seedbed_runs_finished_total", outcome="SUCCESS") == 1
            return scrape

        scrape = eventually(moved)
        assert scrape("seedbed_write_rows_total", connection="conn_items", ledger="written") == ROWS
        assert scrape("seedbed_write_batches_total", connection="conn_items", ledger="written") == len(
            batches
        )
        assert len(batches) >= 1
        assert scrape("seedbed_log_lines_dropped_total") == run.dropped_log_lines
        assert scrape("seedbed_attempt_duration_seconds_count", outcome="SUCCEEDED") == 1
        assert scrape("seedbed_attempt_start_seconds_count") == 1
        # The wait is split when the worker said when its task began (its "queue wait" span).
        split = 1 if _has_queue_wait_span(coord.address, run.id) else 0
        assert scrape("seedbed_attempt_queue_wait_seconds_count") == split
        assert scrape("seedbed_sandbox_start_seconds_count") == split
        parts = scrape("seedbed_attempt_queue_wait_seconds_sum") + scrape("seedbed_sandbox_start_seconds_sum")
        assert parts == pytest.approx(split * scrape("seedbed_attempt_start_seconds_sum"))
