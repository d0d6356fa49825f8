"""The sinks' public surface, specs, identifier and row checks, and the retry policy."""

from __future__ import annotations

import email.utils
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import seedbed.worker.sinks as sinks
from seedbed.worker.sinks import (
    ConfigurationError,
    ConnectionSpec,
    InvalidRequestError,
    PostgresSink,
    RestSink,
    RetryPolicy,
    SerializationError,
    SinkError,
    SqlAlchemySink,
    TargetError,
    open_sink,
)
from seedbed.worker.sinks._rows import check_name, prepare_rows, split_table


def test_public_surface() -> None:
    assert sorted(sinks.__all__) == [
        "ConfigurationError",
        "ConnectionKind",
        "ConnectionSpec",
        "FileFormat",
        "FileQuota",
        "FileSink",
        "InsertResult",
        "InvalidRequestError",
        "OnConflict",
        "PostMode",
        "PostResult",
        "PostgresSettings",
        "PostgresSink",
        "QuotaExceededError",
        "RestError",
        "RestSettings",
        "RestSink",
        "ResultTooLargeError",
        "RetryPolicy",
        "Row",
        "SerializationError",
        "Sink",
        "SinkError",
        "SqlAlchemySettings",
        "SqlAlchemySink",
        "SqlSink",
        "TargetError",
        "WriteResult",
        "connection_folder",
        "open_sink",
    ]
    for name in sinks.__all__:
        assert getattr(sinks, name) is not None
    for error in (
        "ConfigurationError",
        "InvalidRequestError",
        "ResultTooLargeError",
        "TargetError",
        "RestError",
    ):
        assert issubclass(getattr(sinks, error), SinkError)
    assert issubclass(SerializationError, InvalidRequestError)


def test_connection_spec_is_checked_and_hides_its_options() -> None:
    spec = ConnectionSpec("conn_pg", "postgresql", {"url": "postgresql://u:s3cret@h/db"})
    assert "s3cret" not in repr(spec) and "url" in repr(spec)
    with pytest.raises(TypeError):
        spec.options["url"] = "x"  # type: ignore[index]
    with pytest.raises(ConfigurationError, match="unknown connection kind 'mongo'"):
        ConnectionSpec("conn_x", "mongo", {})  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="connection id"):
        ConnectionSpec("conn x; rm", "file")


def test_open_sink_maps_kinds_and_connects_lazily(tmp_path: Path) -> None:
    # Nothing listens on these addresses: opening must not connect.
    pg = open_sink(
        ConnectionSpec("a", "postgresql", {"url": "postgresql://u:p@127.0.0.1:1/db"}), artifacts_dir=tmp_path
    )
    sql = open_sink(ConnectionSpec("b", "sql", {"url": "sqlite://"}), artifacts_dir=tmp_path)
    api = open_sink(ConnectionSpec("c", "rest", {"base_url": "http://127.0.0.1:1/"}), artifacts_dir=tmp_path)
    assert (type(pg), type(sql), type(api)) == (PostgresSink, SqlAlchemySink, RestSink)
    for sink in (pg, sql, api):
        sink.close()
        sink.close()  # idempotent


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "'url' is required"),
        ({"url": 5}, "must be a non-empty string"),
        ({"url": "postgresql://h/db", "batch_size": 0}, "between 1 and"),
        ({"url": "postgresql://h/db", "batch_size": True}, "an integer"),
        ({"url": "postgresql://h/db", "connect_timeout_seconds": "10"}, "a number of seconds"),
        ({"url": "postgresql://h/db", "statement_timeout_seconds": -1}, "between 0.0"),
    ],
)
def test_postgres_options_are_checked(options: dict[str, object], message: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=message) as caught:
        open_sink(ConnectionSpec("conn_pg", "postgresql", options), artifacts_dir=tmp_path)
    assert caught.value.connection_id == "conn_pg"


@pytest.mark.parametrize("name", ["customers", "_x", "Customers2", "clientes_españa", "a" * 63])
def test_plain_identifiers_pass(name: str) -> None:
    assert check_name(name, "table", "c") == name


