"""The agent's memory budget and the end of an attempt, without a sandbox: the budget's accounting,
buffers and rows held against it, queued call frames held and dropped by the channel session, calls
refused once the attempt ended, and SQLite statements aborted by the sink's interrupt."""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

from seedbed.api.v1 import attempt_pb2
from seedbed.worker._sandbox_session import AttemptHooks, RunSession
from seedbed.worker._sandbox_types import SandboxLimits
from seedbed.worker.agent import Agent
from seedbed.worker.agent._budget import MemoryBudget, resident_estimate
from seedbed.worker.agent._buffers import PAGE_BYTES, Buffers
from seedbed.worker.agent._errors import AttemptEnded, LimitExceeded
from seedbed.worker.sinks import ConnectionSpec, TargetError, open_sink
from tests.conftest import eventually

MiB = 2**20


def frame(**fields: object) -> bytes:
    return json.dumps({"v": 1, **fields}).encode() + b"\n"


def test_the_budget_refuses_past_its_limit_and_names_the_setting() -> None:
    budget = MemoryBudget(10 * MiB)
    budget.hold(6 * MiB, "first")
    with pytest.raises(LimitExceeded) as refused:
        budget.hold(5 * MiB, "reply waiting to be paged in")
    message = str(refused.value)
    assert "the attempt holds 11 MiB in buffers, queued calls and generated rows kept for refs" in message
    assert "the limit is 10 MiB (SEEDBED_AGENT_MEMORY_BYTES)" in message
    assert budget.held == 6 * MiB  # a refused hold counts nothing
    budget.release(6 * MiB)
    budget.hold(10 * MiB, "all of it")


def test_the_estimate_counts_values_not_only_text() -> None:
    # Many small values parse into many objects: the estimate grows with them.
    assert resident_estimate(b"[" + b"{}," * 1000 + b"{}]") > 64 * 1000
    assert resident_estimate("x" * 1000) == 1000 + 64


