"""Scratch PostgreSQL databases for the benchmarks (on the server SEEDBED_TEST_PG_URL names)."""

from __future__ import annotations

import contextlib
import os
import secrets
import sys
from collections.abc import Iterator

import psycopg


@contextlib.contextmanager
def scratch_database() -> Iterator[str]:
    """A fresh database for the block, dropped after it; its plain postgresql:// URL."""
    admin = os.environ.get("SEEDBED_TEST_PG_URL", "")
    if not admin:
        sys.exit("SEEDBED_TEST_PG_URL is not set: run scripts/postgres-up and export the URL it prints")
    name = f"seedbed_bench_{secrets.token_hex(4)}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{admin.rpartition('/')[0]}/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
