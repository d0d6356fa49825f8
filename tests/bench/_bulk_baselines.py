"""The bulk benchmark's hand-written contenders, its schema, and the check every load must pass.

(a) `numpy_copy(url, customers, orders, keys_first=True)`: what a careful engineer writes by hand
    for speed. Pools of 10,000 Faker values per Faker column, drawn from with numpy indices; uuids
    from numpy random bytes formatted as text with array operations; amounts and timestamps
    formatted through numpy; rows joined into COPY text and sent with psycopg's `cursor.copy`, in
    100,000-row chunks, in one process over one connection, into the schema with its keys.
(b) The same with `keys_first=False`: the tables are created without PK/FK and the keys are added
    after the load; the time includes building them.
(c) `orm_script(url, customers, orders)`: the plain way: Faker called per field, one declarative
    model object per row, `session.add_all` and a commit every 10,000 rows.

Every contender's clock starts before its first generated value (Faker pools included) and stops
after its last COMMIT, so generation is part of every figure. `check_load` then verifies what
landed: counts, no order without its customer, and both keys present.

Rejected for (a): `COPY … (FORMAT binary)` — the text form is what the worker writes too, and a
binary encoder in Python is per-row work the numpy path avoids; `np.char` string functions — they
loop in Python-level UCS4 code and were slower than joining bytes objects; one Faker call per row,
even tuned, was 4-5x slower in the field notes and is (c)'s job.
"""

from __future__ import annotations

import datetime
import random
import time
import uuid
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
import psycopg
import sqlalchemy as sa
from faker import Faker
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

CUSTOMERS_TABLE = """CREATE TABLE customers (id uuid{pk}, name text NOT NULL, email text NOT NULL,
  phone text, address text, country text NOT NULL, created_at timestamptz NOT NULL)"""
ORDERS_TABLE = """CREATE TABLE orders (id uuid{pk}, customer_id uuid NOT NULL{fk},
  amount numeric(10,2) NOT NULL, status text NOT NULL, created_at timestamptz NOT NULL)"""
ADD_KEYS = (
    "ALTER TABLE customers ADD PRIMARY KEY (id)",
    "ALTER TABLE orders ADD PRIMARY KEY (id)",
    "ALTER TABLE orders ADD FOREIGN KEY (customer_id) REFERENCES customers (id)",
)
CUSTOMER_COLUMNS = ("id", "name", "email", "phone", "address", "country", "created_at")
ORDER_COLUMNS = ("id", "customer_id", "amount", "status", "created_at")
# column → Faker provider, as in the tmpl_bulk_customer template.
FAKER_COLUMNS = {"name": "name", "email": "email", "phone": "phone_number", "address": "street_address"}
POOL = 10_000
COUNTRIES, COUNTRY_WEIGHTS = ("US", "CA", "GB", "DE", "FR"), (50, 10, 15, 15, 10)
STATUSES = ("new", "paid", "shipped", "cancelled")
START = datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC)
END = datetime.datetime(2024, 12, 31, 23, 59, 59, tzinfo=datetime.UTC)
CHUNK = 100_000
ORM_COMMIT_EVERY = 10_000


def schema(keys: bool = True) -> list[str]:
    """The benchmark's DDL, with its keys declared, or without them (to add them after a load)."""
    return [
        CUSTOMERS_TABLE.format(pk=" PRIMARY KEY" if keys else ""),
        ORDERS_TABLE.format(
            pk=" PRIMARY KEY" if keys else "", fk=" REFERENCES customers(id)" if keys else ""
        ),
    ]


def create_schema(url: str, keys: bool = True) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for statement in schema(keys):
            conn.execute(statement)


@dataclass(frozen=True)
class Load:
    """One contender's load: rows written, seconds end to end, and the part spent generating."""

    customers: int
    orders: int
    seconds: float
    generate_seconds: float | None = None

    @property
    def rows(self) -> int:
        return self.customers + self.orders

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds


