"""Benchmark: template generation on one core, next to a plain Faker script for the same fields.

    .venv/bin/python -m tests.bench.bench_generate [--rows 50000] [--customers 100000] [--repeat 5]

Two templates: customers (8 fields: sequence, uuid, name, unique email, weighted country, normal
age, balance, signup date) and orders (9 fields, `customer_id` overridden by a `Pick` over the
customer ids). The baseline is what a scenario author writes by hand with Faker — one seeded
instance, `fake.name()`, `fake.unique.email()`, `fake.random_element(...)` — measured in the same
process; it picks customer ids from a *tuple* (from a list, Faker converts the whole list on every
call: ~8 ms per pick for a million ids). Figures are the best of `--repeat` runs, including the construction
of the generator or the Faker instance, after a warm-up. The process is pinned to one CPU where
the OS allows it.
"""

from __future__ import annotations

import argparse
import os
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from faker import Faker

from seedbed.worker.templates import FAKER_VERSION, Generator, Pick, derive_seed, parse_template

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


def best_rate(make: Callable[[], list[dict[str, Any]]], n: int, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        rows = make()
        best = min(best, time.perf_counter() - t0)
        assert len(rows) == n
    return n / best


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=50_000, help="rows per measured run (default 50,000)")
    parser.add_argument("--customers", type=int, default=100_000, help="customer ids to pick from")
    parser.add_argument("--repeat", type=int, default=5)
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
    print(
        f"Faker {FAKER_VERSION}, one core, best of {repeat}; seedbed {n:,} rows, Faker script {nb:,} rows\n"
    )
    print(f"{'template':44} {'seedbed rows/s':>15} {'Faker script rows/s':>20} {'ratio':>7}")
    for name, ours, plain in results:
        print(f"{name:44} {ours:>15,.0f} {plain:>20,.0f} {ours / plain:>6.1f}×")


if __name__ == "__main__":
    main()
