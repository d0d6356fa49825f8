"""Shards of a bulk insert on threads (no Ray), against a real PostgreSQL: every batch once, a
replay skips what is committed, a failing shard is named, a stop stops every shard."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import replace

import psycopg
import pytest

from seedbed.api.v1 import attempt_pb2, connection_pb2
from seedbed.worker import bulk, ledger, templates
from seedbed.worker.ledger import BatchReport
from tests.conftest import scratch_pg

pytestmark = pytest.mark.integration

TEMPLATE = """
id: tmpl_shard_customer
version: 1
fields:
  id: {uuid: {}}
  name: {faker: name, pool: 500}
  country: {choice: {values: [US, CA, GB, DE, FR]}}
"""


@pytest.fixture
def database() -> Iterator[str]:
    schema = "CREATE TABLE customers (id uuid PRIMARY KEY, name text NOT NULL, country text NOT NULL)"
    with scratch_pg(schema, "seedbed_shards") as url:
        yield url


def _jobs(url: str, count: int, shard_rows: int, *, attempt: int = 1) -> list[bulk.ShardJob]:
    spec = templates.parse_template(TEMPLATE)
    snapshot = attempt_pb2.ConnectionSnapshot(
        id="conn_shards", kind=connection_pb2.CONNECTION_KIND_POSTGRESQL, url=url
    )
    stamp = ledger.AttemptStamp(
        run_key="rk-shards", run_id="run_shards", attempt=attempt, fencing_token=attempt, ledger_key=b"k" * 32
    )
    ranges = bulk.shard_ranges(count, shard_rows, single=False)
    base = bulk.ShardJob(
        index=0,
        shards=len(ranges),
        first=0,
        last=0,
        call=3,
        table="customers",
        connection=snapshot.SerializeToString(),
        stamp=stamp,
        template_json=json.dumps(spec.to_json()),
        seed=42,
        set_start=0,
        overrides={},
        refs=bulk.FrozenRefs({}),
        identity="set-1",
        unique_rows=False,
        field_bytes=65536,
        row_bytes=2**20,
        statement_timeout_seconds=None,
    )
    return [replace(base, index=i, first=a, last=b) for i, (a, b) in enumerate(ranges)]


def _insert(
    jobs: list[bulk.ShardJob], stop: threading.Event | None = None
) -> tuple[bulk.BulkOutcome, list[str]]:
    said: list[str] = []
    reports: list[BatchReport] = []
    outcome = bulk.run_insert(
        jobs,
        2,
        runner=bulk.ThreadShardRunner(),
        stop=stop or threading.Event(),
        progress=said.append,
        report=reports.append,
        total=jobs[-1].last,
        table="customers",
    )
    assert len(reports) == sum(r.written_batches + r.replayed_batches for r in outcome.results)
    return outcome, said


def test_shards_write_every_batch_once_and_a_replay_skips_them(database: str) -> None:
    outcome, _ = _insert(_jobs(database, 45_000, 20_000))
    assert outcome.rows == 45_000 and len(outcome.results) == 3
    assert sorted(r.written_batches for r in outcome.results) == [1, 2, 2]
    with psycopg.connect(database) as conn:
        assert conn.execute("SELECT count(*), count(DISTINCT id) FROM customers").fetchone() == (
            45_000,
            45_000,
        )
        keys = conn.execute("SELECT row_keys FROM seedbed_ledger ORDER BY batch_no LIMIT 1").fetchone()
    # Keys derived from the row index are recorded as their derivation, and decode to the rows' ids.
    assert keys is not None and '"derived"' in keys[0] and len(keys[0]) < 2_000
    columns, values = ledger.decode_keys(keys[0])
    # Keys derived by another generation (or Faker release) are not recomputed: they would differ.
    with pytest.raises(ValueError, match="derived by generation 1"):
        ledger.decode_keys(keys[0].replace('"generation":2', '"generation":1'))
    with psycopg.connect(database) as conn:
        found = conn.execute(
            "SELECT count(*) FROM customers WHERE id = ANY(%s::uuid[])", [[v[0] for v in values]]
        )
        assert columns == ["id"] and found.fetchone() == (10_000,)
    # Another attempt (other shard sizes too) finds every batch written: nothing is written twice.
    again, _ = _insert(_jobs(database, 45_000, 10_000, attempt=2))
    assert again.rows == 45_000 and sum(r.written_batches for r in again.results) == 0
    assert sum(r.replayed_batches for r in again.results) == 5


def test_a_failing_shard_is_named_and_the_others_are_kept(database: str) -> None:
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute("ALTER TABLE customers ADD CONSTRAINT not_fr CHECK (country <> 'FR')")
    with pytest.raises(bulk.BulkInsertError, match=r"shard 1 of 2 \(rows 0-9,999 of the row set\).*not_fr"):
        _insert(_jobs(database, 20_000, 10_000))


def test_a_stop_ends_every_shard(database: str) -> None:
    stop = threading.Event()
    stop.set()
    outcome, _ = _insert(_jobs(database, 30_000, 10_000), stop)
    assert outcome.rows == 0
    with psycopg.connect(database) as conn:
        assert conn.execute("SELECT count(*) FROM customers").fetchone() == (0,)
