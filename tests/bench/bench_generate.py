"""Benchmark: template generation on one core, next to a plain Faker script for the same fields.

    .venv/bin/python -m tests.bench.bench_generate [--rows 50000] [--customers 100000] [--repeat 5]
                                                   [--bulk-rows 1000000]

Two templates: customers (8 fields: sequence, uuid, name, unique email, weighted country, normal
age, balance, signup date) and orders (9 fields, `customer_id` overridden by a `Pick` over the
customer ids). The baseline is what a scenario author writes by hand with Faker — one seeded
instance, `fake.name()`, `fake.unique.email()`, `fake.random_element(...)` — measured in the same
process; it picks customer ids from a *tuple* (from a list, Faker converts the whole list on every
call: ~8 ms per pick for a million ids).

Two bulk templates, the shape of a COPY load: bulk customers (7 fields: uuid, four Faker fields
with `pool: 10000`, weighted country, created_at) through `columns()` and `rows()`, and bulk
orders (uuid, a `ref` to the customers' ids recorded as a derived source, amount, status,
created_at), next to a Faker script for the bulk customer's fields. Pools are built once per
process: the first call's pool build is printed on its own; the measured runs reuse the cached
pools, as shards in one worker process do.

Figures are the best of `--repeat` runs, including the construction of the generator or the Faker
instance, after a warm-up. The process is pinned to one CPU where the OS allows it.
"""

from __future__ import annotations

import argparse
import os
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
from faker import Faker

from seedbed.worker.templates import (
    FAKER_VERSION,
    GENERATION_VERSION,
    Generator,
    Pick,
    RunRefs,
    _pools,
    derive_seed,
    parse_template,
)

ROOT = Path(__file__).resolve().parents[2]
CUSTOMER = """
id: tmpl_customer
version: 1
fields:
  id:      {sequence: {start: 1}}
  uuid:    {uuid: {}}
  name:    {faker: name}
  email:   {faker: email, unique: true}
  country: {choice: {values: [US, CA, MX, DE, FR], weights: [60, 15, 10, 10, 5]}}
  age:     {int: {min: 18, max: 90, distribution: normal, mean: 40, stddev: 12}}
  balance: {float: {min: 0, max: 10000, decimals: 2}}
  signup:  {date: {start: "2020-01-01", end: "2024-12-31"}}
"""

ORDER = """
id: tmpl_order
version: 1
fields:
  id:          {sequence: {start: 1}}
  order_no:    {sequence: {start: 1, prefix: "ORD-", pad: 8}}
  customer_id: {ref: {template: tmpl_customer, field: id}}
  placed_at:   {datetime: {start: "2023-01-01T00:00:00", end: "2024-12-31T23:59:59"}}
  status:      {choice: {values: [paid, shipped, delivered, cancelled], weights: [20, 30, 45, 5]}}
  amount:      {float: {min: 1, max: 2000, distribution: exponential, mean: 80, decimals: 2}}
  currency:    {const: USD}
  items:       {int: {min: 1, max: 20, distribution: exponential, mean: 3}}
  note:        {faker: sentence, nullable: 0.7}
"""

BULK_CUSTOMER = (ROOT / "examples" / "bulk" / "customer.yaml").read_text()

BULK_ORDER = (ROOT / "examples" / "bulk" / "order.yaml").read_text()

BULK_COUNTRIES = OrderedDict([("US", 50), ("CA", 10), ("GB", 15), ("DE", 15), ("FR", 10)])
COUNTRIES = OrderedDict([("US", 60), ("CA", 15), ("MX", 10), ("DE", 10), ("FR", 5)])
STATUSES = OrderedDict([("paid", 20), ("shipped", 30), ("delivered", 45), ("cancelled", 5)])


def plain_customers(n: int) -> list[dict[str, Any]]:
    fake = Faker("en_US")
    fake.seed_instance(1)
    start, end = date(2020, 1, 1), date(2024, 12, 31)
    rows = []
    for i in range(n):
        rows.append(
            {
                "id": i + 1,
                "uuid": fake.uuid4(),
                "name": fake.name(),
                "email": fake.unique.email(),
                "country": fake.random_element(COUNTRIES),
                "age": max(18, min(90, round(fake.random.gauss(40, 12)))),
                "balance": fake.pyfloat(min_value=0, max_value=10000, right_digits=2),
                "signup": fake.date_between(start, end).isoformat(),
            }
        )
    return rows


def plain_orders(n: int, customer_ids: tuple[int, ...]) -> list[dict[str, Any]]:
    fake = Faker("en_US")
    fake.seed_instance(2)
    start, end = datetime(2023, 1, 1), datetime(2024, 12, 31, 23, 59, 59)
    rows = []
    for i in range(n):
        rows.append(
            {
                "id": i + 1,
                "order_no": f"ORD-{i + 1:08d}",
                "customer_id": fake.random_element(customer_ids),
                "placed_at": fake.date_time_between(start, end).isoformat(),
                "status": fake.random_element(STATUSES),
                "amount": round(min(2000.0, 1 + fake.random.expovariate(1 / 79)), 2),
                "currency": "USD",
                "items": min(20, 1 + round(fake.random.expovariate(1 / 2))),
                "note": fake.sentence() if fake.random.random() >= 0.7 else None,
            }
        )
    return rows


