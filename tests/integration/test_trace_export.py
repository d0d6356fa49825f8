"""A run's whole trace over OTLP/gRPC, against the real stack: a real coordinator (store, gRPC), real
Ray, a real Docker sandbox, a real PostgreSQL target, and a real OTLP/gRPC receiver on loopback
(opentelemetry-proto's service definitions). Every span arrives once, in one trace, with a parent
that arrived too, from the RunScenario call down to each batch the script wrote."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest

from seedbed.api.v1 import connection_pb2, run_pb2
from seedbed.client import Client
from seedbed.coordinator import running_in_thread
from tests.conftest import eventually, settings_for
from tests.faults.otlp import OtlpReceiver, ReceivedSpan

SCRIPT = """\
from seedbed.sdk import Seedbed

dm = Seedbed()
db = dm.connection("conn_traced")
with dm.step("schema"):
    db.execute("CREATE TABLE IF NOT EXISTS people (id int PRIMARY KEY, name text)")
with dm.step("people"):
    rows = [{"id": i, "name": f"person {i}"} for i in range(25)]
    db.insert("people", rows)
    dm.log.info("seeded", rows=len(rows))
print("done")
"""


def test_the_real_stack_exports_one_whole_tree(
    ray_session: None, pg_database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "100")
    with OtlpReceiver() as receiver:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
        settings = settings_for(f"sqlite+aiosqlite:///{tmp_path / 's.db'}", tmp_path)
        with running_in_thread(settings) as coordinator, Client(coordinator.address) as client:
            client.create_connection(
                connection_pb2.CreateConnectionRequest(
                    connection_id="conn_traced",
                    kind=connection_pb2.CONNECTION_KIND_POSTGRESQL,
                    url=pg_database.replace("postgresql+psycopg://", "postgresql://", 1),
                )
            )
            client.put_scenario("traced", script=SCRIPT)
            run = client.wait(client.run("traced").run_id)
            assert run.state == run_pb2.RUN_STATE_SUCCESS, run.first_error

            def whole() -> list[ReceivedSpan]:
                spans = [s for s in receiver.spans() if s.trace_id == run.trace_id]
                names = {s.name for s in spans}
                assert {"run", "attempt 1", "script", "step people"} <= names, names
                return spans

            spans = eventually(whole, timeout=30)
            kept = client.get_run_trace(run.id)
    by_id = {s.span_id: s for s in spans}
    assert len(by_id) == len(spans)  # each span once
    roots = [s for s in spans if s.parent_span_id not in by_id]
    assert [(s.name, s.parent_span_id) for s in roots] == [("/seedbed.api.v1.RunService/RunScenario", "")]

    def chain(span: ReceivedSpan) -> list[str]:
        names = []
        while span.parent_span_id:
            span = by_id[span.parent_span_id]
            names.append(span.name)
        return names

    batches = [s for s in spans if s.attributes.get("db.collection.name") == "people"]
    assert batches
    for batch in batches:
        assert batch.service == "seedbed-worker"
        assert batch.attributes["db.system.name"] == "postgresql"
        above = chain(batch)
        assert above[0] == "insert" and above[1] == "step people" and above[2] == "script"
        assert above[-4:] == ["attempt 1", "run", "fire", "/seedbed.api.v1.RunService/RunScenario"]
    assert sum(int(b.attributes["seedbed.rows"]) for b in batches) == 25
    # What was exported is what the store kept.
    assert {s.span_id for s in kept.spans} == set(by_id)
    with psycopg.connect(pg_database.replace("postgresql+psycopg://", "postgresql://", 1)) as conn:
        assert conn.execute("SELECT count(*) FROM people").fetchone() == (25,)


def test_a_run_of_100000_calls_keeps_a_capped_trace_and_succeeds(ray_session: None, tmp_path: Path) -> None:
    # One store is enough here (about a minute of calls): the cap is the store's, tested on both in
    # tests/unit/test_run_traces.py.
    settings = settings_for(f"sqlite+aiosqlite:///{tmp_path / 's.db'}", tmp_path)
    with running_in_thread(settings) as coord, Client(coord.address) as client:
        _chatty(coord, client)


def _chatty(coord: Any, client: Client) -> None:
    script = (
        "from seedbed.sdk import Seedbed, _context\n"
        "dm = Seedbed()\n"
        "for n in range(10):\n"
        "    with dm.step(f'chunk {n}'):\n"
        "        for _ in range(10_000):\n"
        "            _context.call('stream.close', {'handle': 'nothing'})\n"
        "print('all called')\n"
    )
    client.put_scenario("chatty", script=script)
    run = client.wait(client.run("chatty").run_id)
    assert run.state == run_pb2.RUN_STATE_SUCCESS, run.first_error
    trace = client.get_run_trace(run.id)
    cap = coord.settings.max_trace_spans
    worker = [s for s in trace.spans if s.service == "seedbed-worker"]
    assert len(worker) <= cap + 10  # the steps past the cap are kept all the same
    assert {f"step chunk {n}" for n in range(10)} <= {s.name for s in worker}
    assert trace.dropped_spans >= 100_000 - cap
    assert f"{cap}" in trace.note and "SEEDBED_MAX_TRACE_SPANS" in trace.note
