"""Benchmark: rows/s of the PostgreSQL sink's write paths, next to a plain SQLAlchemy Core
executemany measured in the same run, into the same table.

    SEEDBED_TEST_PG_URL=postgresql://… .venv/bin/python -m tests.bench.bench_insert [--rows N] [--repeat 3]

Rows: customers with 8 columns (bigint primary key, 5 texts, a date, a double), as a scenario
sends them (JSON-compatible dicts, the date as an ISO string). Each figure is the median of
`--repeat` runs into a freshly truncated table; the clock covers the whole call (row checks,
transfer, COMMIT). Also shown: psycopg's `executemany(returning=True)`, the alternative the
RETURNING path rejected, and the write ledger's cost: the same COPY and RETURNING calls through
`LedgeredSql` (10,000-row batches, each committed with its ledger row), and a replay of an
applied call (every batch found in the ledger and skipped).
"""

from __future__ import annotations

import argparse
import itertools
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import sqlalchemy as sa

from seedbed.worker.ledger import AttemptStamp, LedgeredSql
from seedbed.worker.sinks import ConnectionSpec, PostgresSink, open_sink
from tests.bench._postgres import scratch_database

DDL = """
CREATE TABLE customers (
    id bigint PRIMARY KEY,
    first_name text NOT NULL,
    last_name text NOT NULL,
    email text NOT NULL,
    phone text,
    country text NOT NULL,
    birth_date date,
    score double precision
)"""
COLUMNS = ["id", "first_name", "last_name", "email", "phone", "country", "birth_date", "score"]


def birth_date(rng: random.Random) -> str:
    return f"{rng.randrange(1940, 2005)}-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}"


def customer_rows(n: int) -> list[dict[str, Any]]:
    rng = random.Random(42)
    first = ["Ann", "Bob", "Chloé", "Dmitri", "Eve", "Farid", "Grace", "Hiro", "Inès", "José"]
    last = ["Smith", "Martin", "García", "Müller", "Rossi", "Nowak", "Silva", "Kim", "Dubois", "Ng"]
    countries = ["FR", "DE", "ES", "IT", "PL", "PT", "KR", "US", "GB", "JP"]
    return [
        {
            "id": i,
            "first_name": rng.choice(first),
            "last_name": rng.choice(last),
            "email": f"customer{i}@example.com",
            "phone": f"+33 6 {rng.randrange(10**8):08d}" if i % 5 else None,
            "country": rng.choice(countries),
            "birth_date": birth_date(rng),
            "score": round(rng.random() * 100, 2),
        }
        for i in range(n)
    ]


def measure(label: str, write: Callable[[], object], reset: Callable[[], None], n: int, repeat: int) -> float:
    rates = []
    for _ in range(repeat):
        reset()
        started = time.perf_counter()
        write()
        rates.append(n / (time.perf_counter() - started))
    rate = statistics.median(rates)
    print(f"  {label}: {rate:,.0f} rows/s", file=sys.stderr)
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with scratch_database() as url:
        run(url, args.rows, args.repeat)


def run(url: str, n: int, repeat: int) -> None:
    rows = customer_rows(n)
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        conn.execute(sa.text(DDL))
    table = sa.Table("customers", sa.MetaData(), autoload_with=engine)

    def reset() -> None:
        with engine.begin() as conn:
            conn.execute(sa.text("TRUNCATE customers"))
            conn.execute(sa.text("DROP TABLE IF EXISTS seedbed_ledger"))

    def sqlalchemy_executemany() -> None:
        with engine.begin() as conn:
            conn.execute(sa.insert(table), rows)

    with tempfile.TemporaryDirectory() as artifacts:
        sink = open_sink(
            ConnectionSpec("conn_bench", "postgresql", {"url": url}), artifacts_dir=Path(artifacts)
        )
        assert isinstance(sink, PostgresSink)
        raw = psycopg.connect(url)
        placeholders = ", ".join(["%s"] * len(COLUMNS))
        query = f"INSERT INTO customers ({', '.join(COLUMNS)}) VALUES ({placeholders}) RETURNING id"

        def psycopg_executemany_returning() -> None:
            with raw.cursor() as cur:
                cur.executemany(query.encode(), [tuple(r[c] for c in COLUMNS) for r in rows], returning=True)
                while cur.nextset():
                    pass
            raw.commit()

        run_keys = itertools.count()

        def ledgered(returning: list[str] | None = None, run_key: str | None = None) -> None:
            stamp = AttemptStamp(run_key or f"bench-{next(run_keys)}", "run_bench", 1, 1, b"bench" * 8)
            LedgeredSql(sink, stamp, report=lambda _batch: None).insert(
                1, "customers", rows, returning=returning
            )

        def replay_ready() -> None:
            reset()
            ledgered(run_key="replayed")

        print(f"{n:,} customer rows (8 columns), median of {repeat}:", file=sys.stderr)
        results = [
            (
                "SQLAlchemy Core executemany (baseline)",
                measure("baseline", sqlalchemy_executemany, reset, n, repeat),
            ),
            (
                "sink: COPY (plain insert)",
                measure("copy", lambda: sink.insert("customers", rows), reset, n, repeat),
            ),
            (
                "sink: INSERT … VALUES RETURNING id",
                measure(
                    "returning", lambda: sink.insert("customers", rows, returning=["id"]), reset, n, repeat
                ),
            ),
            (
                "sink: INSERT … ON CONFLICT (id) DO NOTHING",
                measure(
                    "ignore",
                    lambda: sink.insert("customers", rows, on_conflict="ignore", key=["id"]),
                    reset,
                    n,
                    repeat,
                ),
            ),
            (
                "psycopg executemany(returning=True) (rejected)",
                measure("executemany", psycopg_executemany_returning, reset, n, repeat),
            ),
            ("ledger: COPY, a ledger row per batch", measure("ledger copy", ledgered, reset, n, repeat)),
            (
                "ledger: INSERT … RETURNING id, a ledger row per batch",
                measure("ledger returning", lambda: ledgered(["id"]), reset, n, repeat),
            ),
            (
                "ledger: replay of an applied call (all skipped)",
                measure("ledger replay", lambda: ledgered(run_key="replayed"), replay_ready, n, repeat),
            ),
        ]
        raw.close()
        sink.close()
    engine.dispose()

    baseline = results[0][1]
    without = dict(results)
    print(f"\n| path ({n:,} rows, median of {repeat}) | rows/s | × baseline |")
    print("|---|---:|---:|")
    for label, rate in results:
        print(f"| {label} | {rate:,.0f} | {rate / baseline:.2f} |")
    copy, returning = without["sink: COPY (plain insert)"], without["sink: INSERT … VALUES RETURNING id"]
    print("\n| the ledger's cost | with / without |")
    print("|---|---:|")
    print(f"| COPY | {without['ledger: COPY, a ledger row per batch'] / copy:.2f} |")
    ledgered_returning = without["ledger: INSERT … RETURNING id, a ledger row per batch"]
    print(f"| RETURNING | {ledgered_returning / returning:.2f} |")


if __name__ == "__main__":
    main()
