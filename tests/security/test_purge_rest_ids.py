"""A REST target that answers a post with more than what the post created must not make a purge
delete the rest: the ids a response names are recorded only when they can be the rows posted (no
more ids than rows, each a non-empty string or integer of at most 200 characters, none twice);
otherwise none are recorded for that request and the purge lists it as "cannot undo".

Against a real loopback HTTP target (tests/faults/rest_target.py) taught to answer a POST with
its whole collection, as a list endpoint reused for creation might; the worker's own `created_ids`
and `purge_rest`. Fails on a Seedbed that records one id per element of any array answer, the id
of one object answering a batch of several rows, or an id that several requests of a post named."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from seedbed.worker.ledger import purge_rest
from seedbed.worker.sinks import ConnectionSpec, RestSink
from tests.faults.rest_target import RestTarget, _Answer, _json, _Path

pytestmark = pytest.mark.integration


class CollectionEcho(RestTarget):
    """Stores what is posted, then answers with every row stored under the path (its own and
    everyone else's)."""

    def _store(self, state: _Path, key: str | None, body: dict[str, Any] | list[Any]) -> _Answer:
        super()._store(state, key, body)
        return _Answer(201, _json(state.rows))


@pytest.fixture
def echo() -> Iterator[CollectionEcho]:
    with CollectionEcho() as target:
        yield target


def _sink(target: RestTarget, **options: Any) -> RestSink:
    spec = ConnectionSpec(
        "conn_api",
        "rest",
        {"base_url": target.url, "undo": "DELETE {path}/{id}", "max_retries": 0, **options},
    )
    return RestSink(spec)


def _created(sink: RestSink, rows: list[dict[str, Any]], *, mode: Any, call: int = 1) -> dict[str, Any]:
    result = sink.post("/things", rows, mode=mode, idempotency_key_prefix=f"rk:{call}")
    ids = sink.created_ids(result.responses, rows=result.count, mode=mode)
    assert ids is not None
    return {"call": call, "batch": 0, "path": "/things", "ids": ids}


def test_a_response_naming_the_whole_collection_deletes_nothing_it_names(echo: CollectionEcho) -> None:
    sink = _sink(echo)
    others = [{"id": f"theirs-{i}"} for i in range(5)]
    sink.post("/things", others, mode="batch", idempotency_key_prefix="someone-else")
    created = _created(sink, [{"id": "mine-0"}, {"id": "mine-1"}], mode="batch")

    done = purge_rest(sink, [created], dry_run=False)
    assert done.failure is None
    assert echo.requests_made("DELETE") == []  # not one of the 7 named
    assert len(echo.rows("/things")) == 7
    assert [c.reason for c in done.changed] == [
        "cannot undo: the response named 7 ids for 2 rows posted (the target answered with more "
        "than it created?): delete those resources by hand"
    ]
    table = done.tables[0]
    assert (table.rows_recorded, table.rows_changed, table.rows_deleted) == (2, 2, 0)
    sink.close()


def test_only_the_request_that_over_answered_is_refused(echo: CollectionEcho) -> None:
    """Single mode: the first post's answer names one id (the collection holds one row); the
    second's names two: the first is undone, the second listed."""
    sink = _sink(echo)
    created = _created(sink, [{"id": "a"}, {"id": "b"}], mode="single")
    assert created["ids"][0] == "a"
    done = purge_rest(sink, [created], dry_run=False)
    assert [r.path for r in echo.requests_made("DELETE")] == ["/things/a"]
    assert [c.reason.split(" (")[0] for c in done.changed] == [
        "cannot undo: the response named 2 ids for 1 row posted"
    ]
    assert echo.rows("/things") == [{"id": "b"}]
    sink.close()


@pytest.mark.parametrize(
    ("answer", "why"),
    [
        ([{"id": "x"}, {"id": "x"}], "named id 'x' twice"),
        ([{"id": {"$oid": "x"}}, {"id": "y"}], "named an id that is not a string or an integer"),
        ([{"id": ""}, {"id": "y"}], "named an empty id"),
        ([{"id": True}, {"id": "y"}], "named an id that is not a string or an integer"),
        ([{"id": "x" * 201}, {"id": "y"}], "named an id longer than 200 characters"),
        ([{"id": "x\ny"}, {"id": "y"}], "named an id holding a control character"),
    ],
)
def test_ids_that_cannot_be_the_rows_posted_record_none_for_the_request(
    echo: CollectionEcho, answer: Any, why: str
) -> None:
    sink = _sink(echo)
    ids = sink.created_ids([answer], rows=2, mode="batch")
    assert ids is not None and len(ids) == 1
    done = purge_rest(sink, [{"call": 1, "batch": 0, "path": "/things", "ids": ids}], dry_run=True)
    assert [c.reason.split(": ")[1] for c in done.changed] == [f"the response {why}"]
    assert done.tables[0].rows_recorded == 2 and done.tables[0].rows_deleted == 0
    sink.close()


def test_fewer_ids_than_rows_posted_are_kept_and_the_rest_listed(echo: CollectionEcho) -> None:
    sink = _sink(echo, batch_size=3)
    ids = sink.created_ids([[{"id": 1}, {"id": 2}], [{"id": 4}]], rows=4, mode="batch")
    assert ids == ["1", "2", "", "4"]  # the first request's third row: named by nothing
    sink.close()


class SameAnswer(RestTarget):
    """Stores what is posted, then answers every POST with the same object: a batch job's id, or
    a resource that is not the run's."""

    def __init__(self, answer: dict[str, Any]) -> None:
        super().__init__()
        self.answer = answer

    def _store(self, state: _Path, key: str | None, body: dict[str, Any] | list[Any]) -> _Answer:
        super()._store(state, key, body)
        return _Answer(201, _json(self.answer))


def test_a_batch_answered_with_one_object_records_no_id_for_it() -> None:
    """`{"id": "job_1"}` for a batch of 2 rows names a batch job, not a row: a purge deleting
    `/things/job_1` would delete someone else's resource. A batch of one row may name its row."""
    with SameAnswer({"id": "job_1"}) as target:
        sink = _sink(target, batch_size=2)
        sink.post("/things", [{"id": "job_1"}], mode="single", idempotency_key_prefix="someone-else")
        created = _created(sink, [{"id": "a"}, {"id": "b"}], mode="batch")
        assert len(created["ids"]) == 1 and sink.unrecorded(created["ids"][0]) is not None

        done = purge_rest(sink, [created], dry_run=False)
        assert target.requests_made("DELETE") == []
        assert [c.reason for c in done.changed] == [
            "cannot undo: the response named one object for 2 rows posted (a batch job or a summary, "
            "not the rows?): delete those resources by hand"
        ]
        table = done.tables[0]
        assert (table.rows_recorded, table.rows_changed, table.rows_deleted) == (2, 2, 0)
        assert sink.created_ids([{"id": "job_1"}], rows=1, mode="batch") == ["job_1"]
        sink.close()


def test_an_id_named_by_two_requests_of_one_post_is_deleted_by_neither() -> None:
    """Every single-row POST answered `{"id": "victim"}`: no request of the post can be trusted
    with it, the first included."""
    with SameAnswer({"id": "victim"}) as target:
        sink = _sink(target)
        sink.post("/things", [{"id": "victim"}], mode="single", idempotency_key_prefix="someone-else")
        created = _created(sink, [{"id": "a"}, {"id": "b"}, {"id": "c"}], mode="single")

        done = purge_rest(sink, [created], dry_run=False)
        assert target.requests_made("DELETE") == []
        assert {"id": "victim"} in target.rows("/things")
        assert [c.reason.split(" (")[0] for c in done.changed] == [
            "cannot undo: the response named id 'victim', as request 0 of the same post did",
            "cannot undo: the response named id 'victim', as request 0 of the same post did",
            "cannot undo: the response named id 'victim', as request 1 of the same post did",
        ]  # newest first: requests 2, 1, 0
        assert done.tables[0].rows_deleted == 0 and done.tables[0].rows_changed == 3
        sink.close()


def test_only_the_requests_sharing_an_id_are_refused(echo: CollectionEcho) -> None:
    sink = _sink(echo, batch_size=2)
    single = sink.created_ids([{"id": 1}, {"id": 2}, {"id": 1}], rows=3, mode="single")
    assert single is not None
    assert [sink.unrecorded(i) is not None for i in single] == [True, False, True]
    assert single[1] == "2"
    batch = sink.created_ids(
        [[{"id": 1}, {"id": 2}], [{"id": 3}, {"id": 2}], [{"id": 5}]], rows=5, mode="batch"
    )
    assert batch is not None
    assert [sink.unrecorded(i) is not None for i in batch] == [True, True, False]
    assert batch[2] == "5"
    sink.close()


def test_an_id_named_by_two_posts_of_a_run_is_deleted_by_neither() -> None:
    """A script posting one row per call, every call answered `{"id": "victim"}`: each post's ids
    look fine on their own; the purge sees that two posts named one resource and deletes neither."""
    with SameAnswer({"id": "victim"}) as target:
        sink = _sink(target)
        sink.post("/things", [{"id": "victim"}], mode="single", idempotency_key_prefix="someone-else")
        first = _created(sink, [{"id": "a"}], mode="single", call=1)
        second = _created(sink, [{"id": "b"}], mode="single", call=2)
        assert first["ids"] == second["ids"] == ["victim"]

        done = purge_rest(sink, [second, first], dry_run=False)
        assert done.failure is None and target.requests_made("DELETE") == []
        assert [(c.call, c.reason.split(" (")[0]) for c in done.changed] == [
            (2, "cannot undo: call 1"),
            (1, "cannot undo: call 2"),
        ]
        assert done.tables[0].rows_changed == 2 and done.tables[0].rows_deleted == 0
        sink.close()