def plain_bulk_customers(n: int) -> list[dict[str, Any]]:
    fake = Faker("en_US")
    fake.seed_instance(3)
    start, end = datetime(2020, 1, 1, tzinfo=UTC), datetime(2024, 12, 31, 23, 59, 59, tzinfo=UTC)
    return [
        {
            "id": fake.uuid4(),
            "name": fake.name(),
            "email": fake.email(),
            "phone": fake.phone_number(),
            "address": fake.street_address(),
            "country": fake.random_element(BULK_COUNTRIES),
            "created_at": fake.date_time_between(start, end).isoformat(),
        }
        for _ in range(n)
    ]


def plain_bulk_orders(n: int, customer_ids: tuple[str, ...]) -> list[dict[str, Any]]:
    fake = Faker("en_US")
    fake.seed_instance(4)
    start, end = datetime(2020, 1, 1, tzinfo=UTC), datetime(2024, 12, 31, 23, 59, 59, tzinfo=UTC)
    statuses = ("new", "paid", "shipped", "cancelled")
    return [
        {
            "id": fake.uuid4(),
            "customer_id": fake.random_element(customer_ids),
            "amount": round(fake.random.uniform(1, 500), 2),
            "status": fake.random_element(statuses),
            "created_at": fake.date_time_between(start, end).isoformat(),
        }
        for _ in range(n)
    ]


def best_rate(make: Callable[[], Any], n: int, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = make()
        best = min(best, time.perf_counter() - t0)
        assert len(out) == n or len(next(iter(out.values()))) == n
    return n / best


def bulk_results(n: int, repeat: int, baseline_rows: int) -> list[tuple[str, float, float]]:
    """The bulk templates through columns() and rows(), next to a plain Faker script."""
    customer, order = parse_template(BULK_CUSTOMER), parse_template(BULK_ORDER)
    seed_c, seed_o = derive_seed("bench-bulk", 1), derive_seed("bench-bulk", 2)
    _pools._CACHE.clear()
    t0 = time.perf_counter()
    Generator(customer, seed=seed_c).columns(1)
    built = time.perf_counter() - t0
    print(f"bulk customer: 4 pools of 10,000 Faker values built in {built:.2f} s (once per process)")
    refs = RunRefs()
    ids = Generator(customer, seed=seed_c).derived("id", 0, n)
    assert ids is not None
    refs.record_source("tmpl_bulk_customer", "id", ids)
    id_tuple = tuple(ids.take(np.arange(n, dtype=np.int64)))
    plain = best_rate(lambda: plain_bulk_customers(baseline_rows), baseline_rows, repeat)
    return [
        (
            "bulk customer (7 fields, pools), columns()",
            best_rate(lambda: Generator(customer, seed=seed_c).columns(n), n, repeat),
            plain,
        ),
        (
            "bulk customer, rows()",
            best_rate(lambda: Generator(customer, seed=seed_c).rows(n), n, repeat),
            plain,
        ),
        (
            f"bulk order (ref over {n:,} derived ids), columns()",
            best_rate(lambda: Generator(order, seed=seed_o, refs=refs).columns(n), n, repeat),
            best_rate(lambda: plain_bulk_orders(baseline_rows, id_tuple), baseline_rows, repeat),
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=50_000, help="rows per measured run (default 50,000)")
    parser.add_argument("--customers", type=int, default=100_000, help="customer ids to pick from")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--bulk-rows", type=int, default=1_000_000, help="rows per bulk run (0: skip them)")
    parser.add_argument(
        "--baseline-rows", type=int, default=0, help="rows for the Faker script (default --rows/10)"
    )
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    n, repeat = args.rows, args.repeat
    nb = args.baseline_rows or max(1_000, n // 10)

    customer, order = parse_template(CUSTOMER), parse_template(ORDER)
    ids = tuple(range(1, args.customers + 1))
    seed_c, seed_o = derive_seed("bench", 1), derive_seed("bench", 2)
    Generator(customer, seed=0).rows(2_000)  # warm up: imports, locale data, caches
    Generator(order, seed=0).rows(2_000, overrides={"customer_id": Pick(ids)})
    plain_customers(200)
    plain_orders(200, ids)
    results = [
        (
            "customer (8 fields)",
            best_rate(lambda: Generator(customer, seed=seed_c).rows(n), n, repeat),
            best_rate(lambda: plain_customers(nb), nb, repeat),
        ),
        (
            f"order (9 fields, Pick over {len(ids):,} ids)",
            best_rate(
                lambda: Generator(order, seed=seed_o).rows(n, overrides={"customer_id": Pick(ids)}), n, repeat
            ),
            best_rate(lambda: plain_orders(nb, ids), nb, repeat),
        ),
        (
            "customer, stream(batch_size=10,000)",
            best_rate(
                lambda: [r for b in Generator(customer, seed=seed_c).stream(n, batch_size=10_000) for r in b],
                n,
                repeat,
            ),
            best_rate(lambda: plain_customers(nb), nb, repeat),
        ),
    ]
    if args.bulk_rows:
        results += bulk_results(args.bulk_rows, repeat, nb)
    print(
        f"\nFaker {FAKER_VERSION}, generation version {GENERATION_VERSION}, one core, best of {repeat}; "
        f"seedbed {n:,} rows ({args.bulk_rows:,} bulk), Faker script {nb:,} rows\n"
    )
    print(f"{'template':56} {'seedbed rows/s':>15} {'Faker script rows/s':>20} {'ratio':>7}")
    for name, ours, plain in results:
        print(f"{name:56} {ours:>15,.0f} {plain:>20,.0f} {ours / plain:>6.1f}×")


if __name__ == "__main__":
    main()