def test_buffers_hold_what_they_keep_until_consumed_or_taken() -> None:
    budget = MemoryBudget(64 * MiB)
    buffers = Buffers(max_items=1_000_000, budget=budget)
    handle = buffers.put(None, ["a" * 1000] * 100)["handle"]
    buffers.put(handle, ["b" * 1000] * 100)
    held = budget.held
    assert held > 200 * 1000
    assert len(buffers.resolve({"$buffer": handle})) == 200
    assert budget.held == 0
    # A reply larger than a page is parked, and held until the SDK has paged it in.
    rows = [{"text": "r" * 10_000, "n": i} for i in range(3 * PAGE_BYTES // 10_000)]
    parked = buffers.reply(rows)
    assert "$buffer" in parked and budget.held > 3 * PAGE_BYTES
    while not buffers.take(parked["$buffer"])["done"]:
        pass
    assert budget.held == 0


def test_a_buffer_past_the_budget_is_refused() -> None:
    buffers = Buffers(max_items=1_000_000, budget=MemoryBudget(1 * MiB))
    handle = buffers.put(None, ["x" * 1000] * 500)["handle"]
    with pytest.raises(LimitExceeded, match="SEEDBED_AGENT_MEMORY_BYTES"):
        buffers.put(handle, ["x" * 1000] * 600)
    assert len(buffers.resolve({"$buffer": handle})) == 500


class _SlowHandler:
    """A call handler with the agent's hooks: the first call blocks until released."""

    def __init__(self, budget: int) -> None:
        self.budget = MemoryBudget(budget)
        self.release = threading.Event()
        self.served: list[str] = []
        self.ended = False

    def __call__(self, op: str, args: Any) -> Any:
        if op == "slow":
            self.release.wait(10)
        self.served.append(op)
        return op

    def hold_call(self, raw: bytes) -> int:
        size = len(raw)
        self.budget.hold(size, "queued call")
        return size

    def release_call(self, held: int) -> None:
        self.budget.release(held)

    def end(self) -> None:
        self.ended = True
        self.release.set()

    def notes(self) -> list[tuple[str, str]]:
        return []


def test_queued_frames_are_held_and_refused_past_the_budget() -> None:
    handler = _SlowHandler(budget=2500)
    assert isinstance(handler, AttemptHooks)
    session = RunSession(SandboxLimits(), on_call=handler, background_calls=True)
    big = {"items": ["x" * 1000]}  # a frame of about 1,050 bytes: two fit the budget, not three
    replies = session.feed(
        1,
        frame(t="call", id=1, op="slow", args={})
        + frame(t="call", id=2, op="queued", args=big)
        + frame(t="call", id=3, op="queued", args=big),
    )
    assert replies == []
    (refused,) = session.feed(1, frame(t="call", id=4, op="queued", args=big))
    reply = json.loads(refused)
    assert reply["id"] == 4 and reply["error"]["type"] == "LimitExceeded", reply
    handler.release.set()
    eventually(lambda: handler.served == ["slow", "queued", "queued"])
    eventually(lambda: handler.budget.held == 0)
    session.close()


def test_the_end_drops_queued_calls_and_tells_the_handler() -> None:
    handler = _SlowHandler(budget=10 * MiB)
    session = RunSession(SandboxLimits(), on_call=handler, background_calls=True)
    session.feed(1, frame(t="call", id=1, op="slow", args={}))
    for i in range(2, 20):
        session.feed(1, frame(t="call", id=i, op="queued", args={}))
    session.end_calls()
    assert handler.ended
    # Frames arriving after the end (drained from a killed sandbox) are not queued either.
    assert session.feed(1, frame(t="call", id=99, op="late", args={})) == []
    eventually(lambda: handler.budget.held == 0)
    assert "queued" not in handler.served and "late" not in handler.served
    session.close()


def _agent(tmp_path: Path, **limits: int) -> Agent:
    spec = attempt_pb2.AttemptSpec(
        run_id="run_limits", attempt=1, data_limits=attempt_pb2.DataLimits(**limits)
    )
    return Agent(spec, artifacts_dir=tmp_path)


def test_an_ended_agent_refuses_every_call(tmp_path: Path) -> None:
    agent = _agent(tmp_path)
    assert agent("buffer.put", {"handle": None, "items": [1]})["handle"]
    agent.end()
    with pytest.raises(AttemptEnded, match="buffer.put was not run"):
        agent("buffer.put", {"handle": None, "items": [1]})
    agent.close()


def test_the_agent_takes_its_budget_from_the_spec(tmp_path: Path) -> None:
    agent = _agent(tmp_path, agent_memory_bytes=1 * MiB)
    assert agent.memory.limit == 1 * MiB
    with pytest.raises(LimitExceeded, match="the limit is 1 MiB"):
        agent("buffer.put", {"handle": None, "items": ["x" * 2 * MiB]})
    assert _agent(tmp_path).memory.limit == 512 * MiB
    assert agent.hold_call(b"x" * 1000) > 1000
    with pytest.raises(LimitExceeded, match="queued call"):
        agent.hold_call(b"x" * 2 * MiB)


def test_an_interrupted_sqlite_sink_aborts_its_running_statement(tmp_path: Path) -> None:
    db = tmp_path / "target.db"
    sqlite3.connect(db).close()
    spec = ConnectionSpec(id="conn_lite", kind="sql", options={"url": f"sqlite:///{db}"})
    sink = open_sink(spec, artifacts_dir=tmp_path)
    failure: list[BaseException] = []

    def count_forever() -> None:
        try:
            sink.fetch(
                "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 10000000000) "
                "SELECT max(n) AS n FROM c"
            )
        except BaseException as exc:  # noqa: BLE001 - handed to the test's thread
            failure.append(exc)

    runner = threading.Thread(target=count_forever)
    runner.start()
    eventually(lambda: sink._lock.locked())  # noqa: SLF001 - the statement is running
    sink.interrupt()
    runner.join(5)
    assert not runner.is_alive()
    assert isinstance(failure[0], TargetError) and "interrupted" in str(failure[0]), failure
    # No call starts after the end.
    with pytest.raises(TargetError, match="the attempt ended"):
        sink.fetch("SELECT 1 AS one")
    sink.close()


def test_only_columns_other_templates_refer_to_are_kept_and_held(tmp_path: Path) -> None:
    def snapshot(doc: dict[str, Any]) -> attempt_pb2.TemplateSnapshot:
        return attempt_pb2.TemplateSnapshot(id=doc["id"], canonical_json=json.dumps(doc))

    wide = {
        "id": "tmpl_wide",
        "version": 1,
        "fields": {"id": {"sequence": {}}, "code": {"faker": "postcode"}, "pad": {"const": "p" * 5000}},
    }
    lone = {"id": "tmpl_lone", "version": 1, "fields": {"pad": {"const": "q" * 5000}}}
    refs = {
        "id": "tmpl_refs",
        "version": 1,
        "fields": {
            "wide_id": {"ref": {"template": "tmpl_wide", "field": "id"}},
            "wide_code": {"ref": {"template": "tmpl_wide", "field": "code"}},
        },
    }
    spec = attempt_pb2.AttemptSpec(
        run_id="run_refs", attempt=1, templates=[snapshot(wide), snapshot(lone), snapshot(refs)]
    )
    agent = Agent(spec, artifacts_dir=tmp_path)
    agent("generate", {"template_id": "tmpl_lone", "count": 100})
    one = agent.memory.held  # a row set's description: nothing of its rows
    assert 0 < one < 10_000
    wide_rows = agent("generate", {"template_id": "tmpl_wide", "count": 100})
    # Nothing is made yet: the ids are recomputed from the row index when drawn, the codes made
    # the first time a row refers to them.
    assert agent.memory.held == 2 * one and wide_rows["count"] == 100
    handle = agent("generate", {"template_id": "tmpl_refs", "count": 10})["$rows"]
    rows = agent("rows.read", {"rows": handle})
    assert {row["wide_id"] for row in rows} <= set(range(1, 101))
    codes = {row["code"] for row in agent("rows.read", {"rows": wide_rows["$rows"]})}
    assert {row["wide_code"] for row in rows} <= codes
    assert 0 < agent.memory.held - 3 * one < 100 * 1000  # the codes, not the 5 KB pads
    agent.close()


def test_a_generate_call_is_refused_before_its_rows_are_built(tmp_path: Path) -> None:
    doc = {"id": "tmpl_small", "version": 1, "fields": {"n": {"sequence": {}}}}
    spec = attempt_pb2.AttemptSpec(
        run_id="run_big",
        attempt=1,
        data_limits=attempt_pb2.DataLimits(agent_memory_bytes=1 * MiB),
        templates=[attempt_pb2.TemplateSnapshot(id="tmpl_small", canonical_json=json.dumps(doc))],
    )
    agent = Agent(spec, artifacts_dir=tmp_path)
    small = agent("generate", {"template_id": "tmpl_small", "count": 100})
    assert len(agent("rows.read", {"rows": small["$rows"]})) == 100
    # A 100 KB constant override repeated in 1,000 rows would be 100 MB of reply: refused up front.
    big = agent("generate", {"template_id": "tmpl_small", "count": 1000, "overrides": {"pad": "x" * 100_000}})
    held = agent.memory.held  # the two row sets (the second with its 100 KB override)
    with pytest.raises(LimitExceeded, match="1,000 rows being generated"):
        agent("rows.read", {"rows": big["$rows"]})
    assert agent.memory.held == held
    agent.close()


def test_row_sets_hold_what_they_keep(tmp_path: Path) -> None:
    """A row set keeps its overrides (a pick_from's values) for the attempt: held, so a script
    cannot park many large ones."""
    doc = {"id": "tmpl_small", "version": 1, "fields": {"n": {"sequence": {}}}}
    spec = attempt_pb2.AttemptSpec(
        run_id="run_sets",
        attempt=1,
        data_limits=attempt_pb2.DataLimits(agent_memory_bytes=8 * MiB),
        templates=[attempt_pb2.TemplateSnapshot(id="tmpl_small", canonical_json=json.dumps(doc))],
    )
    agent = Agent(spec, artifacts_dir=tmp_path)
    values = [f"value-{i:06d}" for i in range(20_000)]  # ~300 KB as JSON
    pick = {"$pick": {"values": values}}
    agent("generate", {"template_id": "tmpl_small", "count": 10, "overrides": {"v": pick}})
    assert agent.memory.held > 1 * MiB  # the values as the worker keeps them
    with pytest.raises(LimitExceeded, match="row set of 'tmpl_small' and its overrides"):
        for _ in range(10):
            agent("generate", {"template_id": "tmpl_small", "count": 10, "overrides": {"v": pick}})
    agent.close()