def check_load(url: str, customers: int, orders: int) -> None:
    """Raise AssertionError unless the database holds exactly the load, whole and keyed."""
    with psycopg.connect(url) as conn:
        counts = conn.execute(
            "SELECT (SELECT count(*) FROM customers), (SELECT count(*) FROM orders)"
        ).fetchone()
        orphans = conn.execute(
            "SELECT count(*) FROM orders o LEFT JOIN customers c ON c.id = o.customer_id WHERE c.id IS NULL"
        ).fetchone()
        keys = conn.execute(
            "SELECT conrelid::regclass::text, contype::text FROM pg_constraint "
            "WHERE conrelid IN ('customers'::regclass, 'orders'::regclass) AND contype IN ('p', 'f') "
            "ORDER BY 1, 2"
        ).fetchall()
    assert counts == (customers, orders), f"expected {(customers, orders)} rows, found {counts}"
    assert orphans == (0,), f"{orphans[0] if orphans else '?'} orders reference no customer"
    expected_keys = [("customers", "p"), ("orders", "f"), ("orders", "p")]
    assert keys == expected_keys, f"keys {keys}, expected {expected_keys}"


# -- (a) and (b): numpy over Faker pools → COPY text ----------------------------------------------


def _copy_text(value: str) -> bytes:
    """One value as a field of COPY's text format."""
    escaped = value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return escaped.encode()


def _faker_pools(seed: int) -> dict[str, np.ndarray]:
    fake = Faker("en_US")
    fake.seed_instance(seed)
    return {
        column: np.array([_copy_text(getattr(fake, provider)()) for _ in range(POOL)], dtype=object)
        for column, provider in FAKER_COLUMNS.items()
    }


_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
# Where the 32 hex digits go in the 36 characters of a uuid's text form.
_UUID_DIGITS = np.array([i for i in range(36) if i not in (8, 13, 18, 23)])


def _uuids(rng: np.random.Generator, n: int) -> np.ndarray:
    """n random version-4 uuids in text form, as an array of 36-byte strings."""
    raw = np.frombuffer(rng.bytes(16 * n), dtype=np.uint8).reshape(n, 16).copy()
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
    text = np.full((n, 36), ord("-"), dtype=np.uint8)
    digits = np.empty((n, 32), dtype=np.uint8)
    digits[:, 0::2] = _HEX[raw >> 4]
    digits[:, 1::2] = _HEX[raw & 0x0F]
    text[:, _UUID_DIGITS] = digits
    return text.view("S36").ravel()


def _timestamps(rng: np.random.Generator, n: int) -> list[bytes]:
    seconds = rng.integers(int(START.timestamp()), int(END.timestamp()) + 1, n).astype("datetime64[s]")
    return np.datetime_as_string(seconds, timezone="UTC").astype("S20").tolist()  # type: ignore[no-any-return]


def _join(columns: list[list[bytes]]) -> bytes:
    return b"\n".join(map(b"\t".join, zip(*columns, strict=True))) + b"\n"


