"""Write batches over the API (ListWriteBatches, the client), ``seedbed run show``, and the client's
idempotency key across a retried call."""

from __future__ import annotations

import json
import threading
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import pytest

from seedbed.api.v1 import run_pb2, run_pb2_grpc, scenario_pb2
from seedbed.cli import main
from seedbed.client import Client, ClientError

# Attempt 1 writes two batches and loses its worker; attempt 2 replays them from the ledger and
# writes one more.
SCRIPT = """\
attempt<2: batch conn_pg customers 1 1 100
attempt<2: batch conn_pg customers 1 2 50
attempt>=2: batch conn_pg customers 1 1 100 replayed
attempt>=2: batch conn_pg customers 1 2 50 replayed
attempt<2: lost worker gone
batch conn_pg orders 2 1 10
print done
"""


def _replayed_run(client: Client) -> str:
    retry = scenario_pb2.RetryPolicy(initial_backoff_seconds=0.05, maximum_backoff_seconds=0.1)
    client.put_scenario("ledgered", script=SCRIPT, settings=scenario_pb2.ScenarioSettings(retry_policy=retry))
    run_id = client.run("ledgered").run_id
    assert client.wait(run_id).state == run_pb2.RUN_STATE_SUCCESS
    return run_id


def test_batches_are_listed_in_order_across_pages(fake_coordinator: tuple[Any, Client]) -> None:
    _, client = fake_coordinator
    run_id = _replayed_run(client)
    batches = client.write_batches(run_id)
    assert [(b.attempt, b.target, b.call, b.batch, b.rows, b.status) for b in batches] == [
        (1, "customers", 1, 1, 100, run_pb2.WRITE_BATCH_STATUS_APPLIED),
        (1, "customers", 1, 2, 50, run_pb2.WRITE_BATCH_STATUS_APPLIED),
        (2, "customers", 1, 1, 100, run_pb2.WRITE_BATCH_STATUS_REPLAYED),
        (2, "customers", 1, 2, 50, run_pb2.WRITE_BATCH_STATUS_REPLAYED),
        (2, "orders", 2, 1, 10, run_pb2.WRITE_BATCH_STATUS_APPLIED),
    ]
    assert all(b.connection_id == "conn_pg" and b.operation == "insert" for b in batches)
    assert all(len(b.content_hash) == 64 and b.HasField("time") for b in batches)
    assert batches[0].content_hash == batches[2].content_hash
    pages, token = [], ""
    while True:
        page = client._runs.ListWriteBatches(
            run_pb2.ListWriteBatchesRequest(run_id=run_id, page_size=2, page_token=token)
        )
        pages.append([(b.attempt, b.call, b.batch) for b in page.batches])
        token = page.next_page_token
        if not token:
            break
    assert pages == [[(1, 1, 1), (1, 1, 2)], [(2, 1, 1), (2, 1, 2)], [(2, 2, 1)]]


def test_list_write_batches_errors(fake_coordinator: tuple[Any, Client]) -> None:
    _, client = fake_coordinator
    with pytest.raises(ClientError) as info:
        client.write_batches("run_doesnotexist")
    assert info.value.code == grpc.StatusCode.NOT_FOUND and "run_doesnotexist" in info.value.details
    client.put_scenario("quiet", script="print x")
    run_id = client.run("quiet").run_id
    assert client.write_batches(run_id) == []
    for request in (
        run_pb2.ListWriteBatchesRequest(run_id=run_id, page_token="garbage"),
        run_pb2.ListWriteBatchesRequest(run_id=run_id, page_size=5000),
        run_pb2.ListWriteBatchesRequest(run_id=""),
    ):
        with pytest.raises(grpc.RpcError) as rpc:
            client._runs.ListWriteBatches(request)
        assert rpc.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_run_show_prints_attempts_and_targets(
    fake_coordinator: tuple[Any, Client], capsys: pytest.CaptureFixture[str]
) -> None:
    coordinator, client = fake_coordinator
    run_id = _replayed_run(client)
    assert main(["--address", coordinator.address, "run", "show", run_id]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["run", run_id] and out[1].split() == ["state", "SUCCESS"]
    assert ["attempts", "2"] in [line.split() for line in out]
    header = next(i for i, line in enumerate(out) if line.startswith("ATTEMPT"))
    assert out[header].split() == ["ATTEMPT", "OUTCOME", "NODE", "PID", "STARTED", "TOOK", "ERROR"]
    rows = [line.split() for line in out[header + 1 :] if line.split()[:1] in (["1"], ["2"])]
    first, second = rows[0], rows[1]  # an error may wrap below its row
    assert first[:3] == ["1", "INFRASTRUCTURE", "fake"] and "WorkerLost:" in first
    assert second[:3] == ["2", "SUCCEEDED", "fake"] and first[3].isdigit()
    targets = out[out.index(next(line for line in out if line.startswith("CONNECTION"))) + 1 :]
    assert [line.split() for line in targets] == [
        ["conn_pg", "insert", "customers", "2", "2", "150"],
        ["conn_pg", "insert", "orders", "1", "0", "10"],
    ]

    assert main(["--address", coordinator.address, "run", "show", run_id, "-o", "json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["id"] == run_id  # the contract's Run, and its write batches
    assert [a["outcome"] for a in document["attempts"]] == ["INFRASTRUCTURE", "SUCCEEDED"]
    assert len(document["write_batches"]) == 5


def test_run_show_does_not_break_running_files(
    fake_coordinator: tuple[Any, Client], capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: Any
) -> None:
    coordinator, _ = fake_coordinator
    address = ["--address", coordinator.address]
    assert main([*address, "run", "show", "run_nope"]) == 5
    assert "NOT_FOUND" in capsys.readouterr().err
    monkeypatch.chdir(tmp_path)
    assert main([*address, "run", "show"]) == 2
    assert "Missing argument 'RUN'" in capsys.readouterr().err
    (tmp_path / "show").write_text("print from a file named show\n")
    assert main([*address, "run", "submit", "show"]) == 0
    assert capsys.readouterr().out == "from a file named show\n"
    assert main([*address, "run", "./show", "--no-follow"]) == 0  # the old `seedbed run FILE`
    assert "is now `seedbed run submit ./show`" in capsys.readouterr().err
    assert main([*address, "run", "submit", "a.py", "b.py"]) == 2
    assert "unexpected extra argument" in capsys.readouterr().err.lower()


class _FlakyRuns(run_pb2_grpc.RunServiceServicer):
    """Answers UNAVAILABLE to the first RunScenario call, as if the answer had been lost."""

    def __init__(self) -> None:
        self.keys: list[str] = []
        self._lock = threading.Lock()

    def RunScenario(self, request: run_pb2.RunScenarioRequest, context: grpc.ServicerContext) -> Any:
        with self._lock:
            self.keys.append(request.idempotency_key)
            first = len(self.keys) == 1
        if first:
            context.abort(grpc.StatusCode.UNAVAILABLE, "connection reset")
        return run_pb2.RunScenarioResponse(fire=run_pb2.TriggerFire(id="fire_1", run_id="run_1"))


def test_a_retried_run_call_reuses_its_idempotency_key() -> None:
    servicer = _FlakyRuns()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    run_pb2_grpc.add_RunServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        with Client(f"127.0.0.1:{port}") as client:
            assert client.run("scn_any").run_id == "run_1"
            assert client.run("scn_any", idempotency_key="mine").run_id == "run_1"
    finally:
        server.stop(None)
    generated, again, mine = servicer.keys
    assert generated and generated == again and mine == "mine"