@pytest.mark.parametrize(
    "name",
    [
        "",
        "1abc",
        "a b",
        "a;b",
        'a"b',
        "a'b",
        "a`b",
        "a.b",
        "a-b",
        "a\x00",
        "a\n",
        "é" * 32,
        "a" * 64,
        None,
        3,
    ],
)
def test_other_identifiers_are_refused(name: object) -> None:
    with pytest.raises(InvalidRequestError):
        check_name(name, "column", "c")


def test_tables_may_carry_one_schema() -> None:
    assert split_table("customers", "c") == (None, "customers")
    assert split_table("sales.customers", "c") == ("sales", "customers")
    for bad in ("a.b.c", ".a", "a.", "a..b", "a;b.c"):
        with pytest.raises(InvalidRequestError):
            split_table(bad, "c")


def test_rows_are_laid_out_and_nested_values_become_json() -> None:
    prepared = prepare_rows(
        [{"a": 1, "b": {"x": [1, None]}}, {"b": [], "a": None}], connection_id="c", forbid_nul=True
    )
    assert prepared.columns == ["a", "b"]
    assert prepared.values == [(1, '{"x":[1,null]}'), (None, "[]")]
    assert prepare_rows([], connection_id="c", forbid_nul=True).values == []


@pytest.mark.parametrize(
    ("rows", "error", "message"),
    [
        ({"a": 1}, InvalidRequestError, "rows must be a list"),
        ("abc", InvalidRequestError, "rows must be a list"),
        ([{}], InvalidRequestError, "row 0 must be a non-empty object"),
        ([{"a": 1}, [1]], InvalidRequestError, "row 1 must be an object"),
        (
            [{"a": 1}, {"a": 1, "b": 2}],
            InvalidRequestError,
            r"row 1 has different fields.*unexpected \['b'\]",
        ),
        ([{"a": 1}, {"a": b"bytes"}], SerializationError, "row 1, field 'a'.*type bytes"),
        ([{"a": 1}, {"a": (1, 2)}], SerializationError, "type tuple"),
        ([{"a": {"x": float("nan")}}], SerializationError, "nested value is not JSON"),
        ([{"a": "nul\x00"}], SerializationError, "NUL"),
    ],
)
def test_bad_rows_are_refused(rows: object, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        prepare_rows(rows, connection_id="c", forbid_nul=True)  # type: ignore[arg-type]


def test_retry_policy_backs_off_exponentially_with_jitter() -> None:
    policy = RetryPolicy(backoff_base=timedelta(seconds=1), backoff_max=timedelta(seconds=8))
    rng = random.Random(7)
    for retry, ceiling in [(0, 1), (1, 2), (2, 4), (3, 8), (10, 8)]:
        delays = [policy.backoff(retry, rng) for _ in range(200)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert max(delays) - min(delays) > ceiling / 4  # jittered
    with pytest.raises(ValueError):
        RetryPolicy(max_retries=-1)


def test_retry_after_reads_seconds_and_dates_and_is_capped() -> None:
    policy = RetryPolicy(retry_after_max=timedelta(seconds=60))
    assert policy.retry_after("5") == 5
    assert policy.retry_after("3600") == 60
    assert policy.retry_after(None) is None and policy.retry_after("soon") is None
    future = email.utils.format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 28 <= (policy.retry_after(future) or 0) <= 30
    past = email.utils.format_datetime(datetime.now(UTC) - timedelta(seconds=30), usegmt=True)
    assert policy.retry_after(past) == 0


def test_target_error_message_carries_the_structure() -> None:
    error = TargetError(
        connection_id="conn_pg",
        operation="insert",
        table="customers",
        batch=2,
        rows=(20, 30),
        row=27,
        db_message='invalid input syntax for type integer: "abc"',
        sqlstate="22P02",
    )
    assert str(error) == (
        "conn_pg: insert into customers, batch 2 (rows 20-29), at row 27 failed: invalid input syntax for "
        'type integer: "abc" [SQLSTATE 22P02]'
    )