class _NumpyRows:
    """The generator of (a) and (b): chunks of COPY text for customers, then for orders."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.pools = _faker_pools(seed)
        self.countries = np.array([c.encode() for c in COUNTRIES], dtype=object)
        self.country_p = np.array(COUNTRY_WEIGHTS, dtype=float) / sum(COUNTRY_WEIGHTS)
        self.statuses = np.array([s.encode() for s in STATUSES], dtype=object)
        # Every amount from 1.00 to 500.00, formatted once: a row's amount is an index into it.
        self.amounts = np.array(
            [f"{c // 100}.{c % 100:02d}".encode() for c in range(100, 50_001)], dtype=object
        )
        self.customer_ids = np.empty(0, dtype="S36")

    def customers(self, n: int) -> bytes:
        rng = self.rng
        ids = _uuids(rng, n)
        self.customer_ids = np.concatenate([self.customer_ids, ids])
        picks = {column: pool[rng.integers(0, POOL, n)].tolist() for column, pool in self.pools.items()}
        country = self.countries[rng.choice(len(COUNTRIES), n, p=self.country_p)].tolist()
        return _join(
            [ids.tolist(), picks["name"], picks["email"], picks["phone"], picks["address"], country]
            + [_timestamps(rng, n)]
        )

    def orders(self, n: int) -> bytes:
        rng = self.rng
        customer = self.customer_ids[rng.integers(0, len(self.customer_ids), n)].tolist()
        amount = self.amounts[rng.integers(0, len(self.amounts), n)].tolist()
        status = self.statuses[rng.integers(0, len(STATUSES), n)].tolist()
        return _join([_uuids(rng, n).tolist(), customer, amount, status, _timestamps(rng, n)])


def numpy_copy(url: str, customers: int, orders: int, *, keys_first: bool = True, seed: int = 11) -> Load:
    """(a) with `keys_first`, else (b): load into a fresh database holding no tables yet."""
    create_schema(url, keys=keys_first)
    generating = 0.0
    with psycopg.connect(url) as conn:
        started = time.perf_counter()
        rows = _NumpyRows(seed)
        generating += time.perf_counter() - started
        for table, columns, total, make in (
            ("customers", CUSTOMER_COLUMNS, customers, rows.customers),
            ("orders", ORDER_COLUMNS, orders, rows.orders),
        ):
            with conn.cursor() as cur, cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                for offset in range(0, total, CHUNK):
                    made = time.perf_counter()
                    data = make(min(CHUNK, total - offset))
                    generating += time.perf_counter() - made
                    copy.write(data)
            conn.commit()
        if not keys_first:
            for statement in ADD_KEYS:
                conn.execute(statement)
            conn.commit()
        seconds = time.perf_counter() - started
    return Load(customers, orders, seconds, generating)


# -- (c): Faker + SQLAlchemy ORM -----------------------------------------------------------------


class _Base(DeclarativeBase):
    pass


class _Customer(_Base):
    __tablename__ = "customers"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    name: Mapped[str]
    email: Mapped[str]
    phone: Mapped[str | None]
    address: Mapped[str | None]
    country: Mapped[str]
    created_at: Mapped[datetime.datetime] = mapped_column(sa.DateTime(timezone=True))


class _Order(_Base):
    __tablename__ = "orders"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    customer_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("customers.id"))
    amount: Mapped[Decimal] = mapped_column(sa.Numeric(10, 2))
    status: Mapped[str]
    created_at: Mapped[datetime.datetime] = mapped_column(sa.DateTime(timezone=True))


def orm_script(url: str, customers: int, orders: int, *, seed: int = 13) -> Load:
    """(c): the script most people write first; into a fresh database holding no tables yet."""
    create_schema(url, keys=True)
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    started = time.perf_counter()
    fake = Faker("en_US")
    fake.seed_instance(seed)
    rnd = random.Random(seed)
    customer_ids: list[uuid.UUID] = []
    with Session(engine) as session:
        batch: list[_Base] = []
        for _ in range(customers):
            customer = _Customer(
                id=uuid.uuid4(),
                name=fake.name(),
                email=fake.email(),
                phone=fake.phone_number(),
                address=fake.street_address(),
                country=rnd.choices(COUNTRIES, COUNTRY_WEIGHTS)[0],
                created_at=fake.date_time_between(START, END, tzinfo=datetime.UTC),
            )
            customer_ids.append(customer.id)
            batch.append(customer)
            batch = _commit_full(session, batch)
        _commit_full(session, batch, force=True)
        batch = []
        for _ in range(orders):
            batch.append(
                _Order(
                    id=uuid.uuid4(),
                    customer_id=rnd.choice(customer_ids),
                    amount=Decimal(f"{rnd.uniform(1, 500):.2f}"),
                    status=rnd.choice(STATUSES),
                    created_at=fake.date_time_between(START, END, tzinfo=datetime.UTC),
                )
            )
            batch = _commit_full(session, batch)
        _commit_full(session, batch, force=True)
    seconds = time.perf_counter() - started
    engine.dispose()
    return Load(customers, orders, seconds)


def _commit_full(session: Session, batch: list[_Base], *, force: bool = False) -> list[_Base]:
    if batch and (force or len(batch) >= ORM_COMMIT_EVERY):
        session.add_all(batch)
        session.commit()
        return []
    return batch
