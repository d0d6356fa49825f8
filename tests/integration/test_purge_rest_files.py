"""Purging what a run posted to a real HTTP target (through the connection's declared undo) and the
files it wrote (its artifacts folder), at the worker's level: `purge_rest`, `purge_files`."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from seedbed.api.v1 import attempt_pb2, connection_pb2
from seedbed.worker.agent import Agent
from seedbed.worker.agent._errors import RestError as AgentRestError
from seedbed.worker.ledger import purge_files, purge_rest
from seedbed.worker.sinks import ConfigurationError, ConnectionSpec, RestSink
from tests.faults.rest_target import RestTarget, _Answer, _error, _Path

pytestmark = pytest.mark.integration


@pytest.fixture
def api() -> Iterator[RestTarget]:
    with RestTarget() as target:
        yield target


def _sink(api: RestTarget, **options: Any) -> RestSink:
    spec = ConnectionSpec("conn_api", "rest", {"base_url": api.url, "max_retries": 1, **options})
    return RestSink(spec)


def _post(sink: RestSink, path: str, rows: list[dict[str, Any]], call: int) -> dict[str, Any]:
    result = sink.post(path, rows, idempotency_key_prefix=f"rk:{call}")
    ids = sink.created_ids(result.responses, rows=result.count, mode="single")
    assert ids is not None
    return {"call": call, "batch": 0, "path": path, "ids": ids}


def test_rest_undo_deletes_what_the_run_created_newest_first(api: RestTarget) -> None:
    sink = _sink(api, undo="DELETE {path}/{id}")
    api_rows = [{"id": i, "name": f"n{i}"} for i in range(3)]
    first = _post(sink, "/things", api_rows, 1)
    second = _post(sink, "/others", [{"id": "a/../b", "x": 1}, {"id": "ok"}], 2)
    sink.post("/things", [{"id": 99}], idempotency_key_prefix="someone-else")
    assert first["ids"] == ["0", "1", "2"]

    dry = purge_rest(sink, [second, first], dry_run=True)
    assert [(t.table, t.rows_deleted, t.rows_recorded) for t in dry.tables] == [
        ("/others", 1, 2),
        ("/things", 3, 3),
    ]
    assert len(api.rows("/things")) == 4  # a dry run deletes nothing

    done = purge_rest(sink, [second, first], dry_run=False)
    assert done.failure is None
    assert [(t.table, t.rows_deleted) for t in done.tables] == [("/others", 1), ("/things", 3)]
    # An id that would leave its resource (encoded '/', '..') is refused by the sink's path check.
    assert [(c.key, c.reason.split(":")[0]) for c in done.changed] == [("a/../b", "not deleted")]
    assert api.rows("/things") == [{"id": 99}]
    order = [r.path for r in api.requests_made("DELETE")]
    assert order == ["/others/ok", "/things/2", "/things/1", "/things/0"]  # newest first

    again = purge_rest(sink, [second, first], dry_run=False)  # already gone: 404 is not an error
    assert again.failure is None and [t.rows_deleted for t in again.tables] == [0, 0]
    sink.close()


def test_rest_ids_the_response_did_not_name_are_listed(api: RestTarget) -> None:
    sink = _sink(api, undo="DELETE /things/{id}", undo_id_field="data.id")
    created = _post(sink, "/things", [{"data": {"id": 7}}, {"name": "no id"}], 1)
    assert created["ids"] == ["7", ""]
    done = purge_rest(sink, [created], dry_run=False)
    assert done.failure is None
    assert [c.reason for c in done.changed] == ["the response named no id: cannot be deleted"]
    assert done.tables[0].rows_changed == 1
    sink.close()


def test_an_unreachable_target_stops_the_undo_with_what_was_done(api: RestTarget) -> None:
    sink = _sink(api, undo="DELETE {path}/{id}", timeout_seconds=2)
    created = _post(sink, "/things", [{"id": 1}], 1)
    api.close()
    done = purge_rest(sink, [created], dry_run=False)
    assert done.failure is not None
    assert "undoing the post of '1' (DELETE things/1) failed" in done.failure.message
    assert "purge again" in done.failure.message
    sink.close()


def test_a_declared_undo_is_checked_when_the_sink_opens(api: RestTarget) -> None:
    for bad in ("DELETE /things", "POST /things/{id}", "DELETE /a b/{id}"):
        with pytest.raises(ConfigurationError, match="option 'undo' must read"):
            _sink(api, undo=bad)
    plain = _sink(api)
    assert plain.created_ids([{"id": 1}], rows=1, mode="single") is None  # no undo: nothing recorded
    plain.close()


class FailsFrom(RestTarget):
    """Refuses every POST from the `k`-th on (1-based) with 422, for good: not retried."""

    def __init__(self, k: int) -> None:
        super().__init__()
        self.k = k
        self.posts = 0

    def _decide(self, state: _Path, method: str, headers: dict[str, str], body: Any) -> _Answer:
        if method == "POST":
            self.posts += 1
            if self.posts >= self.k:
                return _error(422, "refused for good")
        return super()._decide(state, method, headers, body)


@pytest.mark.parametrize(("mode", "created"), [("single", ["0", "1"]), ("batch", ["0", "1", "2", "3"])])
def test_a_post_failing_partway_reports_what_it_created_and_a_purge_undoes_it(
    tmp_path: Path, mode: str, created: list[str]
) -> None:
    """Request 3 of a post fails for good: the requests before it created their rows, which the
    agent reports (a write batch with their ids) before the call fails, so a purge deletes them."""
    with FailsFrom(3) as api:
        spec = attempt_pb2.AttemptSpec(
            run_id="run_1",
            attempt=1,
            run_key="rk",
            connections=[
                attempt_pb2.ConnectionSnapshot(
                    id="conn_api",
                    kind=connection_pb2.CONNECTION_KIND_REST,
                    rest=connection_pb2.RestOptions(
                        base_url=api.url, batch_size=2, timeout_seconds=5, undo="DELETE {path}/{id}"
                    ),
                )
            ],
        )
        agent = Agent(spec, artifacts_dir=tmp_path)
        rows = [{"id": str(i)} for i in range(6)]
        try:
            with pytest.raises(AgentRestError, match="answered 422"):
                agent("post", {"connection_id": "conn_api", "path": "/things", "rows": rows, "mode": mode})
            batches = agent.drain_batches()
        finally:
            agent.close()
        assert [(b.target, b.call, b.rows, list(b.created_ids)) for b in batches] == [
            ("/things", 1, len(created), created)
        ]
        assert len(api.rows("/things")) == len(created)

        sink = RestSink(
            ConnectionSpec("conn_api", "rest", {"base_url": api.url, "undo": "DELETE {path}/{id}"})
        )
        recorded = [{"call": 1, "batch": 0, "path": "/things", "ids": list(batches[0].created_ids)}]
        done = purge_rest(sink, recorded, dry_run=False)
        sink.close()
        assert done.failure is None and done.changed == []
        assert api.rows("/things") == []


def test_files_the_run_wrote_are_removed_never_through_a_symlink(tmp_path: Path) -> None:
    folder = tmp_path / "run_1"
    folder.mkdir()
    (folder / "a.csv").write_text("x")
    (folder / "b.jsonl").write_text("y")
    outside = tmp_path / "outside.txt"
    outside.write_text("keep")
    os.symlink(outside, folder / "link.csv")

    dry = purge_files(folder, ["a.csv", "b.jsonl", "link.csv"], dry_run=True)
    assert sorted((t.table, t.rows_deleted) for t in dry.tables) == [
        ("a.csv", 1),
        ("b.jsonl", 1),
        ("link.csv", 0),
    ]
    assert (folder / "a.csv").exists()

    done = purge_files(folder, ["a.csv", "b.jsonl", "link.csv", "../outside.txt", "gone.csv"], dry_run=False)
    assert done.failure is None
    assert not (folder / "a.csv").exists() and not (folder / "b.jsonl").exists()
    assert outside.read_text() == "keep" and (folder / "link.csv").is_symlink()
    assert sorted((c.key, c.reason.split(":")[0]) for c in done.changed) == [
        ("../outside.txt", "not a plain file name"),
        ("link.csv", "no longer a regular file (a symlink or a folder)"),
    ]
    (folder / "link.csv").unlink()
    assert purge_files(folder, ["a.csv"], dry_run=False).failure is None
    assert not folder.exists()  # removed once empty
